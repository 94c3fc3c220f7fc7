"""Tooling beside the gateway: the embedded PostgreSQL, the sandbox, and the stacks that chaos and load
runs build.

These modules may import the gateway (`fpslink`); the gateway never imports them, except `fpslink.cli`
inside the commands that run them (tests/unit/test_tools_boundary.py keeps it so).
"""

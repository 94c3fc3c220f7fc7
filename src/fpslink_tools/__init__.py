"""Tooling beside the gateway: the embedded PostgreSQL server, and what runs stacks for chaos and load."""

"""Clients of the link for banks to read and run: `.venv/bin/python -m examples.reference_client --help`."""

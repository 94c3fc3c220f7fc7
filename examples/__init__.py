"""Clients of the link for banks to read and run: `python -m examples.reference_client --help`."""

"""Retention: purge what has outlived its period, in short batches, keeping the ledger and kept days whole."""

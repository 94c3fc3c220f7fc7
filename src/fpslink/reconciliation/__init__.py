"""Reconciliation: gateway records x FPS ledger x IBPS statement -> breaks and a report."""

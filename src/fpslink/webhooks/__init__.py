"""Webhooks: banks register URLs; final payment outcomes are delivered signed, retried, and logged."""

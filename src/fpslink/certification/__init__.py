"""Certification runs: the sandbox perturbs a bank's own requests and webhooks on purpose and judges,
from what it observed, whether the bank's client handled each hard case (docs/certification.md)."""

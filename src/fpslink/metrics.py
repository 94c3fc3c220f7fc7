"""Prometheus metrics of the gateway (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PAYMENTS = Counter(
    "fpslink_payments_total", "Payments answered, by status and direction", ["status", "direction"]
)
SETTLEMENT_SECONDS = Histogram(
    "fpslink_payment_seconds",
    "Time to answer POST /v1/payments",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECOVERY = Counter("fpslink_recovery_total", "Payments finished by recovery, by outcome", ["state"])

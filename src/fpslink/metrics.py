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
IBPS_CALLS = Counter(
    "fpslink_ibps_calls_total",
    "Calls from the gateway to IBPS, by call and outcome (ok, refused, timeout, error, circuit_open)",
    ["call", "outcome"],
)
IDEMPOTENT_REPLAYS = Counter(
    "fpslink_idempotent_replays_total",
    "Requests answered from an earlier one with the same key",
    ["endpoint"],
)
WEBHOOK_DELIVERIES = Counter(
    "fpslink_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed, cancelled)",
    ["outcome"],
)
HTTP_REQUESTS = Counter(
    "fpslink_http_requests_total", "Requests answered, by route template and status code", ["route", "status"]
)
BATCH_SIZE = Histogram(
    "fpslink_batch_size",
    "Payments one worker settled together in one batch (one transaction per step)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)
BATCH_SECONDS = Histogram(
    "fpslink_batch_seconds",
    "Time from a batch's acceptance transaction to its final one",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_STEP_SECONDS = Histogram(
    "fpslink_batch_step_seconds",
    "Time a batch spent in each settlement step: accept (the acceptance transaction), prepare (the "
    "IBPS prepare exchange), decide (the decision transaction), finish (IBPS phase two and the final "
    "transaction)",
    ["step"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

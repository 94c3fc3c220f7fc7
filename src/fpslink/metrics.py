"""Prometheus metrics of the gateway (served at /metrics).

With several workers (`fpslink serve --workers N`, fpslink.serving) each worker counts in files of
its own under PROMETHEUS_MULTIPROC_DIR, which the supervisor sets before it starts them, and
/metrics answers the sum over every worker, whichever worker serves the scrape: otherwise each
scrape would show one worker's share, a different one each time. The metrics are counters and
histograms only, which sum across processes without a mode to choose. The file-backed values cost
about 3.0 us per counter increment and histogram observation together against 1.2 us in memory
(200,000 of each, one process): a few microseconds per payment, under 0.5% of its CPU.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, Metric, generate_latest, multiprocess

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

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
RETENTION_PURGED = Counter(
    "fpslink_retention_purged_total",
    "Rows the retention job deleted, by step (keys, deliveries, timeline, payments, transfers, quotes, "
    "usage, recon)",
    ["step"],
)
RATE_LIMITED = Counter(
    "fpslink_rate_limited_total", "Requests refused with 429 because their bank was over its quota"
)


def _workers_registry() -> CollectorRegistry | None:
    """Every worker's counts, when there are several workers; None for one process."""
    if not os.environ.get(MULTIPROC_DIR):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> bytes:
    """The text a scrape gets: every worker's counts summed when there are several."""
    registry = _workers_registry()
    return generate_latest() if registry is None else generate_latest(registry)


def families(metric: Counter | Histogram) -> list[Metric]:
    """`metric`'s samples over every worker (the console's figures), or this process's alone."""
    registry = _workers_registry()
    if registry is None:
        return list(metric.collect())
    name = metric._name  # prometheus-client keeps the family name here; it has no public getter
    return [family for family in registry.collect() if family.name == name]

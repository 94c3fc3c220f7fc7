"""The gateway's metrics that a dashboard of a long run reads (fpslink.metrics): rejections by code,
and the pending payments, counted from the database no more often than a bound however often
/metrics is read. In this process's own registry: no multiprocess directory, no database."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from fpslink import metrics

STATES = ("ACCEPTED", "COMMITTING", "ABORTING")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_rejection_is_counted_by_its_code_beside_the_payment() -> None:
    before = sample("fpslink_payment_rejections_total", direction="SOUTHBOUND", code="AM14")
    payments = sample("fpslink_payments_total", direction="SOUTHBOUND", status="REJECTED")
    metrics.payment_answered(status="REJECTED", direction="SOUTHBOUND", reason_code="AM14", elapsed_s=0.01)
    assert sample("fpslink_payment_rejections_total", direction="SOUTHBOUND", code="AM14") == before + 1
    assert sample("fpslink_payments_total", direction="SOUTHBOUND", status="REJECTED") == payments + 1


def rejections() -> float:
    """Every rejection counted so far, whatever its labels."""
    (family,) = metrics.REJECTIONS.collect()
    return sum(s.value for s in family.samples if s.name.endswith("_total"))


def test_a_settled_payment_is_no_rejection_and_a_code_is_never_missing() -> None:
    settled = sample("fpslink_payments_total", direction="NORTHBOUND", status="SETTLED")
    before = rejections()
    metrics.payment_answered(status="SETTLED", direction="NORTHBOUND", reason_code=None, elapsed_s=0.01)
    assert sample("fpslink_payments_total", direction="NORTHBOUND", status="SETTLED") == settled + 1
    assert rejections() == before
    metrics.payment_answered(status="REJECTED", direction="NORTHBOUND", reason_code=None, elapsed_s=0.01)
    assert sample("fpslink_payment_rejections_total", direction="NORTHBOUND", code="UNSPECIFIED") >= 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_pending_is_counted_at_most_once_per_period_and_every_state_gets_a_value() -> None:
    clock = Clock()
    refresher = metrics.PendingRefresher(states=STATES, refresh_s=5.0, clock=clock)
    counted: list[int] = []

    async def count() -> dict[str, int]:
        counted.append(1)
        return {"ACCEPTED": 7, "ABORTING": 1}

    assert await refresher.refresh(count)
    assert [sample("fpslink_payments_pending", state=s) for s in STATES] == [7, 0, 1]
    clock.now += 4.9
    assert not await refresher.refresh(count), "read again within the period: no query"
    clock.now += 0.1
    assert await refresher.refresh(count)
    assert len(counted) == 2


async def test_a_failed_count_keeps_the_last_values_and_waits_a_period() -> None:
    clock = Clock()
    refresher = metrics.PendingRefresher(states=STATES, refresh_s=5.0, clock=clock)

    async def count() -> dict[str, int]:
        return {"COMMITTING": 3}

    async def down() -> dict[str, int]:
        raise ConnectionRefusedError("the database is down")

    await refresher.refresh(count)
    clock.now += 5
    with pytest.raises(ConnectionRefusedError):
        await refresher.refresh(down)
    assert sample("fpslink_payments_pending", state="COMMITTING") == 3
    clock.now += 1
    assert not await refresher.refresh(down), "an outage costs one attempt per period, not one per scrape"

"""Batched settlement: payments that arrive together share each step, and end as they would alone.

`batch_max_inflight=1` makes the batches observable: the first payment settles alone and everyone
who arrives meanwhile leaves together in the next batch (one transaction per step, one IBPS
exchange per phase). Every test ends with the invariant check of the `harness` fixture.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from gw_support import Harness
from prometheus_client import REGISTRY

from fpslink.settlement import recovery

ONE_SLOT = {"batch_max_inflight": 1}


async def _world(h: Harness, balance: str = "100000.00") -> dict[str, Any]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    return {
        "hk": hk,
        "cn": cn,
        "hk_acc": await h.account(hk, "HKD", balance),
        "cn_acc": await h.account(cn, "CNY", balance),
    }


async def _pay(
    h: Harness, w: dict[str, Any], amount: str, *, south: bool = False, key: str | None = None
) -> Any:
    if south:
        return await h.pay(
            w["cn"], debtor=w["cn_acc"], creditor_account=w["hk_acc"], amount=amount, currency="CNY", key=key
        )
    return await h.pay(
        w["hk"], debtor=w["hk_acc"], creditor_account=w["cn_acc"], amount=amount, currency="HKD", key=key
    )


def _batched(h: Harness) -> tuple[int, int]:
    batcher = h.gw.payments.batcher
    assert batcher is not None
    return batcher.batches, batcher.items


@pytest.mark.settings(**ONE_SLOT)
async def test_payments_that_arrive_together_settle_in_one_batch(harness: Harness) -> None:
    h = harness
    w = await _world(h)
    answers = await asyncio.gather(*(_pay(h, w, f"{10 + i}.00", south=i % 2 == 1) for i in range(21)))
    assert [a.status_code for a in answers] == [201] * 21, [a.text for a in answers]
    assert {a.json()["status"] for a in answers} == {"SETTLED"}
    batches, items = _batched(h)
    assert items == 21 and batches <= 3  # the first alone, the rest together
    exposition = (await h.http.get("/metrics")).text
    assert "fpslink_batch_size_bucket" in exposition and "fpslink_batch_seconds_count" in exposition
    # the answer is the stored payment, timeline included
    for answer in answers[:3]:
        body = answer.json()
        stored = (await h.http.get(f"/v1/payments/{body['payment_id']}", headers=w["hk"].headers)).json()
        assert stored == body
    north = sum(Decimal(a.json()["source_amount"]) for a in answers[0::2])
    south_target = sum(Decimal(a.json()["target_amount"]) for a in answers[1::2])
    debtor = await h.balance(w["hk_acc"])
    assert Decimal(debtor[0]) == Decimal("100000.00") - north + south_target
    assert debtor[1] == "0.00"


@pytest.mark.settings(**ONE_SLOT, northbound_daily_hkd="1000.00")
async def test_one_batch_decides_limits_and_funds_in_arrival_order(harness: Harness) -> None:
    h = harness
    w = await _world(h, balance="700.00")
    answers = await asyncio.gather(*(_pay(h, w, "300.00") for _ in range(5)))
    outcomes = Counter((a.json()["status"], a.json()["reason_code"]) for a in answers)
    # 700.00 of funds: two payments fit, the third is short of funds (its limit usage released)
    assert outcomes == {("SETTLED", None): 2, ("REJECTED", "AM04"): 3}, outcomes
    assert await h.balance(w["hk_acc"]) == ("100.00", "0.00")
    assert await _used_today(h, w) == "600.00"  # the rejected ones hold no usage


async def _used_today(h: Harness, w: dict[str, Any]) -> str:
    limits = (await h.http.get(f"/v1/accounts/{w['hk_acc']}/limits", headers=w["hk"].headers)).json()
    return str(next(line["used"] for line in limits["usage"] if line["period"] == "DAY"))


@pytest.mark.settings(**ONE_SLOT, northbound_daily_hkd="500.00")
async def test_one_batch_never_exceeds_the_daily_limit(harness: Harness) -> None:
    h = harness
    w = await _world(h)
    answers = await asyncio.gather(*(_pay(h, w, "300.00") for _ in range(5)))
    outcomes = Counter((a.json()["status"], a.json()["reason_code"]) for a in answers)
    assert outcomes == {("SETTLED", None): 1, ("REJECTED", "AM14"): 4}, outcomes
    assert await _used_today(h, w) == "300.00"


@pytest.mark.settings(**ONE_SLOT)
async def test_one_key_twice_in_a_batch_makes_one_payment(harness: Harness) -> None:
    h = harness
    w = await _world(h)
    await _pay(h, w, "1.00")  # occupies the slot, so the next ones batch
    answers = await asyncio.gather(*(_pay(h, w, "25.00", key="same-key-in-one-batch") for _ in range(4)))
    created = [a for a in answers if a.status_code == 201]
    assert {a.json()["payment_id"] for a in created} and len({a.json()["payment_id"] for a in created}) == 1
    assert all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    assert await h.balance(w["hk_acc"]) == ("99974.00", "0.00")


@pytest.mark.settings(**ONE_SLOT, ibps_backoff_s=0.01)
async def test_items_ibps_could_not_answer_in_a_batch_are_repeated_alone(
    harness: Harness, faults: Any
) -> None:
    h = harness
    w = await _world(h)
    await faults(call="prepare", kind="error", probability=1.0, seed=1, only_attempts=1)
    await faults(call="commit", kind="lost_reply", probability=1.0, seed=2, only_attempts=1, hang_ms=100)
    answers = await asyncio.gather(*(_pay(h, w, "10.00", south=i % 2 == 0) for i in range(9)))
    assert {(a.status_code, a.json()["status"]) for a in answers} == {(201, "SETTLED")}, [
        a.json()["events"] for a in answers
    ]
    batches, items = _batched(h)
    assert batches < items


@pytest.mark.settings(**ONE_SLOT)
async def test_magic_amounts_inside_a_batch_end_as_they_would_alone(harness: Harness, faults: Any) -> None:
    h = harness
    w = await _world(h)
    await _pay(h, w, "1.00", south=True)
    amounts = ["404.04", "503.03", "502.02", "20.00"]
    answers = await asyncio.gather(*(_pay(h, w, a, south=True) for a in amounts))
    ends = {a: (r.json()["status"], r.json()["reason_code"]) for a, r in zip(amounts, answers, strict=True)}
    assert ends == {
        "404.04": ("REJECTED", "RR04"),
        "503.03": ("SETTLED", None),
        "502.02": ("SETTLED", None),
        "20.00": ("SETTLED", None),
    }


class Crash(BaseException):
    pass


@pytest.mark.settings(**ONE_SLOT)
async def test_a_crash_in_a_batch_leaves_every_payment_of_it_for_recovery(harness: Harness) -> None:
    h = harness
    w = await _world(h)
    await _pay(h, w, "1.00")

    def crash(point: str) -> None:
        if point == "decided":
            raise Crash(point)

    h.gw.crash_hook = crash
    answers = await asyncio.gather(*(_pay(h, w, "10.00") for _ in range(6)), return_exceptions=True)
    h.gw.crash_hook = lambda point: None
    assert all(isinstance(a, Crash) for a in answers), answers
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    assert await recovery.sweep(h.gw) == {"SETTLED": 6}
    assert await h.balance(w["hk_acc"]) == ("99939.00", "0.00")


@pytest.mark.settings(**ONE_SLOT)
async def test_each_batch_times_its_four_steps(harness: Harness) -> None:
    h = harness
    w = await _world(h)
    steps = ("accept", "prepare", "decide", "finish")

    def counts() -> dict[str, float]:
        return {
            s: REGISTRY.get_sample_value("fpslink_batch_step_seconds_count", {"step": s}) or 0.0
            for s in steps
        }

    before, batches_before = counts(), _batched(h)[0] if h.gw.payments.batcher else 0
    answers = await asyncio.gather(*(_pay(h, w, f"{20 + i}.00") for i in range(5)))
    assert {a.json()["status"] for a in answers} == {"SETTLED"}
    batches = _batched(h)[0] - batches_before
    after = counts()
    assert {s: after[s] - before[s] for s in steps} == dict.fromkeys(steps, float(batches))
    exposition = (await h.http.get("/metrics")).text
    assert 'fpslink_batch_step_seconds_bucket{le="0.001",step="accept"}' in exposition


@pytest.mark.settings(**ONE_SLOT)
async def test_the_next_batch_starts_once_the_decisions_are_durable(harness: Harness) -> None:
    """A batch holds its slot through acceptance, prepare and the decision, not through phase two:
    a payment behind one whose IBPS commit is slow is decided meanwhile, and both settle."""
    h = harness
    w = await _world(h)
    decisions = [asyncio.Event(), asyncio.Event()]

    def hook(point: str) -> None:
        if point == "decided":
            next(d for d in decisions if not d.is_set()).set()

    h.gw.crash_hook = hook
    gate = asyncio.Event()
    commit = h.gw.ibps.commit

    async def slow_commit(payment_id: str) -> None:
        await gate.wait()
        await commit(payment_id)

    h.gw.ibps.commit = slow_commit  # type: ignore[method-assign]

    first = asyncio.create_task(_pay(h, w, "10.00"))
    await asyncio.wait_for(decisions[0].wait(), 10)
    second = asyncio.create_task(_pay(h, w, "11.00"))
    await asyncio.wait_for(decisions[1].wait(), 10)  # the first is still waiting for its commit
    assert not first.done()
    gate.set()
    answers = [await first, await second]
    assert [a.json()["status"] for a in answers] == ["SETTLED", "SETTLED"], [a.text for a in answers]
    assert _batched(h)[0] == 2

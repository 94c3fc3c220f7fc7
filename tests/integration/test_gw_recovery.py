"""Two-phase settlement under crashes, lost replies and an IBPS outage: recovery always converges.

A crash is simulated by a named fault point that raises a BaseException at that step, so the request
dies with whatever was committed so far (as a killed process would), and the recovery sweep then runs
with the clock moved past the settlement time-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from gw_support import Crash, Harness, crash_at

from fpslink.ibps_client import IbpsUnavailable
from fpslink.payments import repository
from fpslink.settlement import coordinator, recovery
from fpslink.vocabulary import State
from ibps_wire.enums import TransferKind


async def _world(h: Harness, direction: str) -> dict[str, Any]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    hk_acc = await h.account(hk, "HKD", "1000.00")
    cn_acc = await h.account(cn, "CNY", "1000.00")
    if direction == "NORTHBOUND":
        return {"bank": hk, "debtor": hk_acc, "creditor": cn_acc, "currency": "HKD"}
    return {"bank": cn, "debtor": cn_acc, "creditor": hk_acc, "currency": "CNY"}


async def _pay(h: Harness, w: dict[str, Any], amount: str = "100.00") -> Any:
    return await h.pay(
        w["bank"],
        debtor=w["debtor"],
        creditor_account=w["creditor"],
        amount=amount,
        currency=w["currency"],
        key=w.get("key"),
    )


async def _only_payment(h: Harness, w: dict[str, Any]) -> dict[str, Any]:
    page = (await h.http.get("/v1/payments", headers=w["bank"].headers)).json()["items"]
    assert len(page) == 1
    full = (await h.http.get(f"/v1/payments/{page[0]['payment_id']}", headers=w["bank"].headers)).json()
    return dict(full)


async def _sweep(h: Harness) -> None:
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    await recovery.sweep(h.gw)


async def _crash(h: Harness, w: dict[str, Any], point: str) -> dict[str, Any]:
    h.gw.crash_hook = crash_at(point)
    with pytest.raises(Crash):
        await _pay(h, w)
    h.gw.crash_hook = lambda reached: None
    return await _only_payment(h, w)


EXPECTED = {
    "accepted": ("REJECTED", "AB05"),
    "ibps_prepared": ("REJECTED", "AB05"),
    "decided": ("SETTLED", None),
    "ibps_finished": ("SETTLED", None),
}


@pytest.mark.parametrize("direction", ["NORTHBOUND", "SOUTHBOUND"])
@pytest.mark.parametrize("point", list(EXPECTED))
async def test_a_crash_at_every_step_recovers(harness: Harness, direction: str, point: str) -> None:
    h = harness
    w = await _world(h, direction)
    pending = await _crash(h, w, point)
    assert pending["status"] == "PENDING"
    assert await recovery.sweep(h.gw) == {}  # not stale yet: recovery leaves it to its owner
    await _sweep(h)
    done = await _only_payment(h, w)
    status, code = EXPECTED[point]
    assert (done["status"], done["reason_code"]) == (status, code), done["events"]
    assert "RECOVERY" in [e["event"] for e in done["events"]]
    debtor, creditor = await h.balance(w["debtor"]), await h.balance(w["creditor"])
    assert debtor[1] == creditor[1] == "0.00"  # no hold left anywhere
    if status == "SETTLED":
        assert Decimal(debtor[0]) == Decimal("1000.00") - Decimal(done["source_amount"])
        assert Decimal(creditor[0]) == Decimal("1000.00") + Decimal(done["target_amount"])
    else:
        assert debtor == creditor == ("1000.00", "0.00")
    again = await recovery.sweep(h.gw)  # converged: nothing more to do
    assert again == {}


async def test_a_move_of_the_test_clock_leaves_a_payment_in_flight_to_its_batch(harness: Harness) -> None:
    # touched a moment ago in real time: its batch may still be settling it, whatever the move
    h = harness
    w = await _world(h, "NORTHBOUND")
    await _crash(h, w, "accepted")
    h.gw.sandbox_offset.set(h.gw.sandbox_offset.value + timedelta(hours=1))
    assert await recovery.sweep(h.gw) == {}
    assert (await _only_payment(h, w))["status"] == "PENDING"
    await _sweep(h)  # the time-out passed in real time (the wall clock): now it is recovery's
    done = await _only_payment(h, w)
    assert (done["status"], done["reason_code"]) == ("REJECTED", "AB05")


async def test_a_move_of_the_test_clock_hands_a_given_up_payment_to_recovery_at_once(
    harness: Harness,
) -> None:
    # its batch gave up (the payment deadline and the batch's work have passed in real time): the
    # move is as if the hour had passed
    h = harness
    w = await _world(h, "NORTHBOUND")
    await _crash(h, w, "decided")
    h.clock.advance(h.gw.settings.payment_deadline_s + recovery.BATCH_WORK_S + 1)
    assert await recovery.sweep(h.gw) == {}  # not stale yet, without a move
    h.gw.sandbox_offset.set(h.gw.sandbox_offset.value + timedelta(hours=1))
    assert await recovery.sweep(h.gw) == {"SETTLED": 1}


async def test_a_move_of_the_test_clock_does_not_delay_a_payment_already_stale(harness: Harness) -> None:
    h = harness
    w = await _world(h, "NORTHBOUND")
    await _crash(h, w, "decided")
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    h.gw.sandbox_offset.set(h.gw.sandbox_offset.value + timedelta(hours=1))
    assert await recovery.sweep(h.gw) == {"SETTLED": 1}


async def test_a_late_prepare_after_recovery_aborted_is_refused(harness: Harness) -> None:
    h = harness
    w = await _world(h, "NORTHBOUND")
    pending = await _crash(h, w, "accepted")
    await _sweep(h)
    late = await h.gw.ibps.prepare(
        payment_id=pending["payment_id"],
        kind=TransferKind.CREDIT,
        account_id=w["creditor"],
        amount_minor=9177,
    )
    assert not late.prepared
    assert await h.balance(w["creditor"]) == ("1000.00", "0.00")


async def test_a_live_request_that_lost_the_race_to_recovery_defers_to_it(harness: Harness) -> None:
    h = harness
    w = await _world(h, "SOUTHBOUND")
    pending = await _crash(h, w, "ibps_prepared")  # IBPS prepared, no decision yet
    await _sweep(h)  # recovery decides ABORT
    async with h.gw.engine.connect() as conn:
        from fpslink.payments import repository

        payment = await repository.get(conn, pending["payment_id"])
    assert payment is not None
    # the late COMMIT loses
    assert await coordinator.decide_commit(h.gw.settlement, payment) is State.REJECTED
    assert await h.balance(w["debtor"]) == ("1000.00", "0.00")


async def test_concurrent_sweeps_act_once_per_payment(harness: Harness) -> None:
    h = harness
    w = await _world(h, "NORTHBOUND")
    h.gw.crash_hook = crash_at("decided")
    for _ in range(4):
        with pytest.raises(Crash):
            await _pay(h, w, "10.00")
    h.gw.crash_hook = lambda reached: None
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    results = await asyncio.gather(*(recovery.sweep(h.gw) for _ in range(3)))
    assert sum(r.get("SETTLED", 0) for r in results) == 4
    assert await h.balance(w["debtor"]) == ("960.00", "0.00")


def _fail(method: Callable[..., Awaitable[Any]], *, times: int, after_applying: bool = False) -> Any:
    """Make an IBPS call fail `times` times: with no effect, or applied but with the reply lost."""
    remaining = {"n": times}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if remaining["n"] > 0:
            remaining["n"] -= 1
            if after_applying:
                await method(*args, **kwargs)
            raise IbpsUnavailable("simulated: no answer")
        return await method(*args, **kwargs)

    return flaky


async def test_lost_prepare_reply_aborts_and_voids_the_ibps_hold(harness: Harness) -> None:
    h = harness
    w = await _world(h, "SOUTHBOUND")
    ibps = h.gw.ibps
    ibps.prepare = _fail(ibps.prepare, times=1, after_applying=True)  # type: ignore[method-assign]
    body = (await _pay(h, w)).json()
    assert (body["status"], body["reason_code"]) == ("REJECTED", "AB06")
    assert await h.balance(w["debtor"]) == ("1000.00", "0.00")


async def test_ibps_outage_after_the_decision_waits_pending_then_settles(harness: Harness) -> None:
    h = harness
    w = await _world(h, "NORTHBOUND")
    ibps = h.gw.ibps
    real_commit = ibps.commit
    ibps.commit = _fail(real_commit, times=3)  # type: ignore[method-assign]
    response = await _pay(h, w)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["events"][-1]["event"] == "IBPS_COMMIT_FAILED"
    await _sweep(h)  # still down
    await _sweep(h)
    assert (await _only_payment(h, w))["status"] == "PENDING"
    await _sweep(h)  # back
    done = await _only_payment(h, w)
    assert done["status"] == "SETTLED"
    assert await h.balance(w["debtor"]) == ("900.00", "0.00")


async def test_ibps_down_for_prepare_and_abort_ends_rejected_when_it_returns(harness: Harness) -> None:
    h = harness
    w = await _world(h, "SOUTHBOUND")
    ibps = h.gw.ibps
    ibps.prepare = _fail(ibps.prepare, times=1)  # type: ignore[method-assign]
    ibps.abort = _fail(ibps.abort, times=1)  # type: ignore[method-assign]
    response = await _pay(h, w)
    assert response.status_code == 202
    assert response.json()["status"] == "PENDING"
    await _sweep(h)
    done = await _only_payment(h, w)
    assert (done["status"], done["reason_code"]) == ("REJECTED", "AB06")
    assert await h.balance(w["creditor"]) == ("1000.00", "0.00")
    assert await h.balance(w["debtor"]) == ("1000.00", "0.00")


async def test_duplicated_commit_and_abort_deliveries_change_nothing(harness: Harness) -> None:
    h = harness
    w = await _world(h, "NORTHBOUND")
    settled = (await _pay(h, w)).json()
    rejected = (await _pay(h, w, "5000.00")).json()
    for _ in range(3):
        await h.gw.ibps.commit(settled["payment_id"])
        await h.gw.ibps.abort(rejected["payment_id"])
    assert await h.balance(w["creditor"]) == (
        f"{Decimal('1000.00') + Decimal(settled['target_amount'])}",
        "0.00",
    )


async def _two_stopped_at(h: Harness, w: dict[str, Any], point: str) -> tuple[str, str]:
    """Two payments left at `point` (as a crash would leave them); their ids, sorted."""
    h.gw.crash_hook = crash_at(point)
    for _ in range(2):
        with pytest.raises(Crash):
            await _pay(h, w, "10.00")
    h.gw.crash_hook = lambda reached: None
    page = (await h.http.get("/v1/payments", headers=w["bank"].headers)).json()["items"]
    first, second = sorted(p["payment_id"] for p in page)
    return first, second


async def _timeline(h: Harness, w: dict[str, Any], payment_id: str) -> list[str]:
    answer = await h.http.get(f"/v1/payments/{payment_id}", headers=w["bank"].headers)
    return [e["event"] for e in answer.json()["events"]]


@pytest.mark.settings(webhook_allow="127.0.0.1:9")
async def test_the_final_step_moves_only_what_is_still_decided(harness: Harness) -> None:
    """Phase two's last write (one statement on PostgreSQL) must leave a payment another actor
    finished first as that actor left it: no second timeline entry and no second webhook."""
    h = harness
    w = await _world(h, "NORTHBOUND")
    hook = await h.http.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=w["bank"].headers
    )
    assert hook.status_code == 201, hook.text
    ours, theirs = await _two_stopped_at(h, w, "decided")
    async with h.gw.engine.begin() as conn:
        rows = await repository.get_many(conn, [ours, theirs])
        # another actor (the recovery sweep) finished this one first
        assert await repository.transition(
            conn, payment_id=theirs, current=State.COMMITTING, target=State.SETTLED, now=h.gw.clock()
        )
    batch = [coordinator.Tracked(rows[ours]), coordinator.Tracked(rows[theirs])]

    await coordinator.finish_many(h.gw.settlement, batch)

    assert [t.state for t in batch] == [State.SETTLED, State.SETTLED]
    assert [e.event for e in batch[0].events] == ["COMMITTED_AT_IBPS", "SETTLED"]
    assert (await _timeline(h, w, ours))[-2:] == ["COMMITTED_AT_IBPS", "SETTLED"]
    assert "COMMITTED_AT_IBPS" not in await _timeline(h, w, theirs)
    deliveries = (await h.http.get("/v1/webhooks/deliveries", headers=w["bank"].headers)).json()["items"]
    assert [d["payment_id"] for d in deliveries] == [ours]
    assert await h.balance(w["debtor"]) == ("980.00", "0.00")


async def test_the_decision_commits_only_what_is_still_accepted(harness: Harness) -> None:
    """The commit decision (one statement and the balances, on PostgreSQL) must not touch a payment
    another actor decided first: no timeline entry, and its FPS hold left to that actor."""
    h = harness
    w = await _world(h, "NORTHBOUND")
    ours, theirs = await _two_stopped_at(h, w, "ibps_prepared")
    async with h.gw.engine.connect() as conn:
        rows = await repository.get_many(conn, [ours, theirs])
    # another actor (the recovery sweep) decided this one first
    assert (
        await coordinator.decide_abort(h.gw.settlement, rows[theirs], reason_code="AB05", reason="timed out")
        is State.ABORTING
    )
    batch = [coordinator.Tracked(rows[ours]), coordinator.Tracked(rows[theirs])]

    await coordinator.decide_many(h.gw.settlement, commits=batch, aborts=[])

    decision = ["PREPARED_AT_IBPS", "DECIDED_COMMIT", "POSTED_AT_FPS"]
    assert [t.state for t in batch] == [State.COMMITTING, State.ABORTING]
    assert [e.event for e in batch[0].events][-3:] == decision
    assert (await _timeline(h, w, ours))[-3:] == decision
    assert "DECIDED_COMMIT" not in await _timeline(h, w, theirs)
    assert await h.balance(w["debtor"]) == ("990.00", "0.00")  # ours posted, theirs voided once
    await _sweep(h)
    assert await h.balance(w["debtor"]) == ("990.00", "0.00")

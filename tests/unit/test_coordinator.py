"""Each batch step of the settlement coordinator on an in-memory store and a scripted IBPS.

What the integration tests show on PostgreSQL and mock_ibps (tests/integration/test_gw_settlement.py,
test_gw_recovery.py, test_gw_batching.py), shown here step by step without I/O: how many IBPS
exchanges a batch costs, which payments are repeated alone, what each decision writes, and that a
payment another actor moved first is read back rather than overwritten.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from fpslink.fx.domain import AmountType
from fpslink.iso20022.details import Details
from fpslink.money import Currency
from fpslink.payments.domain import TimelineEntry
from fpslink.settlement import coordinator
from fpslink.settlement.coordinator import (
    Abort,
    Settlement,
    Tracked,
    abort_move,
    commit_move,
    final_move,
    ibps_leg,
    ibps_references,
)
from fpslink.settlement.states import IllegalTransition
from fpslink.vocabulary import Direction, State
from ibps_wire.enums import TransferKind
from ibps_wire.schemas import TransferReferences

from .settlement_fakes import T0, FakeIbps, FakeStore, StoreDown, accepted

NOW = T0 + timedelta(seconds=1)

SETTLED_TIMELINE = [
    "PREPARED_AT_IBPS",
    "DECIDED_COMMIT",
    "POSTED_AT_FPS",
    "COMMITTED_AT_IBPS",
    "SETTLED",
]


def ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


def world(n: int, **ibps: object) -> tuple[Settlement, FakeStore, FakeIbps, list[Tracked], list[str]]:
    payment_ids = ids(n)
    store = FakeStore.holding(accepted(i) for i in payment_ids)
    fake_ibps = FakeIbps(**ibps)  # type: ignore[arg-type]
    crashes: list[str] = []
    settlement = Settlement(store=store, ibps=fake_ibps, clock=lambda: NOW, crash_hook=crashes.append)
    batch = [Tracked(store.rows[i]) for i in payment_ids]
    return settlement, store, fake_ibps, batch, crashes


# the moves, decided in pure code ----------------------------------------------------------------


def test_a_commit_decision_records_the_decision_and_the_fps_posting() -> None:
    move = commit_move(accepted("p1"), NOW)
    assert move.target is State.COMMITTING and dict(move.values) == {"decided_at": NOW}
    assert [e.event for e in move.events] == ["PREPARED_AT_IBPS", "DECIDED_COMMIT", "POSTED_AT_FPS"]
    moved = move.moved(NOW)
    assert (moved.state, moved.updated_at, moved.decided_at) == (State.COMMITTING, NOW, NOW)
    assert move.payment.state is State.ACCEPTED, "the payment the move was made from is left as it was"


def test_an_abort_that_ibps_already_voided_rejects_at_once() -> None:
    void = abort_move(accepted("p1"), Abort("AM04", "insufficient funds", ibps_void=True), NOW)
    assert void.target is State.REJECTED
    assert [e.event for e in void.events] == [
        "REFUSED_AT_IBPS",
        "DECIDED_ABORT",
        "VOIDED_AT_FPS",
        "LIMITS_RELEASED",
        "REJECTED",
    ]
    assert void.events[0] == TimelineEntry(NOW, "REFUSED_AT_IBPS", "AM04: insufficient funds")
    unanswered = abort_move(accepted("p1"), Abort("AB06", "no answer " * 60), NOW)
    assert unanswered.target is State.ABORTING
    assert unanswered.events[-1].event == "LIMITS_RELEASED"
    assert len(unanswered.values["reason"]) == 300, "the reason is cut to its column"


def test_phase_two_ends_each_decision_in_its_outcome() -> None:
    committing = replace(accepted("p1"), state=State.COMMITTING)
    settled = final_move(committing, NOW)
    assert (settled.target, dict(settled.values)) == (State.SETTLED, {"settled_at": NOW})
    assert [e.event for e in settled.events] == ["COMMITTED_AT_IBPS", "SETTLED"]
    aborted = final_move(replace(committing, state=State.ABORTING), NOW)
    assert (aborted.target, dict(aborted.values)) == (State.REJECTED, {})
    assert [e.event for e in aborted.events] == ["ABORTED_AT_IBPS", "REJECTED"]
    with pytest.raises(IllegalTransition):
        final_move(accepted("p1"), NOW)


def test_the_ibps_leg_credits_northbound_and_debits_southbound() -> None:
    north = accepted("p1")
    assert ibps_leg(north) == (TransferKind.CREDIT, "CN0001", 91_770)
    south = accepted("p2", direction=Direction.SOUTHBOUND)
    assert ibps_leg(south) == (TransferKind.DEBIT, "CN0001", 91_770)
    with pytest.raises(ValueError, match="no IBPS leg"):
        ibps_leg(replace(north, creditor_account_id=None))


DETAILS = Details(
    message_name="pacs.008.001.08",
    msg_id="M-1",
    instr_id="I-1",
    end_to_end_id="E-1",
    tx_id=None,
    uetr="8a562c67-ca16-48ba-b074-65581be6f011",
    purpose_code="FAMI",
    purpose_proprietary=None,
    unstructured=("Tuition", "for June"),
    structured=(
        '<Strd xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"><AddtlRmtInf>x</AddtlRmtInf></Strd>',
    ),
    instructed_amount=None,
    instructed_currency=None,
)


def test_a_payment_sent_as_iso20022_gives_ibps_its_references_and_amounts() -> None:
    """What IBPS keeps for its statement: the bank's references and the amount instructed, converted."""
    north = accepted("p1")
    assert ibps_references(north, None) is None  # a JSON payment: nothing more goes to IBPS
    sent = ibps_references(north, DETAILS)
    assert sent is not None
    wire = TransferReferences.model_validate_json(sent.model_dump_json())  # what IBPS validates
    assert (wire.msg_id, wire.instr_id, wire.end_to_end_id, str(wire.uetr)) == (
        "M-1",
        "I-1",
        "E-1",
        "8a562c67-ca16-48ba-b074-65581be6f011",
    )
    assert (wire.purpose_code, wire.unstructured, wire.structured) == (
        "FAMI",
        ["Tuition", "for June"],
        list(DETAILS.structured),
    )
    assert (wire.instructed_amount, wire.instructed_currency) == ("1000.00", "HKD")  # the amount fixed
    assert wire.exchange is not None
    assert (wire.exchange.source_currency, wire.exchange.target_currency, wire.exchange.rate) == (
        "HKD",
        "CNY",
        "0.917700",
    )
    receive = ibps_references(replace(north, amount_type=AmountType.RECEIVE), DETAILS)
    assert receive is not None and (receive.instructed_amount, receive.instructed_currency) == (
        "917.70",
        "CNY",
    )
    instructed = replace(DETAILS, instructed_amount=Decimal("1005.00"), instructed_currency="HKD")
    given = ibps_references(north, instructed)
    assert given is not None and given.instructed_amount == "1005.00"
    same = replace(north, source_currency=Currency.CNY, source_minor=91_770, rate=Decimal("1.000000"))
    unconverted = ibps_references(same, DETAILS)
    assert unconverted is not None and unconverted.exchange is None


# the steps ---------------------------------------------------------------------------------------


async def test_a_batch_settles_with_two_ibps_exchanges_and_two_writes() -> None:
    s, store, ibps, batch, crashes = world(3)

    await coordinator.drive_many(s, batch)

    assert ibps.kinds() == ["batch", "batch"]
    assert ibps.calls[0][1][0].startswith("prepare:") and ibps.calls[1][1][0].startswith("commit:")
    assert store.steps == ["decide", "finish"]
    assert crashes == ["ibps_prepared", "decided", "ibps_finished"]
    for tracked in batch:
        assert tracked.state is State.SETTLED and not tracked.stale
        assert tracked.payment == store.rows[tracked.payment_id]
        assert [e.event for e in tracked.events] == SETTLED_TIMELINE
        assert store.events(tracked.payment_id) == SETTLED_TIMELINE
    assert sorted(store.posted) == sorted(t.payment_id for t in batch) and store.voided == []


async def test_a_payment_alone_makes_single_calls() -> None:
    s, _store, ibps, batch, _ = world(1)
    await coordinator.drive_many(s, batch)
    assert ibps.kinds() == ["prepare", "commit"]
    assert batch[0].state is State.SETTLED


async def test_a_refused_prepare_rejects_that_payment_and_the_rest_settle() -> None:
    refused, *others = ids(3)
    s, store, ibps, batch, _ = world(3, prepares={refused: "refuse"})

    await coordinator.drive_many(s, batch)

    by_id = {t.payment_id: t for t in batch}
    assert by_id[refused].state is State.REJECTED
    assert by_id[refused].payment.reason_code == "AM04"
    assert store.events(refused)[0] == "REFUSED_AT_IBPS" and store.events(refused)[-1] == "REJECTED"
    # IBPS voided it itself: phase two sends no abort for it
    assert all(refused not in item for _, items in ibps.calls[1:] for item in items)
    assert all(by_id[i].state is State.SETTLED for i in others)
    assert store.voided == [refused] and store.webhooks.count(refused) == 1
    assert store.released == {
        ("HK0001", "NORTHBOUND", "DAY", "2026-11-27"): 100_000,
        ("HK0001", "NORTHBOUND", "YEAR", "2026"): 100_000,
    }


async def test_an_item_without_an_answer_is_repeated_alone() -> None:
    unknown, wrong, _ = ids(3)
    s, _store, ibps, batch, _ = world(
        3, prepares={unknown: "unknown", wrong: "wrong_body"}, alone={unknown: "ok", wrong: "ok"}
    )

    await coordinator.drive_many(s, batch)

    assert ibps.kinds()[:3] == ["batch", "prepare", "prepare"]
    assert {items[0] for kind, items in ibps.calls if kind == "prepare"} == {unknown, wrong}
    assert all(t.state is State.SETTLED for t in batch)


async def test_a_batch_without_an_answer_repeats_every_item_alone() -> None:
    s, _store, ibps, batch, _ = world(2, batch_down=True)
    await coordinator.drive_many(s, batch)
    assert ibps.kinds() == ["batch", "prepare", "prepare", "batch", "commit", "commit"]
    assert all(t.state is State.SETTLED for t in batch)


async def test_a_prepare_ibps_never_answers_is_aborted_then_voided_at_ibps() -> None:
    silent, other = ids(2)
    s, store, ibps, batch, _ = world(2, prepares={silent: "unknown"}, alone={silent: "unavailable"})

    await coordinator.drive_many(s, batch)

    by_id = {t.payment_id: t for t in batch}
    assert by_id[silent].state is State.REJECTED and by_id[silent].payment.reason_code == "AB06"
    assert store.events(silent) == [
        "IBPS_PREPARE_FAILED",
        "DECIDED_ABORT",
        "VOIDED_AT_FPS",
        "LIMITS_RELEASED",
        "ABORTED_AT_IBPS",
        "REJECTED",
    ]
    finish_items = [items for kind, items in ibps.calls if kind == "batch"][-1]
    assert f"abort:{silent}" in finish_items and f"commit:{other}" in finish_items
    assert by_id[other].state is State.SETTLED


async def test_a_prepare_refused_with_a_problem_aborts_with_its_code() -> None:
    refused, _ = ids(2)
    s, _store, ibps, batch, _ = world(2, prepares={refused: "problem"})
    await coordinator.drive_many(s, batch)
    tracked = next(t for t in batch if t.payment_id == refused)
    assert tracked.state is State.REJECTED and tracked.payment.reason_code == "CONFLICT"
    assert "abort" in ibps.calls[-1][1][0] or any(f"abort:{refused}" in i for _, i in ibps.calls)


async def test_a_decision_another_actor_made_first_is_read_back_not_overwritten() -> None:
    ours, theirs = ids(2)
    s, store, _ibps, batch, _ = world(2)
    # the recovery sweep aborted `theirs` while its prepare was in flight
    store.rows[theirs] = replace(store.rows[theirs], state=State.ABORTING, reason_code="AB05")

    await coordinator.decide_many(s, commits=batch, aborts=[])

    by_id = {t.payment_id: t for t in batch}
    assert by_id[ours].state is State.COMMITTING and not by_id[ours].stale
    assert by_id[theirs].stale and by_id[theirs].payment == store.rows[theirs]
    assert by_id[theirs].events == [] and store.events(theirs) == []
    assert store.posted == [ours]
    assert store.steps == ["decide", "read"]

    await coordinator.finish_many(s, batch)
    assert by_id[ours].state is State.SETTLED
    assert by_id[theirs].state is State.ABORTING, "a stale payment is left to whoever moved it"


async def test_phase_two_refused_leaves_the_payment_decided_with_the_refusal_on_record() -> None:
    refused, other = ids(2)
    s, store, _ibps, batch, crashes = world(2, finishes={refused: "problem"})

    await coordinator.drive_many(s, batch)

    by_id = {t.payment_id: t for t in batch}
    assert by_id[refused].state is State.COMMITTING, "decided: the recovery sweep finishes it"
    assert store.rows[refused].state is State.COMMITTING
    assert by_id[refused].events[-1].event == "IBPS_COMMIT_FAILED"
    assert store.events(refused)[-1] == "IBPS_COMMIT_FAILED"
    assert by_id[other].state is State.SETTLED
    assert crashes[-1] == "ibps_finished", "some of phase two happened"


async def test_phase_two_without_any_answer_writes_the_failures_only() -> None:
    s, store, ibps, batch, crashes = world(2, batch_down=True)
    for tracked in batch:
        ibps.alone[tracked.payment_id] = "ok"
    verdicts = await coordinator.prepare_at_ibps(s, batch)
    await coordinator.decide_many(s, commits=batch, aborts=[])
    assert verdicts == [None, None]
    for tracked in batch:
        ibps.alone[tracked.payment_id] = "unavailable"

    await coordinator.finish_many(s, batch)

    assert "ibps_finished" not in crashes
    assert all(t.state is State.COMMITTING for t in batch)
    assert all(store.events(t.payment_id)[-1] == "IBPS_COMMIT_FAILED" for t in batch)


async def test_a_failed_write_changes_no_tracked_payment() -> None:
    s, store, _ibps, batch, _ = world(2)
    before = [t.payment for t in batch]
    store.down = True
    with pytest.raises(StoreDown):
        await coordinator.decide_many(s, commits=batch, aborts=[])
    assert [t.payment for t in batch] == before and all(t.events == [] for t in batch)


async def test_only_decided_payments_go_through_phase_two() -> None:
    s, store, ibps, batch, _ = world(2)
    await coordinator.finish_many(s, batch)  # both still ACCEPTED: nothing to finish
    assert ibps.calls == [] and store.steps == []


async def test_recovery_one_at_a_time_aborts_then_finishes() -> None:
    s, store, ibps, batch, _ = world(1)
    payment = batch[0].payment
    state = await coordinator.decide_abort(s, payment, reason_code="AB05", reason="timed out")
    assert state is State.ABORTING
    final = await coordinator.finish(s, store.rows[payment.payment_id], state)
    assert final is State.REJECTED
    assert ibps.kinds() == ["abort"]
    assert store.events(payment.payment_id)[-2:] == ["ABORTED_AT_IBPS", "REJECTED"]
    assert await coordinator.decide_commit(s, store.rows[payment.payment_id]) is State.REJECTED

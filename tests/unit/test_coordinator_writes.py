"""The coordinator's `_Writes`: what a transaction records reaches the tracked payments only once
`apply()` runs after the commit, as replacements of frozen payments; and the IBPS leg of a payment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fpslink.payments.domain import Payment, TimelineEntry
from fpslink.settlement.coordinator import Tracked, _Writes, ibps_leg
from fpslink.vocabulary import Direction, State
from ibps_wire.enums import TransferKind

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=1)


def accepted(payment_id: str) -> Payment:
    """A northbound payment accepted at T0: 1000.00 HKD to 917.70 CNY."""
    return Payment.from_row(
        {
            "payment_id": payment_id,
            "participant_id": "HKBANK01",
            "creditor_participant_id": "CNBANK01",
            "direction": "NORTHBOUND",
            "state": "ACCEPTED",
            "debtor_account_id": "HK1",
            "creditor_account_id": "CN1",
            "creditor_proxy": None,
            "creditor_masked_name": "张*明",
            "source_minor": 100_000,
            "source_currency": "HKD",
            "target_minor": 91_770,
            "target_currency": "CNY",
            "amount_type": "SEND",
            "mid_rate": "0.920000",
            "rate": "0.917700",
            "spread_bps": "25",
            "quote_id": None,
            "purpose": "FAMILY_SUPPORT",
            "remittance_info": None,
            "end_to_end_id": None,
            "reason_code": None,
            "reason": None,
            "business_date": "2026-11-27",
            "limit_minor": 100_000,
            "limit_currency": "HKD",
            "attempts": 0,
            "created_at": T0,
            "updated_at": T0,
            "decided_at": None,
            "settled_at": None,
        }
    )


def test_nothing_changes_before_apply() -> None:
    original = accepted("p1")
    tracked = Tracked(original)
    writes = _Writes(NOW)
    writes.change(tracked, state=State.COMMITTING, updated_at=NOW, decided_at=NOW)
    writes.event(tracked, "DECIDED_COMMIT", "both ledgers prepared")

    assert tracked.payment is original and tracked.events == []
    assert writes.rows() == [("p1", TimelineEntry(NOW, "DECIDED_COMMIT", "both ledgers prepared"))]

    writes.apply()

    assert tracked.state is State.COMMITTING
    assert tracked.payment == replace(original, state=State.COMMITTING, updated_at=NOW, decided_at=NOW)
    assert original.state is State.ACCEPTED, "the payment read before is left as it was"
    assert tracked.events == [TimelineEntry(NOW, "DECIDED_COMMIT", "both ledgers prepared")]


def test_changes_apply_in_the_order_they_were_recorded() -> None:
    tracked = Tracked(accepted("p1"))
    writes = _Writes(NOW)
    writes.change(tracked, state=State.ABORTING, reason_code="AB05")
    writes.change(tracked, state=State.REJECTED)
    writes.apply()
    assert (tracked.state, tracked.payment.reason_code) == (State.REJECTED, "AB05")


def test_keep_forgets_the_payments_a_statement_did_not_move() -> None:
    ours, theirs = Tracked(accepted("ours")), Tracked(accepted("theirs"))
    writes = _Writes(NOW)
    for tracked in (ours, theirs):
        writes.change(tracked, state=State.COMMITTING)
        writes.event(tracked, "DECIDED_COMMIT")
    writes.keep({"ours"})
    assert [payment_id for payment_id, _ in writes.rows()] == ["ours"]

    writes.apply()

    assert ours.state is State.COMMITTING and [e.event for e in ours.events] == ["DECIDED_COMMIT"]
    assert theirs.state is State.ACCEPTED and theirs.events == []


def test_an_unknown_field_fails_at_apply_not_silently() -> None:
    tracked = Tracked(accepted("p1"))
    writes = _Writes(NOW)
    writes.change(tracked, stat=State.COMMITTING)
    with pytest.raises(TypeError):
        writes.apply()


def test_the_ibps_leg_credits_northbound_and_debits_southbound() -> None:
    north = accepted("p1")
    assert ibps_leg(north) == (TransferKind.CREDIT, north.creditor_account_id, north.target_minor)
    south = replace(north, direction=Direction.SOUTHBOUND)
    assert ibps_leg(south) == (TransferKind.DEBIT, south.debtor_account_id, south.source_minor)
    with pytest.raises(ValueError, match="no IBPS leg"):
        ibps_leg(replace(north, creditor_account_id=None))

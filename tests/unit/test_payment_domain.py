"""`Payment` and `Transfer`: a stored row decodes to typed fields and encodes back to the same row."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fpslink.fx.domain import AmountType
from fpslink.ledger.domain import Transfer
from fpslink.ledger.models import ledger_transfers
from fpslink.money import Currency
from fpslink.payments.domain import Payment, TimelineEntry, decimal_text
from fpslink.payments.models import payments
from fpslink.vocabulary import Direction, State, TransferKind, TransferStatus

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

SETTLED_ROW: dict[str, Any] = {
    "payment_id": "0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11",
    "participant_id": "HKBANK01",
    "creditor_participant_id": "CNBANK01",
    "direction": "NORTHBOUND",
    "state": "SETTLED",
    "debtor_account_id": "HK3F9A0C21B7D4E5F6",
    "creditor_account_id": "CN0A1B2C3D4E5F6A7B",
    "creditor_proxy": "+8613900000001",
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
    "remittance_info": "rent",
    "end_to_end_id": "E2E-1",
    "reason_code": None,
    "reason": None,
    "business_date": "2026-11-27",
    "limit_minor": 100_000,
    "limit_currency": "HKD",
    "attempts": 0,
    "created_at": T0,
    "updated_at": T0,
    "decided_at": T0,
    "settled_at": T0,
}

REJECTED_ROW: dict[str, Any] = {
    **SETTLED_ROW,
    "creditor_participant_id": None,
    "state": "REJECTED",
    "creditor_account_id": None,
    "creditor_masked_name": None,
    "source_minor": None,
    "target_minor": None,
    "target_currency": None,
    "amount_type": "RECEIVE",
    "mid_rate": None,
    "rate": None,
    "spread_bps": None,
    "remittance_info": None,
    "end_to_end_id": None,
    "reason_code": "BE23",
    "reason": "no account is registered for +8613900000001",
    "limit_minor": 0,
    "settled_at": None,
}
"""A RECEIVE payment rejected before its creditor was known: every nullable column NULL."""


def test_a_field_per_column_in_the_tables_order() -> None:
    columns = [c.name for c in payments.c]
    assert [f.name for f in fields(Payment)] == columns
    assert list(Payment.from_row(SETTLED_ROW).values()) == columns


@pytest.mark.parametrize("row", [SETTLED_ROW, REJECTED_ROW], ids=["settled", "nulls"])
def test_a_stored_row_reads_and_writes_back_unchanged(row: dict[str, Any]) -> None:
    assert Payment.from_row(row).values() == row


def test_the_stored_text_decodes_to_enums_decimals_and_a_date() -> None:
    payment = Payment.from_row(SETTLED_ROW)
    assert payment.direction is Direction.NORTHBOUND
    assert payment.state is State.SETTLED
    assert (payment.source_currency, payment.target_currency, payment.limit_currency) == (
        Currency.HKD,
        Currency.CNY,
        Currency.HKD,
    )
    assert payment.amount_type is AmountType.SEND
    assert (payment.mid_rate, payment.rate, payment.spread_bps) == (
        Decimal("0.920000"),
        Decimal("0.917700"),
        Decimal(25),
    )
    assert payment.business_date == date(2026, 11, 27)
    assert isinstance(payment.source_minor, int) and not isinstance(payment.source_minor, bool)


def test_null_columns_read_as_none() -> None:
    payment = Payment.from_row(REJECTED_ROW)
    assert payment.target_currency is None
    assert payment.rate is payment.mid_rate is payment.spread_bps is None
    assert payment.source_minor is payment.target_minor is payment.settled_at is None


def test_a_rate_reads_back_as_exactly_the_text_stored() -> None:
    """Trailing zeros are part of the rate the payment was bound at: they survive the round trip."""
    payment = Payment.from_row(SETTLED_ROW)
    assert decimal_text(payment.rate) == "0.917700"
    assert decimal_text(None) is None


@pytest.mark.parametrize(
    ("column", "value"),
    [("state", "LOST"), ("direction", "EASTBOUND"), ("source_currency", "USD"), ("amount_type", "BOTH")],
)
def test_a_value_outside_the_vocabulary_is_refused(column: str, value: str) -> None:
    with pytest.raises(ValueError, match=value):
        Payment.from_row({**SETTLED_ROW, column: value})


def test_a_change_is_a_new_payment() -> None:
    payment = Payment.from_row(SETTLED_ROW)
    changed = replace(payment, state=State.REJECTED)
    assert payment.state is State.SETTLED and changed.state is State.REJECTED
    with pytest.raises(AttributeError):
        payment.state = State.REJECTED  # type: ignore[misc]


rates = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=0, max_value=100)
minors = st.none() | st.integers(min_value=1, max_value=10**14)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
texts = st.none() | st.text(max_size=20)


@st.composite
def stored_payments(draw: st.DrawFn) -> Payment:
    return Payment(
        payment_id=draw(st.uuids()).hex,
        participant_id=draw(st.text(min_size=1, max_size=10)),
        creditor_participant_id=draw(texts),
        direction=draw(st.sampled_from(Direction)),
        state=draw(st.sampled_from(State)),
        debtor_account_id=draw(st.text(min_size=1, max_size=10)),
        creditor_account_id=draw(texts),
        creditor_proxy=draw(texts),
        creditor_masked_name=draw(texts),
        source_minor=draw(minors),
        source_currency=draw(st.sampled_from(Currency)),
        target_minor=draw(minors),
        target_currency=draw(st.none() | st.sampled_from(Currency)),
        amount_type=draw(st.sampled_from(AmountType)),
        mid_rate=draw(rates),
        rate=draw(rates),
        spread_bps=draw(rates),
        quote_id=draw(texts),
        purpose=draw(st.text(min_size=1, max_size=10)),
        remittance_info=draw(texts),
        end_to_end_id=draw(texts),
        reason_code=draw(texts),
        reason=draw(texts),
        business_date=draw(st.dates()),
        limit_minor=draw(st.integers(min_value=0, max_value=10**14)),
        limit_currency=draw(st.sampled_from(Currency)),
        attempts=draw(st.integers(min_value=0, max_value=100)),
        created_at=draw(instants),
        updated_at=draw(instants),
        decided_at=draw(st.none() | instants),
        settled_at=draw(st.none() | instants),
    )


@given(stored_payments())
def test_any_payment_survives_its_stored_form(payment: Payment) -> None:
    row = payment.values()
    assert Payment.from_row(row) == payment
    assert Payment.from_row(row).values() == row
    assert all(not isinstance(v, float) for v in row.values())


def test_a_timeline_entry_without_detail() -> None:
    assert TimelineEntry(T0, "SETTLED") == TimelineEntry(T0, "SETTLED", None)


# the FPS ledger's transfer ---------------------------------------------------------------------

TRANSFER_ROW: dict[str, Any] = {
    "seq": 7,
    "payment_id": None,
    "kind": "OPENING",
    "debit_account_id": "FPS-FUNDING-HKD",
    "credit_account_id": "HK3F9A0C21B7D4E5F6",
    "currency": "HKD",
    "amount_minor": 100,
    "status": "POSTED",
    "created_at": T0,
    "resolved_at": T0,
}


def test_a_transfer_reads_typed_and_writes_back_every_column_but_seq() -> None:
    transfer = Transfer.from_row(TRANSFER_ROW)
    assert (transfer.kind, transfer.status, transfer.currency) == (
        TransferKind.OPENING,
        TransferStatus.POSTED,
        Currency.HKD,
    )
    assert list(transfer.values()) == [c.name for c in ledger_transfers.c if c.name != "seq"]
    assert transfer.values() == {k: v for k, v in TRANSFER_ROW.items() if k != "seq"}


def test_a_pending_transfer_has_no_resolution() -> None:
    pending = Transfer.from_row({**TRANSFER_ROW, "status": "PENDING", "resolved_at": None})
    assert pending.status is TransferStatus.PENDING and pending.resolved_at is None
    assert pending.values()["resolved_at"] is None


def test_replaced_is_dataclasses_replace() -> None:
    payment = Payment.from_row(SETTLED_ROW)
    changes: dict[str, Any] = {"state": State.COMMITTING, "updated_at": T0, "attempts": 3, "reason": "x"}
    assert payment.replaced(**changes) == replace(payment, **changes)
    assert payment.replaced() == payment
    for field in fields(Payment):  # every field, first and last included, lands in its own place
        value = object()
        assert getattr(payment.replaced(**{field.name: value}), field.name) is value
    with pytest.raises(TypeError, match="no field 'stat'"):
        payment.replaced(stat=State.SETTLED)

"""Acceptance of a batch (step 1 of settlement) on an in-memory store: keys, quotes, limits, funds.

The batch is read and locked, decided in arrival order by `reservation.plan`, and written in one
transaction; these tests check what each admission learns and what the transaction leaves behind,
without a database (tests/integration/test_gw_batching.py and test_gw_concurrency.py run the same
code on PostgreSQL).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from fpslink.config import Settings
from fpslink.fx.domain import AmountType, Conversion
from fpslink.money import Currency, Money
from fpslink.payments.acceptance import Acceptance, Admission, accept_many
from fpslink.vocabulary import State, TransferKind, TransferStatus

from .settlement_fakes import T0, FakeAcceptanceStore, FakeQuote, StoreDown, accepted

DAY = ("HK0001", "NORTHBOUND", "DAY", "2026-11-27")
YEAR = ("HK0001", "NORTHBOUND", "YEAR", "2026")
CONVERSION = Conversion(
    source=Money(Decimal("1000.00"), Currency.HKD),
    target=Money(Decimal("917.70"), Currency.CNY),
    mid_rate=Decimal("0.920000"),
    rate=Decimal("0.917700"),
    spread_bps=Decimal("25"),
    amount_type=AmountType.SEND,
)


def admission(n: int, *, key: str | None = None, quote_id: str | None = None) -> Admission:
    payment = replace(accepted(str(uuid.UUID(int=n))), quote_id=quote_id)
    return Admission(
        scope="HKBANK01", key=key or f"key-{n}", fingerprint="fp", payment=payment, conversion=CONVERSION
    )


def funded(balance_minor: int = 1_000_000) -> FakeAcceptanceStore:
    return FakeAcceptanceStore(funds={"HK0001": ("HKD", balance_minor, 0)})


def acceptance(store: FakeAcceptanceStore) -> Acceptance:
    return Acceptance(store=store, settings=Settings(), clock=lambda: T0)


async def test_a_batch_is_accepted_in_one_transaction() -> None:
    store = funded()
    batch = [admission(1), admission(2)]

    tracked = await accept_many(acceptance(store), batch)

    assert [t.payment_id for t in tracked] == [a.payment_id for a in batch]
    assert all(t.state is State.ACCEPTED for t in tracked)
    assert [e.event for e in tracked[0].events] == [
        "ACCEPTED",
        "FX_FIXED",
        "LIMITS_RESERVED",
        "PREPARED_AT_FPS",
    ]
    assert tracked[0].events[1].detail == (
        "1000.00 HKD -> 917.70 CNY at 0.917700 (mid 0.920000, spread 25 bps)"
    )
    assert store.commits == 1
    assert store.usage == {DAY: 200_000, YEAR: 200_000}
    assert store.funds["HK0001"] == ("HKD", 1_000_000, 200_000), "each payment's amount is held"
    assert [(t.kind, t.amount_minor, t.status) for t in store.transfers] == [
        (TransferKind.DEBIT, 100_000, TransferStatus.PENDING)
    ] * 2
    assert set(store.keys) == {("HKBANK01", "key-1"), ("HKBANK01", "key-2")}
    assert store.completed == [] and store.webhooks == []


async def test_a_key_twice_in_one_batch_binds_once() -> None:
    store = funded()
    first, second = admission(1, key="same"), admission(2, key="same")

    tracked = await accept_many(acceptance(store), [first, second])

    assert [t.payment_id for t in tracked] == [first.payment_id]
    assert second.key_taken and second.tracked is None
    assert store.usage[DAY] == 100_000


async def test_a_key_bound_before_drops_out_of_the_batch() -> None:
    store = funded()
    store.keys[("HKBANK01", "key-1")] = {"payment_id": "earlier"}
    taken, fresh = admission(1), admission(2)

    tracked = await accept_many(acceptance(store), [taken, fresh])

    assert taken.key_taken and [t.payment_id for t in tracked] == [fresh.payment_id]


async def test_a_quote_used_meanwhile_rejects_that_payment_only() -> None:
    store = funded()
    store.quotes["q-used"] = FakeQuote(expires_at=T0 + timedelta(minutes=5), payment_id="someone else")
    store.quotes["q-fresh"] = FakeQuote(expires_at=T0 + timedelta(minutes=5))
    used, fresh = admission(1, quote_id="q-used"), admission(2, quote_id="q-fresh")

    tracked = await accept_many(acceptance(store), [used, fresh])

    assert [t.payment_id for t in tracked] == [fresh.payment_id]
    assert used.tracked is not None and used.tracked.state is State.REJECTED
    assert used.tracked.payment.reason_code == "QUOTE_USED"
    assert used.tracked.payment.limit_minor == 0, "a rejected payment keeps no limit usage"
    assert [e.event for e in used.tracked.events] == ["REJECTED"]
    assert store.quotes["q-fresh"].payment_id == fresh.payment_id
    assert store.usage[DAY] == 100_000, "only the accepted payment counts"
    assert store.completed == [("HKBANK01", "key-1")] and store.webhooks == [used.payment_id]
    assert store.payments[used.payment_id].state is State.REJECTED


async def test_funds_are_decided_in_arrival_order() -> None:
    store = funded(balance_minor=150_000)
    first, second = admission(1), admission(2)

    await accept_many(acceptance(store), [first, second])

    assert first.tracked is not None and first.tracked.state is State.ACCEPTED
    assert second.tracked is not None and second.tracked.payment.reason_code == "AM04"
    assert store.funds["HK0001"] == ("HKD", 150_000, 100_000)


async def test_the_daily_limit_refuses_what_would_exceed_it() -> None:
    store = funded()
    store.usage[DAY] = 950_000  # 9,500.00 of the 10,000.00 HKD a day already used

    await accept_many(acceptance(store), [admission(1)])

    assert store.payments[str(uuid.UUID(int=1))].reason_code == "AM14"
    assert store.usage[DAY] == 950_000


async def test_a_failed_write_leaves_nothing_behind() -> None:
    store = funded()
    store.fail_write = True
    batch = [admission(1), admission(2)]

    with pytest.raises(StoreDown):
        await accept_many(acceptance(store), batch)

    assert all(a.tracked is None for a in batch)
    assert store.commits == 0 and store.keys == {} and store.usage == {} and store.payments == {}
    assert store.funds["HK0001"] == ("HKD", 1_000_000, 0)

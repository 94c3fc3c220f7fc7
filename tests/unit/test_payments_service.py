"""Submitting a payment, end to end through the real acceptance and coordinator, on in-memory stores.

`PaymentsService` is built here as the gateway builds it, with fakes for what touches the database
and IBPS (`settlement_fakes`): the checks before a batch, the batch itself, the rejections recorded
without one, replays of a key, and who may read a payment. The same flows run on PostgreSQL and
mock_ibps in tests/integration/test_gw_settlement.py, test_gw_idempotency.py and
test_gw_rejections.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fpslink.config import Settings
from fpslink.directory.service import ResolvedProxy
from fpslink.errors import InvalidRequest, NotFound
from fpslink.money import Currency
from fpslink.participants.repository import AccountRecord
from fpslink.payments.acceptance import Acceptance
from fpslink.payments.domain import Payment, TimelineRow
from fpslink.payments.service import PaymentCommand, PaymentsService
from fpslink.principal import Principal
from fpslink.settlement.coordinator import Settlement
from fpslink.vocabulary import State, Status, System

from .settlement_fakes import (
    FakeAcceptanceStore,
    FakeCircuit,
    FakeDirectory,
    FakeFx,
    FakeIbps,
    FakePaymentsStore,
    FakeStore,
)

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # 10:00 in Hong Kong and Shanghai
HK_BANK = Principal(participant_id="HKBANK01", system=System.FPS)
CN_BANK = Principal(participant_id="CNBANK01", system=System.IBPS)
ACCOUNTS = {
    "HK0001": AccountRecord("HK0001", "HKBANK01", System.FPS, Currency.HKD, "Chan Tai Man"),
    "CN0001": AccountRecord("CN0001", "CNBANK01", System.IBPS, Currency.CNY, "Zhang Ming"),
}
PROXY = "+8613800138000"


@dataclass
class World:
    """One gateway's payment path on fakes that share their tables, as one database would."""

    payments: dict[str, Payment] = field(default_factory=dict)
    timeline: list[TimelineRow] = field(default_factory=list)
    keys: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)
    webhooks: list[str] = field(default_factory=list)
    completed: list[tuple[str, str]] = field(default_factory=list)
    ibps: FakeIbps = field(default_factory=FakeIbps)
    circuit: FakeCircuit = field(default_factory=FakeCircuit)
    directory: FakeDirectory = field(default_factory=FakeDirectory)

    def __post_init__(self) -> None:
        self.directory.proxies[PROXY] = ResolvedProxy(
            proxy_value=PROXY,
            account_id="CN0001",
            participant_id="CNBANK01",
            system=System.IBPS,
            currency=Currency.CNY,
            holder_name="Zhang Ming",
        )
        self.accepting = FakeAcceptanceStore(
            keys=self.keys,
            payments=self.payments,
            timeline=self.timeline,
            funds={"HK0001": ("HKD", 5_000_000, 0)},
            completed=self.completed,
            webhooks=self.webhooks,
        )
        self.settling = FakeStore(rows=self.payments, timeline=self.timeline, webhooks=self.webhooks)
        settings = Settings()
        self.service = PaymentsService(
            FakePaymentsStore(
                ACCOUNTS,
                self.keys,
                self.payments,
                self.timeline,
                self.webhooks,
                self.completed,
                self.accepting.details,
            ),
            directory=self.directory,
            fx=FakeFx(),
            ibps=self.circuit,
            acceptance=Acceptance(store=self.accepting, settings=settings, clock=lambda: NOW),
            settlement=Settlement(store=self.settling, ibps=self.ibps, clock=lambda: NOW),
            settings=settings,
            clock=lambda: NOW,
            crash_hook=lambda point: None,
        )


def northbound(amount: str = "1000.00", **changes: object) -> PaymentCommand:
    values: dict[str, object] = {
        "debtor_account_id": "HK0001",
        "creditor_proxy": None,
        "creditor_account_id": "CN0001",
        "amount": Decimal(amount),
        "currency": Currency.HKD,
        "quote_id": None,
        "purpose": "FAMILY_SUPPORT",
        "remittance_info": None,
        "end_to_end_id": None,
    }
    values.update(changes)
    return PaymentCommand(**values)  # type: ignore[arg-type]


async def test_a_payment_settles_and_a_replay_of_its_key_answers_the_same() -> None:
    w = World()

    result = await w.service.submit(HK_BANK, key="k1", command=northbound())

    payment = result.payment
    assert (result.http_status, result.replayed, payment.state) == (201, False, State.SETTLED)
    assert (payment.source_minor, payment.target_minor) == (100_000, 91_770)
    assert (
        payment.creditor_masked_name
        == ResolvedProxy("", "", "", System.IBPS, Currency.CNY, "Zhang Ming").masked_name
    )
    assert [e.event for e in result.events][:4] == [
        "ACCEPTED",
        "FX_FIXED",
        "LIMITS_RESERVED",
        "PREPARED_AT_FPS",
    ]
    assert result.events[-1].event == "SETTLED"
    assert w.ibps.kinds() == ["prepare", "commit"], "a batch of one makes single calls"
    assert w.payments[payment.payment_id] == payment

    again = await w.service.submit(HK_BANK, key="k1", command=northbound())

    assert (again.http_status, again.replayed, again.payment) == (201, True, payment)
    assert w.ibps.kinds() == ["prepare", "commit"], "a replay reaches neither IBPS nor a batch"


async def test_a_key_reused_for_another_payment_is_refused() -> None:
    w = World()
    await w.service.submit(HK_BANK, key="k1", command=northbound())
    with pytest.raises(InvalidRequest) as refused:
        await w.service.submit(HK_BANK, key="k1", command=northbound("2.00"))
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"


async def test_another_banks_account_is_not_found_and_nothing_is_recorded() -> None:
    w = World()
    with pytest.raises(NotFound) as missing:
        await w.service.submit(CN_BANK, key="k1", command=northbound())
    assert missing.value.code == "ACCOUNT_NOT_FOUND"
    assert w.payments == {} and w.keys == {}


async def test_an_open_circuit_rejects_before_any_batch_with_the_key_completed() -> None:
    w = World()
    w.circuit.circuit_open = True

    result = await w.service.submit(HK_BANK, key="k1", command=northbound())

    assert (result.http_status, result.payment.state, result.payment.reason_code) == (
        201,
        State.REJECTED,
        "AB06",
    )
    assert result.payment.limit_minor == 0
    assert [e.event for e in result.events] == ["REJECTED"]
    assert w.ibps.calls == [] and w.accepting.commits == 0
    assert w.keys[("HKBANK01", "k1")]["payment_id"] == result.payment.payment_id
    assert w.webhooks == [result.payment.payment_id]
    replay = await w.service.submit(HK_BANK, key="k1", command=northbound())
    assert replay.replayed and replay.payment == result.payment


async def test_a_proxy_is_resolved_and_an_unknown_one_rejected() -> None:
    w = World()
    paid = await w.service.submit(
        HK_BANK, key="k1", command=northbound(creditor_account_id=None, creditor_proxy="+86 138 0013 8000")
    )
    assert paid.payment.creditor_proxy == PROXY and paid.payment.creditor_account_id == "CN0001"
    assert paid.payment.state is State.SETTLED

    unknown = await w.service.submit(
        HK_BANK, key="k2", command=northbound(creditor_account_id=None, creditor_proxy="0086 139 0013 9000")
    )
    assert (unknown.payment.state, unknown.payment.reason_code) == (State.REJECTED, "BE23")
    assert unknown.payment.creditor_masked_name is None

    w.directory.down = True
    silent = await w.service.submit(
        HK_BANK, key="k3", command=northbound(creditor_account_id=None, creditor_proxy="+86 138 0013 8000")
    )
    assert silent.payment.reason_code == "AB06"


@pytest.mark.parametrize("proxy", ["12", "13800138000", "138 0013 8000"])
async def test_a_malformed_proxy_is_a_bad_request_not_a_rejection(proxy: str) -> None:
    """A number without its country code included: the payment path does not guess +86."""
    w = World()
    with pytest.raises(InvalidRequest) as bad:
        await w.service.submit(
            HK_BANK, key="k1", command=northbound(creditor_account_id=None, creditor_proxy=proxy)
        )
    assert bad.value.code == "INVALID_PROXY" and w.payments == {}


async def test_the_per_transaction_limit_rejects_with_am02() -> None:
    w = World()
    result = await w.service.submit(HK_BANK, key="k1", command=northbound("10000.01"))
    assert (result.payment.state, result.payment.reason_code) == (State.REJECTED, "AM02")
    assert result.payment.target_minor is not None, "the FX bound before the refusal is on record"


async def test_a_prepare_ibps_refuses_ends_rejected_with_its_reason() -> None:
    w = World()
    w.ibps.default_prepare = "refuse"

    result = await w.service.submit(HK_BANK, key="k1", command=northbound())

    assert (result.payment.state, result.payment.reason_code) == (State.REJECTED, "AM04")
    assert w.settling.voided == [result.payment.payment_id]


async def test_a_payment_is_visible_to_its_two_banks_only() -> None:
    w = World()
    paid = await w.service.submit(HK_BANK, key="k1", command=northbound())
    payment_id = paid.payment.payment_id

    assert (await w.service.get_payment(CN_BANK, payment_id)).payment == paid.payment
    with pytest.raises(NotFound):
        await w.service.get_payment(Principal(participant_id="HKBANK02", system=System.FPS), payment_id)
    listed = await w.service.list_payments(
        HK_BANK,
        status=Status.SETTLED,
        direction=None,
        created_from=None,
        created_to=None,
        after=None,
        limit=10,
    )
    assert [p.payment_id for p in listed] == [payment_id]

"""In-memory stand-ins for the payment path's stores and IBPS, for acceptance's and the coordinator's
unit tests.

`FakeStore` keeps the contract `fpslink.settlement.store.SettlementStore` states: every move is a
compare-and-set on the payment's state, a step applies whole or not at all, and the FPS side, the
limits and the webhooks follow the decision; `FakeAcceptanceStore` keeps a transaction's writes until
it commits. `FakeIbps` answers from a script per payment and
records every call, so a test can say how many exchanges a batch cost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from fpslink.directory.service import ProxyLookupUnavailable, ResolvedProxy
from fpslink.errors import NotFound
from fpslink.fx.domain import AmountType, Conversion, RateSheet, convert
from fpslink.fx.service import Quote
from fpslink.ibps_client import IbpsClient, IbpsRefused, IbpsUnavailable
from fpslink.idempotency.repository import KeyRecord
from fpslink.iso20022.details import Details
from fpslink.ledger.domain import Transfer
from fpslink.money import Currency
from fpslink.participants.repository import AccountRecord
from fpslink.payments.domain import Payment, TimelineEntry, TimelineRow
from fpslink.payments.store import KeyClaim, PaymentPage
from fpslink.settlement.states import check_transition
from fpslink.settlement.store import Failure, Move, limit_releases
from fpslink.vocabulary import Direction, State
from ibps_wire.enums import Operation, Outcome, Reason, TransferStatus
from ibps_wire.schemas import BatchItem, BatchVerdict, Moved, Problem, TransferReferences, Verdict

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def accepted(payment_id: str, *, direction: Direction = Direction.NORTHBOUND) -> Payment:
    """An accepted payment of 1000.00 HKD to 917.70 CNY (or the other way round southbound)."""
    north = direction is Direction.NORTHBOUND
    return Payment(
        payment_id=payment_id,
        participant_id="HKBANK01" if north else "CNBANK01",
        creditor_participant_id="CNBANK01" if north else "HKBANK01",
        direction=direction,
        state=State.ACCEPTED,
        debtor_account_id="HK0001" if north else "CN0001",
        creditor_account_id="CN0001" if north else "HK0001",
        creditor_proxy=None,
        creditor_masked_name="Z*** M***",
        source_minor=100_000 if north else 91_770,
        source_currency=Currency.HKD if north else Currency.CNY,
        target_minor=91_770 if north else 100_000,
        target_currency=Currency.CNY if north else Currency.HKD,
        amount_type=AmountType.SEND,
        mid_rate=Decimal("0.920000"),
        rate=Decimal("0.917700"),
        spread_bps=Decimal("25"),
        quote_id=None,
        purpose="FAMILY_SUPPORT",
        remittance_info=None,
        end_to_end_id=None,
        reason_code=None,
        reason=None,
        business_date=date(2026, 11, 27),
        limit_minor=100_000,
        limit_currency=Currency.HKD,
        attempts=0,
        created_at=T0,
        updated_at=T0,
        decided_at=None,
        settled_at=None,
    )


class StoreDown(Exception):
    """The database went away in the middle of a step."""


@dataclass
class FakeStore:
    rows: dict[str, Payment] = field(default_factory=dict)
    timeline: list[TimelineRow] = field(default_factory=list)
    posted: list[str] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)
    released: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    webhooks: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    down: bool = False

    @classmethod
    def holding(cls, payments: Iterable[Payment]) -> FakeStore:
        return cls(rows={p.payment_id: p for p in payments})

    def _step(self, name: str) -> None:
        self.steps.append(name)
        if self.down:
            raise StoreDown(name)

    def _move(self, move: Move, current: State, now: datetime) -> bool:
        check_transition(current, move.target)
        if self.rows[move.payment_id].state is not current:
            return False
        self.rows[move.payment_id] = replace(
            self.rows[move.payment_id], state=move.target, updated_at=now, **move.values
        )
        self.timeline.extend((move.payment_id, entry) for entry in move.events)
        return True

    async def decide(self, moves: Sequence[Move], now: datetime) -> set[str]:
        self._step("decide")
        moved = {m.payment_id for m in moves if self._move(m, State.ACCEPTED, now)}
        aborted = [m.payment for m in moves if m.payment_id in moved and m.target is not State.COMMITTING]
        self.posted += [m.payment_id for m in moves if m.payment_id in moved and m.target is State.COMMITTING]
        self.voided += [p.payment_id for p in aborted]
        for key, amount in limit_releases(aborted).items():
            self.released[key] = self.released.get(key, 0) + amount
        self.webhooks += [m.payment_id for m in moves if m.payment_id in moved and m.target is State.REJECTED]
        return moved

    async def finish(self, moves: Sequence[Move], failures: Sequence[Failure], now: datetime) -> set[str]:
        self._step("finish")
        moved = {m.payment_id for m in moves if self._move(m, m.payment.state, now)}
        self.timeline.extend(failures)
        self.webhooks += sorted(moved)
        return moved

    async def payments(self, payment_ids: Sequence[str]) -> dict[str, Payment]:
        self._step("read")
        return {i: self.rows[i] for i in payment_ids if i in self.rows}

    def events(self, payment_id: str) -> list[str]:
        return [entry.event for pid, entry in self.timeline if pid == payment_id]


Behaviour = Literal["ok", "refuse", "problem", "unknown", "unavailable", "wrong_body"]
"""How IBPS answers one call: prepared (or done), refused with a reason (a prepare's 200 REFUSED),
a 4xx problem, a 5xx inside a batch (unknown), no answer at all, or a 2xx that answers no prepare."""


@dataclass
class FakeIbps:
    """IBPS as the coordinator sees it; `prepare_item` and `finish_item` are the real client's."""

    prepares: dict[str, Behaviour] = field(default_factory=dict)
    finishes: dict[str, Behaviour] = field(default_factory=dict)
    alone: dict[str, Behaviour] = field(default_factory=dict)
    """How a single call (a repeat outside a batch) answers, where it differs from the batch."""
    batching: bool = True
    batch_down: bool = False
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    prepare_item = staticmethod(IbpsClient.prepare_item)
    finish_item = staticmethod(IbpsClient.finish_item)

    default_prepare: Behaviour = "ok"
    """How a prepare of a payment the script does not name answers."""

    def _behaviour(self, op: Operation, payment_id: str, *, alone: bool) -> Behaviour:
        if alone and payment_id in self.alone:
            return self.alone[payment_id]
        if op is Operation.PREPARE:
            return self.prepares.get(payment_id, self.default_prepare)
        return self.finishes.get(payment_id, "ok")

    async def batch(self, items: Sequence[BatchItem]) -> list[BatchVerdict]:
        self.calls.append(("batch", [f"{item.op.value}:{item.payment_id}" for item in items]))
        if self.batch_down:
            raise IbpsUnavailable("IBPS batch: no answer")
        return [self._item(item) for item in items]

    def _item(self, item: BatchItem) -> BatchVerdict:
        payment_id = str(item.payment_id)
        behaviour = self._behaviour(item.op, payment_id, alone=False)
        status, body = 200, _body(item.op, behaviour)
        if behaviour in ("problem", "unknown", "unavailable"):
            status = 409 if behaviour == "problem" else 503
            body = Problem(type="about:blank", title="no", status=status, detail="refused", code="CONFLICT")
        return BatchVerdict(payment_id=payment_id, op=item.op, status=status, body=body)

    async def prepare(
        self,
        *,
        payment_id: str,
        kind: object,
        account_id: str,
        amount_minor: int,
        references: TransferReferences | None = None,
    ) -> Verdict:
        self.calls.append(("prepare", [payment_id]))
        behaviour = self._behaviour(Operation.PREPARE, payment_id, alone=True)
        _raise_for(behaviour)
        return _verdict(behaviour)

    async def commit(self, payment_id: str) -> object:
        self.calls.append(("commit", [payment_id]))
        _raise_for(self._behaviour(Operation.COMMIT, payment_id, alone=True))
        return None

    async def abort(self, payment_id: str) -> object:
        self.calls.append(("abort", [payment_id]))
        _raise_for(self._behaviour(Operation.ABORT, payment_id, alone=True))
        return None

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def _verdict(behaviour: Behaviour) -> Verdict:
    if behaviour == "refuse":
        return Verdict(outcome=Outcome.REFUSED, reason_code=Reason.AM04, reason="insufficient funds")
    return Verdict(outcome=Outcome.PREPARED, reason_code=None, reason=None)


def _body(op: Operation, behaviour: Behaviour) -> Verdict | Moved:
    if op is Operation.PREPARE and behaviour != "wrong_body":
        return _verdict(behaviour)
    return Moved(status=TransferStatus.VOIDED if op is Operation.ABORT else TransferStatus.POSTED)


def _raise_for(behaviour: Behaviour) -> None:
    if behaviour in ("unavailable", "unknown"):
        raise IbpsUnavailable("IBPS: no answer within 2.00 s")
    if behaviour == "problem":
        raise IbpsRefused(409, "CONFLICT", "refused")


# acceptance ---------------------------------------------------------------------------------------


@dataclass
class FakeQuote:
    expires_at: datetime
    payment_id: str | None = None


@dataclass
class FakeAcceptanceStore:
    """Keys, quotes, limit usage and FPS funds in memory. A transaction stages its writes and
    applies them at `commit()`, so a batch that fails leaves the store as it was."""

    keys: dict[tuple[str, str], dict[str, object]] = field(default_factory=dict)
    quotes: dict[str, FakeQuote] = field(default_factory=dict)
    usage: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    funds: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    timeline: list[TimelineRow] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    completed: list[tuple[str, str]] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    details: dict[str, Details] = field(default_factory=dict)
    fail_write: bool = False
    commits: int = 0

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[FakeAcceptanceTx]:
        yield FakeAcceptanceTx(self)


class FakeAcceptanceTx:
    def __init__(self, store: FakeAcceptanceStore) -> None:
        self.store = store
        self.staged: list[Callable[[], None]] = []
        self.keys: dict[tuple[str, str], dict[str, object]] = {}
        self.used_quotes: set[str] = set()

    async def bind_keys(self, claims: Sequence[dict[str, object]]) -> set[tuple[str, str]]:
        bound = set()
        for claim in claims:
            ident = (str(claim["participant_id"]), str(claim["key"]))
            if ident not in self.store.keys and ident not in self.keys:
                self.keys[ident] = claim
                bound.add(ident)
        self.staged.append(lambda: self.store.keys.update(self.keys))
        return bound

    async def use_quote(self, *, quote_id: str, payment_id: str, now: datetime) -> bool:
        quote = self.store.quotes.get(quote_id)
        if (
            quote is None
            or quote.payment_id is not None
            or quote.expires_at <= now
            or quote_id in self.used_quotes
        ):
            return False
        self.used_quotes.add(quote_id)
        self.staged.append(lambda: setattr(quote, "payment_id", payment_id))
        return True

    async def lock(
        self, wanted: dict[tuple[str, str, str, str], tuple[str, int | None]], debtors: Sequence[str]
    ) -> tuple[dict[tuple[str, str, str, str], int], dict[str, tuple[str, int, int]]]:
        usage = {key: self.store.usage.get(key, 0) for key in wanted}
        return usage, {a: self.store.funds[a] for a in debtors if a in self.store.funds}

    async def write(
        self,
        *,
        usage: Mapping[tuple[str, str, str, str], tuple[int, int | None]],
        holds: Mapping[str, int],
        transfers: Sequence[Transfer],
        payments: Sequence[Payment],
        events: Sequence[TimelineRow],
        details: Sequence[tuple[str, Details]] = (),
    ) -> None:
        if self.store.fail_write:
            raise StoreDown("write")
        missing = set(holds) - set(self.store.funds)
        if missing:
            raise LookupError(f"holds on accounts the ledger lacks: {sorted(missing)}")

        def apply() -> None:
            for key, (used, _) in usage.items():
                self.store.usage[key] = used
            for account, amount in holds.items():
                currency, balance, held = self.store.funds[account]
                self.store.funds[account] = (currency, balance, held + amount)
            self.store.transfers.extend(transfers)
            self.store.payments.update((p.payment_id, p) for p in payments)
            self.store.timeline.extend(events)
            self.store.details.update(details)

        self.staged.append(apply)

    async def rejected(
        self, keys: Sequence[tuple[str, str]], payment_ids: Sequence[str], now: datetime
    ) -> None:
        self.staged.append(
            lambda: (self.store.completed.extend(keys), self.store.webhooks.extend(payment_ids))
        )

    async def commit(self) -> None:
        for apply in self.staged:
            apply()
        self.staged.clear()
        self.store.commits += 1


# the payment service -----------------------------------------------------------------------------


@dataclass
class FakePaymentsStore:
    """The payment service's own store, on the same dicts as the batch's fakes (`FakeWorld`)."""

    accounts: dict[str, AccountRecord]
    keys: dict[tuple[str, str], dict[str, object]]
    payments: dict[str, Payment]
    timeline: list[TimelineRow]
    webhooks: list[str]
    completed: list[tuple[str, str]]
    details: dict[str, Details] = field(default_factory=dict)
    """Shared with the acceptance store's, like the other dicts."""

    async def account(self, account_id: str) -> AccountRecord | None:
        return self.accounts.get(account_id)

    async def record_rejected(
        self, claim: KeyClaim, payment: Payment, event: TimelineEntry, details: Details | None
    ) -> bool:
        ident = (claim.scope, claim.key)
        if ident in self.keys:
            return False
        self.keys[ident] = {
            "participant_id": claim.scope,
            "key": claim.key,
            "endpoint": claim.endpoint,
            "fingerprint": claim.fingerprint,
            "payment_id": claim.payment_id,
            "lease_until": claim.lease_until,
            "completed_at": event.at,
        }
        self.payments[payment.payment_id] = payment
        self.timeline.append((payment.payment_id, event))
        self.webhooks.append(payment.payment_id)
        if details is not None:
            self.details[payment.payment_id] = details
        return True

    async def find_key(self, scope: str, key: str, now: datetime) -> KeyRecord | None:
        row = self.keys.get((scope, key))
        if row is None:
            return None
        completed = row.get("completed_at") or (now if (scope, key) in self.completed else None)
        return KeyRecord(
            scope=scope,
            key=key,
            endpoint=str(row["endpoint"]),
            fingerprint=str(row["fingerprint"]),
            payment_id=str(row["payment_id"]),
            response_status=None,
            response_body=None,
            lease_until=row["lease_until"],  # type: ignore[arg-type]
            completed_at=completed,  # type: ignore[arg-type]
        )

    async def complete_keys(self, idents: Sequence[tuple[str, str]], now: datetime) -> None:
        self.completed.extend(idents)

    async def payment(self, payment_id: str) -> Payment | None:
        return self.payments.get(payment_id)

    async def payment_with_timeline(
        self, payment_id: str
    ) -> tuple[Payment, list[TimelineEntry], Details | None] | None:
        payment = self.payments.get(payment_id)
        if payment is None:
            return None
        timeline = [entry for pid, entry in self.timeline if pid == payment_id]
        return payment, timeline, self.details.get(payment_id)

    async def page(self, page: PaymentPage) -> list[Payment]:
        found = [
            p
            for p in self.payments.values()
            if page.participant_id in (None, p.participant_id, p.creditor_participant_id)
            and (not page.states or p.state in page.states)
        ]
        return sorted(found, key=lambda p: (p.created_at, p.payment_id), reverse=True)[: page.limit]


@dataclass
class FakeDirectory:
    proxies: dict[str, ResolvedProxy] = field(default_factory=dict)
    down: bool = False

    async def resolve(self, e164: str) -> ResolvedProxy | None:
        if self.down:
            raise ProxyLookupUnavailable("no answer")
        return self.proxies.get(e164)


@dataclass
class FakeFx:
    rates: RateSheet = field(
        default_factory=lambda: RateSheet(mid_hkd_cny=Decimal("0.920000"), spread_bps=Decimal("25"))
    )
    quotes: dict[str, Quote] = field(default_factory=dict)

    def fresh_conversion(
        self, *, source: Currency, target: Currency, amount: Decimal, amount_type: AmountType
    ) -> Conversion:
        return convert(
            self.rates, source_currency=source, target_currency=target, amount=amount, amount_type=amount_type
        )

    async def get_quote(self, *, participant_id: str, quote_id: str) -> Quote:
        quote = self.quotes.get(quote_id)
        if quote is None or quote.participant_id != participant_id:
            raise NotFound(f"quote {quote_id} not found", code="QUOTE_NOT_FOUND")
        return quote


@dataclass
class FakeCircuit:
    circuit_open: bool = False

    def circuit_open_for(self, participant_id: str | None) -> bool:
        return self.circuit_open

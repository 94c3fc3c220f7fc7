"""Acceptance of a batch of payments in ONE transaction (docs/architecture.md#two-phase-settlement, step 1).

Each payment binds its idempotency key, uses its quote, reserves its limit usage and prepares the
FPS side; one that cannot (quote used, limit or funds short) is recorded REJECTED in the same
transaction instead, and the others go on. The usage rows and the debtors' balances are locked
(in one global order), the batch is decided in Python in arrival order, and the results are
written back with a fixed number of statements, whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from fpslink import pg
from fpslink.config import Settings
from fpslink.fx import repository as fx_repo
from fpslink.fx.domain import Conversion
from fpslink.idempotency import repository as idem_repo
from fpslink.iso20022.details import Details
from fpslink.ledger.domain import Transfer
from fpslink.limits import repository as limits_repo
from fpslink.limits import service as limits_service
from fpslink.limits.policy import UsageKey, usage_key
from fpslink.money import Money
from fpslink.payments import repository as payments_repo
from fpslink.payments import reservation
from fpslink.payments.domain import Payment, TimelineEntry, TimelineRow
from fpslink.settlement.coordinator import Tracked
from fpslink.uow import UnitOfWork, UnitsOfWork
from fpslink.vocabulary import Direction, Period, State
from fpslink.webhooks import outbox as webhook_outbox

ENDPOINT = "POST /v1/payments"


class Rejection(Exception):
    """A business rejection: the payment is recorded REJECTED with this reason code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def as_rejected(payment: Payment, rejection: Rejection, now: datetime) -> Payment:
    """The payment as recorded when it is refused before acceptance: decided at once, no limit
    usage kept, and no creditor's bank. Nothing was asked of the creditor's side, so its bank is
    not a party: it does not see the payment, nor is it told of it (webhooks); the creditor
    account stays on the row for the debtor's bank and the operator."""
    return replace(
        payment,
        creditor_participant_id=None,
        state=State.REJECTED,
        reason_code=rejection.code,
        reason=rejection.reason[:300],
        limit_minor=0,
        decided_at=now,
    )


@dataclass(slots=True)
class Admission:
    """A payment the request has bound (creditor, FX, per-transaction limit), ready to accept.

    `payment` is built once, in state ACCEPTED, as it is written if the batch accepts it;
    `conversion` keeps the bound amounts as `Money` for the reservation and the timeline.
    """

    scope: str
    key: str
    fingerprint: str
    payment: Payment
    conversion: Conversion
    details: Details | None = None
    """What a pacs.008 transaction was sent with: written with the payment, and given to IBPS."""
    key_taken: bool = False
    """Another request holds the idempotency key: answer as a replay of it."""
    tracked: Tracked | None = None
    """The payment as accepted (or rejected), once the batch has committed."""
    rejection: Rejection | None = None

    @property
    def payment_id(self) -> str:
        return self.payment.payment_id

    @property
    def direction(self) -> Direction:
        return self.payment.direction

    @property
    def quote_id(self) -> str | None:
        return self.payment.quote_id

    @property
    def now(self) -> datetime:
        """When the request was received: the payment's creation."""
        return self.payment.created_at


KeyRow = dict[str, object]
"""An idempotency key's row as acceptance binds it (`idempotency.repository.bind_many`)."""

Funds = dict[str, tuple[str, int, int]]
"""Account id -> (currency, balance, held) of the locked debtor accounts, in minor units."""


class AcceptanceTx(Protocol):
    """One acceptance transaction, in the order `accept_many` uses it; nothing of it is kept
    unless `commit()` is called."""

    async def bind_keys(self, claims: Sequence[KeyRow]) -> set[tuple[str, str]]:
        """Bind the keys no one holds; returns the (scope, key) pairs this call bound."""
        ...

    async def use_quote(self, *, quote_id: str, payment_id: str, now: datetime) -> bool:
        """Mark the quote used by the payment if it is unused and unexpired."""
        ...

    async def lock(
        self, wanted: dict[UsageKey, tuple[str, int | None]], debtors: Sequence[str]
    ) -> tuple[dict[UsageKey, int], Funds]:
        """Create the missing usage rows, then lock them and the debtors' accounts, in the one order
        every writer of them takes; returns what they hold."""
        ...

    async def write(
        self,
        *,
        usage: Mapping[UsageKey, tuple[int, int | None]],
        holds: Mapping[str, int],
        transfers: Sequence[Transfer],
        payments: Sequence[Payment],
        events: Sequence[TimelineRow],
        details: Sequence[tuple[str, Details]] = (),
    ) -> None:
        """Write the decided batch: usage, holds, pending FPS transfers, payments, timeline and what
        the payments sent as pacs.008 were sent with."""
        ...

    async def rejected(
        self, keys: Sequence[tuple[str, str]], payment_ids: Sequence[str], now: datetime
    ) -> None:
        """Complete the keys of payments rejected here and queue their webhooks."""
        ...

    async def commit(self) -> None: ...


class AcceptanceStore(Protocol):
    def begin(self) -> AbstractAsyncContextManager[AcceptanceTx]:
        """A new acceptance transaction, rolled back unless committed."""
        ...


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What acceptance uses: its store, the settings (limits, key leases) and the clock."""

    store: AcceptanceStore
    settings: Settings
    clock: Callable[[], datetime]


async def accept_many(acceptance: Acceptance, batch: list[Admission]) -> list[Tracked]:
    """Accept or reject every admission; returns the accepted payments (FPS side prepared).

    Read and lock, decide in pure code (`reservation.plan`), write. Each admission gets its
    tracked payment only once the transaction has committed; a failure raises for the whole batch."""
    settings = acceptance.settings
    now = acceptance.clock()
    async with acceptance.store.begin() as tx:
        live = await _bind_keys(settings, tx, batch)
        for a in live:
            if a.quote_id is not None and not await tx.use_quote(
                quote_id=a.quote_id, payment_id=a.payment_id, now=a.now
            ):
                a.rejection = Rejection("QUOTE_USED", f"quote {a.quote_id} was used or expired meanwhile")
        usage, holds, pending = await _reserve(settings, tx, [a for a in live if a.rejection is None])
        outcomes = [_accepted(settings, a, now) if a.rejection is None else _rejected(a) for a in live]
        if outcomes:
            # one statement, rather than five round trips each waiting for a CPU
            await tx.write(
                usage=usage,
                holds=holds,
                transfers=pending,
                payments=[payment for payment, _ in outcomes],
                events=[
                    (a.payment_id, e)
                    for a, (_, timeline) in zip(live, outcomes, strict=True)
                    for e in timeline
                ],
                details=[(a.payment_id, a.details) for a in live if a.details is not None],
            )
        rejected = [a for a in live if a.rejection is not None]
        await tx.rejected([(a.scope, a.key) for a in rejected], [a.payment_id for a in rejected], now)
        await tx.commit()
    for a, (payment, timeline) in zip(live, outcomes, strict=True):
        a.tracked = Tracked(payment, timeline, details=a.details)
    return [a.tracked for a in live if a.rejection is None and a.tracked is not None]


class _PgAcceptanceTx:
    def __init__(self, tx: UnitOfWork) -> None:
        self._tx = tx
        self._conn = tx.conn

    async def bind_keys(self, claims: Sequence[KeyRow]) -> set[tuple[str, str]]:
        return await idem_repo.bind_many(self._conn, claims)

    async def use_quote(self, *, quote_id: str, payment_id: str, now: datetime) -> bool:
        return await fx_repo.use_quote(self._conn, quote_id=quote_id, payment_id=payment_id, now=now)

    async def lock(
        self, wanted: dict[UsageKey, tuple[str, int | None]], debtors: Sequence[str]
    ) -> tuple[dict[UsageKey, int], Funds]:
        return await limits_repo.lock_usage_and_accounts(self._conn, wanted, debtors)

    async def write(
        self,
        *,
        usage: Mapping[UsageKey, tuple[int, int | None]],
        holds: Mapping[str, int],
        transfers: Sequence[Transfer],
        payments: Sequence[Payment],
        events: Sequence[TimelineRow],
        details: Sequence[tuple[str, Details]] = (),
    ) -> None:
        await payments_repo.write_accepted(
            await pg.raw(self._conn),
            usage=usage,
            holds=holds,
            transfers=transfers,
            rows=payments,
            events=events,
        )
        if details:  # payments sent as pacs.008 only: a JSON batch costs no statement more
            await self._tx.iso20022.add_details(details)

    async def rejected(
        self, keys: Sequence[tuple[str, str]], payment_ids: Sequence[str], now: datetime
    ) -> None:
        await idem_repo.complete_many(self._conn, keys, now=now)
        await webhook_outbox.payments_changed(self._conn, payment_ids, now)

    async def commit(self) -> None:
        await self._tx.commit()


class PgAcceptanceStore:
    """Acceptance on PostgreSQL: a unit of work per batch."""

    def __init__(self, uow: UnitsOfWork) -> None:
        self._uow = uow

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AcceptanceTx]:
        async with self._uow() as tx:
            yield _PgAcceptanceTx(tx)


async def _bind_keys(settings: Settings, tx: AcceptanceTx, batch: list[Admission]) -> list[Admission]:
    """Claim every key once; admissions whose key is taken (here or before) drop out."""
    seen: set[tuple[str, str]] = set()
    rows: list[KeyRow] = []
    for a in batch:
        ident = (a.scope, a.key)
        if ident in seen:
            a.key_taken = True
            continue
        seen.add(ident)
        rows.append(
            {
                "participant_id": a.scope,
                "key": a.key,
                "endpoint": ENDPOINT,
                "fingerprint": a.fingerprint,
                "payment_id": a.payment_id,
                "created_at": a.now,
                "lease_until": a.now + timedelta(seconds=settings.request_lease_s),
                "completed_at": None,
                "expires_at": a.now + timedelta(hours=settings.idempotency_ttl_h),
            }
        )
    bound = await tx.bind_keys(rows)
    live = []
    for a in batch:
        if a.key_taken:
            continue
        if (a.scope, a.key) in bound:
            live.append(a)
        else:
            a.key_taken = True
    return live


async def _reserve(
    settings: Settings, tx: AcceptanceTx, batch: list[Admission]
) -> tuple[dict[UsageKey, tuple[int, int | None]], dict[str, int], list[Transfer]]:
    """Lock the batch's usage rows and debtor balances, let `reservation.plan` decide in arrival
    order, and mark the refused admissions; returns what to write (usage, holds, pending transfers)."""
    asks = [_ask(settings, a) for a in batch]
    wanted = {line.key: (ask.limit_currency.value, line.cap_minor) for ask in asks for line in ask.lines}
    debtors = [ask.debtor_account_id for ask in asks if ask.direction is Direction.NORTHBOUND]
    usage, funds = await tx.lock(wanted, debtors)
    decided = reservation.plan(asks, usage, funds)
    for a in batch:
        if (refusal := decided.refused.get(a.payment_id)) is not None:
            a.rejection = Rejection(refusal.code, refusal.reason)
    return decided.usage, decided.holds, decided.pending


def _ask(settings: Settings, a: Admission) -> reservation.Ask:
    limits = limits_service.limits_for(settings, a.direction)
    debtor = a.payment.debtor_account_id
    return reservation.Ask(
        payment_id=a.payment_id,
        direction=a.direction,
        limit_currency=limits.currency,
        limit_minor=a.payment.limit_minor,
        lines=tuple(
            reservation.LimitLine(
                period=period,
                key=usage_key(debtor, a.direction, period, a.payment.business_date),
                cap_minor=limits_service.limit_minor(limits, period),
                limit=limits.for_period(period),
            )
            for period in Period
        ),
        debtor_account_id=debtor,
        creditor_account_id=a.payment.creditor_account_id,
        source=a.conversion.source,
        target=a.conversion.target,
        now=a.now,
    )


def _accepted(settings: Settings, a: Admission, now: datetime) -> tuple[Payment, list[TimelineEntry]]:
    """`updated_at` is the batch's time, not the request's: the live window of recovery runs from
    when the batch took the payment, however long it queued (settlement.recovery)."""
    conv = a.conversion
    payment = a.payment.replaced(updated_at=now)
    limits = limits_service.limits_for(settings, a.direction)
    at = a.now
    timeline = [
        TimelineEntry(at, "ACCEPTED", f"{a.direction.value} to {payment.creditor_masked_name}"),
        TimelineEntry(
            at,
            "FX_FIXED",
            f"{conv.source} -> {conv.target} at {conv.rate} "
            f"(mid {conv.mid_rate}, spread {conv.spread_bps} bps"
            + (f", quote {a.quote_id})" if a.quote_id else ")"),
        ),
        TimelineEntry(at, "LIMITS_RESERVED", f"{Money.from_minor(payment.limit_minor, limits.currency)}"),
        TimelineEntry(at, "PREPARED_AT_FPS", "funds held" if a.direction is Direction.NORTHBOUND else None),
    ]
    return payment, timeline


def _rejected(a: Admission) -> tuple[Payment, list[TimelineEntry]]:
    assert a.rejection is not None
    code, reason = a.rejection.code, a.rejection.reason
    payment = as_rejected(a.payment, a.rejection, a.now)
    return payment, [TimelineEntry(a.now, "REJECTED", f"{code}: {reason}")]

"""Acceptance of a batch of payments in ONE transaction (docs/architecture.md#two-phase-settlement, step 1).

Each payment binds its idempotency key, uses its quote, reserves its limit usage and prepares the
FPS side; one that cannot (quote used, limit or funds short) is recorded REJECTED in the same
transaction instead, and the others go on. The usage rows and the debtors' balances are locked
(in one global order), the batch is decided in Python in arrival order, and the results are
written back with a fixed number of statements, whatever the batch's size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.context import Gateway
from fpslink.fx import repository as fx_repo
from fpslink.fx.domain import Conversion
from fpslink.idempotency import repository as idem_repo
from fpslink.ledger.domain import Transfer
from fpslink.limits import repository as limits_repo
from fpslink.limits import service as limits_service
from fpslink.limits.policy import UsageKey
from fpslink.money import Money
from fpslink.payments import repository as payments_repo
from fpslink.payments import reservation
from fpslink.payments.domain import Payment, TimelineEntry, TimelineRow
from fpslink.settlement.coordinator import Tracked
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
    """The payment as recorded when acceptance refuses it: decided at once, no limit usage kept."""
    return replace(
        payment,
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


async def accept_many(gw: Gateway, batch: list[Admission]) -> list[Tracked]:
    """Accept or reject every admission; returns the accepted payments (FPS side prepared)."""
    now = gw.clock()
    async with gw.engine.begin() as conn:
        live = await _bind_keys(gw, conn, batch)
        for a in live:
            if a.quote_id is not None and not await fx_repo.use_quote(
                conn, quote_id=a.quote_id, payment_id=a.payment_id, now=a.now
            ):
                a.rejection = Rejection("QUOTE_USED", f"quote {a.quote_id} was used or expired meanwhile")
        usage, holds, pending = await _reserve(gw, conn, [a for a in live if a.rejection is None])
        written: list[Payment] = []
        events: list[TimelineRow] = []
        for a in live:
            payment, timeline = _accepted(gw, a) if a.rejection is None else _rejected(a)
            written.append(payment)
            events.extend((a.payment_id, e) for e in timeline)
            a.tracked = Tracked(payment, timeline)
        if written:
            # one statement, rather than five round trips each waiting for a CPU
            await payments_repo.write_accepted(
                await pg.raw(conn), usage=usage, holds=holds, transfers=pending, rows=written, events=events
            )
        rejected = [a for a in live if a.rejection is not None]
        await idem_repo.complete_many(conn, [(a.scope, a.key) for a in rejected], now=now)
        await webhook_outbox.payments_changed(conn, [a.payment_id for a in rejected], now)
    return [a.tracked for a in live if a.rejection is None and a.tracked is not None]


async def _bind_keys(gw: Gateway, conn: AsyncConnection, batch: list[Admission]) -> list[Admission]:
    """Claim every key once; admissions whose key is taken (here or before) drop out."""
    settings = gw.settings
    seen: set[tuple[str, str]] = set()
    rows = []
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
    bound = await idem_repo.bind_many(conn, rows)
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
    gw: Gateway, conn: AsyncConnection, batch: list[Admission]
) -> tuple[dict[UsageKey, tuple[int, int | None]], dict[str, int], list[Transfer]]:
    """Lock the batch's usage rows and debtor balances, let `reservation.plan` decide in arrival
    order, and mark the refused admissions; returns what to write (usage, holds, pending transfers)."""
    asks = [_ask(gw, a) for a in batch]
    wanted = {line.key: (ask.limit_currency.value, line.cap_minor) for ask in asks for line in ask.lines}
    debtors = [ask.debtor_account_id for ask in asks if ask.direction is Direction.NORTHBOUND]
    usage, funds = await limits_repo.lock_usage_and_accounts(conn, wanted, debtors)
    decided = reservation.plan(asks, usage, funds)
    for a in batch:
        if (refusal := decided.refused.get(a.payment_id)) is not None:
            a.rejection = Rejection(refusal.code, refusal.reason)
    return decided.usage, decided.holds, decided.pending


def _ask(gw: Gateway, a: Admission) -> reservation.Ask:
    limits = limits_service.limits_for(gw.settings, a.direction)
    keys = limits_service.period_keys(a.now)
    debtor = a.payment.debtor_account_id
    return reservation.Ask(
        payment_id=a.payment_id,
        direction=a.direction,
        limit_currency=limits.currency,
        limit_minor=a.payment.limit_minor,
        lines=tuple(
            reservation.LimitLine(
                period=period,
                key=(debtor, a.direction.value, period.value, keys[period]),
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


def _accepted(gw: Gateway, a: Admission) -> tuple[Payment, list[TimelineEntry]]:
    conv = a.conversion
    payment = a.payment
    limits = limits_service.limits_for(gw.settings, a.direction)
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

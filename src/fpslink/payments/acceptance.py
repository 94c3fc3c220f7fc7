"""Acceptance of a batch of payments in ONE transaction (docs/architecture.md#two-phase-settlement, step 1).

Each payment binds its idempotency key, uses its quote, reserves its limit usage and prepares the
FPS side; one that cannot (quote used, limit or funds short) is recorded REJECTED in the same
transaction instead, and the others go on. The usage rows and the debtors' balances are locked
(in one global order), the batch is decided in Python in arrival order, and the results are
written back with a fixed number of statements, whatever the batch's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.context import Gateway
from fpslink.fx import service as fx_service
from fpslink.fx.domain import Conversion
from fpslink.idempotency import repository as idem_repo
from fpslink.ledger.domain import Transfer
from fpslink.limits import repository as limits_repo
from fpslink.limits import service as limits_service
from fpslink.limits.policy import UsageKey
from fpslink.money import Money
from fpslink.payments import repository as payments_repo
from fpslink.payments import reservation
from fpslink.payments.models import payments
from fpslink.settlement.coordinator import Tracked
from fpslink.vocabulary import Direction, Period, State
from fpslink.webhooks import outbox as webhook_outbox

ENDPOINT = "POST /v1/payments"

BLANK_ROW: dict[str, Any] = {column.name: None for column in payments.c}


class Rejection(Exception):
    """A business rejection: the payment is recorded REJECTED with this reason code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Admission:
    """A payment the request has bound (creditor, FX, per-transaction limit), ready to accept."""

    scope: str
    key: str
    fingerprint: str
    row: dict[str, Any]
    conversion: Conversion
    direction: Direction
    quote_id: str | None
    creditor_masked_name: str
    now: datetime
    key_taken: bool = False
    """Another request holds the idempotency key: answer as a replay of it."""
    tracked: Tracked | None = None
    """The payment as accepted (or rejected), once the batch has committed."""
    rejection: Rejection | None = None

    @property
    def payment_id(self) -> str:
        return str(self.row["payment_id"])


async def accept_many(gw: Gateway, batch: list[Admission]) -> list[Tracked]:
    """Accept or reject every admission; returns the accepted payments (FPS side prepared)."""
    now = gw.clock()
    async with gw.engine.begin() as conn:
        live = await _bind_keys(gw, conn, batch)
        for a in live:
            if a.quote_id is not None and not await fx_service.use_quote(
                conn, quote_id=a.quote_id, payment_id=a.payment_id, now=a.now
            ):
                a.rejection = Rejection("QUOTE_USED", f"quote {a.quote_id} was used or expired meanwhile")
        usage, holds, pending = await _reserve(gw, conn, [a for a in live if a.rejection is None])
        rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for a in live:
            row, timeline = _accepted(gw, a) if a.rejection is None else _rejected(a)
            rows.append(row)
            events.extend({"payment_id": a.payment_id, **e} for e in timeline)
            a.tracked = Tracked(row, timeline)
        if rows:
            # one statement, rather than five round trips each waiting for a CPU
            await payments_repo.write_accepted(
                await pg.raw(conn), usage=usage, holds=holds, transfers=pending, rows=rows, events=events
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
    debtor = str(a.row["debtor_account_id"])
    return reservation.Ask(
        payment_id=a.payment_id,
        direction=a.direction,
        limit_currency=limits.currency,
        limit_minor=int(a.row["limit_minor"]),
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
        creditor_account_id=a.row["creditor_account_id"],
        source=a.conversion.source,
        target=a.conversion.target,
        now=a.now,
    )


def _accepted(gw: Gateway, a: Admission) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    conv = a.conversion
    limits = limits_service.limits_for(gw.settings, a.direction)
    at = a.now
    row = {**BLANK_ROW, **a.row, "state": State.ACCEPTED.value}
    timeline = [
        {"at": at, "event": "ACCEPTED", "detail": f"{a.direction.value} to {a.creditor_masked_name}"},
        {
            "at": at,
            "event": "FX_FIXED",
            "detail": f"{conv.source} -> {conv.target} at {conv.rate} "
            f"(mid {conv.mid_rate}, spread {conv.spread_bps} bps"
            + (f", quote {a.quote_id})" if a.quote_id else ")"),
        },
        {
            "at": at,
            "event": "LIMITS_RESERVED",
            "detail": f"{Money.from_minor(int(a.row['limit_minor']), limits.currency)}",
        },
        {
            "at": at,
            "event": "PREPARED_AT_FPS",
            "detail": "funds held" if a.direction is Direction.NORTHBOUND else None,
        },
    ]
    return row, timeline


def _rejected(a: Admission) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    assert a.rejection is not None
    code, reason = a.rejection.code, a.rejection.reason
    row = {
        **BLANK_ROW,
        **a.row,
        "state": State.REJECTED.value,
        "reason_code": code,
        "reason": reason[:300],
        "limit_minor": 0,
        "decided_at": a.now,
    }
    return row, [{"at": a.now, "event": "REJECTED", "detail": f"{code}: {reason}"}]

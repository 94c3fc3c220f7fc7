"""What settlement writes, as moves the coordinator decides in pure code and a store applies.

The coordinator (`fpslink.settlement.coordinator`) reads IBPS's answers, decides each payment's
`Move` without I/O, and hands the moves to a `SettlementStore`, which applies them in one atomic
step and says which payments moved: every move is a compare-and-set on the payment's state, so a
payment that another actor (the recovery sweep) moved first is left alone. `PgSettlementStore` is
the one on PostgreSQL; the unit tests drive the coordinator with an in-memory one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fpslink import pg
from fpslink.ledger import repository as ledger
from fpslink.limits import repository as limits_repo
from fpslink.limits.policy import UsageKey, usage_key
from fpslink.payments import repository as payments_repo
from fpslink.payments.domain import Payment, TimelineEntry, TimelineRow
from fpslink.vocabulary import Period, State
from fpslink.webhooks import outbox as webhook_outbox


@dataclass(frozen=True, slots=True)
class Move:
    """One payment's step: from its current state to `target`, setting `values` besides the state and
    `updated_at`, with the timeline entries that record it. Applied only if the payment is still in
    `payment.state` when the store gets to it."""

    payment: Payment
    target: State
    values: Mapping[str, Any]
    events: tuple[TimelineEntry, ...]

    @property
    def payment_id(self) -> str:
        return self.payment.payment_id

    def moved(self, now: datetime) -> Payment:
        """The payment as the store leaves it once this move applied."""
        return self.payment.replaced(state=self.target, updated_at=now, **self.values)


Failure = tuple[str, TimelineEntry]
"""A payment whose phase two IBPS refused, and the timeline entry that says so."""


class SettlementStore(Protocol):
    """The writes of settlement, each one atomic: all of it happens, or none."""

    async def decide(self, moves: Sequence[Move], now: datetime) -> set[str]:
        """Record decisions of ACCEPTED payments: a move to COMMITTING also posts the FPS side; to
        ABORTING or REJECTED it voids the FPS side and gives back the limit usage, and REJECTED
        queues the payment's webhooks. Returns the ids that moved."""
        ...

    async def finish(self, moves: Sequence[Move], failures: Sequence[Failure], now: datetime) -> set[str]:
        """Record final states (queuing webhooks) and the failures of phase two, whose payments stay
        decided. Returns the ids that moved."""
        ...

    async def payments(self, payment_ids: Sequence[str]) -> dict[str, Payment]:
        """The payments as stored now."""
        ...


def limit_releases(payments: Sequence[Payment]) -> dict[UsageKey, int]:
    """The limit usage aborted payments give back, summed per usage row."""
    releases: dict[UsageKey, int] = {}
    for payment in payments:
        for period in Period:
            key = usage_key(payment.debtor_account_id, payment.direction, period, payment.business_date)
            releases[key] = releases.get(key, 0) + payment.limit_minor
    return releases


def _timeline(moves: Sequence[Move], moved: set[str]) -> list[TimelineRow]:
    return [(m.payment_id, entry) for m in moves if m.payment_id in moved for entry in m.events]


class PgSettlementStore:
    """Settlement's writes on PostgreSQL. The usual case of each step (every decision a commit;
    every phase two answered) is a single statement, so one round trip with no BEGIN/COMMIT; the
    rest is one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def decide(self, moves: Sequence[Move], now: datetime) -> set[str]:
        """Locks are taken in one global order (limit usage rows, then ledger accounts, each sorted)
        in every transaction of the payment path, so concurrent batches queue, never deadlock."""
        if not moves:
            return set()
        async with self._engine.connect() as conn:
            if all(m.target is State.COMMITTING for m in moves):
                ids = [m.payment_id for m in moves]
                rows = [(m.payment_id, entry) for m in moves for entry in m.events]
                return await payments_repo.decide_commits(await pg.raw(conn), ids, rows, now)
            async with conn.begin():
                return await self._decide(conn, moves, now)

    @staticmethod
    async def _decide(conn: AsyncConnection, moves: Sequence[Move], now: datetime) -> set[str]:
        commits = [m for m in moves if m.target is State.COMMITTING]
        won = await payments_repo.transition_many(
            conn,
            payment_ids=[m.payment_id for m in commits],
            current=State.ACCEPTED,
            target=State.COMMITTING,
            now=now,
            decided_at=now,
        )
        aborted: list[Move] = []
        for move in moves:
            if move.target is not State.COMMITTING and await payments_repo.transition(
                conn,
                payment_id=move.payment_id,
                current=State.ACCEPTED,
                target=move.target,
                now=now,
                **move.values,
            ):
                aborted.append(move)
        await limits_repo.release_many(conn, limit_releases([m.payment for m in aborted]))
        await ledger.resolve_many(conn, post=sorted(won), void=[m.payment_id for m in aborted], now=now)
        moved = won | {m.payment_id for m in aborted}
        await payments_repo.insert_events(conn, _timeline(moves, moved))
        rejected = [m.payment_id for m in aborted if m.target is State.REJECTED]
        await webhook_outbox.payments_changed(conn, rejected, now)
        return moved

    async def finish(self, moves: Sequence[Move], failures: Sequence[Failure], now: datetime) -> set[str]:
        if not moves and not failures:
            return set()
        async with self._engine.connect() as conn:
            if not failures:
                steps = [(m.payment_id, m.payment.state, m.target) for m in moves]
                rows = [(m.payment_id, entry) for m in moves for entry in m.events]
                return await payments_repo.finalize_many(await pg.raw(conn), steps, rows, now)
            async with conn.begin():
                done: set[str] = set()
                groups: dict[tuple[State, State, frozenset[tuple[str, Any]]], list[str]] = {}
                for m in moves:
                    step = (m.payment.state, m.target, frozenset(m.values.items()))
                    groups.setdefault(step, []).append(m.payment_id)
                for (current, target, values), ids in groups.items():
                    done |= await payments_repo.transition_many(
                        conn, payment_ids=ids, current=current, target=target, now=now, **dict(values)
                    )
                await payments_repo.insert_events(conn, [*_timeline(moves, done), *failures])
                await webhook_outbox.payments_changed(conn, sorted(done), now)
                return done

    async def payments(self, payment_ids: Sequence[str]) -> dict[str, Payment]:
        async with self._engine.connect() as conn:
            return await payments_repo.get_many(conn, payment_ids)

"""Retention's SQL, once: each purge step's statements, a bounded batch at a time.

Every batch is picked by an index range (expiry, creation, the timeline's sequence, a delivery's
status and last attempt) in a stable order and deleted on the caller's transaction; the service
commits each batch on its own. Nothing here reads the database's clock. The payment path never
touches what is purged: final payments and their resolved transfers, usage rows of past periods,
expired keys and quotes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    String,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeEngine

from fpslink.fx.models import quotes
from fpslink.idempotency.models import idempotency_keys
from fpslink.iso20022.models import iso20022_details, iso20022_transactions
from fpslink.ledger.models import ledger_transfers
from fpslink.limits.models import limit_usage
from fpslink.limits.policy import Reservation, UsageKey
from fpslink.payments.models import payment_events, payments
from fpslink.reconciliation.models import recon_breaks, recon_runs
from fpslink.retention.models import limit_usage_carried, retention_horizon
from fpslink.vocabulary import Period, State, TransferKind, TransferStatus
from fpslink.webhooks.models import webhook_deliveries
from ibps_wire.retention import CarriedEntry, Posting

FINAL_STATES = (State.SETTLED.value, State.REJECTED.value)
FINISHED_DELIVERIES = ("DELIVERED", "FAILED", "CANCELLED")
"""Webhook delivery statuses that no attempt follows (`webhooks.service.STATUS_OF_OUTCOME`)."""


def _any(name: str, values: Sequence[Any], item: TypeEngine[Any]) -> Any:
    """`= ANY(:name)`, the values as one array: one statement text whatever the batch's size."""
    return any_(bindparam(name, list(values), type_=ARRAY(item)))


@dataclass(frozen=True, slots=True)
class PurgeablePayment:
    """A final payment old enough to purge, and what it reserved on its usage rows."""

    payment_id: str
    created_at: datetime
    reservation: Reservation


class HorizonRepository:
    """The first business date kept (`retention_horizon`): the job moves it, reconciliation reads it."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def kept_from(self) -> date | None:
        """The first business date kept whole; None while nothing was purged."""
        value = await self._conn.scalar(select(retention_horizon.c.kept_from))
        return None if value is None else date.fromisoformat(value)

    async def move_horizon(self, first_kept: date, *, now: datetime) -> date | None:
        """Record `first_kept` unless a later date is recorded (it never moves back); the date
        recorded before (None: none). Committed before anything of the date is deleted."""
        h = retention_horizon.c
        before = await self._conn.scalar(select(h.kept_from).with_for_update())
        if before is None or before < first_kept.isoformat():
            await self._conn.execute(
                update(retention_horizon).values(kept_from=first_kept.isoformat(), moved_at=now)
            )
        return None if before is None else date.fromisoformat(before)


class PurgeRepository:
    """The purge steps, on the job's own connection, whose transactions it begins and commits."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    # by age: keys, timelines, webhook deliveries, quotes

    async def purge_keys(self, *, expired_at: datetime, limit: int) -> int:
        """Idempotency keys past their expiry, oldest first (`ix_idempotency_keys_expires_at`)."""
        k = idempotency_keys.c
        batch = (
            select(k.participant_id, k.key)
            .where(k.expires_at <= expired_at)
            .order_by(k.expires_at)
            .limit(limit)
        )
        result = await self._conn.execute(
            delete(idempotency_keys).where(tuple_(k.participant_id, k.key).in_(batch))
        )
        return int(result.rowcount or 0)

    async def purge_timeline(self, *, before: datetime, limit: int) -> tuple[int, bool]:
        """Of the `limit` oldest timeline rows, delete those older than `before`; (deleted, whether the
        step has reached the rows it keeps). Rows are appended in time order, so reading the head of
        the sequence finds every old row without scanning the table."""
        e = payment_events.c
        head = (await self._conn.execute(select(e.seq, e.at).order_by(e.seq).limit(limit))).all()
        old = [seq for seq, at in head if at < before]
        if old:
            await self._conn.execute(delete(payment_events).where(e.seq == _any("seqs", old, BigInteger())))
        return len(old), len(old) < limit

    async def purge_deliveries(
        self, *, finished_before: datetime, pending_before: datetime, limit: int
    ) -> int:
        """Finished deliveries whose last attempt is older than `finished_before`, then deliveries still
        pending for a payment final before `pending_before`, whose payment goes in this pass
        (`ix_webhook_deliveries_due`: a delivery's status and its last or next attempt)."""
        d = webhook_deliveries.c
        deleted = 0
        for condition in (
            and_(d.status.in_(FINISHED_DELIVERIES), d.next_attempt_at < finished_before),
            and_(d.status == "PENDING", d.created_at < pending_before),
        ):
            batch = (
                select(d.delivery_id)
                .where(condition)
                .order_by(d.status, d.next_attempt_at, d.delivery_id)
                .limit(limit - deleted)
            )
            result = await self._conn.execute(delete(webhook_deliveries).where(d.delivery_id.in_(batch)))
            deleted += int(result.rowcount or 0)
            if deleted >= limit:
                break
        return deleted

    async def purge_quotes(self, *, before: datetime, limit: int) -> int:
        q = quotes.c
        batch = select(q.quote_id).where(q.created_at < before).order_by(q.created_at).limit(limit)
        result = await self._conn.execute(delete(quotes).where(q.quote_id.in_(batch)))
        return int(result.rowcount or 0)

    # payments, with their FPS transfers, timelines and keys

    async def purgeable_payments(
        self, *, before: datetime, after: tuple[datetime, str] | None, limit: int
    ) -> list[PurgeablePayment]:
        """Final payments accepted and last changed before `before` and holding nothing on the FPS
        ledger, in (created_at, payment_id) order after `after` (`ix_payments_created`)."""
        p, t = payments.c, ledger_transfers.c
        query = (
            select(
                p.payment_id,
                p.created_at,
                p.debtor_account_id,
                p.direction,
                p.state,
                p.business_date,
                p.limit_minor,
            )
            .where(
                p.created_at < before,
                p.updated_at < before,
                p.state.in_(FINAL_STATES),
                ~exists().where(t.payment_id == p.payment_id, t.status == TransferStatus.PENDING.value),
            )
            .order_by(p.created_at, p.payment_id)
            .limit(limit)
        )
        if after is not None:
            at, payment_id = after
            query = query.where(
                p.created_at >= at, tuple_(p.created_at, p.payment_id) > tuple_(at, payment_id)
            )
        rows = (await self._conn.execute(query)).all()
        return [
            PurgeablePayment(
                payment_id=pid,
                created_at=created_at,
                reservation=Reservation(
                    account_id=debtor,
                    direction=direction,
                    state=State(state),
                    business_date=day,
                    limit_minor=int(limit_minor),
                ),
            )
            for pid, created_at, debtor, direction, state, day, limit_minor in rows
        ]

    async def delete_transfers(self, payment_ids: Sequence[str]) -> tuple[int, list[Posting]]:
        """Delete the payments' FPS transfers; (how many, the posted ones: their amounts leave the
        postings)."""
        t = ledger_transfers.c
        rows = await self._conn.execute(
            delete(ledger_transfers)
            .where(t.payment_id == _any("payment_ids", payment_ids, String()))
            .returning(t.debit_account_id, t.credit_account_id, t.currency, t.amount_minor, t.status)
        )
        deleted = rows.all()
        return len(deleted), [
            Posting(debit, credit, currency, int(amount))
            for debit, credit, currency, amount, status in deleted
            if status == TransferStatus.POSTED.value
        ]

    async def delete_carried(self, account_ids: Sequence[str]) -> list[Posting]:
        """Delete the carried entries of these accounts (none of them a funding account): the batch
        carries their balances forward again, with its own postings added."""
        if not account_ids:
            return []
        t = ledger_transfers.c
        accounts = _any("account_ids", account_ids, String())
        rows = await self._conn.execute(
            delete(ledger_transfers)
            .where(
                t.kind == TransferKind.CARRIED.value,
                or_(t.debit_account_id == accounts, t.credit_account_id == accounts),
            )
            .returning(t.debit_account_id, t.credit_account_id, t.currency, t.amount_minor)
        )
        return [Posting(debit, credit, currency, int(amount)) for debit, credit, currency, amount in rows]

    async def insert_carried(self, entries: Sequence[CarriedEntry], *, at: datetime) -> None:
        """The carried entries, posted at `at` (before every day kept, so a day's postings are its own)."""
        if not entries:
            return
        await self._conn.execute(
            ledger_transfers.insert(),
            [
                {
                    "payment_id": None,
                    "kind": TransferKind.CARRIED.value,
                    "debit_account_id": entry.debit_account_id,
                    "credit_account_id": entry.credit_account_id,
                    "currency": entry.currency,
                    "amount_minor": entry.amount_minor,
                    "status": TransferStatus.POSTED.value,
                    "created_at": at,
                    "resolved_at": at,
                }
                for entry in entries
            ],
        )

    async def carry_usage(self, amounts: Mapping[UsageKey, int]) -> None:
        """Add what purged payments reserved to each usage row's carried amount, in key order."""
        if not amounts:
            return
        c = limit_usage_carried.c
        insert = postgresql.insert(limit_usage_carried)
        await self._conn.execute(
            insert.on_conflict_do_update(
                index_elements=[c.account_id, c.direction, c.period, c.period_key],
                set_={"carried_minor": c.carried_minor + insert.excluded.carried_minor},
            ),
            [
                {
                    "account_id": account_id,
                    "direction": direction,
                    "period": period,
                    "period_key": period_key,
                    "carried_minor": amount,
                }
                for (account_id, direction, period, period_key), amount in sorted(amounts.items())
            ],
        )

    async def delete_payments(self, payment_ids: Sequence[str]) -> int:
        """Delete the payments, what is left of their timelines, the keys bound to them and the pacs.008
        references and details they were paid for (their transfers first: the ledger's foreign key)."""
        ids = _any("payment_ids", payment_ids, String())
        for table in (payment_events, idempotency_keys, iso20022_transactions, iso20022_details):
            await self._conn.execute(delete(table).where(table.c.payment_id == ids))
        result = await self._conn.execute(delete(payments).where(payments.c.payment_id == ids))
        return int(result.rowcount or 0)

    # what goes with past dates: usage rows, reconciliation runs

    async def purge_usage(self, *, day_before: str, year_before: str, limit: int) -> int:
        """Usage rows of periods over (days before `day_before`, years before `year_before`) that only
        purged payments had reserved, with their carried amounts, in one statement."""
        u, c = limit_usage.c, limit_usage_carried.c
        keys = (u.account_id, u.direction, u.period, u.period_key)
        done = (
            select(*keys)
            .select_from(
                limit_usage.outerjoin(
                    limit_usage_carried,
                    and_(
                        c.account_id == u.account_id,
                        c.direction == u.direction,
                        c.period == u.period,
                        c.period_key == u.period_key,
                    ),
                )
            )
            .where(
                or_(
                    and_(u.period == Period.DAY.value, u.period_key < day_before),
                    and_(u.period == Period.YEAR.value, u.period_key < year_before),
                ),
                u.used_minor == func.coalesce(c.carried_minor, 0),
            )
            .order_by(*keys)
            .limit(limit)
            .cte("done")
        )
        gone = delete(limit_usage).where(tuple_(*keys) == tuple_(*done.c)).returning(*keys).cte("gone")
        carried_gone = (
            delete(limit_usage_carried)
            .where(tuple_(c.account_id, c.direction, c.period, c.period_key) == tuple_(*gone.c))
            .cte("carried_gone")
        )
        count = select(func.count()).select_from(gone).add_cte(carried_gone)
        return int(await self._conn.scalar(count) or 0)

    async def purge_recon(self, *, before: date, limit: int) -> int:
        """Reconciliation runs of dates before `before`: their breaks a batch at a time, then the runs
        whose breaks are gone (`ix_recon_breaks_run_seq`, `ix_recon_runs_business_date`)."""
        r, b = recon_runs.c, recon_breaks.c
        old_runs = select(r.run_id).where(r.business_date < before.isoformat())
        batch = select(b.seq).where(b.run_id.in_(old_runs)).order_by(b.run_id, b.seq).limit(limit)
        deleted = int((await self._conn.execute(delete(recon_breaks).where(b.seq.in_(batch)))).rowcount or 0)
        if deleted < limit:
            empty = (
                select(r.run_id)
                .where(r.business_date < before.isoformat(), ~exists().where(b.run_id == r.run_id))
                .limit(limit - deleted)
            )
            deleted += int(
                (await self._conn.execute(delete(recon_runs).where(r.run_id.in_(empty)))).rowcount or 0
            )
        return deleted

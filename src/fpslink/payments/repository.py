"""Payments and their timelines. State changes are compare-and-set on the current state.

Reads return `Payment`s and `TimelineEntry`s (`payments.domain`) and writes take them: the
callers never handle a payment's stored form.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import Table, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.errors import LedgerStateError
from fpslink.ledger.domain import Transfer
from fpslink.ledger.models import ledger_transfers
from fpslink.payments.domain import Payment, TimelineEntry, TimelineRow
from fpslink.payments.models import payment_events, payments
from fpslink.settlement.states import check_transition
from fpslink.vocabulary import State, TransferKind, TransferStatus
from fpslink.webhooks import outbox


async def insert_payment(conn: AsyncConnection, payment: Payment) -> None:
    await conn.execute(insert(payments).values(payment.values()))


async def add_events(
    conn: AsyncConnection,
    payment_id: str,
    now: datetime,
    events: Iterable[tuple[str, str | None]],
) -> None:
    await insert_events(conn, [(payment_id, TimelineEntry(now, event, detail)) for event, detail in events])


def grouped_events(rows: Sequence[TimelineRow]) -> list[dict[str, Any]]:
    """Timeline rows as stored: one per payment and instant, the events after the first in `more`.

    Each payment's events keep their order; a payment's rows come in the order of their first event.
    """
    steps: dict[tuple[str, datetime], list[TimelineEntry]] = {}
    for payment_id, entry in rows:
        steps.setdefault((payment_id, entry.at), []).append(entry)
    return [
        {
            "payment_id": payment_id,
            "at": at,
            "event": first.event,
            "detail": first.detail,
            "more": json.dumps([[e.event, e.detail] for e in rest]) if rest else None,
        }
        for (payment_id, at), (first, *rest) in steps.items()
    ]


def expanded_events(rows: Iterable[Mapping[Any, Any]]) -> list[TimelineEntry]:
    """The stored rows of one payment (in `seq` order) as its timeline, one entry per event."""
    timeline: list[TimelineEntry] = []
    for row in rows:
        at = row["at"]
        timeline.append(TimelineEntry(at, row["event"], row["detail"]))
        if row["more"]:
            timeline.extend(TimelineEntry(at, event, detail) for event, detail in json.loads(row["more"]))
    return timeline


async def insert_payments(conn: AsyncConnection, rows: Sequence[Payment]) -> None:
    """Many payments in one statement."""
    if rows:
        await pg.insert_rows(await pg.raw(conn), payments, [p.values() for p in rows])


async def insert_events(conn: AsyncConnection, rows: Sequence[TimelineRow]) -> None:
    """Timeline entries of any number of payments in one statement, a row per payment and
    instant (`grouped_events`)."""
    if not rows:
        return
    await pg.insert_rows(await pg.raw(conn), payment_events, grouped_events(rows))


async def get_many(conn: AsyncConnection, payment_ids: Sequence[str]) -> dict[str, Payment]:
    if not payment_ids:
        return {}
    rows = (await conn.execute(select(payments).where(payments.c.payment_id.in_(payment_ids)))).mappings()
    return {row["payment_id"]: Payment.from_row(row) for row in rows}


async def get(conn: AsyncConnection, payment_id: str) -> Payment | None:
    row = (await conn.execute(select(payments).where(payments.c.payment_id == payment_id))).mappings().first()
    return None if row is None else Payment.from_row(row)


async def events_of(conn: AsyncConnection, payment_id: str) -> list[TimelineEntry]:
    """The payment's timeline, oldest first."""
    rows = (
        await conn.execute(
            select(
                payment_events.c.at, payment_events.c.event, payment_events.c.detail, payment_events.c.more
            )
            .where(payment_events.c.payment_id == payment_id)
            .order_by(payment_events.c.seq)
        )
    ).mappings()
    return expanded_events(rows.all())


async def transition(
    conn: AsyncConnection,
    *,
    payment_id: str,
    current: State,
    target: State,
    now: datetime,
    **values: Any,
) -> bool:
    """Move the payment from `current` to `target` if nobody else moved it first."""
    check_transition(current, target)
    result = await conn.execute(
        update(payments)
        .where(payments.c.payment_id == payment_id, payments.c.state == current.value)
        .values(state=target.value, updated_at=now, **values)
    )
    return result.rowcount == 1


async def transition_many(
    conn: AsyncConnection,
    *,
    payment_ids: Sequence[str],
    current: State,
    target: State,
    now: datetime,
    **values: Any,
) -> set[str]:
    """Move every payment still in `current` to `target`; the ids this call moved."""
    check_transition(current, target)
    if not payment_ids:
        return set()
    moved = await (await pg.raw(conn)).fetch(
        _transition_sql(("state", "updated_at", *values)),
        *(target.value, now, *values.values()),
        list(payment_ids),
        current.value,
    )
    return {row[0] for row in moved}


def _one_row_each(
    ids: Sequence[str], events: Sequence[TimelineRow]
) -> tuple[list[str], list[str | None], list[str | None]]:
    """The `event`, `detail` and `more` columns of one stored timeline row per payment, in `ids`
    order: the form the single-statement steps below take their timeline in."""
    rows = {row["payment_id"]: row for row in grouped_events(events)}
    if len(rows) != len(ids) or rows.keys() != set(ids):
        raise ValueError("each payment needs exactly one timeline row, at one instant")
    return [rows[i]["event"] for i in ids], [rows[i]["detail"] for i in ids], [rows[i]["more"] for i in ids]


_FINAL = (
    """
WITH v AS (
    SELECT * FROM unnest(
        $1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::text[]
    ) AS v(payment_id, current_state, target_state, event, detail, more)
), moved AS (
    UPDATE payments AS p
    SET state = v.target_state, updated_at = $7,
        settled_at = CASE WHEN v.target_state = $8 THEN $7 ELSE p.settled_at END
    FROM v
    WHERE p.payment_id = v.payment_id AND p.state = v.current_state
    RETURNING p.payment_id, p.state, p.participant_id, p.creditor_participant_id
), timeline AS (
    INSERT INTO payment_events (payment_id, at, event, detail, more)
    SELECT v.payment_id, $7, v.event, v.detail, v.more FROM v JOIN moved USING (payment_id)
), deliveries AS (
"""
    + outbox.queue_deliveries("moved", "$7")
    + """
)
SELECT payment_id FROM moved
"""
)


async def finalize_many(
    raw: asyncpg.Connection,
    moves: Sequence[tuple[str, State, State]],
    events: Sequence[TimelineRow],
    now: datetime,
) -> set[str]:
    """Final states in one statement, so outside any transaction and in one round trip.

    Each (payment_id, current, target) moves if the payment is still in `current`; only a payment
    that moved gets its timeline row (`events`, at `now`) and its webhook deliveries, queued as
    `webhooks.outbox.queue_deliveries` says. Returns the ids that moved.
    """
    for _, current, target in moves:
        check_transition(current, target)
    ids = [payment_id for payment_id, _, _ in moves]
    moved = await raw.fetch(
        _FINAL,
        ids,
        [current.value for _, current, _ in moves],
        [target.value for _, _, target in moves],
        *_one_row_each(ids, events),
        now,
        State.SETTLED.value,
    )
    return {row[0] for row in moved}


_COMMIT = """
WITH v AS MATERIALIZED (
    SELECT *, $7::varchar AS current_state
    FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::text[])
        AS v(payment_id, event, detail, more)
), moved AS (
    UPDATE payments AS p SET state = $5, updated_at = $6, decided_at = $6
    FROM v
    WHERE p.payment_id = v.payment_id AND p.state = v.current_state
    RETURNING p.payment_id
), timeline AS (
    INSERT INTO payment_events (payment_id, at, event, detail, more)
    SELECT v.payment_id, $6, v.event, v.detail, v.more FROM v JOIN moved USING (payment_id)
), posted AS (
    UPDATE ledger_transfers AS t SET status = $8, resolved_at = $6
    FROM moved
    WHERE t.payment_id = moved.payment_id AND t.status = $9
    RETURNING t.kind, t.debit_account_id, t.credit_account_id, t.amount_minor
), deltas AS (
    SELECT account_id, sum(dbal) AS dbal, sum(dheld) AS dheld FROM (
        SELECT debit_account_id AS account_id, -amount_minor AS dbal, -amount_minor AS dheld
        FROM posted WHERE kind = $10
        UNION ALL
        SELECT credit_account_id, amount_minor, 0 FROM posted WHERE kind = $11
    ) AS d GROUP BY account_id
), locked AS MATERIALIZED (
    SELECT a.account_id FROM ledger_accounts AS a
    WHERE a.account_id IN (SELECT account_id FROM deltas)
    ORDER BY a.account_id FOR NO KEY UPDATE
), balances AS (
    UPDATE ledger_accounts AS a
    SET balance_minor = a.balance_minor + d.dbal, held_minor = a.held_minor + d.dheld
    FROM locked AS l JOIN deltas AS d USING (account_id)
    WHERE a.account_id = l.account_id
    RETURNING a.account_id
)
SELECT payment_id FROM moved
WHERE (SELECT fpslink_ledger_moved(
    (SELECT count(*) FROM balances), (SELECT count(*) FROM deltas), 'a commit decision'
))
"""
"""The final WHERE is one check for the whole statement (an InitPlan): it raises, so that the
statement changes nothing, unless the balance update changed every account the postings name.

The state a payment must still be in is compared through a join (a column of the materialized `v`),
never as `state = $n`. A restriction on state lets the planner take ix_payments_state_updated for
"every payment still ACCEPTED" and join the ids to that; but every update of a payment's state
leaves its old entry in that index (an update of an indexed column is never HOT) until vacuum comes,
so the scan grows with the payments since the last vacuum. Under throughput.py it did: from 3,700
entries and 0.4 ms to 14,400 and 1.4 ms within 15 s of load, for a batch of 32. Compared with a
column, the state gives the planner no value to estimate "few rows" from; a probe of the primary key
per id then always costs less than any scan of the state index."""


async def decide_commits(
    raw: asyncpg.Connection, payment_ids: Sequence[str], events: Sequence[TimelineRow], now: datetime
) -> set[str]:
    """The commit decision of many ACCEPTED payments in one statement and so with no
    transaction around it: each payment still ACCEPTED moves to COMMITTING with its timeline row
    (`events`, at `now`), its pending FPS transfer is posted and the customer balances move.

    The accounts are locked in account order (`locked`, read to the end before any balance
    changes), the order every writer of them uses; under READ COMMITTED the balance UPDATE then
    changes each row as the last committed writer left it. Link accounts keep no balance: theirs
    is derived from the postings. Returns the ids that moved.

    A transfer no longer pending is left alone (a compare-and-set, so a repeat is a no-op); a balance
    update that misses an account raises `LedgerStateError` and the statement changes nothing.
    """
    ids = list(payment_ids)
    try:
        moved = await raw.fetch(
            _COMMIT,
            ids,
            *_one_row_each(ids, events),
            State.COMMITTING.value,
            now,
            State.ACCEPTED.value,
            TransferStatus.POSTED.value,
            TransferStatus.PENDING.value,
            TransferKind.DEBIT.value,
            TransferKind.CREDIT.value,
        )
    except asyncpg.RaiseError as exc:  # only fpslink_ledger_moved raises in this statement
        raise LedgerStateError(str(exc)) from exc
    return {row[0] for row in moved}


@functools.cache
def _accept_sql(
    payment_columns: tuple[str, ...], transfer_columns: tuple[str, ...], event_columns: tuple[str, ...]
) -> str:
    def arrays(table: Table, columns: tuple[str, ...], first: int) -> str:
        return ", ".join(f"${i}::{pg.array_type(table, c)}" for i, c in enumerate(columns, first))

    def names(columns: tuple[str, ...]) -> str:
        return ", ".join(pg.ident(c) for c in columns)

    first_payment = 9 + len(transfer_columns)
    first_event = first_payment + len(payment_columns)
    return (
        "WITH usage AS ("
        " UPDATE limit_usage AS u SET used_minor = v.used_minor, cap_minor = v.cap_minor"
        " FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::bigint[], $6::bigint[])"
        " AS v(account_id, direction, period, period_key, used_minor, cap_minor)"
        " WHERE u.account_id = v.account_id AND u.direction = v.direction"
        " AND u.period = v.period AND u.period_key = v.period_key"
        "), held AS ("
        " UPDATE ledger_accounts AS a SET held_minor = a.held_minor + v.dheld"
        " FROM unnest($7::varchar[], $8::bigint[]) AS v(account_id, dheld)"
        " WHERE a.account_id = v.account_id RETURNING a.account_id"
        "), transfers AS ("
        f" INSERT INTO ledger_transfers ({names(transfer_columns)})"
        f" SELECT * FROM unnest({arrays(ledger_transfers, transfer_columns, 9)})"
        "), accepted AS ("
        f" INSERT INTO payments ({names(payment_columns)})"
        f" SELECT * FROM unnest({arrays(payments, payment_columns, first_payment)})"
        "), timeline AS ("
        f" INSERT INTO payment_events ({names(event_columns)})"
        f" SELECT * FROM unnest({arrays(payment_events, event_columns, first_event)})"
        ")"
        " SELECT count(*) FROM held"
    )


async def write_accepted(
    raw: asyncpg.Connection,
    *,
    usage: Mapping[tuple[str, str, str, str], tuple[int, int | None]],
    holds: Mapping[str, int],
    transfers: Sequence[Transfer],
    rows: Sequence[Payment],
    events: Sequence[TimelineRow],
) -> None:
    """Every write of the acceptance transaction in one statement: the new limit
    usage (`limits.repository.write_usage`), the FPS holds (`ledger.add_held`), the pending FPS
    transfers, the payment rows and their timeline (a row per payment, `grouped_events`).

    The usage rows and accounts must be locked already (`lock_usage`, `lock_balances`), so that the
    order in which this statement reaches them cannot matter. The transfers come before the payments
    they name, which is fine: a foreign key is checked at the end of the statement. A hold on an
    account the ledger lacks raises `LedgerStateError`, and the caller's transaction rolls back.
    """
    stored = grouped_events(events)
    if not rows or not stored:
        raise ValueError("an accepted batch has payment rows and timeline rows")
    transfer_columns = _TRANSFER_COLUMNS
    pending = [t.values() for t in transfers]
    accepted = [p.values() for p in rows]
    payment_columns, event_columns = tuple(accepted[0]), tuple(stored[0])
    keys = sorted(usage)
    accounts = sorted(holds)
    held = await raw.fetchval(
        _accept_sql(payment_columns, transfer_columns, event_columns),
        *([k[i] for k in keys] for i in range(4)),
        [usage[k][0] for k in keys],
        [usage[k][1] for k in keys],
        accounts,
        [holds[a] for a in accounts],
        *([t[c] for t in pending] for c in transfer_columns),
        *([r[c] for r in accepted] for c in payment_columns),
        *([e[c] for e in stored] for c in event_columns),
    )
    if held != len(accounts):
        raise LedgerStateError(f"FPS holds reached {held} of the {len(accounts)} accounts they name")


_TRANSFER_COLUMNS = (
    "payment_id",
    "kind",
    "debit_account_id",
    "credit_account_id",
    "currency",
    "amount_minor",
    "status",
    "created_at",
)
"""The columns of a pending transfer (`ledger.pending_transfer`) that acceptance writes."""


@functools.cache
def _transition_sql(names: tuple[str, ...]) -> str:
    """The state is compared through a join, as in `_COMMIT` (which says why)."""
    sets = ", ".join(f"{pg.ident(name)} = ${i}" for i, name in enumerate(names, 1))
    n = len(names)
    return (
        f"WITH v AS MATERIALIZED (SELECT unnest(${n + 1}::varchar[]) AS payment_id,"
        f" ${n + 2}::varchar AS current_state)"
        f" UPDATE payments AS p SET {sets} FROM v"
        " WHERE p.payment_id = v.payment_id AND p.state = v.current_state RETURNING p.payment_id"
    )


UNFINISHED = (State.ACCEPTED, State.COMMITTING, State.ABORTING)
"""The states of a payment that is not final: what clients see as PENDING."""


async def stale(conn: AsyncConnection, *, cutoff: datetime, limit: int) -> list[tuple[str, State]]:
    """Non-final payments untouched since `cutoff`, oldest first."""
    rows = await conn.execute(
        select(payments.c.payment_id, payments.c.state)
        .where(
            payments.c.state.in_(UNFINISHED),
            payments.c.updated_at < cutoff,
        )
        .order_by(payments.c.updated_at)
        .limit(limit)
    )
    return [(r[0], State(r[1])) for r in rows]


async def count_unfinished(conn: AsyncConnection, *, limit: int) -> dict[State, int]:
    """Non-final payments by state, `limit` in all at most: a range of the state index, bounded
    however many an IBPS outage has left pending."""
    found = select(payments.c.state).where(payments.c.state.in_(UNFINISHED)).limit(limit).subquery()
    rows = await conn.execute(select(found.c.state, func.count()).group_by(found.c.state))
    return {State(state): int(count) for state, count in rows}


async def claim(
    conn: AsyncConnection, *, payment_id: str, state: State, cutoff: datetime, now: datetime
) -> bool:
    """Take a stale payment for one recovery attempt, so that two sweeps never both drive it."""
    result = await conn.execute(
        update(payments)
        .where(
            payments.c.payment_id == payment_id,
            payments.c.state == state.value,
            payments.c.updated_at < cutoff,
        )
        .values(updated_at=now, attempts=payments.c.attempts + 1)
    )
    return result.rowcount == 1


async def page(
    conn: AsyncConnection,
    *,
    participant_id: str | None,
    states: Sequence[State] | None,
    direction: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Payment]:
    """Newest first; keyset-paged on (created_at, payment_id)."""
    query = select(payments)
    if participant_id is not None:
        query = query.where(
            or_(
                payments.c.participant_id == participant_id,
                payments.c.creditor_participant_id == participant_id,
            )
        )
    if states:
        query = query.where(payments.c.state.in_([s.value for s in states]))
    if direction:
        query = query.where(payments.c.direction == direction)
    if created_from:
        query = query.where(payments.c.created_at >= created_from)
    if created_to:
        query = query.where(payments.c.created_at < created_to)
    if after:
        at, pid = after
        query = query.where(
            or_(
                payments.c.created_at < at,
                and_(payments.c.created_at == at, payments.c.payment_id < pid),
            )
        )
    query = query.order_by(payments.c.created_at.desc(), payments.c.payment_id.desc()).limit(limit)
    return [Payment.from_row(row) for row in (await conn.execute(query)).mappings()]

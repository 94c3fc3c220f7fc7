"""The console's queries: searches, dashboard aggregates, the account list (reads only), and its own
two tables, sessions ended by logging out and log-in attempts per bucket (`models.py`).

Every read is bounded by a limit and, for a bank, filtered to the payments it is party to (as
debtor or creditor bank) and the accounts it owns, the same rule as the API's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    RowMapping,
    cast,
    delete,
    extract,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.console.models import console_login_attempts as tries
from fpslink.console.models import console_sessions_ended as ended
from fpslink.idempotency.models import idempotency_keys
from fpslink.limits.models import limit_usage
from fpslink.participants.models import accounts
from fpslink.payments.domain import Payment
from fpslink.payments.models import payments
from fpslink.vocabulary import State

PENDING_STATES = (State.ACCEPTED.value, State.COMMITTING.value, State.ABORTING.value)
FINAL_STATES = (State.SETTLED.value, State.REJECTED.value)


def _party(participant_id: str | None) -> ColumnElement[bool] | None:
    if participant_id is None:
        return None
    return or_(
        payments.c.participant_id == participant_id, payments.c.creditor_participant_id == participant_id
    )


def _scoped(query: Any, participant_id: str | None) -> Any:
    party = _party(participant_id)
    return query if party is None else query.where(party)


async def payment_ids_for_key(conn: AsyncConnection, *, scope: str | None, key: str, limit: int) -> list[str]:
    """Payments bound to an Idempotency-Key: in one bank's scope, or in every scope (operator)."""
    query = select(idempotency_keys.c.payment_id).where(
        idempotency_keys.c.key == key, idempotency_keys.c.payment_id.is_not(None)
    )
    if scope is not None:
        query = query.where(idempotency_keys.c.participant_id == scope)
    rows = await conn.execute(query.limit(limit))
    return [str(r[0]) for r in rows]


async def search_payments(
    conn: AsyncConnection,
    *,
    participant_id: str | None,
    payment_ids: Sequence[str] = (),
    account_id: str | None = None,
    proxy: str | None = None,
    limit: int,
) -> list[Payment]:
    """Payments by id, by account (either side) or by creditor proxy, newest first."""
    query = select(payments)
    if payment_ids:
        query = query.where(payments.c.payment_id.in_(list(payment_ids)))
    if account_id is not None:
        query = query.where(
            or_(payments.c.debtor_account_id == account_id, payments.c.creditor_account_id == account_id)
        )
    if proxy is not None:
        query = query.where(payments.c.creditor_proxy == proxy)
    query = _scoped(query, participant_id)
    query = query.order_by(payments.c.created_at.desc(), payments.c.payment_id.desc()).limit(limit)
    return [Payment.from_row(row) for row in (await conn.execute(query)).mappings()]


_SECOND = cast(func.floor(extract("epoch", payments.c.updated_at)), BigInteger)
"""The whole UTC second of `updated_at`, as an integer."""


async def finals_per_second(
    conn: AsyncConnection, *, since: datetime, participant_id: str | None
) -> list[tuple[int, str, int]]:
    """(epoch second, SETTLED|REJECTED, count) of payments that became final since `since`."""
    bucket = _SECOND.label("second")
    query = (
        select(bucket, payments.c.state, func.count())
        .where(payments.c.state.in_(FINAL_STATES), payments.c.updated_at >= since)
        .group_by(bucket, payments.c.state)
    )
    rows = await conn.execute(_scoped(query, participant_id))
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]


async def settle_times(
    conn: AsyncConnection, *, since: datetime, participant_id: str | None, limit: int
) -> list[tuple[datetime, datetime]]:
    """(created_at, settled_at) of the latest payments settled since `since`."""
    query = (
        select(payments.c.created_at, payments.c.settled_at)
        .where(
            payments.c.state == State.SETTLED.value,
            payments.c.updated_at >= since,
            payments.c.settled_at.is_not(None),
        )
        .order_by(payments.c.updated_at.desc())
        .limit(limit)
    )
    rows = await conn.execute(_scoped(query, participant_id))
    return [(r[0], r[1]) for r in rows]


async def pending(
    conn: AsyncConnection, *, participant_id: str | None, limit: int
) -> tuple[int, Sequence[RowMapping]]:
    """How many payments are not final, and the oldest of them."""
    where = payments.c.state.in_(PENDING_STATES)
    count = await conn.execute(
        _scoped(select(func.count()).select_from(payments).where(where), participant_id)
    )
    total = int(count.scalar_one())
    oldest = await conn.execute(
        _scoped(
            select(
                payments.c.payment_id,
                payments.c.state,
                payments.c.direction,
                payments.c.created_at,
                payments.c.attempts,
            )
            .where(where)
            .order_by(payments.c.updated_at)
            .limit(limit),
            participant_id,
        )
    )
    return total, oldest.mappings().all()


async def busiest_accounts(
    conn: AsyncConnection, *, day_key: str, participant_id: str | None, limit: int
) -> Sequence[RowMapping]:
    """Today's daily limit usage, largest first, with each account's owner."""
    query = (
        select(
            limit_usage.c.account_id,
            limit_usage.c.direction,
            limit_usage.c.currency,
            limit_usage.c.used_minor,
            limit_usage.c.cap_minor,
            accounts.c.participant_id,
        )
        .join(accounts, accounts.c.account_id == limit_usage.c.account_id)
        .where(limit_usage.c.period == "DAY", limit_usage.c.period_key == day_key)
        .order_by(limit_usage.c.used_minor.desc(), limit_usage.c.account_id)
        .limit(limit)
    )
    if participant_id is not None:
        query = query.where(accounts.c.participant_id == participant_id)
    return (await conn.execute(query)).mappings().all()


async def account_list(
    conn: AsyncConnection, *, participant_id: str | None, limit: int
) -> Sequence[RowMapping]:
    """Accounts in the directory (one bank's, or all), oldest first."""
    query = select(
        accounts.c.account_id,
        accounts.c.participant_id,
        accounts.c.system,
        accounts.c.currency,
        accounts.c.holder_name,
    )
    if participant_id is not None:
        query = query.where(accounts.c.participant_id == participant_id)
    query = query.order_by(accounts.c.created_at, accounts.c.account_id).limit(limit)
    return (await conn.execute(query)).mappings().all()


# sessions and log-in attempts ------------------------------------------------------------------


async def session_ended(conn: AsyncConnection, nonce: str) -> bool:
    """Whether the session with this nonce was ended by logging out."""
    found = await conn.execute(select(ended.c.nonce).where(ended.c.nonce == nonce))
    return found.first() is not None


async def end_session(conn: AsyncConnection, *, nonce: str, expires_at: datetime, now: datetime) -> None:
    """Refuse the session from now on; forget the ended sessions that have expired anyway."""
    await conn.execute(
        postgresql.insert(ended)
        .values(nonce=nonce, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[ended.c.nonce])
    )
    await conn.execute(delete(ended).where(ended.c.nonce.in_(_expired(now))))


def _expired(now: datetime) -> Any:
    """Ended sessions past their expiry that no other transaction is removing (SKIP LOCKED: two
    purges never wait on, or deadlock with, each other)."""
    return select(ended.c.nonce).where(ended.c.expires_at <= now).with_for_update(skip_locked=True)


async def _relaxed(conn: AsyncConnection) -> None:
    """This transaction's commit does not wait for its WAL flush: a count lost to a database crash
    gives an attacker back a guess or two, while a flushed commit took about 7 ms here against
    0.4 ms for one that writes nothing (50 commits each), and a log-in makes two."""
    await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))


async def count_attempt(
    conn: AsyncConnection, *, buckets: Sequence[str], window_start: datetime
) -> dict[str, int]:
    """Count one log-in attempt in each bucket's current window; each bucket's count after it.
    Earlier windows' rows go in the same transaction."""
    await _relaxed(conn)
    earlier = (
        select(tries.c.bucket, tries.c.window_start)
        .where(tries.c.window_start < window_start)
        .with_for_update(skip_locked=True)
    )
    await conn.execute(delete(tries).where(tuple_(tries.c.bucket, tries.c.window_start).in_(earlier)))
    rows = [{"bucket": b, "window_start": window_start, "attempts": 1} for b in sorted(buckets)]
    counted = (
        postgresql.insert(tries)
        .values(rows)
        .on_conflict_do_update(
            index_elements=[tries.c.bucket, tries.c.window_start],
            set_={"attempts": tries.c.attempts + 1},
        )
        .returning(tries.c.bucket, tries.c.attempts)
    )
    return {str(r[0]): int(r[1]) for r in await conn.execute(counted)}


async def forgive_attempt(conn: AsyncConnection, *, buckets: Sequence[str], window_start: datetime) -> None:
    """Take back a counted attempt that logged in."""
    await _relaxed(conn)
    await conn.execute(
        update(tries)
        .where(
            tries.c.bucket.in_(sorted(buckets)),
            tries.c.window_start == window_start,
            tries.c.attempts > 0,
        )
        .values(attempts=tries.c.attempts - 1)
    )

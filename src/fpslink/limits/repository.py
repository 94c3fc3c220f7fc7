"""Limit usage rows: locked in key order for a batch to decide on, written back, released on abort.

Reservations never overshoot: the rows stay locked from `lock_usage` until the acceptance
transaction commits, so concurrent batches in any number of workers decide one after another.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.ledger import repository as ledger
from fpslink.limits.models import limit_usage
from fpslink.limits.policy import UsageKey
from fpslink.vocabulary import Direction, Period


async def lock_usage(
    conn: AsyncConnection, wanted: dict[UsageKey, tuple[str, int | None]]
) -> dict[UsageKey, int]:
    """Current usage of each key (currency, cap given), rows created at zero and locked until commit.

    Rows are created and locked in key order; with the ledger accounts locked after them in every
    transaction of the payment path, concurrent batches queue instead of deadlocking.
    """
    if not wanted:
        return {}
    return await _lock_usage_rows(await pg.raw(conn), sorted(wanted), wanted)


_KEY_ARRAYS = "$1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[]"
_LOCK_ROWS = (
    "SELECT {columns} FROM limit_usage AS u WHERE (u.account_id, u.direction, u.period, u.period_key)"
    f" IN (SELECT * FROM unnest({_KEY_ARRAYS}))"
    " ORDER BY u.account_id, u.direction, u.period, u.period_key FOR UPDATE"
)
"""Rows locked in key order: the order in which every transaction of the payment path locks them."""
_LOCK_USAGE = _LOCK_ROWS.format(columns="u.account_id, u.direction, u.period, u.period_key, u.used_minor")
_KEY_MATCH = (
    "u.account_id = v.account_id AND u.direction = v.direction"
    " AND u.period = v.period AND u.period_key = v.period_key"
)


def _key_columns(keys: list[UsageKey]) -> list[list[str]]:
    return [[k[i] for k in keys] for i in range(4)]


async def lock_usage_and_accounts(
    conn: AsyncConnection, wanted: dict[UsageKey, tuple[str, int | None]], account_ids: Sequence[str]
) -> tuple[dict[UsageKey, int], dict[str, tuple[str, int, int]]]:
    """`lock_usage`, then `ledger.lock_balances` of the accounts: both locks in one statement, which
    reads (and so locks) every usage row before the first account."""
    if not wanted or not account_ids:
        return await lock_usage(conn, wanted), await ledger.lock_balances(conn, account_ids)
    raw = await pg.raw(conn)
    keys = sorted(wanted)
    columns = _key_columns(keys)
    await _create_usage_rows(raw, keys, columns, wanted)
    rows = await raw.fetch(_LOCK_BOTH, *columns, sorted(set(account_ids)))
    usage: dict[UsageKey, int] = {}
    funds: dict[str, tuple[str, int, int]] = {}
    for r in rows:
        if r[1] is None:
            funds[r[0]] = (r[5], int(r[6]), int(r[7]))
        else:
            usage[(r[0], r[1], r[2], r[3])] = int(r[4])
    return usage, funds


_LOCK_BOTH = (
    "WITH usage AS MATERIALIZED (" + _LOCK_USAGE + "), funds AS MATERIALIZED ("
    " SELECT account_id, currency, balance_minor, held_minor FROM ledger_accounts"
    " WHERE account_id = ANY($5::varchar[]) ORDER BY account_id FOR NO KEY UPDATE"
    ")"
    " SELECT account_id, direction, period, period_key, used_minor,"
    " NULL::varchar, NULL::bigint, NULL::bigint FROM usage"
    " UNION ALL"
    " SELECT account_id, NULL, NULL, NULL, NULL, currency, balance_minor, held_minor FROM funds"
)
"""The usage rows, then the accounts, each in key order: UNION ALL reads its first branch to the end
before it starts the second, so the locks come in the order every writer of these rows takes them.
The accounts' lock is `ledger.lock_balances`'s, FOR NO KEY UPDATE (the module says why)."""


async def _lock_usage_rows(
    raw: asyncpg.Connection, keys: list[UsageKey], wanted: dict[UsageKey, tuple[str, int | None]]
) -> dict[UsageKey, int]:
    columns = _key_columns(keys)
    await _create_usage_rows(raw, keys, columns, wanted)
    rows = await raw.fetch(
        _LOCK_USAGE,
        *columns,
    )
    return {(r[0], r[1], r[2], r[3]): int(r[4]) for r in rows}


async def _create_usage_rows(
    raw: asyncpg.Connection,
    keys: list[UsageKey],
    columns: list[list[str]],
    wanted: dict[UsageKey, tuple[str, int | None]],
) -> None:
    """Rows at zero for the keys (sorted, and as `_key_columns`) that have none yet, in key order."""
    await raw.execute(
        "INSERT INTO limit_usage (account_id, direction, period, period_key, currency, used_minor, cap_minor)"
        " SELECT v.account_id, v.direction, v.period, v.period_key, v.currency, 0, v.cap_minor"
        f" FROM unnest({_KEY_ARRAYS}, $5::varchar[], $6::bigint[])"
        " AS v(account_id, direction, period, period_key, currency, cap_minor)"
        " ON CONFLICT DO NOTHING",
        *columns,
        [wanted[k][0] for k in keys],
        [wanted[k][1] for k in keys],
    )


async def write_usage(conn: AsyncConnection, usage: dict[UsageKey, tuple[int, int | None]]) -> None:
    """Set (used, cap) of rows locked by `lock_usage`."""
    if not usage:
        return
    keys = sorted(usage)
    await (await pg.raw(conn)).execute(
        "UPDATE limit_usage AS u SET used_minor = v.used_minor, cap_minor = v.cap_minor"
        f" FROM unnest({_KEY_ARRAYS}, $5::bigint[], $6::bigint[])"
        " AS v(account_id, direction, period, period_key, used_minor, cap_minor)"
        f" WHERE {_KEY_MATCH}",
        *_key_columns(keys),
        [usage[k][0] for k in keys],
        [usage[k][1] for k in keys],
    )


async def release_many(conn: AsyncConnection, releases: dict[UsageKey, int]) -> None:
    """Subtract usage from many rows, locked in key order first (the order every writer uses)."""
    if not releases:
        return
    raw = await pg.raw(conn)
    keys = sorted(releases)
    columns = _key_columns(keys)
    await raw.execute(_LOCK_ROWS.format(columns="1"), *columns)
    await raw.execute(
        "UPDATE limit_usage AS u SET used_minor = u.used_minor - v.amount"
        f" FROM unnest({_KEY_ARRAYS}, $5::bigint[])"
        " AS v(account_id, direction, period, period_key, amount)"
        f" WHERE {_KEY_MATCH}",
        *columns,
        [releases[k] for k in keys],
    )


class LimitsRepository:
    """Limit usage as the limits service reads it, on a unit of work's connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def usage(
        self, *, account_id: str, direction: Direction, keys: dict[Period, str]
    ) -> dict[Period, int]:
        """Minor units used in each period the keys name (0 where nothing is booked yet)."""
        found = {period: 0 for period in keys}
        rows = await self._conn.execute(
            select(limit_usage.c.period, limit_usage.c.period_key, limit_usage.c.used_minor).where(
                limit_usage.c.account_id == account_id, limit_usage.c.direction == direction.value
            )
        )
        for period, key, used in rows:
            if keys.get(Period(period)) == key:
                found[Period(period)] = int(used)
        return found

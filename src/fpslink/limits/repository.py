"""Atomic limit usage: one conditional upsert per period reserves, one update releases."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.limits.models import limit_usage
from fpslink.limits.policy import Direction, Period


async def reserve(
    conn: AsyncConnection,
    *,
    account_id: str,
    direction: Direction,
    period: Period,
    period_key: str,
    currency: str,
    amount_minor: int,
    limit_minor: int | None,
) -> bool:
    """Add usage if it stays within `limit_minor` (None: no limit, usage is still counted).

    INSERT .. ON CONFLICT DO UPDATE .. WHERE locks the usage row and evaluates the condition on its
    latest committed value, so concurrent reservations from any number of workers cannot overshoot.
    """
    if limit_minor is not None and amount_minor > limit_minor:
        return False
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(limit_usage).values(
        account_id=account_id,
        direction=direction.value,
        period=period.value,
        period_key=period_key,
        currency=currency,
        used_minor=amount_minor,
        cap_minor=limit_minor,
    )
    new_total = limit_usage.c.used_minor + stmt.excluded.used_minor
    upsert = stmt.on_conflict_do_update(
        index_elements=[
            limit_usage.c.account_id,
            limit_usage.c.direction,
            limit_usage.c.period,
            limit_usage.c.period_key,
        ],
        set_={"used_minor": new_total, "cap_minor": stmt.excluded.cap_minor},
        where=(new_total <= limit_minor) if limit_minor is not None else None,
    ).returning(limit_usage.c.used_minor)
    return (await conn.execute(upsert)).first() is not None


async def release(
    conn: AsyncConnection,
    *,
    account_id: str,
    direction: Direction,
    period: Period,
    period_key: str,
    amount_minor: int,
) -> None:
    await conn.execute(
        update(limit_usage)
        .where(
            limit_usage.c.account_id == account_id,
            limit_usage.c.direction == direction.value,
            limit_usage.c.period == period.value,
            limit_usage.c.period_key == period_key,
        )
        .values(used_minor=limit_usage.c.used_minor - amount_minor)
    )


async def usage(
    conn: AsyncConnection, *, account_id: str, direction: Direction, keys: dict[Period, str]
) -> dict[Period, int]:
    found = {period: 0 for period in keys}
    rows = await conn.execute(
        select(limit_usage.c.period, limit_usage.c.period_key, limit_usage.c.used_minor).where(
            limit_usage.c.account_id == account_id, limit_usage.c.direction == direction.value
        )
    )
    for period, key, used in rows:
        if keys.get(Period(period)) == key:
            found[Period(period)] = int(used)
    return found

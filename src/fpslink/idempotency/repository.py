"""Idempotency keys: bind once per (participant, key), look up, complete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.idempotency.models import idempotency_keys as keys


@dataclass(frozen=True, slots=True)
class KeyRecord:
    scope: str
    key: str
    endpoint: str
    fingerprint: str
    payment_id: str | None
    response_status: int | None
    response_body: str | None
    lease_until: datetime
    completed_at: datetime | None


class IdempotencyRepository:
    """The keys of the idempotency service, on a unit of work's connection. The payment path binds
    and completes its keys in batches with the functions below, on its own transaction."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def bind(
        self,
        *,
        scope: str,
        key: str,
        endpoint: str,
        fingerprint: str,
        payment_id: str | None,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
        completed: bool = False,
    ) -> bool:
        """Claim the key; False if it is already bound (by a committed or concurrent request)."""
        stmt = (
            postgresql.insert(keys)
            .values(
                participant_id=scope,
                key=key,
                endpoint=endpoint,
                fingerprint=fingerprint,
                payment_id=payment_id,
                created_at=now,
                lease_until=lease_until,
                completed_at=now if completed else None,
                expires_at=expires_at,
            )
            .on_conflict_do_nothing(index_elements=[keys.c.participant_id, keys.c.key])
            .returning(keys.c.key)
        )
        return (await self._conn.execute(stmt)).first() is not None

    async def find(self, *, scope: str, key: str, now: datetime) -> KeyRecord | None:
        row = (
            await self._conn.execute(
                select(
                    keys.c.endpoint,
                    keys.c.fingerprint,
                    keys.c.payment_id,
                    keys.c.response_status,
                    keys.c.response_body,
                    keys.c.lease_until,
                    keys.c.completed_at,
                ).where(keys.c.participant_id == scope, keys.c.key == key, keys.c.expires_at > now)
            )
        ).first()
        if row is None:
            return None
        return KeyRecord(scope, key, *row)

    async def complete(
        self, *, scope: str, key: str, now: datetime, status: int | None = None, body: str | None = None
    ) -> None:
        await self._conn.execute(
            update(keys)
            .where(keys.c.participant_id == scope, keys.c.key == key)
            .values(completed_at=now, response_status=status, response_body=body)
        )

    async def take_over(self, *, scope: str, key: str, now: datetime, lease_until: datetime) -> bool:
        """Claim a key whose request died before completing (its lease ran out)."""
        result = await self._conn.execute(
            update(keys)
            .where(
                keys.c.participant_id == scope,
                keys.c.key == key,
                keys.c.completed_at.is_(None),
                keys.c.lease_until <= now,
            )
            .values(lease_until=lease_until)
        )
        return result.rowcount == 1

    async def release(self, *, scope: str, key: str) -> None:
        """Forget a key whose request failed before doing anything, so a retry runs afresh."""
        await self._conn.execute(delete(keys).where(keys.c.participant_id == scope, keys.c.key == key))


async def bind_many(conn: AsyncConnection, rows: Sequence[dict[str, object]]) -> set[tuple[str, str]]:
    """Claim many keys in one statement (in key order); the (scope, key) pairs this call bound."""
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda r: (str(r["participant_id"]), str(r["key"])))
    bound = await pg.insert_rows(
        await pg.raw(conn),
        keys,
        ordered,
        " ON CONFLICT (participant_id, key) DO NOTHING RETURNING participant_id, key",
    )
    return {(r[0], r[1]) for r in bound}


async def complete_many(conn: AsyncConnection, idents: Sequence[tuple[str, str]], *, now: datetime) -> None:
    """Mark keys complete: their answer no longer waits for a running request."""
    if not idents:
        return
    ordered = sorted(idents)
    await (await pg.raw(conn)).execute(
        "UPDATE idempotency_keys AS k SET completed_at = $1"
        " FROM unnest($2::varchar[], $3::varchar[]) AS v(participant_id, key)"
        " WHERE k.participant_id = v.participant_id AND k.key = v.key",
        now,
        [i[0] for i in ordered],
        [i[1] for i in ordered],
    )

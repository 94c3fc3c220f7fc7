"""Queries of webhooks and the delivery outbox, on a unit of work's connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.webhooks.models import webhook_deliveries as d
from fpslink.webhooks.models import webhooks as w

Row = dict[str, Any]


class WebhooksRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert_webhook(self, row: Row) -> None:
        await self._conn.execute(w.insert().values(**row))

    async def count_active(self, participant_id: str) -> int:
        query = select(func.count()).where(w.c.participant_id == participant_id, w.c.active.is_(True))
        return int((await self._conn.execute(query)).scalar_one())

    async def active_webhooks(self, participant_id: str) -> Sequence[Row]:
        query = (
            select(w.c.webhook_id, w.c.url, w.c.created_at)
            .where(w.c.participant_id == participant_id, w.c.active.is_(True))
            .order_by(w.c.created_at, w.c.webhook_id)
        )
        return [dict(r) for r in (await self._conn.execute(query)).mappings()]

    async def deactivate(self, *, participant_id: str, webhook_id: str) -> bool:
        result = await self._conn.execute(
            update(w)
            .where(w.c.webhook_id == webhook_id, w.c.participant_id == participant_id, w.c.active.is_(True))
            .values(active=False)
        )
        return result.rowcount == 1

    async def deliveries_page(
        self, *, participant_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> Sequence[Row]:
        query = (
            select(d, w.c.url)
            .join(w, w.c.webhook_id == d.c.webhook_id)
            .where(d.c.participant_id == participant_id)
            .order_by(d.c.created_at.desc(), d.c.delivery_id.desc())
            .limit(limit)
        )
        if after is not None:
            at, delivery_id = after
            query = query.where(
                or_(d.c.created_at < at, and_(d.c.created_at == at, d.c.delivery_id < delivery_id))
            )
        return [dict(r) for r in (await self._conn.execute(query)).mappings()]

    async def due(self, *, now: datetime, limit: int) -> Sequence[Row]:
        query = (
            select(d.c.delivery_id, d.c.next_attempt_at, d.c.attempts)
            .where(d.c.status == "PENDING", d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at)
            .limit(limit)
        )
        return [dict(r) for r in (await self._conn.execute(query)).mappings()]

    async def claim(
        self,
        *,
        delivery_id: str,
        seen_next_attempt_at: datetime,
        attempts: int,
        lease_until: datetime,
    ) -> bool:
        """Compare-and-set: only the worker that still sees the row as it read it takes the attempt.

        Moving next_attempt_at to the lease's end means a worker that dies mid-send leaves the delivery
        due again once the lease is over: at-least-once, never two concurrent sends of one attempt.
        """
        result = await self._conn.execute(
            update(d)
            .where(
                d.c.delivery_id == delivery_id,
                d.c.status == "PENDING",
                d.c.next_attempt_at == seen_next_attempt_at,
                d.c.attempts == attempts,
            )
            .values(next_attempt_at=lease_until, attempts=attempts + 1)
        )
        return result.rowcount == 1

    async def attempt_target(self, delivery_id: str) -> Row | None:
        query = (
            select(d, w.c.url, w.c.secret, w.c.active)
            .join(w, w.c.webhook_id == d.c.webhook_id)
            .where(d.c.delivery_id == delivery_id)
        )
        row = (await self._conn.execute(query)).mappings().first()
        return dict(row) if row else None

    async def record_attempt(
        self,
        *,
        delivery_id: str,
        attempts: int,
        status: str,
        next_attempt_at: datetime,
        status_code: int | None,
        error: str | None,
        delivered_at: datetime | None,
    ) -> None:
        await self._conn.execute(
            update(d)
            .where(d.c.delivery_id == delivery_id, d.c.status == "PENDING", d.c.attempts == attempts)
            .values(
                status=status,
                next_attempt_at=next_attempt_at,
                last_status_code=status_code,
                last_error=error[:300] if error else None,
                delivered_at=delivered_at,
            )
        )

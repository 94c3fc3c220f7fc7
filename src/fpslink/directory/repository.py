"""The FPS side of the proxy directory: +852 numbers and the accounts they point to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.directory.models import proxies


class ProxiesRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert(
        self, *, proxy_type: str, proxy_value: str, account_id: str, participant_id: str, now: datetime
    ) -> None:
        """Register a number; the primary key refuses one that is registered already."""
        await self._conn.execute(
            proxies.insert().values(
                proxy_type=proxy_type,
                proxy_value=proxy_value,
                account_id=account_id,
                participant_id=participant_id,
                created_at=now,
            )
        )

    async def account_id_of(self, *, proxy_type: str, proxy_value: str) -> str | None:
        query = select(proxies.c.account_id).where(
            proxies.c.proxy_type == proxy_type, proxies.c.proxy_value == proxy_value
        )
        row = (await self._conn.execute(query)).first()
        return None if row is None else str(row[0])

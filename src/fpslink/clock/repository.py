"""The sandbox clock's row: read (locked while a move is decided), moved with its NOTIFY."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.clock.models import sandbox_clock
from ibps_wire.sandbox_clock import CHANNEL, micros_of, offset_of

_MOVE: Final = text(
    "WITH moved AS (UPDATE sandbox_clock SET offset_us = :offset_us, moved_at = :moved_at"
    " WHERE id = 1 RETURNING offset_us)"
    f" SELECT pg_notify('{CHANNEL}', offset_us::text) FROM moved"
)
"""One statement: the new offset and its announcement, delivered to every listener on commit."""


@dataclass(frozen=True, slots=True)
class ClockRecord:
    offset: timedelta
    moved_at: datetime | None


class ClockRepository:
    """The one row of `sandbox_clock`, on a unit of work's connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def read(self, *, lock: bool = False) -> ClockRecord:
        """The stored offset; `lock` holds the row until commit, so that moves decide one at a time."""
        stmt = select(sandbox_clock.c.offset_us, sandbox_clock.c.moved_at).where(sandbox_clock.c.id == 1)
        row = (await self._conn.execute(stmt.with_for_update() if lock else stmt)).first()
        if row is None:
            return ClockRecord(timedelta(0), None)
        return ClockRecord(offset_of(row.offset_us), row.moved_at)

    async def move(self, *, offset: timedelta, moved_at: datetime) -> bool:
        """Store the new offset and NOTIFY the workers (on commit); False if there is no row."""
        found = await self._conn.execute(_MOVE, {"offset_us": micros_of(offset), "moved_at": moved_at})
        return found.first() is not None

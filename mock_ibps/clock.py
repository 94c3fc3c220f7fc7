"""IBPS's time: its wall clock plus the offset that the gateway's test clock sets.

The gateway alone decides the offset (`PUT /ibps/v1/sandbox/clock`, behind the token) and sets it
here before it commits its own, so that both sides date transfers, statements and business days
alike. It is kept in this service's database, read at start-up and followed by NOTIFY
(`ibps_wire.sandbox_clock`), so every process and a restarted one run at the same time; the
transfer path never queries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ibps_wire import sandbox_clock
from mock_ibps import pg
from mock_ibps import repository as repo
from mock_ibps.domain import LedgerStateError, now_utc

log = logging.getLogger("mock_ibps.clock")


class IbpsClock:
    """The offset this process runs at, its reads and its one write."""

    def __init__(self, engine: AsyncEngine, *, wall: Callable[[], datetime] = now_utc) -> None:
        self._engine = engine
        self._wall = wall
        self.offset = sandbox_clock.SandboxOffset()
        self._follower: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        """IBPS's time: what transfers are dated by. No query: the offset is in memory."""
        return self._wall() + self.offset.value

    async def start(self) -> None:
        """Read the offset before serving, then follow it for as long as the process runs."""
        self._follower = await sandbox_clock.start(
            self._read,
            sandbox_clock.connector(self._engine),
            self.offset,
            listen=True,
            name="mock-ibps-sandbox-clock",
        )

    async def read(self) -> None:
        """Read the offset once, without following it: for a command that works offline."""
        self.offset.set(await self._read())

    async def _read(self) -> timedelta:
        async with self._engine.connect() as conn:
            return await sandbox_clock.read(await pg.raw(conn))

    async def stop(self) -> None:
        await sandbox_clock.stop(self._follower)

    async def set(self, offset_us: int) -> None:
        """Store the offset the gateway decided, announce it to the other processes, and run at it."""
        async with self._engine.begin() as conn:
            if not await repo.set_clock_offset(conn, offset_us=offset_us, now=self._wall()):
                raise LedgerStateError("sandbox_clock has no row: run `mock-ibps migrate`")
        self.offset.set(sandbox_clock.offset_of(offset_us))
        log.warning("sandbox clock: IBPS now runs %s ahead of its wall clock", self.offset.value)

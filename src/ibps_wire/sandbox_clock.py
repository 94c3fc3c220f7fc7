"""The sandbox clock's plumbing, the same in both services: an offset from the wall clock that each
process keeps in memory and follows from its database.

Each service keeps the offset in a one-row table `sandbox_clock` (`offset_us`, microseconds, never
negative) and announces a change with `NOTIFY sandbox_clock` in the transaction that makes it. A
process reads the row at start-up and then follows it on a connection of its own (`follow`):
`LISTEN sandbox_clock`, and on each notification the row is read again on that connection, so the
last value read is the last one committed, whatever order the notifications and reads cross in.
The payment path never queries it: the time is the wall clock plus the offset in memory.

A connection that dies is replaced, and the row read again, after `RETRY_S` (doubling up to
`RESYNC_S` while it keeps failing); the row is also read every `RESYNC_S` in case a notification was
lost with a connection that died without saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from ibps_wire import pg

log = logging.getLogger("ibps_wire.sandbox_clock")

CHANNEL: Final = "sandbox_clock"
"""The NOTIFY channel of both services (each in its own database)."""
READ_SQL: Final = "SELECT offset_us FROM sandbox_clock WHERE id = 1"
"""The follower's one statement: the row is the table's only one (its CHECK keeps id = 1)."""
HEADER: Final = "Fpslink-Sandbox-Time"
RETRY_S: Final = 1.0
RESYNC_S: Final = 30.0
READ_TIMEOUT_S: Final = 5.0
MOVES_KEPT_S: Final = 3600.0
"""How long an offset remembers a move: the longest settlement time-out the gateway allows."""
FIRST_READ_S: Final = 5.0
"""How long start-up waits for the stored offset before serving on the wall clock (and reading it in
the background): a database that does not answer must not keep a service from answering."""


def offset_of(micros: int | None) -> timedelta:
    """The stored offset as a timedelta; no row (a database before its migration) is no offset."""
    return timedelta(microseconds=micros or 0)


def micros_of(offset: timedelta) -> int:
    """A timedelta as whole microseconds, exactly (no float on the way)."""
    return (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds


def header_value(moment: datetime) -> str:
    """`2026-12-07T10:00:00Z`: the instant in UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SandboxOffset:
    """How far this process's sandbox time is ahead of the wall clock, as last read from its database.

    `known` is False until a read has succeeded; a process whose database was out of reach at
    start-up keeps trying (`follow`) and runs on the wall clock meanwhile.
    """

    value: timedelta = timedelta(0)
    known: bool = False
    _second: int = -1
    _header: bytes = b""
    _moves: deque[tuple[float, timedelta]] = field(default_factory=deque, repr=False)
    """The forward moves this process saw in the last MOVES_KEPT_S: (time.monotonic() then, how far)."""

    _high: timedelta = timedelta(0)
    """The highest offset read: a stale read that sets it back and forth again is no second move."""

    def set(self, value: timedelta, *, at: float | None = None) -> None:
        moment = time.monotonic() if at is None else at
        if self.known and value > self._high:
            self._moves.append((moment, value - self._high))
        self._high = max(self._high, value)
        while self._moves and self._moves[0][0] < moment - MOVES_KEPT_S:
            self._moves.popleft()
        self.value = value
        self.known = True

    def moved_within(self, seconds: float, *, at: float | None = None) -> timedelta:
        """How far the offset moved forward in the last `seconds` (at most MOVES_KEPT_S) of real time,
        as this process saw it. An age in sandbox time overstates a real one by as much: a payment in
        flight when the clock moved an hour is no older for it, and a time-out must not take it from
        the batch still settling it."""
        horizon = (time.monotonic() if at is None else at) - seconds
        return sum((moved for moment, moved in self._moves if moment >= horizon), timedelta(0))

    def header(self, moment: datetime) -> bytes:
        """The header's value for `moment`, formatted once per second: it goes on every response."""
        second = int(moment.timestamp())
        if second != self._second:
            self._header = header_value(moment).encode()
            self._second = second
        return self._header


Connect = Callable[[], Awaitable[asyncpg.Connection]]


def connector(engine: AsyncEngine) -> Connect:
    """Opens an asyncpg connection to the engine's database, with the engine's own connect arguments
    (host, socket, credentials, TLS) but outside its pool: a listening connection is held for good."""
    args, options = pg.connect_options(engine)

    async def connect() -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(*args, timeout=READ_TIMEOUT_S, **options)
        return conn

    return connect


async def read(conn: asyncpg.Connection) -> timedelta:
    """The stored offset, on a plain asyncpg connection (the follower's)."""
    return offset_of(await conn.fetchval(READ_SQL, timeout=READ_TIMEOUT_S))


async def follow(connect: Connect, offset: SandboxOffset, *, listen: bool) -> None:
    """Keep `offset` equal to the stored one. With `listen`, for good: LISTEN, read, and read again on
    each notification (and every RESYNC_S). Without, only until one read has succeeded: a process
    that may not move the clock still runs at the time it was left at."""
    pause = RETRY_S
    while True:
        try:
            conn = await connect()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            log.warning("sandbox clock: database out of reach (%s); retrying in %.0f s", exc, pause)
        else:
            try:
                if await _follow_on(conn, offset, listen=listen):
                    return
                pause = RETRY_S  # it had worked: the connection was lost, not refused
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("sandbox clock: offset not read (%s); retrying in %.0f s", exc, pause)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), READ_TIMEOUT_S)
        await asyncio.sleep(pause)
        pause = min(pause * 2, RESYNC_S)


async def start(
    first_read: Callable[[], Awaitable[timedelta]],
    connect: Connect,
    offset: SandboxOffset,
    *,
    listen: bool,
    name: str,
) -> asyncio.Task[None] | None:
    """Read the offset before serving (`first_read`, within FIRST_READ_S), then follow it in a task:
    with `listen`, for good; without, only until a first read succeeds, so that a process started
    while its database was down still runs at the time the sandbox was left at. None when there is
    nothing left to follow."""
    try:
        async with asyncio.timeout(FIRST_READ_S):
            offset.set(await first_read())
    except Exception as exc:  # whatever it is, the process serves; the follower reads it later
        log.warning("sandbox clock: offset not read at start-up (%s); reading it in the background", exc)
    if offset.known and not listen:
        return None
    return asyncio.create_task(follow(connect, offset, listen=listen), name=name)


async def stop(task: asyncio.Task[None] | None) -> None:
    """End a follower that `start` began."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _follow_on(conn: asyncpg.Connection, offset: SandboxOffset, *, listen: bool) -> bool:
    """Follow on one connection; True when done (not listening), False when the connection was lost."""
    changed, lost = asyncio.Event(), asyncio.Event()
    if listen:
        await conn.add_listener(CHANNEL, lambda *_: changed.set())
        conn.add_termination_listener(lambda *_: lost.set())
    while True:
        changed.clear()
        offset.set(await read(conn))  # after LISTEN: a change committed from here on is announced
        if not listen:
            return True
        waits = [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(lost.wait())]
        try:
            await asyncio.wait(waits, timeout=RESYNC_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if lost.is_set() or conn.is_closed():
            return False

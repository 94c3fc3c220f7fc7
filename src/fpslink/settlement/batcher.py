"""Adaptive batching: concurrent requests share one database transaction and one IBPS exchange.

Nothing waits for a batch to fill. An item starts a batch at once when a slot is free; while
`max_inflight` batches are running, newcomers queue and leave together with the next free slot. At
low load every payment is a batch of one with no added latency; under load batches grow by
themselves, and the cost of a transaction or an HTTP exchange is shared by everyone in it (group
commit, as TigerBeetle and Mojaloop's position handler do).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("fpslink.batcher")

T = TypeVar("T")

_DETACH: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "batch_detach", default=None
)


def detach() -> None:
    """Give up the running batch's slot: what is left of it need not hold up the next batch.

    The batch goes on, outside the count of `max_inflight`. Settlement calls this once its
    decisions are durable (the rest contends for no lock the next batch takes first) and when what
    is left is slow (repeats, retries, back-off), so that one payment waiting out IBPS time-outs
    never holds up the payments behind it. Outside a batch, or a second time, this does nothing.
    """
    release = _DETACH.get()
    if release is not None:
        release()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a failure as seen even when its requester has stopped waiting (no asyncio warning)."""
    if not future.cancelled():
        future.exception()


class Batcher(Generic[T]):
    """Groups items for `process`, which must finish each item (or raise for the whole batch)."""

    def __init__(
        self,
        process: Callable[[list[T]], Awaitable[None]],
        *,
        max_size: int,
        max_inflight: int,
        outage: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        """`outage` tells a failure that is no bug (the database out of reach): it is logged in one
        line, since every request of the batch answers it (503) and retries."""
        if max_size < 1 or max_inflight < 1:
            raise ValueError("max_size and max_inflight must be at least 1")
        self._process = process
        self._outage = outage
        self.max_size = max_size
        self.max_inflight = max_inflight
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        """Batches holding a slot."""
        self._tasks: set[asyncio.Task[None]] = set()
        """Every running batch, detached ones included."""
        self._kick_scheduled = False
        self._closed = False
        self.batches = 0
        self.items = 0

    async def run(self, item: T, *, wait_s: float | None = None) -> bool:
        """Put `item` through its batch; False if `wait_s` passed first (the batch goes on).

        A failure of the batch is raised here, in every request of the batch.
        """
        if self._closed:
            raise RuntimeError("the gateway is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(_retrieve)
        self._queue.append((item, future))
        if not self._kick_scheduled:
            # items submitted in the same turn of the loop leave together
            self._kick_scheduled = True
            loop.call_soon(self._kick)
        try:
            await asyncio.wait_for(asyncio.shield(future), wait_s)
        except TimeoutError:
            return False
        return True

    def _kick(self) -> None:
        self._kick_scheduled = False
        loop = asyncio.get_running_loop()
        while self._queue and len(self._inflight) < self.max_inflight:
            batch, self._queue = self._queue[: self.max_size], self._queue[self.max_size :]
            # a fresh context: the batch must not inherit one request's deadline or log fields
            task = loop.create_task(self._one(batch), context=contextvars.Context())
            self._inflight.add(task)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _release(self, task: asyncio.Task[None]) -> None:
        if task in self._inflight:
            self._inflight.discard(task)
            if self._queue and not self._kick_scheduled:
                self._kick_scheduled = True
                asyncio.get_running_loop().call_soon(self._kick)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._release(task)

    async def _one(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        task = asyncio.current_task()
        if task is not None:  # this task runs in a context of its own: the setting stays here
            _DETACH.set(lambda: self._release(task))
        self.batches += 1
        self.items += len(batch)
        try:
            await self._process([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except BaseException as exc:  # a crash hook's exception included: every waiter sees it
            if not isinstance(exc, Exception):
                log.warning("batch of %d stopped by %r", len(batch), exc)
            elif self._outage(exc):
                log.warning("batch of %d failed: %s", len(batch), _first_line(exc))
            else:
                log.exception("batch of %d failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        else:
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def aclose(self, *, grace_s: float = 5.0) -> None:
        """Stop taking items; let running batches finish for up to `grace_s`, then cancel them.

        A payment cut short here is left in a state the recovery sweep finishes.
        """
        self._closed = True
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

"""The test clock: the operator moves the sandbox's time forward, for the gateway and mock_ibps at once.

A move is decided on the stored offset, locked for the decision (so two moves never cross), and
applied in this order: mock_ibps first, then the gateway's row and its NOTIFY in one commit. If
mock_ibps does not take it, the gateway's transaction rolls back and nothing moves; if the gateway's
commit fails after mock_ibps took it, mock_ibps is set back. This worker runs at the new time at
once; the others when the NOTIFY reaches them (`ibps_wire.sandbox_clock.follow`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from fpslink.clock import policy
from fpslink.config import Settings
from fpslink.db import Clock
from fpslink.errors import Conflict, UpstreamUnavailable
from fpslink.ibps_client import IbpsError, IbpsRefused, IbpsUnavailable
from fpslink.participants.service import require_operator
from fpslink.principal import Principal
from fpslink.uow import UnitsOfWork
from ibps_wire.sandbox_clock import SandboxOffset, micros_of, offset_of
from ibps_wire.schemas import ClockOut

log = logging.getLogger("fpslink.clock")


class IbpsClock(Protocol):
    """What the test clock asks of IBPS: its offset, read and set."""

    async def clock(self) -> ClockOut: ...

    async def set_clock(self, offset_us: int) -> ClockOut: ...


@dataclass(frozen=True, slots=True)
class ClockStatus:
    enabled: bool
    now: datetime
    """The sandbox's time in this worker: what every service reads."""
    real_now: datetime
    offset: timedelta
    ibps_now: datetime | None
    """mock_ibps's time, None when it did not answer."""
    ibps_offset: timedelta | None


class ClockService:
    """Reads and moves the sandbox's time; built once per process (`fpslink.context.Gateway`)."""

    def __init__(
        self,
        uow: UnitsOfWork,
        ibps: IbpsClock,
        *,
        wall: Clock,
        offset: SandboxOffset,
        settings: Settings,
    ) -> None:
        self._uow = uow
        self._ibps = ibps
        self._wall = wall
        self._offset = offset
        self._settings = settings

    async def status(self) -> ClockStatus:
        """This worker's time and offset, and mock_ibps's, so that a difference shows."""
        try:
            ibps: ClockOut | None = await self._ibps.clock()
        except IbpsError:
            ibps = None
        real_now = self._wall()
        offset = self._offset.value
        return ClockStatus(
            enabled=self._settings.sandbox_clock,
            now=real_now + offset,
            real_now=real_now,
            offset=offset,
            ibps_now=None if ibps is None else ibps.now,
            ibps_offset=None if ibps is None else offset_of(ibps.offset_us),
        )

    async def advance(self, principal: Principal, *, by: timedelta) -> ClockStatus:
        """Move the sandbox's time `by` ahead; answers the clock as it now is."""
        return await self._move(principal, lambda offset, wall: policy.advance(offset, wall, by=by))

    async def move_to(self, principal: Principal, *, to: datetime) -> ClockStatus:
        """Move the sandbox's time to the instant `to`, which must be later than its time now."""
        return await self._move(principal, lambda offset, wall: policy.move_to(offset, wall, to=to))

    async def _move(
        self, principal: Principal, decide: Callable[[timedelta, datetime], policy.Move]
    ) -> ClockStatus:
        require_operator(principal)
        if not self._settings.sandbox_clock:
            raise policy.disabled()
        async with self._uow() as tx:
            stored = await tx.clock.read(lock=True)
            wall = self._wall()
            move = decide(stored.offset, wall)
            ibps = await self._set_ibps(move.offset, previous=stored.offset)
            try:
                if not await tx.clock.move(offset=move.offset, moved_at=wall):
                    raise Conflict(
                        "the sandbox clock has no row: run `fpslink migrate`", code="SANDBOX_CLOCK_MISSING"
                    )
                await tx.commit()
            except BaseException:
                await self._restore_ibps(stored.offset)
                raise
        self._offset.set(move.offset)
        log.warning(
            "sandbox clock moved from %s to %s (offset %s) for every bank of this sandbox",
            move.before.isoformat(),
            move.after.isoformat(),
            move.offset,
        )
        return ClockStatus(
            enabled=True,
            now=move.after,
            real_now=wall,
            offset=move.offset,
            ibps_now=ibps.now,
            ibps_offset=offset_of(ibps.offset_us),
        )

    async def _set_ibps(self, offset: timedelta, *, previous: timedelta) -> ClockOut:
        try:
            return await self._ibps.set_clock(micros_of(offset))
        except IbpsUnavailable as exc:
            # its outcome is unknown: it may have moved, so it is set back where the gateway stays
            await self._restore_ibps(previous)
            raise UpstreamUnavailable(
                f"mock_ibps did not take the new time ({exc}); the sandbox clock did not move"
            ) from exc
        except IbpsRefused as exc:
            raise Conflict(
                f"mock_ibps refused the new time ({exc.detail}); the sandbox clock did not move",
                code="SANDBOX_CLOCK_IBPS_REFUSED",
            ) from exc

    async def _restore_ibps(self, offset: timedelta) -> None:
        """Best effort: put mock_ibps back at the gateway's offset; if it cannot be reached, the next
        move sets it, and GET /v1/sandbox/clock shows both meanwhile."""
        try:
            await self._ibps.set_clock(micros_of(offset))
        except IbpsError as exc:
            log.warning("sandbox clock: mock_ibps could not be set back to offset %s (%s)", offset, exc)

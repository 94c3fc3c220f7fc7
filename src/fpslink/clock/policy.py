"""The test clock's rules, free of I/O: time only moves forward, by a bounded step, within bounds.

The sandbox's time is the wall clock plus an offset. A move is decided on the stored offset and the
wall clock of the moment, and gives the new offset; nothing else of the gateway changes, since every
service reads the time at each use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from fpslink.errors import Conflict, InvalidRequest
from ibps_wire.sandbox_clock import header_value
from ibps_wire.schemas import MAX_CLOCK_OFFSET_US

MAX_STEP: Final = timedelta(days=366)
"""The most one move may advance: a year, leap day included, so any date of the next year is one
call away; further is several calls."""
MAX_OFFSET: Final = timedelta(microseconds=MAX_CLOCK_OFFSET_US)
"""How far ahead of the wall clock the sandbox may run (ten years, as mock_ibps also accepts): far
enough to test any limit, lifetime or retention, and well inside what dates can hold."""
ENABLE_HINT: Final = (
    "start the gateway with FPSLINK_SANDBOX_CLOCK=true (`fpslink sandbox` does); it moves the time "
    "of every bank in this sandbox"
)


def disabled() -> Conflict:
    return Conflict(
        f"the sandbox clock is off in this deployment: {ENABLE_HINT}", code="SANDBOX_CLOCK_DISABLED"
    )


@dataclass(frozen=True, slots=True)
class Move:
    """A decided move: the sandbox's time before and after, and the offset that gives the latter."""

    before: datetime
    after: datetime
    offset: timedelta


def advance(offset: timedelta, wall_now: datetime, *, by: timedelta) -> Move:
    """Move the sandbox's time `by` ahead of where it is now."""
    now = wall_now + offset
    return move_to(offset, wall_now, to=now + by)


def move_to(offset: timedelta, wall_now: datetime, *, to: datetime) -> Move:
    """Move the sandbox's time to the instant `to` (time-zone aware), which must be later than its
    time now."""
    now = wall_now + offset
    if to <= now:
        raise Conflict(
            f"the sandbox clock only moves forward: it is {header_value(now)} in the sandbox, "
            f"and {header_value(to)} is not later",
            code="SANDBOX_CLOCK_BACKWARDS",
        )
    if to - now > MAX_STEP:
        raise InvalidRequest(
            f"one move advances at most {MAX_STEP.days} days; move in several steps",
            code="SANDBOX_CLOCK_TOO_FAR",
        )
    new_offset = to - wall_now
    if new_offset > MAX_OFFSET:
        raise InvalidRequest(
            f"the sandbox runs at most {MAX_OFFSET.days} days ahead of real time; "
            f"{header_value(to)} is further",
            code="SANDBOX_CLOCK_TOO_FAR",
        )
    # in UTC, as every other time the API answers, whatever zone the caller wrote the instant in
    return Move(before=now, after=to.astimezone(UTC), offset=new_offset)

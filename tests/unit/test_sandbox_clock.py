"""The test clock without a database: its rules (forward only, bounded), the service's order of
writes (IBPS first, and IBPS set back when the gateway's own write fails), and the header's text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fpslink.clock import policy
from fpslink.clock.service import ClockService
from fpslink.config import Settings
from fpslink.console.routes import ahead
from fpslink.errors import Conflict, Forbidden, InvalidRequest, UpstreamUnavailable
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.principal import OPERATOR, Principal
from ibps_wire.sandbox_clock import SandboxOffset, header_value, micros_of
from ibps_wire.schemas import MAX_CLOCK_OFFSET_US, ClockOut
from unit.fakes import FakeDatabase, FakeIbps

WALL = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
BANK = Principal(participant_id="HKBANK", system=None)
DAY = timedelta(days=1)


# the rules ----------------------------------------------------------------------------------------


def test_an_advance_adds_to_the_offset_in_force() -> None:
    move = policy.advance(DAY, WALL, by=timedelta(hours=2))
    assert (move.before, move.after, move.offset) == (
        WALL + DAY,
        WALL + DAY + timedelta(hours=2),
        DAY + timedelta(hours=2),
    )


def test_a_move_to_an_instant_is_measured_from_the_wall_clock() -> None:
    to = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
    assert policy.move_to(DAY, WALL, to=to).offset == to - WALL


def test_a_move_to_an_instant_in_another_zone_answers_it_in_utc() -> None:
    """PUT /v1/sandbox/clock with "+08:00" answered `now` in that zone, beside `ibps_now` in UTC."""
    to = datetime(2026, 6, 30, 7, 0, tzinfo=timezone(timedelta(hours=8)))
    after = policy.move_to(DAY, WALL, to=to).after
    assert after == to and after.utcoffset() == timedelta(0)


@pytest.mark.parametrize("by", [timedelta(0), timedelta(seconds=-1), -DAY])
def test_time_never_moves_back_nor_stands(by: timedelta) -> None:
    with pytest.raises(Conflict) as refused:
        policy.advance(DAY, WALL, by=by)
    assert refused.value.code == "SANDBOX_CLOCK_BACKWARDS"
    with pytest.raises(Conflict):
        policy.move_to(DAY, WALL, to=WALL + DAY + by)


def test_one_move_is_at_most_a_year_and_the_sandbox_at_most_ten_years_ahead() -> None:
    assert policy.advance(timedelta(0), WALL, by=policy.MAX_STEP).offset == policy.MAX_STEP
    with pytest.raises(InvalidRequest) as step:
        policy.advance(timedelta(0), WALL, by=policy.MAX_STEP + timedelta(microseconds=1))
    assert step.value.code == "SANDBOX_CLOCK_TOO_FAR"
    near = policy.MAX_OFFSET - timedelta(hours=1)
    assert policy.advance(near, WALL, by=timedelta(hours=1)).offset == policy.MAX_OFFSET
    with pytest.raises(InvalidRequest) as total:
        policy.advance(near, WALL, by=timedelta(hours=1, microseconds=1))
    assert total.value.code == "SANDBOX_CLOCK_TOO_FAR"
    assert micros_of(policy.MAX_OFFSET) == MAX_CLOCK_OFFSET_US, "mock_ibps accepts what the gateway allows"


def test_the_offset_remembers_its_forward_moves_for_a_while() -> None:
    offset = SandboxOffset()
    offset.set(timedelta(days=2), at=100.0)  # the first read at start-up is no move
    assert offset.moved_within(30, at=100.0) == timedelta(0)
    offset.set(timedelta(days=2, hours=1), at=110.0)
    offset.set(timedelta(days=2, hours=1), at=115.0)  # read again, unchanged
    offset.set(timedelta(days=2, hours=3), at=120.0)
    assert offset.moved_within(30, at=125.0) == timedelta(hours=3)
    assert offset.moved_within(30, at=145.0) == timedelta(hours=2)  # the first move is 35 s old
    assert offset.moved_within(30, at=151.0) == timedelta(0)
    offset.set(timedelta(days=2, hours=1), at=160.0)  # a stale read, then the row again
    offset.set(timedelta(days=2, hours=3), at=161.0)
    assert offset.moved_within(30, at=162.0) == timedelta(0)


def test_the_header_is_utc_to_the_second_and_formatted_once_per_second() -> None:
    offset = SandboxOffset()
    moment = datetime(2026, 12, 7, 18, 0, 0, 250_000, tzinfo=UTC)
    first = offset.header(moment)
    assert first == b"2026-12-07T18:00:00Z" == header_value(moment).encode()
    assert offset.header(moment + timedelta(milliseconds=700)) is first
    assert offset.header(moment + timedelta(seconds=1)) == b"2026-12-07T18:00:01Z"


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(days=1, hours=2, minutes=30), "1 d 2 h 30 min"),
        (timedelta(hours=7), "7 h"),
        (timedelta(seconds=59), "under a minute"),
    ],
)
def test_the_console_says_how_far_the_clock_moved(offset: timedelta, words: str) -> None:
    assert ahead(offset) == words


# the service ----------------------------------------------------------------------------------------


def service(db: FakeDatabase, ibps: FakeIbps, *, enabled: bool = True) -> tuple[ClockService, SandboxOffset]:
    offset = SandboxOffset()
    made = ClockService(
        db.uow, ibps, wall=lambda: WALL, offset=offset, settings=Settings(sandbox_clock=enabled)
    )
    return made, offset


async def test_a_move_sets_ibps_then_stores_the_offset_and_runs_at_it() -> None:
    db, ibps = FakeDatabase(), FakeIbps()
    clock, offset = service(db, ibps)
    moved = await clock.advance(OPERATOR, by=DAY)
    assert (moved.now, moved.offset, moved.ibps_offset) == (WALL + DAY, DAY, DAY)
    assert ibps.calls == [("set_clock", {"offset_us": micros_of(DAY)}), ("clock", {})]
    assert db.rows.clock.offset == DAY and db.rows.clock.moved_at == WALL
    assert offset.value == DAY


async def test_a_move_is_for_the_operator_and_only_where_enabled() -> None:
    db, ibps = FakeDatabase(), FakeIbps()
    clock, _ = service(db, ibps)
    with pytest.raises(Forbidden):
        await clock.advance(BANK, by=DAY)
    off, _ = service(db, ibps, enabled=False)
    with pytest.raises(Conflict) as refused:
        await off.advance(OPERATOR, by=DAY)
    assert (
        refused.value.code == "SANDBOX_CLOCK_DISABLED"
        and "FPSLINK_SANDBOX_CLOCK=true" in refused.value.detail
    )
    assert ibps.calls == [] and db.commits == 0


async def test_when_ibps_does_not_answer_nothing_moves_and_ibps_is_set_back() -> None:
    db, ibps = FakeDatabase(), FakeIbps()
    clock, offset = service(db, ibps)
    await clock.advance(OPERATOR, by=DAY)
    ibps.fail_with = IbpsUnavailable("connection refused")
    with pytest.raises(UpstreamUnavailable):
        await clock.advance(OPERATOR, by=DAY)
    assert db.rows.clock.offset == DAY and offset.value == DAY
    assert [args for call, args in ibps.calls if call == "set_clock"][-2:] == [
        {"offset_us": micros_of(2 * DAY)},
        {"offset_us": micros_of(DAY)},
    ], "its outcome was unknown, so it is set back to the stored offset"


async def test_when_ibps_refuses_nothing_moves() -> None:
    db, ibps = FakeDatabase(), FakeIbps()
    clock, offset = service(db, ibps)
    ibps.fail_with = IbpsRefused(404, "NOT_FOUND", "no such path")
    with pytest.raises(Conflict) as refused:
        await clock.advance(OPERATOR, by=DAY)
    assert refused.value.code == "SANDBOX_CLOCK_IBPS_REFUSED"
    assert db.rows.clock.offset == timedelta(0) and offset.value == timedelta(0)


async def test_when_the_gateway_cannot_commit_ibps_is_set_back() -> None:
    db, ibps = FakeDatabase(), FakeIbps()
    clock, offset = service(db, ibps)
    db.commit_fails = ConnectionResetError("connection lost at COMMIT")
    with pytest.raises(ConnectionResetError):
        await clock.advance(OPERATOR, by=DAY)
    assert ibps.clock_offset_us == 0, "IBPS runs at the gateway's time again"
    assert db.rows.clock.offset == timedelta(0) and offset.value == timedelta(0)


class LostReply(FakeIbps):
    """IBPS takes the new offset, but its answer never arrives."""

    async def set_clock(self, offset_us: int) -> ClockOut:
        answer = await super().set_clock(offset_us)
        if offset_us:
            raise IbpsUnavailable("read timed out")
        return answer


async def test_a_move_whose_answer_was_lost_leaves_ibps_where_the_gateway_is() -> None:
    db, ibps = FakeDatabase(), LostReply()
    clock, _ = service(db, ibps)
    with pytest.raises(UpstreamUnavailable):
        await clock.advance(OPERATOR, by=DAY)
    assert ibps.clock_offset_us == 0 and db.rows.clock.offset == timedelta(0)


async def test_the_status_shows_both_sides_or_that_ibps_did_not_answer() -> None:
    db, ibps = FakeDatabase(), FakeIbps()
    clock, offset = service(db, ibps, enabled=False)
    offset.set(DAY)
    ibps.clock_offset_us = micros_of(DAY)
    seen = await clock.status()
    assert (seen.enabled, seen.now, seen.real_now, seen.offset, seen.ibps_offset) == (
        False,
        WALL + DAY,
        WALL,
        DAY,
        DAY,
    )
    ibps.fail_with = IbpsUnavailable("down")
    seen = await clock.status()
    assert (seen.ibps_now, seen.ibps_offset) == (None, None)

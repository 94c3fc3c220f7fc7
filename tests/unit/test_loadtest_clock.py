"""The simulated day's clock (loadtests/fpsload/clock.py): the gateway's test clock moved to each
simulated hour, once; and the gateway's own hour when its clock cannot move.

The gateway here is a recording stand-in for its two clock routes; `fpslink loadtest --shape` runs
the real one (tests/integration/test_gw_loadtest.py).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

# By path, not through the fpsload package, whose import brings locust's monkey-patching of the
# standard library into this test process; the module needs only `requests`.
_PATH = Path(__file__).resolve().parents[2] / "loadtests" / "fpsload" / "clock.py"
_spec = importlib.util.spec_from_file_location("fpsload_clock_under_test", _PATH)
assert _spec is not None and _spec.loader is not None
clock = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = clock
_spec.loader.exec_module(clock)
UTC8, SandboxDay = clock.UTC8, clock.SandboxDay
hour_of_day, next_midnight = clock.hour_of_day, clock.next_midnight


@dataclass
class Answer:
    status_code: int
    body: Any

    def json(self) -> Any:
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


@dataclass
class ClockRoutes:
    """GET and PUT /v1/sandbox/clock as the gateway answers them: forward moves only."""

    now: datetime
    enabled: bool = True
    down: bool = False
    refuse_key: bool = False
    garbled: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    puts: list[datetime] = field(default_factory=list)
    gets: int = 0

    def request(self, method: str, url: str, *, json: Any, timeout: float) -> Answer:
        assert url == "http://127.0.0.1:9/v1/sandbox/clock" and timeout > 0
        assert self.headers["Authorization"] == "Bearer op_key"
        if self.down:
            raise requests.ConnectionError("connection refused")
        if self.refuse_key:
            return Answer(401, {"code": "UNAUTHENTICATED"})
        if method == "GET":
            self.gets += 1
            if self.garbled:
                return Answer(200, ValueError("not JSON"))
            return Answer(200, {"enabled": self.enabled, "now": self.now.isoformat().replace("+00:00", "Z")})
        if not self.enabled:
            return Answer(409, {"code": "SANDBOX_CLOCK_DISABLED"})
        target = datetime.fromisoformat(json["now"])
        if target <= self.now:
            return Answer(409, {"code": "SANDBOX_CLOCK_BACKWARDS"})
        self.puts.append(target)
        self.now = target
        return Answer(200, {"enabled": True, "now": target.isoformat()})


class Monotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


NIGHT = datetime(2026, 12, 6, 19, 30, tzinfo=UTC)  # 03:30 on 7 December in Hong Kong
EIGHTH = datetime(2026, 12, 8, tzinfo=UTC8)  # so the simulated day is the 8th


def day_of(routes: ClockRoutes, mono: Monotonic | None = None, **options: Any) -> Any:
    return SandboxDay(
        "http://127.0.0.1:9/",
        "op_key",
        session=routes,  # type: ignore[arg-type]
        monotonic=mono or Monotonic(),
        **options,
    )


def test_each_simulated_hour_moves_the_clock_once_from_the_next_midnight() -> None:
    routes = ClockRoutes(now=NIGHT)
    mono = Monotonic()
    day = day_of(routes, mono)
    hours = []
    for h in range(24):
        for tick in range(3):  # three ticks an hour, a second apart
            hours.append(day.hour(0, h + 0.25 * tick))
            mono.t += 1
    assert routes.puts == [EIGHTH + timedelta(hours=h) for h in range(24)]
    assert day.moves == 24 and day.moving
    # the gateway's own hour: the hour moved to, and the real seconds since
    assert hours == pytest.approx([h + t / 3600 for h in range(24) for t in range(3)])
    day.hour(1, 0.5)  # the second simulated day books to a date of its own
    assert routes.puts[-1] == EIGHTH + timedelta(days=1)


def test_the_southbound_windows_edges_are_moved_to_exactly() -> None:
    routes = ClockRoutes(now=NIGHT)
    day = day_of(routes, edges=(7.5, 23.25))
    hours = [day.hour(0, quarter / 4) for quarter in range(4 * 24)]
    moved = [round((at - EIGHTH) / timedelta(hours=1), 2) for at in routes.puts]
    assert moved == sorted([*range(24), 7.5, 23.25])
    assert hours[4 * 7 : 4 * 8] == pytest.approx([7.0, 7.0, 7.5, 7.5])  # 07:00, 07:15, 07:30, 07:45


def test_a_clock_that_is_off_leaves_the_gateways_own_hour_to_decide() -> None:
    routes = ClockRoutes(now=NIGHT, enabled=False)
    mono = Monotonic()
    day = day_of(routes, mono)
    assert day.hour(0, 12.5) == pytest.approx(3.5)
    assert not day.moving and routes.puts == []
    mono.t += 5400  # an hour and a half later, whatever the simulated hour says
    assert day.hour(0, 12.9) == pytest.approx(5.0)
    routes.now += timedelta(hours=4)  # someone else moves it: read again at the next step
    assert day.hour(0, 13.0) == pytest.approx(7.5)
    assert routes.puts == []


def test_a_refused_key_stops_the_moves() -> None:
    routes = ClockRoutes(now=NIGHT, refuse_key=True)
    day = day_of(routes)
    assert day.hour(0, 12.5) == pytest.approx(hour_of_day(datetime.now(UTC)), abs=0.01)
    assert not day.moving


def test_a_sandbox_ahead_of_the_simulated_day_is_followed_until_the_day_catches_up() -> None:
    routes = ClockRoutes(now=NIGHT)
    day = day_of(routes)
    day.hour(0, 0.5)
    routes.now = EIGHTH + timedelta(hours=14)  # moved on by another hand
    assert day.hour(0, 1.5) == pytest.approx(14.0)
    assert day.moving and len(routes.puts) == 1
    assert day.hour(0, 15.0) == pytest.approx(15.0)  # the simulated day overtakes it: moves again
    assert routes.puts[-1] == EIGHTH + timedelta(hours=15)


def test_a_move_that_fails_is_tried_again_at_the_next_tick() -> None:
    routes = ClockRoutes(now=NIGHT, down=True)
    day = day_of(routes)
    assert day.hour(0, 9.0) == 9.0  # no time of the gateway known yet: the simulated one
    assert day.hour(0, 9.1) == 9.1
    routes.down = False
    assert day.hour(0, 9.2) == pytest.approx(9.0)
    assert routes.puts == [EIGHTH + timedelta(hours=9)] and day.moving


def test_an_answer_that_is_not_json_is_a_failed_move_not_an_error() -> None:
    routes = ClockRoutes(now=NIGHT, garbled=True)
    day = day_of(routes)
    assert day.hour(0, 9.0) == 9.0
    assert routes.puts == [] and day.moving


def test_follow_leaves_a_shared_sandboxs_clock_where_it_is() -> None:
    # LOADTEST_SANDBOX_CLOCK=follow: the clock is on, but this run must not move it
    routes = ClockRoutes(now=datetime(2026, 12, 7, 2, 0, tzinfo=UTC))  # 10:00 UTC+8
    mono = Monotonic()
    day = day_of(routes, mono, move=False)
    assert day.hour(0, 0.5) == pytest.approx(10.0)
    mono.t += 1800
    routes.now += timedelta(seconds=1800)
    assert day.hour(0, 0.9) == pytest.approx(10.5)
    routes.now += timedelta(hours=2)  # moved by another hand: seen at the next step
    assert day.hour(0, 3.5) == pytest.approx(12.5)
    assert routes.puts == [] and routes.gets == 2 and not day.moving


@pytest.mark.parametrize(
    ("at", "midnight"),
    [
        (datetime(2026, 12, 7, 15, 59, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC8)),
        (datetime(2026, 12, 7, 16, 0, tzinfo=UTC), datetime(2026, 12, 9, tzinfo=UTC8)),
        (datetime(2026, 12, 31, 17, 0, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC8)),
    ],
)
def test_the_simulated_day_starts_at_the_next_midnight_in_hong_kong(at: datetime, midnight: datetime) -> None:
    assert next_midnight(at) == midnight and next_midnight(at) > at


def test_a_moved_days_key_is_its_business_dates_and_grows_from_run_to_run() -> None:
    routes = ClockRoutes(now=NIGHT)
    day = day_of(routes)
    assert day.day_key(0) == 0  # not moved yet
    day.hour(0, 0.5)
    assert day.day_key(0) == EIGHTH.date().toordinal() and day.day_key(1) == EIGHTH.date().toordinal() + 1
    later_run = day_of(routes)  # the next run starts after the sandbox's time, the 8th
    later_run.hour(0, 0.5)
    assert later_run.day_key(0) > day.day_key(0)

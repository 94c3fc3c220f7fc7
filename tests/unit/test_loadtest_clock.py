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
        return self.body


@dataclass
class ClockRoutes:
    """GET and PUT /v1/sandbox/clock as the gateway answers them: forward moves only."""

    now: datetime
    enabled: bool = True
    down: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    puts: list[datetime] = field(default_factory=list)

    def request(self, method: str, url: str, *, json: Any, timeout: float) -> Answer:
        assert url == "http://127.0.0.1:9/v1/sandbox/clock" and timeout > 0
        assert self.headers["Authorization"] == "Bearer op_key"
        if self.down:
            raise requests.ConnectionError("connection refused")
        if method == "GET":
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


def day_of(routes: ClockRoutes, mono: Monotonic | None = None) -> Any:
    return SandboxDay(
        "http://127.0.0.1:9/",
        "op_key",
        session=routes,  # type: ignore[arg-type]
        monotonic=mono or Monotonic(),
    )


def test_each_simulated_hour_moves_the_clock_once_from_the_next_midnight() -> None:
    # 03:30 in Hong Kong on 7 December: the simulated day is the 8th
    routes = ClockRoutes(now=datetime(2026, 12, 6, 19, 30, tzinfo=UTC))
    day = day_of(routes)
    hours = [day.hour(0, h + 0.25) for h in range(24) for _ in range(3)]  # three ticks an hour
    assert hours == [h + 0.25 for h in range(24) for _ in range(3)]
    start = datetime(2026, 12, 8, tzinfo=UTC8)
    assert routes.puts == [start + timedelta(hours=h) for h in range(24)]
    assert day.moves == 24 and not day.following
    # the second simulated day books to a date of its own
    day.hour(1, 0.5)
    assert routes.puts[-1] == datetime(2026, 12, 9, tzinfo=UTC8)


def test_a_clock_that_is_off_leaves_the_gateways_own_hour_to_decide() -> None:
    routes = ClockRoutes(now=datetime(2026, 12, 6, 19, 30, tzinfo=UTC), enabled=False)  # 03:30 UTC+8
    mono = Monotonic()
    day = day_of(routes, mono)
    assert day.hour(0, 12.5) == pytest.approx(3.5)
    assert day.following and routes.puts == []
    mono.t += 5400  # an hour and a half later, whatever the simulated hour says
    assert day.hour(0, 20.0) == pytest.approx(5.0)


def test_a_clock_that_someone_moved_past_the_simulated_hour_is_followed() -> None:
    routes = ClockRoutes(now=datetime(2026, 12, 6, 19, 30, tzinfo=UTC))
    day = day_of(routes)
    day.hour(0, 0.5)
    routes.now = datetime(2026, 12, 8, 6, 0, tzinfo=UTC)  # 14:00 UTC+8 on the 8th, by another hand
    assert day.hour(0, 1.5) == pytest.approx(14.0)
    assert day.following and len(routes.puts) == 1


def test_a_gateway_that_does_not_answer_leaves_this_hosts_clock() -> None:
    routes = ClockRoutes(now=datetime(2026, 12, 6, 19, 30, tzinfo=UTC), down=True)
    day = day_of(routes)
    assert day.hour(0, 12.0) == pytest.approx(hour_of_day(datetime.now(UTC)), abs=0.01)
    assert day.following


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


def test_follow_leaves_a_shared_sandboxs_clock_where_it_is() -> None:
    # LOADTEST_SANDBOX_CLOCK=follow: the clock is on, but this run must not move it
    routes = ClockRoutes(now=datetime(2026, 12, 7, 2, 0, tzinfo=UTC))  # 10:00 UTC+8
    mono = Monotonic()
    day = SandboxDay("http://127.0.0.1:9/", "op_key", session=routes, monotonic=mono, move=False)  # type: ignore[arg-type]
    assert day.hour(0, 0.5) == pytest.approx(10.0)
    mono.t += 1800
    assert day.hour(0, 3.5) == pytest.approx(10.5)
    assert routes.puts == [] and day.following

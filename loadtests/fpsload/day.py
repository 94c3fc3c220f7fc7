"""The simulated 24-hour day: users per hour, the southbound service window and DayShape.

DayShape is opt-in (LOADTEST_SHAPE=day); every scenario file imports it, so that any mix can replay
the day. DAY_CLOCK is what the users read: the master's shape sets it, and tells its workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from fpsload.clock import SandboxDay
from fpsload.config import (
    DAY_SECONDS,
    DAYS,
    OPERATOR_KEY,
    PEAK_USERS,
    SANDBOX_CLOCK,
    SHAPE,
    SOUTHBOUND_WINDOW,
)

# Share of the peak user count in each simulated hour (UTC+8), 00:00 first: cross-border retail
# payments sleep from 02:00 to 06:00, ramp up with the working day, peak at lunch (12:00) and again
# in the evening (20:00), and wind down towards midnight.
HOURLY_PEAK_SHARE: tuple[float, ...] = (
    0.20, 0.12, 0.08, 0.05, 0.05, 0.06,  # 00-05 night trough
    0.12, 0.30, 0.55, 0.75, 0.85, 0.95,  # 06-11 morning ramp
    1.00, 0.95, 0.85, 0.80, 0.80, 0.85,  # 12-17 lunch peak, afternoon
    0.90, 0.90, 1.00, 0.95, 0.65, 0.35,  # 18-23 evening peak, wind-down
)  # fmt: skip
if len(HOURLY_PEAK_SHARE) != 24 or max(HOURLY_PEAK_SHARE) != 1.0:
    raise ValueError("HOURLY_PEAK_SHARE needs 24 shares, the largest 1.0 (the peak hour)")

DEFAULT_DAY_S = 1440.0  # one simulated hour per real minute
EDGE_MARGIN_S = 2.0
"""Real seconds the gateway's time must be inside the southbound window before mainland banks send:
the worker that moved the clock has it at once, the others when its NOTIFY reaches them."""
LEAD_S = 2.0
"""Real seconds before the clock is moved out of the window that mainland banks stop sending: the
requests on their way reach the gateway, which checks the hours as it binds a payment, before it."""
DEFAULT_PEAK_USERS = 20
HOUR_MESSAGE = "fpslink_simulated_hour"

log = logging.getLogger("fpslink.loadtest")


def users_at(hour: float, peak_users: int) -> int:
    """The user count of a simulated hour: its share of the peak, never below one user."""
    return max(1, round(peak_users * HOURLY_PEAK_SHARE[int(hour) % 24]))


def southbound_open(hour: float) -> bool:
    """Whether the gateway takes southbound payments at this simulated hour (FPSLINK_SOUTHBOUND_HOURS)."""
    start, end = SOUTHBOUND_WINDOW
    return start <= hour % 24 < end


def ramp_rate(peak_users: int, day_s: float) -> float:
    """Users per second that make the largest hour-to-hour step within a quarter of a simulated hour."""
    step = max(abs(users_at(h + 1, peak_users) - users_at(h, peak_users)) for h in range(24))
    return min(float(max(peak_users, 1)), max(1.0, step / max(day_s / 24 / 4, 0.25)))


@dataclass
class DayClock:
    """The simulated hour as the shape last announced it; None while no shape runs."""

    hour: float | None = None
    southbound: bool = True
    day: int = 0
    """The simulated day: while the clock moves, the ordinal of its business date (growing across
    runs); else its number in the run, from 0."""
    moving: bool = False
    """Whether the shape moves the gateway's clock (so that it jumps about an hour at a time)."""

    def set(self, hour: float | None, southbound: bool = True, *, day: int = 0, moving: bool = False) -> None:
        """Take the hour the shape announced (None: the day is over, or no shape runs)."""
        self.hour, self.southbound, self.day, self.moving = hour, southbound, day, moving


DAY_CLOCK = DayClock()


class DayShape(LoadTestShape):
    """A 24-hour day of traffic compressed into LOADTEST_DAY_SECONDS; opt in with LOADTEST_SHAPE=day.

    The simulated day starts at 00:00 (UTC+8) and follows HOURLY_PEAK_SHARE of the peak (env
    LOADTEST_PEAK_USERS, else -u), one step per simulated hour. It ends by itself after LOADTEST_DAYS
    days. Each tick tells the users the simulated hour (by message, when they run on workers), so
    that mainland banks hold southbound payments outside FPSLINK_SOUTHBOUND_HOURS; each new simulated
    hour moves the gateway's clock there first (`fpsload.clock`), so that the gateway's hours and
    business date agree with the users'.
    """

    abstract = SHAPE != "day"
    use_common_options = True  # -u is the peak and -t the day when the LOADTEST_ variables are unset
    _sandbox: SandboxDay | None = None

    def plan(self) -> tuple[int, float]:
        """(peak users, real seconds of one simulated day)."""
        options = self.runner.environment.parsed_options if self.runner is not None else None
        peak = PEAK_USERS or getattr(options, "num_users", None) or DEFAULT_PEAK_USERS
        day_s = DAY_SECONDS or getattr(options, "run_time", None) or DEFAULT_DAY_S
        return int(peak), max(float(day_s), 24.0)

    def tick(self) -> tuple[int, float] | None:
        """(users, spawn rate) for the simulated hour now; None once the last day is over."""
        peak, day_s = self.plan()
        elapsed = self.get_run_time()
        if elapsed >= day_s * DAYS:
            DAY_CLOCK.set(None)
            return None
        hour = elapsed / day_s * 24 % 24
        day = int(elapsed // day_s)
        sandbox = self._sandbox_day()
        if sandbox is None:
            self._announce(hour, southbound_open(hour), day, moving=False)
        else:
            southbound = self._southbound(sandbox, day, hour, day_s)
            self._announce(hour, southbound, sandbox.day_key(day), moving=sandbox.moving)
        return users_at(hour, peak), ramp_rate(peak, day_s)

    @staticmethod
    def _southbound(sandbox: SandboxDay, day: int, hour: float, day_s: float) -> bool:
        """Whether mainland banks may send now: the gateway (moved to the simulated hour, or on its
        own) has been in its window for EDGE_MARGIN_S, so that its other workers have the time too,
        and will still be in it LEAD_S from now, so that the users stop before the clock passes the
        window's end rather than have their payments in flight refused."""
        try:
            gateway = sandbox.hour(day, hour)
        except Exception:  # the shape must go on whatever the clock does
            log.exception("the gateway's clock could not be followed; judging by the simulated hour")
            gateway = hour
        margin_h = EDGE_MARGIN_S / 3600
        ahead = hour + 24 * LEAD_S / day_s if sandbox.moving else gateway + margin_h
        return southbound_open(gateway - margin_h) and southbound_open(gateway) and southbound_open(ahead)

    def _announce(self, hour: float, southbound: bool, day: int, *, moving: bool) -> None:
        DAY_CLOCK.set(hour, southbound, day=day, moving=moving)
        if isinstance(self.runner, MasterRunner):
            message = {"hour": hour, "southbound": southbound, "day": day, "moving": moving}
            self.runner.send_message(HOUR_MESSAGE, message)

    def _sandbox_day(self) -> SandboxDay | None:
        """The gateway's clock, moved by the process that runs the shape; None without a gateway."""
        if self._sandbox is None and self.runner is not None and OPERATOR_KEY:
            host = getattr(self.runner.environment, "host", None)
            if host:
                self._sandbox = SandboxDay(
                    host, OPERATOR_KEY, edges=SOUTHBOUND_WINDOW, move=SANDBOX_CLOCK == "move"
                )
        return self._sandbox


@events.test_stop.add_listener
def _forget_the_sandbox_day(environment: Any, **_: Any) -> None:
    """A new run (the web UI's start after a stop) begins a new simulated day from the sandbox's time
    then, not the old run's. (Not in `reset_time`: a master calls it again after the first tick.)"""
    shape = getattr(environment, "shape_class", None)
    if isinstance(shape, DayShape):
        shape._sandbox = None


@events.init.add_listener
def _listen_for_the_hour(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):

        def on_hour(msg: Any, **_: Any) -> None:
            data = msg.data
            DAY_CLOCK.set(
                float(data["hour"]),
                bool(data["southbound"]),
                day=int(data["day"]),
                moving=bool(data["moving"]),
            )

        environment.runner.register_message(HOUR_MESSAGE, on_hour)

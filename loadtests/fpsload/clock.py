"""The gateway's time on the simulated day, so that its hours, business date and limits are the shape's.

A day compressed into minutes would otherwise meet the gateway's real clock: at 03:00 in Hong Kong
every southbound payment of the simulated afternoon comes back OUTSIDE_SERVICE_HOURS, and at 15:00
none of the simulated night's does. So the process that runs the shape moves the sandbox's test
clock (`PUT /v1/sandbox/clock`, the operator key) to each simulated hour as it begins, and to the
southbound window's edges when they fall within an hour: the first simulated day starts at the next
midnight (UTC+8) after the sandbox's time, and each later day a day after it, so that every
simulated day books its payments to a business date of its own. The clock only moves forward, and
between moves the sandbox's time runs on at the real pace: `SandboxDay.hour` answers the gateway's
own hour (the last move plus the real time since), by which the shape opens and closes southbound.

A gateway whose test clock is off (FPSLINK_SANDBOX_CLOCK; `fpslink sandbox` and `fpslink loadtest
--shape` turn it on) answers 409, and one that refuses the operator key 401 or 403: the shape then
stops moving it and follows the gateway's own hour, read again at each simulated hour, so that no
payment is sent that its hours refuse. LOADTEST_SANDBOX_CLOCK=follow asks for that from the start,
for a shared sandbox whose clock should stay where it is. A move that fails otherwise (no answer,
a 5xx) is tried again at the next tick; a sandbox already past the simulated time (someone moved it,
or a simulated hour lasts more than a real one) is followed until the simulated time overtakes it.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests

log = logging.getLogger("fpslink.loadtest")

UTC8 = timezone(timedelta(hours=8))
CLOCK_PATH = "/v1/sandbox/clock"
TIMEOUT_S = 10.0


class ClockNotMoved(RuntimeError):
    """The sandbox's clock could not be moved or read this time; the message says why."""


class ClockOff(ClockNotMoved):
    """The gateway does not let this run move its clock (test clock off, or the key refused)."""


class ClockAhead(ClockNotMoved):
    """The sandbox's time is already past the simulated time (the clock only moves forward)."""


def hour_of_day(at: datetime) -> float:
    """The hour of the day (UTC+8) at `at`, with its fraction."""
    local = at.astimezone(UTC8)
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def next_midnight(at: datetime) -> datetime:
    """00:00 (UTC+8) of the day after `at`'s, as the start of a simulated day: always later than `at`."""
    local = at.astimezone(UTC8)
    return datetime(local.year, local.month, local.day, tzinfo=UTC8) + timedelta(days=1)


class SandboxDay:
    """Moves the sandbox's clock to each step of the simulated day, or follows the gateway's own hour.

    `hour` is called on every tick of the shape; it acts only when a new step begins (each whole
    hour and each of `edges`), so a day costs 24 moves and one for each edge within an hour.
    """

    def __init__(
        self,
        host: str,
        operator_key: str,
        *,
        edges: Iterable[float] = (),
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        move: bool = True,
    ) -> None:
        """`edges`: hours of the day (UTC+8) the clock must be moved to exactly, as the southbound
        window's opening and closing; `move=False` (LOADTEST_SANDBOX_CLOCK=follow) never moves it."""
        self._url = host.rstrip("/") + CLOCK_PATH
        self._session = session if session is not None else requests.Session()
        self._session.headers["Authorization"] = f"Bearer {operator_key}"
        self._monotonic = monotonic
        self._steps = sorted({float(h) for h in range(24)} | {e % 24 for e in edges})
        self._moving = move
        self._start: datetime | None = None
        """00:00 (UTC+8) of the first simulated day, once the sandbox's time was read."""
        self._done: tuple[int, float] | None = None
        """The last step (day, hour) acted on."""
        self._ref: tuple[datetime, float] | None = None
        """The gateway's time as last set or read, and this process's monotonic time then."""
        self._failed: tuple[int, float] | None = None
        self.moves = 0

    def day_key(self, day: int) -> int:
        """The simulated `day` as a number that grows from run to run: its business date's ordinal
        once the clock has been moved, else `day` itself."""
        if self._start is None or not self._moving:
            return day
        return (self._start + timedelta(days=day)).date().toordinal()

    @property
    def moving(self) -> bool:
        """True while this run moves the clock; False once it follows the gateway's own hour."""
        return self._moving

    def hour(self, day: int, hour: float) -> float:
        """The hour of the day (UTC+8) the gateway runs at, once the clock has been moved to the
        simulated `day` and `hour` if it can be: the last move (or read) plus the real time since."""
        step = (day, self._steps[bisect.bisect_right(self._steps, hour % 24) - 1])
        if step != self._done:
            self._act(step)
        if self._ref is None:
            return hour
        at, read = self._ref
        return hour_of_day(at + timedelta(seconds=self._monotonic() - read))

    def _act(self, step: tuple[int, float]) -> None:
        if self._moving:
            try:
                self._move(*step)
            except ClockOff as exc:
                log.warning(
                    "the simulated day does not move the gateway's clock (%s): the southbound window "
                    "follows the gateway's own hour",
                    exc,
                )
                self._moving = False
            except ClockAhead as exc:
                log.info("%s: following the gateway's own time until the simulated day overtakes it", exc)
            except ClockNotMoved as exc:
                if step != self._failed:  # once per step: it is tried again at every tick
                    log.warning("%s; trying again", exc)
                    self._failed = step
                return
            else:
                self._done = step
                return
        self._done = step
        self._read_reference()

    def _move(self, day: int, hour: float) -> None:
        if self._start is None:
            status = self._read()
            if not status.get("enabled"):
                raise ClockOff("its test clock is off: FPSLINK_SANDBOX_CLOCK")
            self._start = next_midnight(_instant(status, "now"))
        target = self._start + timedelta(days=day, hours=hour)
        resp = self._request("PUT", {"now": target.isoformat()})
        if resp.status_code == 200:
            self._ref = (target, self._monotonic())
            self.moves += 1
            log.info(
                "sandbox clock moved to %s (simulated day %d, %s)", target.isoformat(), day + 1, _hm(hour)
            )
            return
        problem = _problem(resp)
        if resp.status_code in (401, 403) or problem.endswith("SANDBOX_CLOCK_DISABLED"):
            raise ClockOff(f"PUT {CLOCK_PATH} answered {problem}")
        if problem.endswith("SANDBOX_CLOCK_BACKWARDS"):
            raise ClockAhead(f"the sandbox is already past {target.isoformat()}")
        raise ClockNotMoved(f"PUT {CLOCK_PATH} to {target.isoformat()} answered {problem}")

    def _read_reference(self) -> None:
        try:
            now = _instant(self._read(), "now")
        except ClockNotMoved as exc:
            if self._ref is not None:
                return  # the time last known runs on
            log.warning("%s; taking this host's clock as the gateway's", exc)
            now = datetime.now(UTC)
        self._ref = (now, self._monotonic())

    def _read(self) -> dict[str, Any]:
        resp = self._request("GET", None)
        if resp.status_code in (401, 403):
            raise ClockOff(f"GET {CLOCK_PATH} answered {_problem(resp)}")
        if resp.status_code != 200:
            raise ClockNotMoved(f"GET {CLOCK_PATH} answered {_problem(resp)}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise ClockNotMoved(f"GET {CLOCK_PATH} answered no JSON") from exc
        if not isinstance(body, dict):
            raise ClockNotMoved(f"GET {CLOCK_PATH} answered no object")
        return body

    def _request(self, method: str, body: dict[str, Any] | None) -> requests.Response:
        try:
            return self._session.request(method, self._url, json=body, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise ClockNotMoved(f"{method} {CLOCK_PATH} failed: {exc}") from exc


def _hm(hour: float) -> str:
    minutes = round(hour * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _instant(body: dict[str, Any], name: str) -> datetime:
    try:
        return datetime.fromisoformat(str(body[name]).replace("Z", "+00:00"))
    except (KeyError, ValueError) as exc:
        raise ClockNotMoved(f"{CLOCK_PATH} answered no time in {name!r}") from exc


def _problem(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    return f"{resp.status_code} {code or ''}".strip()

"""The gateway's time on the simulated day, so that its hours, business date and limits are the shape's.

A day compressed into minutes would otherwise meet the gateway's real clock: at 03:00 in Hong Kong
every southbound payment of the simulated afternoon comes back OUTSIDE_SERVICE_HOURS, and at 15:00
none of the simulated night's does. So the process that runs the shape moves the sandbox's test
clock (`PUT /v1/sandbox/clock`, the operator key) to each simulated hour as it begins: the first
simulated day starts at the next midnight (UTC+8) after the sandbox's time, and each later day a
day after it, so that every simulated day books its payments to a business date of its own. The
clock only moves forward; between moves the sandbox's time runs on at the real pace.

A gateway whose test clock is off (FPSLINK_SANDBOX_CLOCK; `fpslink sandbox` and `fpslink loadtest
--shape` turn it on) answers 409: the shape then judges the southbound window by the gateway's own
hour instead, so that no payment is sent that its hours refuse. LOADTEST_SANDBOX_CLOCK=follow asks
for that from the start, for a shared sandbox whose clock should stay where it is. `fpslink
loadtest` reconciles the business dates the payments were booked to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests

log = logging.getLogger("fpslink.loadtest")

UTC8 = timezone(timedelta(hours=8))
CLOCK_PATH = "/v1/sandbox/clock"
TIMEOUT_S = 10.0


class ClockNotMoved(RuntimeError):
    """The sandbox's clock could not be moved to the simulated hour; the message says why."""


def hour_of_day(at: datetime) -> float:
    """The hour of the day (UTC+8) at `at`, with its fraction."""
    local = at.astimezone(UTC8)
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def next_midnight(at: datetime) -> datetime:
    """00:00 (UTC+8) of the day after `at`'s, as the start of a simulated day: always later than `at`."""
    local = at.astimezone(UTC8)
    return datetime(local.year, local.month, local.day, tzinfo=UTC8) + timedelta(days=1)


class SandboxDay:
    """Moves the sandbox's clock to each simulated hour, or else follows the gateway's own hour.

    `hour` is called on every tick of the shape; it moves the clock only when a new simulated hour
    begins, so a day costs 24 moves.
    """

    def __init__(
        self,
        host: str,
        operator_key: str,
        *,
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        move: bool = True,
    ) -> None:
        """`move=False` (LOADTEST_SANDBOX_CLOCK=follow) leaves the clock alone from the start."""
        self._url = host.rstrip("/") + CLOCK_PATH
        self._session = session if session is not None else requests.Session()
        self._session.headers["Authorization"] = f"Bearer {operator_key}"
        self._monotonic = monotonic
        self._start: datetime | None = None
        """00:00 (UTC+8) of the first simulated day, once the sandbox's time was read."""
        self._at: tuple[int, int] | None = None
        """The (day, hour) the clock was last moved to."""
        self._gateway: tuple[datetime, float] | None = None
        """Following the gateway: its time when read, and this process's monotonic time then."""
        self.moves = 0
        self._move_it = move

    @property
    def following(self) -> bool:
        """True once the clock could not be moved: the gateway's own hour decides."""
        return self._gateway is not None

    def hour(self, day: int, hour: float) -> float:
        """The hour of the day (UTC+8) the gateway runs at for simulated `day` and `hour`: the
        simulated hour itself once the clock is there, else the gateway's own."""
        if self._gateway is None and not self._move_it:
            self._follow()
        if self._gateway is None and (day, int(hour)) != self._at:
            try:
                self._move(day, int(hour))
            except ClockNotMoved as exc:
                log.warning(
                    "the simulated day does not move the gateway's clock (%s): the southbound window "
                    "follows the gateway's own hour",
                    exc,
                )
                self._follow()
        if self._gateway is None:
            return hour
        read_at, read_mono = self._gateway
        return hour_of_day(read_at + timedelta(seconds=self._monotonic() - read_mono))

    def _move(self, day: int, hour: int) -> None:
        if self._start is None:
            status = self._read()
            if not status.get("enabled"):
                raise ClockNotMoved("its test clock is off: FPSLINK_SANDBOX_CLOCK")
            self._start = next_midnight(_instant(status, "now"))
        target = self._start + timedelta(days=day, hours=hour)
        resp = self._request("PUT", {"now": target.isoformat()})
        if resp.status_code != 200:
            raise ClockNotMoved(f"PUT {CLOCK_PATH} to {target.isoformat()} answered {_problem(resp)}")
        self._at = (day, hour)
        self.moves += 1
        log.info("sandbox clock moved to %s (simulated day %d, %02d:00)", target.isoformat(), day + 1, hour)

    def _follow(self) -> None:
        try:
            now = _instant(self._read(), "now")
        except ClockNotMoved as exc:  # no answer either: the gateway runs on the wall clock
            log.warning("%s; taking this host's clock as the gateway's", exc)
            now = datetime.now(UTC)
        self._gateway = (now, self._monotonic())

    def _read(self) -> dict[str, Any]:
        resp = self._request("GET", None)
        if resp.status_code != 200:
            raise ClockNotMoved(f"GET {CLOCK_PATH} answered {_problem(resp)}")
        body = resp.json()
        if not isinstance(body, dict):
            raise ClockNotMoved(f"GET {CLOCK_PATH} answered no object")
        return body

    def _request(self, method: str, body: dict[str, Any] | None) -> requests.Response:
        try:
            return self._session.request(method, self._url, json=body, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise ClockNotMoved(f"{method} {CLOCK_PATH} failed: {exc}") from exc


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

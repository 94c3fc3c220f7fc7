"""The load tests' settings, from the environment (loadtests/README.md lists them).

Read once, at import: a bad value stops Locust before any user starts, and the message names the
variable.
"""

from __future__ import annotations

import os
import re
import uuid


def _env_float(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    value = float(raw) if raw else default
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _env_optional(name: str, low: float, high: float) -> float | None:
    raw = os.environ.get(name, "").strip()
    return None if not raw else _env_float(name, low, low, high)


def _service_window(text: str) -> tuple[float, float]:
    """Read HH:MM-HH:MM (UTC+8) as the gateway reads FPSLINK_SOUTHBOUND_HOURS, in hours of the day.

    A copy of fpslink.config.parse_hours in small, so that the load tests need nothing but locust.
    """
    match = re.fullmatch(r"\s*(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*", text)
    if not match:
        raise ValueError(f"FPSLINK_SOUTHBOUND_HOURS must look like 07:00-23:00, got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 + m1 / 60, h2 + m2 / 60
    if not 0 <= start < end <= 24:
        raise ValueError(f"FPSLINK_SOUTHBOUND_HOURS must end after it starts, got {text!r}")
    return start, end


OPERATOR_KEY = os.environ.get("FPSLINK_OPERATOR_KEY", "").strip()
RUN_ID = (os.environ.get("LOADTEST_RUN_ID", "").strip() or uuid.uuid4().hex[:6]).upper()
if not re.fullmatch(r"[A-Z0-9]{1,12}", RUN_ID):
    raise ValueError(f"LOADTEST_RUN_ID must be 1-12 letters or digits, got {RUN_ID!r}")
ACCOUNTS_PER_BANK = int(_env_float("LOADTEST_ACCOUNTS_PER_BANK", 5, 1, 200))
WAIT_MIN = _env_float("LOADTEST_WAIT_MIN", 0.5, 0, 3600)
WAIT_MAX = _env_float("LOADTEST_WAIT_MAX", 2.0, WAIT_MIN, 3600)
RETRY_SHARE = _env_float("LOADTEST_RETRY_SHARE", 0.05, 0, 1)
INVALID_SHARE = _env_float("LOADTEST_INVALID_SHARE", 0.03, 0, 1)
BREACH_SHARE = _env_float("LOADTEST_BREACH_SHARE", 0.03, 0, 1 - INVALID_SHARE)

# the simulated day (fpsload.day)
SHAPE = os.environ.get("LOADTEST_SHAPE", "").strip().lower()
if SHAPE not in ("", "day"):
    raise ValueError(f"LOADTEST_SHAPE must be empty or 'day', got {SHAPE!r}")
DAY_SECONDS = _env_optional("LOADTEST_DAY_SECONDS", 24, 7 * 86_400)  # None: -t, else DEFAULT_DAY_S
PEAK_USERS = _env_optional("LOADTEST_PEAK_USERS", 1, 100_000)  # None: -u, else DEFAULT_PEAK_USERS
DAYS = int(_env_float("LOADTEST_DAYS", 1, 1, 7))
SOUTHBOUND_WINDOW = _service_window(os.environ.get("FPSLINK_SOUTHBOUND_HOURS", "07:00-23:00"))
SANDBOX_CLOCK = os.environ.get("LOADTEST_SANDBOX_CLOCK", "").strip().lower() or "move"
if SANDBOX_CLOCK not in ("move", "follow"):
    raise ValueError(f"LOADTEST_SANDBOX_CLOCK must be 'move' or 'follow', got {SANDBOX_CLOCK!r}")

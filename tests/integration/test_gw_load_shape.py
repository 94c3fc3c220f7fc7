"""The 24-hour DayShape of loadtests/locustfile.py: users per simulated hour, southbound closed at
night, the end of the run, and that it stays off unless LOADTEST_SHAPE=day.

Each test imports the locustfile in a child process, because importing locust monkey-patches the
standard library with gevent; the shared parts it imports (loadtests/fpsload) are then at hand as
`day`, `checks`, `report` and `BankUser`. The child drives the shape with a moved start time, not the
clock.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="locust is not installed (pip install '.[load]')"
)

PRELUDE = """
import locust  # first: it monkey-patches ssl, which the locustfile's `requests` would import before it
import importlib.util, json, sys, time
from types import SimpleNamespace

spec = importlib.util.spec_from_file_location("fpslink_locustfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
from fpsload import checks, day, report  # the locustfile made them importable
from fpsload.users import BankUser


def tick_at(shape, elapsed_s):
    shape.start_time = time.perf_counter() - elapsed_s
    return shape.tick()
"""


def in_child(body: str, **env: str) -> Any:
    """Run `body` after importing the locustfile with `env`; it prints one JSON line, returned here."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOADTEST_", "LOCUST_", "FPSLINK_"))}
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body), str(LOCUSTFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, **env},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


DAY = {"LOADTEST_SHAPE": "day", "LOADTEST_DAY_SECONDS": "240", "LOADTEST_PEAK_USERS": "50"}
EVERY_HOUR = """
shape = module.DayShape()
hours = []
for hour in range(24):
    users, rate = tick_at(shape, (hour + 0.5) * 10)  # 240 s a day: 10 s an hour
    hours.append({"users": users, "rate": rate, "southbound": day.DAY_CLOCK.southbound,
                  "hour": day.DAY_CLOCK.hour})
print(json.dumps({"hours": hours, "shares": list(day.HOURLY_PEAK_SHARE)}))
"""


def test_the_user_count_follows_the_hourly_table() -> None:
    found = in_child(EVERY_HOUR, **DAY)
    shares, hours = found["shares"], found["hours"]
    assert len(shares) == 24 and max(shares) == 1.0
    users = [h["users"] for h in hours]
    assert users == [max(1, round(50 * share)) for share in shares]
    assert [round(h["hour"], 1) for h in hours] == [hour + 0.5 for hour in range(24)]
    assert max(users) == 50  # the peak hour runs the peak
    assert max(users[2:6]) <= 5  # the night trough, 02:00-06:00: at most a tenth of the peak
    assert max(users[23:] + users[:7]) <= 25  # the night, 23:00-07:00: at most half the peak
    assert min(users[9:22]) >= 35  # the working day and evening: most of the peak
    assert users.index(50) in (12, 20)


def test_the_ramp_follows_each_hourly_step_within_a_quarter_hour() -> None:
    hours = in_child(EVERY_HOUR, **DAY)["hours"]
    users = [h["users"] for h in hours]
    rate = hours[0]["rate"]
    assert all(h["rate"] == rate for h in hours), "one spawn rate for the whole day"
    biggest_step = max(abs(users[(i + 1) % 24] - users[i]) for i in range(24))
    assert biggest_step / rate <= 10 / 4 + 1e-9  # an hour is 10 s here
    assert rate <= 50


def test_southbound_is_closed_outside_its_service_hours() -> None:
    hours = in_child(EVERY_HOUR, **DAY)["hours"]
    closed = [hour for hour, h in enumerate(hours) if not h["southbound"]]
    assert closed == [0, 1, 2, 3, 4, 5, 6, 23]  # 07:00-23:00 (UTC+8) by default
    always = in_child(EVERY_HOUR, **DAY, FPSLINK_SOUTHBOUND_HOURS="00:00-24:00")["hours"]
    assert all(h["southbound"] for h in always)
    office = in_child(EVERY_HOUR, **DAY, FPSLINK_SOUTHBOUND_HOURS="09:30-17:00")["hours"]
    # sampled at half past: 09:30 is open, 17:30 is not
    assert [hour for hour, h in enumerate(office) if h["southbound"]] == list(range(9, 17))


MAINLAND_AT_NIGHT = """
def bank_user(cls):
    calls = []
    user = SimpleNamespace(direction=cls.direction)
    user.closed_now = lambda: cls.closed_now(user)
    for name in ("ordinary_payment", "invalid_payment", "limit_breach"):
        setattr(user, name, lambda name=name: calls.append(name))
    return user, calls


shape = module.DayShape()
found = {}
for label, elapsed in (("night", 30.0), ("day", 125.0)):  # 03:00 and 12:30 simulated
    tick_at(shape, elapsed)
    for cls in (module.MainlandBank, module.HongKongBank):
        user, calls = bank_user(cls)
        for _ in range(20):
            BankUser.pay(user)
        found[f"{cls.__name__} {label}"] = len(calls)
found["held"] = report.OUTCOMES.counts["SOUTHBOUND not sent: simulated night"]
print(json.dumps(found))
"""


def test_mainland_banks_send_no_southbound_payment_in_the_simulated_night() -> None:
    found = in_child(MAINLAND_AT_NIGHT, **DAY)
    assert found["MainlandBank night"] == 0
    assert found["held"] == 20  # counted in the payment outcomes table
    assert found["MainlandBank day"] == 20
    assert found["HongKongBank night"] == 20  # northbound runs 24/7
    assert found["HongKongBank day"] == 20


def test_the_shape_ends_the_run_after_its_days() -> None:
    body = """
    shape = module.DayShape()
    print(json.dumps([tick_at(shape, t) is None for t in (0.0, 239.0, 240.5, 479.0, 480.5, 10_000.0)]))
    """
    assert in_child(body, **DAY) == [False, False, True, True, True, True]
    assert in_child(body, **DAY, LOADTEST_DAYS="2") == [False, False, False, False, True, True]


def test_without_the_variables_the_shape_reads_users_and_run_time() -> None:
    body = """
    shape = module.DayShape()
    options = SimpleNamespace(num_users=30, run_time=480)
    shape.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=options))
    noon = tick_at(shape, 240 + 1)[0]   # 12:00 of a 480-s day
    end = tick_at(shape, 480 + 1)
    print(json.dumps({"noon": noon, "ended": end is None}))
    """
    assert in_child(body, LOADTEST_SHAPE="day") == {"noon": 30, "ended": True}


def test_the_shape_is_opt_in() -> None:
    body = """
    from locust.util.load_locustfile import is_shape_class
    print(json.dumps({"shape": is_shape_class(module.DayShape), "southbound": day.DAY_CLOCK.southbound}))
    """
    assert in_child(body) == {"shape": False, "southbound": True}
    assert in_child(body, LOADTEST_SHAPE="day") == {"shape": True, "southbound": True}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOADTEST_SHAPE", "week"),
        ("LOADTEST_DAY_SECONDS", "10"),
        ("LOADTEST_DAYS", "8"),
        ("FPSLINK_SOUTHBOUND_HOURS", "23:00-07:00"),
    ],
)
def test_bad_shape_settings_stop_the_import(name: str, value: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOADTEST_", "LOCUST_", "FPSLINK_"))}
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE, str(LOCUSTFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**base, name: value},
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert name in result.stderr


CNY_LEGS = """
legs = [
    checks.cny_leg({"source_currency": "CNY", "source_amount": "404.04", "target_currency": "HKD"}),
    checks.cny_leg({"source_currency": "HKD", "source_amount": "440.00",
                    "target_currency": "CNY", "target_amount": "404.04"}),
    checks.cny_leg({"source_currency": "HKD", "source_amount": "1.00", "target_currency": None}),
]
print(json.dumps({"legs": [None if leg is None else str(leg) for leg in legs],
                  "magic": str(checks.MAGIC_REFUSED_CNY)}))
"""


def test_an_ordinary_payment_knows_when_its_ibps_leg_is_the_magic_refused_amount() -> None:
    # mock_ibps refuses an IBPS leg of CNY 404.04 (RR04); ordinary amounts can land on it by chance
    found = in_child(CNY_LEGS)
    assert found == {"legs": ["404.04", "404.04", None], "magic": "404.04"}


QUOTE_AND_CLOCK = """
import time
from types import SimpleNamespace
user = SimpleNamespace(last_quote=None)
outlived = lambda body: module.HongKongBank.quote_outlived_by_the_clock(user, body)
paid = {"quote_id": "q1"}
found = {}
user.last_quote = ("q1", time.monotonic(), 30.0)
found["no shape"] = outlived(paid)
day.DAY_CLOCK.set(12.5)
found["a shape that follows the clock"] = outlived(paid)
day.DAY_CLOCK.set(12.5, moving=True)
found["within its seconds"] = outlived(paid)
found["another quote"] = outlived({"quote_id": "q2"})
found["no quote"] = outlived({})
user.last_quote = ("q1", time.monotonic() - 31, 30.0)
found["its seconds run out"] = outlived(paid)
print(json.dumps(found))
"""


def test_a_quote_expired_by_a_move_of_the_clock_is_told_from_one_that_ran_out() -> None:
    # the day shape jumps the sandbox's clock an hour at a time: a quote taken a moment before a jump
    # comes back QUOTE_EXPIRED though its 30 s have not passed here, which is no failure
    assert in_child(QUOTE_AND_CLOCK, **DAY) == {
        "no shape": False,
        "a shape that follows the clock": False,
        "within its seconds": True,
        "another quote": False,
        "no quote": False,
        "its seconds run out": False,
    }


SOUTHBOUND_EDGES = """
from types import SimpleNamespace
def judged(gateway_hour, hour, moving=True, day_s=240.0):
    sandbox = SimpleNamespace(hour=lambda d, h: gateway_hour, moving=moving)
    return module.DayShape._southbound(sandbox, 0, hour, day_s)
s = 1 / 3600
print(json.dumps({
    "07:00, the move a moment ago": judged(7.0, 7.0),
    "07:00:03": judged(7.0 + 3 * s, 7.01),
    "noon": judged(12.0, 12.5),
    "two ticks before the move to 23:00": judged(22.0 + 55 * s, 22.85),
    "a tick and a half before 23:00, a day of 24 min": judged(22.0 + 58 * s, 22.975, day_s=1440.0),
    "a day of 24 min, 22:50": judged(22.0 + 50 * s, 22.84, day_s=1440.0),
    "following, 22:59:59": judged(23.0 - s, 15.0, moving=False),
    "following, 07:00:01": judged(7.0 + s, 2.0, moving=False),
    "following, 07:00:03": judged(7.0 + 3 * s, 2.0, moving=False),
}))
"""


def test_southbound_opens_after_the_gateway_reached_its_window_and_closes_before_it_leaves() -> None:
    # a day of 240 s: a simulated hour is 10 real seconds, so the 2 s lead is a fifth of an hour
    assert in_child(SOUTHBOUND_EDGES, **DAY) == {
        "07:00, the move a moment ago": False,
        "07:00:03": True,
        "noon": True,
        "two ticks before the move to 23:00": False,
        "a tick and a half before 23:00, a day of 24 min": False,
        "a day of 24 min, 22:50": True,
        "following, 22:59:59": False,
        "following, 07:00:01": False,
        "following, 07:00:03": True,
    }

from __future__ import annotations

import os
import time as time_module
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpslink.config import parse_hours
from fpslink.limits.policy import (
    HK_TZ,
    LimitBreach,
    LimitSet,
    business_date,
    check_per_transaction,
    fits,
    in_service_hours,
    period_key,
)
from fpslink.money import Currency
from fpslink.vocabulary import Direction, Period

WINDOW = (time(7, 0), time(23, 0))
ALL_DAY = parse_hours("00:00-24:00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hkt(*args: int) -> datetime:
    return datetime(*args, tzinfo=HK_TZ)


# --- business_date ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 11, 27, 15, 59, 59), date(2026, 11, 27)),
        (utc(2026, 11, 27, 15, 59, 59, 999999), date(2026, 11, 27)),
        (utc(2026, 11, 27, 16, 0, 0), date(2026, 11, 28)),
        (utc(2026, 11, 27, 0, 0, 0), date(2026, 11, 27)),
        (utc(2026, 12, 31, 16, 0, 0), date(2027, 1, 1)),  # the business year turns at 16:00 UTC
        (utc(2026, 12, 31, 15, 59, 59), date(2026, 12, 31)),
        (utc(2028, 2, 28, 16, 0, 0), date(2028, 2, 29)),
        (hkt(2026, 11, 28, 0, 0, 0), date(2026, 11, 28)),
        (hkt(2026, 11, 27, 23, 59, 59), date(2026, 11, 27)),
        # another offset: 2026-11-27 09:00 at UTC-8 is 2026-11-28 01:00 in Hong Kong
        (datetime(2026, 11, 27, 9, 0, tzinfo=timezone(timedelta(hours=-8))), date(2026, 11, 28)),
    ],
)
def test_business_date(at: datetime, expected: date) -> None:
    assert business_date(at) == expected


def test_naive_datetimes_are_utc() -> None:
    assert business_date(datetime(2026, 11, 27, 15, 59, 59)) == date(2026, 11, 27)
    assert business_date(datetime(2026, 11, 27, 16, 0, 0)) == date(2026, 11, 28)


@settings(max_examples=200, deadline=None, database=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_business_date_is_the_date_eight_hours_later(naive: datetime) -> None:
    assert business_date(naive) == (naive + timedelta(hours=8)).date()
    assert business_date(naive.replace(tzinfo=UTC)) == business_date(naive)


# --- period_key ---------------------------------------------------------------------------------------


def test_period_key() -> None:
    assert period_key(Period.DAY, date(2026, 11, 28)) == "2026-11-28"
    assert period_key(Period.YEAR, date(2026, 11, 28)) == "2026"
    assert period_key(Period.DAY, date(2026, 1, 5)) == "2026-01-05"
    assert period_key(Period.YEAR, date(999, 1, 5)) == "0999"
    assert period_key(Period.YEAR, date(2026, 1, 1)) == period_key(Period.YEAR, date(2026, 12, 31))
    assert period_key(Period.DAY, date(2026, 1, 1)) != period_key(Period.DAY, date(2026, 1, 2))


# --- in_service_hours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (hkt(2026, 11, 28, 6, 59, 59), False),
        (hkt(2026, 11, 28, 6, 59, 59, 999999), False),
        (hkt(2026, 11, 28, 7, 0, 0), True),
        (hkt(2026, 11, 28, 12, 0, 0), True),
        (hkt(2026, 11, 28, 22, 59, 59), True),
        (hkt(2026, 11, 28, 23, 0, 0), False),
        (hkt(2026, 11, 28, 23, 59, 59), False),
        (hkt(2026, 11, 28, 0, 0, 0), False),
        # the same instants written in UTC
        (utc(2026, 11, 27, 22, 59, 59), False),  # 06:59:59 HKT
        (utc(2026, 11, 27, 23, 0, 0), True),  # 07:00 HKT
        (utc(2026, 11, 28, 14, 59, 59), True),  # 22:59:59 HKT
        (utc(2026, 11, 28, 15, 0, 0), False),  # 23:00 HKT
    ],
)
def test_in_service_hours_window(at: datetime, inside: bool) -> None:
    assert in_service_hours(at, WINDOW) is inside


def test_in_service_hours_naive_is_utc() -> None:
    assert in_service_hours(datetime(2026, 11, 27, 23, 0, 0), WINDOW) is True  # 07:00 HKT
    assert in_service_hours(datetime(2026, 11, 27, 22, 59, 59), WINDOW) is False
    assert in_service_hours(datetime(2026, 11, 28, 15, 0, 0), WINDOW) is False  # 23:00 HKT


@pytest.mark.parametrize(
    "at",
    [
        hkt(2026, 11, 28, 0, 0, 0),
        hkt(2026, 11, 28, 6, 59, 59),
        hkt(2026, 11, 28, 12, 0, 0),
        hkt(2026, 11, 28, 23, 0, 0),
        hkt(2026, 11, 28, 23, 59, 59),
        hkt(2026, 11, 28, 23, 59, 59, 999999),
        utc(2026, 11, 28, 15, 59, 59, 999999),
    ],
)
def test_all_day_window_is_always_open(at: datetime) -> None:
    assert (time(0, 0), time.max) == ALL_DAY
    assert in_service_hours(at, ALL_DAY) is True


def test_window_to_midnight_includes_the_last_microsecond() -> None:
    window = parse_hours("07:00-24:00")
    assert in_service_hours(hkt(2026, 11, 28, 23, 59, 59, 999999), window) is True
    assert in_service_hours(hkt(2026, 11, 28, 6, 59, 59), window) is False
    assert in_service_hours(hkt(2026, 11, 28, 7, 0), window) is True


@settings(max_examples=200, deadline=None, database=None)
@given(
    at=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)),
    start=st.integers(min_value=0, max_value=23),
    length=st.integers(min_value=1, max_value=24),
)
def test_in_service_hours_matches_local_hour(at: datetime, start: int, length: int) -> None:
    end_hour = start + length
    if end_hour > 24:
        end_hour = 24
    window = parse_hours(f"{start:02d}:00-{end_hour:02d}:00")
    local = (at + timedelta(hours=8)).time()
    expected = time(start) <= local and (end_hour == 24 or local < time(end_hour))
    assert in_service_hours(at, window) is expected


# --- per-transaction and fits ------------------------------------------------------------------------

NORTH = LimitSet(
    currency=Currency.HKD,
    per_transaction=Decimal("10000.00"),
    daily=Decimal("10000.00"),
    yearly=Decimal("200000.00"),
)
SOUTH = LimitSet(currency=Currency.CNY, per_transaction=Decimal("10000.00"), daily=None, yearly=None)


@pytest.mark.parametrize(
    ("amount", "breach"),
    [
        ("0.01", None),
        ("9999.99", None),
        ("10000.00", None),
        ("10000", None),
        ("10000.01", LimitBreach.PER_TRANSACTION),
        ("1000000", LimitBreach.PER_TRANSACTION),
    ],
)
def test_check_per_transaction(amount: str, breach: LimitBreach | None) -> None:
    assert check_per_transaction(NORTH, Decimal(amount)) is breach
    assert check_per_transaction(SOUTH, Decimal(amount)) is breach


def test_for_period() -> None:
    assert NORTH.for_period(Period.DAY) == Decimal("10000.00")
    assert NORTH.for_period(Period.YEAR) == Decimal("200000.00")
    assert SOUTH.for_period(Period.DAY) is None
    assert SOUTH.for_period(Period.YEAR) is None


@pytest.mark.parametrize(
    ("limit", "used", "amount", "ok"),
    [
        ("10000.00", "0", "10000.00", True),
        ("10000.00", "0", "10000.01", False),
        ("10000.00", "9000.00", "1000.00", True),
        ("10000.00", "9000.00", "1000.01", False),
        ("10000.00", "10000.00", "0.01", False),
        ("10000.00", "10000.00", "0", True),
        (None, "999999999", "999999999", True),
    ],
)
def test_fits(limit: str | None, used: str, amount: str, ok: bool) -> None:
    assert fits(None if limit is None else Decimal(limit), Decimal(used), Decimal(amount)) is ok


def test_enums() -> None:
    assert {d.value for d in Direction} == {"NORTHBOUND", "SOUTHBOUND"}
    assert {p.value for p in Period} == {"DAY", "YEAR"}
    assert LimitBreach.DAILY.value == "daily"
    assert HK_TZ.utcoffset(None) == timedelta(hours=8)


@pytest.fixture
def machine_clock_in_another_zone() -> Iterator[None]:
    """The process's local time zone far from UTC (POSIX TZ, no zone files needed)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "EST+5"
    time_module.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time_module.tzset()


@pytest.mark.usefixtures("machine_clock_in_another_zone")
def test_a_naive_datetime_is_utc_whatever_the_machines_zone() -> None:
    assert business_date(datetime(2026, 11, 27, 15, 59, 59)) == date(2026, 11, 27)
    assert business_date(datetime(2026, 11, 27, 16, 0, 0)) == date(2026, 11, 28)
    assert in_service_hours(datetime(2026, 11, 27, 23, 0, 0), WINDOW) is True  # 07:00 HKT
    assert in_service_hours(datetime(2026, 11, 27, 22, 59, 59), WINDOW) is False

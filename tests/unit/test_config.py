from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest
from pydantic import ValidationError

from fpslink.config import Settings, parse_hours


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("07:00-23:00", (time(7, 0), time(23, 0))),
        (" 07:00 - 23:00 ", (time(7, 0), time(23, 0))),
        ("00:00-24:00", (time(0, 0), time.max)),
        ("07:30-24:00", (time(7, 30), time.max)),
        ("09:15-17:45", (time(9, 15), time(17, 45))),
        ("00:00-00:01", (time(0, 0), time(0, 1))),
    ],
)
def test_parse_hours_valid(window: str, expected: tuple[time, time]) -> None:
    assert parse_hours(window) == expected


@pytest.mark.parametrize(
    "window",
    [
        "",
        "07:00",
        "07:00-",
        "-23:00",
        "abc",
        "07:00-23:60",
        "25:00-26:00",
        "24:00-24:00",
        "23:00-07:00",  # ends before it starts
        "07:00-07:00",  # empty
        "07:00-24:01",
        "07:00 to 23:00",
        "7pm-11pm",
    ],
)
def test_parse_hours_invalid(window: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(window)


@pytest.mark.parametrize("window", ["07:00+08:00-23:00", "07:00-23:00+08:00", "07:00-23:00-01:00"])
def test_parse_hours_with_an_offset_is_a_value_error(window: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(window)


def test_parse_hours_refuses_offset_aware_windows() -> None:
    with pytest.raises(ValueError):
        parse_hours("07:00+08:00-23:00+08:00")


def test_settings_reports_offset_hours_as_validation_error() -> None:
    with pytest.raises(ValidationError):
        Settings(southbound_hours="07:00+08:00-23:00")


def test_settings_defaults() -> None:
    s = Settings()
    assert s.operator_key is None
    assert s.southbound_hours == "07:00-23:00"
    assert s.southbound_window == (time(7, 0), time(23, 0))
    assert s.fx_mid_hkd_cny == Decimal("0.92")
    assert s.fx_spread_bps == Decimal(25)
    assert s.northbound_daily_hkd == Decimal("10000.00")
    assert s.northbound_yearly_hkd == Decimal("200000.00")
    assert s.southbound_per_txn_cny == Decimal("10000.00")
    assert s.southbound_yearly_cny is None


def test_reading_settings_leaves_the_secrets_to_serving_time() -> None:
    """`fpslink check` and the tests read settings without serving them; `ready_to_serve` judges the
    secrets where a server starts (tests/security/test_secrets.py)."""
    assert Settings(operator_key="short").operator_key == "short"
    assert Settings().ibps_token == "" and Settings().insecure_local is False


@pytest.mark.parametrize("hours", ["23:00-07:00", "garbage", "07:00", "07:00-25:00", ""])
def test_settings_refuses_bad_southbound_hours(hours: str) -> None:
    with pytest.raises(ValidationError):
        Settings(southbound_hours=hours)


def test_settings_all_day_southbound_window() -> None:
    s = Settings(southbound_hours="00:00-24:00")
    assert s.southbound_window == (time(0, 0), time.max)


def test_settings_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FPSLINK_OPERATOR_KEY", "o" * 20)
    monkeypatch.setenv("FPSLINK_IBPS_TOKEN", "t" * 20)
    monkeypatch.setenv("FPSLINK_INSECURE_LOCAL", "1")
    monkeypatch.setenv("FPSLINK_SOUTHBOUND_HOURS", "08:00-20:00")
    s = Settings()
    assert s.operator_key == "o" * 20 and s.ibps_token == "t" * 20 and s.insecure_local
    assert s.southbound_window == (time(8, 0), time(20, 0))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fx_mid_hkd_cny", "0"),
        ("fx_spread_bps", "-1"),
        ("fx_spread_bps", "1000"),
        ("quote_ttl_s", 0),
        ("idempotency_ttl_h", 23),
        ("northbound_daily_hkd", "0"),
    ],
)
def test_settings_refuses_out_of_range_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_the_database_is_unset_by_default_so_the_commands_use_the_embedded_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FPSLINK_DATABASE_URL", raising=False)
    assert Settings().database_url == ""

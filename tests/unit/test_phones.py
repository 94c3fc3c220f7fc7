from __future__ import annotations

import pytest

from fpslink.directory.phones import SUPPORTED_REGIONS, InvalidProxy, normalize_mobile, region_of


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("9123 4567", "HK", "+85291234567"),
        ("91234567", "HK", "+85291234567"),
        ("+852 9123 4567", None, "+85291234567"),
        ("+852-9123-4567", None, "+85291234567"),
        ("+85291234567", None, "+85291234567"),
        ("0085291234567", None, "+85291234567"),
        ("  +852 9123 4567  ", None, "+85291234567"),
        ("+852 6123 4567", None, "+85261234567"),
        ("+86 138-0013-8000", None, "+8613800138000"),
        ("+86 138 0013 8000", None, "+8613800138000"),
        ("13800138000", "CN", "+8613800138000"),
        ("138-0013-8000", "CN", "+8613800138000"),
        ("008613800138000", None, "+8613800138000"),
        ("+8613900139000", None, "+8613900139000"),
        # an explicit country code wins over the default region
        ("+8613800138000", "HK", "+8613800138000"),
        ("+85291234567", "CN", "+85291234567"),
        ("0085291234567", "CN", "+85291234567"),
    ],
)
def test_normalize_mobile_accepts(value: str, region: str | None, expected: str) -> None:
    assert normalize_mobile(value, region) == expected


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("+85221234567", None),  # HK landline
        ("+852 2123 4567", "HK"),
        ("2123 4567", "HK"),
        ("+86 10 1234 5678", None),  # Beijing landline
        ("+14155552671", None),  # US
        ("+447911123456", None),  # UK mobile
        ("+853 6612 3456", None),  # Macau
        ("0014155552671", None),
        ("91234567", None),  # local number without a region
        ("13800138000", None),
        ("9123 4567", "CN"),  # not a mainland number
        ("13800138000", "HK"),  # not a Hong Kong number
        ("abc", "HK"),
        ("not a number", None),
        ("", "HK"),
        ("   ", "HK"),
        ("+", None),
        ("+852", None),
        ("+852 9123", None),  # too short
        ("+852 9123 45678", None),  # too long for HK
        ("+86 138 0013 80001", None),
        ("+852 " + "9" * 40, None),  # over 40 characters
        ("1" * 41, "HK"),
    ],
)
def test_normalize_mobile_rejects(value: str, region: str | None) -> None:
    with pytest.raises(InvalidProxy):
        normalize_mobile(value, region)


@pytest.mark.parametrize("value", [None, 85291234567, b"+85291234567"])
def test_normalize_mobile_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidProxy):
        normalize_mobile(value, "HK")  # type: ignore[arg-type]


def test_invalid_proxy_is_a_value_error() -> None:
    assert issubclass(InvalidProxy, ValueError)


def test_local_number_without_region_hints_at_country_code() -> None:
    with pytest.raises(InvalidProxy, match=r"\+852 or \+86"):
        normalize_mobile("91234567")


def test_normalize_is_idempotent() -> None:
    for value, region in [("9123 4567", "HK"), ("13800138000", "CN")]:
        e164 = normalize_mobile(value, region)
        assert normalize_mobile(e164) == e164
        assert normalize_mobile(e164, "HK") == e164
        assert normalize_mobile(e164, "CN") == e164


def test_letters_are_not_read_as_keypad_digits() -> None:
    with pytest.raises(InvalidProxy):
        normalize_mobile("+852 9123 ABCD")


@pytest.mark.parametrize(
    ("e164", "region"),
    [("+85291234567", "HK"), ("+85261234567", "HK"), ("+8613800138000", "CN"), ("+8613900139000", "CN")],
)
def test_region_of(e164: str, region: str) -> None:
    assert region_of(e164) == region
    assert region in SUPPORTED_REGIONS
    assert e164.startswith(SUPPORTED_REGIONS[region])


@pytest.mark.parametrize(("value", "region"), [("9123 4567", "HK"), ("13800138000", "CN")])
def test_region_of_normalised_number_matches_its_region(value: str, region: str) -> None:
    assert region_of(normalize_mobile(value, region)) == region

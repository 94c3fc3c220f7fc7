from __future__ import annotations

import pytest

from fpslink.directory.phones import SUPPORTED_REGIONS, InvalidProxy, normalize_mobile, region_of


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+852 9123 4567", "+85291234567"),
        ("+852-9123-4567", "+85291234567"),
        ("+852 (9123) 4567", "+85291234567"),
        ("+85291234567", "+85291234567"),
        ("0085291234567", "+85291234567"),
        ("00852 9123 4567", "+85291234567"),
        ("  +852 9123 4567  ", "+85291234567"),
        ("+852 6123 4567", "+85261234567"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("+86.138.0013.8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("+8613900139000", "+8613900139000"),
        ("(+852) 9123 4567", "+85291234567"),  # how Hong Kong often writes it
        ("(+86) 138-0013-8000", "+8613800138000"),
        ("(00852) 9123 4567", "+85291234567"),
    ],
)
def test_normalize_mobile_accepts(value: str, expected: str) -> None:
    assert normalize_mobile(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "+85221234567",  # HK landline
        "+852 2123 4567",
        "+86 10 1234 5678",  # Beijing landline
        "+14155552671",  # US
        "+447911123456",  # UK mobile
        "+853 6612 3456",  # Macau
        "0014155552671",
        "abc",
        "not a number",
        "",
        "   ",
        "+",
        "+852",
        "+852 9123",  # too short
        "+852 9123 45678",  # too long for HK
        "+86 138 0013 80001",
        "+852 " + "9" * 40,  # over 40 characters
        "1" * 41,
    ],
)
def test_normalize_mobile_rejects(value: str) -> None:
    with pytest.raises(InvalidProxy):
        normalize_mobile(value)


@pytest.mark.parametrize(
    "value", ["91234567", "9123 4567", "13800138000", "138-0013-8000", "852 9123 4567", "(852) 9123 4567"]
)
def test_a_number_without_its_country_code_is_refused_with_a_hint(value: str) -> None:
    """Never guessed: 91234567 is a Hong Kong mobile, and read as +86 it is another number."""
    with pytest.raises(InvalidProxy, match=r"country code.*\+86 138 0013 8000 or \+852 9123 4567"):
        normalize_mobile(value)


@pytest.mark.parametrize("value", [None, 85291234567, b"+85291234567"])
def test_normalize_mobile_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidProxy):
        normalize_mobile(value)  # type: ignore[arg-type]


def test_invalid_proxy_is_a_value_error() -> None:
    assert issubclass(InvalidProxy, ValueError)


def test_normalize_is_idempotent() -> None:
    for value in ("+852 9123 4567", "0086 138 0013 8000"):
        e164 = normalize_mobile(value)
        assert normalize_mobile(e164) == e164


@pytest.mark.parametrize("value", ["9123+4567", "((+852 9123 4567", "+852 9123 4567+"])
def test_a_plus_anywhere_but_before_the_country_code_is_refused(value: str) -> None:
    with pytest.raises(InvalidProxy, match="is not a phone number"):
        normalize_mobile(value)


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


@pytest.mark.parametrize(("value", "region"), [("+852 9123 4567", "HK"), ("0086 138 0013 8000", "CN")])
def test_region_of_normalised_number_matches_its_region(value: str, region: str) -> None:
    assert region_of(normalize_mobile(value)) == region

"""The wire's amount codec (``ibps_wire.amounts``): exact, text-only, and strict about what it reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibps_wire.amounts import MAX_AMOUNT_MINOR, AmountError, format_amount, parse_amount


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("100", 10000),
        ("100.5", 10050),
        ("100.50", 10050),
        ("0.01", 1),
        ("007.10", 710),
        ("1000000000000.00", 10**14),
    ],
)
def test_parse_accepts_up_to_two_decimals(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.001",  # more than 2 decimals
        "1.000",  # even when the third is zero
        "-1",
        "-0.00",
        "+1",
        "1e3",
        "1E3",
        "1.5e-1",
        "NaN",
        "nan",
        "inf",
        "Infinity",
        " 1",
        "1 ",
        "1\n",
        ".5",
        "1.",
        "1,00",
        "1_000",
        "0x10",
        "１",  # a full-width digit
        "١",  # an Arabic-Indic digit
        "1000000000000.01",
        "99999999999999",
    ],
)
def test_parse_refuses_malformed(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text)


def test_zero_only_where_allowed() -> None:
    with pytest.raises(AmountError):
        parse_amount("0.00")
    assert parse_amount("0", allow_zero=True) == 0
    assert parse_amount("0.00", allow_zero=True) == 0


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_MINOR))
def test_format_then_parse_round_trips(minor: int) -> None:
    assert parse_amount(format_amount(minor)) == minor


@given(st.from_regex(r"[1-9][0-9]{0,11}\.[0-9]{2}", fullmatch=True))
def test_parse_then_format_round_trips_canonical_text(text: str) -> None:
    assert format_amount(parse_amount(text)) == text


def test_format_keeps_sign_and_two_decimals() -> None:
    assert format_amount(-150) == "-1.50"
    assert format_amount(0) == "0.00"
    assert format_amount(5) == "0.05"
    assert format_amount(10**14) == "1000000000000.00"

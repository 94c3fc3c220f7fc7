"""Amount parsing is pure: checked once, without a database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_ibps.money import MAX_AMOUNT_MINOR, AmountError, format_amount, parse_amount


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("100", 10000),
        ("100.5", 10050),
        ("100.50", 10050),
        ("0.01", 1),
        ("1000000000000.00", 10**14),
    ],
)
def test_parse_accepts_up_to_two_decimals(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.001",
        "-1",
        "+1",
        "1e3",
        "NaN",
        "inf",
        " 1",
        "1 ",
        ".5",
        "1.",
        "1,00",
        "１",
        "1000000000000.01",
    ],
)
def test_parse_refuses_malformed(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text)


def test_zero_only_where_allowed() -> None:
    with pytest.raises(AmountError):
        parse_amount("0.00")
    assert parse_amount("0", allow_zero=True) == 0


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_MINOR))
def test_format_then_parse_round_trips(minor: int) -> None:
    assert parse_amount(format_amount(minor)) == minor


def test_format_keeps_sign_and_two_decimals() -> None:
    assert format_amount(-150) == "-1.50"
    assert format_amount(0) == "0.00"

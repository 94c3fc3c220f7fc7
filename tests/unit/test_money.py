from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpslink.money import (
    MAX_AMOUNT,
    RATE_QUANTUM,
    Currency,
    InvalidAmount,
    Money,
    format_amount,
    format_minor,
    from_minor,
    parse_amount,
    quantize_rate,
    round_down,
    round_up,
    to_minor,
)

MAX_MINOR = 100_000_000_000_000  # MAX_AMOUNT in minor units


@pytest.mark.parametrize("currency", list(Currency))
def test_currency_has_two_minor_units(currency: Currency) -> None:
    assert currency.minor_units == 2
    assert currency.quantum == Decimal("0.01")


def test_currency_values() -> None:
    assert {c.value for c in Currency} == {"HKD", "CNY"}
    assert Currency("HKD") is Currency.HKD
    with pytest.raises(ValueError):
        Currency("USD")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", "100.00"),
        ("100.5", "100.50"),
        ("100.50", "100.50"),
        ("100.000", "100.00"),
        ("0.01", "0.01"),
        (" 42.10 ", "42.10"),
        ("1000000000000", "1000000000000.00"),
        ("1000000000000.00", "1000000000000.00"),
    ],
)
@pytest.mark.parametrize("currency", list(Currency))
def test_parse_amount_accepts(text: str, expected: str, currency: Currency) -> None:
    got = parse_amount(text, currency)
    assert isinstance(got, Decimal)
    assert str(got) == expected
    assert got.as_tuple().exponent == -2


def test_parse_amount_equal_forms_are_equal() -> None:
    forms = ["100", "100.5", "100.50", "100.000"]
    parsed = [parse_amount(f, Currency.HKD) for f in forms]
    assert parsed[0] == Decimal("100.00")
    assert parsed[1] == parsed[2] == Decimal("100.50")
    assert parsed[3] == parsed[0]
    assert str(parsed[0]) == str(parsed[3]) == "100.00"


def test_parse_amount_accepts_int_and_decimal() -> None:
    assert str(parse_amount(100, Currency.CNY)) == "100.00"
    assert str(parse_amount(Decimal("7.1"), Currency.CNY)) == "7.10"


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        100.0,
        True,
        False,
        "NaN",
        "nan",
        "sNaN",
        "inf",
        "-Infinity",
        Decimal("NaN"),
        Decimal("Infinity"),
        "-1",
        "-0.01",
        -5,
        "0",
        "0.00",
        "-0",
        0,
        "1000000000000.01",
        "1000000000001",
        "1e13",
        "100.001",
        "0.001",
        "0.009",
        "1E-1000",
        "abc",
        "",
        "   ",
        "1,000.00",
        "100 HKD",
        "HKD100",
        "1.2.3",
        "--1",
        "0x10",
    ],
)
@pytest.mark.parametrize("currency", list(Currency))
def test_parse_amount_rejects(value: object, currency: Currency) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(value, currency)  # type: ignore[arg-type]


def test_invalid_amount_is_a_value_error() -> None:
    assert issubclass(InvalidAmount, ValueError)


@pytest.mark.parametrize("text", ["1_000", "1_0.00", "١٠٠", "１００"])
def test_parse_amount_rejects_non_ascii_decimal_forms(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(text, Currency.HKD)


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (1, "0.01"),
        (10, "0.10"),
        (100, "1.00"),
        (12345, "123.45"),
        (0, "0.00"),
        (MAX_MINOR, "1000000000000.00"),
    ],
)
def test_minor_units_round_trip_examples(minor: int, text: str) -> None:
    amount = from_minor(minor, Currency.HKD)
    assert str(amount) == text
    assert to_minor(amount, Currency.HKD) == minor
    assert format_minor(minor, Currency.HKD) == text


def test_to_minor_refuses_sub_minor_digits() -> None:
    with pytest.raises(InvalidAmount):
        to_minor(Decimal("1.005"), Currency.HKD)
    assert to_minor(Decimal("1.5"), Currency.HKD) == 150
    assert to_minor(Decimal("1.500"), Currency.HKD) == 150


def test_format_amount_pads_and_avoids_exponent() -> None:
    assert format_amount(Decimal("5"), Currency.CNY) == "5.00"
    assert format_amount(Decimal("1E+3"), Currency.CNY) == "1000.00"
    assert format_amount(Decimal("0.1"), Currency.CNY) == "0.10"


@settings(max_examples=200, deadline=None, database=None)
@given(minor=st.integers(min_value=0, max_value=MAX_MINOR), currency=st.sampled_from(list(Currency)))
def test_minor_round_trip_property(minor: int, currency: Currency) -> None:
    amount = from_minor(minor, currency)
    assert amount.as_tuple().exponent == -2
    assert to_minor(amount, currency) == minor
    text = format_minor(minor, currency)
    assert text == f"{minor // 100}.{minor % 100:02d}"
    if minor > 0:
        assert parse_amount(text, currency) == amount
        assert to_minor(parse_amount(text, currency), currency) == minor


@pytest.mark.parametrize(
    ("value", "down", "up"),
    [
        ("1.001", "1.00", "1.01"),
        ("1.009", "1.00", "1.01"),
        ("1.005", "1.00", "1.01"),
        ("1.00", "1.00", "1.00"),
        ("917.7000001", "917.70", "917.71"),
        ("0.001", "0.00", "0.01"),
    ],
)
def test_round_down_and_up(value: str, down: str, up: str) -> None:
    assert str(round_down(Decimal(value), Currency.CNY)) == down
    assert str(round_up(Decimal(value), Currency.CNY)) == up


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.decimals(
        min_value=Decimal("0"), max_value=Decimal("1e9"), places=8, allow_nan=False, allow_infinity=False
    )
)
def test_round_down_up_bracket_the_value(value: Decimal) -> None:
    down = round_down(value, Currency.HKD)
    up = round_up(value, Currency.HKD)
    assert down <= value <= up
    assert up - down in (Decimal(0), Decimal("0.01"))
    assert (up == down) == (value == down)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("0.9177", "0.917700"),
        ("1.0869565217", "1.086957"),
        ("0.0000005", "0.000000"),  # half to even: 0 is even
        ("0.0000015", "0.000002"),
        ("0.0000025", "0.000002"),
        ("0.00000251", "0.000003"),
        ("1", "1.000000"),
    ],
)
def test_quantize_rate_six_places_half_even(rate: str, expected: str) -> None:
    got = quantize_rate(Decimal(rate))
    assert str(got) == expected
    assert got.as_tuple().exponent == RATE_QUANTUM.as_tuple().exponent == -6


def test_money_of_and_minor() -> None:
    m = Money.of("100.5", "HKD")
    assert m == Money(Decimal("100.50"), Currency.HKD)
    assert m.currency is Currency.HKD
    assert m.minor == 10050
    assert str(m) == "100.50 HKD"
    assert Money.from_minor(917_70, Currency.CNY) == Money.of("917.70", Currency.CNY)
    assert str(Money.from_minor(5, "CNY")) == "0.05 CNY"


def test_money_of_rejects_bad_values_and_currencies() -> None:
    with pytest.raises(InvalidAmount):
        Money.of("0", "HKD")
    with pytest.raises(InvalidAmount):
        Money.of(1.5, "HKD")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money.of("1.00", "USD")


def test_money_is_frozen() -> None:
    m = Money.of("1", "HKD")
    with pytest.raises(AttributeError):
        m.amount = Decimal("2")  # type: ignore[misc]


def test_max_amount_constant() -> None:
    assert Decimal("1e12") == MAX_AMOUNT
    assert parse_amount(str(MAX_AMOUNT), Currency.HKD) == MAX_AMOUNT


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, 'amounts are decimal strings such as "100.00", not floats'),
        ("1e3", "'1e3' is not a decimal amount such as \"100.00\""),
        (Decimal("NaN"), "amount must be a finite number"),
        (Decimal("Infinity"), "amount must be a finite number"),
        ("0.00", "amount must be greater than zero"),
        (-5, "amount must be greater than zero"),
        ("1000000000000.01", "amount must not exceed 1000000000000.00"),
        ("1.005", "HKD amounts have at most 2 decimal places"),
    ],
)
def test_parse_amount_says_why_it_refuses(value: object, message: str) -> None:
    """The message reaches the bank as the problem's detail: it must name what is wrong."""
    with pytest.raises(InvalidAmount) as refused:
        parse_amount(value, Currency.HKD)  # type: ignore[arg-type]
    assert str(refused.value) == message


def test_to_minor_says_why_it_refuses() -> None:
    with pytest.raises(InvalidAmount, match=r"^1\.005 has more than 2 decimal places$"):
        to_minor(Decimal("1.005"), Currency.CNY)


@pytest.mark.parametrize("rounding", [decimal.ROUND_HALF_UP, decimal.ROUND_CEILING, decimal.ROUND_FLOOR])
def test_quantize_rate_is_half_even_whatever_the_decimal_context(rounding: str) -> None:
    """A thread's decimal context may round otherwise; the rate rule must not follow it."""
    with decimal.localcontext(rounding=rounding):
        assert str(quantize_rate(Decimal("0.0000005"))) == "0.000000"
        assert str(quantize_rate(Decimal("0.0000025"))) == "0.000002"
        assert str(quantize_rate(Decimal("0.0000035"))) == "0.000004"
        assert str(quantize_rate(Decimal("0.91770049"))) == "0.917700"

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fpslink.fx.domain import AmountType, Conversion, RateSheet, convert
from fpslink.money import Currency, InvalidAmount, Money

HKD, CNY = Currency.HKD, Currency.CNY
SHEET = RateSheet(mid_hkd_cny=Decimal("0.92"), spread_bps=Decimal(25))
CENT = Decimal("0.01")


def _convert(
    sheet: RateSheet, src: Currency, dst: Currency, amount: str | Decimal, kind: AmountType
) -> Conversion:
    return convert(sheet, source_currency=src, target_currency=dst, amount=Decimal(amount), amount_type=kind)


# --- RateSheet ------------------------------------------------------------------------------------


def test_mid_both_directions_and_same_currency() -> None:
    assert SHEET.mid(HKD, CNY) == Decimal("0.920000")
    assert str(SHEET.mid(HKD, CNY)) == "0.920000"
    assert SHEET.mid(CNY, HKD) == Decimal("1.086957")  # 1 / 0.92 = 1.0869565..., six places
    assert SHEET.mid(HKD, HKD) == 1
    assert SHEET.mid(CNY, CNY) == 1


def test_applied_takes_the_spread_off_the_mid() -> None:
    assert SHEET.applied(HKD, CNY) == Decimal("0.917700")  # 0.92 * 0.9975
    assert str(SHEET.applied(HKD, CNY)) == "0.917700"
    assert SHEET.applied(CNY, HKD) == Decimal("1.084240")  # 1.086957 * 0.9975 = 1.08424, half even
    assert SHEET.applied(HKD, HKD) == 1
    assert SHEET.applied(CNY, CNY) == 1


def test_applied_with_zero_spread_is_the_mid() -> None:
    sheet = RateSheet(mid_hkd_cny=Decimal("0.923456"), spread_bps=Decimal(0))
    assert sheet.applied(HKD, CNY) == sheet.mid(HKD, CNY) == Decimal("0.923456")
    assert sheet.applied(CNY, HKD) == sheet.mid(CNY, HKD)


def test_spread_for() -> None:
    assert SHEET.spread_for(HKD, CNY) == Decimal(25)
    assert SHEET.spread_for(CNY, HKD) == Decimal(25)
    assert SHEET.spread_for(HKD, HKD) == 0
    assert SHEET.spread_for(CNY, CNY) == 0


# --- convert: examples ------------------------------------------------------------------------------


def test_worked_example_send_1000_hkd() -> None:
    c = _convert(SHEET, HKD, CNY, "1000.00", AmountType.SEND)
    assert c.rate == Decimal("0.917700")
    assert c.source == Money(Decimal("1000.00"), HKD)
    assert c.target == Money(Decimal("917.70"), CNY)
    assert str(c.target.amount) == "917.70"
    assert c.mid_rate == Decimal("0.920000")
    assert c.spread_bps == Decimal(25)
    assert c.amount_type is AmountType.SEND
    assert c.spread_earned == Decimal("2.30")  # 1000 * 0.92 - 917.70


def test_worked_example_receive_917_70_cny() -> None:
    c = _convert(SHEET, HKD, CNY, "917.70", AmountType.RECEIVE)
    assert c.source == Money(Decimal("1000.00"), HKD)
    assert c.target == Money(Decimal("917.70"), CNY)
    assert c.amount_type is AmountType.RECEIVE


def test_receive_rounds_the_source_up() -> None:
    # 100.00 / 0.9177 = 108.9680... -> the payer covers the fraction: 108.97
    c = _convert(SHEET, HKD, CNY, "100.00", AmountType.RECEIVE)
    assert c.source.amount == Decimal("108.97")
    assert c.target.amount == Decimal("100.00")


def test_send_rounds_the_target_down() -> None:
    # 10.01 * 0.9177 = 9.186177 -> 9.18
    c = _convert(SHEET, HKD, CNY, "10.01", AmountType.SEND)
    assert c.target.amount == Decimal("9.18")


def test_southbound_send_cny_to_hkd() -> None:
    c = _convert(SHEET, CNY, HKD, "1000.00", AmountType.SEND)
    assert c.source == Money(Decimal("1000.00"), CNY)
    assert c.target == Money(Decimal("1084.24"), HKD)
    assert c.rate == Decimal("1.084240")
    assert c.mid_rate == Decimal("1.086957")


def test_southbound_receive_cny_to_hkd() -> None:
    c = _convert(SHEET, CNY, HKD, "1084.24", AmountType.RECEIVE)
    assert c.source.amount == Decimal("1000.00")
    assert c.target.amount == Decimal("1084.24")


@pytest.mark.parametrize("currency", list(Currency))
@pytest.mark.parametrize("kind", list(AmountType))
def test_same_currency_is_one_to_one_without_spread(currency: Currency, kind: AmountType) -> None:
    c = _convert(SHEET, currency, currency, "123.45", kind)
    assert c.rate == 1
    assert c.mid_rate == 1
    assert c.spread_bps == 0
    assert c.source == c.target == Money(Decimal("123.45"), currency)
    assert c.spread_earned == 0


def test_amount_too_small_to_convert_raises() -> None:
    # 0.01 HKD * 0.9177 = 0.009177 CNY: rounds down to nothing
    with pytest.raises(InvalidAmount, match=r"^amount is too small to convert to a whole minor unit$"):
        _convert(SHEET, HKD, CNY, "0.01", AmountType.SEND)
    with pytest.raises(InvalidAmount):
        _convert(SHEET, HKD, CNY, "0.00", AmountType.SEND)


def test_smallest_convertible_send() -> None:
    c = _convert(SHEET, HKD, CNY, "0.02", AmountType.SEND)  # 0.018354 -> 0.01
    assert c.target.amount == CENT


def test_smallest_receive_costs_at_least_a_cent() -> None:
    c = _convert(SHEET, CNY, HKD, "0.01", AmountType.RECEIVE)  # 0.01 / 1.08424 = 0.0092 -> 0.01
    assert c.source.amount == CENT


# --- convert: properties ----------------------------------------------------------------------------

amounts = st.integers(min_value=1, max_value=100_000_000_000).map(lambda m: Decimal(m).scaleb(-2))
mids = st.integers(min_value=500_000, max_value=1_500_000).map(lambda m: Decimal(m).scaleb(-6))
spreads = st.one_of(
    st.integers(min_value=0, max_value=200).map(Decimal),
    st.integers(min_value=0, max_value=20_000).map(lambda b: Decimal(b).scaleb(-2)),
)
pairs = st.sampled_from([(HKD, CNY), (CNY, HKD)])


def _minor(value: Fraction) -> Fraction:
    return value * 100


@settings(max_examples=200, deadline=None, database=None)
@given(amount=amounts, mid=mids, spread=spreads, pair=pairs)
def test_send_property(
    amount: Decimal, mid: Decimal, spread: Decimal, pair: tuple[Currency, Currency]
) -> None:
    sheet = RateSheet(mid_hkd_cny=mid, spread_bps=spread)
    src, dst = pair
    try:
        c = _convert(sheet, src, dst, amount, AmountType.SEND)
    except InvalidAmount:
        # only when the exact value is under one cent
        assert Fraction(amount) * Fraction(sheet.applied(src, dst)) < Fraction(1, 100)
        return
    rate = Fraction(c.rate)
    exact = Fraction(amount) * rate
    assert c.source.amount == amount
    assert isinstance(c.target.amount, Decimal)
    assert isinstance(c.rate, Decimal)
    assert c.target.amount.as_tuple().exponent == -2
    assert c.source.amount.as_tuple().exponent == -2
    # target == floor(source * rate) to the cent, computed independently with exact fractions
    assert Fraction(c.target.amount) * 100 == (exact * 100).__floor__()
    assert Fraction(c.target.amount) <= exact
    assert exact - Fraction(c.target.amount) < Fraction(1, 100)
    # the spread is never negative: the payout never exceeds the mid value
    assert Fraction(c.target.amount) <= Fraction(amount) * Fraction(c.mid_rate)
    assert c.spread_earned >= 0
    assert c.rate <= c.mid_rate
    assert c.source.currency is src and c.target.currency is dst


@settings(max_examples=200, deadline=None, database=None)
@given(amount=amounts, mid=mids, spread=spreads, pair=pairs)
def test_receive_property(
    amount: Decimal, mid: Decimal, spread: Decimal, pair: tuple[Currency, Currency]
) -> None:
    sheet = RateSheet(mid_hkd_cny=mid, spread_bps=spread)
    src, dst = pair
    c = _convert(sheet, src, dst, amount, AmountType.RECEIVE)
    rate = Fraction(c.rate)
    source = Fraction(c.source.amount)
    target = Fraction(c.target.amount)
    assert c.target.amount == amount
    assert isinstance(c.source.amount, Decimal)
    assert c.source.amount.as_tuple().exponent == -2
    assert c.target.amount.as_tuple().exponent == -2
    # the payer covers the target in full, and one cent less would not
    assert source * rate >= target
    assert (source - Fraction(1, 100)) * rate < target
    assert target <= source * Fraction(c.mid_rate)
    assert c.spread_earned >= 0
    assert c.source.currency is src and c.target.currency is dst


@settings(max_examples=100, deadline=None, database=None)
@given(amount=amounts, mid=mids, spread=spreads, pair=pairs)
def test_receive_of_a_send_target_never_costs_more(
    amount: Decimal, mid: Decimal, spread: Decimal, pair: tuple[Currency, Currency]
) -> None:
    """Asking to receive what a SEND delivered costs at most what was sent."""
    sheet = RateSheet(mid_hkd_cny=mid, spread_bps=spread)
    src, dst = pair
    try:
        sent = _convert(sheet, src, dst, amount, AmountType.SEND)
    except InvalidAmount:
        return
    back = _convert(sheet, src, dst, sent.target.amount, AmountType.RECEIVE)
    assert back.source.amount <= amount
    assert back.target.amount == sent.target.amount

"""FX math, free of I/O: rates, spreads and the conversion of a SEND or RECEIVE amount.

The rounding rule, in one place: rates are fixed to six decimal places (half to even); then the amount
the link pays out is rounded down and the amount it collects is rounded up, to the minor unit. So a
SEND amount converts to `round_down(source * rate)` and a RECEIVE amount costs
`round_up(target / rate)`. The link never pays out a fraction of a cent it did not collect.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from fpslink.money import Currency, InvalidAmount, Money, quantize_rate, round_down, round_up

BPS = Decimal(10_000)


class AmountType(StrEnum):
    SEND = "SEND"
    RECEIVE = "RECEIVE"


ONE = quantize_rate(Decimal(1))
"""The rate of a payment in one currency: six places like every other rate ("1.000000")."""


@dataclass(frozen=True, slots=True)
class RateSheet:
    """Mid rate (CNY per 1 HKD) and the spread the link charges on each conversion."""

    mid_hkd_cny: Decimal
    spread_bps: Decimal

    def mid(self, source: Currency, target: Currency) -> Decimal:
        if source == target:
            return ONE
        if (source, target) == (Currency.HKD, Currency.CNY):
            return quantize_rate(self.mid_hkd_cny)
        return quantize_rate(Decimal(1) / self.mid_hkd_cny)

    def applied(self, source: Currency, target: Currency) -> Decimal:
        """The customer rate: target units per source unit, the spread taken off the mid."""
        if source == target:
            return ONE
        return quantize_rate(self.mid(source, target) * (1 - self.spread_bps / BPS))

    def spread_for(self, source: Currency, target: Currency) -> Decimal:
        return Decimal(0) if source == target else self.spread_bps


@dataclass(frozen=True, slots=True)
class Conversion:
    source: Money
    target: Money
    mid_rate: Decimal
    rate: Decimal
    spread_bps: Decimal
    amount_type: AmountType

    @property
    def spread_earned(self) -> Decimal:
        """What the spread kept, in the target currency: the mid value less what was paid out."""
        return self.source.amount * self.mid_rate - self.target.amount


def convert(
    sheet: RateSheet,
    *,
    source_currency: Currency,
    target_currency: Currency,
    amount: Decimal,
    amount_type: AmountType,
) -> Conversion:
    """Fix both sides of a conversion at the sheet's current customer rate."""
    rate = sheet.applied(source_currency, target_currency)
    if amount_type is AmountType.SEND:
        source = Money(amount, source_currency)
        target = Money(round_down(amount * rate, target_currency), target_currency)
    else:
        target = Money(amount, target_currency)
        source = Money(round_up(amount / rate, source_currency), source_currency)
    if source.amount <= 0 or target.amount <= 0:
        raise InvalidAmount("amount is too small to convert to a whole minor unit")
    return Conversion(
        source=source,
        target=target,
        mid_rate=sheet.mid(source_currency, target_currency),
        rate=rate,
        spread_bps=sheet.spread_for(source_currency, target_currency),
        amount_type=amount_type,
    )

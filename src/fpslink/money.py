"""Money: Decimal amounts with each currency's minor units, and the one rounding rule.

Amounts cross every boundary (API, database, mock_ibps) either as decimal strings with exactly the
currency's minor units or as integer minor units; a float never touches money.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum


class Currency(StrEnum):
    HKD = "HKD"
    CNY = "CNY"

    @property
    def minor_units(self) -> int:
        return 2

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)


MAX_AMOUNT = Decimal("1000000000000.00")
"""The largest amount the sandbox accepts anywhere: keeps minor units well inside 64 bits."""


AMOUNT_PATTERN = re.compile(r"-?[0-9]{1,16}(\.[0-9]{1,16})?")
"""Plain ASCII digits with an optional fraction: no exponents, underscores or other scripts' digits."""


class InvalidAmount(ValueError):
    """A value that is not a positive amount with at most the currency's minor units."""


def parse_amount(value: str | int | Decimal, currency: Currency) -> Decimal:
    """Read an amount exactly ("100", "100.5" and "100.50" are equal); refuse what cannot be money."""
    if isinstance(value, (bool, float)):
        raise InvalidAmount('amounts are decimal strings such as "100.00", not floats')
    if isinstance(value, str) and not AMOUNT_PATTERN.fullmatch(value.strip()):
        raise InvalidAmount(f'{value!r} is not a decimal amount such as "100.00"')
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount(f"{value!r} is not a decimal amount") from exc
    if not amount.is_finite():
        raise InvalidAmount("amount must be a finite number")
    if amount <= 0:
        raise InvalidAmount("amount must be greater than zero")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"amount must not exceed {MAX_AMOUNT}")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    if exponent < -currency.minor_units and amount != amount.quantize(currency.quantum):
        raise InvalidAmount(f"{currency} amounts have at most {currency.minor_units} decimal places")
    return amount.quantize(currency.quantum)


def to_minor(amount: Decimal, currency: Currency) -> int:
    """Exact conversion to integer minor units; raises if the amount has sub-minor digits."""
    scaled = amount.scaleb(currency.minor_units)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{amount} has more than {currency.minor_units} decimal places")
    return int(scaled)


def from_minor(minor: int, currency: Currency) -> Decimal:
    return Decimal(minor).scaleb(-currency.minor_units).quantize(currency.quantum)


def format_amount(amount: Decimal, currency: Currency) -> str:
    return f"{amount.quantize(currency.quantum):f}"


def format_minor(minor: int, currency: Currency) -> str:
    return format_amount(from_minor(minor, currency), currency)


def round_down(amount: Decimal, currency: Currency) -> Decimal:
    """What the link pays out is rounded toward zero: it never pays a fraction it did not receive."""
    return amount.quantize(currency.quantum, rounding=ROUND_FLOOR)


def round_up(amount: Decimal, currency: Currency) -> Decimal:
    """What the link collects is rounded up: the payer covers the fraction."""
    return amount.quantize(currency.quantum, rounding=ROUND_CEILING)


RATE_PLACES = 6
RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)


def quantize_rate(rate: Decimal) -> Decimal:
    """Rates are fixed to six decimal places, half to even, before any amount is computed."""
    return rate.quantize(RATE_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: Currency

    @classmethod
    def of(cls, value: str | int | Decimal, currency: Currency | str) -> Money:
        cur = Currency(currency)
        return cls(parse_amount(value, cur), cur)

    @classmethod
    def from_minor(cls, minor: int, currency: Currency | str) -> Money:
        cur = Currency(currency)
        return cls(from_minor(minor, cur), cur)

    @property
    def minor(self) -> int:
        return to_minor(self.amount, self.currency)

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.currency)} {self.currency}"

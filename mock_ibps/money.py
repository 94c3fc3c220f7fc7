"""CNY amounts: decimal strings on the wire, integer minor units everywhere else.

Parsing is done on the text itself (never through ``float``), so "100.1" is exactly 10010 fen.
"""

from __future__ import annotations

import re

CURRENCY = "CNY"
MINOR_UNITS = 2
MINOR_PER_UNIT = 100
MAX_AMOUNT_MINOR = 1_000_000_000_000_00  # CNY 1,000,000,000,000.00: bounds every amount accepted

# ASCII digits only: ``\d`` would also accept other scripts' digits.
_AMOUNT_RE = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?")


class AmountError(ValueError):
    """The text is not an amount this service accepts."""


def parse_amount(text: str, *, allow_zero: bool = False) -> int:
    """Read "100", "100.5" or "100.50" as minor units; refuse signs, exponents, NaN and excess."""
    match = _AMOUNT_RE.fullmatch(text)
    if match is None:
        raise AmountError("amount must be a non-negative decimal string with at most 2 decimal places")
    units: str = match.group(1)
    fraction: str = match.group(2) or ""
    minor = int(units) * MINOR_PER_UNIT + int(fraction.ljust(MINOR_UNITS, "0"))
    if minor > MAX_AMOUNT_MINOR:
        raise AmountError("amount must not exceed 1000000000000.00")
    if minor == 0 and not allow_zero:
        raise AmountError("amount must be greater than zero")
    return minor


def format_amount(minor: int) -> str:
    """Write minor units with exactly two decimals; negative totals (funding) keep their sign."""
    sign = "-" if minor < 0 else ""
    units, fraction = divmod(abs(minor), MINOR_PER_UNIT)
    return f"{sign}{units}.{fraction:0{MINOR_UNITS}d}"

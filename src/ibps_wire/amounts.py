"""CNY amounts on the IBPS wire: decimal strings there, integer minor units (fen) everywhere else.

The one codec both services use. Parsing works on the text itself (never through ``float`` or
``Decimal``), so "100.1" is exactly 10010 fen and forms such as "1e3", "NaN" or "-0" never pass.
"""

from __future__ import annotations

import re
from typing import Final

CURRENCY: Final = "CNY"
MINOR_UNITS: Final = 2
MINOR_PER_UNIT: Final = 10**MINOR_UNITS
MAX_AMOUNT_MINOR: Final = 1_000_000_000_000_00
"""CNY 1,000,000,000,000.00 bounds every amount accepted, keeping minor units well inside 64 bits."""

AMOUNT_PATTERN: Final = r"^([0-9]{1,13})(?:\.([0-9]{1,2}))?$"
"""What an amount on the wire looks like: ASCII digits only (``\\d`` would accept other scripts')."""
_AMOUNT_RE: Final = re.compile(AMOUNT_PATTERN)


class AmountError(ValueError):
    """The text is not an amount the wire accepts."""


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

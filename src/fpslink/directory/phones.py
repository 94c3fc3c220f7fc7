"""Mobile-number proxies: any common written form in, E.164 out (via the phonenumbers library)."""

from __future__ import annotations

import re

import phonenumbers

SUPPORTED_REGIONS = {"HK": "+852", "CN": "+86"}
PHONE_CHARS = re.compile(r"\+?[0-9 ()\-.]{4,40}")
"""Letters are refused: phonenumbers would read them as keypad digits and reach another number."""


class InvalidProxy(ValueError):
    """Not a mobile number of a supported region."""


def normalize_mobile(value: str, default_region: str | None = None) -> str:
    """Return the E.164 form; `default_region` reads numbers written without a country code.

    Accepts "+86 138-0013-8000", "9123 4567" (with region HK), "0085291234567" (international
    prefix 00) and "+852-9123-4567".
    """
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        raise InvalidProxy("a mobile number is required (at most 40 characters)")
    text = value.strip()
    if not PHONE_CHARS.fullmatch(text):
        raise InvalidProxy(f"{value!r} is not a phone number: use digits, spaces, +, - and ( ) only")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if default_region or text.startswith("+") else " (write it with +852 or +86)"
        raise InvalidProxy(f"{value!r} is not a phone number{hint}") from exc
    region = phonenumbers.region_code_for_number(number)
    if region not in SUPPORTED_REGIONS:
        raise InvalidProxy(f"{value!r} is not a Hong Kong (+852) or mainland (+86) number")
    if not phonenumbers.is_valid_number(number):
        raise InvalidProxy(f"{value!r} is not a valid {SUPPORTED_REGIONS[region]} number")
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidProxy(f"{value!r} is not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str:
    """HK or CN for a number that `normalize_mobile` accepted."""
    return "HK" if e164.startswith("+852") else "CN"

"""Mobile-number proxies: any common written form in, E.164 out (via the phonenumbers library)."""

from __future__ import annotations

import re

import phonenumbers

SUPPORTED_REGIONS = {"HK": "+852", "CN": "+86"}
PHONE_CHARS = re.compile(r"\(?\+?[0-9 ()\-.]{4,40}")
"""Letters are refused: phonenumbers would read them as keypad digits and reach another number. A
`+` may stand only first, or inside the opening bracket of a bracketed country code ("(+852)")."""


class InvalidProxy(ValueError):
    """Not a mobile number of a supported region."""


HINT = "write it with its country code, such as +86 138 0013 8000 or +852 9123 4567"


def normalize_mobile(value: str) -> str:
    """Return the E.164 form of a number written with its country code (`+` or the international
    prefix `00`), in any common written form: "+86 138-0013-8000", "+852 (9123) 4567", "0085291234567",
    "(+852) 9123 4567".

    A number without its country code is refused, never guessed: a wrong guess pays whoever holds
    those digits in the other country, and the payment path and a look-up must never disagree.
    Every endpoint (payments, proxy registration and look-up, ISO 20022, the console's search) reads
    numbers through here, so one written form works or fails the same way everywhere.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        raise InvalidProxy("a mobile number is required (at most 40 characters)")
    text = value.strip()
    if not PHONE_CHARS.fullmatch(text):
        raise InvalidProxy(f"{value!r} is not a phone number: use digits, spaces, +, -, . and ( ) only")
    if text.startswith(("00", "(00")):
        text = text.replace("00", "+", 1)
    if not text.lstrip("(").startswith("+"):
        raise InvalidProxy(f"{value!r} has no country code: {HINT}")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidProxy(f"{value!r} is not a phone number: {HINT}") from exc
    region = phonenumbers.region_code_for_number(number)
    if region not in SUPPORTED_REGIONS:
        raise InvalidProxy(f"{value!r} is not a Hong Kong (+852) or mainland (+86) number")
    if not phonenumbers.is_valid_number(number):
        raise InvalidProxy(f"{value!r} is not a valid {SUPPORTED_REGIONS[region]} number: {HINT}")
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

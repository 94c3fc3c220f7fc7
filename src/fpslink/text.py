"""The characters no name, reference, purpose or remittance text may carry.

Control characters (C0, DEL, C1) and the bidirectional embeddings, overrides and isolates
(U+202A-U+202E, U+2066-U+2069) are refused where text enters, in the JSON API and in ISO 20022
messages alike. A NUL cannot be stored at all (PostgreSQL refused it mid-batch, a 500 for every
payment of that batch), and the others change how a name or reference reads where it is shown: a
right-to-left override (U+202E) makes the rest of a payee's name read backwards in the console or a
statement, so one name can pass for another. Lone surrogates cannot be encoded for storage either.
"""

from __future__ import annotations

import re
import unicodedata

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
RULE = "control and bidirectional-override characters are not accepted"


def unsafe_character(text: str) -> str | None:
    """Where the first refused character is and what it is, or None when there is none."""
    found = UNSAFE.search(text)
    if found is None:
        return None
    char = found.group()
    name = unicodedata.name(char, "a control character")
    return f"U+{ord(char):04X} ({name}) at character {found.start() + 1}"


def check_text(text: str) -> str:
    """`text` unchanged; ValueError saying which character is refused and why."""
    unsafe = unsafe_character(text)
    if unsafe is not None:
        raise ValueError(f"{unsafe}: {RULE}")
    return text

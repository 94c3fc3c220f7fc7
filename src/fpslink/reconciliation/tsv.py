"""PostgreSQL's COPY text format, in which the IBPS statement export travels: decode and encode rows.

One row a line, fields separated by tabs, `\\N` for null, and backslash escapes for the characters
that would break the layout. PostgreSQL loads a page as it comes (COPY FROM STDIN); the rows are
decoded here only for tests and small statements. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Final

NULL: Final = "\\N"
_NAMED: Final = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE: Final = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_ENCODE: Final = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
)


def _unescape_match(match: re.Match[str]) -> str:
    octal, hexa, other = match.groups()
    if octal is not None:
        return chr(int(octal, 8))
    if hexa is not None:
        return chr(int(hexa, 16))
    return _NAMED.get(other, other)


def _field(text: str) -> str | None:
    if text == NULL:
        return None
    return _ESCAPE.sub(_unescape_match, text) if "\\" in text else text


def decode(data: bytes, *, width: int, int_columns: Collection[int] = ()) -> list[tuple[Any, ...]]:
    """Rows of `width` fields; the fields at `int_columns` become int, the rest stay str (or None)."""
    rows: list[tuple[Any, ...]] = []
    for line in data.decode("utf-8").split("\n"):
        if not line:
            continue
        fields: list[Any] = [_field(part) for part in line.split("\t")]
        if len(fields) != width:
            raise ValueError(f"a statement row has {len(fields)} fields, expected {width}")
        for index in int_columns:
            if fields[index] is not None:
                fields[index] = int(fields[index])
        rows.append(tuple(fields))
    return rows


def encode(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as COPY text: None as `\\N`, everything else as its str() with the layout escaped."""
    return "".join(
        "\t".join(NULL if value is None else str(value).translate(_ENCODE) for value in row) + "\n"
        for row in rows
    ).encode("utf-8")

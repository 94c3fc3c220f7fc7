"""Keyset paging: a cursor is the (created_at, id) of a page's last row, base64url, opaque to clients.

A cursor and a `from`/`to` bound come from the client, so what reaches a query is checked here
first: a time with a zone, that converts to UTC (`0001-01-01T00:00:00+14:00` does not: it is before
year 1 in UTC), and an id of visible ASCII. Anything else is 422, where it used to be a 500 from
the database driver.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

from fpslink.errors import InvalidRequest

CURSOR_ID = re.compile(r"[\x21-\x7b\x7d\x7e]{1,128}")
"""A row id in a cursor: visible ASCII but the separator."""


def encode_cursor(at: datetime, row_id: str) -> str:
    raw = f"{at.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at in UTC, id) a cursor holds; 422 INVALID_CURSOR for one this API never made."""
    try:
        at, row_id = base64.urlsafe_b64decode(cursor.encode() + b"==").decode().split("|", 1)
        created_at = utc(datetime.fromisoformat(at))
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor is not one this API returned", code="INVALID_CURSOR") from exc
    if not CURSOR_ID.fullmatch(row_id):
        raise InvalidRequest("cursor is not one this API returned", code="INVALID_CURSOR")
    return created_at, row_id


def utc(value: datetime) -> datetime:
    """`value` in UTC; ValueError without a time zone, OverflowError outside the years 1-9999 in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("no time zone")
    return value.astimezone(UTC)


def time_bound(value: datetime | None, name: str) -> datetime | None:
    """A listing's `from` or `to` in UTC; 422 naming the parameter when it has no zone or is out of range."""
    if value is None:
        return None
    try:
        return utc(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name}: needs a time zone, e.g. 2026-11-27T00:00:00+08:00", field=name
        ) from exc
    except OverflowError as exc:
        raise InvalidRequest(f"{name}: out of range (years 1-9999 in UTC)", field=name) from exc

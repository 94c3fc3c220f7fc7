"""A bank's own record of a run's payments, as it uploads it: CSV or JSON, read into `RecordRow`s.

Pure. The columns (or keys) are the payment answer's own: payment_id, status, source_amount,
source_currency, reason_code; an empty cell or null is no value. Anything unreadable raises
`RecordInvalid`, naming the line or item.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from fpslink.certification.domain import RecordRow
from fpslink.money import AMOUNT_PATTERN
from fpslink.vocabulary import Status

COLUMNS: Final = ("payment_id", "status", "source_amount", "source_currency", "reason_code")
MAX_ROWS: Final = 1_000


class RecordInvalid(ValueError):
    pass


def _text(value: Any, where: str, name: str, *, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordInvalid(f"{where}: {name} must be a string")
    value = value.strip()
    if len(value) > limit or not value.isprintable():
        raise RecordInvalid(f"{where}: {name} is not a value this record can hold")
    return value or None


def row_of(item: Mapping[str, Any], where: str) -> RecordRow:
    payment_id = _text(item.get("payment_id"), where, "payment_id", limit=36)
    if payment_id is None:
        raise RecordInvalid(f"{where}: payment_id is missing")
    status_text = _text(item.get("status"), where, "status", limit=10)
    try:
        status = Status(status_text or "")
    except ValueError as exc:
        raise RecordInvalid(
            f"{where}: status must be SETTLED, REJECTED or PENDING, not {status_text!r}"
        ) from exc
    amount_text = _text(item.get("source_amount"), where, "source_amount", limit=20)
    amount = None
    if amount_text is not None:
        if not AMOUNT_PATTERN.fullmatch(amount_text):
            raise RecordInvalid(f"{where}: source_amount {amount_text!r} is not a decimal amount")
        try:
            amount = Decimal(amount_text)
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
            raise RecordInvalid(f"{where}: source_amount {amount_text!r} is not a decimal amount") from exc
    return RecordRow(
        payment_id=payment_id,
        status=status,
        source_amount=amount,
        source_currency=_text(item.get("source_currency"), where, "source_currency", limit=3),
        reason_code=_text(item.get("reason_code"), where, "reason_code", limit=40),
    )


def parse_json(raw: bytes) -> list[RecordRow]:
    """`{"payments": [...]}` or a bare list of payment objects."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordInvalid(f"not valid JSON: {exc}") from exc
    items = document.get("payments") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise RecordInvalid('a JSON record is {"payments": [...]} or a list of payments')
    if len(items) > MAX_ROWS:
        raise RecordInvalid(f"a record holds at most {MAX_ROWS} payments")
    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise RecordInvalid(f"payments[{index}]: each payment is a JSON object")
        rows.append(row_of(item, f"payments[{index}]"))
    return rows


def parse_csv(raw: bytes) -> list[RecordRow]:
    """RFC 4180 with a header line naming at least payment_id and status."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordInvalid("a CSV record must be UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    if "payment_id" not in header or "status" not in header:
        raise RecordInvalid(f"the CSV header must name payment_id and status (columns: {', '.join(COLUMNS)})")
    rows: list[RecordRow] = []
    try:
        for item in reader:
            if len(rows) >= MAX_ROWS:
                raise RecordInvalid(f"a record holds at most {MAX_ROWS} payments")
            rows.append(row_of(item, f"line {reader.line_num}"))
    except csv.Error as exc:
        raise RecordInvalid(f"line {reader.line_num}: {exc}") from exc
    return rows


def parse(raw: bytes, content_type: str | None) -> list[RecordRow]:
    """The record in `raw`, read as CSV when the content type says so, else as JSON."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media in {"text/csv", "application/csv"}:
        return parse_csv(raw)
    return parse_json(raw)


def as_json(rows: list[RecordRow]) -> list[dict[str, Any]]:
    """The rows as stored (and shown back): the record's own columns."""
    return [
        {
            "payment_id": r.payment_id,
            "status": r.status.value,
            "source_amount": None if r.source_amount is None else f"{r.source_amount:f}",
            "source_currency": r.source_currency,
            "reason_code": r.reason_code,
        }
        for r in rows
    ]

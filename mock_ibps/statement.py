"""The IBPS statement of a business date, exported in pages for the gateway's reconciliation.

A transfer belongs to business date D when it was created (prepared, or recorded as an abort
tombstone) within D in UTC+8: from D 00:00 to D+1 00:00 Hong Kong / Beijing time. Opening balances
carry no payment id and are left out. Pages are keyed by `seq`, so an export never skips or repeats
an entry however many transfers are added meanwhile; a page is a compact JSON array of rows under
one `columns` header, since a busy day has a million entries.

`GET /ibps/v1/statements/{date}/tsv` exports the same entries in the reconciliation's columns
(`STATEMENT_TSV_COLUMNS`) as PostgreSQL's COPY text format: one line per entry, tab-separated,
`\\N` for null, backslash escapes. The page is produced by `COPY ... TO STDOUT` and a reader loads it
with `COPY ... FROM STDIN`, so a million entries never become Python objects on either side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ibps_wire.schemas import (
    COLUMNS_HEADER,
    COUNT_HEADER,
    NEXT_AFTER_HEADER,
    STATEMENT_COLUMNS,
    STATEMENT_TSV_COLUMNS,
    TOTAL_HEADER,
    TSV_MEDIA_TYPE,
    StatementPageOut,
)
from mock_ibps import pg
from mock_ibps import repository as repo
from mock_ibps.api import FaultsDep, require_token
from mock_ibps.errors import StatementPurged
from mock_ibps.faults import Call
from mock_ibps.models import transfers

BUSINESS_TZ: Final = timezone(timedelta(hours=8))
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_STATEMENT_PAGE: Final = 50_000
DEFAULT_STATEMENT_PAGE: Final = 10_000
MAX_TSV_PAGE: Final = 200_000
"""A TSV entry is about 130 bytes, so the largest page is about 26 MB."""
DEFAULT_TSV_PAGE: Final = 50_000


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One transfer of the statement; amounts in minor units (fen), times in UTC."""

    seq: int
    payment_id: str
    transfer_id: str
    kind: str | None
    account_id: str | None
    debit_account_id: str | None
    credit_account_id: str | None
    currency: str | None
    amount_minor: int | None
    status: str
    reason_code: str | None
    created_at: datetime
    resolved_at: datetime | None


def business_day_bounds(business_date: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC+8 business date, in UTC."""
    start = datetime.combine(business_date, time.min, tzinfo=BUSINESS_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)


def _in_day(business_date: date) -> list[Any]:
    start, end = business_day_bounds(business_date)
    return [
        transfers.c.payment_id.is_not(None),
        transfers.c.created_at >= start,
        transfers.c.created_at < end,
    ]


_PG_PAGE = (
    "SELECT seq, payment_id, kind, account_id, currency, amount_minor, status,"
    " (EXTRACT(EPOCH FROM created_at) * 1000000)::bigint,"
    " (EXTRACT(EPOCH FROM resolved_at) * 1000000)::bigint,"
    " transfer_id, debit_account_id, credit_account_id, reason_code"
    " FROM transfers WHERE seq > $1 AND payment_id IS NOT NULL AND created_at >= $2 AND created_at < $3"
    " ORDER BY seq LIMIT $4"
)


_PG_TSV_PAGE = (
    "SELECT seq, payment_id, kind, account_id, currency, amount_minor, status,"
    " (EXTRACT(EPOCH FROM created_at) * 1000000)::bigint"
    " FROM transfers WHERE seq > $1 AND payment_id IS NOT NULL AND created_at >= $2 AND created_at < $3"
    " ORDER BY seq LIMIT $4"
)


async def statement_rows(
    conn: AsyncConnection, business_date: date, after: int, limit: int
) -> list[tuple[Any, ...]]:
    """The day's entries with seq > `after`, in seq order, at most `limit`, as tuples in
    STATEMENT_COLUMNS order.

    The page is read through asyncpg directly: at a million entries a day, building SQLAlchemy rows
    would cost more than the query itself.
    """
    start, end = business_day_bounds(business_date)
    records = await (await pg.raw(conn)).fetch(_PG_PAGE, after, start, end, limit)
    return [tuple(record) for record in records]


async def statement_entries(
    conn: AsyncConnection, business_date: date, after: int, limit: int
) -> list[StatementEntry]:
    """The day's entries with seq > `after`, in seq order, at most `limit` of them."""
    entries = []
    for row in await statement_rows(conn, business_date, after, limit):
        values = dict(zip(STATEMENT_COLUMNS, row, strict=True))
        created, resolved = values.pop("created_at_us"), values.pop("resolved_at_us")
        entries.append(
            StatementEntry(
                **values,
                created_at=EPOCH + timedelta(microseconds=created),
                resolved_at=None if resolved is None else EPOCH + timedelta(microseconds=resolved),
            )
        )
    return entries


async def statement_size(conn: AsyncConnection, business_date: date) -> int:
    """How many entries the day has: lets a reader show progress."""
    return int(
        await conn.scalar(select(func.count()).select_from(transfers).where(*_in_day(business_date))) or 0
    )


@dataclass(frozen=True, slots=True)
class TsvPage:
    data: bytes
    """Entries in STATEMENT_TSV_COLUMNS order, COPY text format, one line each."""
    count: int
    last_seq: int | None


async def statement_tsv(conn: AsyncConnection, business_date: date, after: int, limit: int) -> TsvPage:
    """The day's entries with seq > `after`, in seq order, at most `limit`, as one TSV page."""
    start, end = business_day_bounds(business_date)
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    await (await pg.raw(conn)).copy_from_query(_PG_TSV_PAGE, after, start, end, limit, output=collect)
    data = b"".join(chunks)
    count = data.count(b"\n")
    if not count:
        return TsvPage(data=data, count=0, last_seq=None)
    last_line = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
    return TsvPage(data=data, count=count, last_seq=int(last_line.split(b"\t", 1)[0]))


async def day_extent(conn: AsyncConnection, business_date: date) -> tuple[int, int]:
    """(entries, seq before the first entry) of the day: the first page starts there, not at seq 0."""
    row = (
        await conn.execute(
            select(func.count(), func.min(transfers.c.seq))
            .select_from(transfers)
            .where(*_in_day(business_date))
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 1) - 1


def _reader(request: Request) -> AsyncEngine:
    """The ledger's reader: read-only, one snapshot per transaction."""
    engine: AsyncEngine = request.app.state.ledger.reader
    return engine


async def kept_business_date(
    business_date: Annotated[date, Path(description="YYYY-MM-DD, UTC+8")], request: Request
) -> date:
    """The date asked for, unless retention purged it (`mock_ibps.retention`): a statement of a date
    half gone would show every purged entry as missing."""
    async with _reader(request).connect() as conn:
        first_kept = await repo.kept_from(conn)
    if first_kept is not None and business_date < first_kept:
        raise StatementPurged(
            f"the statement of {business_date.isoformat()} was purged by retention; dates from "
            f"{first_kept.isoformat()} on are kept",
            kept_from=first_kept.isoformat(),
        )
    return business_date


KeptDate = Annotated[date, Depends(kept_business_date)]
"""A statement's business date, refused (409 STATEMENT_PURGED) when it was purged."""

router = APIRouter(prefix="/ibps/v1", dependencies=[Depends(require_token)])


@router.get(
    "/statements/{business_date}",
    summary="The statement of a UTC+8 business date, paged by seq",
    response_class=Response,
    responses={
        200: {
            "model": StatementPageOut,
            "description": "`columns`, `entries` (rows in that order), `next_after`, `total`",
        }
    },
)
async def get_statement(
    business_date: KeptDate,
    request: Request,
    faults: FaultsDep,
    after: Annotated[int, Query(ge=0, description="Return entries with seq greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_STATEMENT_PAGE)] = DEFAULT_STATEMENT_PAGE,
) -> Response:
    """One page; `next_after` is null on the last page and `total` is given on the first."""

    async def page() -> bytes:
        async with _reader(request).connect() as conn:
            rows = await statement_rows(conn, business_date, after, limit)
            total = await statement_size(conn, business_date) if after == 0 else None
        body = {
            "business_date": business_date.isoformat(),
            "columns": STATEMENT_COLUMNS,
            "entries": rows,
            "next_after": rows[-1][0] if len(rows) == limit else None,
            "total": total,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    content = await faults.run(Call.STATEMENT, f"{business_date.isoformat()}:{after}", page)
    return Response(content=content, media_type="application/json")


@router.get(
    "/statements/{business_date}/tsv",
    summary="The statement of a UTC+8 business date in the reconciliation's columns, as TSV pages",
    response_class=Response,
    responses={
        200: {
            "description": (
                "PostgreSQL COPY text format (tab-separated, `\\N` for null, backslash escapes), one "
                f"entry a line. Headers: `{COLUMNS_HEADER}` (comma-separated column names), "
                f"`{COUNT_HEADER}` (entries in this page), `{NEXT_AFTER_HEADER}` (absent on the last "
                f"page), `{TOTAL_HEADER}` (the day's entries, on the first page)."
            ),
            "content": {TSV_MEDIA_TYPE: {}},
        }
    },
)
async def get_statement_tsv(
    business_date: KeptDate,
    request: Request,
    faults: FaultsDep,
    after: Annotated[int, Query(ge=0, description="Return entries with seq greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_TSV_PAGE)] = DEFAULT_TSV_PAGE,
) -> Response:
    """One page of the statement as TSV: the bulk export the gateway's reconciliation loads."""

    async def page() -> tuple[TsvPage, int | None]:
        async with _reader(request).connect() as conn:
            total = None
            start = after
            if after == 0:
                total, before_first = await day_extent(conn, business_date)
                start = max(after, before_first)
            return await statement_tsv(conn, business_date, start, limit), total

    found, total = await faults.run(Call.STATEMENT, f"{business_date.isoformat()}:{after}", page)
    headers = {COLUMNS_HEADER: ",".join(STATEMENT_TSV_COLUMNS), COUNT_HEADER: str(found.count)}
    if found.count == limit and found.last_seq is not None:
        headers[NEXT_AFTER_HEADER] = str(found.last_seq)
    if total is not None:
        headers[TOTAL_HEADER] = str(total)
    return Response(content=found.data, media_type=TSV_MEDIA_TYPE, headers=headers)

"""Reconciliation use cases: run the three-way match of a business date, read a stored run.

A run streams the IBPS statement page by page into the matcher's staging table (the next page is
fetched while the current one loads), matches in SQL, stores the breaks and a summary, and returns
the run's id. Memory stays bounded by one or two pages whatever the day's volume.

Between the match and the breaks, the payments near midnight that the day's statement lacks (a few,
at most MAX_CROSS_DAY_LOOKUPS) are looked up at IBPS by id: one booked on the previous or next day
is a timing difference, not a break (see `domain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.context import Gateway
from fpslink.errors import InvalidRequest, NotFound
from fpslink.reconciliation import matching, tsv
from fpslink.reconciliation import report as rep
from fpslink.reconciliation.domain import business_date_of, cut_off_window_s, neighbour_entry
from fpslink.reconciliation.models import recon_breaks, recon_runs
from ibps_wire.schemas import StatementTsvPage, TransferOut

log = logging.getLogger("fpslink.reconciliation")

STATEMENT_PAGE_SIZE: Final = 50_000
"""Entries per statement page: about 6 MB of TSV; one page loads while the next is on the wire."""
MAX_STATEMENT_PAGES: Final = 10_000
BREAK_PAGE_SIZE: Final = 5_000
MAX_CROSS_DAY_LOOKUPS: Final = 10_000
"""Payments near midnight looked up at IBPS by id in one run; any more keep their breaks, and the
summary says how many were not looked up."""
LOOKUP_CONCURRENCY: Final = 16
TIMING_DIFFERENCES_LISTED: Final = 1_000
"""Timing differences listed in the summary (all are counted)."""

Progress = Callable[[str, int, int | None], None]
"""(phase, done, total or None): called as statement pages load and as matching steps finish."""


@dataclass(frozen=True, slots=True)
class StatementPage:
    data: bytes
    """Entries in `matching.STAGING_COLUMNS` order, COPY text format (see `tsv`), one a line."""
    count: int
    total: int | None

    @classmethod
    def of_rows(cls, rows: Sequence[Sequence[Any]], *, total: int | None = None) -> StatementPage:
        return cls(data=tsv.encode(rows), count=len(rows), total=total)

    def rows(self) -> list[tuple[Any, ...]]:
        """The entries as tuples (ints for seq, amount and time): for tests and small statements."""
        return tsv.decode(
            self.data, width=len(matching.STAGING_COLUMNS), int_columns=matching.STAGING_INT_COLUMNS
        )


StatementSource = Callable[[Gateway, date], AsyncIterator[StatementPage]]


def parse_page(page: StatementTsvPage) -> StatementPage:
    """A page from `IbpsClient.statement_tsv_page`, checked to carry the staging table's columns."""
    if page.columns != matching.STAGING_COLUMNS:
        raise RuntimeError(f"IBPS statement columns {page.columns!r}, expected {matching.STAGING_COLUMNS!r}")
    return StatementPage(data=page.data, count=page.count, total=page.total)


async def ibps_statement(gw: Gateway, business_date: date) -> AsyncIterator[StatementPage]:
    """The statement over HTTP, one page ahead: page n+1 is on the wire while page n loads."""
    pending = asyncio.ensure_future(
        gw.ibps.statement_tsv_page(business_date, after=0, limit=STATEMENT_PAGE_SIZE)
    )
    try:
        for _ in range(MAX_STATEMENT_PAGES):
            page = await pending
            following = page.next_after
            if following is not None:
                pending = asyncio.ensure_future(
                    gw.ibps.statement_tsv_page(business_date, after=following, limit=STATEMENT_PAGE_SIZE)
                )
            yield parse_page(page)
            if following is None:
                return
        raise RuntimeError(f"IBPS statement longer than {MAX_STATEMENT_PAGES} pages")
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


def _no_progress(phase: str, done: int, total: int | None) -> None:
    return None


async def reconcile(
    gw: Gateway,
    *,
    business_date: date,
    progress: Progress = _no_progress,
    statement: StatementSource = ibps_statement,
) -> str:
    """Run the three-way match of one UTC+8 business date and store it; returns the run's id."""
    now = gw.clock()
    if business_date > business_date_of(now):
        raise InvalidRequest(f"business_date {business_date.isoformat()} has not begun yet (UTC+8)")
    run_id = str(uuid.uuid4())
    async with gw.engine.begin() as conn:
        await conn.execute(
            insert(recon_runs).values(
                run_id=run_id,
                business_date=business_date.isoformat(),
                status="RUNNING",
                created_at=now,
                as_of=now,
            )
        )
    try:
        summary = await _match(
            gw, run_id=run_id, business_date=business_date, as_of=now, progress=progress, statement=statement
        )
    except BaseException as exc:
        async with gw.engine.begin() as conn:
            await conn.execute(
                update(recon_runs)
                .where(recon_runs.c.run_id == run_id)
                .values(status="FAILED", completed_at=gw.clock(), error=f"{type(exc).__name__}: {exc}"[:500])
            )
        raise
    log.info("reconciliation %s of %s: %s breaks", run_id, business_date, summary["break_count"])
    return run_id


async def _match(
    gw: Gateway,
    *,
    run_id: str,
    business_date: date,
    as_of: datetime,
    progress: Progress,
    statement: StatementSource,
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    repeated = asyncio.ensure_future(_any_repeated_instruction(gw, business_date))
    try:
        return await _match_on_one_connection(
            gw,
            run_id=run_id,
            business_date=business_date,
            as_of=as_of,
            progress=progress,
            statement=statement,
            repeated=repeated,
            started=started,
            timings=timings,
        )
    finally:
        if not repeated.done():
            repeated.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await repeated


async def _any_repeated_instruction(gw: Gateway, business_date: date) -> bool:
    async with gw.engine.connect() as conn:
        await matching.tune(conn)
        return await matching.any_repeated_instruction(conn, business_date=business_date)


async def _match_on_one_connection(
    gw: Gateway,
    *,
    run_id: str,
    business_date: date,
    as_of: datetime,
    progress: Progress,
    statement: StatementSource,
    repeated: asyncio.Future[bool],
    started: float,
    timings: dict[str, float],
) -> dict[str, Any]:
    async with gw.engine.connect() as conn:
        try:
            async with conn.begin():
                await matching.create_work_tables(conn)
                loaded = 0
                async for page in statement(gw, business_date):
                    await matching.load_staging(conn, page.data)
                    loaded += page.count
                    progress("statement", loaded, page.total)
                duplicates = await matching.remove_staging_duplicates(conn)
            timings["statement_s"] = time.perf_counter() - started
            async with conn.begin():
                await matching.tune(conn)
                mark = time.perf_counter()
                progress("matching", 0, 3)
                await matching.build_match(
                    conn,
                    business_date=business_date,
                    as_of=as_of,
                    timeout_s=gw.settings.settlement_timeout_s,
                    window_s=cut_off_window_s(gw.settings.settlement_timeout_s),
                )
                timings["match_s"] = time.perf_counter() - mark
                mark = time.perf_counter()
                timing = await _match_across_cut_off(gw, conn, business_date=business_date)
                timings["cross_day_s"] = time.perf_counter() - mark
                progress("matching", 1, 3)
                mark = time.perf_counter()
                await matching.insert_breaks(
                    conn,
                    run_id=run_id,
                    business_date=business_date,
                    as_of=as_of,
                    timeout_s=gw.settings.settlement_timeout_s,
                    statement_duplicates=duplicates,
                    repeated_instructions=await repeated,
                )
                timings["breaks_s"] = time.perf_counter() - mark
                progress("matching", 2, 3)
                mark = time.perf_counter()
                counts = await matching.break_counts(conn, run_id=run_id)
                totals = await matching.totals(conn, business_date=business_date)
                ledgers = totals["ledgers"]
                summary: dict[str, Any] = {
                    "statement_entries": loaded,
                    "break_count": sum(counts.values()),
                    "breaks_by_type": rep.breaks_by_type(counts),
                    "totals": {
                        "gateway": rep.gateway_rows(totals["gateway"]),
                        "fps": rep.ledger_rows(ledgers["FPS"], rep.FPS_DIRECTION),
                        "ibps": rep.ledger_rows(ledgers["IBPS"], rep.IBPS_DIRECTION),
                    },
                    "positions": rep.positions(ledgers),
                    "fx": rep.fx_rows(totals["fx"]),
                    "hourly": rep.hourly_rows(totals["hourly"]),
                    "latency": rep.latency_rows(totals["latency"]),
                    "unmatched": totals["unmatched"],
                    "timing_differences": timing,
                }
                timings["totals_s"] = time.perf_counter() - mark
                timings["total_s"] = time.perf_counter() - started
                summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
                await conn.execute(
                    update(recon_runs)
                    .where(recon_runs.c.run_id == run_id)
                    .values(
                        status="COMPLETED",
                        completed_at=gw.clock(),
                        break_count=summary["break_count"],
                        summary=json.dumps(summary, separators=(",", ":")),
                    )
                )
                progress("matching", 3, 3)
        finally:
            try:
                async with conn.begin():
                    await matching.drop_work_tables(conn)
            except Exception:
                await conn.invalidate()
                raise
    return summary


async def _match_across_cut_off(gw: Gateway, conn: AsyncConnection, *, business_date: date) -> dict[str, Any]:
    """Look up at IBPS, by id, the entries the day's statement lacks for payments near midnight, and
    match those booked on the previous or next day: timing differences, counted and listed apart."""
    window_s = cut_off_window_s(gw.settings.settlement_timeout_s)
    ids, candidates = await matching.cross_day_candidates(
        conn, business_date=business_date, window_s=window_s, limit=MAX_CROSS_DAY_LOOKUPS
    )
    entries = [
        entry
        for transfer in await _transfers(gw, ids)
        if (entry := neighbour_entry(business_date, transfer)) is not None
    ]
    await matching.record_neighbours(conn, entries)
    listed = await matching.timing_differences(conn, limit=TIMING_DIFFERENCES_LISTED)
    return {
        "count": len(entries),
        "looked_up": len(ids),
        "not_looked_up": candidates - len(ids),
        "items": rep.timing_rows(listed),
    }


async def _transfers(gw: Gateway, payment_ids: Sequence[str]) -> list[TransferOut]:
    """IBPS's transfer of each payment id that has one, LOOKUP_CONCURRENCY calls at a time; the first
    failure cancels the rest and fails the run rather than leave a false break."""
    gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def one(payment_id: str) -> TransferOut | None:
        async with gate:
            return await gw.ibps.get_transfer(payment_id)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(payment_id)) for payment_id in payment_ids]
    return [found for task in tasks if (found := task.result()) is not None]


@dataclass(frozen=True, slots=True)
class Run:
    run_id: str
    business_date: str
    status: str
    created_at: datetime
    as_of: datetime
    completed_at: datetime | None
    break_count: int | None
    summary: dict[str, Any]
    error: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "reconciliation_id": self.run_id,
            "business_date": self.business_date,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "completed_at": None if self.completed_at is None else self.completed_at.isoformat(),
            "break_count": self.break_count,
            "error": self.error,
            **self.summary,
        }


async def get_run(gw: Gateway, run_id: str) -> Run:
    async with gw.engine.connect() as conn:
        row = (await conn.execute(select(recon_runs).where(recon_runs.c.run_id == run_id))).mappings().first()
    if row is None:
        raise NotFound("no such reconciliation", code="RECONCILIATION_NOT_FOUND", reconciliation_id=run_id)
    return Run(
        run_id=row["run_id"],
        business_date=row["business_date"],
        status=row["status"],
        created_at=row["created_at"],
        as_of=row["as_of"],
        completed_at=row["completed_at"],
        break_count=row["break_count"],
        summary=json.loads(row["summary"]) if row["summary"] else {},
        error=row["error"],
    )


async def iter_breaks(gw: Gateway, run_id: str, *, limit: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """The run's breaks in the order found, read in pages so a huge run never sits in memory."""
    after, sent = 0, 0
    b = recon_breaks.c
    while limit is None or sent < limit:
        page_size = BREAK_PAGE_SIZE if limit is None else min(BREAK_PAGE_SIZE, limit - sent)
        async with gw.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(recon_breaks)
                        .where(b.run_id == run_id, b.seq > after)
                        .order_by(b.seq)
                        .limit(page_size)
                    )
                )
                .mappings()
                .all()
            )
        for row in rows:
            yield dict(row)
        sent += len(rows)
        if len(rows) < page_size:
            return
        after = int(rows[-1]["seq"])

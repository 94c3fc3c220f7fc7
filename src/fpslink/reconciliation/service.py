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
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Protocol

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.config import Settings
from fpslink.db import Clock
from fpslink.errors import InvalidRequest, NotFound
from fpslink.reconciliation import matching, tsv
from fpslink.reconciliation import report as rep
from fpslink.reconciliation.domain import business_date_of, cut_off_window_s, neighbour_entry
from fpslink.reconciliation.repository import ReconciliationRepository, Run, reference_columns
from fpslink.uow import Connections, UnitsOfWork
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


StatementSource = Callable[[date], AsyncIterator[StatementPage]]
"""The IBPS statement of a business date, page by page."""


def parse_page(page: StatementTsvPage) -> StatementPage:
    """A page from `IbpsClient.statement_tsv_page`, checked to carry the staging table's columns."""
    if page.columns != matching.STAGING_COLUMNS:
        raise RuntimeError(f"IBPS statement columns {page.columns!r}, expected {matching.STAGING_COLUMNS!r}")
    return StatementPage(data=page.data, count=page.count, total=page.total)


def _no_progress(phase: str, done: int, total: int | None) -> None:
    return None


class IbpsStatements(Protocol):
    """What reconciliation asks of IBPS: the day's statement, and single transfers near midnight."""

    async def statement_tsv_page(
        self, business_date: date, *, after: int = 0, limit: int = 50_000
    ) -> StatementTsvPage: ...

    async def get_transfer(self, payment_id: str) -> TransferOut | None: ...


class ReconciliationService:
    """Runs and reads reconciliations; built once per process (`fpslink.context.Gateway`).

    The match runs on a connection of its own (`connections`), over several transactions: its
    temporary tables belong to that session. Everything else is a unit of work.
    """

    def __init__(
        self,
        uow: UnitsOfWork,
        connections: Connections,
        ibps: IbpsStatements,
        *,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._uow = uow
        self._connections = connections
        self._ibps = ibps
        self._clock = clock
        self._settings = settings

    async def ibps_statement(self, business_date: date) -> AsyncIterator[StatementPage]:
        """The statement over HTTP, one page ahead: page n+1 is on the wire while page n loads."""
        ibps = self._ibps
        pending = asyncio.ensure_future(
            ibps.statement_tsv_page(business_date, after=0, limit=STATEMENT_PAGE_SIZE)
        )
        try:
            for _ in range(MAX_STATEMENT_PAGES):
                page = await pending
                following = page.next_after
                if following is not None:
                    pending = asyncio.ensure_future(
                        ibps.statement_tsv_page(business_date, after=following, limit=STATEMENT_PAGE_SIZE)
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

    async def reconcile(
        self,
        *,
        business_date: date,
        progress: Progress = _no_progress,
        statement: StatementSource | None = None,
    ) -> str:
        """Run the three-way match of one UTC+8 business date and store it; returns the run's id."""
        now = self._clock()
        if business_date > business_date_of(now):
            raise InvalidRequest(f"business_date {business_date.isoformat()} has not begun yet (UTC+8)")
        run_id = str(uuid.uuid4())
        async with self._uow() as tx:
            kept_from = await tx.retention.kept_from()
            if kept_from is not None and business_date < kept_from:
                raise InvalidRequest(
                    f"business_date {business_date.isoformat()} was purged by retention: its payments "
                    f"are no longer kept; dates from {kept_from.isoformat()} on can be reconciled",
                    code="BUSINESS_DATE_PURGED",
                    kept_from=kept_from.isoformat(),
                )
            await tx.reconciliation.insert_run(run_id=run_id, business_date=business_date, now=now)
            await tx.commit()
        try:
            summary = await self._match(
                run_id=run_id,
                business_date=business_date,
                as_of=now,
                progress=progress,
                statement=statement or self.ibps_statement,
            )
        except BaseException as exc:
            async with self._uow() as tx:
                await tx.reconciliation.fail_run(
                    run_id=run_id, completed_at=self._clock(), error=f"{type(exc).__name__}: {exc}"
                )
                await tx.commit()
            raise
        log.info("reconciliation %s of %s: %s breaks", run_id, business_date, summary["break_count"])
        return run_id

    async def _match(
        self,
        *,
        run_id: str,
        business_date: date,
        as_of: datetime,
        progress: Progress,
        statement: StatementSource,
    ) -> dict[str, Any]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        repeated = asyncio.ensure_future(self._any_repeated_instruction(business_date))
        try:
            return await self._match_on_one_connection(
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

    async def _any_repeated_instruction(self, business_date: date) -> bool:
        async with self._uow() as tx:
            await matching.tune(tx.conn)
            return await matching.any_repeated_instruction(tx.conn, business_date=business_date)

    async def _match_on_one_connection(
        self,
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
        timeout_s = self._settings.settlement_timeout_s
        async with self._connections() as conn:
            try:
                async with conn.begin():
                    await matching.create_work_tables(conn)
                    loaded = 0
                    async for page in statement(business_date):
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
                        timeout_s=timeout_s,
                        window_s=cut_off_window_s(timeout_s),
                    )
                    timings["match_s"] = time.perf_counter() - mark
                    mark = time.perf_counter()
                    timing = await self._match_across_cut_off(conn, business_date=business_date)
                    timings["cross_day_s"] = time.perf_counter() - mark
                    progress("matching", 1, 3)
                    mark = time.perf_counter()
                    await matching.insert_breaks(
                        conn,
                        run_id=run_id,
                        business_date=business_date,
                        as_of=as_of,
                        timeout_s=timeout_s,
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
                    await ReconciliationRepository(conn).complete_run(
                        run_id=run_id,
                        completed_at=self._clock(),
                        break_count=summary["break_count"],
                        summary=summary,
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

    async def _match_across_cut_off(self, conn: AsyncConnection, *, business_date: date) -> dict[str, Any]:
        """Look up at IBPS, by id, the entries the day's statement lacks for payments near midnight, and
        match those booked on the previous or next day: timing differences, counted and listed apart."""
        window_s = cut_off_window_s(self._settings.settlement_timeout_s)
        ids, candidates = await matching.cross_day_candidates(
            conn, business_date=business_date, window_s=window_s, limit=MAX_CROSS_DAY_LOOKUPS
        )
        entries = [
            entry
            for transfer in await self._transfers(ids)
            if (entry := neighbour_entry(business_date, transfer)) is not None
        ]
        await matching.record_neighbours(conn, entries)
        listed = rep.timing_rows(await matching.timing_differences(conn, limit=TIMING_DIFFERENCES_LISTED))
        found = await ReconciliationRepository(conn).references_of([item["payment_id"] for item in listed])
        return {
            "count": len(entries),
            "looked_up": len(ids),
            "not_looked_up": candidates - len(ids),
            "items": [{**item, **reference_columns(found.get(item["payment_id"]))} for item in listed],
        }

    async def _transfers(self, payment_ids: Sequence[str]) -> list[TransferOut]:
        """IBPS's transfer of each payment id that has one, LOOKUP_CONCURRENCY calls at a time; the first
        failure cancels the rest and fails the run rather than leave a false break."""
        gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

        async def one(payment_id: str) -> TransferOut | None:
            async with gate:
                return await self._ibps.get_transfer(payment_id)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(payment_id)) for payment_id in payment_ids]
        return [found for task in tasks if (found := task.result()) is not None]

    async def get_run(self, run_id: str) -> Run:
        async with self._uow() as tx:
            run = await tx.reconciliation.run(run_id)
        if run is None:
            raise NotFound(
                "no such reconciliation", code="RECONCILIATION_NOT_FOUND", reconciliation_id=run_id
            )
        return run

    async def runs(self, *, limit: int) -> Sequence[RowMapping]:
        """Stored runs, newest first."""
        async with self._uow() as tx:
            return await tx.reconciliation.runs(limit=limit)

    async def iter_breaks(self, run_id: str, *, limit: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """The run's breaks in the order found, read in pages so a huge run never sits in memory, each
        with the debtor bank's references to its payment (`BankReferences`; None where the gateway
        has no such payment)."""
        after, sent = 0, 0
        while limit is None or sent < limit:
            page_size = BREAK_PAGE_SIZE if limit is None else min(BREAK_PAGE_SIZE, limit - sent)
            async with self._uow() as tx:
                rows = await tx.reconciliation.breaks_page(run_id, after=after, limit=page_size)
                references = await tx.reconciliation.references_of([row["payment_id"] for row in rows])
            for row in rows:
                yield {**row, "references": references.get(row["payment_id"])}
            sent += len(rows)
            if len(rows) < page_size:
                return
            after = int(rows[-1]["seq"])

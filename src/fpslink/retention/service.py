"""The retention job: one pass purges, table by table, what has outlived its period.

A pass holds a PostgreSQL advisory lock for its whole length, on a connection of its own, so that
one process at a time purges however many workers and hosts run the job; the others skip the pass.
Under the lock every batch is its own short transaction (`FPSLINK_RETENTION_BATCH_SIZE` rows, at
most `FPSLINK_RETENTION_MAX_BATCHES` batches per table and pass), so the job never holds row locks
or a snapshot for long and the payment path does not wait on it. The order of the steps lets each
rely on the one before: deliveries of the payments about to go, then the payments with their FPS
transfers (their balances carried forward), then what belongs to past dates. Every gateway worker
runs `run_forever` unless FPSLINK_RETENTION_ENABLED is off; `fpslink retention` runs passes for an
operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import metrics
from fpslink.config import Settings
from fpslink.db import Clock, database_unavailable, one_line
from fpslink.ledger.repository import funding_account
from fpslink.money import Currency
from fpslink.retention import policy
from fpslink.retention.repository import HorizonRepository, PurgeRepository
from fpslink.uow import Connections
from ibps_wire.retention import carry_forward, run_locked

log = logging.getLogger("fpslink.retention")

LOCK_KEY = 0x6670_736C_696E_6B01
"""The advisory lock of the gateway's retention job (a constant of its own in its database)."""
FUNDING_ACCOUNTS = frozenset(funding_account(currency) for currency in Currency)

Step = Callable[[PurgeRepository], Awaitable[tuple[int, bool]]]
"""One batch of a step on a transaction: (rows deleted, whether the step is done)."""


@dataclass
class PurgeReport:
    """What one pass did. `ran` is False when another process held the lock and this one skipped."""

    ran: bool
    kept_from: date | None = None
    purged: dict[str, int] = field(default_factory=dict)
    """Rows deleted by step: keys, deliveries, timeline, payments, transfers, quotes, usage, recon."""
    carried: int = 0
    """Carried-forward entries written (each replacing the account's previous one)."""
    finished: bool = True
    """False when a step stopped at its bound with more to purge: the next pass goes on."""

    @property
    def total(self) -> int:
        return sum(self.purged.values())

    def as_json(self) -> dict[str, object]:
        return {
            "ran": self.ran,
            "kept_from": None if self.kept_from is None else self.kept_from.isoformat(),
            "purged": dict(self.purged),
            "carried": self.carried,
            "finished": self.finished,
        }


class RetentionService:
    """Runs retention passes; built once per process (`fpslink.context.Gateway`)."""

    def __init__(self, connections: Connections, *, clock: Clock, settings: Settings) -> None:
        self._connections = connections
        self._clock = clock
        self._settings = settings

    async def run_once(self, *, max_batches: int | None = None) -> PurgeReport:
        """One pass, unless another process is running one (then `ran` is False)."""
        bound = max_batches or self._settings.retention_max_batches
        report = await run_locked(self._connections, LOCK_KEY, lambda conn: self._pass(conn, bound))
        return report or PurgeReport(ran=False)

    async def _pass(self, conn: AsyncConnection, bound: int) -> PurgeReport:
        now = self._clock()
        settings = self._settings
        size = settings.retention_batch_size
        h = policy.horizon(now, settings)
        report = PurgeReport(ran=True, kept_from=h.kept_from)
        async with conn.begin():
            before = await HorizonRepository(conn).move_horizon(h.kept_from, now=now)
        moved = before is None or before < h.kept_from

        async def repeat(name: str, step: Step) -> None:
            for _ in range(bound):
                async with conn.begin():
                    count, done = await step(PurgeRepository(conn))
                self._count(report, name, count)
                if done:
                    return
            report.finished = False

        async def keys(repo: PurgeRepository) -> tuple[int, bool]:
            count = await repo.purge_keys(expired_at=h.keys_expired_at, limit=size)
            return count, count < size

        async def deliveries(repo: PurgeRepository) -> tuple[int, bool]:
            count = await repo.purge_deliveries(
                finished_before=h.deliveries_before, pending_before=h.payments_before, limit=size
            )
            return count, count < size

        async def timeline(repo: PurgeRepository) -> tuple[int, bool]:
            return await repo.purge_timeline(before=h.timeline_before, limit=size)

        async def quotes(repo: PurgeRepository) -> tuple[int, bool]:
            count = await repo.purge_quotes(before=h.quotes_before, limit=size)
            return count, count < size

        day_before, year_before = policy.closed_periods(h.kept_from)

        async def usage(repo: PurgeRepository) -> tuple[int, bool]:
            count = await repo.purge_usage(day_before=day_before, year_before=year_before, limit=size)
            return count, count < size

        async def recon(repo: PurgeRepository) -> tuple[int, bool]:
            count = await repo.purge_recon(before=h.kept_from, limit=size)
            return count, count < size

        await repeat("keys", keys)
        await repeat("deliveries", deliveries)
        await repeat("timeline", timeline)
        await self._payments(conn, report, h, bound)
        await repeat("quotes", quotes)
        if moved:  # rows of past dates: their set changes only when the kept dates move
            await repeat("usage", usage)
            await repeat("recon", recon)
        return report

    async def _payments(
        self, conn: AsyncConnection, report: PurgeReport, h: policy.Horizon, bound: int
    ) -> None:
        """Final payments past the horizon, a batch per transaction: their FPS transfers leave the
        ledger and their postings are carried forward (with the accounts' earlier carried entries),
        what they reserved is carried for I5, then they go with their timelines and keys."""
        size = self._settings.retention_batch_size
        carried_at = h.payments_before - timedelta(microseconds=1)
        after = None
        for _ in range(bound):
            async with conn.begin():
                repo = PurgeRepository(conn)
                batch = await repo.purgeable_payments(before=h.payments_before, after=after, limit=size)
                if not batch:
                    return
                ids = [p.payment_id for p in batch]
                transfers, removed = await repo.delete_transfers(ids)
                touched = {a for p in removed for a in (p.debit_account_id, p.credit_account_id)}
                removed += await repo.delete_carried(sorted(touched - FUNDING_ACCOUNTS))
                entries = carry_forward(removed, funding_account=funding_account)
                await repo.insert_carried(entries, at=carried_at)
                await repo.carry_usage(policy.carried_usage(p.reservation for p in batch))
                deleted = await repo.delete_payments(ids)
            self._count(report, "payments", deleted)
            self._count(report, "transfers", transfers)
            report.carried += len(entries)
            if len(batch) < size:
                return
            after = (batch[-1].created_at, batch[-1].payment_id)
        report.finished = False

    @staticmethod
    def _count(report: PurgeReport, name: str, count: int) -> None:
        if count:
            report.purged[name] = report.purged.get(name, 0) + count
            metrics.RETENTION_PURGED.labels(step=name).inc(count)

    async def run_forever(self) -> None:
        """The background loop of a gateway worker; errors are logged and the loop goes on."""
        interval = self._settings.retention_interval_s
        while True:
            try:
                report = await self.run_once()
                if report.total:
                    log.info("retention: kept from %s, purged %s", report.kept_from, report.purged)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if database_unavailable(exc):  # an outage, not a bug: one line each time
                    log.warning("retention pass failed (%s); retrying in %.1f s", one_line(exc), interval)
                else:
                    log.exception("retention pass failed; retrying in %.1f s", interval)
            await asyncio.sleep(interval)

    def start(self) -> asyncio.Task[None] | None:
        """The job's task for this process, unless FPSLINK_RETENTION_ENABLED is off."""
        if not self._settings.retention_enabled:
            return None
        return asyncio.create_task(self.run_forever(), name="fpslink-retention")

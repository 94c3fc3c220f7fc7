"""mock_ibps's retention job: the gateway's, in the same shape, on IBPS's own database.

A business date (UTC+8) is purged once it is older than today and the `MOCK_IBPS_RETENTION_DAYS`
before it: a payment's transfer goes when it was created and resolved before the first kept date
(a pending one, a hold, is never touched), and what the posted ones moved is carried forward as one
CARRIED transfer per account against the funding account, so the ledger still sums to zero, every
cached balance equals its postings, and a kept date's camt.053 opens and closes as before. An abort
tombstone goes with its date: by then the gateway has long finished the payment.

One process at a time purges (an advisory lock held on the pass's own connection); every batch is its
own short transaction. The service runs `run_forever` in its lifespan unless
MOCK_IBPS_RETENTION_ENABLED is off; `mock-ibps retention` runs passes for an operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ibps_wire.retention import carry_forward, kept_from, run_locked
from mock_ibps import repository as repo
from mock_ibps.config import Settings
from mock_ibps.models import FUNDING_ACCOUNT_ID
from mock_ibps.statement import BUSINESS_TZ, business_day_bounds

log = logging.getLogger("mock_ibps.retention")

LOCK_KEY = 0x6962_7073_5F72_6574
"""The advisory lock of mock_ibps's retention job (a constant of its own)."""
CURRENCY = "CNY"


def funding_account(currency: str) -> str:
    """IBPS accounts hold CNY only: its one funding account."""
    if currency != CURRENCY:
        raise ValueError(f"IBPS holds no {currency}")
    return FUNDING_ACCOUNT_ID


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did; `ran` is False when another process held the lock."""

    ran: bool
    kept_from: date | None = None
    transfers: int = 0
    carried: int = 0
    finished: bool = True
    """False when the pass stopped at its bound with more to purge."""


class IbpsRetention:
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime], settings: Settings) -> None:
        self._engine = engine
        self._clock = clock
        self._settings = settings

    async def run_once(self, *, max_batches: int | None = None) -> PassReport:
        """One pass, unless another process is running one (then `ran` is False)."""
        bound = max_batches or self._settings.retention_max_batches
        report = await run_locked(self._engine.connect, LOCK_KEY, lambda conn: self._pass(conn, bound))
        return report or PassReport(ran=False)

    async def _pass(self, conn: AsyncConnection, bound: int) -> PassReport:
        now = self._clock()
        first_kept = kept_from(now.astimezone(BUSINESS_TZ).date(), self._settings.retention_days)
        before = business_day_bounds(first_kept)[0]
        carried_at = before - timedelta(microseconds=1)
        size = self._settings.retention_batch_size
        async with conn.begin():
            await repo.move_horizon(conn, first_kept, now=now)
        purged = carried = 0
        after: tuple[datetime, int] | None = None
        for _ in range(bound):
            async with conn.begin():
                batch = await repo.purgeable_transfers(conn, before=before, after=after, limit=size)
                if not batch:
                    break
                count, removed = await repo.delete_transfers(conn, [seq for seq, _ in batch])
                touched = {a for p in removed for a in (p.debit_account_id, p.credit_account_id)}
                removed += await repo.delete_carried(conn, sorted(touched - {FUNDING_ACCOUNT_ID}))
                entries = carry_forward(removed, funding_account=funding_account)
                await repo.insert_carried(conn, entries, at=carried_at)
            purged += count
            carried += len(entries)
            if len(batch) < size:
                break
            last_seq, last_created_at = batch[-1]
            after = (last_created_at, last_seq)
        else:
            return PassReport(True, first_kept, purged, carried, finished=False)
        return PassReport(True, first_kept, purged, carried)

    async def run_forever(self) -> None:
        interval = self._settings.retention_interval_s
        while True:
            try:
                report = await self.run_once()
                if report.transfers:
                    log.info(
                        "retention: kept from %s, purged %d transfers", report.kept_from, report.transfers
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention pass failed; retrying in %.1f s", interval)
            await asyncio.sleep(interval)

    def start(self) -> asyncio.Task[None] | None:
        """The job's task, unless MOCK_IBPS_RETENTION_ENABLED is off."""
        if not self._settings.retention_enabled:
            return None
        return asyncio.create_task(self.run_forever(), name="mock-ibps-retention")

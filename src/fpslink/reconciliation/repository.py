"""Stored reconciliation runs and their breaks; the match itself is `matching`'s set-based SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.iso20022.models import iso20022_details
from fpslink.payments.models import payments
from fpslink.reconciliation.models import recon_breaks, recon_runs

REFERENCE_COLUMNS: Final = ("end_to_end_id", "msg_id", "instr_id", "tx_id", "uetr")
"""The debtor bank's references to a payment as a report's columns (`BankReferences`)."""


@dataclass(frozen=True, slots=True)
class BankReferences:
    """The debtor bank's own references to a payment, which a report lists beside the link's payment
    id: its EndToEndId (JSON or ISO 20022), and for a payment sent as a pacs.008 its MsgId, InstrId,
    TxId and UETR."""

    end_to_end_id: str | None
    msg_id: str | None
    instr_id: str | None
    tx_id: str | None
    uetr: str | None

    def columns(self) -> dict[str, str | None]:
        return {
            "end_to_end_id": self.end_to_end_id,
            "msg_id": self.msg_id,
            "instr_id": self.instr_id,
            "tx_id": self.tx_id,
            "uetr": self.uetr,
        }


def reference_columns(found: BankReferences | None) -> dict[str, str | None]:
    """A payment's references as a report's columns; empty where the gateway has no such payment."""
    return dict.fromkeys(REFERENCE_COLUMNS) if found is None else found.columns()


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


class ReconciliationRepository:
    """Runs and breaks, on a unit of work's connection or on the matcher's own."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert_run(self, *, run_id: str, business_date: date, now: datetime) -> None:
        """A run RUNNING as of `now`: what the match will see of the gateway's side."""
        await self._conn.execute(
            insert(recon_runs).values(
                run_id=run_id,
                business_date=business_date.isoformat(),
                status="RUNNING",
                created_at=now,
                as_of=now,
            )
        )

    async def complete_run(
        self, *, run_id: str, completed_at: datetime, break_count: int, summary: dict[str, Any]
    ) -> None:
        await self._conn.execute(
            update(recon_runs)
            .where(recon_runs.c.run_id == run_id)
            .values(
                status="COMPLETED",
                completed_at=completed_at,
                break_count=break_count,
                summary=json.dumps(summary, separators=(",", ":")),
            )
        )

    async def fail_run(self, *, run_id: str, completed_at: datetime, error: str) -> None:
        await self._conn.execute(
            update(recon_runs)
            .where(recon_runs.c.run_id == run_id)
            .values(status="FAILED", completed_at=completed_at, error=error[:500])
        )

    async def run(self, run_id: str) -> Run | None:
        query = select(recon_runs).where(recon_runs.c.run_id == run_id)
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            return None
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

    async def runs(self, *, limit: int) -> Sequence[RowMapping]:
        """Runs, newest first: the console's list."""
        query = (
            select(
                recon_runs.c.run_id,
                recon_runs.c.business_date,
                recon_runs.c.status,
                recon_runs.c.created_at,
                recon_runs.c.completed_at,
                recon_runs.c.break_count,
                recon_runs.c.error,
            )
            .order_by(recon_runs.c.created_at.desc(), recon_runs.c.run_id)
            .limit(limit)
        )
        return (await self._conn.execute(query)).mappings().all()

    async def references_of(self, payment_ids: Sequence[str]) -> dict[str, BankReferences]:
        """The banks' references to these payments (those the gateway has)."""
        if not payment_ids:
            return {}
        d = iso20022_details.c
        query = (
            select(payments.c.payment_id, payments.c.end_to_end_id, d.msg_id, d.instr_id, d.tx_id, d.uetr)
            .select_from(payments.outerjoin(iso20022_details, d.payment_id == payments.c.payment_id))
            .where(payments.c.payment_id.in_(list(set(payment_ids))))
        )
        return {row[0]: BankReferences(*row[1:]) for row in await self._conn.execute(query)}

    async def breaks_page(self, run_id: str, *, after: int, limit: int) -> Sequence[RowMapping]:
        """The run's breaks after `seq`, in the order found."""
        b = recon_breaks.c
        query = select(recon_breaks).where(b.run_id == run_id, b.seq > after).order_by(b.seq).limit(limit)
        return (await self._conn.execute(query)).mappings().all()

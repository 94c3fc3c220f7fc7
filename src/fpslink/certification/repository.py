"""Queries of certification runs, their scenarios and observations, on a unit of work's connection."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.certification.domain import (
    Action,
    Answer,
    Evidence,
    Kind,
    Observation,
    Outcome,
    RecordRow,
    RunStatus,
    Scenario,
    Step,
    Suite,
    Verdict,
)
from fpslink.certification.models import (
    certification_observations as o,
)
from fpslink.certification.models import (
    certification_runs as r,
)
from fpslink.certification.models import (
    certification_scenarios as sc,
)
from fpslink.certification.record import row_of
from fpslink.money import Currency


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A stored run."""

    certification_id: str
    participant_id: str
    suite: Suite
    status: RunStatus
    debtor_account_id: str
    currency: Currency
    creditor_proxy: str | None
    creditor_account_id: str | None
    creditor_currency: Currency
    created_at: datetime
    starts_at: datetime
    expires_at: datetime
    completed_at: datetime | None = None
    record: tuple[RecordRow, ...] | None = None
    record_at: datetime | None = None

    @property
    def creditor(self) -> str:
        return self.creditor_proxy or self.creditor_account_id or ""

    def values(self) -> dict[str, Any]:
        return {
            "certification_id": self.certification_id,
            "participant_id": self.participant_id,
            "suite": self.suite.value,
            "status": self.status.value,
            "debtor_account_id": self.debtor_account_id,
            "currency": self.currency.value,
            "creditor_proxy": self.creditor_proxy,
            "creditor_account_id": self.creditor_account_id,
            "creditor_currency": self.creditor_currency.value,
            "created_at": self.created_at,
            "starts_at": self.starts_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class ScenarioRecord:
    """A stored scenario of a run: its step, its hold and, once the run ended, its verdict."""

    step: Step
    hold_until: datetime | None
    verdict: Verdict | None
    """None while the run goes on (the live verdict is judged on each read)."""


def _run(row: RowMapping) -> RunRecord:
    stored = row["record"]
    record = None
    if stored is not None:
        record = tuple(row_of(item, f"payments[{i}]") for i, item in enumerate(json.loads(stored)))
    return RunRecord(
        certification_id=row["certification_id"],
        participant_id=row["participant_id"],
        suite=Suite(row["suite"]),
        status=RunStatus(row["status"]),
        debtor_account_id=row["debtor_account_id"],
        currency=Currency(row["currency"]),
        creditor_proxy=row["creditor_proxy"],
        creditor_account_id=row["creditor_account_id"],
        creditor_currency=Currency(row["creditor_currency"]),
        created_at=row["created_at"],
        starts_at=row["starts_at"],
        expires_at=row["expires_at"],
        completed_at=row["completed_at"],
        record=record,
        record_at=row["record_at"],
    )


def evidence_json(evidence: Sequence[Evidence]) -> str:
    return json.dumps(
        [
            {"at": e.at.isoformat() if e.at else None, "request_id": e.request_id, "what": e.what}
            for e in evidence
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _evidence(stored: str | None) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(datetime.fromisoformat(e["at"]) if e["at"] else None, e["request_id"], e["what"])
        for e in json.loads(stored or "[]")
    )


def _scenario(row: RowMapping, currency: Currency) -> ScenarioRecord:
    status = Outcome(row["status"])
    verdict = None
    if status is not Outcome.WAITING:
        verdict = Verdict(status, row["reason"] or "", _evidence(row["evidence"]))
    step = Step(Scenario(row["scenario"]), row["position"], row["amount_minor"], currency)
    return ScenarioRecord(step, row["hold_until"], verdict)


def _observation(row: RowMapping) -> Observation:
    return Observation(
        seq=row["seq"],
        scenario=Scenario(row["scenario"]),
        kind=Kind(row["kind"]),
        at=row["at"],
        action=Action(row["action"]),
        request_id=row["request_id"],
        idempotency_key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        quote_id=row["quote_id"],
        status_code=row["status_code"],
        problem_code=row["problem_code"],
        payment_id=row["payment_id"],
        payment_status=row["payment_status"],
        reason_code=row["reason_code"],
        replayed=row["replayed"],
        retry_after_s=row["retry_after_s"],
    )


OUTCOME_FIELDS = ("status_code", "problem_code", "payment_id", "payment_status", "reason_code", "replayed")
"""What an observation learns from its answer (`Answer`'s fields of the same names)."""


class CertificationsRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def insert_run(self, run: RunRecord, steps: Sequence[Step]) -> None:
        await self._conn.execute(insert(r).values(**run.values()))
        await self._conn.execute(
            insert(sc),
            [
                {
                    "certification_id": run.certification_id,
                    "scenario": s.scenario.value,
                    "position": s.position,
                    "amount_minor": s.amount_minor,
                    "status": Outcome.WAITING.value,
                }
                for s in steps
            ],
        )

    async def run(self, certification_id: str, *, lock: bool = False) -> RunRecord | None:
        query = select(r).where(r.c.certification_id == certification_id)
        if lock:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _run(row)

    async def runs(self, *, participant_id: str | None, limit: int) -> list[RunRecord]:
        """Runs newest first: one bank's, or every bank's (None, the operator)."""
        query = select(r).order_by(r.c.created_at.desc(), r.c.certification_id).limit(limit)
        if participant_id is not None:
            query = query.where(r.c.participant_id == participant_id)
        return [_run(row) for row in (await self._conn.execute(query)).mappings()]

    async def running(self) -> list[tuple[RunRecord, list[ScenarioRecord]]]:
        """Every RUNNING run with its scenarios: what each worker keeps in memory to know whose
        requests to look at (at most one per bank, so a handful)."""
        rows = (await self._conn.execute(select(r).where(r.c.status == RunStatus.RUNNING.value))).mappings()
        runs = [_run(row) for row in rows]
        if not runs:
            return []
        ids = [run.certification_id for run in runs]
        query = select(sc).where(sc.c.certification_id.in_(ids)).order_by(sc.c.position)
        by_run: dict[str, list[RowMapping]] = {}
        for row in (await self._conn.execute(query)).mappings():
            by_run.setdefault(row["certification_id"], []).append(row)
        return [
            (run, [_scenario(row, run.currency) for row in by_run.get(run.certification_id, [])])
            for run in runs
        ]

    async def scenarios(self, certification_id: str, currency: Currency) -> list[ScenarioRecord]:
        query = select(sc).where(sc.c.certification_id == certification_id).order_by(sc.c.position)
        return [_scenario(row, currency) for row in (await self._conn.execute(query)).mappings()]

    async def lock_scenario(
        self, certification_id: str, scenario: Scenario, currency: Currency
    ) -> ScenarioRecord | None:
        """The scenario, locked until the transaction ends: one attempt of it is decided at a time."""
        query = (
            select(sc)
            .where(sc.c.certification_id == certification_id, sc.c.scenario == scenario.value)
            .with_for_update()
        )
        row = (await self._conn.execute(query)).mappings().first()
        return None if row is None else _scenario(row, currency)

    async def set_hold(self, certification_id: str, scenario: Scenario, hold_until: datetime) -> None:
        await self._conn.execute(
            update(sc)
            .where(sc.c.certification_id == certification_id, sc.c.scenario == scenario.value)
            .values(hold_until=hold_until)
        )

    async def observations(
        self, certification_id: str, scenario: Scenario | None = None
    ) -> list[Observation]:
        """The run's observations (or one scenario's), in the order they were made."""
        query = select(o).where(o.c.certification_id == certification_id).order_by(o.c.seq)
        if scenario is not None:
            query = query.where(o.c.scenario == scenario.value)
        return [_observation(row) for row in (await self._conn.execute(query)).mappings()]

    async def insert_observation(self, certification_id: str, seen: Observation) -> int:
        """Record a request as it arrives; returns its sequence number (`seen.seq` is ignored)."""
        values = {
            "certification_id": certification_id,
            "scenario": seen.scenario.value,
            "kind": seen.kind.value,
            "action": seen.action.value,
            "at": seen.at,
            "request_id": seen.request_id,
            "idempotency_key": seen.idempotency_key,
            "fingerprint": seen.fingerprint,
            "quote_id": seen.quote_id,
            "retry_after_s": seen.retry_after_s,
            **{name: getattr(seen, name) for name in OUTCOME_FIELDS},
        }
        return int((await self._conn.execute(insert(o).values(**values).returning(o.c.seq))).scalar_one())

    async def finish_observation(self, seq: int, answer: Answer) -> None:
        """Record what the request was answered."""
        await self._conn.execute(
            update(o).where(o.c.seq == seq).values(**{name: getattr(answer, name) for name in OUTCOME_FIELDS})
        )

    async def save_record(self, certification_id: str, record: str, *, at: datetime) -> bool:
        """Keep the bank's record (JSON of its rows) while the run goes on; False once it has ended."""
        result = await self._conn.execute(
            update(r)
            .where(r.c.certification_id == certification_id, r.c.status == RunStatus.RUNNING.value)
            .values(record=record, record_at=at)
        )
        return result.rowcount == 1

    async def complete(
        self,
        certification_id: str,
        *,
        status: RunStatus,
        completed_at: datetime,
        verdicts: Sequence[tuple[Scenario, Verdict]],
    ) -> bool:
        """End a RUNNING run with its verdicts (a compare-and-set: False if it had ended already)."""
        result = await self._conn.execute(
            update(r)
            .where(r.c.certification_id == certification_id, r.c.status == RunStatus.RUNNING.value)
            .values(status=status.value, completed_at=completed_at)
        )
        if result.rowcount != 1:
            return False
        await self._conn.execute(
            update(sc)
            .where(sc.c.certification_id == certification_id, sc.c.scenario == bindparam("which"))
            .values(status=bindparam("outcome"), reason=bindparam("why"), evidence=bindparam("seen")),
            [
                {
                    "which": scenario.value,
                    "outcome": verdict.status.value,
                    "why": verdict.reason,
                    "seen": evidence_json(verdict.evidence),
                }
                for scenario, verdict in verdicts
            ],
        )
        return True

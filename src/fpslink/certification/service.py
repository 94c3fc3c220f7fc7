"""Use cases of certification runs: start, read, record, complete; what the API edge asks of a run
while the bank's requests pass (`begin_payment`, `answered`, `polled`, `quoted`); and each worker's
watch of the runs in progress (`ActiveRuns`, `refresh`).

Every judgement reads the run's observations, its payments and the bank's deliveries of them, then
decides in `domain.judge`; nothing is judged inside a transaction that writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError

from fpslink.certification import domain
from fpslink.certification import record as records
from fpslink.certification.domain import (
    Action,
    Answer,
    Brief,
    Decision,
    Facts,
    Kind,
    Observation,
    Outcome,
    PaymentView,
    RunStatus,
    Scenario,
    Step,
    Suite,
    Timing,
    Verdict,
)
from fpslink.certification.repository import RunRecord, ScenarioRecord
from fpslink.config import Settings
from fpslink.db import Clock, database_unavailable, one_line
from fpslink.directory.service import ResolvedProxy
from fpslink.errors import Conflict, InvalidRequest, NotFound
from fpslink.fx.repository import expire_quote
from fpslink.money import Currency
from fpslink.participants.service import require_participant
from fpslink.payments import repository as payments_repo
from fpslink.principal import Principal
from fpslink.settlement.states import status_of
from fpslink.uow import UnitOfWork, UnitsOfWork
from fpslink.vocabulary import Status, System
from fpslink.webhooks import outbox
from fpslink.webhooks.probes import Probe

log = logging.getLogger("fpslink.certification")

DELIVERY_SLACK = timedelta(seconds=5)
"""Deliveries are looked for from a little before the run began (each worker's clock reads it)."""


@dataclass(frozen=True, slots=True)
class ActiveRun:
    """What a worker keeps in memory of a run in progress: enough to tell the run's requests apart
    from all others without asking the database."""

    certification_id: str
    participant_id: str
    debtor_account_id: str
    currency: Currency
    created_at: datetime
    starts_at: datetime
    expires_at: datetime
    tags: Mapping[int, Scenario]

    def live(self, now: datetime) -> bool:
        return self.starts_at <= now < self.expires_at


@dataclass
class ActiveRuns:
    """The runs in progress, by bank: refreshed by each worker's watch. Empty, which is all the API
    edge looks at on a request, when no bank is certifying."""

    by_bank: dict[str, ActiveRun] = field(default_factory=dict)

    def replace(self, runs: Sequence[ActiveRun]) -> None:
        fresh = {run.participant_id: run for run in runs}
        for bank in [b for b in self.by_bank if b not in fresh]:
            del self.by_bank[bank]
        self.by_bank.update(fresh)


@dataclass(frozen=True, slots=True)
class ScenarioView:
    step: Step
    brief: Brief
    verdict: Verdict
    hold_until: datetime | None


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as the API and the certificate show it: live verdicts while it goes on, stored ones after."""

    run: RunRecord
    scenarios: tuple[ScenarioView, ...]

    @property
    def passed(self) -> int:
        return sum(1 for s in self.scenarios if s.verdict.status is Outcome.PASSED)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.scenarios if s.verdict.status is Outcome.FAILED)

    def summary(self) -> dict[str, Any]:
        """The run in a webhook event."""
        r = self.run
        return {
            "certification_id": r.certification_id,
            "participant_id": r.participant_id,
            "suite": r.suite.value,
            "status": r.status.value,
            "created_at": r.created_at.isoformat(),
            "completed_at": None if r.completed_at is None else r.completed_at.isoformat(),
            "passed": self.passed,
            "failed": self.failed,
            "scenarios": [
                {"scenario": s.step.scenario.value, "status": s.verdict.status.value} for s in self.scenarios
            ],
        }


class Busy(Conflict):
    """The sandbox still owes a scenario something (a held outcome, a probe): ask again shortly."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, code="CERTIFICATION_BUSY")
        self.retry_after_s = retry_after_s


def timing_of(settings: Settings) -> Timing:
    return Timing(
        hold_s=settings.certification_hold_s,
        retry_after_s=settings.certification_retry_after_s,
        in_progress_retry_s=settings.certification_in_progress_retry_s,
        min_poll_s=settings.certification_min_poll_s,
    )


class Directory(Protocol):
    """The proxy directory as a run's creditor is checked (`directory.service.DirectoryService`)."""

    async def lookup(self, *, proxy_type: str, proxy_value: str) -> ResolvedProxy: ...


def _not_found(certification_id: str) -> NotFound:
    return NotFound(
        f"certification run {certification_id} not found",
        code="CERTIFICATION_NOT_FOUND",
        certification_id=certification_id,
    )


class CertificationService:
    """Certification runs; built once per process (`fpslink.context.Gateway`), with the process's
    `ActiveRuns` that the API edge reads."""

    def __init__(
        self,
        uow: UnitsOfWork,
        *,
        clock: Clock,
        wall: Clock,
        settings: Settings,
        directory: Directory,
        active: ActiveRuns,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._wall = wall
        self._settings = settings
        self._directory = directory
        self.active = active
        self.timing = timing_of(settings)

    # the bank's use cases ------------------------------------------------------------------------

    async def start(
        self,
        principal: Principal,
        *,
        suite: Suite,
        debtor_account_id: str,
        creditor_proxy: str | None,
        creditor_account_id: str | None,
    ) -> RunView:
        """A new run for the bank (one at a time), paying from its own account to `creditor`."""
        bank = require_participant(principal)
        async with self._uow() as tx:
            debtor = await tx.participants.account(debtor_account_id)
        if debtor is None or debtor.participant_id != bank:
            raise NotFound(f"account {debtor_account_id} not found", code="ACCOUNT_NOT_FOUND")
        creditor_proxy, creditor_currency = await self._creditor(
            debtor.system, creditor_proxy, creditor_account_id
        )
        await self._end_expired(bank)
        now = self._clock()
        run = RunRecord(
            certification_id=str(uuid.uuid4()),
            participant_id=bank,
            suite=suite,
            status=RunStatus.RUNNING,
            debtor_account_id=debtor.account_id,
            currency=debtor.currency,
            creditor_proxy=creditor_proxy,
            creditor_account_id=None if creditor_proxy else creditor_account_id,
            creditor_currency=creditor_currency,
            created_at=now,
            starts_at=now + timedelta(seconds=self._settings.certification_refresh_s),
            expires_at=now + timedelta(seconds=self._settings.certification_timeout_s),
        )
        steps = domain.plan(suite, debtor.currency, [secrets.randbelow(99) for _ in domain.SUITES[suite]])
        view = self._view(run, [ScenarioRecord(s, None, None) for s in steps], {})
        try:
            async with self._uow() as tx:
                await tx.certifications.insert_run(run, steps)
                await self._announce(tx, view, outbox.RUN_STARTED)
                await tx.commit()
        except IntegrityError as exc:
            raise Conflict(
                f"{bank} has a certification run in progress: complete it (POST "
                "/v1/certifications/{id}/complete) or let it expire first",
                code="CERTIFICATION_RUNNING",
            ) from exc
        self.active.by_bank[bank] = _active(run, steps)
        log.info("certification run %s started for %s (%s)", run.certification_id, bank, suite.value)
        return view

    async def _creditor(
        self, system: System, proxy: str | None, account_id: str | None
    ) -> tuple[str | None, Currency]:
        """The run's creditor (a proxy as E.164, or an account) and its currency, in the other system."""
        if proxy is not None:
            found = await self._directory.lookup(proxy_type="MOBILE", proxy_value=proxy)
            e164, other, currency = found.proxy_value, found.system, found.currency
        else:
            assert account_id is not None  # the schema requires one of the two
            async with self._uow() as tx:
                account = await tx.participants.account(account_id)
            if account is None:
                raise InvalidRequest(
                    f"creditor account {account_id} does not exist", code="CERTIFICATION_CREDITOR_INVALID"
                )
            e164, other, currency = None, account.system, account.currency
        if other is system:
            raise InvalidRequest(
                "the creditor must be in the other system: the run pays across the link",
                code="CERTIFICATION_CREDITOR_INVALID",
            )
        return e164, currency

    async def view(self, principal: Principal, certification_id: str) -> RunView:
        run = await self._own_run(principal, certification_id)
        return await self._judged(run)

    async def list_runs(self, principal: Principal, *, limit: int) -> list[RunRecord]:
        """The bank's runs, newest first; the operator sees every bank's."""
        async with self._uow() as tx:
            return await tx.certifications.runs(participant_id=principal.participant_id, limit=limit)

    async def upload_record(
        self, principal: Principal, certification_id: str, raw: bytes, content_type: str | None
    ) -> RunView:
        """Keep the bank's own record of the run's payments (the last upload counts)."""
        run = await self._own_run(principal, certification_id, bank_only=True)
        try:
            rows = records.parse(raw, content_type)
        except records.RecordInvalid as exc:
            raise InvalidRequest(str(exc), code="CERTIFICATION_RECORD_INVALID") from exc
        stored = json.dumps(records.as_json(rows), separators=(",", ":"))
        async with self._uow() as tx:
            if not await tx.certifications.save_record(certification_id, stored, at=self._clock()):
                raise _ended(run)
            await tx.commit()
        return await self.view(principal, certification_id)

    async def complete(self, principal: Principal, certification_id: str) -> RunView:
        """End the run with its verdicts; refused (`Busy`) while the sandbox still owes a scenario
        something. Completing an ended run answers it as it ended."""
        run = await self._own_run(principal, certification_id, bank_only=True)
        if run.status is not RunStatus.RUNNING:
            return await self._judged(run)
        live = await self._judged(run)
        owed = [s.step.scenario.value for s in live.scenarios if s.verdict.sandbox_owes]
        if owed:
            raise Busy(
                f"the sandbox is still delivering or holding for {', '.join(owed)}; complete again "
                "in a moment",
                retry_after_s=1,
            )
        return await self._finish(run)

    async def certificate(self, principal: Principal, certification_id: str) -> RunView:
        run = await self._own_run(principal, certification_id)
        if run.status is RunStatus.RUNNING:
            raise Conflict(
                f"certification run {certification_id} is in progress: complete it first",
                code="CERTIFICATION_NOT_COMPLETE",
            )
        return await self._judged(run)

    async def _own_run(
        self, principal: Principal, certification_id: str, *, bank_only: bool = False
    ) -> RunRecord:
        """The run, if the caller may see it: its bank, or (reading only) the operator."""
        if bank_only:
            require_participant(principal)
        try:
            uuid.UUID(certification_id)
        except ValueError:
            raise _not_found(certification_id) from None
        async with self._uow() as tx:
            run = await tx.certifications.run(certification_id)
        if run is None or not (principal.is_operator or principal.participant_id == run.participant_id):
            raise _not_found(certification_id)
        if run.status is RunStatus.RUNNING and run.expires_at <= self._clock():
            return (await self._finish(run)).run
        return run

    # judging -------------------------------------------------------------------------------------

    async def _judged(self, run: RunRecord, *, final: bool = False) -> RunView:
        """The run with every scenario judged now (or, once ended, as it was judged then)."""
        async with self._uow() as tx:
            stored = await tx.certifications.scenarios(run.certification_id, run.currency)
            if run.status is not RunStatus.RUNNING and not final:
                return self._view(run, stored, {})
            seen = await tx.certifications.observations(run.certification_id)
            payment_ids = list(dict.fromkeys(o.payment_id for o in seen if o.payment_id))
            payments = [p for pid in payment_ids if (p := await payments_repo.get(tx.conn, pid)) is not None]
            rows = await outbox.deliveries_of(
                tx.conn,
                participant_id=run.participant_id,
                payment_ids=payment_ids,
                since=run.created_at - DELIVERY_SLACK,
            )
        views = [
            PaymentView(
                payment_id=p.payment_id,
                status=status_of(p.state),
                source_amount=p.source_text() if p.moved else None,
                source_currency=p.source_currency.value,
                reason_code=p.reason_code,
            )
            for p in payments
        ]
        deliveries = [
            domain.Delivery(
                delivery_id=d["delivery_id"],
                payment_id=d["payment_id"],
                probe=d["probe"],
                status=d["status"],
                attempts=d["attempts"],
                last_status_code=d["last_status_code"],
                delivered_at=d["delivered_at"],
            )
            for d in rows
        ]
        now = self._wall()
        verdicts: dict[Scenario, Verdict] = {}
        for scenario in stored:
            s = scenario.step.scenario
            mine = [o for o in seen if o.scenario is s]
            own_payments = {o.payment_id for o in mine if o.payment_id}
            facts = Facts(
                observations=mine,
                deliveries=[d for d in deliveries if d.payment_id in own_payments],
                hold_until=scenario.hold_until,
                record=run.record,
                payments=views,
            )
            verdicts[s] = domain.judge(s, facts, now=now, timing=self.timing, final=final)
        await self._queue_missing_probes(run, stored, seen, views, deliveries)
        return self._view(run, stored, verdicts)

    async def _queue_missing_probes(
        self,
        run: RunRecord,
        stored: Sequence[ScenarioRecord],
        seen: Sequence[Observation],
        views: Sequence[PaymentView],
        deliveries: Sequence[domain.Delivery],
    ) -> None:
        """A webhook scenario's payment that became final out of the edge's sight (answered PENDING,
        never asked again) gets its probes when the run is read."""
        final = {v.payment_id for v in views if v.status is not Status.PENDING}
        probed = {d.payment_id for d in deliveries if d.probe is not None}
        for scenario in stored:
            probe = domain.PROBES.get(scenario.step.scenario)
            if probe is None or run.status is not RunStatus.RUNNING:
                continue
            for o in seen:
                if (
                    o.scenario is scenario.step.scenario
                    and o.payment_id in final
                    and o.payment_id not in probed
                ):
                    await self._probe(run.participant_id, o.payment_id, probe)
                    probed.add(o.payment_id)

    def _view(
        self, run: RunRecord, stored: Sequence[ScenarioRecord], verdicts: Mapping[Scenario, Verdict]
    ) -> RunView:
        waiting = Verdict(Outcome.WAITING, "the run has not started yet")
        scenarios = tuple(
            ScenarioView(
                step=s.step,
                brief=domain.brief(
                    s.step,
                    debtor=run.debtor_account_id,
                    creditor=run.creditor,
                    creditor_currency=run.creditor_currency,
                    timing=self.timing,
                ),
                verdict=verdicts.get(s.step.scenario) or s.verdict or waiting,
                hold_until=s.hold_until,
            )
            for s in stored
        )
        return RunView(run, scenarios)

    async def _finish(self, run: RunRecord) -> RunView:
        """Judge the run for good, store the verdicts and announce the end (once, whoever ends it)."""
        judged = await self._judged(run, final=True)
        status = domain.run_status(s.verdict for s in judged.scenarios)
        now = self._clock()
        ended = RunView(replace(run, status=status, completed_at=now), judged.scenarios)
        async with self._uow() as tx:
            done = await tx.certifications.complete(
                run.certification_id,
                status=status,
                completed_at=now,
                verdicts=[(s.step.scenario, s.verdict) for s in judged.scenarios],
            )
            if done:
                await self._announce(tx, ended, outbox.RUN_COMPLETED)
                await tx.commit()
        self.active.by_bank.pop(run.participant_id, None)
        async with self._uow() as tx:
            found = await tx.certifications.run(run.certification_id)
        assert found is not None
        if done:
            log.info("certification run %s ended %s", run.certification_id, status.value)
        return await self._judged(found)

    async def _announce(self, tx: UnitOfWork, view: RunView, event: str) -> None:
        await outbox.queue_run_event(
            tx.conn,
            participant_id=view.run.participant_id,
            certification_id=view.run.certification_id,
            event=event,
            payload=json.dumps(view.summary(), separators=(",", ":")),
            now=self._clock(),
        )

    async def _end_expired(self, bank: str) -> None:
        """End the bank's run in progress if its time is up, so that a new one may start."""
        async with self._uow() as tx:
            runs = await tx.certifications.runs(participant_id=bank, limit=1)
        if runs and runs[0].status is RunStatus.RUNNING and runs[0].expires_at <= self._clock():
            await self._finish(runs[0])

    # the API edge's part -------------------------------------------------------------------------

    async def begin_payment(
        self,
        run: ActiveRun,
        scenario: Scenario,
        *,
        key: str,
        fingerprint: str,
        quote_id: str | None,
        request_id: str | None,
    ) -> tuple[int, Decision]:
        """Decide what the sandbox does to this attempt and record it as it arrives: the scenario is
        locked meanwhile, so two attempts of it are decided one after the other."""
        now = self._wall()
        async with self._uow() as tx:
            found = await tx.certifications.lock_scenario(run.certification_id, scenario, run.currency)
            if found is None:  # pragma: no cover - a run's tags come from its scenarios
                raise _not_found(run.certification_id)
            prior = [
                o
                for o in await tx.certifications.observations(run.certification_id, scenario)
                if o.kind is Kind.PAYMENT
            ]
            decision = domain.decide(
                scenario,
                prior,
                key=key,
                quote_id=quote_id,
                now=now,
                hold_until=found.hold_until,
                timing=self.timing,
            )
            if decision.hold_until is not None and found.hold_until is None:
                await tx.certifications.set_hold(run.certification_id, scenario, decision.hold_until)
            if decision.action is Action.EXPIRE_QUOTE and quote_id is not None:
                await expire_quote(
                    tx.conn, quote_id=quote_id, participant_id=run.participant_id, now=self._clock()
                )
            seq = await tx.certifications.insert_observation(
                run.certification_id,
                Observation(
                    seq=0,
                    scenario=scenario,
                    kind=Kind.PAYMENT,
                    at=now,
                    action=decision.action,
                    request_id=request_id,
                    idempotency_key=key,
                    fingerprint=fingerprint,
                    quote_id=quote_id,
                    retry_after_s=decision.retry_after_s,
                ),
            )
            await tx.commit()
        if decision.action is not Action.FORWARD:
            log.info(
                "certification run %s, %s: %s (request %s)",
                run.certification_id,
                scenario.value,
                domain.ACTION_WORDS[decision.action],
                request_id,
            )
        return seq, decision

    async def answered(self, run: ActiveRun, scenario: Scenario, seq: int, answer: Answer) -> None:
        """Record what an attempt was answered; hold a SLOW_IBPS payment's webhooks, and queue a
        webhook scenario's probes once its payment is final."""
        async with self._uow() as tx:
            await tx.certifications.finish_observation(seq, answer)
            if answer.payment_id and scenario is Scenario.SLOW_IBPS:
                found = await tx.certifications.lock_scenario(run.certification_id, scenario, run.currency)
                if found is not None and domain.held(found.hold_until, self._wall()):
                    assert found.hold_until is not None
                    left = found.hold_until - self._wall()
                    await outbox.postpone(
                        tx.conn,
                        payment_id=answer.payment_id,
                        participant_id=run.participant_id,
                        until=self._clock() + left,
                    )
            await tx.commit()
        await self._probe_if_final(run, scenario, answer)

    async def polled(
        self, run: ActiveRun, scenario: Scenario, answer: Answer, *, request_id: str | None
    ) -> bool:
        """Record a GET of one of the run's payments; True if it must be shown PENDING (held)."""
        now = self._wall()
        async with self._uow() as tx:
            found = await tx.certifications.lock_scenario(run.certification_id, scenario, run.currency)
            hold = found is not None and domain.held(found.hold_until, now)
            shown = Status.PENDING.value if hold else answer.payment_status
            await tx.certifications.insert_observation(
                run.certification_id,
                _seen(
                    scenario,
                    Kind.POLL,
                    replace(answer, payment_status=shown),
                    at=now,
                    action=Action.HOLD_PENDING if hold else Action.FORWARD,
                    request_id=request_id,
                ),
            )
            await tx.commit()
        await self._probe_if_final(run, scenario, answer)
        return hold

    async def quoted(
        self, run: ActiveRun, scenario: Scenario, answer: Answer, *, request_id: str | None
    ) -> None:
        """Record a quote the bank asked for with one of the run's amounts."""
        async with self._uow() as tx:
            await tx.certifications.insert_observation(
                run.certification_id,
                _seen(
                    scenario,
                    Kind.QUOTE,
                    answer,
                    at=self._wall(),
                    action=Action.FORWARD,
                    request_id=request_id,
                ),
            )
            await tx.commit()

    async def _probe_if_final(self, run: ActiveRun, scenario: Scenario, answer: Answer) -> None:
        probe = domain.PROBES.get(scenario)
        if probe is not None and answer.payment_id and answer.actual_status in domain.FINAL_STATUSES:
            await self._probe(run.participant_id, answer.payment_id, probe)

    async def _probe(self, bank: str, payment_id: str, probe: Probe) -> None:
        now = self._clock()
        async with self._uow() as tx:
            await outbox.queue_probe(
                tx.conn,
                payment_id=payment_id,
                participant_id=bank,
                probe=probe,
                due=now + timedelta(seconds=self._settings.certification_probe_delay_s),
                now=now,
            )
            await tx.commit()

    # each worker's watch -------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the runs in progress into `active`, ending those whose time is up."""
        async with self._uow() as tx:
            running = await tx.certifications.running()
        now = self._clock()
        live = []
        for run, scenarios in running:
            if run.expires_at <= now:
                await self._finish(run)
            else:
                live.append(_active(run, [s.step for s in scenarios]))
        self.active.replace(live)

    async def run_forever(self) -> None:
        """The watch of a gateway worker: `refresh` every FPSLINK_CERTIFICATION_REFRESH_S."""
        interval = self._settings.certification_refresh_s
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if database_unavailable(exc):
                    log.warning("certification watch: %s; retrying in %.1f s", one_line(exc), interval)
                else:
                    log.exception("certification watch failed; retrying in %.1f s", interval)
            await asyncio.sleep(interval)

    def start_watch(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.run_forever(), name="fpslink-certification")


async def stop_watch(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _active(run: RunRecord, steps: Sequence[Step]) -> ActiveRun:
    return ActiveRun(
        certification_id=run.certification_id,
        participant_id=run.participant_id,
        debtor_account_id=run.debtor_account_id,
        currency=run.currency,
        created_at=run.created_at,
        starts_at=run.starts_at,
        expires_at=run.expires_at,
        tags=domain.tags(steps),
    )


def _seen(
    scenario: Scenario, kind: Kind, answer: Answer, *, at: datetime, action: Action, request_id: str | None
) -> Observation:
    """A poll or a quote, recorded once it has been answered."""
    return Observation(
        seq=0,
        scenario=scenario,
        kind=kind,
        at=at,
        action=action,
        request_id=request_id,
        quote_id=answer.quote_id,
        status_code=answer.status_code,
        problem_code=answer.problem_code,
        payment_id=answer.payment_id,
        payment_status=answer.payment_status,
        reason_code=answer.reason_code,
        replayed=answer.replayed,
    )


def _ended(run: RunRecord) -> Conflict:
    return Conflict(
        f"certification run {run.certification_id} has ended ({run.status.value}); start a new one",
        code="CERTIFICATION_ENDED",
    )

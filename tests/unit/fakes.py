"""In-memory stand-ins for the unit of work and for IBPS: services tested without a database or HTTP.

`FakeDatabase` holds the committed rows. Each `FakeUnitOfWork` works on a copy of them and hands
the copy back only on `commit()`, so a service that forgets to commit, or raises after writing,
leaves nothing behind, as on PostgreSQL. The fake repositories have the real ones' methods, with
the same signatures (test_fakes.py checks it), and keep the same unique keys.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy.exc import IntegrityError

from fpslink.certification import record as records
from fpslink.certification.domain import Answer, Observation, Outcome, RunStatus, Scenario, Step, Verdict
from fpslink.certification.repository import RunRecord, ScenarioRecord
from fpslink.clock.repository import ClockRecord
from fpslink.fx.repository import Quote
from fpslink.ibps_client import IbpsError, IbpsRefused
from fpslink.idempotency.repository import KeyRecord
from fpslink.iso20022.details import Details
from fpslink.iso20022.repository import SentTransaction
from fpslink.money import Currency
from fpslink.participants.keys import ApiKeyRecord, KeyStatus
from fpslink.participants.repository import AccountRecord, KeyUse, ParticipantRecord, VisibleAccount
from fpslink.ratelimit.policy import Quota
from fpslink.ratelimit.repository import Lease
from fpslink.reconciliation.repository import BankReferences, Run
from fpslink.vocabulary import Direction, Period, System
from ibps_wire.amounts import format_amount
from ibps_wire.sandbox_clock import offset_of
from ibps_wire.schemas import AccountOut, ClockOut, ParticipantOut, ProxyOut, ProxyRegistered


def duplicate(what: str) -> IntegrityError:
    """What asyncpg's unique violation arrives as."""
    return IntegrityError(f"INSERT {what}", {}, Exception(f"duplicate key value violates {what}"))


@dataclass
class Rows:
    participants: dict[str, ParticipantRecord] = field(default_factory=dict)
    api_keys: dict[str, ApiKeyRecord] = field(default_factory=dict)
    """API key hash -> key"""
    rate_buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    """participant id -> (tokens, at)"""
    accounts: dict[str, AccountRecord] = field(default_factory=dict)
    ledger: dict[str, tuple[int, int]] = field(default_factory=dict)
    """customer account id -> (balance, held) in minor units"""
    opening_transfers: list[tuple[str, int]] = field(default_factory=list)
    quotes: dict[str, Quote] = field(default_factory=dict)
    proxies: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """(type, number) -> (account id, participant id)"""
    limit_usage: dict[tuple[str, Direction, Period, str], int] = field(default_factory=dict)
    idempotency_keys: dict[tuple[str, str], tuple[KeyRecord, datetime]] = field(default_factory=dict)
    """(scope, key) -> (record, expires at)"""
    iso20022_transactions: dict[str, SentTransaction] = field(default_factory=dict)
    """record id -> the pacs.008 transaction a bank sent; (participant, UETR) unique"""
    iso20022_details: dict[str, Details] = field(default_factory=dict)
    """payment id -> what its pacs.008 transaction was sent with"""
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)
    recon_runs: dict[str, Run] = field(default_factory=dict)
    recon_breaks: list[dict[str, Any]] = field(default_factory=list)
    """(account id, direction, period, period key) -> minor units used"""
    clock: ClockRecord = field(default_factory=lambda: ClockRecord(timedelta(0), None))
    """The sandbox clock's one row."""
    certification_runs: dict[str, RunRecord] = field(default_factory=dict)
    certification_scenarios: dict[tuple[str, Scenario], ScenarioRecord] = field(default_factory=dict)
    certification_observations: list[tuple[str, Observation]] = field(default_factory=list)
    kept_from: date | None = None
    """The retention horizon's one row."""


class FakeParticipantsRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def participant(self, participant_id: str, *, lock: bool = False) -> ParticipantRecord | None:
        return self._rows.participants.get(participant_id)

    async def participant_by_key_hash(self, key_hash: str) -> ParticipantRecord | None:
        key = self._rows.api_keys.get(key_hash)
        if key is None or key.revoked_at is not None:
            return None
        return self._rows.participants[key.participant_id]

    async def use_key(self, key_hash: str, *, now: datetime) -> KeyUse | None:
        key = self._rows.api_keys.get(key_hash)
        if key is None or key.status(now) is not KeyStatus.ACTIVE:
            return None
        self._rows.api_keys[key_hash] = replace(key, last_used_at=now)
        return KeyUse(self._rows.participants[key.participant_id], key.expires_at)

    async def participant_by_bic(self, bic: str) -> ParticipantRecord | None:
        return next((r for r in self._rows.participants.values() if r.bic == bic), None)

    async def insert_participant(
        self, *, participant_id: str, name: str, system: System, now: datetime, bic: str | None = None
    ) -> None:
        if participant_id in self._rows.participants or (
            bic is not None and any(r.bic == bic for r in self._rows.participants.values())
        ):
            raise duplicate("participants")
        self._rows.participants[participant_id] = ParticipantRecord(participant_id, name, system, bic)

    async def insert_key(
        self, *, participant_id: str, key_hash: str, prefix: str, now: datetime, expires_at: datetime | None
    ) -> ApiKeyRecord:
        if participant_id not in self._rows.participants:
            raise IntegrityError("INSERT api_keys", {}, Exception("foreign key violation"))
        if key_hash in self._rows.api_keys or any(
            k.participant_id == participant_id and k.prefix == prefix for k in self._rows.api_keys.values()
        ):
            raise duplicate("api_keys")
        record = ApiKeyRecord(participant_id, prefix, now, expires_at, None, None)
        self._rows.api_keys[key_hash] = record
        return record

    async def keys(self, participant_id: str) -> list[ApiKeyRecord]:
        found = [k for k in self._rows.api_keys.values() if k.participant_id == participant_id]
        return sorted(found, key=lambda k: (k.created_at, k.prefix))

    async def active_keys(self, participant_id: str, *, now: datetime) -> int:
        return sum(
            1
            for k in self._rows.api_keys.values()
            if k.participant_id == participant_id
            and k.revoked_at is None
            and (k.expires_at is None or k.expires_at > now)
        )

    async def key_active(self, participant_id: str, prefix: str, *, now: datetime) -> bool:
        return any(
            k.participant_id == participant_id
            and k.prefix == prefix
            and k.revoked_at is None
            and (k.expires_at is None or k.expires_at > now)
            for k in self._rows.api_keys.values()
        )

    async def revoke_key(self, *, participant_id: str, prefix: str, now: datetime) -> ApiKeyRecord | None:
        for key_hash, key in self._rows.api_keys.items():
            if key.participant_id == participant_id and key.prefix == prefix:
                revoked = replace(key, revoked_at=key.revoked_at or now)
                self._rows.api_keys[key_hash] = revoked
                return revoked
        return None

    async def set_quota(self, participant_id: str, quota: Quota | None) -> bool:
        found = self._rows.participants.get(participant_id)
        if found is None:
            return False
        self._rows.participants[participant_id] = replace(found, quota=quota)
        return True

    async def list_participants(self) -> list[ParticipantRecord]:
        return [r for _, r in sorted(self._rows.participants.items())]

    async def account(self, account_id: str) -> AccountRecord | None:
        return self._rows.accounts.get(account_id)

    async def visible_account(self, account_id: str, *, viewer: str | None) -> VisibleAccount | None:
        record = self._rows.accounts.get(account_id)
        if record is None or viewer not in (None, record.participant_id):
            return None
        return VisibleAccount(record, self._rows.ledger.get(account_id))

    async def insert_account(self, record: AccountRecord, *, now: datetime) -> None:
        if record.account_id in self._rows.accounts:
            raise duplicate("accounts")
        if record.participant_id not in self._rows.participants:
            raise IntegrityError("INSERT accounts", {}, Exception("foreign key violation"))
        self._rows.accounts[record.account_id] = record


class FakeLedgerRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def open_account(
        self, *, account_id: str, currency: Currency, opening_minor: int, now: datetime
    ) -> None:
        if account_id in self._rows.ledger:
            raise duplicate("ledger_accounts")
        self._rows.ledger[account_id] = (opening_minor, 0)
        if opening_minor:
            self._rows.opening_transfers.append((account_id, opening_minor))

    async def balances(self, account_id: str) -> tuple[int, int] | None:
        return self._rows.ledger.get(account_id)


class FakeQuotesRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def insert(self, quote: Quote) -> None:
        if quote.quote_id in self._rows.quotes:
            raise duplicate("quotes")
        self._rows.quotes[quote.quote_id] = quote

    async def get(self, quote_id: str) -> Quote | None:
        return self._rows.quotes.get(quote_id)


class FakeProxiesRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def insert(
        self, *, proxy_type: str, proxy_value: str, account_id: str, participant_id: str, now: datetime
    ) -> None:
        if (proxy_type, proxy_value) in self._rows.proxies:
            raise duplicate("proxies")
        self._rows.proxies[proxy_type, proxy_value] = (account_id, participant_id)

    async def account_id_of(self, *, proxy_type: str, proxy_value: str) -> str | None:
        found = self._rows.proxies.get((proxy_type, proxy_value))
        return None if found is None else found[0]


class FakeLimitsRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def usage(
        self, *, account_id: str, direction: Direction, keys: dict[Period, str]
    ) -> dict[Period, int]:
        return {p: self._rows.limit_usage.get((account_id, direction, p, k), 0) for p, k in keys.items()}


class FakeIdempotencyRepository:
    def __init__(self, rows: Rows) -> None:
        self._keys = rows.idempotency_keys

    async def bind(
        self,
        *,
        scope: str,
        key: str,
        endpoint: str,
        fingerprint: str,
        payment_id: str | None,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
        completed: bool = False,
    ) -> bool:
        if (scope, key) in self._keys:  # bound, expired or not, until the purge deletes it
            return False
        record = KeyRecord(
            scope, key, endpoint, fingerprint, payment_id, None, None, lease_until, now if completed else None
        )
        self._keys[scope, key] = (record, expires_at)
        return True

    async def find(self, *, scope: str, key: str, now: datetime) -> KeyRecord | None:
        found = self._keys.get((scope, key))
        return None if found is None or found[1] <= now else found[0]

    async def complete(
        self, *, scope: str, key: str, now: datetime, status: int | None = None, body: str | None = None
    ) -> None:
        if (scope, key) in self._keys:
            record, expires_at = self._keys[scope, key]
            done = replace(record, completed_at=now, response_status=status, response_body=body)
            self._keys[scope, key] = (done, expires_at)

    async def take_over(self, *, scope: str, key: str, now: datetime, lease_until: datetime) -> bool:
        found = self._keys.get((scope, key))
        if found is None or found[0].completed_at is not None or found[0].lease_until > now:
            return False
        self._keys[scope, key] = (replace(found[0], lease_until=lease_until), found[1])
        return True

    async def release(self, *, scope: str, key: str) -> None:
        self._keys.pop((scope, key), None)


class FakeIso20022Repository:
    def __init__(self, rows: Rows) -> None:
        self._sent = rows.iso20022_transactions
        self._details = rows.iso20022_details

    async def add_details(self, rows: Sequence[tuple[str, Details]]) -> None:
        for payment_id, found in rows:
            if payment_id in self._details:
                raise duplicate("iso20022_details")
            self._details[payment_id] = found

    async def details(self, payment_id: str) -> Details | None:
        return self._details.get(payment_id)

    async def details_of(self, payment_ids: Sequence[str]) -> dict[str, Details]:
        return {p: self._details[p] for p in payment_ids if p in self._details}

    async def claim(self, row: SentTransaction) -> bool:
        taken = row.uetr is not None and any(
            (s.participant_id, s.uetr) == (row.participant_id, row.uetr) for s in self._sent.values()
        )
        if taken:
            return False
        self._sent[row.record_id] = row
        return True

    async def by_uetr(self, participant_id: str, uetr: str) -> SentTransaction | None:
        return next(
            (s for s in self._sent.values() if (s.participant_id, s.uetr) == (participant_id, uetr)), None
        )

    async def find(
        self,
        participant_id: str,
        *,
        payment_id: str | None = None,
        msg_id: str | None = None,
        instr_id: str | None = None,
        end_to_end_id: str | None = None,
        tx_id: str | None = None,
        limit: int = 20,
    ) -> list[SentTransaction]:
        wanted = {
            "payment_id": payment_id,
            "msg_id": msg_id,
            "instr_id": instr_id,
            "end_to_end_id": end_to_end_id,
            "tx_id": tx_id,
        }
        found = [
            s
            for s in self._sent.values()
            if s.participant_id == participant_id
            and all(value is None or getattr(s, name) == value for name, value in wanted.items())
        ]
        return sorted(found, key=lambda s: (-s.created_at.timestamp(), s.position, s.record_id))[:limit]

    async def paid(self, record_id: str, payment_id: str) -> None:
        found = self._sent.get(record_id)
        if found is not None and found.payment_id is None:
            self._sent[record_id] = replace(found, payment_id=payment_id)

    async def release(self, record_id: str) -> None:
        found = self._sent.get(record_id)
        if found is not None and found.payment_id is None:
            del self._sent[record_id]

    async def take_over(self, stale: SentTransaction, row: SentTransaction) -> bool:
        found = self._sent.get(stale.record_id)
        if found is None or found.fingerprint != stale.fingerprint or found.payment_id is not None:
            return False
        self._sent[stale.record_id] = replace(row, record_id=stale.record_id)
        return True


class FakeWebhooksRepository:
    """Webhooks and their deliveries as rows of dicts, like the real one's answers."""

    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def insert_webhook(self, row: dict[str, Any]) -> None:
        if row["webhook_id"] in self._rows.webhooks:
            raise duplicate("webhooks")
        self._rows.webhooks[row["webhook_id"]] = dict(row)

    async def count_active(self, participant_id: str) -> int:
        return len(self._active(participant_id))

    async def active_webhooks(self, participant_id: str) -> Sequence[dict[str, Any]]:
        found = sorted(self._active(participant_id), key=lambda w: (w["created_at"], w["webhook_id"]))
        return [{k: w[k] for k in ("webhook_id", "url", "created_at")} for w in found]

    def _active(self, participant_id: str) -> list[dict[str, Any]]:
        return [
            w for w in self._rows.webhooks.values() if w["participant_id"] == participant_id and w["active"]
        ]

    async def deactivate(self, *, participant_id: str, webhook_id: str) -> bool:
        found = self._rows.webhooks.get(webhook_id)
        if found is None or found["participant_id"] != participant_id or not found["active"]:
            return False
        found["active"] = False
        return True

    async def deliveries_page(
        self, *, participant_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> Sequence[dict[str, Any]]:
        mine = [
            {**d, "url": self._rows.webhooks[d["webhook_id"]]["url"]}
            for d in self._rows.deliveries.values()
            if d["participant_id"] == participant_id
        ]
        mine.sort(key=lambda d: (d["created_at"], d["delivery_id"]), reverse=True)
        if after is not None:
            mine = [d for d in mine if (d["created_at"], d["delivery_id"]) < after]
        return mine[:limit]

    async def due(self, *, now: datetime, limit: int) -> Sequence[dict[str, Any]]:
        found = [
            d
            for d in self._rows.deliveries.values()
            if d["status"] == "PENDING" and d["next_attempt_at"] <= now
        ]
        found.sort(key=lambda d: d["next_attempt_at"])
        return [{k: d[k] for k in ("delivery_id", "next_attempt_at", "attempts")} for d in found[:limit]]

    async def claim(
        self, *, delivery_id: str, seen_next_attempt_at: datetime, attempts: int, lease_until: datetime
    ) -> bool:
        d = self._rows.deliveries.get(delivery_id)
        if d is None or (d["status"], d["next_attempt_at"], d["attempts"]) != (
            "PENDING",
            seen_next_attempt_at,
            attempts,
        ):
            return False
        d.update(next_attempt_at=lease_until, attempts=attempts + 1)
        return True

    async def attempt_target(self, delivery_id: str) -> dict[str, Any] | None:
        d = self._rows.deliveries.get(delivery_id)
        if d is None:
            return None
        w = self._rows.webhooks[d["webhook_id"]]
        return {**d, "url": w["url"], "secret": w["secret"], "active": w["active"]}

    async def record_attempt(
        self,
        *,
        delivery_id: str,
        attempts: int,
        status: str,
        next_attempt_at: datetime,
        status_code: int | None,
        error: str | None,
        delivered_at: datetime | None,
    ) -> None:
        d = self._rows.deliveries.get(delivery_id)
        if d is not None and d["status"] == "PENDING" and d["attempts"] == attempts:
            d.update(
                status=status,
                next_attempt_at=next_attempt_at,
                last_status_code=status_code,
                last_error=error[:300] if error else None,
                delivered_at=delivered_at,
            )


class FakeReconciliationRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def insert_run(self, *, run_id: str, business_date: date, now: datetime) -> None:
        if run_id in self._rows.recon_runs:
            raise duplicate("recon_runs")
        self._rows.recon_runs[run_id] = Run(
            run_id, business_date.isoformat(), "RUNNING", now, now, None, None, {}, None
        )

    async def complete_run(
        self, *, run_id: str, completed_at: datetime, break_count: int, summary: dict[str, Any]
    ) -> None:
        run = self._rows.recon_runs[run_id]
        self._rows.recon_runs[run_id] = replace(
            run, status="COMPLETED", completed_at=completed_at, break_count=break_count, summary=summary
        )

    async def fail_run(self, *, run_id: str, completed_at: datetime, error: str) -> None:
        run = self._rows.recon_runs[run_id]
        self._rows.recon_runs[run_id] = replace(
            run, status="FAILED", completed_at=completed_at, error=error[:500]
        )

    async def run(self, run_id: str) -> Run | None:
        return self._rows.recon_runs.get(run_id)

    async def runs(self, *, limit: int) -> Sequence[dict[str, Any]]:
        newest = sorted(self._rows.recon_runs.values(), key=lambda r: r.run_id)
        newest.sort(key=lambda r: r.created_at, reverse=True)
        return [{"run_id": r.run_id, "status": r.status} for r in newest[:limit]]

    async def breaks_page(self, run_id: str, *, after: int, limit: int) -> Sequence[dict[str, Any]]:
        return [b for b in self._rows.recon_breaks if b["run_id"] == run_id and b["seq"] > after][:limit]

    async def references_of(self, payment_ids: Sequence[str]) -> dict[str, BankReferences]:
        """The fake keeps no payments: no payment has references here."""
        return {}


class FakeClockRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def read(self, *, lock: bool = False) -> ClockRecord:
        return self._rows.clock

    async def move(self, *, offset: timedelta, moved_at: datetime) -> bool:
        self._rows.clock = ClockRecord(offset, moved_at)
        return True


class FakeRateLimitsRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def lease(self, *, participant_id: str, quota: Quota, want: int, now: float) -> Lease:
        tokens, at = self._rows.rate_buckets.get(participant_id, (float(quota.quota), now))
        available = quota.refilled(tokens, now - at)
        granted = int(min(want, available // 1))
        self._rows.rate_buckets[participant_id] = (available - granted, max(at, now))
        return Lease(granted=granted, left=available - granted)


class FakeCertificationsRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def insert_run(self, run: RunRecord, steps: Sequence[Step]) -> None:
        running = RunStatus.RUNNING
        if run.certification_id in self._rows.certification_runs or any(
            r.participant_id == run.participant_id and r.status is running
            for r in self._rows.certification_runs.values()
        ):
            raise duplicate("ux_certification_runs_running")
        self._rows.certification_runs[run.certification_id] = run
        for step in steps:
            self._rows.certification_scenarios[(run.certification_id, step.scenario)] = ScenarioRecord(
                step, None, None
            )

    async def run(self, certification_id: str, *, lock: bool = False) -> RunRecord | None:
        return self._rows.certification_runs.get(certification_id)

    async def runs(self, *, participant_id: str | None, limit: int) -> list[RunRecord]:
        found = [
            r
            for r in self._rows.certification_runs.values()
            if participant_id is None or r.participant_id == participant_id
        ]
        found.sort(key=lambda r: (r.created_at, r.certification_id), reverse=True)
        return found[:limit]

    async def running(self) -> list[tuple[RunRecord, list[ScenarioRecord]]]:
        runs = [r for r in self._rows.certification_runs.values() if r.status is RunStatus.RUNNING]
        return [(r, await self.scenarios(r.certification_id, r.currency)) for r in runs]

    async def scenarios(self, certification_id: str, currency: Currency) -> list[ScenarioRecord]:
        found = [s for (cid, _), s in self._rows.certification_scenarios.items() if cid == certification_id]
        return sorted(found, key=lambda s: s.step.position)

    async def lock_scenario(
        self, certification_id: str, scenario: Scenario, currency: Currency
    ) -> ScenarioRecord | None:
        return self._rows.certification_scenarios.get((certification_id, scenario))

    async def set_hold(self, certification_id: str, scenario: Scenario, hold_until: datetime) -> None:
        key = (certification_id, scenario)
        self._rows.certification_scenarios[key] = replace(
            self._rows.certification_scenarios[key], hold_until=hold_until
        )

    async def observations(
        self, certification_id: str, scenario: Scenario | None = None
    ) -> list[Observation]:
        return [
            o
            for cid, o in self._rows.certification_observations
            if cid == certification_id and (scenario is None or o.scenario is scenario)
        ]

    async def insert_observation(self, certification_id: str, seen: Observation) -> int:
        seq = len(self._rows.certification_observations) + 1
        self._rows.certification_observations.append((certification_id, replace(seen, seq=seq)))
        return seq

    async def finish_observation(self, seq: int, answer: Answer) -> None:
        cid, seen = self._rows.certification_observations[seq - 1]
        fields = ("status_code", "problem_code", "payment_id", "payment_status", "reason_code", "replayed")
        self._rows.certification_observations[seq - 1] = (
            cid,
            replace(seen, **{name: getattr(answer, name) for name in fields}),
        )

    async def save_record(self, certification_id: str, record: str, *, at: datetime) -> bool:
        run = self._rows.certification_runs.get(certification_id)
        if run is None or run.status is not RunStatus.RUNNING:
            return False
        rows = tuple(records.parse_json(record.encode()))
        self._rows.certification_runs[certification_id] = replace(run, record=rows, record_at=at)
        return True

    async def complete(
        self,
        certification_id: str,
        *,
        status: RunStatus,
        completed_at: datetime,
        verdicts: Sequence[tuple[Scenario, Verdict]],
    ) -> bool:
        run = self._rows.certification_runs.get(certification_id)
        if run is None or run.status is not RunStatus.RUNNING:
            return False
        self._rows.certification_runs[certification_id] = replace(
            run, status=status, completed_at=completed_at
        )
        for scenario, verdict in verdicts:
            key = (certification_id, scenario)
            stored = None
            if verdict.status is not Outcome.WAITING:
                stored = Verdict(verdict.status, verdict.reason, verdict.evidence)
            self._rows.certification_scenarios[key] = replace(
                self._rows.certification_scenarios[key], verdict=stored
            )
        return True


class FakeHorizonRepository:
    def __init__(self, rows: Rows) -> None:
        self._rows = rows

    async def kept_from(self) -> date | None:
        return self._rows.kept_from

    async def move_horizon(self, first_kept: date, *, now: datetime) -> date | None:
        before = self._rows.kept_from
        if before is None or before < first_kept:
            self._rows.kept_from = first_kept
        return before


class FakeDatabase:
    """The committed state, and how many units of work were opened and committed on it."""

    def __init__(self) -> None:
        self.rows = Rows()
        self.opened = 0
        self.commits = 0
        self.down = False
        """Refuse every connection, as a database out of reach does."""
        self.commit_fails: BaseException | None = None
        """Raise this from the next commit, as a connection lost at COMMIT does."""

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self._rows: Rows | None = None

    async def __aenter__(self) -> FakeUnitOfWork:
        if self._db.down:
            raise ConnectionRefusedError("connect call failed")
        self._db.opened += 1
        self._rows = copy.deepcopy(self._db.rows)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._rows = None  # not committed: the copy and what was written to it are dropped

    def _open(self) -> Rows:
        if self._rows is None:
            raise RuntimeError("this unit of work is not open: it has committed or its block has ended")
        return self._rows

    @property
    def participants(self) -> FakeParticipantsRepository:
        return FakeParticipantsRepository(self._open())

    @property
    def ledger(self) -> FakeLedgerRepository:
        return FakeLedgerRepository(self._open())

    @property
    def quotes(self) -> FakeQuotesRepository:
        return FakeQuotesRepository(self._open())

    @property
    def proxies(self) -> FakeProxiesRepository:
        return FakeProxiesRepository(self._open())

    @property
    def limits(self) -> FakeLimitsRepository:
        return FakeLimitsRepository(self._open())

    @property
    def idempotency(self) -> FakeIdempotencyRepository:
        return FakeIdempotencyRepository(self._open())

    @property
    def iso20022(self) -> FakeIso20022Repository:
        return FakeIso20022Repository(self._open())

    @property
    def webhooks(self) -> FakeWebhooksRepository:
        return FakeWebhooksRepository(self._open())

    @property
    def reconciliation(self) -> FakeReconciliationRepository:
        return FakeReconciliationRepository(self._open())

    @property
    def clock(self) -> FakeClockRepository:
        return FakeClockRepository(self._open())

    @property
    def rate_limits(self) -> FakeRateLimitsRepository:
        return FakeRateLimitsRepository(self._open())

    @property
    def certifications(self) -> FakeCertificationsRepository:
        return FakeCertificationsRepository(self._open())

    @property
    def retention(self) -> FakeHorizonRepository:
        return FakeHorizonRepository(self._open())

    async def ping(self) -> None:
        self._open()

    async def commit(self) -> None:
        failure, self._db.commit_fails = self._db.commit_fails, None
        if failure is not None:
            raise failure
        self._db.rows = self._open()
        self._db.commits += 1
        self._rows = None


class FakeIbps:
    """IBPS as the services see it: answers from memory, or the refusal a test asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.accounts: dict[str, AccountOut] = {}
        self.proxies: dict[str, ProxyOut] = {}
        self.fail_with: IbpsError | None = None
        self.clock_offset_us = 0

    def _call(self, call: str, /, **args: Any) -> None:
        self.calls.append((call, args))
        if self.fail_with is not None:
            raise self.fail_with

    async def create_participant(self, *, participant_id: str, name: str) -> ParticipantOut:
        self._call("create_participant", participant_id=participant_id, name=name)
        return ParticipantOut(participant_id=participant_id, name=name)

    async def open_account(
        self, *, account_id: str, participant_id: str, holder_name: str, opening_balance_minor: int
    ) -> AccountOut:
        self._call(
            "open_account",
            account_id=account_id,
            participant_id=participant_id,
            holder_name=holder_name,
            opening_balance_minor=opening_balance_minor,
        )
        account = AccountOut.model_validate(
            {
                "account_id": account_id,
                "participant_id": participant_id,
                "holder_name": holder_name,
                "currency": "CNY",
                "balance": format_amount(opening_balance_minor),
                "held": format_amount(0),
                "available_balance": format_amount(opening_balance_minor),
            }
        )
        self.accounts[account_id] = account
        return account

    async def healthy(self) -> bool:
        return self.fail_with is None

    async def get_account(self, account_id: str) -> AccountOut | None:
        self._call("get_account", account_id=account_id)
        return self.accounts.get(account_id)

    async def register_proxy(self, *, proxy_value: str, account_id: str) -> ProxyRegistered:
        self._call("register_proxy", proxy_value=proxy_value, account_id=account_id)
        account = self.accounts[account_id]
        if proxy_value in self.proxies:
            raise IbpsRefused(409, "PROXY_ALREADY_REGISTERED", f"{proxy_value} is registered")
        found = ProxyOut(
            proxy_type="MOBILE",
            proxy_value=proxy_value,
            account_id=account_id,
            participant_id=account.participant_id,
            holder_name=account.holder_name,
            currency=account.currency,
        )
        self.proxies[proxy_value] = found
        return found

    async def lookup_proxy(self, proxy_value: str) -> ProxyOut | None:
        self._call("lookup_proxy", proxy_value=proxy_value)
        return self.proxies.get(proxy_value)

    async def clock(self) -> ClockOut:
        self._call("clock")
        now = datetime(2026, 6, 22, 4, tzinfo=UTC) + offset_of(self.clock_offset_us)
        return ClockOut(offset_us=self.clock_offset_us, now=now)

    async def set_clock(self, offset_us: int) -> ClockOut:
        self._call("set_clock", offset_us=offset_us)
        self.clock_offset_us = offset_us
        return await self.clock()

"""Invariants I1-I6 (docs/architecture.md#invariants) as one check that code, tests and `fpslink check` call.

The check reads both ledgers (the FPS ledger in SQL, the IBPS ledger through mock_ibps's API) and
the gateway's own records; it reports every violation it finds and raises only when asked to.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from fpslink.context import Gateway
from fpslink.ibps_client import IbpsError
from fpslink.idempotency.models import idempotency_keys
from fpslink.ledger.check import fps_ledger_violations
from fpslink.ledger.models import ledger_transfers
from fpslink.ledger.repository import link_account
from fpslink.limits.models import limit_usage
from fpslink.limits.policy import Reservation, UsageKey, reserved_usage
from fpslink.payments.models import payments
from fpslink.reconciliation.domain import business_day_bounds
from fpslink.retention.models import limit_usage_carried, retention_horizon
from fpslink.vocabulary import Direction, State
from ibps_wire.enums import TransferStatus
from ibps_wire.schemas import TransferOut

IBPS_PAGE = 1000
MAX_LISTED = 50


class InvariantViolation(RuntimeError):
    """At least one invariant does not hold; the message lists them."""


@dataclass
class InvariantReport:
    violations: list[str] = field(default_factory=list)
    fps_balances: dict[str, int] = field(default_factory=dict)
    ibps_balances: dict[str, str] = field(default_factory=dict)
    payments_by_state: dict[str, int] = field(default_factory=dict)
    ibps_reachable: bool = True

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_if_broken(self) -> None:
        if self.violations:
            shown = self.violations[:MAX_LISTED]
            more = len(self.violations) - len(shown)
            raise InvariantViolation("\n".join(shown) + (f"\n... and {more} more" if more > 0 else ""))


def _fps_leg(p: dict[str, Any]) -> tuple[str, str, int]:
    """(debit account, credit account, amount) the FPS transfer of a payment must have."""
    if p["direction"] == Direction.NORTHBOUND.value:
        return p["debtor_account_id"], link_account(p["source_currency"]), p["source_minor"]
    return link_account(p["target_currency"]), p["creditor_account_id"], p["target_minor"]


def _ibps_leg(p: dict[str, Any]) -> tuple[str, str, int]:
    if p["direction"] == Direction.NORTHBOUND.value:
        return "CREDIT", p["creditor_account_id"], p["target_minor"]
    return "DEBIT", p["debtor_account_id"], p["source_minor"]


async def _ibps_transfers(gw: Gateway) -> dict[str, TransferOut]:
    """IBPS's transfers by payment id (openings, which have none, left out)."""
    found: dict[str, TransferOut] = {}
    after: int | None = None
    while True:
        page = await gw.ibps.list_transfers(after=after, limit=IBPS_PAGE)
        for item in page.items:
            if item.payment_id is not None:
                found[item.payment_id] = item
        after = page.next_after
        if after is None or not page.items:
            return found


@dataclass
class Snapshot:
    """What the check reads, once: the gateway's payments, both ledgers' transfers by payment id,
    the limit usage rows and the payments bound to more than one idempotency key; and what retention
    left of the payments it purged: their usage, and the start of the first date kept."""

    payments: list[dict[str, Any]]
    fps: dict[str, dict[str, Any]]
    ibps: dict[str, TransferOut]
    ibps_reachable: bool
    usage: list[dict[str, Any]]
    shared_keys: list[tuple[str, int]]
    carried_usage: dict[UsageKey, int] = field(default_factory=dict)
    """What purged payments had reserved, per usage row (`limit_usage_carried`)."""
    kept_since: datetime | None = None
    """The start of the first business date retention keeps whole (null: nothing purged). An IBPS
    transfer created before it may belong to a payment the gateway purged (mock_ibps keeps a day
    more), and is no orphan."""


async def check_invariants(gw: Gateway, *, now: datetime | None = None) -> InvariantReport:
    """Read both ledgers and the gateway's records, then judge them (`judge`, pure)."""
    now = now or gw.now()
    report = InvariantReport()
    async with gw.engine.connect() as conn:
        # I1 on the FPS ledger
        fps_violations, report.fps_balances = await fps_ledger_violations(conn)
        report.violations.extend(fps_violations)
        rows = (
            (await conn.execute(select(payments).where(payments.c.state.in_([s.value for s in State]))))
            .mappings()
            .all()
        )
        fps_transfers = {
            r["payment_id"]: dict(r)
            for r in (
                await conn.execute(select(ledger_transfers).where(ledger_transfers.c.payment_id.is_not(None)))
            ).mappings()
        }
        usage_rows = [dict(u) for u in (await conn.execute(select(limit_usage))).mappings()]
        carried_usage = {
            (r.account_id, r.direction, r.period, r.period_key): int(r.carried_minor)
            for r in await conn.execute(select(limit_usage_carried))
        }
        kept_from = await conn.scalar(select(retention_horizon.c.kept_from))
        shared_keys = [
            (str(pid), int(count))
            for pid, count in await conn.execute(
                select(idempotency_keys.c.payment_id, func.count())
                .where(idempotency_keys.c.payment_id.is_not(None))
                .group_by(idempotency_keys.c.payment_id)
                .having(func.count() > 1)
            )
        ]
    # I1 on the IBPS ledger
    ibps_transfers: dict[str, TransferOut] = {}
    try:
        ibps_check = await gw.ibps.ledger_check()
        ibps_transfers = await _ibps_transfers(gw)
    except IbpsError as exc:
        report.ibps_reachable = False
        report.violations.append(f"IBPS: ledger could not be read ({exc}); I1-I3 checked on FPS only")
    else:
        report.violations.extend(f"IBPS: {text}" for text in ibps_check.violations)
        report.ibps_balances = dict(ibps_check.balances)
    snapshot = Snapshot(
        payments=[dict(row) for row in rows],
        fps=fps_transfers,
        ibps=ibps_transfers,
        ibps_reachable=report.ibps_reachable,
        usage=usage_rows,
        shared_keys=shared_keys,
        carried_usage=carried_usage,
        kept_since=None if kept_from is None else business_day_bounds(date.fromisoformat(kept_from))[0],
    )
    stale_before = now - timedelta(seconds=gw.settings.settlement_timeout_s + gw.settings.recovery_interval_s)
    violations, report.payments_by_state = judge(snapshot, stale_before=stale_before)
    report.violations.extend(violations)
    return report


def judge(snapshot: Snapshot, *, stale_before: datetime) -> tuple[list[str], dict[str, int]]:
    """I2-I6 and the transfers without a payment, from what was read; and the payments by state."""
    violations: list[str] = []
    by_state: dict[str, int] = defaultdict(int)
    for p in snapshot.payments:
        state = State(p["state"])
        by_state[state.value] += 1
        violations.extend(_payment_violations(p, state, snapshot, stale_before))
    violations.extend(_orphans(snapshot))
    violations.extend(_usage_violations(snapshot.usage, _expected_usage(snapshot)))
    violations.extend(f"I6 {pid}: bound to {count} idempotency keys" for pid, count in snapshot.shared_keys)
    return violations, dict(by_state)


def _payment_violations(
    p: dict[str, Any], state: State, snapshot: Snapshot, stale_before: datetime
) -> list[str]:
    """I2 for a settled payment, I3 for a rejected one, I4 for one left undecided or unfinished."""
    pid = p["payment_id"]
    fps, ibps = snapshot.fps.get(pid), snapshot.ibps.get(pid)
    if state is State.SETTLED:
        return _settled(p, fps, ibps, ibps_read=snapshot.ibps_reachable)
    if state is State.REJECTED:
        return _rejected(pid, fps, ibps)
    if p["updated_at"] < stale_before and snapshot.ibps_reachable:
        return [f"I4 {pid}: {state.value} since {p['updated_at'].isoformat()}"]
    return []


def _settled(
    p: dict[str, Any], fps: dict[str, Any] | None, ibps: TransferOut | None, *, ibps_read: bool
) -> list[str]:
    """I2: both legs posted, each as the payment's FX record says (IBPS's only if it could be read)."""
    pid = p["payment_id"]
    found: list[str] = []
    if fps is None or fps["status"] != "POSTED":
        found.append(f"I2 {pid}: SETTLED but FPS transfer is {fps and fps['status']}")
    elif (fps["debit_account_id"], fps["credit_account_id"], fps["amount_minor"]) != _fps_leg(p):
        found.append(f"I2 {pid}: FPS transfer does not match the payment's FX record")
    if not ibps_read:
        return found
    if ibps is None or ibps.status is not TransferStatus.POSTED:
        found.append(f"I2 {pid}: SETTLED but IBPS transfer is {ibps and ibps.status.value}")
    elif (ibps.kind, ibps.account_id, ibps.amount_minor) != _ibps_leg(p):
        found.append(f"I2 {pid}: IBPS transfer does not match the payment's FX record")
    return found


def _rejected(pid: str, fps: dict[str, Any] | None, ibps: TransferOut | None) -> list[str]:
    """I3: whatever either ledger holds of a rejected payment is voided."""
    found: list[str] = []
    if fps is not None and fps["status"] != "VOIDED":
        found.append(f"I3 {pid}: REJECTED but FPS transfer is {fps['status']}")
    if ibps is not None and ibps.status is not TransferStatus.VOIDED:
        found.append(f"I3 {pid}: REJECTED but IBPS transfer is {ibps.status.value}")
    return found


def _orphans(snapshot: Snapshot) -> list[str]:
    """Transfers on either ledger that no gateway payment accounts for (a voided IBPS one may be the
    tombstone of an abort that reached IBPS before the prepare did)."""
    ids = {p["payment_id"] for p in snapshot.payments}
    kept_since = snapshot.kept_since
    found = [
        f"IBPS {pid}: {transfer.status.value} transfer without a gateway payment"
        for pid, transfer in snapshot.ibps.items()
        if pid not in ids
        and transfer.status is not TransferStatus.VOIDED
        and (kept_since is None or _aware(transfer.created_at) >= kept_since)
    ]
    found += [
        f"FPS {pid}: {transfer['status']} transfer without a gateway payment"
        for pid, transfer in snapshot.fps.items()
        if pid not in ids
    ]
    return found


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _expected_usage(snapshot: Snapshot) -> dict[UsageKey, int]:
    """What each usage row must hold: what the payments kept reserve, plus what purged ones had."""
    expected = defaultdict(
        int,
        reserved_usage(
            Reservation(
                account_id=p["debtor_account_id"],
                direction=p["direction"],
                state=State(p["state"]),
                business_date=p["business_date"],
                limit_minor=p["limit_minor"],
            )
            for p in snapshot.payments
        ),
    )
    for ident, amount in snapshot.carried_usage.items():
        expected[ident] += amount
    return dict(expected)


def _usage_violations(usage_rows: list[dict[str, Any]], expected: dict[UsageKey, int]) -> list[str]:
    """I5: no usage over its cap, and every usage row equal to what its payments reserve."""
    found: list[str] = []
    left = dict(expected)
    for u in usage_rows:
        ident = (u["account_id"], u["direction"], u["period"], u["period_key"])
        cap = u["cap_minor"]
        if cap is not None and u["used_minor"] > cap:
            found.append(f"I5 {ident}: usage {u['used_minor']} over the limit {cap}")
        reserved = left.pop(ident, 0)
        if u["used_minor"] != reserved:
            found.append(f"I5 {ident}: usage {u['used_minor']} but payments reserve {reserved}")
    found += [
        f"I5 {ident}: payments reserve {amount} but no usage is recorded"
        for ident, amount in left.items()
        if amount
    ]
    return found

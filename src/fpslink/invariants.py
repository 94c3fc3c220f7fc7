"""Invariants I1-I6 (docs/architecture.md#invariants) as one check that code, tests and `fpslink check` call.

The check reads both ledgers (the FPS ledger in SQL, the IBPS ledger through mock_ibps's API) and
the gateway's own records; it reports every violation it finds and raises only when asked to.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from fpslink.context import Gateway
from fpslink.ibps_client import IbpsError
from fpslink.idempotency.models import idempotency_keys
from fpslink.ledger.check import fps_ledger_violations
from fpslink.ledger.models import ledger_transfers
from fpslink.ledger.repository import link_account
from fpslink.limits.models import limit_usage
from fpslink.payments.models import payments
from fpslink.vocabulary import Direction, Period, State
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


async def check_invariants(gw: Gateway, *, now: datetime | None = None) -> InvariantReport:
    now = now or gw.clock()
    report = InvariantReport()
    v = report.violations

    async with gw.engine.connect() as conn:
        # I1 on the FPS ledger
        fps_violations, report.fps_balances = await fps_ledger_violations(conn)
        v.extend(fps_violations)
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
        usage_rows = (await conn.execute(select(limit_usage))).mappings().all()
        shared_keys = (
            await conn.execute(
                select(idempotency_keys.c.payment_id, func.count())
                .where(idempotency_keys.c.payment_id.is_not(None))
                .group_by(idempotency_keys.c.payment_id)
                .having(func.count() > 1)
            )
        ).all()

    # I1 on the IBPS ledger
    ibps_transfers: dict[str, TransferOut] = {}
    try:
        ibps_check = await gw.ibps.ledger_check()
        ibps_transfers = await _ibps_transfers(gw)
    except IbpsError as exc:
        report.ibps_reachable = False
        v.append(f"IBPS: ledger could not be read ({exc}); I1-I3 checked on FPS only")
    else:
        v.extend(f"IBPS: {text}" for text in ibps_check.violations)
        report.ibps_balances = dict(ibps_check.balances)

    by_state: dict[str, int] = defaultdict(int)
    stale_before = now - timedelta(seconds=gw.settings.settlement_timeout_s + gw.settings.recovery_interval_s)
    expected_usage: dict[tuple[str, str, str, str], int] = defaultdict(int)
    gateway_ids = set()
    for row in rows:
        p = dict(row)
        pid, state = p["payment_id"], State(p["state"])
        gateway_ids.add(pid)
        by_state[state.value] += 1
        fps = fps_transfers.get(pid)
        ibps = ibps_transfers.get(pid)
        if state is State.SETTLED:
            # I2
            debit, credit, amount = _fps_leg(p)
            if fps is None or fps["status"] != "POSTED":
                v.append(f"I2 {pid}: SETTLED but FPS transfer is {fps and fps['status']}")
            elif (fps["debit_account_id"], fps["credit_account_id"], fps["amount_minor"]) != (
                debit,
                credit,
                amount,
            ):
                v.append(f"I2 {pid}: FPS transfer does not match the payment's FX record")
            kind, account, ibps_amount = _ibps_leg(p)
            if report.ibps_reachable:
                if ibps is None or ibps.status is not TransferStatus.POSTED:
                    v.append(f"I2 {pid}: SETTLED but IBPS transfer is {ibps and ibps.status.value}")
                elif (ibps.kind, ibps.account_id, ibps.amount_minor) != (
                    kind,
                    account,
                    ibps_amount,
                ):
                    v.append(f"I2 {pid}: IBPS transfer does not match the payment's FX record")
        elif state is State.REJECTED:
            # I3
            if fps is not None and fps["status"] != "VOIDED":
                v.append(f"I3 {pid}: REJECTED but FPS transfer is {fps['status']}")
            if ibps is not None and ibps.status is not TransferStatus.VOIDED:
                v.append(f"I3 {pid}: REJECTED but IBPS transfer is {ibps.status.value}")
        elif p["updated_at"] < stale_before and report.ibps_reachable:
            # I4
            v.append(f"I4 {pid}: {state.value} since {p['updated_at'].isoformat()}")
        if state not in (State.REJECTED, State.ABORTING):  # an ABORT decision released its usage
            day = p["business_date"]
            for period, key in ((Period.DAY, day), (Period.YEAR, day[:4])):
                expected_usage[(p["debtor_account_id"], p["direction"], period.value, key)] += p[
                    "limit_minor"
                ]

    for pid, ibps_transfer in ibps_transfers.items():
        if pid not in gateway_ids and ibps_transfer.status is not TransferStatus.VOIDED:
            v.append(f"IBPS {pid}: {ibps_transfer.status.value} transfer without a gateway payment")
    for pid, transfer in fps_transfers.items():
        if pid not in gateway_ids:
            v.append(f"FPS {pid}: {transfer['status']} transfer without a gateway payment")

    # I5
    for u in usage_rows:
        ident = (u["account_id"], u["direction"], u["period"], u["period_key"])
        cap = u["cap_minor"]
        if cap is not None and u["used_minor"] > cap:
            v.append(f"I5 {ident}: usage {u['used_minor']} over the limit {cap}")
        expected = expected_usage.pop(ident, 0)
        if u["used_minor"] != expected:
            v.append(f"I5 {ident}: usage {u['used_minor']} but payments reserve {expected}")
    for ident, expected in expected_usage.items():
        if expected:
            v.append(f"I5 {ident}: payments reserve {expected} but no usage is recorded")

    # I6
    for pid, count in shared_keys:
        v.append(f"I6 {pid}: bound to {count} idempotency keys")

    report.payments_by_state = dict(by_state)
    return report

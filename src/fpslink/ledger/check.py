"""Invariant I1 for the FPS ledger, computed in SQL so it stays cheap on large ledgers."""

from __future__ import annotations

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.ledger.models import ledger_accounts, ledger_transfers
from fpslink.vocabulary import AccountKind, TransferKind, TransferStatus


async def fps_ledger_violations(conn: AsyncConnection) -> tuple[list[str], dict[str, int]]:
    """Violations of conservation, and each currency's sum of balances (must be 0)."""
    t = ledger_transfers
    posted = t.c.status == TransferStatus.POSTED.value
    movements = union_all(
        select(t.c.credit_account_id.label("account_id"), t.c.amount_minor.label("amount")).where(posted),
        select(t.c.debit_account_id.label("account_id"), (-t.c.amount_minor).label("amount")).where(posted),
    ).subquery()
    derived = (
        select(movements.c.account_id, func.sum(movements.c.amount).label("derived"))
        .group_by(movements.c.account_id)
        .subquery()
    )
    holds = (
        select(t.c.debit_account_id.label("account_id"), func.sum(t.c.amount_minor).label("held"))
        .where(t.c.status == TransferStatus.PENDING.value, t.c.kind == TransferKind.DEBIT.value)
        .group_by(t.c.debit_account_id)
        .subquery()
    )
    a = ledger_accounts
    rows = (
        await conn.execute(
            select(
                a.c.account_id,
                a.c.currency,
                a.c.kind,
                a.c.balance_minor,
                a.c.held_minor,
                func.coalesce(derived.c.derived, literal(0)).label("derived"),
                func.coalesce(holds.c.held, literal(0)).label("pending_held"),
            ).select_from(
                a.outerjoin(derived, derived.c.account_id == a.c.account_id).outerjoin(
                    holds, holds.c.account_id == a.c.account_id
                )
            )
        )
    ).all()
    violations: list[str] = []
    sums: dict[str, int] = {}
    for account_id, currency, kind, balance, held, derived_balance, pending_held in rows:
        derived_balance, pending_held = int(derived_balance), int(pending_held)
        if kind == AccountKind.CUSTOMER.value:
            if int(balance) != derived_balance:
                violations.append(
                    f"FPS {account_id}: balance {balance} differs from postings {derived_balance}"
                )
            if int(held) != pending_held:
                violations.append(f"FPS {account_id}: held {held} differs from holds {pending_held}")
            if int(held) < 0 or int(held) > int(balance):
                violations.append(f"FPS {account_id}: held {held} outside 0..balance {balance}")
            sums[currency] = sums.get(currency, 0) + int(balance)
        else:
            sums[currency] = sums.get(currency, 0) + derived_balance
    for currency, total in sorted(sums.items()):
        if total != 0:
            violations.append(f"FPS {currency}: balances sum to {total} minor units, not 0")
    mixed = (
        await conn.execute(
            select(func.count())
            .select_from(t)
            .join(a, a.c.account_id == t.c.debit_account_id)
            .where(a.c.currency != t.c.currency)
        )
    ).scalar_one()
    mixed += (
        await conn.execute(
            select(func.count())
            .select_from(t)
            .join(a, a.c.account_id == t.c.credit_account_id)
            .where(a.c.currency != t.c.currency)
        )
    ).scalar_one()
    if mixed:
        violations.append(f"FPS: {mixed} transfer legs in a currency other than their account's")
    return violations, sums

"""The IBPS ledger's invariants, checked with set-based SQL so the check scales with the ledger.

``check_ledger`` reports and never raises, so the API can show the result;
``LedgerCheck.raise_if_broken`` turns a report into an error for code and tests that must stop
on a broken ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from ibps_wire.amounts import format_amount
from mock_ibps.domain import AccountKind, TransferKind, TransferStatus
from mock_ibps.models import accounts, transfers

MAX_REPORTED_PER_RULE = 100  # bounds the report when a ledger is badly broken


class LedgerInvariantError(RuntimeError):
    """The ledger broke an invariant; the message lists the violations."""


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    violations: list[str] = field(default_factory=list)
    balances_minor: dict[str, int] = field(default_factory=dict)
    accounts: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def raise_if_broken(self) -> None:
        if self.violations:
            raise LedgerInvariantError("; ".join(self.violations))


async def check_ledger(conn: AsyncConnection) -> LedgerCheck:
    """Conservation per currency, cached balances and holds against postings, currency agreement.

    Run it inside one transaction (a snapshot) so that the queries see the same ledger.
    """
    posted_status = TransferStatus.POSTED.value
    moves = union_all(
        select(
            transfers.c.credit_account_id.label("account_id"),
            transfers.c.amount_minor.label("amount_minor"),
        ).where(transfers.c.status == posted_status),
        select(
            transfers.c.debit_account_id.label("account_id"),
            (-transfers.c.amount_minor).label("amount_minor"),
        ).where(transfers.c.status == posted_status),
    ).subquery("moves")
    posted = (
        select(moves.c.account_id, func.sum(moves.c.amount_minor).label("net_minor"))
        .group_by(moves.c.account_id)
        .subquery("posted")
    )
    holds = (
        select(
            transfers.c.debit_account_id.label("account_id"),
            func.sum(transfers.c.amount_minor).label("held_minor"),
        )
        .where(
            transfers.c.status == TransferStatus.PENDING.value,
            transfers.c.kind == TransferKind.DEBIT.value,
        )
        .group_by(transfers.c.debit_account_id)
        .subquery("holds")
    )
    net = func.coalesce(posted.c.net_minor, 0)
    pending_held = func.coalesce(holds.c.held_minor, 0)
    is_customer = accounts.c.kind == AccountKind.CUSTOMER.value

    violations: list[str] = []
    balances: dict[str, int] = {}

    # I1 conservation: customers count by their cached balance, scheme accounts by their postings.
    totals = await conn.execute(
        select(
            accounts.c.currency,
            func.sum(case((is_customer, accounts.c.balance_minor), else_=net)).label("total"),
            func.count().label("accounts"),
        )
        .select_from(accounts.outerjoin(posted, posted.c.account_id == accounts.c.account_id))
        .group_by(accounts.c.currency)
        .order_by(accounts.c.currency)
    )
    account_count = 0
    for row in totals:
        total = int(row.total or 0)
        balances[row.currency] = total
        account_count += int(row.accounts)
        if total != 0:
            violations.append(f"{row.currency}: balances sum to {format_amount(total)}, not 0")

    customers = await conn.execute(
        select(
            accounts.c.account_id,
            accounts.c.balance_minor,
            accounts.c.held_minor,
            net.label("net_minor"),
            pending_held.label("pending_minor"),
        )
        .select_from(
            accounts.outerjoin(posted, posted.c.account_id == accounts.c.account_id).outerjoin(
                holds, holds.c.account_id == accounts.c.account_id
            )
        )
        .where(
            is_customer,
            or_(
                accounts.c.balance_minor != net,
                accounts.c.held_minor != pending_held,
                accounts.c.held_minor < 0,
                accounts.c.held_minor > accounts.c.balance_minor,
            ),
        )
        .order_by(accounts.c.account_id)
        .limit(MAX_REPORTED_PER_RULE)
    )
    for row in customers:
        balance, held = int(row.balance_minor), int(row.held_minor)
        net_minor, pending_minor = int(row.net_minor), int(row.pending_minor)
        if balance != net_minor:
            violations.append(
                f"account {row.account_id}: cached balance {format_amount(balance)} but posted "
                f"transfers give {format_amount(net_minor)}"
            )
        if held != pending_minor:
            violations.append(
                f"account {row.account_id}: cached held {format_amount(held)} but pending debits "
                f"give {format_amount(pending_minor)}"
            )
        if held < 0 or held > balance:
            violations.append(
                f"account {row.account_id}: held {format_amount(held)} outside 0..{format_amount(balance)}"
            )

    debit = accounts.alias("debit")
    credit = accounts.alias("credit")
    mixed = await conn.execute(
        select(transfers.c.seq, transfers.c.payment_id, debit.c.currency, credit.c.currency)
        .join(debit, debit.c.account_id == transfers.c.debit_account_id)
        .join(credit, credit.c.account_id == transfers.c.credit_account_id)
        .where(
            transfers.c.status.in_([TransferStatus.PENDING.value, posted_status]),
            or_(
                debit.c.currency != credit.c.currency,
                transfers.c.currency != debit.c.currency,
            ),
        )
        .order_by(transfers.c.seq)
        .limit(MAX_REPORTED_PER_RULE)
    )
    for row in mixed:
        violations.append(f"transfer seq {row[0]} (payment {row[1]}): debit in {row[2]}, credit in {row[3]}")

    return LedgerCheck(violations=violations, balances_minor=balances, accounts=account_count)

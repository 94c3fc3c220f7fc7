"""The FPS double-entry ledger: pending, posted and voided transfers, on the caller's transaction.

Nothing here commits: acceptance and the settlement coordinator own the transaction boundaries. Each
step serves a whole batch in one or two statements; posting and voiding are compare-and-sets on the
transfer's status, so repeating a step (a retry, a racing recovery sweep) changes nothing. A balance
update is a compare-and-set that must change every account it names: a miss can only be a bug, and
raises `LedgerStateError` so that the caller's transaction rolls back.

Accounts are locked FOR NO KEY UPDATE, the lock an UPDATE of the balance takes: inserting a transfer
takes a key-share lock on both of its accounts (the foreign keys of migration 0008), which FOR UPDATE
would wait for, and so a batch crediting an account could deadlock with one debiting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.errors import LedgerStateError
from fpslink.ledger.domain import Transfer
from fpslink.ledger.models import ledger_accounts, ledger_transfers
from fpslink.money import Currency
from fpslink.vocabulary import AccountKind, TransferKind, TransferStatus


def link_account(currency: Currency | str) -> str:
    """The FPS account that stands for IBPS in this currency."""
    return f"FPS-LINK-{currency}"


def funding_account(currency: Currency | str) -> str:
    return f"FPS-FUNDING-{currency}"


class LedgerRepository:
    """The ledger as a unit of work hands it to a service: opening a customer account and reading its
    balances. Settlement's batch statements are the functions below, on the caller's transaction."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def open_account(
        self, *, account_id: str, currency: Currency, opening_minor: int, now: datetime
    ) -> None:
        """A customer account, funded by a posted OPENING transfer from the funding account."""
        await self._conn.execute(
            insert(ledger_accounts).values(
                account_id=account_id,
                currency=currency.value,
                kind=AccountKind.CUSTOMER.value,
                balance_minor=opening_minor,
                held_minor=0,
            )
        )
        if opening_minor:
            await self._conn.execute(
                insert(ledger_transfers).values(
                    payment_id=None,
                    kind=TransferKind.OPENING.value,
                    debit_account_id=funding_account(currency),
                    credit_account_id=account_id,
                    currency=currency.value,
                    amount_minor=opening_minor,
                    status=TransferStatus.POSTED.value,
                    created_at=now,
                    resolved_at=now,
                )
            )

    async def balances(self, account_id: str) -> tuple[int, int] | None:
        """(balance, held) in minor units of a customer account, or None."""
        row = (
            await self._conn.execute(
                select(ledger_accounts.c.balance_minor, ledger_accounts.c.held_minor).where(
                    ledger_accounts.c.account_id == account_id
                )
            )
        ).first()
        return None if row is None else (int(row[0]), int(row[1]))


async def lock_balances(conn: AsyncConnection, account_ids: Sequence[str]) -> dict[str, tuple[str, int, int]]:
    """(currency, balance, held) of customer accounts, locked in account order until commit.

    The batch path reads, decides in Python, then writes (`set_held`): the lock makes that as safe
    as a conditional update, and one statement serves any number of payments.
    """
    if not account_ids:
        return {}
    records = await (await pg.raw(conn)).fetch(
        "SELECT account_id, currency, balance_minor, held_minor FROM ledger_accounts"
        " WHERE account_id = ANY($1::varchar[]) ORDER BY account_id FOR NO KEY UPDATE",
        sorted(set(account_ids)),
    )
    return {r[0]: (r[1], int(r[2]), int(r[3])) for r in records}


async def add_held(conn: AsyncConnection, holds: dict[str, int]) -> None:
    """Add to the held amount of accounts locked by `lock_balances`, in account order; every account
    named must exist (`LedgerStateError` if not)."""
    if holds:
        await _move(
            await pg.raw(conn), {account: (0, delta) for account, delta in holds.items()}, locked=True
        )


def pending_transfer(
    *,
    payment_id: str,
    kind: TransferKind,
    debit: str,
    credit: str,
    currency: Currency,
    amount_minor: int,
    now: datetime,
) -> Transfer:
    """A payment's FPS transfer as acceptance prepares it: pending until the decision."""
    return Transfer(
        payment_id=payment_id,
        kind=kind,
        debit_account_id=debit,
        credit_account_id=credit,
        currency=currency,
        amount_minor=amount_minor,
        status=TransferStatus.PENDING,
        created_at=now,
    )


async def resolve_many(
    conn: AsyncConnection, *, post: Sequence[str], void: Sequence[str], now: datetime
) -> None:
    """Post some payments' pending transfers and void others', moving balances in one statement.

    Each transfer changes only if it is still pending (a compare-and-set), so a repeat is a no-op by
    design, not an error. The balances of the transfers that did change must all move (`_move`).
    """
    moves: dict[str, list[int]] = {}  # account -> [balance delta, held delta]
    raw = await pg.raw(conn)
    for ids, status in ((post, TransferStatus.POSTED), (void, TransferStatus.VOIDED)):
        if ids:
            rows = await raw.fetch(
                "UPDATE ledger_transfers SET status = $1, resolved_at = $2"
                " WHERE payment_id = ANY($3::varchar[]) AND status = $4"
                " RETURNING kind, debit_account_id, credit_account_id, amount_minor",
                status.value,
                now,
                list(ids),
                TransferStatus.PENDING.value,
            )
            _add_moves(moves, rows, status)
    if moves:
        await _move(raw, {a: (m[0], m[1]) for a, m in moves.items()}, locked=False)


def _add_moves(moves: dict[str, list[int]], rows: Any, status: TransferStatus) -> None:
    """The customer balance and hold changes of resolving transfers (kind, debit, credit, amount).

    Link accounts have no stored balance to change: theirs is derived from the postings.
    """
    for kind, debit, credit, amount in rows:
        if kind == TransferKind.DEBIT.value:
            move = moves.setdefault(debit, [0, 0])
            move[1] -= amount  # the hold goes either way
            if status is TransferStatus.POSTED:
                move[0] -= amount
        elif status is TransferStatus.POSTED:
            moves.setdefault(credit, [0, 0])[0] += amount


async def _move(raw: asyncpg.Connection, moves: dict[str, tuple[int, int]], *, locked: bool) -> None:
    """Add (balance, held) deltas to accounts in one statement, after locking them in account order
    unless the transaction holds their locks already: the order every writer of these rows uses.

    The update must change every account named: an account it misses is one a transfer or hold names
    but the ledger lacks, a bug that raises `LedgerStateError` (the caller's transaction rolls back).
    """
    accounts = sorted(moves)
    if not locked:
        await raw.execute(
            "SELECT 1 FROM ledger_accounts WHERE account_id = ANY($1::varchar[])"
            " ORDER BY account_id FOR NO KEY UPDATE",
            accounts,
        )
    changed = await raw.fetch(
        "UPDATE ledger_accounts AS a"
        " SET balance_minor = a.balance_minor + v.dbal, held_minor = a.held_minor + v.dheld"
        " FROM unnest($1::varchar[], $2::bigint[], $3::bigint[]) AS v(account_id, dbal, dheld)"
        " WHERE a.account_id = v.account_id RETURNING a.account_id",
        accounts,
        [moves[a][0] for a in accounts],
        [moves[a][1] for a in accounts],
    )
    if len(changed) != len(accounts):
        missed = sorted(set(accounts) - {row[0] for row in changed})
        raise LedgerStateError(f"FPS balance update missed accounts {missed}: the ledger has no such rows")


async def transfer_of(conn: AsyncConnection, payment_id: str) -> Transfer | None:
    row = (
        (await conn.execute(select(ledger_transfers).where(ledger_transfers.c.payment_id == payment_id)))
        .mappings()
        .first()
    )
    return None if row is None else Transfer.from_row(row)

"""Every query of the IBPS ledger: SQLAlchemy Core statements on a connection the caller controls.

Repositories never begin or commit: the service decides the transaction. State changes are
compare-and-set updates, and inserts keyed by the payment id skip on conflict, so concurrent
duplicates find each other's row instead of applying twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import Column, Row, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mock_ibps.domain import Account as AccountRecord
from mock_ibps.domain import (
    AccountKind,
    Participant,
    Proxy,
    Transfer,
    TransferKind,
    TransferStatus,
    utc,
)
from mock_ibps.models import accounts, participants, proxies, transfers


async def _insert_or_skip(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    *,
    conflict_on: Sequence[str],
    returning: Sequence[Column[Any]],
) -> Row[Any] | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: the row if this call inserted it, else None.

    On PostgreSQL a conflicting insert waits for the other transaction, so the loser then sees the
    winner's committed row; SQLite's single writer gives the same order.
    """
    stmt: postgresql.Insert | sqlite.Insert
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(dict(values))
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict_on))
    else:
        stmt = sqlite.insert(table).values(dict(values))
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict_on))
    result = await conn.execute(stmt.returning(*returning))
    return result.first()


# participants


async def insert_participant(conn: AsyncConnection, *, participant_id: str, name: str, now: datetime) -> bool:
    row = await _insert_or_skip(
        conn,
        participants,
        {"participant_id": participant_id, "name": name, "created_at": now},
        conflict_on=["participant_id"],
        returning=[participants.c.participant_id],
    )
    return row is not None


async def get_participant(conn: AsyncConnection, participant_id: str) -> Participant | None:
    row = (
        await conn.execute(
            select(participants.c.participant_id, participants.c.name).where(
                participants.c.participant_id == participant_id
            )
        )
    ).first()
    return None if row is None else Participant(row.participant_id, row.name)


# accounts


async def insert_customer_account(
    conn: AsyncConnection,
    *,
    account_id: str,
    participant_id: str,
    holder_name: str,
    currency: str,
    balance_minor: int,
    now: datetime,
) -> bool:
    row = await _insert_or_skip(
        conn,
        accounts,
        {
            "account_id": account_id,
            "participant_id": participant_id,
            "kind": AccountKind.CUSTOMER.value,
            "holder_name": holder_name,
            "currency": currency,
            "balance_minor": balance_minor,
            "held_minor": 0,
            "created_at": now,
        },
        conflict_on=["account_id"],
        returning=[accounts.c.account_id],
    )
    return row is not None


async def get_customer_account(conn: AsyncConnection, account_id: str) -> AccountRecord | None:
    """The account if it exists and belongs to a bank; the scheme's own accounts stay hidden."""
    row = (
        await conn.execute(
            select(
                accounts.c.account_id,
                accounts.c.participant_id,
                accounts.c.holder_name,
                accounts.c.currency,
                accounts.c.balance_minor,
                accounts.c.held_minor,
            ).where(
                accounts.c.account_id == account_id,
                accounts.c.kind == AccountKind.CUSTOMER.value,
            )
        )
    ).first()
    if row is None:
        return None
    return AccountRecord(
        account_id=row.account_id,
        participant_id=row.participant_id,
        holder_name=row.holder_name,
        currency=row.currency,
        balance_minor=row.balance_minor,
        held_minor=row.held_minor,
    )


async def account_kind(conn: AsyncConnection, account_id: str) -> AccountKind | None:
    kind = await conn.scalar(select(accounts.c.kind).where(accounts.c.account_id == account_id))
    return None if kind is None else AccountKind(kind)


async def opening_amount(conn: AsyncConnection, account_id: str) -> int:
    amount = await conn.scalar(
        select(transfers.c.amount_minor).where(
            transfers.c.kind == TransferKind.OPENING.value,
            transfers.c.credit_account_id == account_id,
        )
    )
    return int(amount or 0)


async def hold_funds(conn: AsyncConnection, *, account_id: str, amount_minor: int) -> bool:
    """Hold only if the available balance covers it; one conditional update, so no lost update."""
    result = await conn.execute(
        update(accounts)
        .where(
            accounts.c.account_id == account_id,
            accounts.c.balance_minor - accounts.c.held_minor >= amount_minor,
        )
        .values(held_minor=accounts.c.held_minor + amount_minor)
    )
    return result.rowcount == 1


async def release_hold(conn: AsyncConnection, *, account_id: str, amount_minor: int) -> None:
    await conn.execute(
        update(accounts)
        .where(accounts.c.account_id == account_id)
        .values(held_minor=accounts.c.held_minor - amount_minor)
    )


async def post_to_customer(
    conn: AsyncConnection, *, kind: TransferKind, account_id: str, amount_minor: int
) -> None:
    """Move the customer's cached balance; a debit also consumes the hold it made at prepare."""
    stmt = update(accounts).where(accounts.c.account_id == account_id)
    if kind is TransferKind.DEBIT:
        stmt = stmt.values(
            balance_minor=accounts.c.balance_minor - amount_minor,
            held_minor=accounts.c.held_minor - amount_minor,
        )
    else:
        stmt = stmt.values(balance_minor=accounts.c.balance_minor + amount_minor)
    await conn.execute(stmt)


# proxies


async def insert_proxy(
    conn: AsyncConnection, *, proxy_type: str, proxy_value: str, account_id: str, now: datetime
) -> bool:
    row = await _insert_or_skip(
        conn,
        proxies,
        {
            "proxy_value": proxy_value,
            "proxy_type": proxy_type,
            "account_id": account_id,
            "created_at": now,
        },
        conflict_on=["proxy_value"],
        returning=[proxies.c.proxy_value],
    )
    return row is not None


async def get_proxy(conn: AsyncConnection, proxy_value: str) -> Proxy | None:
    row = (
        await conn.execute(
            select(
                proxies.c.proxy_type,
                proxies.c.proxy_value,
                proxies.c.account_id,
                accounts.c.participant_id,
                accounts.c.holder_name,
                accounts.c.currency,
            )
            .join(accounts, accounts.c.account_id == proxies.c.account_id)
            .where(proxies.c.proxy_value == proxy_value)
        )
    ).first()
    if row is None:
        return None
    return Proxy(
        proxy_type=row.proxy_type,
        proxy_value=row.proxy_value,
        account_id=row.account_id,
        participant_id=row.participant_id,
        holder_name=row.holder_name,
        currency=row.currency,
    )


# transfers


def _transfer(row: Row[Any]) -> Transfer:
    return Transfer(
        seq=row.seq,
        transfer_id=row.transfer_id,
        payment_id=row.payment_id,
        kind=None if row.kind is None else TransferKind(row.kind),
        account_id=row.account_id,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        currency=row.currency,
        amount_minor=row.amount_minor,
        status=TransferStatus(row.status),
        reason_code=row.reason_code,
        created_at=utc(row.created_at),
        resolved_at=None if row.resolved_at is None else utc(row.resolved_at),
    )


async def insert_transfer(
    conn: AsyncConnection,
    *,
    payment_id: str | None,
    kind: TransferKind | None,
    account_id: str | None,
    debit_account_id: str | None,
    credit_account_id: str | None,
    currency: str | None,
    amount_minor: int | None,
    status: TransferStatus,
    reason_code: str | None,
    now: datetime,
) -> Transfer | None:
    """Record a transfer; None when the payment id is already recorded (then read that one)."""
    row = await _insert_or_skip(
        conn,
        transfers,
        {
            "transfer_id": str(uuid4()),
            "payment_id": payment_id,
            "kind": None if kind is None else kind.value,
            "account_id": account_id,
            "debit_account_id": debit_account_id,
            "credit_account_id": credit_account_id,
            "currency": currency,
            "amount_minor": amount_minor,
            "status": status.value,
            "reason_code": reason_code,
            "created_at": now,
            "resolved_at": None if status is TransferStatus.PENDING else now,
        },
        conflict_on=["payment_id"],
        returning=list(transfers.c),
    )
    return None if row is None else _transfer(row)


async def get_transfer(conn: AsyncConnection, payment_id: str) -> Transfer | None:
    row = (await conn.execute(select(transfers).where(transfers.c.payment_id == payment_id))).first()
    return None if row is None else _transfer(row)


async def resolve_pending(
    conn: AsyncConnection,
    *,
    payment_id: str,
    status: TransferStatus,
    now: datetime,
    reason_code: str | None = None,
) -> Transfer | None:
    """Compare-and-set PENDING -> ``status``; None if the transfer was not pending or is unknown."""
    values: dict[str, Any] = {"status": status.value, "resolved_at": now}
    if reason_code is not None:
        values["reason_code"] = reason_code
    row = (
        await conn.execute(
            update(transfers)
            .where(
                transfers.c.payment_id == payment_id,
                transfers.c.status == TransferStatus.PENDING.value,
            )
            .values(values)
            .returning(*transfers.c)
        )
    ).first()
    return None if row is None else _transfer(row)


async def list_payment_transfers(conn: AsyncConnection, *, after_seq: int, limit: int) -> list[Transfer]:
    rows = await conn.execute(
        select(transfers)
        .where(transfers.c.payment_id.is_not(None), transfers.c.seq > after_seq)
        .order_by(transfers.c.seq)
        .limit(limit)
    )
    return [_transfer(row) for row in rows]

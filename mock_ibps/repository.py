"""Every query of the IBPS ledger: SQLAlchemy Core statements on a connection the caller controls.

Repositories never begin or commit: the service decides the transaction. State changes are
compare-and-set updates, and inserts keyed by the payment id skip on conflict, so concurrent
duplicates find each other's row instead of applying twice.

The statements of the batch path (``apply_batch``) and of the proxy look-up run on a plain asyncpg
connection (``mock_ibps.db.Lane``): SQL whose text does not depend on the batch's size, so it is
prepared once per connection.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final
from uuid import uuid4

import asyncpg
from sqlalchemy import Column, Row, Select, Table, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from ibps_wire import sandbox_clock
from ibps_wire.retention import CarriedEntry, Posting
from ibps_wire.schemas import TransferReferences
from mock_ibps import pg
from mock_ibps.domain import Account as AccountRecord
from mock_ibps.domain import (
    AccountKind,
    NewTransfer,
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

    A conflicting insert waits for the other transaction, so the loser then sees the winner's
    committed row.
    """
    stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(conflict_on))
    stmt = stmt.values(dict(values))
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


def _select_customer_accounts() -> Select[Any]:
    return select(
        accounts.c.account_id,
        accounts.c.participant_id,
        accounts.c.holder_name,
        accounts.c.currency,
        accounts.c.balance_minor,
        accounts.c.held_minor,
    ).where(accounts.c.kind == AccountKind.CUSTOMER.value)


_PG_CUSTOMER_ACCOUNTS: Final = (
    "SELECT account_id, participant_id, holder_name, currency, balance_minor, held_minor"
    " FROM accounts WHERE kind = 'CUSTOMER' AND account_id = ANY($1::varchar[]) ORDER BY account_id"
)
"""``_select_customer_accounts`` by id, its columns in ``AccountRecord``'s order."""


def _account(row: Row[Any]) -> AccountRecord:
    return AccountRecord(
        account_id=row.account_id,
        participant_id=row.participant_id,
        holder_name=row.holder_name,
        currency=row.currency,
        balance_minor=row.balance_minor,
        held_minor=row.held_minor,
    )


async def get_customer_account(conn: AsyncConnection, account_id: str) -> AccountRecord | None:
    """The account if it exists and belongs to a bank; the scheme's own accounts stay hidden."""
    row = (await conn.execute(_select_customer_accounts().where(accounts.c.account_id == account_id))).first()
    return None if row is None else _account(row)


async def get_customer_accounts(
    conn: asyncpg.Connection, account_ids: Collection[str]
) -> dict[str, AccountRecord]:
    """Customer accounts by id, in one statement, without a lock (``lock_batch`` takes them)."""
    if not account_ids:
        return {}
    records = await conn.fetch(_PG_CUSTOMER_ACCOUNTS, sorted(account_ids))
    return {record[0]: AccountRecord(*record) for record in records}


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


_PG_PROXY: Final = (
    "SELECT p.proxy_type, p.proxy_value, p.account_id, a.participant_id, a.holder_name, a.currency"
    " FROM proxies AS p JOIN accounts AS a ON a.account_id = p.account_id WHERE p.proxy_value = $1"
)
"""A proxy and the account it names, its columns in ``Proxy``'s order."""


async def get_proxy(conn: asyncpg.Connection, proxy_value: str) -> Proxy | None:
    """One statement, which sees one snapshot of both tables without a transaction around it."""
    record = await conn.fetchrow(_PG_PROXY, proxy_value)
    return None if record is None else Proxy(*record)


# transfers


_PG_TRANSFER_COLUMNS: Final = (
    "seq, transfer_id, payment_id, kind, account_id, debit_account_id, credit_account_id, currency,"
    " amount_minor, status, reason_code, created_at, resolved_at"
)
"""Every column of ``transfers``, in the order ``_transfer_record`` reads them."""
_PG_INSERT_TRANSFERS: Final = (
    "INSERT INTO transfers (transfer_id, payment_id, kind, account_id, debit_account_id,"
    " credit_account_id, currency, amount_minor, status, reason_code, created_at, resolved_at)"
    " SELECT gen_random_uuid()::text, v.payment_id, v.kind, v.account_id, v.debit_account_id,"
    " v.credit_account_id, v.currency, v.amount_minor, v.status, v.reason_code, $10::timestamptz,"
    " CASE WHEN v.status = 'PENDING' THEN NULL ELSE $10::timestamptz END"
    " FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[],"
    " $6::varchar[], $7::bigint[], $8::varchar[], $9::varchar[])"
    " AS v(payment_id, kind, account_id, debit_account_id, credit_account_id, currency,"
    " amount_minor, status, reason_code)"
    " ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id, seq, transfer_id"
)
"""``insert_transfers``: rows go in the order of the arrays (unnest keeps it). Only what the database
chose comes back; the rest of each row is what was sent."""
_PG_LOCK_BATCH: Final = (
    "WITH recorded AS ("
    f"SELECT {_PG_TRANSFER_COLUMNS} FROM transfers WHERE payment_id = ANY($1::varchar[])"
    " ORDER BY payment_id FOR NO KEY UPDATE),"
    " moved AS ("
    "SELECT account_id, participant_id, holder_name, currency, balance_minor, held_minor FROM accounts"
    " WHERE kind = 'CUSTOMER' AND account_id IN"
    " (SELECT unnest($2::varchar[]) UNION SELECT account_id FROM recorded WHERE status = 'PENDING')"
    " ORDER BY account_id FOR NO KEY UPDATE)"
    f" SELECT {_PG_TRANSFER_COLUMNS}, NULL, NULL, NULL, NULL, NULL, NULL FROM recorded"
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " account_id, participant_id, holder_name, currency, balance_minor, held_minor FROM moved"
)
"""``lock_batch``: a transfer's row has its ``_PG_TRANSFER_COLUMNS`` then six nulls, an account's
thirteen nulls then its columns in ``AccountRecord``'s order. UNION ALL reads its branches in
order, and the accounts' read waits for every transfer row anyway, so transfers are locked first."""
_PG_WRITE_PLAN: Final = (
    "WITH resolved AS ("
    " UPDATE transfers AS t SET status = r.status, reason_code = r.reason_code, resolved_at = $4::timestamptz"
    " FROM unnest($1::varchar[], $2::varchar[], $3::varchar[]) AS r(payment_id, status, reason_code)"
    " WHERE t.payment_id = r.payment_id AND t.status = 'PENDING' RETURNING 1),"
    " funded AS ("
    " UPDATE accounts AS a SET balance_minor = f.balance_minor, held_minor = f.held_minor"
    " FROM unnest($5::varchar[], $6::bigint[], $7::bigint[]) AS f(account_id, balance_minor, held_minor)"
    " WHERE a.account_id = f.account_id)"
    " SELECT count(*) FROM resolved"
)
"""``write_plan``: both updates in one statement, one round trip (PostgreSQL runs a data-modifying
WITH to completion whether or not the query reads it)."""


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


_KINDS: Final[dict[str | None, TransferKind | None]] = {
    None: None,
    **{kind.value: kind for kind in TransferKind},
}
_STATUSES: Final = {status.value: status for status in TransferStatus}
"""The enums of the stored values: a dict look-up, where calling the enum takes a few times as long."""


def _transfer_record(record: Sequence[Any]) -> Transfer:
    """``_transfer`` of a lane row, whose columns are ``_PG_TRANSFER_COLUMNS`` in order: by position,
    since a row of each of the batch's transfers goes through here."""
    (
        seq,
        transfer_id,
        payment_id,
        kind,
        account_id,
        debit_account_id,
        credit_account_id,
        currency,
        amount_minor,
        status,
        reason_code,
        created_at,
        resolved_at,
    ) = record
    return Transfer(
        seq,
        transfer_id,
        payment_id,
        _KINDS[kind],
        account_id,
        debit_account_id,
        credit_account_id,
        currency,
        amount_minor,
        _STATUSES[status],
        reason_code,
        _utc(created_at),
        None if resolved_at is None else _utc(resolved_at),
    )


def _utc(moment: datetime) -> datetime:
    """``utc``, without a call where asyncpg has read the time as UTC already (always, in practice)."""
    return moment if moment.tzinfo is UTC else utc(moment)


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


async def insert_transfers(
    conn: asyncpg.Connection, new: Collection[NewTransfer], *, now: datetime
) -> dict[str, Transfer]:
    """Record payment transfers in one multi-row insert; the inserted ones, by payment id.

    A payment id already recorded is skipped, as in ``insert_transfer``. Rows go in payment id
    order, so two batches racing on the same ids wait for each other rather than deadlock. ``now``
    must be in UTC, as the rows read back would be.
    """
    if not new:
        return {}
    # One execution whatever the count: each column goes as one array.
    ordered = sorted(new, key=lambda transfer: transfer.payment_id)
    records = await conn.fetch(
        _PG_INSERT_TRANSFERS,
        [transfer.payment_id for transfer in ordered],
        [None if transfer.kind is None else transfer.kind.value for transfer in ordered],
        [transfer.account_id for transfer in ordered],
        [transfer.debit_account_id for transfer in ordered],
        [transfer.credit_account_id for transfer in ordered],
        [transfer.currency for transfer in ordered],
        [transfer.amount_minor for transfer in ordered],
        [transfer.status.value for transfer in ordered],
        [transfer.reason_code for transfer in ordered],
        now,
    )
    by_id = {transfer.payment_id: transfer for transfer in ordered}
    inserted: dict[str, Transfer] = {}
    for payment_id, seq, transfer_id in records:
        row = by_id[payment_id]
        reason_code = row.reason_code
        inserted[payment_id] = Transfer(
            seq=seq,
            transfer_id=transfer_id,
            payment_id=payment_id,
            kind=row.kind,
            account_id=row.account_id,
            debit_account_id=row.debit_account_id,
            credit_account_id=row.credit_account_id,
            currency=row.currency,
            amount_minor=row.amount_minor,
            status=row.status,
            reason_code=None if reason_code is None else str(reason_code),  # a str, as read back
            created_at=now,
            resolved_at=None if row.status is TransferStatus.PENDING else now,
        )
    return inserted


async def lock_batch(
    conn: asyncpg.Connection, payment_ids: Collection[str], account_ids: Collection[str]
) -> tuple[dict[str, Transfer], dict[str, AccountRecord]]:
    """Read and lock, in one statement, the transfers of these payments and the customer accounts
    whose funds a batch may change: ``account_ids`` and those of the transfers still pending.

    Transfers are locked in payment id order, then accounts in account id order: the order every
    writer takes them in, so batches never deadlock. The lock is FOR NO KEY UPDATE, the one an
    UPDATE of the balance takes: FOR UPDATE would also wait for the key-share locks that inserting
    a transfer takes on its accounts (foreign keys), and two batches inserting transfers of one
    account would deadlock.
    """
    if not payment_ids and not account_ids:
        return {}, {}
    records = await conn.fetch(_PG_LOCK_BATCH, sorted(payment_ids), sorted(account_ids))
    transfers: dict[str, Transfer] = {}
    funds: dict[str, AccountRecord] = {}
    for record in records:
        if record[0] is None:
            account = AccountRecord(*record[13:])
            funds[account.account_id] = account
        else:
            transfer = _transfer_record(record[:13])
            if transfer.payment_id is not None:
                transfers[transfer.payment_id] = transfer
    return transfers, funds


async def write_plan(
    conn: asyncpg.Connection,
    resolved: Collection[Transfer],
    funds: Collection[AccountRecord],
    *,
    now: datetime,
) -> int:
    """What a batch decided, in one statement: each pending transfer it resolved (a compare-and-set
    on PENDING, to the transfer's status and reason) and each account's new balance and hold.

    How many of the transfers were still pending. Every row is locked already, so their order here
    is moot.
    """
    if not resolved and not funds:
        return 0
    pending: int = await conn.fetchval(
        _PG_WRITE_PLAN,
        [transfer.payment_id for transfer in resolved],
        [transfer.status.value for transfer in resolved],
        [transfer.reason_code for transfer in resolved],
        now,
        [account.account_id for account in funds],
        [account.balance_minor for account in funds],
        [account.held_minor for account in funds],
    )
    return pending


async def list_payment_transfers(conn: AsyncConnection, *, after_seq: int, limit: int) -> list[Transfer]:
    rows = await conn.execute(
        select(transfers)
        .where(transfers.c.payment_id.is_not(None), transfers.c.seq > after_seq)
        .order_by(transfers.c.seq)
        .limit(limit)
    )
    return [_transfer(row) for row in rows]


# retention (mock_ibps.retention)

_PG_PURGEABLE: Final = (
    "SELECT seq, created_at FROM transfers"
    " WHERE payment_id IS NOT NULL AND status <> 'PENDING' AND created_at < $1 AND resolved_at < $1"
    " AND (created_at, seq) > ($2, $3) AND created_at >= $2"
    " ORDER BY created_at, seq LIMIT $4"
)
"""A batch of resolved payment transfers created and resolved before the cut-off, after a (created_at,
seq) key: a range of `ix_transfers_created_at`."""
_PG_DELETE_TRANSFERS: Final = (
    "WITH gone AS (DELETE FROM transfers WHERE seq = ANY($1::bigint[])"
    " RETURNING payment_id, debit_account_id, credit_account_id, currency, amount_minor, status),"
    " sent AS (DELETE FROM transfer_references WHERE payment_id IN (SELECT payment_id FROM gone))"
    " SELECT debit_account_id, credit_account_id, currency, amount_minor, status FROM gone"
)
"""The transfers and, with them, what their payments were sent with (`transfer_references`)."""
_PG_DELETE_CARRIED: Final = (
    "DELETE FROM transfers WHERE kind = 'CARRIED'"
    " AND (debit_account_id = ANY($1::varchar[]) OR credit_account_id = ANY($1::varchar[]))"
    " RETURNING debit_account_id, credit_account_id, currency, amount_minor"
)
_PG_INSERT_CARRIED: Final = (
    "INSERT INTO transfers (transfer_id, payment_id, kind, account_id, debit_account_id,"
    " credit_account_id, currency, amount_minor, status, created_at, resolved_at)"
    " SELECT v.transfer_id, NULL, 'CARRIED', v.account_id, v.debit_account_id, v.credit_account_id,"
    " v.currency, v.amount_minor, 'POSTED', $7::timestamptz, $7::timestamptz"
    " FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::bigint[])"
    " AS v(transfer_id, account_id, debit_account_id, credit_account_id, currency, amount_minor)"
)
_PG_MOVE_HORIZON: Final = (
    "UPDATE retention_horizon SET kept_from = $1, moved_at = $2 WHERE id = 1"
    " AND (kept_from IS NULL OR kept_from < $1)"
)
_EPOCH_KEY: Final = (datetime(1970, 1, 1, tzinfo=UTC), 0)
"""The key before every transfer: where a pass's first batch starts."""


async def kept_from(conn: AsyncConnection) -> date | None:
    """The first business date kept whole (None: nothing purged yet)."""
    value: date | None = await (await pg.raw(conn)).fetchval("SELECT kept_from FROM retention_horizon")
    return value


async def move_horizon(conn: AsyncConnection, first_kept: date, *, now: datetime) -> None:
    """Record `first_kept` unless a later date is recorded: it never moves back."""
    await (await pg.raw(conn)).execute(_PG_MOVE_HORIZON, first_kept, now)


async def purgeable_transfers(
    conn: AsyncConnection, *, before: datetime, after: tuple[datetime, int] | None, limit: int
) -> list[tuple[int, datetime]]:
    """(seq, created_at) of resolved payment transfers created and resolved before `before`."""
    at, seq = after or _EPOCH_KEY
    records = await (await pg.raw(conn)).fetch(_PG_PURGEABLE, before, at, seq, limit)
    return [(record[0], record[1]) for record in records]


async def delete_transfers(conn: AsyncConnection, seqs: Sequence[int]) -> tuple[int, list[Posting]]:
    """Delete these transfers; (how many, the posted ones: their amounts leave the postings)."""
    records = await (await pg.raw(conn)).fetch(_PG_DELETE_TRANSFERS, list(seqs))
    return len(records), [
        Posting(r[0], r[1], r[2], int(r[3])) for r in records if r[4] == TransferStatus.POSTED.value
    ]


async def delete_carried(conn: AsyncConnection, account_ids: Sequence[str]) -> list[Posting]:
    """Delete the carried entries of these accounts (not the funding account, party to every one)."""
    if not account_ids:
        return []
    records = await (await pg.raw(conn)).fetch(_PG_DELETE_CARRIED, list(account_ids))
    return [Posting(r[0], r[1], r[2], int(r[3])) for r in records]


async def insert_carried(conn: AsyncConnection, entries: Sequence[CarriedEntry], *, at: datetime) -> None:
    if not entries:
        return
    await (await pg.raw(conn)).execute(
        _PG_INSERT_CARRIED,
        [str(uuid4()) for _ in entries],
        [entry.account_id for entry in entries],
        [entry.debit_account_id for entry in entries],
        [entry.credit_account_id for entry in entries],
        [entry.currency for entry in entries],
        [entry.amount_minor for entry in entries],
        at,
    )


# the sandbox clock

_SET_CLOCK: Final = (
    "WITH moved AS (UPDATE sandbox_clock SET offset_us = $1, moved_at = $2 WHERE id = 1 RETURNING offset_us)"
    f" SELECT pg_notify('{sandbox_clock.CHANNEL}', offset_us::text) FROM moved"
)
"""The new offset and its announcement to every mock_ibps process, delivered on commit."""


async def set_clock_offset(conn: AsyncConnection, *, offset_us: int, now: datetime) -> bool:
    """Store IBPS's offset; False if the row is missing (a database not migrated)."""
    return await (await pg.raw(conn)).fetchrow(_SET_CLOCK, offset_us, now) is not None


# what the debtor's bank sent with a payment

REFERENCE_COLUMNS: Final = (
    "payment_id",
    "msg_id",
    "instr_id",
    "end_to_end_id",
    "tx_id",
    "uetr",
    "purpose_code",
    "purpose_proprietary",
    "unstructured",
    "structured",
    "instructed_amount",
    "instructed_currency",
    "source_currency",
    "target_currency",
    "rate",
)
_PG_INSERT_REFERENCES: Final = (
    f"INSERT INTO transfer_references ({', '.join(REFERENCE_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${n}::text[]" for n in range(1, len(REFERENCE_COLUMNS) + 1))
    + ") ON CONFLICT (payment_id) DO NOTHING"
)


def _reference_row(payment_id: str, references: TransferReferences) -> tuple[str | None, ...]:
    exchange = references.exchange
    return (
        payment_id,
        references.msg_id,
        references.instr_id,
        references.end_to_end_id,
        references.tx_id,
        None if references.uetr is None else str(references.uetr),
        references.purpose_code,
        references.purpose_proprietary,
        json.dumps(references.unstructured, ensure_ascii=False),
        json.dumps(references.structured, ensure_ascii=False),
        references.instructed_amount,
        references.instructed_currency,
        None if exchange is None else exchange.source_currency,
        None if exchange is None else exchange.target_currency,
        None if exchange is None else exchange.rate,
    )


async def insert_references(
    conn: asyncpg.Connection, found: Sequence[tuple[str, TransferReferences]]
) -> None:
    """Keep the references of newly recorded transfers, in one statement whatever their number (none
    when there are none)."""
    if not found:
        return
    rows = [_reference_row(payment_id, references) for payment_id, references in found]
    columns = [list(column) for column in zip(*rows, strict=True)]
    await conn.execute(_PG_INSERT_REFERENCES, *columns)

"""The lane of the batch path (``mock_ibps.db.Lane``): plain asyncpg statements in transactions of
their own, answering exactly what the repository's SQLAlchemy reads of the same rows answer; and
``mock_ibps.pg``, the same statements inside a SQLAlchemy transaction.

The batch path meets the SQLAlchemy one in the same rows and the same records (a transfer one call
inserts, the next batch commits), so the two must agree down to types and time zones.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mock_ibps import db, pg
from mock_ibps import repository as repo
from mock_ibps.db import Lane, create_engine
from mock_ibps.domain import (
    AbortRequest,
    Account,
    Answer,
    CommitRequest,
    NewTransfer,
    PrepareRequest,
    PrepareResult,
    Reason,
    Transfer,
    TransferKind,
    TransferRequest,
    TransferStatus,
    now_utc,
    utc,
)
from mock_ibps.errors import IbpsError
from mock_ibps.models import LINK_ACCOUNT_ID, accounts, transfers
from mock_ibps.service import IbpsLedger


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def lane(engine: AsyncEngine) -> AsyncIterator[Lane]:
    lane = Lane(engine)
    try:
        yield lane
    finally:
        await lane.close()


@pytest.fixture
def ledger(engine: AsyncEngine, lane: Lane) -> IbpsLedger:
    return IbpsLedger(engine, lane=lane)


async def _customer(ledger: IbpsLedger, opening_minor: int = 10_000) -> str:
    participant_id = "BK" + uuid.uuid4().hex[:12].upper()
    account_id = "CN" + uuid.uuid4().hex[:16].upper()
    await ledger.open_participant(participant_id=participant_id, name="Lane Bank")
    await ledger.open_account(
        account_id=account_id,
        participant_id=participant_id,
        holder_name="张小明",
        currency="CNY",
        opening_balance_minor=opening_minor,
    )
    return account_id


def _credit(payment_id: str, account_id: str, amount_minor: int) -> NewTransfer:
    return NewTransfer(
        payment_id=payment_id,
        kind=TransferKind.CREDIT,
        account_id=account_id,
        debit_account_id=LINK_ACCOUNT_ID,
        credit_account_id=account_id,
        currency="CNY",
        amount_minor=amount_minor,
        status=TransferStatus.PENDING,
        reason_code=None,
    )


async def test_the_lane_is_the_session_sqlalchemy_uses(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await pg.raw(conn)
        assert await raw.fetchval("SELECT pg_backend_pid()") == await conn.scalar(
            text("SELECT pg_backend_pid()")
        )


def test_the_lane_reads_every_transfer_column_in_table_order() -> None:
    """``_transfer_record`` unpacks the lane's rows by position."""
    names = [name.strip() for name in repo._PG_TRANSFER_COLUMNS.split(",")]
    assert names == list(transfers.c.keys())


async def test_a_first_statement_through_the_lane_rolls_back_with_the_transaction(
    engine: AsyncEngine, ledger: IbpsLedger
) -> None:
    """``pg.raw`` (the clock's and the statements' way to the driver) under a SQLAlchemy transaction."""
    account_id = await _customer(ledger)
    payment_id = str(uuid.uuid4())
    async with engine.connect() as conn:
        transaction = await conn.begin()
        # nothing has run through SQLAlchemy yet: the lane must begin the transaction itself
        inserted = await repo.insert_transfers(
            await pg.raw(conn), [_credit(payment_id, account_id, 700)], now=now_utc()
        )
        assert payment_id in inserted
        # a SQLAlchemy statement on the same connection sees the row: one transaction
        assert await repo.get_transfer(conn, payment_id) == inserted[payment_id]
        await transaction.rollback()
    async with engine.connect() as conn:
        account = await repo.get_customer_account(conn, account_id)
        assert await repo.get_transfer(conn, payment_id) is None
    assert account is not None and (account.balance_minor, account.held_minor) == (10_000, 0)


async def test_a_lane_transaction_rolls_back_as_a_whole(lane: Lane, ledger: IbpsLedger) -> None:
    account_id = await _customer(ledger)
    account = await ledger.get_account(account_id=account_id)
    payment_id = str(uuid.uuid4())
    changed = replace(account, balance_minor=1, held_minor=1)
    with pytest.raises(RuntimeError, match="abandoned"):
        async with lane.transaction() as conn:
            assert payment_id in await repo.insert_transfers(
                conn, [_credit(payment_id, account_id, 700)], now=now_utc()
            )
            assert await repo.write_plan(conn, [], [changed], now=now_utc()) == 0
            assert await repo.get_customer_accounts(conn, [account_id]) == {account_id: changed}
            raise RuntimeError("abandoned")
    async with lane.connection() as conn:
        assert not conn.is_in_transaction()
        assert await repo.lock_batch(conn, [payment_id], []) == ({}, {})
        assert await repo.get_customer_accounts(conn, [account_id]) == {account_id: account}


async def _backend(conn: asyncpg.Connection) -> int:
    pid: int = await conn.fetchval("SELECT pg_backend_pid()")
    return pid


async def test_the_lane_reuses_a_connection_and_closes_one_whose_block_raised(lane: Lane) -> None:
    async with lane.connection() as conn:
        first = await _backend(conn)
    async with lane.transaction() as conn:
        assert await _backend(conn) == first  # back in the pool, out of its transaction
        assert conn.is_in_transaction()
    for failing in (lane.connection(), lane.transaction()):
        with pytest.raises(RuntimeError, match="abandoned"):
            async with failing as conn:
                raise RuntimeError("abandoned")
        assert conn.is_closed()  # mid-transaction perhaps: closed, which rolls it back
    async with lane.connection() as conn:
        assert await _backend(conn) != first


async def test_callers_wait_for_a_free_connection_in_turn(
    lane: Lane, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "POOL_SIZE", 1)
    got: list[str] = []

    async def take(name: str) -> None:
        async with lane.connection() as conn:
            got.append(name)
            await conn.fetchval("SELECT 1")

    async with lane.connection():
        waiting = [asyncio.create_task(take(name)) for name in ("first", "gone", "second")]
        await asyncio.sleep(0.05)
        assert got == []  # the one connection is held
        waiting[1].cancel()  # a caller that gives up does not keep the next one waiting
    await asyncio.gather(waiting[0], waiting[2])
    with pytest.raises(asyncio.CancelledError):
        await waiting[1]
    assert got == ["first", "second"]
    monkeypatch.setattr(db, "POOL_TIMEOUT_S", 0.05)
    async with lane.connection():
        with pytest.raises(TimeoutError, match="no database connection free"):
            async with lane.connection():
                pass
    async with lane.connection() as conn:  # and the one that timed out left no trace
        assert await conn.fetchval("SELECT 1") == 1


async def test_a_closed_lane_closes_its_connections(lane: Lane) -> None:
    async with lane.connection() as busy:
        async with lane.connection() as idle:
            pass
        await lane.close()
        assert idle.is_closed() and not busy.is_closed()
    assert busy.is_closed()
    with pytest.raises(RuntimeError, match="closed"):
        async with lane.connection():
            pass


async def test_committed_lane_statements_are_durable(lane: Lane, ledger: IbpsLedger) -> None:
    account_id = await _customer(ledger)
    payment_id = str(uuid.uuid4())
    now = now_utc()
    async with lane.transaction() as conn:
        inserted = await repo.insert_transfers(conn, [_credit(payment_id, account_id, 700)], now=now)
    voided = replace(inserted[payment_id], status=TransferStatus.VOIDED, resolved_at=now)
    async with lane.transaction() as conn:
        # a repeat skips the recorded payment id
        assert await repo.insert_transfers(conn, [_credit(payment_id, account_id, 900)], now=now) == {}
        assert (await repo.lock_batch(conn, [payment_id], []))[0] == inserted
        assert await repo.write_plan(conn, [voided], [], now=now) == 1
    async with lane.transaction() as conn:
        # a compare-and-set on PENDING: the voided transfer is not posted
        posted = replace(voided, status=TransferStatus.POSTED)
        assert await repo.write_plan(conn, [posted], [], now=now) == 0
        assert (await repo.lock_batch(conn, [payment_id], []))[0] == {payment_id: voided}
    assert (voided.status, voided.resolved_at, voided.amount_minor) == (TransferStatus.VOIDED, now, 700)


async def test_the_lane_answers_what_the_sqlalchemy_reads_answer(
    engine: AsyncEngine, lane: Lane, ledger: IbpsLedger
) -> None:
    """Rows written either way and read either way give equal objects, down to types and time zones."""
    account_ids = [await _customer(ledger), await _customer(ledger, 5_000)]
    payment_ids = sorted(str(uuid.uuid4()) for _ in range(4))
    now = now_utc()
    new = [
        _credit(payment_ids[0], account_ids[0], 100),
        NewTransfer(
            payment_ids[1], None, None, None, None, None, None, TransferStatus.VOIDED, "ALREADY_ABORTED"
        ),
        NewTransfer(
            payment_ids[2],
            TransferKind.DEBIT,
            "NOPE",
            None,
            None,
            "CNY",
            200,
            TransferStatus.VOIDED,
            Reason.AC01,
        ),
    ]
    single = _credit(payment_ids[3], account_ids[1], 300)
    async with lane.transaction() as conn:
        inserted = await repo.insert_transfers(conn, new, now=now)
    async with engine.begin() as conn:
        inserted_alone = await repo.insert_transfer(conn, **_fields(single), now=now)
    async with lane.transaction() as conn:
        asked = [account_ids[0], "NOPE", LINK_ACCOUNT_ID]
        lane_locked, lane_accounts = await repo.lock_batch(conn, payment_ids, asked)
        plain_accounts = await repo.get_customer_accounts(conn, [*asked, account_ids[1]])
    async with engine.begin() as conn:
        read_alone = {payment_id: await repo.get_transfer(conn, payment_id) for payment_id in payment_ids}
        accounts_alone = {
            account_id: await repo.get_customer_account(conn, account_id)
            for account_id in sorted(account_ids)
        }
    assert inserted_alone is not None
    written = [*inserted.values(), inserted_alone]
    assert list(inserted) == payment_ids[:3]
    assert list(lane_locked) == list(read_alone) == payment_ids
    for transfers_read in (lane_locked, read_alone):
        assert [_typed(t) for t in transfers_read.values()] == [_typed(t) for t in written]
    # neither an unknown account nor the scheme's own is a customer's; account 1 is the payee of
    # the pending credit of payment 3
    for accounts_read in (lane_accounts, plain_accounts):
        assert list(accounts_read) == sorted(account_ids)
        assert [_typed(a) for a in accounts_read.values()] == [_typed(a) for a in accounts_alone.values()]
    assert inserted[payment_ids[0]].created_at == now and inserted[payment_ids[0]].resolved_at is None
    assert inserted[payment_ids[1]].resolved_at == now


async def test_the_lane_locks_rows_for_no_key_update(
    engine: AsyncEngine, lane: Lane, ledger: IbpsLedger
) -> None:
    """FOR NO KEY UPDATE: a writer waits, a foreign key (KEY SHARE) does not. The accounts locked
    are those asked for and those of the transfers still pending, no other."""
    payee, payer, other_payee = [await _customer(ledger) for _ in range(3)]
    pending, posted = str(uuid.uuid4()), str(uuid.uuid4())
    async with lane.transaction() as conn:
        await repo.insert_transfers(
            conn, [_credit(pending, payee, 100), _credit(posted, other_payee, 100)], now=now_utc()
        )
    await ledger.commit(payment_id=posted)
    async with engine.connect() as other:
        async with lane.transaction() as holder:
            assert await repo.get_customer_accounts(holder, [payee, payer]) != {}
            for account_id in (payee, payer):  # a plain read locks nothing
                await _lock(other, "accounts", "account_id", account_id, "NO KEY UPDATE")
        async with lane.transaction() as holder:
            transfers_locked, accounts_locked = await repo.lock_batch(holder, [pending, posted], [payer])
            assert set(transfers_locked) == {pending, posted}
            assert set(accounts_locked) == {payee, payer}
            locked = [("transfers", "payment_id", pending), ("transfers", "payment_id", posted)]
            locked += [("accounts", "account_id", payee), ("accounts", "account_id", payer)]
            for table, key, value in locked:
                await _lock(other, table, key, value, "KEY SHARE")
                with pytest.raises(DBAPIError, match="could not obtain lock"):
                    await _lock(other, table, key, value, "NO KEY UPDATE")
            await _lock(other, "accounts", "account_id", other_payee, "NO KEY UPDATE")
    await ledger.abort(payment_id=pending)


async def test_the_lane_locks_the_transfers_before_the_accounts(
    engine: AsyncEngine, lane: Lane, ledger: IbpsLedger
) -> None:
    """The order every writer takes: while the account is held elsewhere, the transfer is locked."""
    payee = await _customer(ledger)
    pending = str(uuid.uuid4())
    async with lane.transaction() as conn:
        await repo.insert_transfers(conn, [_credit(pending, payee, 100)], now=now_utc())
    async with engine.connect() as blocker, engine.connect() as probe:
        await blocker.begin()
        await blocker.execute(
            text("SELECT 1 FROM accounts WHERE account_id = :a FOR NO KEY UPDATE"), {"a": payee}
        )
        async with lane.transaction() as conn:
            waiting = asyncio.create_task(repo.lock_batch(conn, [pending], []))
            for _ in range(500):  # until the lane's statement waits for the account
                async with probe.begin():
                    if await probe.scalar(text(WAITING_FOR_A_LOCK)):
                        break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the lane never waited for the account")
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await _lock(probe, "transfers", "payment_id", pending, "NO KEY UPDATE")
            await blocker.rollback()
            transfers_locked, accounts_locked = await waiting
        assert (set(transfers_locked), set(accounts_locked)) == ({pending}, {payee})
    await ledger.abort(payment_id=pending)


WAITING_FOR_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _lock(conn: AsyncConnection, table: str, key: str, value: str, strength: str) -> None:
    """Take a row lock with NOWAIT in a transaction of its own, which fails if it would wait."""
    async with conn.begin():
        await conn.execute(
            text(f"SELECT 1 FROM {table} WHERE {key} = :v FOR {strength} NOWAIT"), {"v": value}
        )


# A representative batch sequence: (op, payment, kind, account, amount, currency, refusal); account 2
# does not exist.
Step = tuple[str, int, str, int, int, str, Reason | None]
SCENARIO: list[list[Step]] = [
    [
        ("prepare", 0, "DEBIT", 0, 6_000, "CNY", None),
        ("prepare", 1, "DEBIT", 0, 3_000, "CNY", None),
        ("prepare", 2, "DEBIT", 0, 3_000, "CNY", None),  # AM04: 10.00 left
        ("prepare", 3, "CREDIT", 1, 1_000, "CNY", None),
        ("prepare", 4, "DEBIT", 2, 100, "CNY", None),  # AC01
        ("prepare", 5, "CREDIT", 1, 500, "USD", None),  # AM03
        ("abort", 6, "", 0, 0, "", None),  # a tombstone
        ("prepare", 7, "DEBIT", 1, 40_404, "CNY", Reason.RR04),
        ("prepare", 0, "DEBIT", 0, 6_000, "CNY", None),  # a duplicate delivery
        ("commit", 1, "", 0, 0, "", None),  # posted in the batch that prepared it
        ("commit", 1, "", 0, 0, "", None),  # and again
    ],
    [
        ("commit", 0, "", 0, 0, "", None),
        ("abort", 1, "", 0, 0, "", None),  # posted
        ("prepare", 2, "DEBIT", 0, 3_000, "CNY", None),  # replays the refusal
        ("prepare", 6, "CREDIT", 1, 1_000, "CNY", None),  # refused by the tombstone
        ("commit", 8, "", 0, 0, "", None),  # unknown
        ("prepare", 3, "CREDIT", 1, 3_000, "CNY", None),  # mismatch
        ("abort", 3, "", 0, 0, "", None),
        ("commit", 3, "", 0, 0, "", None),  # voided
        ("prepare", 9, "DEBIT", 1, 2_000, "CNY", None),
        ("prepare", 10, "CREDIT", 0, 700, "CNY", None),
    ],
    [
        ("abort", 0, "", 0, 0, "", None),  # posted
        ("commit", 9, "", 0, 0, "", None),
        ("commit", 10, "", 0, 0, "", None),
        ("prepare", 11, "DEBIT", 0, 1_000, "CNY", None),  # left pending
        ("prepare", 11, "DEBIT", 0, 1_000, "CNY", None),
    ],
]
PAYMENTS = 12


class SteppedClock:
    """The ledger's clock: the scenario's time for each step, the wall clock before the first."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or now_utc()


@dataclass
class World:
    """One run of the scenario: its own bank, accounts and payment ids, on one ledger."""

    ledger: IbpsLedger
    engine: AsyncEngine
    accounts: list[str]
    payments: list[str]
    clock: SteppedClock

    @classmethod
    async def create(cls, engine: AsyncEngine) -> World:
        clock = SteppedClock()
        ledger = IbpsLedger(engine, clock=clock)
        accounts = [await _customer(ledger), await _customer(ledger), "CN" + uuid.uuid4().hex[:16].upper()]
        # the ids sort in the same order in every world, so rows go in (and get seqs) alike
        prefix = str(uuid.uuid4())[:-4]
        return cls(ledger, engine, accounts, [f"{prefix}{i:04x}" for i in range(PAYMENTS)], clock)

    def requests(self, steps: Sequence[Step]) -> list[TransferRequest]:
        requests: list[TransferRequest] = []
        for op, payment, kind, account, amount, currency, refusal in steps:
            payment_id = self.payments[payment]
            if op == "prepare":
                requests.append(
                    PrepareRequest(
                        payment_id, TransferKind(kind), self.accounts[account], amount, currency, refusal
                    )
                )
            else:
                requests.append(CommitRequest(payment_id) if op == "commit" else AbortRequest(payment_id))
        return requests

    async def run(self, clock: Iterator[datetime]) -> tuple[list[Any], dict[str, Any]]:
        """The scenario's answers and the rows it left, with this world's ids named."""
        answers: list[Answer] = []
        for steps in SCENARIO:
            self.clock.at = next(clock)
            answers += await self.ledger.apply_batch(self.requests(steps))
        self.clock.at = None
        rows = await self.rows()
        seqs = {seq: rank for rank, seq in enumerate(sorted(row["seq"] for row in rows["transfers"]))}
        named = [self.answer(answer, seqs) for answer in answers]
        rows["transfers"] = [self.names({**row, "seq": seqs[row["seq"]]}) for row in rows["transfers"]]
        await self.ledger.apply_batch([AbortRequest(payment_id) for payment_id in self.payments])
        (await self.ledger.check()).raise_if_broken()
        await self.ledger.close()
        return named, rows

    async def rows(self) -> dict[str, Any]:
        """The stored rows, read with SQLAlchemy, times as UTC."""
        async with self.engine.connect() as conn:
            found = await conn.execute(
                select(transfers).where(transfers.c.payment_id.in_(self.payments)).order_by(transfers.c.seq)
            )
            transfer_rows = [
                {k: utc(v) if isinstance(v, datetime) else v for k, v in row._mapping.items()}
                for row in found
            ]
            funds = await conn.execute(
                select(accounts.c.account_id, accounts.c.balance_minor, accounts.c.held_minor)
                .where(accounts.c.account_id.in_(self.accounts))
                .order_by(accounts.c.account_id)
            )
            account_rows = {self.accounts.index(r.account_id): (r.balance_minor, r.held_minor) for r in funds}
        return {"transfers": transfer_rows, "accounts": account_rows}

    def answer(self, answer: Answer, seqs: dict[int, int]) -> Any:
        if isinstance(answer, IbpsError):
            return type(answer).__name__, answer.status, answer.code, self.names(answer.ids)
        if isinstance(answer, PrepareResult):
            return "result", _typed(answer.outcome), answer.reason_code, self.transfer(answer.transfer, seqs)
        return "transfer", self.transfer(answer, seqs)

    def transfer(self, transfer: Transfer, seqs: dict[int, int]) -> Any:
        assert transfer.created_at.tzinfo is UTC
        assert transfer.resolved_at is None or transfer.resolved_at.tzinfo is UTC
        assert str(uuid.UUID(transfer.transfer_id)) == transfer.transfer_id
        return self.names({**_typed(transfer), "seq": (type(transfer.seq).__name__, seqs[transfer.seq])})

    def names(self, value: Any) -> Any:
        """``value`` with this world's ids named and transfer ids (random) left out."""
        if isinstance(value, dict):
            return {k: self.names(v) for k, v in value.items() if k != "transfer_id"}
        if isinstance(value, list | tuple):
            return type(value)(self.names(item) for item in value)
        if value in self.payments:
            return f"payment {self.payments.index(value)}"
        if value in self.accounts:
            return f"account {self.accounts.index(value)}"
        return value


def _fields(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _typed(value: Any) -> Any:
    """A record's fields as (type name, value) pairs: a StrEnum equals its str, so plain equality
    would not catch a lane answering a str where the SQLAlchemy statement answers an enum."""
    if isinstance(value, Transfer | Account):
        return {name: _typed(item) for name, item in _fields(value).items()}
    return type(value).__name__, value


async def test_a_batch_sequence_answers_and_stores_what_the_rules_say(engine: AsyncEngine) -> None:
    """Every kind of answer, read through the lane, and the rows and balances the batches leave."""
    start = now_utc().replace(microsecond=123_456)
    times = [start + timedelta(seconds=i, microseconds=i) for i in range(len(SCENARIO))]
    answers, rows = await (await World.create(engine)).run(iter(times))
    kinds = {answer[0] for answer in answers}
    assert kinds == {
        "result",
        "transfer",
        "TransferNotFound",
        "TransferMismatch",
        "TransferPosted",
        "TransferVoided",
    }
    reasons = {answer[2] for answer in answers if answer[0] == "result"}
    assert reasons == {None, "AM04", "AC01", "AM03", "RR04", "ALREADY_ABORTED"}
    # (seq rank, payment, status, reason, batch that created it, batch that resolved it)
    stored = [
        (
            row["seq"],
            row["payment_id"],
            row["status"],
            row["reason_code"],
            times.index(row["created_at"]),
            None if row["resolved_at"] is None else times.index(row["resolved_at"]),
        )
        for row in rows["transfers"]
    ]
    assert stored == [
        (0, "payment 0", "POSTED", None, 0, 1),
        (1, "payment 1", "POSTED", None, 0, 0),
        (2, "payment 2", "VOIDED", "AM04", 0, 0),
        (3, "payment 3", "VOIDED", None, 0, 1),
        (4, "payment 4", "VOIDED", "AC01", 0, 0),
        (5, "payment 5", "VOIDED", "AM03", 0, 0),
        (6, "payment 6", "VOIDED", "ALREADY_ABORTED", 0, 0),
        (7, "payment 7", "VOIDED", "RR04", 0, 0),
        (8, "payment 9", "POSTED", None, 1, 2),
        (9, "payment 10", "POSTED", None, 1, 2),
        (10, "payment 11", "PENDING", None, 2, None),
    ]
    assert rows["accounts"] == {0: (10_000 - 3_000 - 6_000 + 700, 1_000), 1: (10_000 - 2_000, 0)}

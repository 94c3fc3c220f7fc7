"""The IBPS use cases. Each opens one short transaction and is the only place that commits it.

Prepare, commit and abort have one implementation, ``IbpsLedger.apply_batch``: the batch endpoint
(``POST /ibps/v1/transfers/batch``) calls it with many requests, the single endpoints with one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from ibps_wire.schemas import TransferReferences
from mock_ibps import repository as repo
from mock_ibps.db import Lane
from mock_ibps.domain import (
    MAX_BATCH_REQUESTS,
    AbortRequest,
    Account,
    Answer,
    BatchPlan,
    CommitRequest,
    LedgerStateError,
    NewTransfer,
    Participant,
    PrepareRequest,
    PrepareResult,
    Proxy,
    Reason,
    Transfer,
    TransferKind,
    TransferRequest,
    TransferStatus,
    accounts_to_lock,
    first_writers,
    now_utc,
    plan_batch,
    utc,
)
from mock_ibps.errors import (
    AccountExists,
    AccountNotFound,
    IbpsError,
    ParticipantExists,
    ParticipantNotFound,
    ProxyAlreadyRegistered,
    ProxyNotFound,
    TransferNotFound,
)
from mock_ibps.invariants import LedgerCheck, check_ledger
from mock_ibps.models import FUNDING_ACCOUNT_ID, LINK_ACCOUNT_ID

PROXY_TYPE_MOBILE = "MOBILE"

AnswerT = TypeVar("AnswerT", PrepareResult, Transfer)


@dataclass(frozen=True, slots=True)
class TransferPage:
    items: list[Transfer]
    next_after: int | None


class IbpsLedger:
    """Participants, accounts, proxies and the two-phase transfers of the mock IBPS."""

    def __init__(
        self, engine: AsyncEngine, *, clock: Callable[[], datetime] = now_utc, lane: Lane | None = None
    ) -> None:
        self._engine = engine
        self._lane = lane or Lane(engine)
        """The transfer path's and the look-up's plain asyncpg connections (``mock_ibps.db.Lane``)."""
        self._clock = clock
        """IBPS's time (`mock_ibps.clock.IbpsClock.now` in the app): what transfers are dated by."""
        # A read sees one snapshot, however many statements it takes (the ledger check, a camt.053
        # page's entries and balances), and cannot write: a write slipped into a read fails rather
        # than changing the ledger. Both ride on the BEGIN that asyncpg sends anyway.
        self._reader = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)

    async def close(self) -> None:
        """Close the lane's connections; the engine is its owner's to dispose of."""
        await self._lane.close()

    @property
    def reader(self) -> AsyncEngine:
        """The engine for read-only work outside these use cases (the statement export)."""
        return self._reader

    # participants and accounts

    async def open_participant(self, *, participant_id: str, name: str) -> tuple[Participant, bool]:
        """Create a bank; the same request again answers the same bank (the bool says "created")."""
        wanted = Participant(participant_id, name)
        now = self._clock()
        async with self._engine.begin() as conn:
            if await repo.insert_participant(conn, participant_id=participant_id, name=name, now=now):
                return wanted, True
            existing = await repo.get_participant(conn, participant_id)
        if existing != wanted:
            raise ParticipantExists("participant exists with a different name", participant_id=participant_id)
        return wanted, False

    async def open_account(
        self,
        *,
        account_id: str,
        participant_id: str,
        holder_name: str,
        currency: str,
        opening_balance_minor: int,
    ) -> tuple[Account, bool]:
        """Open a customer account, paying its opening balance from the funding account at once."""
        now = self._clock()
        async with self._engine.begin() as conn:
            if await repo.get_participant(conn, participant_id) is None:
                raise ParticipantNotFound("no such participant", participant_id=participant_id)
            if await repo.insert_customer_account(
                conn,
                account_id=account_id,
                participant_id=participant_id,
                holder_name=holder_name,
                currency=currency,
                balance_minor=opening_balance_minor,
                now=now,
            ):
                if opening_balance_minor > 0:
                    await repo.insert_transfer(
                        conn,
                        payment_id=None,
                        kind=TransferKind.OPENING,
                        account_id=account_id,
                        debit_account_id=FUNDING_ACCOUNT_ID,
                        credit_account_id=account_id,
                        currency=currency,
                        amount_minor=opening_balance_minor,
                        status=TransferStatus.POSTED,
                        reason_code=None,
                        now=now,
                    )
                account = Account(account_id, participant_id, holder_name, currency, opening_balance_minor, 0)
                return account, True
            existing = await repo.get_customer_account(conn, account_id)
            same = (
                existing is not None
                and (existing.participant_id, existing.holder_name, existing.currency)
                == (participant_id, holder_name, currency)
                and await repo.opening_amount(conn, account_id) == opening_balance_minor
            )
        if existing is None or not same:
            raise AccountExists("account exists with different fields", account_id=account_id)
        return existing, False

    async def get_account(self, *, account_id: str) -> Account:
        async with self._reader.begin() as conn:
            account = await repo.get_customer_account(conn, account_id)
        if account is None:
            raise AccountNotFound("no such account", account_id=account_id)
        return account

    # proxies

    async def register_proxy(self, *, proxy_value: str, account_id: str) -> Proxy:
        """Register a mobile number once; a second registration of it, to any account, conflicts."""
        async with self._engine.begin() as conn:
            account = await repo.get_customer_account(conn, account_id)
            if account is None:
                raise AccountNotFound("no such account", account_id=account_id)
            if not await repo.insert_proxy(
                conn,
                proxy_type=PROXY_TYPE_MOBILE,
                proxy_value=proxy_value,
                account_id=account_id,
                now=self._clock(),
            ):
                raise ProxyAlreadyRegistered("proxy value already registered", proxy_value=proxy_value)
        return Proxy(
            proxy_type=PROXY_TYPE_MOBILE,
            proxy_value=proxy_value,
            account_id=account.account_id,
            participant_id=account.participant_id,
            holder_name=account.holder_name,
            currency=account.currency,
        )

    async def resolve_proxy(self, *, proxy_value: str) -> Proxy:
        async with self._lane.connection() as conn:
            proxy = await repo.get_proxy(conn, proxy_value)
        if proxy is None:
            raise ProxyNotFound("proxy not registered", proxy_value=proxy_value)
        return proxy

    # two-phase transfers

    async def prepare(self, request: PrepareRequest) -> PrepareResult:
        """Record a pending transfer (a debit also holds the funds), or answer the recorded one.

        Only the transaction whose insert wins the payment id holds funds, so racing duplicates hold
        once; a refusal is stored as a voided transfer so that repeats refuse alike.
        """
        return _only(await self.apply_batch([request]), PrepareResult)

    async def commit(self, *, payment_id: str) -> Transfer:
        """Post the pending transfer; posting again answers the posted transfer."""
        return _only(await self.apply_batch([CommitRequest(payment_id)]), Transfer)

    async def abort(self, *, payment_id: str) -> Transfer:
        """Void the pending transfer, or leave a tombstone so that a late prepare is refused."""
        return _only(await self.apply_batch([AbortRequest(payment_id)]), Transfer)

    async def apply_batch(self, requests: Sequence[TransferRequest]) -> list[Answer]:
        """Apply prepares, commits and aborts in order in one transaction; one answer per request.

        The statements are set-based, so their number does not grow with the batch. Locks are
        taken in one order everywhere (payment ids being recorded, then recorded transfers, then
        accounts, each sorted by id), which is also the order of a single call, so concurrent
        batches and single calls wait for each other and never deadlock:

        1. read the customer accounts the prepares name (an account's currency never changes);
        2. insert every unknown payment's first prepare or abort-tombstone, skipping recorded
           ids: the unique payment id decides which racing duplicate applies;
        3. in one statement, read and lock the batch's other transfers, then the accounts whose
           funds may change: those ``accounts_to_lock`` picks among the new transfers, and those
           of the other transfers still pending (a few more than the batch may need, such as the
           payee of a credit being aborted, for one round trip fewer);
        4. decide everything in Python (``plan_batch``), and write the resolved transfers and the
           new balances and holds in one statement.

        The references a prepare carries (a payment sent as ISO 20022) are kept with step 2, for the
        transfers it recorded only: one more statement, in batches that carry any.

        A refusal (404, 409) is an answer and the rest of the batch applies; anything unexpected
        rolls the whole batch back.
        """
        if len(requests) > MAX_BATCH_REQUESTS:
            raise ValueError(f"at most {MAX_BATCH_REQUESTS} requests in a batch")
        if not requests:
            return []
        now = utc(self._clock())
        writers = first_writers(requests)
        async with self._lane.transaction() as conn:
            named = {w.account_id for w in writers.values() if isinstance(w, PrepareRequest)}
            known = await repo.get_customer_accounts(conn, named)
            new = [
                _recording(w, known.get(w.account_id) if isinstance(w, PrepareRequest) else None)
                for w in writers.values()
            ]
            inserted = await repo.insert_transfers(conn, new, now=now)
            await repo.insert_references(conn, _references(writers, inserted))
            others = {request.payment_id for request in requests} - inserted.keys()
            holds = accounts_to_lock(requests, inserted.values())
            recorded, locked = await repo.lock_batch(conn, others, holds)
            plan = plan_batch(requests, recorded=recorded, inserted=inserted, accounts=locked, now=now)
            await _write(conn, plan, now=now)
        return plan.answers

    async def get_transfer(self, *, payment_id: str) -> Transfer:
        async with self._reader.begin() as conn:
            transfer = await repo.get_transfer(conn, payment_id)
        if transfer is None:
            raise TransferNotFound("no transfer for this payment", payment_id=payment_id)
        return transfer

    async def list_transfers(self, *, after_seq: int, limit: int) -> TransferPage:
        """A page of payment transfers in seq order; ``next_after`` is None on the last page."""
        async with self._reader.begin() as conn:
            rows = await repo.list_payment_transfers(conn, after_seq=after_seq, limit=limit + 1)
        items = rows[:limit]
        next_after = items[-1].seq if len(rows) > limit else None
        return TransferPage(items=items, next_after=next_after)

    async def check(self) -> LedgerCheck:
        async with self._reader.begin() as conn:
            return await check_ledger(conn)


def _only(answers: list[Answer], expected: type[AnswerT]) -> AnswerT:
    """The answer of a batch of one, raising its refusal as the single endpoints do."""
    (answer,) = answers
    if isinstance(answer, IbpsError):
        raise answer
    if not isinstance(answer, expected):
        raise LedgerStateError(f"expected a {expected.__name__}, the ledger answered {answer!r}")
    return answer


def _recording(request: PrepareRequest | AbortRequest, account: Account | None) -> NewTransfer:
    """The row a prepare (pending, or voided when refused up front) or an abort's tombstone inserts.

    ``account`` is the customer account the prepare names, None if there is none. A debit's
    funds are decided later, under the account's lock (AM04).
    """
    if isinstance(request, AbortRequest):
        return NewTransfer(
            payment_id=request.payment_id,
            kind=None,
            account_id=None,
            debit_account_id=None,
            credit_account_id=None,
            currency=None,
            amount_minor=None,
            status=TransferStatus.VOIDED,
            reason_code=Reason.ALREADY_ABORTED,
        )
    reason: str | None = request.refusal
    if reason is None and account is None:
        reason = Reason.AC01
    elif reason is None and account is not None and account.currency != request.currency:
        reason = Reason.AM03
    customer = None if account is None else account.account_id
    debit, credit = (
        (customer, LINK_ACCOUNT_ID) if request.kind is TransferKind.DEBIT else (LINK_ACCOUNT_ID, customer)
    )
    return NewTransfer(
        payment_id=request.payment_id,
        kind=request.kind,
        account_id=request.account_id,
        debit_account_id=debit if customer else None,
        credit_account_id=credit if customer else None,
        currency=request.currency,
        amount_minor=request.amount_minor,
        status=TransferStatus.PENDING if reason is None else TransferStatus.VOIDED,
        reason_code=reason,
    )


def _references(
    writers: dict[str, PrepareRequest | AbortRequest], inserted: dict[str, Transfer]
) -> list[tuple[str, TransferReferences]]:
    """The references of the prepares whose transfers this batch recorded: kept once, by the first."""
    found = []
    for payment_id in inserted:
        writer = writers.get(payment_id)
        if isinstance(writer, PrepareRequest) and writer.references is not None:
            found.append((payment_id, writer.references))
    return found


async def _write(conn: asyncpg.Connection, plan: BatchPlan, *, now: datetime) -> None:
    """Write the transfers the batch resolved and the balances and holds it changed.

    The transfers are locked, so every one must still be pending; if not, the plan was made on a
    wrong picture of the ledger and the whole batch must roll back.
    """
    resolved = list(plan.resolved.values())
    for transfer in resolved:
        if transfer.payment_id is None:
            raise LedgerStateError(f"transfer seq {transfer.seq} has no payment id")
    updated = await repo.write_plan(conn, resolved, list(plan.accounts.values()), now=now)
    if updated != len(resolved):
        raise LedgerStateError(f"{len(resolved) - updated} locked transfers were no longer pending")

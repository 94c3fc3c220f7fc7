"""The IBPS use cases. Each opens one short transaction and is the only place that commits it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from mock_ibps import repository as repo
from mock_ibps.db import READ_ONLY
from mock_ibps.domain import (
    Account,
    Outcome,
    Participant,
    PrepareRequest,
    PrepareResult,
    Proxy,
    Reason,
    Transfer,
    TransferKind,
    TransferStatus,
    now_utc,
    refused,
    replay_prepare,
)
from mock_ibps.errors import (
    AccountExists,
    AccountNotFound,
    ParticipantExists,
    ParticipantNotFound,
    ProxyAlreadyRegistered,
    ProxyNotFound,
    TransferNotFound,
    TransferPosted,
    TransferVoided,
)
from mock_ibps.invariants import LedgerCheck, check_ledger
from mock_ibps.models import FUNDING_ACCOUNT_ID, LINK_ACCOUNT_ID

PROXY_TYPE_MOBILE = "MOBILE"


class LedgerStateError(RuntimeError):
    """The database holds something the ledger's own writes never produce."""


@dataclass(frozen=True, slots=True)
class TransferPage:
    items: list[Transfer]
    next_after: int | None


class IbpsLedger:
    """Participants, accounts, proxies and the two-phase transfers of the mock IBPS."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Reads take a snapshot without the write lock (SQLite), one consistent view (PostgreSQL).
        read_options: dict[str, object] = dict(READ_ONLY)
        if engine.dialect.name == "postgresql":
            read_options["isolation_level"] = "REPEATABLE READ"
        self._reader = engine.execution_options(**read_options)

    @property
    def reader(self) -> AsyncEngine:
        """The engine for read-only work outside these use cases (the statement export)."""
        return self._reader

    # participants and accounts

    async def open_participant(self, *, participant_id: str, name: str) -> tuple[Participant, bool]:
        """Create a bank; the same request again answers the same bank (the bool says "created")."""
        wanted = Participant(participant_id, name)
        async with self._engine.begin() as conn:
            if await repo.insert_participant(conn, participant_id=participant_id, name=name, now=now_utc()):
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
        now = now_utc()
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
                now=now_utc(),
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
        async with self._reader.begin() as conn:
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
        now = now_utc()
        async with self._engine.begin() as conn:
            account = await repo.get_customer_account(conn, request.account_id)
            reason: str | None = request.refusal
            if reason is None and account is None:
                reason = Reason.AC01
            elif reason is None and account is not None and account.currency != request.currency:
                reason = Reason.AM03
            customer = None if account is None else account.account_id
            debit, credit = (
                (customer, LINK_ACCOUNT_ID)
                if request.kind is TransferKind.DEBIT
                else (LINK_ACCOUNT_ID, customer)
            )
            inserted = await repo.insert_transfer(
                conn,
                payment_id=request.payment_id,
                kind=request.kind,
                account_id=request.account_id,
                debit_account_id=debit if customer else None,
                credit_account_id=credit if customer else None,
                currency=request.currency,
                amount_minor=request.amount_minor,
                status=TransferStatus.PENDING if reason is None else TransferStatus.VOIDED,
                reason_code=reason,
                now=now,
            )
            if inserted is None:
                existing = await repo.get_transfer(conn, request.payment_id)
                if existing is None:
                    raise LedgerStateError(f"payment {request.payment_id} conflicted but is absent")
                return replay_prepare(existing, request)
            if inserted.status is TransferStatus.VOIDED:
                return refused(inserted)
            if request.kind is TransferKind.DEBIT and not await repo.hold_funds(
                conn, account_id=request.account_id, amount_minor=request.amount_minor
            ):
                voided = await repo.resolve_pending(
                    conn,
                    payment_id=request.payment_id,
                    status=TransferStatus.VOIDED,
                    now=now,
                    reason_code=Reason.AM04,
                )
                if voided is None:
                    raise LedgerStateError(f"payment {request.payment_id} left pending")
                return refused(voided)
            return PrepareResult(Outcome.PREPARED, None, inserted)

    async def commit(self, *, payment_id: str) -> Transfer:
        """Post the pending transfer; posting again answers the posted transfer."""
        async with self._engine.begin() as conn:
            posted = await repo.resolve_pending(
                conn, payment_id=payment_id, status=TransferStatus.POSTED, now=now_utc()
            )
            if posted is not None:
                kind, account_id, amount_minor = _movement(posted)
                await repo.post_to_customer(conn, kind=kind, account_id=account_id, amount_minor=amount_minor)
                return posted
            existing = await repo.get_transfer(conn, payment_id)
        if existing is None:
            raise TransferNotFound("no transfer for this payment", payment_id=payment_id)
        if existing.status is TransferStatus.VOIDED:
            raise TransferVoided("transfer is voided; it cannot be posted", payment_id=payment_id)
        return existing

    async def abort(self, *, payment_id: str) -> Transfer:
        """Void the pending transfer, or leave a tombstone so that a late prepare is refused.

        The tombstone insert comes first: if it loses, the payment's row exists and has committed,
        so the compare-and-set below sees it whatever the isolation level.
        """
        now = now_utc()
        async with self._engine.begin() as conn:
            tombstone = await repo.insert_transfer(
                conn,
                payment_id=payment_id,
                kind=None,
                account_id=None,
                debit_account_id=None,
                credit_account_id=None,
                currency=None,
                amount_minor=None,
                status=TransferStatus.VOIDED,
                reason_code=Reason.ALREADY_ABORTED,
                now=now,
            )
            if tombstone is not None:
                return tombstone
            voided = await repo.resolve_pending(
                conn, payment_id=payment_id, status=TransferStatus.VOIDED, now=now
            )
            if voided is not None:
                kind, account_id, amount_minor = _movement(voided)
                if kind is TransferKind.DEBIT:
                    await repo.release_hold(conn, account_id=account_id, amount_minor=amount_minor)
                return voided
            existing = await repo.get_transfer(conn, payment_id)
        if existing is None:
            raise LedgerStateError(f"payment {payment_id} conflicted but is absent")
        if existing.status is TransferStatus.POSTED:
            raise TransferPosted("transfer is posted; it cannot be voided", payment_id=payment_id)
        return existing

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


def _movement(transfer: Transfer) -> tuple[TransferKind, str, int]:
    """The kind, customer account and amount of a live transfer, which always has all three."""
    kind, account_id, amount_minor = transfer.kind, transfer.account_id, transfer.amount_minor
    if kind is None or account_id is None or amount_minor is None:
        raise LedgerStateError(f"transfer seq {transfer.seq} is live but incomplete")
    return kind, account_id, amount_minor

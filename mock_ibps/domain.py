"""The IBPS ledger's records and the pure rules of its two-phase transfers; no I/O here.

``plan_batch`` is the one implementation of prepare, commit and abort: the service reads and locks
what a batch of requests touches, this module decides every answer and every change in request
order, and the service writes the changes back. A single call is a batch of one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

# The wire's enums are the ledger's own: re-exported for the rest of the service.
from ibps_wire.enums import Outcome as Outcome
from ibps_wire.enums import Reason as Reason
from ibps_wire.enums import TransferKind as TransferKind
from ibps_wire.enums import TransferStatus as TransferStatus
from ibps_wire.schemas import MAX_BATCH_ITEMS, TransferReferences
from mock_ibps.errors import (
    IbpsError,
    TransferMismatch,
    TransferNotFound,
    TransferPosted,
    TransferVoided,
)

MAX_BATCH_REQUESTS = 2 * MAX_BATCH_ITEMS
"""Requests in one batch: fault injection may deliver each item twice to the ledger."""


class LedgerStateError(RuntimeError):
    """The database holds something the ledger's own writes never produce."""


class AccountKind(StrEnum):
    CUSTOMER = "CUSTOMER"
    LINK = "LINK"
    FUNDING = "FUNDING"


REASON_TEXT: dict[str, str] = {
    Reason.AC01: "account unknown or not a customer account",
    Reason.AM03: "currency not allowed for this account",
    Reason.AM04: "insufficient available funds",
    Reason.RR04: "refused for regulatory reasons (sandbox magic amount)",
    Reason.ALREADY_ABORTED: "payment already aborted",
}


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC. Every time stored here is TIMESTAMPTZ, which asyncpg reads as aware UTC;
    a naive one is a bug, refused rather than guessed."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: its time zone is unknown")
    return moment.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Participant:
    participant_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    participant_id: str
    holder_name: str
    currency: str
    balance_minor: int
    held_minor: int

    @property
    def available_minor(self) -> int:
        return self.balance_minor - self.held_minor

    def with_funds(self, *, balance_minor: int, held_minor: int) -> Account:
        """This account with another balance and hold (``dataclasses.replace`` takes three times as long)."""
        return Account(
            self.account_id, self.participant_id, self.holder_name, self.currency, balance_minor, held_minor
        )


@dataclass(frozen=True, slots=True)
class Proxy:
    proxy_type: str
    proxy_value: str
    account_id: str
    participant_id: str
    holder_name: str
    currency: str


@dataclass(frozen=True, slots=True)
class Transfer:
    seq: int
    transfer_id: str
    payment_id: str | None
    kind: TransferKind | None
    account_id: str | None
    debit_account_id: str | None
    credit_account_id: str | None
    currency: str | None
    amount_minor: int | None
    status: TransferStatus
    reason_code: str | None
    created_at: datetime
    resolved_at: datetime | None

    @property
    def is_tombstone(self) -> bool:
        return self.kind is None

    def resolved(self, status: TransferStatus, reason_code: str | None, at: datetime) -> Transfer:
        """This transfer posted or voided at ``at`` (``dataclasses.replace`` takes twice as long)."""
        return Transfer(
            self.seq,
            self.transfer_id,
            self.payment_id,
            self.kind,
            self.account_id,
            self.debit_account_id,
            self.credit_account_id,
            self.currency,
            self.amount_minor,
            status,
            reason_code,
            self.created_at,
            at,
        )


@dataclass(frozen=True, slots=True)
class PrepareRequest:
    payment_id: str
    kind: TransferKind
    account_id: str
    amount_minor: int
    currency: str
    refusal: Reason | None = None
    """A refusal decided before the ledger looks (the sandbox's magic amounts)."""
    references: TransferReferences | None = None
    """What the debtor's bank sent with the payment, kept by the prepare that records the transfer."""


@dataclass(frozen=True, slots=True)
class PrepareResult:
    outcome: Outcome
    reason_code: str | None
    transfer: Transfer

    @property
    def reason(self) -> str | None:
        return None if self.reason_code is None else REASON_TEXT.get(self.reason_code)


def refused(transfer: Transfer) -> PrepareResult:
    return PrepareResult(Outcome.REFUSED, transfer.reason_code or Reason.ALREADY_ABORTED, transfer)


def replay_prepare(existing: Transfer, request: PrepareRequest) -> PrepareResult:
    """Answer a prepare whose payment id is already recorded, exactly as the first answer did.

    A tombstone refuses whatever is asked: it never knew the payment. Otherwise the request must
    match the recorded transfer, or the payment id is being reused for something else.
    """
    if existing.is_tombstone:
        return refused(existing)
    same = (
        existing.kind == request.kind
        and existing.account_id == request.account_id
        and existing.amount_minor == request.amount_minor
        and existing.currency == request.currency
    )
    if not same:
        raise TransferMismatch(
            "payment id already used for a transfer with a different kind, account, amount or currency",
            payment_id=request.payment_id,
        )
    if existing.status is TransferStatus.VOIDED:
        return refused(existing)
    return PrepareResult(Outcome.PREPARED, None, existing)


@dataclass(frozen=True, slots=True)
class CommitRequest:
    payment_id: str


@dataclass(frozen=True, slots=True)
class AbortRequest:
    payment_id: str


TransferRequest = PrepareRequest | CommitRequest | AbortRequest
Answer = PrepareResult | Transfer | IbpsError
"""What the single endpoint answers for one request: its result, or the error it refuses with."""


@dataclass(frozen=True, slots=True)
class NewTransfer:
    """A payment transfer to insert; the insert skips it if the payment id is already recorded."""

    payment_id: str
    kind: TransferKind | None
    account_id: str | None
    debit_account_id: str | None
    credit_account_id: str | None
    currency: str | None
    amount_minor: int | None
    status: TransferStatus
    reason_code: str | None


def first_writers(requests: Sequence[TransferRequest]) -> dict[str, PrepareRequest | AbortRequest]:
    """The request that records each payment if it is unknown: its first prepare or abort.

    A commit records nothing, so one that comes before the writer still finds nothing.
    """
    writers: dict[str, PrepareRequest | AbortRequest] = {}
    for request in requests:
        if isinstance(request, PrepareRequest | AbortRequest):
            writers.setdefault(request.payment_id, request)
    return writers


def accounts_to_lock(requests: Sequence[TransferRequest], transfers: Collection[Transfer]) -> set[str]:
    """The customer accounts whose balance or hold the batch may change among ``transfers``, and
    only those.

    The service asks it of the transfers the batch has just recorded; a new pending debit holds, a
    commit posts, an abort of a debit releases its hold. Credits that stay pending lock nothing,
    so payments to a busy payee do not queue behind each other at prepare. (The transfers the
    batch finds recorded are locked with all the accounts of those still pending, in the same
    statement: ``repository.lock_batch``.)
    """
    committed = {r.payment_id for r in requests if isinstance(r, CommitRequest)}
    aborted = {r.payment_id for r in requests if isinstance(r, AbortRequest)}
    prepared = {r.payment_id for r in requests if isinstance(r, PrepareRequest)}
    locked: set[str] = set()
    for transfer in transfers:
        if transfer.status is not TransferStatus.PENDING or transfer.account_id is None:
            continue
        payment_id, is_debit = transfer.payment_id, transfer.kind is TransferKind.DEBIT
        if payment_id in committed or (is_debit and (payment_id in aborted or payment_id in prepared)):
            locked.add(transfer.account_id)
    return locked


@dataclass(frozen=True, slots=True)
class BatchPlan:
    answers: list[Answer]
    """One per request, in request order."""
    resolved: dict[str, Transfer] = field(default_factory=dict)
    """Transfers recorded pending that the batch posted or voided, by payment id, as they end."""
    accounts: dict[str, Account] = field(default_factory=dict)
    """Accounts whose balance or hold changed, as they end."""


def plan_batch(
    requests: Sequence[TransferRequest],
    *,
    recorded: Mapping[str, Transfer],
    inserted: Mapping[str, Transfer],
    accounts: Mapping[str, Account],
    now: datetime,
) -> BatchPlan:
    """Answer each request in order as the single endpoint would, and say what the batch changes.

    ``recorded`` are the transfers that existed before the batch, ``inserted`` those it has just
    recorded (each becomes visible at its first writer, see ``first_writers``) and ``accounts``
    the locked accounts of ``accounts_to_lock``. Business refusals become answers; a state the
    ledger never produces raises ``LedgerStateError``, which must fail the whole batch.
    """
    planner = _Planner(recorded=recorded, inserted=inserted, accounts=accounts, now=now)
    answers: list[Answer] = []
    for request in requests:
        try:
            if isinstance(request, PrepareRequest):
                answers.append(planner.prepare(request))
            elif isinstance(request, CommitRequest):
                answers.append(planner.commit(request.payment_id))
            else:
                answers.append(planner.abort(request.payment_id))
        except IbpsError as exc:
            answers.append(exc)
    changed = {account_id: planner.accounts[account_id] for account_id in sorted(planner.changed)}
    return BatchPlan(answers=answers, resolved=planner.resolved, accounts=changed)


class _Planner:
    """The ledger as the batch sees it so far: transfers by payment id and the locked accounts."""

    def __init__(
        self,
        *,
        recorded: Mapping[str, Transfer],
        inserted: Mapping[str, Transfer],
        accounts: Mapping[str, Account],
        now: datetime,
    ) -> None:
        self.transfers = dict(recorded)
        self.unclaimed = dict(inserted)
        self.accounts = dict(accounts)
        self.changed: set[str] = set()
        self.resolved: dict[str, Transfer] = {}
        self.now = now

    def prepare(self, request: PrepareRequest) -> PrepareResult:
        """Only the request whose insert won the payment id holds funds; the rest replay it."""
        new = self.unclaimed.pop(request.payment_id, None)
        if new is None:
            existing = self.transfers.get(request.payment_id)
            if existing is None:
                raise LedgerStateError(f"payment {request.payment_id} conflicted but is absent")
            return replay_prepare(existing, request)
        if new.is_tombstone:
            raise LedgerStateError(f"payment {request.payment_id}: a prepare recorded a tombstone")
        self.transfers[request.payment_id] = new
        if new.status is TransferStatus.VOIDED:
            return refused(new)
        if new.kind is TransferKind.DEBIT:
            account = self._account(request.account_id)
            if account.available_minor < request.amount_minor:
                return refused(self._resolve(new, TransferStatus.VOIDED, reason_code=Reason.AM04))
            self._set(account, held_minor=account.held_minor + request.amount_minor)
        return PrepareResult(Outcome.PREPARED, None, new)

    def commit(self, payment_id: str) -> Transfer:
        """Post a pending transfer; posting again answers the posted transfer."""
        transfer = self.transfers.get(payment_id)
        if transfer is None:
            raise TransferNotFound("no transfer for this payment", payment_id=payment_id)
        if transfer.status is TransferStatus.VOIDED:
            raise TransferVoided("transfer is voided; it cannot be posted", payment_id=payment_id)
        if transfer.status is TransferStatus.POSTED:
            return transfer
        kind, account_id, amount_minor = movement(transfer)
        account = self._account(account_id)
        if kind is TransferKind.DEBIT:  # a debit consumes the hold it made at prepare
            self._set(
                account,
                balance_minor=account.balance_minor - amount_minor,
                held_minor=account.held_minor - amount_minor,
            )
        else:
            self._set(account, balance_minor=account.balance_minor + amount_minor)
        return self._resolve(transfer, TransferStatus.POSTED)

    def abort(self, payment_id: str) -> Transfer:
        """Void a pending transfer, or answer the tombstone that refuses a late prepare."""
        new = self.unclaimed.pop(payment_id, None)
        if new is not None:
            if not new.is_tombstone:
                raise LedgerStateError(f"payment {payment_id}: an abort recorded a transfer")
            self.transfers[payment_id] = new
            return new
        transfer = self.transfers.get(payment_id)
        if transfer is None:
            raise LedgerStateError(f"payment {payment_id} conflicted but is absent")
        if transfer.status is TransferStatus.POSTED:
            raise TransferPosted("transfer is posted; it cannot be voided", payment_id=payment_id)
        if transfer.status is TransferStatus.VOIDED:
            return transfer
        kind, account_id, amount_minor = movement(transfer)
        if kind is TransferKind.DEBIT:
            account = self._account(account_id)
            self._set(account, held_minor=account.held_minor - amount_minor)
        return self._resolve(transfer, TransferStatus.VOIDED)

    def _account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise LedgerStateError(f"account {account_id} is moved by the batch but was not locked")
        return account

    def _set(
        self, account: Account, *, balance_minor: int | None = None, held_minor: int | None = None
    ) -> None:
        self.accounts[account.account_id] = account.with_funds(
            balance_minor=account.balance_minor if balance_minor is None else balance_minor,
            held_minor=account.held_minor if held_minor is None else held_minor,
        )
        self.changed.add(account.account_id)

    def _resolve(
        self, transfer: Transfer, status: TransferStatus, *, reason_code: str | None = None
    ) -> Transfer:
        resolved = transfer.resolved(status, reason_code or transfer.reason_code, self.now)
        if resolved.payment_id is None:
            raise LedgerStateError(f"transfer seq {transfer.seq} has no payment id")
        self.transfers[resolved.payment_id] = resolved
        self.resolved[resolved.payment_id] = resolved
        return resolved


def movement(transfer: Transfer) -> tuple[TransferKind, str, int]:
    """The kind, customer account and amount of a live transfer, which always has all three."""
    kind, account_id, amount_minor = transfer.kind, transfer.account_id, transfer.amount_minor
    if kind is None or account_id is None or amount_minor is None:
        raise LedgerStateError(f"transfer seq {transfer.seq} is live but incomplete")
    return kind, account_id, amount_minor

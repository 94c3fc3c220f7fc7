"""The IBPS ledger's records and the pure rules that decide a prepare's replay; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from mock_ibps.errors import TransferMismatch


class AccountKind(StrEnum):
    CUSTOMER = "CUSTOMER"
    LINK = "LINK"
    FUNDING = "FUNDING"


class TransferKind(StrEnum):
    OPENING = "OPENING"
    CREDIT = "CREDIT"  # northbound: LINK -> mainland payee
    DEBIT = "DEBIT"  # southbound: mainland payer -> LINK


class TransferStatus(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"


class Outcome(StrEnum):
    PREPARED = "PREPARED"
    REFUSED = "REFUSED"


class Reason(StrEnum):
    """ISO 20022 ExternalStatusReason codes where one fits, otherwise our own."""

    AC01 = "AC01"
    AM03 = "AM03"
    AM04 = "AM04"
    RR04 = "RR04"
    ALREADY_ABORTED = "ALREADY_ABORTED"


REASON_TEXT: dict[str, str] = {
    Reason.AC01: "account unknown or not a customer account",
    Reason.AM03: "currency not allowed for this account",
    Reason.AM04: "insufficient available funds",
    Reason.RR04: "refused for regulatory reasons (sandbox magic amount)",
    Reason.ALREADY_ABORTED: "payment already aborted",
}


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything this service stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


@dataclass(frozen=True, slots=True)
class PrepareRequest:
    payment_id: str
    kind: TransferKind
    account_id: str
    amount_minor: int
    currency: str
    refusal: Reason | None = None
    """A refusal decided before the ledger looks (the sandbox's magic amounts)."""


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

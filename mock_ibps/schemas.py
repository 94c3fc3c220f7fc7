"""The wire format: request models that refuse anything malformed; responses built from records."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ibps_wire.amounts import CURRENCY, AmountError, format_amount, parse_amount
from mock_ibps.domain import MAX_BATCH_ITEMS, Account, PrepareResult, Proxy, Transfer

ID_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"
PROXY_RE = re.compile(r"\+86[0-9]{11}")


def _amount_parser(*, allow_zero: bool) -> BeforeValidator:
    def parse(value: object) -> int:
        if not isinstance(value, str):
            raise PydanticCustomError("amount_type", 'amount must be a decimal string such as "100.00"')
        try:
            return parse_amount(value, allow_zero=allow_zero)
        except AmountError as exc:
            raise PydanticCustomError("amount_invalid", str(exc)) from None

    return BeforeValidator(parse)


def _currency(value: str) -> str:
    if value != CURRENCY:
        raise PydanticCustomError(
            "currency_not_supported",
            "currency {currency} is not supported; only CNY",
            {"currency": value[:8]},
        )
    return value


def check_proxy(value: str) -> str:
    if PROXY_RE.fullmatch(value) is None:
        raise PydanticCustomError(
            "invalid_proxy",
            "proxy_value must be a mainland mobile number in E.164, +86 and 11 digits",
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


PositiveAmount = Annotated[int, _amount_parser(allow_zero=False)]
NonNegativeAmount = Annotated[int, _amount_parser(allow_zero=True)]
Currency = Annotated[str, Field(strict=True), AfterValidator(_currency)]
Identifier = Annotated[str, Field(strict=True, pattern=ID_PATTERN)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=140), AfterValidator(_not_blank)]
ProxyValue = Annotated[str, Field(strict=True), AfterValidator(check_proxy)]


class Request(BaseModel):
    # Unknown fields are refused: a caller's typo should fail loudly, not be ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParticipantIn(Request):
    participant_id: Identifier
    name: Name


class ParticipantOut(BaseModel):
    participant_id: str
    name: str


class AccountIn(Request):
    account_id: Identifier
    participant_id: Identifier
    holder_name: Name
    currency: Currency
    opening_balance_minor: NonNegativeAmount = Field(alias="opening_balance")


class AccountOut(BaseModel):
    account_id: str
    participant_id: str
    holder_name: str
    currency: str
    balance: str
    held: str
    available_balance: str

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            account_id=account.account_id,
            participant_id=account.participant_id,
            holder_name=account.holder_name,
            currency=account.currency,
            balance=format_amount(account.balance_minor),
            held=format_amount(account.held_minor),
            available_balance=format_amount(account.available_minor),
        )


class ProxyIn(Request):
    proxy_value: ProxyValue
    account_id: Identifier


class ProxyRegistered(BaseModel):
    proxy_type: str
    proxy_value: str
    account_id: str
    participant_id: str

    @classmethod
    def of(cls, proxy: Proxy) -> ProxyRegistered:
        return cls(
            proxy_type=proxy.proxy_type,
            proxy_value=proxy.proxy_value,
            account_id=proxy.account_id,
            participant_id=proxy.participant_id,
        )


class ProxyOut(ProxyRegistered):
    holder_name: str
    currency: str

    @classmethod
    def of(cls, proxy: Proxy) -> ProxyOut:
        return cls(
            proxy_type=proxy.proxy_type,
            proxy_value=proxy.proxy_value,
            account_id=proxy.account_id,
            participant_id=proxy.participant_id,
            holder_name=proxy.holder_name,
            currency=proxy.currency,
        )


class PrepareIn(Request):
    payment_id: UUID
    kind: Literal["CREDIT", "DEBIT"]
    account_id: Identifier
    amount_minor: PositiveAmount = Field(alias="amount")
    currency: Currency


BatchOp = Literal["prepare", "commit", "abort"]


class PrepareItemIn(PrepareIn):
    op: Literal["prepare"]


class CommitItemIn(Request):
    op: Literal["commit"]
    payment_id: UUID


class AbortItemIn(Request):
    op: Literal["abort"]
    payment_id: UUID


def _payment_ids_once(
    items: list[PrepareItemIn | CommitItemIn | AbortItemIn],
) -> list[PrepareItemIn | CommitItemIn | AbortItemIn]:
    """One item per payment: two in one batch would make the answers depend on their order."""
    seen: set[UUID] = set()
    for item in items:
        if item.payment_id in seen:
            raise PydanticCustomError(
                "duplicate_payment_id",
                "payment_id {payment_id} appears more than once in the batch",
                {"payment_id": str(item.payment_id)},
            )
        seen.add(item.payment_id)
    return items


BatchItemIn = Annotated[PrepareItemIn | CommitItemIn | AbortItemIn, Field(discriminator="op")]


class BatchIn(Request):
    """Prepares, commits and aborts of different payments, applied in order in one transaction."""

    items: Annotated[
        list[BatchItemIn], Field(min_length=1, max_length=MAX_BATCH_ITEMS), AfterValidator(_payment_ids_once)
    ]


class TransferOut(BaseModel):
    seq: int
    payment_id: str | None
    kind: str | None
    account_id: str | None
    debit_account_id: str | None
    credit_account_id: str | None
    amount: str | None
    currency: str | None
    status: str
    reason_code: str | None
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, transfer: Transfer) -> TransferOut:
        return cls(
            seq=transfer.seq,
            payment_id=transfer.payment_id,
            kind=None if transfer.kind is None else transfer.kind.value,
            account_id=transfer.account_id,
            debit_account_id=transfer.debit_account_id,
            credit_account_id=transfer.credit_account_id,
            amount=None if transfer.amount_minor is None else format_amount(transfer.amount_minor),
            currency=transfer.currency,
            status=transfer.status.value,
            reason_code=transfer.reason_code,
            created_at=transfer.created_at,
            resolved_at=transfer.resolved_at,
        )


class PrepareOut(BaseModel):
    outcome: Literal["PREPARED", "REFUSED"]
    reason_code: str | None
    reason: str | None
    transfer: TransferOut

    @classmethod
    def of(cls, result: PrepareResult) -> PrepareOut:
        return cls(
            outcome=result.outcome.value,
            reason_code=result.reason_code,
            reason=result.reason,
            transfer=TransferOut.of(result.transfer),
        )


class BatchResultOut(BaseModel):
    """What the single endpoint would have answered for one item: its HTTP status and JSON body."""

    payment_id: str
    op: BatchOp
    status: int
    body: dict[str, Any]


class BatchOut(BaseModel):
    results: list[BatchResultOut]
    """One per item, in the order of the items."""


class TransferPageOut(BaseModel):
    items: list[TransferOut]
    next_after: int | None


class LedgerCheckOut(BaseModel):
    ok: bool
    violations: list[str]
    balances: dict[str, str]
    accounts: int


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class FaultIn(BaseModel):
    """A fault rule: which call, what goes wrong, how often, and the seed that makes it replayable."""

    model_config = ConfigDict(extra="forbid")

    call: Literal["prepare", "commit", "abort", "lookup", "statement"]
    kind: Literal["error", "timeout", "lost_reply", "duplicate", "latency"]
    probability: float = Field(ge=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    hang_ms: int = Field(default=30_000, ge=0, le=120_000)
    only_attempts: int = Field(default=0, ge=0, le=1000)


class FaultOut(BaseModel):
    rule_id: str
    call: str
    kind: str
    probability: float
    seed: int
    latency_ms: int
    hang_ms: int
    only_attempts: int


class FaultsOut(BaseModel):
    rules: list[FaultOut]
    injected: dict[str, dict[str, int]]

"""Request and response models of the public API (v1), with the examples shown in /docs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fpslink.fx.domain import AmountType
from fpslink.money import Currency, InvalidAmount, parse_amount
from fpslink.participants.keys import KeyStatus
from fpslink.text import check_text
from fpslink.vocabulary import Direction, Period, Purpose, Status, System

SafeText = AfterValidator(check_text)
"""Refuses control and bidi-override characters (fpslink.text), naming the field in the 422."""
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
BIC_PATTERN = r"^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=140), SafeText]


def _amount_is_text(value: Any) -> Any:
    """A JSON number as an amount gets an answer that says what to send instead."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise PydanticCustomError(
            "amount_not_text", 'send amounts as decimal strings such as "1000.00", not JSON numbers'
        )
    return value


AmountText = Annotated[
    str,
    BeforeValidator(_amount_is_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    Field(description='Decimal string with at most the minor units of its currency: "100.00"'),
]
UuidText = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _amount(value: str, currency: Currency, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    """The amount in `currency`. Checked once the currency is known (a model validator), the error
    still names its own field (`ctx.field`, read by api/problems.py), not the whole body."""
    if allow_zero and value.strip() in {"0", "0.0", "0.00"}:
        return Decimal("0.00")
    try:
        return parse_amount(value, currency)
    except InvalidAmount as exc:
        raise PydanticCustomError("invalid_amount", "{reason}", {"field": field, "reason": str(exc)}) from exc


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is stable and documented."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://fpslink.dev/problems/idempotency-key-reused",
                    "title": "Invalid request",
                    "status": 422,
                    "detail": "this Idempotency-Key was used with a different request",
                    "code": "IDEMPOTENCY_KEY_REUSED",
                }
            ]
        },
    )


# participants and accounts -------------------------------------------------------------------


class ParticipantCreate(Request):
    participant_id: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{2,40}$")] = Field(
        description="Upper-case bank code, unique across both systems"
    )
    name: Name
    system: System
    bic: Annotated[str, StringConstraints(pattern=BIC_PATTERN)] | None = Field(
        default=None,
        description="The bank's BIC (8 or 11 characters), by which ISO 20022 headers (AppHdr/Fr) name it",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"participant_id": "DEMOHK3", "name": "Demo Bank HK 3", "system": "FPS", "bic": "DEMOHKH0"}
            ]
        }
    )


API_KEY_SHOWN_ONCE = (
    "api_key was shown once, in the answer that created this bank; the gateway keeps only its hash, "
    "so this replay cannot repeat it. If it was lost, issue the bank a new key "
    "(POST /v1/participants/{id}/keys) and revoke the old one."
)
"""What a replay of `POST /v1/participants` says in place of the key."""


class ParticipantOut(BaseModel):
    participant_id: str
    name: str
    system: System
    bic: str | None = None
    api_key: str | None = Field(default=None, description="Shown once, when the participant is created")
    notice: str | None = Field(
        default=None,
        description="Set on a replay (Idempotent-Replayed: true): api_key is not repeated, and why",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "participant_id": "DEMOHK3",
                    "name": "Demo Bank HK 3",
                    "system": "FPS",
                    "bic": "DEMOHKH0",
                    "api_key": "fpsl_demohk3_…",
                }
            ]
        }
    )


class AccountCreate(Request):
    participant_id: Id
    holder_name: Name
    currency: Currency
    opening_balance: AmountText = "0.00"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "participant_id": "DEMOHK1",
                    "holder_name": "CHAN Tai Man",
                    "currency": "HKD",
                    "opening_balance": "50000.00",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _check(self) -> AccountCreate:
        _amount(self.opening_balance, self.currency, field="opening_balance", allow_zero=True)
        return self

    @property
    def opening(self) -> Decimal:
        return _amount(self.opening_balance, self.currency, field="opening_balance", allow_zero=True)


class AccountOut(BaseModel):
    account_id: str
    participant_id: str
    system: System
    currency: Currency
    holder_name: str
    balance: str
    available_balance: str
    held: str
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "HK3F9A0C21B7D4E5F6",
                    "participant_id": "DEMOHK1",
                    "system": "FPS",
                    "currency": "HKD",
                    "holder_name": "CHAN Tai Man",
                    "balance": "50000.00",
                    "available_balance": "49000.00",
                    "held": "1000.00",
                }
            ]
        }
    )


class LimitLine(BaseModel):
    period: Period
    period_key: str = Field(description="UTC+8 business date (DAY) or year (YEAR)")
    limit: str | None = Field(description="null: no limit configured")
    used: str
    remaining: str | None


class LimitsOut(BaseModel):
    account_id: str
    direction: Direction
    currency: Currency
    per_transaction: str
    business_date: str
    usage: list[LimitLine]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "HKDEMO0001",
                    "direction": "NORTHBOUND",
                    "currency": "HKD",
                    "per_transaction": "10000.00",
                    "business_date": "2026-11-27",
                    "usage": [
                        {
                            "period": "DAY",
                            "period_key": "2026-11-27",
                            "limit": "10000.00",
                            "used": "1000.00",
                            "remaining": "9000.00",
                        },
                        {
                            "period": "YEAR",
                            "period_key": "2026",
                            "limit": "200000.00",
                            "used": "1000.00",
                            "remaining": "199000.00",
                        },
                    ],
                }
            ]
        }
    )


PROXY_VALUE = (
    "A mobile number with its country code, +852 or +86 (or 00852, 0086), in any common written form: "
    '"+86 138 0013 8000", "+852-9123-4567". A number without its country code is refused (INVALID_PROXY).'
)


# proxies --------------------------------------------------------------------------------------


class ProxyCreate(Request):
    proxy_type: Literal["MOBILE"]
    proxy_value: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description=PROXY_VALUE
    )
    account_id: Id
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "proxy_type": "MOBILE",
                    "proxy_value": "+852 9123 4567",
                    "account_id": "HK3F9A0C21B7D4E5F6",
                }
            ]
        }
    )


class ProxyOut(BaseModel):
    proxy_type: Literal["MOBILE"] = "MOBILE"
    proxy_value: str = Field(description="E.164")
    participant_id: str
    system: System
    masked_name: str
    currency: Currency
    account_id: str | None = Field(
        default=None, description="Only in the registration answer, to the account's own bank"
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "proxy_type": "MOBILE",
                    "proxy_value": "+8613800138000",
                    "participant_id": "DEMOCN1",
                    "system": "IBPS",
                    "masked_name": "张*明",
                    "currency": "CNY",
                }
            ]
        }
    )


# FX --------------------------------------------------------------------------------------------


class RateOut(BaseModel):
    source_currency: Currency
    target_currency: Currency
    mid_rate: str
    rate: str = Field(description="Customer rate: target units per source unit, spread applied")
    spread_bps: str


class RatesOut(BaseModel):
    as_of: datetime
    indicative: bool = True
    rates: list[RateOut]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-11-27T08:00:00Z",
                    "indicative": True,
                    "rates": [
                        {
                            "source_currency": "HKD",
                            "target_currency": "CNY",
                            "mid_rate": "0.920000",
                            "rate": "0.917700",
                            "spread_bps": "25",
                        },
                        {
                            "source_currency": "CNY",
                            "target_currency": "HKD",
                            "mid_rate": "1.086957",
                            "rate": "1.084240",
                            "spread_bps": "25",
                        },
                    ],
                }
            ]
        }
    )


class QuoteCreate(Request):
    source_currency: Currency
    target_currency: Currency
    amount: AmountText
    amount_type: AmountType = Field(description="SEND: amount is debited; RECEIVE: credited")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source_currency": "HKD",
                    "target_currency": "CNY",
                    "amount": "1000.00",
                    "amount_type": "SEND",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _check(self) -> QuoteCreate:
        _amount(self.amount, self.fixed_currency)
        return self

    @property
    def fixed_currency(self) -> Currency:
        return self.source_currency if self.amount_type is AmountType.SEND else self.target_currency

    @property
    def value(self) -> Decimal:
        return _amount(self.amount, self.fixed_currency)


class QuoteOut(BaseModel):
    quote_id: str
    source_currency: Currency
    target_currency: Currency
    amount_type: AmountType
    mid_rate: str
    rate: str
    spread_bps: str
    source_amount: str
    target_amount: str
    created_at: datetime
    expires_at: datetime
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "quote_id": "5f0c6c1e-9a53-4c39-9d43-1f1f7d8a2b10",
                    "source_currency": "HKD",
                    "target_currency": "CNY",
                    "amount_type": "SEND",
                    "mid_rate": "0.920000",
                    "rate": "0.917700",
                    "spread_bps": "25",
                    "source_amount": "1000.00",
                    "target_amount": "917.70",
                    "created_at": "2026-11-27T08:00:00Z",
                    "expires_at": "2026-11-27T08:10:00Z",
                }
            ]
        }
    )


# payments -------------------------------------------------------------------------------------


class Creditor(Request):
    proxy_type: Literal["MOBILE"] | None = None
    proxy_value: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = Field(
        default=None, description=PROXY_VALUE
    )
    account_id: Id | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Creditor:
        by_proxy = self.proxy_value is not None
        if by_proxy == (self.account_id is not None):
            raise ValueError("give the creditor as {proxy_type, proxy_value} or as {account_id}")
        if by_proxy and self.proxy_type is None:
            raise ValueError("proxy_type is required with proxy_value (MOBILE)")
        if not by_proxy and self.proxy_type is not None:
            raise ValueError("proxy_type goes with proxy_value")
        return self


class PaymentCreate(Request):
    debtor_account_id: Id
    creditor: Creditor
    amount: AmountText
    currency: Currency = Field(
        description="The debtor account's currency: amount is sent; the creditor's: amount is received"
    )
    quote_id: UuidText | None = None
    purpose: Purpose = Field(
        description="Why the payment is made, one of the link's named purposes; pacs.008 carries it as "
        "the ISO 20022 purpose code beside each name (docs/concepts.md#purposes)"
    )
    remittance_info: Annotated[str, StringConstraints(max_length=140), SafeText] | None = None
    end_to_end_id: Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,35}$")] | None = None
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "debtor_account_id": "HK3F9A0C21B7D4E5F6",
                    "creditor": {"proxy_type": "MOBILE", "proxy_value": "+86 138 0013 8000"},
                    "amount": "1000.00",
                    "currency": "HKD",
                    "purpose": "FAMILY_SUPPORT",
                    "remittance_info": "November allowance",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _check(self) -> PaymentCreate:
        _amount(self.amount, self.currency)
        return self

    @property
    def value(self) -> Decimal:
        return _amount(self.amount, self.currency)


class PaymentEvent(BaseModel):
    at: datetime
    event: str
    detail: str | None = None


class Iso20022Purpose(BaseModel):
    code: str | None = Field(description="Purp/Cd as sent, an ISO 20022 purpose code (FAMI)")
    proprietary: str | None = Field(description="Purp/Prtry as sent (FAMILY_SUPPORT)")


class Iso20022Remittance(BaseModel):
    unstructured: list[str] = Field(description="RmtInf/Ustrd, each line as sent")
    structured: list[str] = Field(
        description="RmtInf/Strd, each as an XML element in the namespace of the message it came in"
    )


class Iso20022Out(BaseModel):
    """What the bank sent with a payment made of a pacs.008 transaction, as sent."""

    message_name: str = Field(description="The pacs.008's name and version (pacs.008.001.08)")
    msg_id: str = Field(description="GrpHdr/MsgId")
    instr_id: str | None = Field(description="PmtId/InstrId")
    end_to_end_id: str | None = Field(description="PmtId/EndToEndId (null for NOTPROVIDED)")
    tx_id: str | None = Field(description="PmtId/TxId")
    uetr: str | None = Field(description="PmtId/UETR, the bank's")
    purpose: Iso20022Purpose
    remittance: Iso20022Remittance
    instructed_amount: str | None = Field(description="InstdAmt, as sent")
    instructed_currency: str | None


class PaymentOut(BaseModel):
    payment_id: str = Field(description="UUID v4, also the UETR")
    end_to_end_id: str | None
    status: Status
    direction: Direction
    debtor_account_id: str
    creditor_account_id: str | None
    creditor_masked_name: str | None
    source_amount: str | None = Field(
        description="Debited (SETTLED) or held (PENDING); null when REJECTED: nothing was debited"
    )
    source_currency: Currency
    target_amount: str | None = Field(
        description="Credited (SETTLED) or on its way (PENDING); null when REJECTED: nothing was credited"
    )
    target_currency: Currency | None
    quoted_source_amount: str | None = Field(
        default=None,
        description="The source amount at the bound rate, whatever the status: for a REJECTED payment, "
        "what it would have debited (null if it was refused before its amounts were bound)",
    )
    quoted_target_amount: str | None = Field(
        default=None,
        description="The target amount at the bound rate, whatever the status: for a REJECTED payment, "
        "what it would have credited",
    )
    rate: str | None = Field(description="Customer rate bound to the payment, six decimal places")
    mid_rate: str | None
    spread_bps: str | None
    quote_id: str | None
    purpose: str
    remittance_info: str | None
    reason_code: str | None
    reason: str | None
    created_at: datetime
    settled_at: datetime | None
    last_event: PaymentEvent | None = Field(
        default=None, description="The newest timeline entry: what a PENDING payment waits on"
    )
    events: list[PaymentEvent] = Field(default_factory=list)
    iso20022: Iso20022Out | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="On `GET /v1/payments/{payment_id}` of a payment sent as an ISO 20022 pacs.008: its "
        "references, purpose, remittance and InstdAmt as sent (absent otherwise)",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payment_id": "0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11",
                    "end_to_end_id": None,
                    "status": "SETTLED",
                    "direction": "NORTHBOUND",
                    "debtor_account_id": "HK3F9A0C21B7D4E5F6",
                    "creditor_account_id": "CN0A1B2C3D4E5F6A7B",
                    "creditor_masked_name": "张*明",
                    "source_amount": "1000.00",
                    "source_currency": "HKD",
                    "target_amount": "917.70",
                    "target_currency": "CNY",
                    "rate": "0.917700",
                    "mid_rate": "0.920000",
                    "spread_bps": "25",
                    "quote_id": None,
                    "purpose": "FAMILY_SUPPORT",
                    "remittance_info": None,
                    "reason_code": None,
                    "reason": None,
                    "created_at": "2026-11-27T08:00:00Z",
                    "settled_at": "2026-11-27T08:00:00.05Z",
                    "events": [{"at": "2026-11-27T08:00:00Z", "event": "ACCEPTED"}],
                }
            ]
        }
    )


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [PaymentOut.model_json_schema()["examples"][0]],
                    "next_cursor": "MjAyNi0xMS0yN1QwODowMDowMCswMDowMHwwYjdm",
                }
            ]
        }
    )


# keys and quotas -----------------------------------------------------------------------------


class KeyCreate(Request):
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the key stops working (with a time zone, in the future); without it the key "
        "works until revoked",
    )
    model_config = ConfigDict(json_schema_extra={"examples": [{"expires_at": "2027-06-30T00:00:00+08:00"}]})


class KeyOut(BaseModel):
    participant_id: str
    prefix: str = Field(description="The key's first characters: how it is listed and revoked")
    status: KeyStatus
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(
        description="Last use, to within FPSLINK_KEY_CACHE_TTL_S (2 s by default)"
    )
    revoked_at: datetime | None
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "participant_id": "DEMOHK3",
                    "prefix": "fpsl_demohk3_Qm9vX2Jh",
                    "status": "ACTIVE",
                    "created_at": "2026-12-14T02:00:00Z",
                    "expires_at": None,
                    "last_used_at": "2026-12-14T02:05:31Z",
                    "revoked_at": None,
                }
            ]
        }
    )


KEY_SHOWN_ONCE = (
    "api_key was shown once, in the answer that created this key; the gateway keeps only its hash, so "
    "this replay cannot repeat it. If it was lost, revoke this key by its prefix and create another."
)
"""What a replay of `POST /v1/participants/{id}/keys` says in place of the key."""


class KeyCreated(KeyOut):
    api_key: str | None = Field(description="The key: shown once, in this answer; only its hash is kept")
    notice: str | None = Field(
        default=None,
        description="Set on a replay (Idempotent-Replayed: true): api_key is not repeated, and why",
    )


class KeyList(BaseModel):
    items: list[KeyOut]


class RateLimitSet(Request):
    quota: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Requests the bank may send per window, and at once; null with window_s: the default",
    )
    window_s: int | None = Field(default=None, ge=1, le=86_400, description="The window, in seconds")

    @model_validator(mode="after")
    def _both_or_neither(self) -> RateLimitSet:
        if (self.quota is None) != (self.window_s is None):
            raise ValueError("give quota and window_s together, or neither for the default")
        return self

    model_config = ConfigDict(json_schema_extra={"examples": [{"quota": 20000, "window_s": 1}]})


class RateLimitOut(BaseModel):
    participant_id: str
    quota: int = Field(description="Requests per window, and the most at once")
    window_s: int
    default: bool = Field(description="Whether this is the sandbox's default (the operator set none)")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"participant_id": "DEMOHK3", "quota": 100, "window_s": 2, "default": True}]
        }
    )


class Health(BaseModel):
    status: str
    database: str
    ibps: str
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "database": "ok", "ibps": "ok"}]}
    )


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")

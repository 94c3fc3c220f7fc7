"""The request and response models of mock_ibps's HTTP API under ``/ibps/v1``.

mock_ibps validates its requests with these models and serialises its answers through them; the
gateway's client builds its requests from them and parses every answer into them, so a change to the
contract is a change to both sides at once.

- Requests refuse anything malformed: unknown fields, amounts that are not decimal strings, ids
  outside their pattern. The gateway builds them from values it already holds with
  ``model_construct`` (no validation), so sending costs no more than building a dict.
- Responses are built by mock_ibps from its own records with ``model_construct`` and read by the
  gateway with validation: an answer missing a field or carrying a wrong type is caught there.
- Amounts are integer minor units in Python and decimal strings on the wire (``amounts``), under
  field names ending in ``_minor`` whose wire names are the plain ones (``amount``, ``balance``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializeAsAny,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from ibps_wire.amounts import AMOUNT_PATTERN, CURRENCY, AmountError, format_amount, parse_amount
from ibps_wire.enums import FaultCall, FaultKind, Operation, Outcome, Reason, TransferKind, TransferStatus

MAX_BATCH_ITEMS: Final = 1000
"""Items in one batch request."""
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,40}$"
PROXY_RE: Final = re.compile(r"\+86[0-9]{11}")

# field types --------------------------------------------------------------------------------------


def _amount_parser(*, allow_zero: bool) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if not isinstance(value, str):
            raise PydanticCustomError("amount_type", 'amount must be a decimal string such as "100.00"')
        try:
            return parse_amount(value, allow_zero=allow_zero)
        except AmountError as exc:
            raise PydanticCustomError("amount_invalid", str(exc)) from None

    return parse


_ON_THE_WIRE = PlainSerializer(format_amount, return_type=str)
_AMOUNT_SCHEMA = WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN})

PositiveAmount = Annotated[
    int, BeforeValidator(_amount_parser(allow_zero=False)), _ON_THE_WIRE, _AMOUNT_SCHEMA
]
"""Minor units in Python; on the wire a decimal string greater than zero, such as "100.00"."""
NonNegativeAmount = Annotated[
    int, BeforeValidator(_amount_parser(allow_zero=True)), _ON_THE_WIRE, _AMOUNT_SCHEMA
]
"""As `PositiveAmount`, zero allowed: opening balances, balances and holds."""


def _currency(value: str) -> str:
    if value != CURRENCY:
        raise PydanticCustomError(
            "currency_not_supported",
            "currency {currency} is not supported; only CNY",
            {"currency": value[:8]},
        )
    return value


def check_proxy(value: str) -> str:
    """A mainland mobile number in E.164, the one proxy type IBPS knows."""
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


Currency = Annotated[str, Field(strict=True), AfterValidator(_currency)]
Identifier = Annotated[str, Field(strict=True, pattern=ID_PATTERN)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=140), AfterValidator(_not_blank)]
ProxyValue = Annotated[str, Field(strict=True), AfterValidator(check_proxy)]


M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def trusted(cls: type[M], /, **values: Any) -> M:
    """An instance of `cls` from values already of its fields' types, every field given by its Python
    name, without validation.

    What ``model_construct`` makes of such values, at a fraction of its cost (it looks up aliases and
    defaults field by field): both services build each batch item and each answer on the hot path so.
    Not for models that keep extra fields (`Problem`).
    """
    if values.keys() != cls.__pydantic_fields__.keys():
        raise TypeError(f"{cls.__name__} takes {sorted(cls.__pydantic_fields__)}, not {sorted(values)}")
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


class Request(BaseModel):
    # Unknown fields are refused: a caller's typo should fail loudly, not be ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)


class Response(BaseModel):
    # Unknown fields are ignored, so that IBPS may add one before the gateway reads it.
    model_config = ConfigDict(frozen=True, serialize_by_alias=True)


# participants, accounts, proxies ------------------------------------------------------------------


class ParticipantIn(Request):
    participant_id: Identifier
    name: Name


class ParticipantOut(Response):
    participant_id: str
    name: str


class AccountIn(Request):
    account_id: Identifier
    participant_id: Identifier
    holder_name: Name
    currency: Currency
    opening_balance_minor: NonNegativeAmount = Field(alias="opening_balance")


class AccountOut(Response):
    account_id: str
    participant_id: str
    holder_name: str
    currency: str
    balance_minor: NonNegativeAmount = Field(alias="balance")
    held_minor: NonNegativeAmount = Field(alias="held")
    available_minor: NonNegativeAmount = Field(alias="available_balance")


class ProxyIn(Request):
    proxy_value: ProxyValue
    account_id: Identifier


class ProxyRegistered(Response):
    proxy_type: str
    proxy_value: str
    account_id: str
    participant_id: str


class ProxyOut(ProxyRegistered):
    holder_name: str
    currency: str


# two-phase transfers ------------------------------------------------------------------------------


LegKind = Literal[TransferKind.CREDIT, TransferKind.DEBIT]
"""What a payment's leg at IBPS does: credit the mainland payee or debit the mainland payer."""


LinkCurrency = Literal["HKD", "CNY"]
"""A currency of the link: a payment's amounts before and after conversion are in one of these."""
DecimalText = Annotated[str, Field(strict=True, pattern=r"^[0-9]{1,18}(\.[0-9]{1,6})?$")]
"""A non-negative decimal as text (an amount as a bank instructed it, a rate), never a float."""
Reference = Annotated[str, Field(strict=True, min_length=1, max_length=35)]
RemittanceLine = Annotated[str, Field(strict=True, min_length=1, max_length=140)]
MAX_STRUCTURED_REMITTANCE_CHARS: Final = 10_000


def _structured_remittance(value: str) -> str:
    if not value.startswith("<Strd") or "<!" in value or "<?" in value:
        raise PydanticCustomError(
            "structured_remittance",
            "a structured remittance is one <Strd> element, with no DTD, comment or processing instruction",
        )
    return value


StructuredRemittance = Annotated[
    str,
    Field(strict=True, max_length=MAX_STRUCTURED_REMITTANCE_CHARS),
    AfterValidator(_structured_remittance),
]
"""An ISO 20022 RmtInf/Strd as XML, in the namespace of the message it came in."""


class Exchange(Request):
    """A payment's conversion: `rate` target units per source unit."""

    source_currency: LinkCurrency
    target_currency: LinkCurrency
    rate: DecimalText


class TransferReferences(Request):
    """What the debtor's bank sent to identify and explain a payment (an ISO 20022 pacs.008), with the
    amount it instructed before conversion: IBPS keeps it with the transfer and gives it back in its
    statement (camt.053), so that a bank matches its statement by its own references."""

    msg_id: Reference | None
    instr_id: Reference | None
    end_to_end_id: Reference | None
    tx_id: Reference | None
    uetr: UUID | None
    purpose_code: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9]{1,4}$")] | None
    purpose_proprietary: Reference | None
    unstructured: Annotated[list[RemittanceLine], Field(max_length=140)]
    structured: Annotated[list[StructuredRemittance], Field(max_length=10)]
    instructed_amount: DecimalText
    instructed_currency: LinkCurrency
    exchange: Exchange | None
    """None when the payment is not converted (CNY to CNY)."""


class PrepareIn(Request):
    payment_id: UUID
    kind: LegKind
    account_id: Identifier
    amount_minor: PositiveAmount = Field(alias="amount")
    currency: Currency
    references: TransferReferences | None = Field(default=None, exclude_if=lambda value: value is None)
    """Sent for a payment that came as an ISO 20022 pacs.008 only (left out of the JSON otherwise)."""


class PrepareItemIn(PrepareIn):
    op: Literal[Operation.PREPARE]


class CommitItemIn(Request):
    op: Literal[Operation.COMMIT]
    payment_id: UUID


class AbortItemIn(Request):
    op: Literal[Operation.ABORT]
    payment_id: UUID


BatchItem = PrepareItemIn | CommitItemIn | AbortItemIn


def _payment_ids_once(items: list[BatchItem]) -> list[BatchItem]:
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


BatchItemIn = Annotated[BatchItem, Field(discriminator="op")]


class BatchIn(Request):
    """Prepares, commits and aborts of different payments, applied in order in one transaction."""

    items: Annotated[
        list[BatchItemIn], Field(min_length=1, max_length=MAX_BATCH_ITEMS), AfterValidator(_payment_ids_once)
    ]


class TransferOut(Response):
    seq: int
    payment_id: str | None
    kind: TransferKind | None
    account_id: str | None
    debit_account_id: str | None
    credit_account_id: str | None
    amount_minor: NonNegativeAmount | None = Field(alias="amount")
    currency: str | None
    status: TransferStatus
    reason_code: Reason | None
    created_at: datetime
    resolved_at: datetime | None


class Verdict(Response):
    """A prepare's outcome and its reason: what settlement decides on, without the transfer."""

    outcome: Outcome
    reason_code: Reason | None
    reason: str | None

    @property
    def prepared(self) -> bool:
        return self.outcome is Outcome.PREPARED


class PrepareOut(Verdict):
    transfer: TransferOut


class Problem(Response):
    """An RFC 9457 problem: the body of an error answer, and of a batch item refused with one.

    Extra members (the ids involved, validation ``errors``) are kept.
    """

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str


BatchBody = Annotated[PrepareOut | TransferOut | Problem, Field(union_mode="left_to_right")]
"""A prepare's answer, a commit's or abort's transfer, or the problem the item was refused with.

Tried in this order: each member has required fields the ones before it lack, so the first match is
the only one, and a batch of prepares (the common case) matches on the first try."""


class BatchResultOut(Response):
    """What the single endpoint would have answered for one item: its HTTP status and JSON body."""

    payment_id: str
    op: Operation
    status: int
    body: SerializeAsAny[BatchBody]
    """Written by the model it is (SerializeAsAny), the same JSON as through the union, which
    matches each body against the members in turn: a batch's answer took a third longer so."""

    @property
    def unknown(self) -> bool:
        """No usable answer (an error or a time-out inside IBPS): the item's outcome is unknown."""
        return self.status >= 500


class BatchOut(Response):
    results: list[BatchResultOut]
    """One per item, in the order of the items."""


# The settling side's view of a batch answer ------------------------------------------------------


class Moved(Response):
    """A commit's or abort's transfer as settlement reads it: its status."""

    status: TransferStatus


VerdictBody = Annotated[Verdict | Moved | Problem, Field(union_mode="left_to_right")]
"""`BatchBody` read for what settlement needs. Tried in order: a prepare's answer has an outcome,
a transfer a status that is a transfer status, a problem an HTTP status."""


class BatchVerdict(Response):
    """A `BatchResultOut` read as settlement reads it: the item's status and verdict, not the
    transfer's twelve fields (parsing those was two thirds of the cost of reading a batch)."""

    payment_id: str
    op: Operation
    status: int
    body: VerdictBody

    @property
    def unknown(self) -> bool:
        """No usable answer (an error or a time-out inside IBPS): the item's outcome is unknown."""
        return self.status >= 500


class BatchVerdicts(Response):
    """A `BatchOut` read as settlement reads it."""

    results: list[BatchVerdict]


class TransferPageOut(Response):
    items: list[TransferOut]
    next_after: int | None


class LedgerCheckOut(Response):
    ok: bool
    violations: list[str]
    balances: dict[str, str]
    """Total balance by currency, with its sign (the funding accounts' totals are negative)."""
    accounts: int


class Health(Response):
    status: Literal["ok"] = "ok"


# statements ---------------------------------------------------------------------------------------

STATEMENT_COLUMNS: Final = (
    "seq",
    "payment_id",
    "kind",
    "account_id",
    "currency",
    "amount_minor",
    "status",
    "created_at_us",
    "resolved_at_us",
    "transfer_id",
    "debit_account_id",
    "credit_account_id",
    "reason_code",
)
"""Row layout of a JSON statement page; times are integer microseconds since the Unix epoch (UTC),
which cost a million-entry export far less to write and read than ISO strings."""

STATEMENT_TSV_COLUMNS: Final = STATEMENT_COLUMNS[:8]
"""The reconciliation's view of an entry, the columns of a TSV page."""

StatementRow = tuple[
    int,
    str,
    TransferKind | None,
    str | None,
    str | None,
    int | None,
    TransferStatus,
    int,
    int | None,
    str,
    str | None,
    str | None,
    Reason | None,
]
"""One entry in `STATEMENT_COLUMNS` order."""


class StatementPageOut(Response):
    """A page of the JSON statement; `next_after` is null on the last page, `total` set on the first."""

    business_date: date
    columns: tuple[str, ...]
    entries: list[StatementRow]
    next_after: int | None
    total: int | None


NEXT_AFTER_HEADER: Final = "Fpslink-Next-After"
TOTAL_HEADER: Final = "Fpslink-Total"
COUNT_HEADER: Final = "Fpslink-Count"
COLUMNS_HEADER: Final = "Fpslink-Columns"
TSV_MEDIA_TYPE: Final = "text/tab-separated-values"


@dataclass(frozen=True, slots=True)
class StatementTsvPage:
    """A page of the TSV statement: its body, untouched, and what its headers say about it."""

    data: bytes
    """Entries in `columns` order, PostgreSQL COPY text format, one a line."""
    columns: tuple[str, ...]
    count: int
    next_after: int | None
    """Absent on the last page."""
    total: int | None
    """The day's entries, on the first page only."""

    @classmethod
    def of(cls, data: bytes, headers: Mapping[str, str]) -> StatementTsvPage:
        """Read a page's headers; ValueError if one is missing or not a number."""
        following, total = headers.get(NEXT_AFTER_HEADER), headers.get(TOTAL_HEADER)
        columns, count = headers.get(COLUMNS_HEADER), headers.get(COUNT_HEADER)
        if columns is None or count is None:
            raise ValueError(f"a statement page needs the {COLUMNS_HEADER} and {COUNT_HEADER} headers")
        return cls(
            data=data,
            columns=tuple(columns.split(",")),
            count=int(count),
            next_after=None if following is None else int(following),
            total=None if total is None else int(total),
        )


# sandbox fault injection --------------------------------------------------------------------------


class FaultIn(Request):
    """A fault rule: which call, what goes wrong, how often, and the seed that makes it replayable."""

    call: FaultCall
    kind: FaultKind
    probability: float = Field(ge=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    hang_ms: int = Field(default=30_000, ge=0, le=120_000)
    only_attempts: int = Field(default=0, ge=0, le=1000)


class FaultOut(Response):
    rule_id: str
    call: FaultCall
    kind: FaultKind
    probability: float
    seed: int
    latency_ms: int
    hang_ms: int
    only_attempts: int


class FaultsOut(Response):
    rules: list[FaultOut]
    injected: dict[str, dict[str, int]]
    """Faults injected so far, by call and kind."""


# the sandbox clock --------------------------------------------------------------------------------

MAX_CLOCK_OFFSET_US: Final = 3653 * 86_400 * 1_000_000
"""Ten years in microseconds: the gateway's own bound on how far the sandbox runs ahead."""


class ClockIn(Request):
    """The sandbox's offset from the wall clock, set by the gateway (which alone decides it)."""

    offset_us: int = Field(ge=0, le=MAX_CLOCK_OFFSET_US)


class ClockOut(Response):
    offset_us: int
    now: datetime
    """IBPS's time: its wall clock plus the offset."""

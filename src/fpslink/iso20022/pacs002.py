"""pacs.002.001.10 (FI-to-FI payment status report): the gateway's answer to a pacs.008.

For a payment, TxSts is ACSC once settled, RJCT when rejected (with StsRsnInf/Rsn/Cd), PDNG while
settlement has not finished. Reason codes that are ISO ExternalStatusReason1 codes (AM04, BE23, ...)
go out as they are; the gateway's own codes map to the nearest ISO code (NARR when none fits) and
travel in AddtlInf as `CODE: reason`. That report is derived from the message and the payment only,
so a replay of the same pacs.008 answers the same report while the payment is unchanged.

A message refused before any payment exists (`inbound.Refused`) is answered by a report with
GrpSts RJCT: each reason is a StsRsnInf with its ISO code and the words in AddtlInf, at group level,
or in a TxInfAndSts when the refusal is about the transaction.

A status request (pacs.028) about a payment is answered by the payment's report as it stands now,
under a report id and time of its own, with `StsId` the request's `StsReqId`.

A message of several transactions is answered by one report: GrpSts (`group_status`: ACSC, PDNG,
PART or RJCT) with the count per status, then a TxInfAndSts per transaction in the message's order,
its payment's status or its refusal. Its id is derived from its payments' ids and it is dated by
the last of their steps, so a replay of the message, too, answers the same report while its
payments are unchanged.

A request that came in an envelope with an AppHdr is answered in the same envelope, with the
answer's own AppHdr (`apphdr.reply`).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from pyiso20022.pacs.pacs_002_001_10 import (
    Document,
    FitoFipaymentStatusReportV10,
    GroupHeader91,
    NumberOfTransactionsPerStatus5,
    OriginalGroupHeader17,
    PaymentTransaction110,
    StatusReason6Choice,
    StatusReasonInformation12,
)

from fpslink.iso20022 import apphdr, schema, xmltree
from fpslink.iso20022.inbound import Envelope, Original, Refused, Transaction
from fpslink.iso20022.pacs008 import NOT_PROVIDED, CreditTransfer
from fpslink.payments.domain import Payment
from fpslink.settlement.states import status_of
from fpslink.vocabulary import Status

NAMESPACE: Final = "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10"
ISO_REASON: Final = re.compile(r"[A-Z]{2}[0-9]{2}")
NEAREST_ISO: dict[str, str] = {
    "OUTSIDE_SERVICE_HOURS": "TM01",
    "NOT_CROSS_BORDER": "NARR",
    "QUOTE_EXPIRED": "NARR",
    "QUOTE_USED": "NARR",
    "QUOTE_MISMATCH": "NARR",
    "IBPS_REFUSED": "NARR",
    # refusals before a payment exists (the JSON API answers these as problem+json)
    "ACCOUNT_NOT_FOUND": "AC02",
    "INVALID_PROXY": "BE23",
    "CURRENCY_MISMATCH": "AM11",
    "CURRENCY_NOT_SUPPORTED": "AM03",
    "IDEMPOTENCY_KEY_REUSED": "DUPL",
    "AMOUNT_TOO_SMALL": "AM06",
}
SETTLED: Final = "ACSC"
REJECTED: Final = "RJCT"
PENDING: Final = "PDNG"
PARTIAL: Final = "PART"
TX_STATUS = {Status.SETTLED: SETTLED, Status.REJECTED: REJECTED, Status.PENDING: PENDING}
ADDITIONAL_INFO_MAX: Final = 105
ADDITIONAL_INFO_PIECES: Final = 3
ID_PREFIX: Final = "FPSLINK"


def iso_reason(code: str) -> str:
    """The ISO 20022 status reason for one of the gateway's reason codes."""
    if ISO_REASON.fullmatch(code):
        return code
    return NEAREST_ISO.get(code, "NARR")


def tx_status(payment: Payment) -> str:
    return TX_STATUS[status_of(payment.state)]


def _chunks(text: str, size: int = ADDITIONAL_INFO_MAX, limit: int = ADDITIONAL_INFO_PIECES) -> list[str]:
    """`text` in AddtlInf pieces (Max105Text), cut after a space where one is near, so that the pieces
    read as words and join back into the text."""
    pieces: list[str] = []
    while text and len(pieces) < limit:
        cut = len(text) if len(text) <= size else text.rfind(" ", size // 2, size) + 1 or size
        pieces.append(text[:cut])
        text = text[cut:]
    return pieces


def reported_at(payment: Payment) -> datetime:
    """When a payment's report is dated: its last step so far, so a replay dates it alike."""
    return payment.settled_at or payment.decided_at or payment.created_at


def report_id(payment_id: str) -> str:
    """The report's MsgId (and its AppHdr's BizMsgIdr): FPSLINK and 28 hex digits of the payment id."""
    return f"{ID_PREFIX}{payment_id.replace('-', '')[:28]}"


class Reported(Protocol):
    """The references of the message a report is about (a `CreditTransfer`, or one the bank sent
    before, as `repository.SentTransaction` keeps it)."""

    @property
    def msg_id(self) -> str: ...
    @property
    def message_name(self) -> str: ...
    @property
    def instr_id(self) -> str | None: ...
    @property
    def end_to_end_id(self) -> str | None: ...
    @property
    def tx_id(self) -> str | None: ...
    @property
    def uetr(self) -> str | None: ...


def payment_status(
    message: Reported, payment: Payment, *, status_id: str | None = None
) -> PaymentTransaction110:
    """A transaction's status as its payment stands now, echoing the transaction's references."""
    status = tx_status(payment)
    reasons: list[StatusReasonInformation12] = []
    if status == REJECTED and payment.reason_code:
        code = payment.reason_code
        detail = f"{code}: {payment.reason or ''}".strip()
        reasons.append(
            StatusReasonInformation12(rsn=StatusReason6Choice(cd=iso_reason(code)), addtl_inf=_chunks(detail))
        )
    return PaymentTransaction110(
        sts_id=status_id,
        orgnl_instr_id=message.instr_id,
        orgnl_end_to_end_id=message.end_to_end_id or NOT_PROVIDED,
        orgnl_tx_id=message.tx_id,
        orgnl_uetr=message.uetr,
        tx_sts=status,
        sts_rsn_inf=reasons,
        accptnc_dt_tm=schema.xml_time(payment.created_at),
        clr_sys_ref=payment.payment_id.replace("-", ""),
    )


def refused_status(refused: Refused) -> PaymentTransaction110:
    """A transaction refused before any payment was made of it: RJCT with each reason."""
    transaction = refused.transaction or Transaction()
    return PaymentTransaction110(
        orgnl_instr_id=transaction.instr_id,
        orgnl_end_to_end_id=transaction.end_to_end_id or NOT_PROVIDED,
        orgnl_tx_id=transaction.tx_id,
        orgnl_uetr=transaction.uetr,
        tx_sts=REJECTED,
        sts_rsn_inf=_reasons(refused),
    )


def _reasons(refused: Refused) -> list[StatusReasonInformation12]:
    return [
        StatusReasonInformation12(rsn=StatusReason6Choice(cd=r.code), addtl_inf=_chunks(r.text))
        for r in refused.reasons
    ]


def build(
    message: Reported,
    payment: Payment,
    *,
    status_id: str | None = None,
    report: tuple[str, datetime] | None = None,
) -> Document:
    """The status report for `message`, as the payment stands now: dated by the payment and with an
    id derived from it, unless `report` gives (id, time) of its own."""
    message_id, at = report or (report_id(payment.payment_id), reported_at(payment))
    transaction = payment_status(message, payment, status_id=status_id)
    return Document(
        fito_fipmt_sts_rpt=FitoFipaymentStatusReportV10(
            grp_hdr=GroupHeader91(msg_id=message_id, cre_dt_tm=schema.xml_time(at)),
            orgnl_grp_inf_and_sts=[
                OriginalGroupHeader17(orgnl_msg_id=message.msg_id, orgnl_msg_nm_id=message.message_name)
            ],
            tx_inf_and_sts=[transaction],
        )
    )


def build_refusal(refused: Refused, *, message_id: str, at: datetime) -> Document:
    """The RJCT report of a message refused before any payment was made of it."""
    original = refused.original
    group = OriginalGroupHeader17(
        orgnl_msg_id=original.msg_id,
        orgnl_msg_nm_id=original.name,
        grp_sts=REJECTED,
        sts_rsn_inf=[] if refused.transaction is not None else _reasons(refused),
    )
    statuses = [] if refused.transaction is None else [refused_status(refused)]
    return Document(
        fito_fipmt_sts_rpt=FitoFipaymentStatusReportV10(
            grp_hdr=GroupHeader91(msg_id=message_id, cre_dt_tm=schema.xml_time(at)),
            orgnl_grp_inf_and_sts=[group],
            tx_inf_and_sts=statuses,
        )
    )


def group_status(statuses: Sequence[str]) -> str:
    """GrpSts of a message of several transactions, from their TxSts: ACSC when every one settled,
    RJCT when every one was rejected, PART when some were rejected and others not, else PDNG (none
    rejected, some still settling: their final status follows, by pacs.028 or webhook)."""
    distinct = set(statuses)
    if distinct == {SETTLED}:
        return SETTLED
    if distinct == {REJECTED}:
        return REJECTED
    if REJECTED in distinct:
        return PARTIAL
    return PENDING


def build_batch(
    original: Original, statuses: Sequence[PaymentTransaction110], *, message_id: str, at: datetime
) -> Document:
    """The report of a message of several transactions: the group's status and count per status,
    then each transaction's status in the message's order."""
    counts = Counter(s.tx_sts for s in statuses)
    group = OriginalGroupHeader17(
        orgnl_msg_id=original.msg_id,
        orgnl_msg_nm_id=original.name,
        orgnl_nb_of_txs=str(len(statuses)),
        grp_sts=group_status([s.tx_sts for s in statuses if s.tx_sts is not None]),
        nb_of_txs_per_sts=[
            NumberOfTransactionsPerStatus5(dtld_nb_of_txs=str(counts[status]), dtld_sts=status)
            for status in (SETTLED, PENDING, REJECTED)
            if counts[status]
        ],
    )
    return Document(
        fito_fipmt_sts_rpt=FitoFipaymentStatusReportV10(
            grp_hdr=GroupHeader91(msg_id=message_id, cre_dt_tm=schema.xml_time(at)),
            orgnl_grp_inf_and_sts=[group],
            tx_inf_and_sts=list(statuses),
        )
    )


def batch_report_id(payment_ids: Sequence[str]) -> str:
    """The report id of a message of several transactions: FPSLINK and 28 hex digits of a hash of
    its payments' ids, so that a replay of the message answers under the same id."""
    digest = hashlib.sha256(",".join(payment_ids).encode()).hexdigest()
    return f"{ID_PREFIX}{digest[:28]}"


def new_report_id() -> str:
    """A report id for a refusal, which has no payment id to derive one from."""
    return f"{ID_PREFIX}{uuid.uuid4().hex[:28]}"


@dataclass(frozen=True, slots=True)
class Addressing:
    """Who the answer's AppHdr names when the request's header could not be read."""

    caller: apphdr.Party
    link: apphdr.Party


def render(message: CreditTransfer, payment: Payment, *, addressing: Addressing | None = None) -> bytes:
    """The report of a payment, in the request's envelope when it came in one."""
    document = build(message, payment)
    envelope = message.original.envelope if message.original is not None else None
    return _wrap(document, envelope, addressing, report_id(payment.payment_id), reported_at(payment))


def render_status(
    message: Reported,
    payment: Payment,
    *,
    status_id: str | None,
    envelope: Envelope | None,
    at: datetime,
    addressing: Addressing | None = None,
) -> bytes:
    """The answer to a status request about a payment: its report now, in the request's envelope."""
    message_id = new_report_id()
    document = build(message, payment, status_id=status_id, report=(message_id, at))
    return _wrap(document, envelope, addressing, message_id, at)


def render_batch(
    original: Original,
    statuses: Sequence[PaymentTransaction110],
    *,
    message_id: str,
    at: datetime,
    addressing: Addressing | None = None,
) -> bytes:
    """The report of a message of several transactions, in the request's envelope when it came in one."""
    document = build_batch(original, statuses, message_id=message_id, at=at)
    return _wrap(document, original.envelope, addressing, message_id, at)


def render_refusal(refused: Refused, *, at: datetime, addressing: Addressing | None = None) -> bytes:
    """The RJCT report of a refused message, in the request's envelope when it came in one."""
    message_id = new_report_id()
    document = build_refusal(refused, message_id=message_id, at=at)
    return _wrap(document, refused.original.envelope, addressing, message_id, at)


def _wrap(
    document: Document,
    envelope: Envelope | None,
    addressing: Addressing | None,
    message_id: str,
    at: datetime,
) -> bytes:
    if envelope is None or addressing is None:
        return schema.serialize(document)
    to = addressing
    header = apphdr.reply(envelope, caller=to.caller, link=to.link, message_id=message_id, at=at)
    if header is None:
        return schema.serialize(document)
    return envelop(envelope.tag, [header, document])


def envelop(tag: str, parts: list[Any]) -> bytes:
    """`parts` (models) as the children of an envelope element `tag` ({namespace}name or name)."""
    namespace, local = xmltree.split_tag(tag)
    opening = f"<{local}>" if namespace is None else f'<{local} xmlns="{namespace}">'
    inner = "".join(schema.fragment(part) for part in parts)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{opening}{inner}</{local}>\n'.encode()


def parse(xml: bytes) -> Document:
    """Read a pacs.002 back, bare or in its envelope, checked against its schema (tests and clients
    use it to prove a report valid); MalformedMessage or SchemaViolation if it is not."""
    tree = xmltree.read(xml, max_bytes=None)
    root = tree.root
    if not root.tag.endswith("}Document") and len(root) == 2:
        root = root[1]  # an envelope: AppHdr, then the Document
    derived = schema.schema_for(Document)
    errors = derived.validate(root)
    if errors:
        raise schema.SchemaViolation(errors)
    report: Document = schema.to_model(root, derived)
    return report

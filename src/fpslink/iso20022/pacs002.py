"""pacs.002.001.10 (FI-to-FI payment status report): the gateway's answer to a pacs.008.

TxSts is ACSC for a settled payment, RJCT for a rejected one (with StsRsnInf/Rsn/Cd), PDNG while
settlement has not finished. Reason codes that are ISO ExternalStatusReason1 codes (AM04, BE23, ...)
go out as they are; the gateway's own codes map to the nearest ISO code (NARR when none fits) and
travel in AddtlInf as `CODE: reason`. The report is derived from the message and the payment only,
so a replay of the same pacs.008 answers the same report while the payment is unchanged.
"""

from __future__ import annotations

import re
from datetime import datetime

from pyiso20022.pacs.pacs_002_001_10 import (
    Document,
    FitoFipaymentStatusReportV10,
    GroupHeader91,
    OriginalGroupHeader17,
    PaymentTransaction110,
    StatusReason6Choice,
    StatusReasonInformation12,
)
from xsdata.models.datatype import XmlDateTime

from fpslink.iso20022 import schema
from fpslink.iso20022.pacs008 import MESSAGE_NAME as PACS008
from fpslink.iso20022.pacs008 import NOT_PROVIDED, CreditTransfer
from fpslink.payments.domain import Payment
from fpslink.settlement.states import status_of
from fpslink.vocabulary import Status

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10"
ISO_REASON = re.compile(r"[A-Z]{2}[0-9]{2}")
NEAREST_ISO: dict[str, str] = {
    "OUTSIDE_SERVICE_HOURS": "TM01",
    "NOT_CROSS_BORDER": "NARR",
    "QUOTE_EXPIRED": "NARR",
    "QUOTE_USED": "NARR",
    "QUOTE_MISMATCH": "NARR",
    "IBPS_REFUSED": "NARR",
}
TX_STATUS = {Status.SETTLED: "ACSC", Status.REJECTED: "RJCT", Status.PENDING: "PDNG"}
ADDITIONAL_INFO_MAX = 105


def iso_reason(code: str) -> str:
    """The ISO 20022 status reason for one of the gateway's reason codes."""
    if ISO_REASON.fullmatch(code):
        return code
    return NEAREST_ISO.get(code, "NARR")


def tx_status(payment: Payment) -> str:
    return TX_STATUS[status_of(payment.state)]


def _xml_time(at: datetime) -> XmlDateTime:
    return XmlDateTime.from_datetime(at.replace(microsecond=(at.microsecond // 1000) * 1000))


def _chunks(text: str, size: int, limit: int) -> list[str]:
    return [text[i : i + size] for i in range(0, min(len(text), size * limit), size)]


def build(message: CreditTransfer, payment: Payment) -> Document:
    """The status report for `message`, as the payment stands now."""
    payment_ref = payment.payment_id.replace("-", "")
    reported_at = payment.settled_at or payment.decided_at or payment.created_at
    status = tx_status(payment)
    reasons: list[StatusReasonInformation12] = []
    if status == "RJCT" and payment.reason_code:
        code = payment.reason_code
        detail = f"{code}: {payment.reason or ''}".strip()
        reasons.append(
            StatusReasonInformation12(
                rsn=StatusReason6Choice(cd=iso_reason(code)),
                addtl_inf=_chunks(detail, ADDITIONAL_INFO_MAX, 3),
            )
        )
    transaction = PaymentTransaction110(
        orgnl_instr_id=message.instr_id,
        orgnl_end_to_end_id=message.end_to_end_id or NOT_PROVIDED,
        orgnl_tx_id=message.tx_id,
        orgnl_uetr=message.uetr,
        tx_sts=status,
        sts_rsn_inf=reasons,
        accptnc_dt_tm=_xml_time(payment.created_at),
        clr_sys_ref=payment_ref,
    )
    return Document(
        fito_fipmt_sts_rpt=FitoFipaymentStatusReportV10(
            grp_hdr=GroupHeader91(msg_id=f"FPSLINK{payment_ref[:28]}", cre_dt_tm=_xml_time(reported_at)),
            orgnl_grp_inf_and_sts=[
                OriginalGroupHeader17(orgnl_msg_id=message.msg_id, orgnl_msg_nm_id=PACS008)
            ],
            tx_inf_and_sts=[transaction],
        )
    )


def render(message: CreditTransfer, payment: Payment) -> bytes:
    return schema.serialize(build(message, payment))


def parse(xml: bytes) -> Document:
    """Read a pacs.002 back (tests and clients use it to prove a report is schema-valid)."""
    return schema.parse(xml, Document)

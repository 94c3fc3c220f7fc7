"""pacs.028 (FI-to-FI payment status request), .03 to .06: which of its payments a bank asks about.

One request asks about one payment, as CBPR+ has it: one `TxInf`, or, without `TxInf`, one
`OrgnlGrpInf`, which names a message: its one payment, or every transaction of a message of
several, answered in one report as the pacs.008 was. The payment is found among the asking bank's
own pacs.008 transactions by the first of

    TxInf/ClrSysRef                        the link's reference, as its pacs.002 gave it
    TxInf/OrgnlUETR                        the UETR of the pacs.008
    TxInf/OrgnlGrpInf/OrgnlMsgId (or the   the MsgId of the pacs.008 (the newest, should a MsgId
      message's OrgnlGrpInf/OrgnlMsgId)    have come again after its key expired)

and every other reference given (OrgnlMsgNmId, OrgnlInstrId, OrgnlEndToEndId, OrgnlTxId, and the
identifiers above) must be the payment's too. A request that names no payment this way is refused;
one whose references match none of the bank's payments is answered "never received" (AG09), the
same whether no such payment exists or it is another bank's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fpslink.iso20022 import schema
from fpslink.iso20022.apphdr import Party
from fpslink.iso20022.consistency import agent_findings
from fpslink.iso20022.inbound import NOT_PROVIDED, Inbound, Original, Reason, Refused, Transaction
from fpslink.iso20022.repository import SentTransaction

PAYMENT_REF: Final = re.compile(r"[0-9a-fA-F]{32}")
"""A ClrSysRef the link gave: a payment id without its hyphens."""


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """The references a status request gives for the payment it asks about."""

    original: Original
    """The pacs.028 itself, as a refusal of it echoes it."""
    status_request_id: str | None = None
    clr_sys_ref: str | None = None
    uetr: str | None = None
    msg_id: str | None = None
    message_name: str | None = None
    instr_id: str | None = None
    end_to_end_id: str | None = None
    tx_id: str | None = None

    @property
    def payment_id(self) -> str | None:
        """The payment id a ClrSysRef names, when it is one the link could have given."""
        if self.clr_sys_ref is None or not PAYMENT_REF.fullmatch(self.clr_sys_ref):
            return None
        return str(uuid.UUID(self.clr_sys_ref))

    @property
    def names_message_only(self) -> bool:
        """It gives the MsgId of a pacs.008 and no reference of a transaction."""
        references = (self.clr_sys_ref, self.uetr, self.instr_id, self.end_to_end_id, self.tx_id)
        return all(value is None for value in references)

    @property
    def transaction(self) -> Transaction:
        """What the request asked about, as an answer that found nothing echoes it."""
        return Transaction(self.instr_id, self.end_to_end_id, self.tx_id, self.uetr)


def query(message: Inbound, *, caller: Party, link: Party) -> StatusQuery:
    """The payment a schema-valid pacs.028 asks about; Refused when it names none,
    asks about several, or its agents are not the caller and the link."""
    body = schema.body_of(message.document)
    original = message.original
    found = agent_findings(body.grp_hdr, "GrpHdr", caller=caller, link=link)
    for tx in body.tx_inf:
        found += agent_findings(tx, "TxInf", caller=caller, link=link)
    if found:
        raise Refused(found, original=original)
    groups, transactions = body.orgnl_grp_inf, body.tx_inf
    if len(transactions) > 1 or len(groups) > 1 or not (transactions or groups):
        text = (
            f"the request names {len(transactions)} TxInf and {len(groups)} OrgnlGrpInf: the link answers "
            "for one payment per request, so send one TxInf (or, without TxInf, one OrgnlGrpInf)"
        )
        raise Refused([Reason("AM18", text)], original=original)
    tx = transactions[0] if transactions else None
    group = tx.orgnl_grp_inf if tx is not None and tx.orgnl_grp_inf is not None else None
    group = group or (groups[0] if groups else None)
    asked = StatusQuery(
        original=original,
        status_request_id=tx.sts_req_id if tx is not None else None,
        clr_sys_ref=tx.clr_sys_ref if tx is not None else None,
        uetr=str(uuid.UUID(tx.orgnl_uetr)) if tx is not None and tx.orgnl_uetr else None,
        msg_id=group.orgnl_msg_id if group is not None else None,
        message_name=group.orgnl_msg_nm_id if group is not None else None,
        instr_id=tx.orgnl_instr_id if tx is not None else None,
        end_to_end_id=_given(tx.orgnl_end_to_end_id) if tx is not None else None,
        tx_id=tx.orgnl_tx_id if tx is not None else None,
    )
    if asked.clr_sys_ref is None and asked.uetr is None and asked.msg_id is None:
        text = (
            "the request does not say which payment: give TxInf/ClrSysRef (the link's reference), "
            "TxInf/OrgnlUETR or OrgnlGrpInf/OrgnlMsgId"
        )
        # CH21 RequiredCompulsoryElementMissing: none of the identifiers the link finds payments by
        raise Refused([Reason("CH21", text)], original=original, transaction=asked.transaction)
    return asked


def _given(value: str | None) -> str | None:
    return None if value in (None, NOT_PROVIDED) else value


def matches(asked: StatusQuery, sent: SentTransaction) -> bool:
    """Whether every reference the request gives is this transaction's, and it was paid."""
    if sent.payment_id is None:
        return False
    ref = sent.payment_id.replace("-", "")
    pairs = (
        (asked.clr_sys_ref.lower() if asked.clr_sys_ref else None, ref),
        (asked.uetr, sent.uetr),
        (asked.msg_id, sent.msg_id),
        (asked.message_name, sent.message_name),
        (asked.instr_id, sent.instr_id),
        (asked.end_to_end_id, sent.end_to_end_id),
        (asked.tx_id, sent.tx_id),
    )
    return all(given is None or given == theirs for given, theirs in pairs)


def pick(asked: StatusQuery, candidates: Sequence[SentTransaction]) -> list[SentTransaction]:
    """What the request names among the candidates (newest first, a message's in its order): the
    first whose references all match; or, for a request naming a message by its MsgId alone, every
    paid transaction of the newest such message (its rows share MsgId and creation time)."""
    matched = [sent for sent in candidates if matches(asked, sent)]
    if not matched:
        return []
    first = matched[0]
    if not asked.names_message_only:
        return [first]
    return [sent for sent in matched if sent.created_at == first.created_at]


def not_found(asked: StatusQuery) -> Refused:
    """The answer when none of the bank's payments matches: the same for a payment that does not
    exist and for another bank's, and echoing only what the request gave."""
    text = "no payment of yours has these references: the link never received it from you"
    return Refused([Reason("AG09", text)], original=asked.original, transaction=asked.transaction, status=404)

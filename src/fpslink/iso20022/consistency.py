"""What a schema-valid pacs.008 must also say consistently before the link settles it.

The XSD checks each element alone; these rules check them against each other, against the caller
and against the day, in pure code (docs/iso20022.md#consistency):

- `GrpHdr/CtrlSum` and `GrpHdr/TtlIntrBkSttlmAmt`, when given, are the sum of the transactions'
  `IntrBkSttlmAmt` (and the total is in their currency): else AM16.
- The interbank settlement date (`GrpHdr/IntrBkSttlmDt` or `CdtTrfTxInf/IntrBkSttlmDt`), when given,
  is today's business date (UTC+8, the sandbox's clock): else DT01. This is `settlement_dates`, apart
  from `check`, because it alone depends on the day: a message taken yesterday and sent again today
  is answered as a replay, not refused.
- The agents are who they say: `DbtrAgt` is the caller's bank (by BICFI: else RC06; by
  ClrSysMmbId/MmbId: else RC09; or by FinInstnId/Othr/Id, its participant id: else RC03), and the
  instructing agent (`InstgAgt`) the caller, the instructed agent (`InstdAgt`) the link: else AGNT.
- The charging rule: the link charges nothing and deducts nothing, so the amount settled
  (`IntrBkSttlmAmt`) is what the creditor is paid, converted. `InstdAmt`, when given, is in the same
  currency (the link converts at its own rate: an `XchgRate` is refused CH17, another currency AM11),
  and `IntrBkSttlmAmt` is `InstdAmt` less the charges deducted before the link: the `ChrgsInf/Amt`
  under `ChrgBr` CRED or SHAR, nothing under DEBT or SLEV (the debtor's charges are billed apart):
  else AM09. `ChrgsInf` without `InstdAmt` is refused CH21, a charge in another currency AM11.

Group-level findings refuse the message at group level; a transaction's refuse that transaction
in a TxInfAndSts that echoes its references, all of its findings at once, and leave the message's
other transactions to be paid. Two transactions of one message with one UETR: the later is refused
DUPL (a UETR names one payment).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from fpslink.iso20022 import schema
from fpslink.iso20022.apphdr import Party, same_bic
from fpslink.iso20022.inbound import Inbound, Reason, Refused
from fpslink.iso20022.pacs008 import references

DEDUCTED: Final = frozenset({"CRED", "SHAR"})
"""Charge bearers under which the agents' charges come off the instructed amount."""
DEBTOR_AGENT: Final = ("RC06", "RC09", "RC03")
"""The codes of a DbtrAgt that is not the caller: by BICFI, by ClrSysMmbId/MmbId, by neither."""


def check(message: Inbound, *, caller: Party, link: Party) -> list[Refused | None]:
    """Refused (a pacs.002 RJCT of the whole message) unless the group is consistent; else each
    transaction's refusal, or None, in the message's order: see the module's rules (all but the
    settlement date's), and a UETR that an earlier transaction of the message already gives (DUPL)."""
    body = schema.body_of(message.document)
    transactions = body.cdt_trf_tx_inf
    found = group_findings(body.grp_hdr, transactions, caller=caller, link=link)
    if found:
        raise Refused(found, original=message.original)
    refusals: list[Refused | None] = []
    first_of: dict[str, int] = {}
    for number, tx in enumerate(transactions, start=1):
        ids = references(tx)
        found = transaction_findings(tx, caller=caller, link=link)
        if ids.uetr is not None:
            earlier = first_of.setdefault(ids.uetr, number)
            if earlier != number:
                text = (
                    f"PmtId/UETR {ids.uetr} is also the UETR of transaction {earlier} of this message: "
                    "a UETR names one payment, so give each transaction its own"
                )
                found.append(Reason("DUPL", text))
        refusals.append(Refused(found, original=message.original, transaction=ids) if found else None)
    return refusals


@dataclass(frozen=True, slots=True)
class Dates:
    """What the interbank settlement dates refuse: the group's date (the whole message), and each
    transaction's own, in the message's order."""

    group: Refused | None
    transactions: list[Refused | None]


def settlement_dates(message: Inbound, *, today: date) -> Dates:
    """DT01 for every interbank settlement date the pacs.008 gives that is not `today` (the UTC+8
    business date): at group level for GrpHdr/IntrBkSttlmDt, else in the transaction's status."""
    body = schema.body_of(message.document)
    found = _date(body.grp_hdr.intr_bk_sttlm_dt, "GrpHdr/IntrBkSttlmDt", today)
    group = Refused(found, original=message.original) if found else None
    transactions: list[Refused | None] = []
    for tx in body.cdt_trf_tx_inf:
        found = _date(tx.intr_bk_sttlm_dt, "CdtTrfTxInf/IntrBkSttlmDt", today)
        refusal = Refused(found, original=message.original, transaction=references(tx)) if found else None
        transactions.append(refusal)
    return Dates(group, transactions)


def group_findings(header: Any, transactions: list[Any], *, caller: Party, link: Party) -> list[Reason]:
    """What is inconsistent in the group header: its sums and its agents."""
    found: list[Reason] = []
    settled = [tx.intr_bk_sttlm_amt for tx in transactions]
    total = sum((a.value for a in settled), Decimal(0))
    if header.ctrl_sum is not None and header.ctrl_sum != total:
        found.append(
            Reason(
                "AM16",
                f"GrpHdr/CtrlSum is {header.ctrl_sum} but the transactions' IntrBkSttlmAmt sum to {total}",
            )
        )
    stated = header.ttl_intr_bk_sttlm_amt
    if stated is not None:
        currencies = sorted({a.ccy for a in settled})
        if currencies != [stated.ccy]:
            text = (
                f"GrpHdr/TtlIntrBkSttlmAmt is in {stated.ccy} but the transactions settle in "
                f"{', '.join(currencies)}"
            )
            found.append(Reason("AM16", text))
        elif stated.value != total:
            text = (
                f"GrpHdr/TtlIntrBkSttlmAmt is {stated.value} {stated.ccy} but the transactions' "
                f"IntrBkSttlmAmt sum to {total} {stated.ccy}"
            )
            found.append(Reason("AM16", text))
    found += agent_findings(header, "GrpHdr", caller=caller, link=link)
    return found


def transaction_findings(tx: Any, *, caller: Party, link: Party) -> list[Reason]:
    """What is inconsistent in one transaction: its agents, its amounts and charges."""
    found: list[Reason] = []
    # RC06 / RC09 / RC03: the debtor's BIC, clearing member id or bank identifier is not the caller's
    debtor_agent = _names(tx.dbtr_agt, caller, "CdtTrfTxInf/DbtrAgt", "your bank", codes=DEBTOR_AGENT)
    found += [] if debtor_agent is None else [debtor_agent]
    found += agent_findings(tx, "CdtTrfTxInf", caller=caller, link=link)
    return found + amount_findings(tx)


def agent_findings(holder: Any, path: str, *, caller: Party, link: Party) -> list[Reason]:
    """InstgAgt must name the caller and InstdAgt the link, where they are given (AGNT)."""
    found: list[Reason] = []
    for field, who, whose in (("instg_agt", caller, "your bank"), ("instd_agt", link, "the link")):
        agent = getattr(holder, field)
        tag = "InstgAgt" if field == "instg_agt" else "InstdAgt"
        if agent is not None and (wrong := _names(agent, who, f"{path}/{tag}", whose, codes=("AGNT",) * 3)):
            found.append(wrong)
    return found


def _names(agent: Any, who: Party, path: str, whose: str, *, codes: tuple[str, str, str]) -> Reason | None:
    """None if the agent's FinInstnId names `who`, else the reason (codes: a BIC that is not its,
    a member id that is not its, no usable identification). Every identification given must match;
    FinInstnId/Othr/Id counts only without BICFI and ClrSysMmbId, and matches the member id in any case."""
    institution = agent.fin_instn_id
    bic = institution.bicfi
    member = institution.clr_sys_mmb_id.mmb_id if institution.clr_sys_mmb_id is not None else None
    where = f"{path}/FinInstnId"
    if bic is not None and (who.bic is None or not same_bic(bic, who.bic)):
        return Reason(codes[0], f"{where}/BICFI {bic} is not {whose} ({who})")
    if member is not None and member != who.member_id:
        return Reason(codes[1], f"{where}/ClrSysMmbId/MmbId {member} is not {whose} ({who})")
    if bic is not None or member is not None:
        return None
    other = institution.othr.id if institution.othr is not None else None
    if other is None:
        return Reason(codes[2], f"{where} names no BICFI, ClrSysMmbId/MmbId or Othr/Id: name {whose} ({who})")
    if other.casefold() != who.member_id.casefold():
        return Reason(codes[2], f"{where}/Othr/Id {other} is not {whose} ({who})")
    return None


def amount_findings(tx: Any) -> list[Reason]:
    """The charging rule (see the module): InstdAmt, ChrgsInf and XchgRate against IntrBkSttlmAmt."""
    settled = tx.intr_bk_sttlm_amt
    instructed = tx.instd_amt
    bearer = tx.chrg_br.value
    charges = tx.chrgs_inf
    found: list[Reason] = []
    if tx.xchg_rate is not None:
        text = (
            f"CdtTrfTxInf/XchgRate {tx.xchg_rate}: the link converts at its own rate (GET /v1/fx/rates); "
            "send the amount in one currency and leave XchgRate out"
        )
        found.append(Reason("CH17", text))
    if instructed is None:
        if charges:
            text = (
                "CdtTrfTxInf/ChrgsInf needs InstdAmt: the charges are accounted for between the "
                "instructed amount and IntrBkSttlmAmt"
            )
            found.append(Reason("CH21", text))
        return found
    if instructed.ccy != settled.ccy:
        text = (
            f"CdtTrfTxInf/InstdAmt is in {instructed.ccy} but IntrBkSttlmAmt in {settled.ccy}: the link "
            "converts at its own rate, so give both in the currency of the amount fixed"
        )
        return [*found, Reason("AM11", text)]
    deducted = Decimal(0)
    for number, charge in enumerate(charges, start=1):
        where = "CdtTrfTxInf/ChrgsInf" if len(charges) == 1 else f"CdtTrfTxInf/ChrgsInf[{number}]"
        if charge.amt.ccy != settled.ccy:
            text = f"{where}/Amt is in {charge.amt.ccy}, not in {settled.ccy} like IntrBkSttlmAmt"
            return [*found, Reason("AM11", text)]
        deducted += charge.amt.value
    expected = instructed.value - deducted if bearer in DEDUCTED else instructed.value
    if settled.value != expected:
        if bearer in DEDUCTED:
            rule = (
                f"InstdAmt {instructed.value} less the ChrgsInf deducted under ChrgBr {bearer} ({deducted})"
            )
        else:
            rule = f"InstdAmt, as under ChrgBr {bearer} no charge comes off the amount and the link adds none"
        text = f"CdtTrfTxInf/IntrBkSttlmAmt {settled.value} {settled.ccy} should be {expected}: {rule}"
        found.append(Reason("AM09", text))
    return found


def _date(given: Any, path: str, today: date) -> list[Reason]:
    if given is None or given.to_date() == today:
        return []
    # DT01 InvalidDate: the link settles instantly, so only today's date is a settlement date
    text = f"{path} is {given}: the link settles at once, on today's business date {today} (UTC+8)"
    return [Reason("DT01", text)]

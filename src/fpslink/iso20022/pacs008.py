"""pacs.008 (FI-to-FI customer credit transfer), .08 to .13, read into the payments service's command.

The versions differ in parts the link does not read (addresses, agents' identifiers, new optional
elements), so one reading serves them all. What is mapped:

    GrpHdr/MsgId                          the default idempotency key (pacs.008/<MsgId>)
    GrpHdr/NbOfTxs                        the number of CdtTrfTxInf (01 is 1); one per message
    CdtTrfTxInf/PmtId/EndToEndId          end_to_end_id ("NOTPROVIDED" means none)
    CdtTrfTxInf/PmtId/UETR                echoed as OrgnlUETR; the gateway still gives the payment
                                          its own payment_id
    InstdAmt, else IntrBkSttlmAmt (+Ccy)  amount and currency (which amount is fixed, as in JSON)
    DbtrAcct/Id/Othr/Id                   debtor_account_id
    CdtrAcct/Prxy/Id                      creditor by mobile number (Tp TELE / MBNO / Prtry MOBILE)
    CdtrAcct/Id/Othr/Id                   creditor by account, when there is no Prxy
    Purp/Cd or Purp/Prtry                 purpose, by ISO code (FAMI) or name (FAMILY_SUPPORT);
                                          the link's default purpose when absent
    RmtInf/Ustrd                          remittance_info (joined by spaces, at most 140 characters)

A schema-valid message outside these rules is `Refused` with the ISO 20022 status reason that fits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fpslink.iso20022 import inbound as wire
from fpslink.iso20022.inbound import Inbound, Reason, Refused, Transaction
from fpslink.money import MAX_AMOUNT, Currency, InvalidAmount, parse_amount
from fpslink.payments.service import PaymentCommand
from fpslink.vocabulary import Purpose

MESSAGE_NAME: Final = "pacs.008.001.08"
"""The version the examples are written in."""
NOT_PROVIDED: Final = wire.NOT_PROVIDED
MOBILE_PROXY_CODES: Final = frozenset({"TELE", "MBNO"})
END_TO_END_PATTERN: Final = re.compile(r"[\x21-\x7e]{1,35}")
MAX_REMITTANCE: Final = 140
DEFAULT_PURPOSE: Final = Purpose.OTHER
"""ISO 20022's OTHR ("other"); the setting FPSLINK_ISO20022_DEFAULT_PURPOSE."""
Refuse = Callable[[str, str], Refused]
"""A refusal of the transaction at hand, with its ISO 20022 code and words."""


@dataclass(frozen=True, slots=True)
class CreditTransfer:
    """The parts of a pacs.008 that the payment and its pacs.002 need."""

    msg_id: str
    instr_id: str | None
    end_to_end_id: str | None
    tx_id: str | None
    uetr: str | None
    command: PaymentCommand
    message_name: str = MESSAGE_NAME
    original: wire.Original | None = None

    @property
    def transaction(self) -> Transaction:
        return Transaction(self.instr_id, self.end_to_end_id, self.tx_id, self.uetr)


def parse(xml: bytes, *, default_purpose: Purpose = DEFAULT_PURPOSE) -> CreditTransfer:
    """Read, schema-check and map a message; raises MalformedMessage or Refused."""
    return credit_transfer(wire.read(xml), default_purpose=default_purpose)


def credit_transfer(message: Inbound, *, default_purpose: Purpose = DEFAULT_PURPOSE) -> CreditTransfer:
    """Apply the link's rules to a schema-valid pacs.008; Refused (with its ISO code) if they fail."""
    body = message.document.fito_ficstmr_cdt_trf
    header = body.grp_hdr
    transactions = body.cdt_trf_tx_inf
    original = message.original
    if int(header.nb_of_txs) != len(transactions):
        raise Refused(
            [
                Reason(
                    "AM18",
                    f"GrpHdr/NbOfTxs is {header.nb_of_txs} but the message carries "
                    f"{len(transactions)} CdtTrfTxInf",
                )
            ],
            original=original,
        )
    if len(transactions) != 1:
        raise Refused(
            [Reason("AM18", "the link settles one transaction per message: send each CdtTrfTxInf alone")],
            original=original,
        )
    tx = transactions[0]
    ids = _references(tx)

    def refuse(code: str, text: str) -> Refused:
        return Refused([Reason(code, text)], original=original, transaction=ids)

    end_to_end = tx.pmt_id.end_to_end_id
    if end_to_end == NOT_PROVIDED:
        end_to_end_id = None
    elif END_TO_END_PATTERN.fullmatch(end_to_end):
        end_to_end_id = end_to_end
    else:
        raise refuse("FF08", "PmtId/EndToEndId must be 1-35 visible ASCII characters (or NOTPROVIDED)")
    amount, currency = _amount(tx, refuse)
    proxy, creditor_account = _creditor(tx.cdtr_acct, refuse)
    return CreditTransfer(
        msg_id=header.msg_id,
        instr_id=ids.instr_id,
        end_to_end_id=end_to_end_id,
        tx_id=ids.tx_id,
        uetr=ids.uetr,
        command=PaymentCommand(
            debtor_account_id=_debtor(tx.dbtr_acct, refuse),
            creditor_proxy=proxy,
            creditor_account_id=creditor_account,
            amount=amount,
            currency=currency,
            quote_id=None,
            purpose=_purpose(tx, default_purpose, refuse),
            remittance_info=_remittance(tx, refuse),
            end_to_end_id=end_to_end_id,
        ),
        message_name=message.name,
        original=original,
    )


def _references(tx: Any) -> Transaction:
    uetr = tx.pmt_id.uetr
    if uetr is not None:
        uetr = str(uuid.UUID(uetr))  # the schema's pattern already made it a lower-case UUID v4
    end_to_end = tx.pmt_id.end_to_end_id
    return Transaction(
        instr_id=tx.pmt_id.instr_id,
        end_to_end_id=None if end_to_end == NOT_PROVIDED else end_to_end,
        tx_id=tx.pmt_id.tx_id,
        uetr=uetr,
    )


def _amount(tx: Any, refuse: Refuse) -> tuple[Decimal, Currency]:
    given = tx.instd_amt if tx.instd_amt is not None else tx.intr_bk_sttlm_amt
    where = "InstdAmt" if tx.instd_amt is not None else "IntrBkSttlmAmt"
    try:
        currency = Currency(given.ccy)
    except ValueError as exc:
        raise refuse("AM03", f"{where}: currency {given.ccy} is not carried by the link (HKD, CNY)") from exc
    value: Decimal = given.value
    try:
        return parse_amount(value, currency), currency
    except InvalidAmount as exc:
        if value == 0:
            raise refuse("AM01", f"{where}: the amount is zero") from exc
        if value > MAX_AMOUNT:
            raise refuse("AM02", f"{where}: {value} {currency.value} is more than the link carries") from exc
        raise refuse(
            "CH20", f"{where}: {currency.value} amounts have at most {currency.minor_units} decimal places"
        ) from exc


def _other_id(account: Any) -> str | None:
    if account is None or account.id is None or account.id.othr is None:
        return None
    return str(account.id.othr.id)


def _debtor(account: Any, refuse: Refuse) -> str:
    found = _other_id(account)
    if found is None or found == NOT_PROVIDED:
        raise refuse("AC02", "DbtrAcct/Id/Othr/Id must name the debtor account (the link does not use IBANs)")
    return found


def _creditor(account: Any, refuse: Refuse) -> tuple[str | None, str | None]:
    if account is None:
        raise refuse("AC03", "CdtrAcct is required: a proxy (CdtrAcct/Prxy) or an account (Id/Othr/Id)")
    if account.prxy is not None:
        kind = account.prxy.tp
        if kind is not None and not (
            (kind.cd is not None and kind.cd in MOBILE_PROXY_CODES) or kind.prtry == "MOBILE"
        ):
            named = kind.cd or kind.prtry
            raise refuse("BE23", f"CdtrAcct/Prxy/Tp {named} is not supported; use a mobile number (TELE)")
        return account.prxy.id, None
    found = _other_id(account)
    if found is None or found == NOT_PROVIDED:
        raise refuse("AC03", "CdtrAcct needs Prxy/Id (a mobile number) or Id/Othr/Id (an account)")
    return None, found


def _purpose(tx: Any, default: Purpose, refuse: Refuse) -> Purpose:
    """Purp/Cd (an ISO 20022 code: FAMI) or Purp/Prtry (a name: FAMILY_SUPPORT), read alike; the
    link's default without Purp."""
    purpose = (tx.purp.cd or tx.purp.prtry) if tx.purp is not None else None
    if not purpose:
        return default
    try:
        return Purpose.read(str(purpose))
    except ValueError as exc:
        codes = ", ".join(f"{p.iso_code} ({p})" for p in Purpose)
        raise refuse("FF07", f"Purp {purpose} is not a purpose of the link: use one of {codes}") from exc


def _remittance(tx: Any, refuse: Refuse) -> str | None:
    if tx.rmt_inf is None or not tx.rmt_inf.ustrd:
        return None
    text = " ".join(line.strip() for line in tx.rmt_inf.ustrd if line.strip())
    if len(text) > MAX_REMITTANCE:
        raise refuse("CH15", f"RmtInf/Ustrd carries at most {MAX_REMITTANCE} characters in all")
    return text or None

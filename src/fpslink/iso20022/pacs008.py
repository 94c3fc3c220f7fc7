"""pacs.008.001.08 (FI-to-FI customer credit transfer) read into the payments service's command.

One message carries one payment (NbOfTxs 1), as FPS instant payments do. What is mapped:

    GrpHdr/MsgId                          the default idempotency key (pacs.008/<MsgId>)
    CdtTrfTxInf/PmtId/EndToEndId          end_to_end_id ("NOTPROVIDED" means none)
    CdtTrfTxInf/PmtId/UETR                checked to be a UUID and echoed as OrgnlUETR; the gateway
                                          still gives the payment its own payment_id
    InstdAmt, else IntrBkSttlmAmt (+Ccy)  amount and currency (which amount is fixed, as in JSON)
    DbtrAcct/Id/Othr/Id                   debtor_account_id
    CdtrAcct/Prxy/Id                      creditor by mobile number (Tp TELE / MBNO / Prtry MOBILE);
                                          the schema still needs CdtrAcct/Id: write NOTPROVIDED
    CdtrAcct/Id/Othr/Id                   creditor by account, when there is no Prxy
    Purp/Cd or Purp/Prtry                 purpose (required by Payment Connect)
    RmtInf/Ustrd                          remittance_info (joined by spaces, at most 140 characters)
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

from pyiso20022.pacs.pacs_008_001_08 import CashAccount38, CreditTransferTransaction39, Document

from fpslink.iso20022 import schema
from fpslink.money import Currency, InvalidAmount, parse_amount
from fpslink.payments.service import PaymentCommand
from fpslink.vocabulary import Purpose

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
MESSAGE_NAME = "pacs.008.001.08"
NOT_PROVIDED = "NOTPROVIDED"
MOBILE_PROXY_CODES = frozenset({"TELE", "MBNO"})
END_TO_END_PATTERN = re.compile(r"[\x21-\x7e]{1,35}")
MAX_REMITTANCE = 140


class Unsupported(ValueError):
    """Schema-valid, but outside what Payment Connect carries; `code` is the gateway's error code."""

    def __init__(self, detail: str, code: str = "ISO20022_NOT_SUPPORTED") -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class CreditTransfer:
    """The parts of a pacs.008 that the payment and its pacs.002 need."""

    msg_id: str
    instr_id: str | None
    end_to_end_id: str | None
    tx_id: str | None
    uetr: str | None
    command: PaymentCommand


def parse(xml: bytes) -> CreditTransfer:
    """Schema-check the message, then apply the link's rules; raises schema errors or Unsupported."""
    document = schema.parse(xml, Document)
    message = document.fito_ficstmr_cdt_trf
    header = message.grp_hdr
    if header.nb_of_txs != "1" or len(message.cdt_trf_tx_inf) != 1:
        raise Unsupported("one message carries one payment: NbOfTxs must be 1 with one CdtTrfTxInf")
    tx = message.cdt_trf_tx_inf[0]
    end_to_end = tx.pmt_id.end_to_end_id
    if end_to_end == NOT_PROVIDED:
        end_to_end_id = None
    elif END_TO_END_PATTERN.fullmatch(end_to_end):
        end_to_end_id = end_to_end
    else:
        raise Unsupported("EndToEndId must be 1-35 visible ASCII characters (or NOTPROVIDED)")
    uetr = tx.pmt_id.uetr
    if uetr is not None:
        try:
            uuid.UUID(uetr)
        except ValueError as exc:
            raise Unsupported(f"UETR {uetr!r} is not a UUID") from exc
    amount, currency = _amount(tx)
    proxy, creditor_account = _creditor(tx.cdtr_acct)
    return CreditTransfer(
        msg_id=header.msg_id,
        instr_id=tx.pmt_id.instr_id,
        end_to_end_id=end_to_end_id,
        tx_id=tx.pmt_id.tx_id,
        uetr=uetr.lower() if uetr else None,
        command=PaymentCommand(
            debtor_account_id=_debtor(tx.dbtr_acct),
            creditor_proxy=proxy,
            creditor_account_id=creditor_account,
            amount=amount,
            currency=currency,
            quote_id=None,
            purpose=_purpose(tx),
            remittance_info=_remittance(tx),
            end_to_end_id=end_to_end_id,
        ),
    )


def _amount(tx: CreditTransferTransaction39) -> tuple[Decimal, Currency]:
    given = tx.instd_amt if tx.instd_amt is not None else tx.intr_bk_sttlm_amt
    try:
        currency = Currency(given.ccy)
    except ValueError as exc:
        raise Unsupported(
            f"currency {given.ccy} is not carried by the link (HKD, CNY)", code="CURRENCY_NOT_SUPPORTED"
        ) from exc
    try:
        return parse_amount(f"{given.value:f}", currency), currency
    except InvalidAmount as exc:
        raise Unsupported(str(exc)) from exc


def _other_id(account: CashAccount38 | None) -> str | None:
    if account is None or account.id.othr is None:
        return None
    return str(account.id.othr.id)


def _debtor(account: CashAccount38 | None) -> str:
    found = _other_id(account)
    if found is None or found == NOT_PROVIDED:
        raise Unsupported("DbtrAcct/Id/Othr/Id must name the debtor account (IBAN is not used by the link)")
    return found


def _creditor(account: CashAccount38 | None) -> tuple[str | None, str | None]:
    if account is None:
        raise Unsupported("CdtrAcct is required: a proxy (CdtrAcct/Prxy) or an account (CdtrAcct/Id/Othr/Id)")
    if account.prxy is not None:
        kind = account.prxy.tp
        if kind is not None and not (
            (kind.cd is not None and kind.cd in MOBILE_PROXY_CODES) or kind.prtry == "MOBILE"
        ):
            raise Unsupported(
                f"proxy type {kind.cd or kind.prtry} is not supported; use a mobile number (TELE)",
                code="PROXY_TYPE_NOT_SUPPORTED",
            )
        return account.prxy.id, None
    found = _other_id(account)
    if found is None or found == NOT_PROVIDED:
        raise Unsupported("CdtrAcct needs Prxy/Id (mobile number) or Id/Othr/Id (account)")
    return None, found


def _purpose(tx: CreditTransferTransaction39) -> Purpose:
    """Purp/Cd (an ISO 20022 code: FAMI) or Purp/Prtry (a name: FAMILY_SUPPORT), read alike."""
    purpose = tx.purp.cd or tx.purp.prtry if tx.purp is not None else None
    if not purpose:
        raise Unsupported("Purp/Cd or Purp/Prtry is required: Payment Connect needs a remittance purpose")
    try:
        return Purpose.read(str(purpose))
    except ValueError as exc:
        codes = ", ".join(f"{p.iso_code} ({p})" for p in Purpose)
        raise Unsupported(f"Purp {purpose!r} is not a purpose of the link: use one of {codes}") from exc


def _remittance(tx: CreditTransferTransaction39) -> str | None:
    if tx.rmt_inf is None or not tx.rmt_inf.ustrd:
        return None
    text = " ".join(line.strip() for line in tx.rmt_inf.ustrd if line.strip())
    if len(text) > MAX_REMITTANCE:
        raise Unsupported(f"RmtInf/Ustrd carries at most {MAX_REMITTANCE} characters in all")
    return text or None

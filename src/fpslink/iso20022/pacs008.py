"""pacs.008 (FI-to-FI customer credit transfer), .08 to .13, read into the payments service's command.

The versions differ in parts the link does not read (addresses, agents' identifiers, new optional
elements), so one reading serves them all. What is mapped:

    GrpHdr/MsgId                          the default idempotency key (pacs.008/<MsgId>, and
                                          pacs.008/<MsgId>/<n> for transaction n of several)
    GrpHdr/NbOfTxs                        the number of CdtTrfTxInf (01 is 1), at most the
                                          setting FPSLINK_ISO20022_MAX_TRANSACTIONS; each is
                                          read on its own and becomes a payment of its own
    CdtTrfTxInf/PmtId/EndToEndId          end_to_end_id ("NOTPROVIDED" means none)
    CdtTrfTxInf/PmtId/UETR                echoed as OrgnlUETR; the gateway still gives the payment
                                          its own payment_id
    IntrBkSttlmAmt (+Ccy)                 amount and currency (which amount is fixed, as in JSON);
                                          InstdAmt and the charges must agree with it
                                          (`consistency`, the link's charging rule)
    DbtrAcct/Id/Othr/Id                   debtor_account_id
    the creditor                          a mobile number (proxy) or an account, read as
                                          `creditor` says, in its order of precedence
    Purp/Cd or Purp/Prtry                 purpose, by ISO code (FAMI) or name (FAMILY_SUPPORT);
                                          the link's default purpose when absent
    RmtInf/Ustrd                          remittance_info (joined by spaces, at most 140 characters)

and, beside the payment, what it was sent with (`details.Details`): the references, Purp as written,
every Ustrd line, every Strd (at most 10, each at most 10,000 characters as XML) and InstdAmt.

A schema-valid message outside these rules is `Refused` with the ISO 20022 status reason that fits:
the whole message for what is wrong with its group (NbOfTxs), else each transaction on its own, so
that one transaction's refusal leaves the others to be paid.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fpslink.directory.phones import InvalidProxy, normalize_mobile
from fpslink.iso20022 import inbound as wire
from fpslink.iso20022 import schema
from fpslink.iso20022.details import MAX_STRUCTURED, MAX_STRUCTURED_CHARS, Details
from fpslink.iso20022.inbound import MAX_TRANSACTIONS, Inbound, Reason, Refused, Transaction
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
    """Read, schema-check and map a message of one transaction (its first, if it has more); raises
    MalformedMessage or Refused."""
    first = credit_transfers(wire.read(xml), default_purpose=default_purpose)[0]
    if isinstance(first, Refused):
        raise first
    return first


def credit_transfers(
    message: Inbound,
    *,
    default_purpose: Purpose = DEFAULT_PURPOSE,
    max_transactions: int = MAX_TRANSACTIONS,
) -> list[CreditTransfer | Refused]:
    """Apply the link's rules to a schema-valid pacs.008: each transaction mapped, or its refusal
    (with its ISO code), in the message's order; Refused, for the whole message, when NbOfTxs is
    not the number of transactions or that number is over `max_transactions`."""
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
    if len(transactions) > max_transactions:
        text = (
            f"the message carries {len(transactions)} CdtTrfTxInf: the link takes at most "
            f"{max_transactions} in one message; send the rest in another"
        )
        raise Refused([Reason("AM18", text)], original=original)
    found: list[CreditTransfer | Refused] = []
    for tx in transactions:
        try:
            found.append(_credit_transfer(message, header.msg_id, tx, default_purpose))
        except Refused as refused:
            found.append(refused)
    return found


def _credit_transfer(message: Inbound, msg_id: str, tx: Any, default_purpose: Purpose) -> CreditTransfer:
    original = message.original
    ids = references(tx)

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
    proxy, creditor_account = creditor(tx, refuse)
    details = _details(message, msg_id, tx, ids, refuse)
    return CreditTransfer(
        msg_id=msg_id,
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
            details=details,
        ),
        message_name=message.name,
        original=original,
    )


def _details(message: Inbound, msg_id: str, tx: Any, ids: Transaction, refuse: Refuse) -> Details:
    """What the transaction was sent with beyond the payment, as sent."""
    purpose, remittance, instructed = tx.purp, tx.rmt_inf, tx.instd_amt
    namespace: str = type(message.document).Meta.namespace
    structured = () if remittance is None else remittance.strd
    if len(structured) > MAX_STRUCTURED:
        raise refuse("CH15", f"RmtInf carries at most {MAX_STRUCTURED} Strd")
    written = tuple(schema.element(part, "Strd", namespace) for part in structured)
    if any(len(text) > MAX_STRUCTURED_CHARS for text in written):
        raise refuse("CH15", f"RmtInf/Strd carries at most {MAX_STRUCTURED_CHARS} characters (as XML) each")
    return Details(
        message_name=message.name,
        msg_id=msg_id,
        instr_id=ids.instr_id,
        end_to_end_id=ids.end_to_end_id,
        tx_id=ids.tx_id,
        uetr=ids.uetr,
        purpose_code=None if purpose is None else purpose.cd,
        purpose_proprietary=None if purpose is None else purpose.prtry,
        unstructured=() if remittance is None else tuple(remittance.ustrd),
        structured=written,
        instructed_amount=None if instructed is None else instructed.value,
        instructed_currency=None if instructed is None else instructed.ccy,
    )


def references(tx: Any) -> Transaction:
    """The references of a transaction, which every report about it echoes."""
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
    """The payment's amount is what is settled: IntrBkSttlmAmt (`consistency` checks InstdAmt and the
    charges against it)."""
    given = tx.intr_bk_sttlm_amt
    where = "IntrBkSttlmAmt"
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


MSISDN: Final = "MSISDN"
"""The identification scheme of a mobile number (Mojaloop and others write SchmeNm/Prtry MSISDN)."""


@dataclass(frozen=True, slots=True)
class Mobile:
    """A mobile number the message gives for the creditor, and where."""

    path: str
    number: str


def creditor(tx: Any, refuse: Refuse) -> tuple[str | None, str | None]:
    """(proxy, account) of the creditor, in this order of precedence:

    1. the creditor's account: `CdtrAcct/Prxy/Id` (a mobile number), `CdtrAcct/Id/Othr/Id` with scheme
       MSISDN (a mobile number), else `CdtrAcct/Id/Othr/Id` (an account). Prxy and an MSISDN account
       id must be the same number.
    2. only when the account names neither (no CdtrAcct, or Othr/Id NOTPROVIDED): the creditor's own
       mobile number, `Cdtr/Id/PrvtId|OrgId/Othr/Id` with scheme MSISDN and `Cdtr/CtctDtls/MobNb`,
       which must then be the same number. When the account names the creditor, these are contact
       details and are not read.

    Numbers are compared in E.164; numbers that disagree, and a number that is not a valid mobile
    number, are refused BE23 naming their paths."""
    account = tx.cdtr_acct
    account_numbers = [m for m in (_proxy(account, refuse), _msisdn_account(account)) if m is not None]
    if account_numbers:
        return _one_number(account_numbers, refuse), None
    found = _other_id(account)
    if found is not None and found != NOT_PROVIDED:
        return None, found
    party_numbers = _party_numbers(tx.cdtr)
    if party_numbers:
        return _one_number(party_numbers, refuse), None
    if account is None:
        raise refuse(
            "AC03",
            "CdtrAcct is required: a proxy (CdtrAcct/Prxy), an account (Id/Othr/Id), or the "
            "creditor's mobile number (Cdtr/CtctDtls/MobNb)",
        )
    raise refuse("AC03", "CdtrAcct needs Prxy/Id (a mobile number) or Id/Othr/Id (an account)")


def _proxy(account: Any, refuse: Refuse) -> Mobile | None:
    if account is None or account.prxy is None:
        return None
    kind = account.prxy.tp
    mobile = kind is None or (kind.cd is not None and kind.cd in MOBILE_PROXY_CODES) or kind.prtry == "MOBILE"
    if not mobile:
        named = kind.cd or kind.prtry
        raise refuse("BE23", f"CdtrAcct/Prxy/Tp {named} is not supported; use a mobile number (TELE)")
    return Mobile("CdtrAcct/Prxy/Id", str(account.prxy.id))


def _is_msisdn(scheme: Any) -> bool:
    return scheme is not None and str(scheme.cd or scheme.prtry or "").upper() == MSISDN


def _msisdn_account(account: Any) -> Mobile | None:
    if account is None or account.id is None or account.id.othr is None:
        return None
    other = account.id.othr
    return Mobile("CdtrAcct/Id/Othr/Id", str(other.id)) if _is_msisdn(other.schme_nm) else None


def _party_numbers(party: Any) -> list[Mobile]:
    found: list[Mobile] = []
    ident = party.id if party is not None else None
    for kind, group in (("PrvtId", ident and ident.prvt_id), ("OrgId", ident and ident.org_id)):
        others = group.othr if group else []
        for number, other in enumerate(others, start=1):
            if _is_msisdn(other.schme_nm):
                shown = "Othr" if len(others) == 1 else f"Othr[{number}]"
                found.append(Mobile(f"Cdtr/Id/{kind}/{shown}/Id", str(other.id)))
    contact = party.ctct_dtls if party is not None else None
    if contact is not None and contact.mob_nb:
        found.append(Mobile("Cdtr/CtctDtls/MobNb", str(contact.mob_nb)))
    return found


def _one_number(numbers: list[Mobile], refuse: Refuse) -> str:
    """The number the places agree on (as first written); BE23 if one is not a mobile number or
    they name different ones."""
    first, e164 = numbers[0], ""
    for mobile in numbers:
        try:
            normal = normalize_mobile(mobile.number)
        except InvalidProxy as exc:
            raise refuse("BE23", f"{mobile.path}: {exc}") from exc
        if e164 and normal != e164:
            raise refuse(
                "BE23",
                f"{first.path} {first.number} and {mobile.path} {mobile.number} name different "
                "mobile numbers: give the creditor's number once, or the same number in each place",
            )
        e164 = normal
    return first.number


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

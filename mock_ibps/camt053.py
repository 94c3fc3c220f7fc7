"""The IBPS statement of a business date as ISO 20022 camt.053.001.08 (BankToCustomerStatement).

A bank statement books by posting, not by creation: an entry belongs to business date D (UTC+8) when
its transfer was posted within D, so that for every account

    OPBD (posted before D) + booked credits - booked debits = CLBD (posted before D+1).

Transfers created within D and still pending are shown as PDNG entries; they move no balance and are
outside TxsSummry. Voided transfers and abort tombstones moved nothing and are left out. Balances are
derived from the postings, since the link and funding accounts carry no cached balance, and are read
in the same snapshot as the entries.

By default the statement is that of the link settlement account `IBPS-LINK-CNY`, which stands for FPS:
every cross-border leg passes through it. `participant_id` asks for one bank's customer accounts
instead. A message holds at most MAX_CAMT053_PAGE entries; the rest follow with `after=<seq>`, given
in the `Fpslink-Next-After` header. Every page repeats each account's day balances and totals, so any
page can be checked on its own.

An entry of a payment that came as ISO 20022 (its prepare carried `references`, kept in
`transfer_references`) carries the debtor bank's references (MsgId, InstrId, EndToEndId, UETR, TxId;
the link's payment id in ClrSysRef), the amount it instructed with the conversion (InstdAmt with
CcyXchg) beside the amount this entry moved (TxAmt), its purpose and its remittance: every Ustrd, and
every Strd this version's model can hold (a newer pacs.008's Strd that does not fit is left out rather
than written wrong).

This module builds the message with pyiso20022's models and xsdata's serializer; the gateway's own
ISO 20022 code is not imported, as mock_ibps stands alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final
from xml.etree import ElementTree

from fastapi import APIRouter, Depends, Query, Request, Response
from pyiso20022.camt.camt_053_001_08 import (
    AccountIdentification4Choice,
    AccountStatement9,
    ActiveOrHistoricCurrencyAndAmount,
    AmountAndCurrencyExchange3,
    AmountAndCurrencyExchangeDetails3,
    AmountAndDirection35,
    BalanceType10Choice,
    BalanceType13,
    BankToCustomerStatementV08,
    BankTransactionCodeStructure4,
    BankTransactionCodeStructure5,
    BankTransactionCodeStructure6,
    CashAccount39,
    CashBalance8,
    CreditDebitCode,
    CurrencyExchange5,
    DateAndDateTime2Choice,
    DateTimePeriod1,
    Document,
    EntryDetails9,
    EntryStatus1Choice,
    EntryTransaction10,
    GenericAccountIdentification1,
    GroupHeader81,
    NumberAndSumOfTransactions1,
    NumberAndSumOfTransactions4,
    Pagination1,
    ProprietaryBankTransactionCodeStructure1,
    Purpose2Choice,
    RemittanceInformation16,
    ReportEntry10,
    StructuredRemittanceInformation16,
    TotalTransactions6,
    TransactionReferences6,
)
from sqlalchemy import and_, case, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from xsdata.exceptions import ParserError
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.parsers.handlers import XmlEventHandler
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.formats.dataclass.serializers.writers import XmlEventWriter
from xsdata.models.datatype import XmlDate, XmlDateTime

from ibps_wire.amounts import format_amount
from ibps_wire.schemas import NEXT_AFTER_HEADER
from mock_ibps.api import FaultsDep, require_token
from mock_ibps.domain import TransferKind, TransferStatus, utc
from mock_ibps.errors import AccountNotFound, ParticipantNotFound
from mock_ibps.faults import Call
from mock_ibps.models import LINK_ACCOUNT_ID, accounts, participants, transfer_references, transfers
from mock_ibps.repository import REFERENCE_COLUMNS
from mock_ibps.statement import BUSINESS_TZ, KeptDate, business_day_bounds

MESSAGE_NAME: Final = "camt.053.001.08"
NAMESPACE: Final = f"urn:iso:std:iso:20022:tech:xsd:{MESSAGE_NAME}"
MEDIA_TYPE: Final = "application/xml"
MAX_STATEMENT_ACCOUNTS: Final = 1_000
"""One Stmt per account: bounds the accounts of one bank that a single message may carry."""
MAX_CAMT053_PAGE: Final = 10_000
"""Serialising through the generated models costs about a millisecond per entry, so XML pages are
smaller than the JSON statement's."""
DEFAULT_CAMT053_PAGE: Final = 1_000
MAX_PAGE_NUMBER: Final = 99_999
NOT_PROVIDED: Final = "NOTPROVIDED"
ISSUER: Final = "MOCK-IBPS"
UETR_PATTERN: Final = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}")
MAX_ID_LENGTH: Final = 35
MAX_NAME_LENGTH: Final = 70

BOOKED: Final = "BOOK"
PENDING: Final = "PDNG"

# ISO 20022 bank transaction codes (domain, family, sub-family) by ledger kind: a northbound leg is a
# cross-border credit transfer IBPS receives, a southbound leg one it issues; an opening balance is a
# miscellaneous credit (or, on the funding account, debit) operation.
_PAYMENT_CODES: Final = {
    TransferKind.CREDIT.value: ("PMNT", "RCDT", "XBCT"),
    TransferKind.DEBIT.value: ("PMNT", "ICDT", "XBCT"),
}
_OPENING_CODES: Final = {
    CreditDebitCode.CRDT: ("ACMT", "MCOP", "OTHR"),
    CreditDebitCode.DBIT: ("ACMT", "MDOP", "OTHR"),
}

_PARSER: Final = XmlParser(
    config=ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True),
    handler=XmlEventHandler,
)
"""Reads a Strd into this statement's model, refusing what the model has no place for."""

# the native writer, named: xsdata would switch to lxml's where lxml is installed (the tests install it)
_SERIALIZER: Final = XmlSerializer(
    config=SerializerConfig(xml_declaration=True, encoding="UTF-8"), writer=XmlEventWriter
)


@dataclass(frozen=True, slots=True)
class StatementAccount:
    account_id: str
    currency: str
    holder_name: str


@dataclass(frozen=True, slots=True)
class AccountTotals:
    """Posted movements of one account around a business date, in minor units."""

    opening_minor: int = 0
    credit_count: int = 0
    credit_minor: int = 0
    debit_count: int = 0
    debit_minor: int = 0

    @property
    def closing_minor(self) -> int:
        return self.opening_minor + self.credit_minor - self.debit_minor


@dataclass(frozen=True, slots=True)
class EntryReferences:
    """What the debtor's bank sent with a payment that came as ISO 20022 (`transfer_references`)."""

    msg_id: str | None
    instr_id: str | None
    end_to_end_id: str | None
    tx_id: str | None
    uetr: str | None
    purpose_code: str | None
    purpose_proprietary: str | None
    unstructured: tuple[str, ...]
    structured: tuple[str, ...]
    instructed_amount: str
    instructed_currency: str
    source_currency: str | None
    target_currency: str | None
    rate: str | None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One transfer of the page; the statement shows it on each selected account it touches."""

    seq: int
    payment_id: str | None
    kind: str
    debit_account_id: str
    credit_account_id: str
    currency: str
    amount_minor: int
    status: str
    resolved_at: datetime | None
    references: EntryReferences | None = None


@dataclass(frozen=True, slots=True)
class StatementPage:
    """What one message says: the accounts, their day totals, this page's entries and the cursor."""

    business_date: date
    accounts: Sequence[StatementAccount]
    totals: dict[str, AccountTotals]
    entries: Sequence[LedgerEntry]
    page_number: int
    next_after: int | None
    created_at: datetime


# --- queries ------------------------------------------------------------------------------------


def _account_scope(participant_id: str | None) -> Any:
    """The selected account ids, as a subquery the transfer queries can filter on."""
    if participant_id is None:
        return select(accounts.c.account_id).where(accounts.c.account_id == LINK_ACCOUNT_ID)
    return select(accounts.c.account_id).where(accounts.c.participant_id == participant_id)


async def statement_accounts(conn: AsyncConnection, participant_id: str | None) -> list[StatementAccount]:
    """The accounts the statement covers, by id; at most MAX_STATEMENT_ACCOUNTS + 1 (to detect more)."""
    if participant_id is not None:
        known = await conn.scalar(
            select(participants.c.participant_id).where(participants.c.participant_id == participant_id)
        )
        if known is None:
            detail = f"participant {participant_id} is not known"
            raise ParticipantNotFound(detail, participant_id=participant_id)
    rows = await conn.execute(
        select(accounts.c.account_id, accounts.c.currency, accounts.c.holder_name)
        .where(accounts.c.account_id.in_(_account_scope(participant_id)))
        .order_by(accounts.c.account_id)
        .limit(MAX_STATEMENT_ACCOUNTS + 1)
    )
    return [StatementAccount(row.account_id, row.currency, row.holder_name) for row in rows]


async def account_totals(
    conn: AsyncConnection, participant_id: str | None, business_date: date
) -> dict[str, AccountTotals]:
    """Opening balance and the day's booked credits and debits of every selected account, in one query."""
    start, end = business_day_bounds(business_date)
    scope = _account_scope(participant_id)
    posted = transfers.c.status == TransferStatus.POSTED.value
    before_end = transfers.c.resolved_at < end
    moves = union_all(
        select(
            transfers.c.credit_account_id.label("account_id"),
            transfers.c.amount_minor.label("signed_minor"),
            transfers.c.resolved_at.label("resolved_at"),
        ).where(posted, before_end, transfers.c.credit_account_id.in_(scope)),
        select(
            transfers.c.debit_account_id.label("account_id"),
            (-transfers.c.amount_minor).label("signed_minor"),
            transfers.c.resolved_at.label("resolved_at"),
        ).where(posted, before_end, transfers.c.debit_account_id.in_(scope)),
    ).subquery("moves")
    earlier = moves.c.resolved_at < start
    in_day = moves.c.resolved_at >= start
    credit = and_(in_day, moves.c.signed_minor > 0)
    debit = and_(in_day, moves.c.signed_minor < 0)
    rows = await conn.execute(
        select(
            moves.c.account_id,
            func.sum(case((earlier, moves.c.signed_minor), else_=0)),
            func.sum(case((credit, 1), else_=0)),
            func.sum(case((credit, moves.c.signed_minor), else_=0)),
            func.sum(case((debit, 1), else_=0)),
            func.sum(case((debit, -moves.c.signed_minor), else_=0)),
        ).group_by(moves.c.account_id)
    )
    return {row[0]: AccountTotals(*(int(value or 0) for value in row[1:])) for row in rows}


async def page_entries(
    conn: AsyncConnection, participant_id: str | None, business_date: date, after: int, limit: int
) -> list[LedgerEntry]:
    """Entries with seq > `after` in seq order, at most `limit` + 1 so the caller knows whether more follow.

    Posted transfers belong to the day of their posting, pending ones to the day of their creation.
    """
    start, end = business_day_bounds(business_date)
    scope = _account_scope(participant_id)
    sent = transfer_references
    rows = await conn.execute(
        select(
            transfers.c.seq,
            transfers.c.payment_id,
            transfers.c.kind,
            transfers.c.debit_account_id,
            transfers.c.credit_account_id,
            transfers.c.currency,
            transfers.c.amount_minor,
            transfers.c.status,
            transfers.c.resolved_at,
            *(sent.c[name].label(f"ref_{name}") for name in REFERENCE_COLUMNS[1:]),
        )
        .select_from(transfers.outerjoin(sent, sent.c.payment_id == transfers.c.payment_id))
        .where(
            transfers.c.seq > after,
            or_(
                and_(
                    transfers.c.status == TransferStatus.POSTED.value,
                    transfers.c.resolved_at >= start,
                    transfers.c.resolved_at < end,
                ),
                and_(
                    transfers.c.status == TransferStatus.PENDING.value,
                    transfers.c.created_at >= start,
                    transfers.c.created_at < end,
                ),
            ),
            or_(transfers.c.debit_account_id.in_(scope), transfers.c.credit_account_id.in_(scope)),
        )
        .order_by(transfers.c.seq)
        .limit(limit + 1)
    )
    return [
        LedgerEntry(
            seq=row.seq,
            payment_id=row.payment_id,
            kind=row.kind,
            debit_account_id=row.debit_account_id,
            credit_account_id=row.credit_account_id,
            currency=row.currency,
            amount_minor=row.amount_minor,
            status=row.status,
            resolved_at=None if row.resolved_at is None else utc(row.resolved_at),
            references=_references(row),
        )
        for row in rows
    ]


def _references(row: Any) -> EntryReferences | None:
    if row.ref_instructed_amount is None:  # no row: the payment did not come as ISO 20022
        return None
    return EntryReferences(
        msg_id=row.ref_msg_id,
        instr_id=row.ref_instr_id,
        end_to_end_id=row.ref_end_to_end_id,
        tx_id=row.ref_tx_id,
        uetr=row.ref_uetr,
        purpose_code=row.ref_purpose_code,
        purpose_proprietary=row.ref_purpose_proprietary,
        unstructured=tuple(json.loads(row.ref_unstructured)),
        structured=tuple(json.loads(row.ref_structured)),
        instructed_amount=row.ref_instructed_amount,
        instructed_currency=row.ref_instructed_currency,
        source_currency=row.ref_source_currency,
        target_currency=row.ref_target_currency,
        rate=row.ref_rate,
    )


async def read_page(
    conn: AsyncConnection,
    *,
    participant_id: str | None,
    business_date: date,
    after: int,
    limit: int,
    page_number: int,
    now: datetime,
) -> StatementPage:
    """Accounts, totals and entries of one page, read on one connection (one snapshot); `now` (IBPS's
    time) dates the message."""
    selected = await statement_accounts(conn, participant_id)
    if not selected:
        raise AccountNotFound(
            f"participant {participant_id} has no accounts to report", participant_id=str(participant_id)
        )
    if len(selected) > MAX_STATEMENT_ACCOUNTS:
        raise AccountNotFound(
            f"participant {participant_id} has more than {MAX_STATEMENT_ACCOUNTS} accounts;"
            " a statement covers at most that many",
            participant_id=str(participant_id),
        )
    totals = await account_totals(conn, participant_id, business_date)
    entries = await page_entries(conn, participant_id, business_date, after, limit)
    more = len(entries) > limit
    entries = entries[:limit]
    return StatementPage(
        business_date=business_date,
        accounts=selected,
        totals=totals,
        entries=entries,
        page_number=page_number,
        next_after=entries[-1].seq if more else None,
        created_at=now,
    )


# --- the message ----------------------------------------------------------------------------------


def _decimal(minor: int) -> Decimal:
    """Minor units as a two-place Decimal, built from text so no binary rounding can enter."""
    return Decimal(format_amount(minor))


def _amount(minor: int, currency: str) -> Any:
    return ActiveOrHistoricCurrencyAndAmount(value=_decimal(abs(minor)), ccy=currency)


def _local(moment: datetime) -> Any:
    return XmlDateTime.from_datetime(utc(moment).astimezone(BUSINESS_TZ))


def _stamp(moment: datetime) -> Any:
    """A UTC+8 timestamp to the second, as statements are read by people too."""
    return _local(moment.replace(microsecond=0))


def _statement_id(account_id: str, business_date: date) -> str:
    text = f"{business_date:%Y%m%d}-{account_id}"
    if len(text) <= MAX_ID_LENGTH:
        return text
    return f"{business_date:%Y%m%d}-" + hashlib.sha256(account_id.encode()).hexdigest()[: MAX_ID_LENGTH - 9]


def _balance(code: str, minor: int, currency: str, business_date: date) -> Any:
    return CashBalance8(
        tp=BalanceType13(cd_or_prtry=BalanceType10Choice(cd=code)),
        amt=_amount(minor, currency),
        cdt_dbt_ind=CreditDebitCode.DBIT if minor < 0 else CreditDebitCode.CRDT,
        dt=DateAndDateTime2Choice(dt=XmlDate.from_date(business_date)),
    )


def _summary(totals: AccountTotals) -> Any:
    net = totals.credit_minor - totals.debit_minor
    return TotalTransactions6(
        ttl_ntries=NumberAndSumOfTransactions4(
            nb_of_ntries=str(totals.credit_count + totals.debit_count),
            sum=_decimal(totals.credit_minor + totals.debit_minor),
            ttl_net_ntry=AmountAndDirection35(
                amt=_decimal(abs(net)),
                cdt_dbt_ind=CreditDebitCode.DBIT if net < 0 else CreditDebitCode.CRDT,
            ),
        ),
        ttl_cdt_ntries=NumberAndSumOfTransactions1(
            nb_of_ntries=str(totals.credit_count), sum=_decimal(totals.credit_minor)
        ),
        ttl_dbt_ntries=NumberAndSumOfTransactions1(
            nb_of_ntries=str(totals.debit_count), sum=_decimal(totals.debit_minor)
        ),
    )


def _transaction_code(kind: str, direction: Any) -> Any:
    domain, family, sub_family = _PAYMENT_CODES.get(kind) or _OPENING_CODES[direction]
    return BankTransactionCodeStructure4(
        domn=BankTransactionCodeStructure5(
            cd=domain, fmly=BankTransactionCodeStructure6(cd=family, sub_fmly_cd=sub_family)
        ),
        prtry=ProprietaryBankTransactionCodeStructure1(cd=kind, issr=ISSUER),
    )


def _entry(entry: LedgerEntry, account_id: str) -> Any:
    direction = CreditDebitCode.CRDT if entry.credit_account_id == account_id else CreditDebitCode.DBIT
    booked = entry.status == TransferStatus.POSTED.value and entry.resolved_at is not None
    reference = str(entry.seq)
    details = _details(entry)
    resolved = entry.resolved_at
    return ReportEntry10(
        amt=_amount(entry.amount_minor, entry.currency),
        cdt_dbt_ind=direction,
        sts=EntryStatus1Choice(cd=BOOKED if booked else PENDING),
        bookg_dt=DateAndDateTime2Choice(dt_tm=_local(resolved)) if booked and resolved else None,
        val_dt=(
            DateAndDateTime2Choice(dt=XmlDate.from_date(utc(resolved).astimezone(BUSINESS_TZ).date()))
            if booked and resolved
            else None
        ),
        acct_svcr_ref=reference,
        bk_tx_cd=_transaction_code(entry.kind, direction),
        ntry_dtls=[EntryDetails9(tx_dtls=[details])],
    )


def _details(entry: LedgerEntry) -> Any:
    """The entry's transaction: the link's references, and for a payment that came as ISO 20022 the
    bank's (MsgId, InstrId, EndToEndId, TxId, UETR; the link's payment id in ClrSysRef, as its
    pacs.002 gave it), the amount instructed with the conversion (InstdAmt, CcyXchg) beside the
    amount moved here (TxAmt), the purpose and the remittance."""
    payment_id = entry.payment_id
    sent = entry.references
    if sent is None:
        is_uetr = payment_id is not None and UETR_PATTERN.fullmatch(payment_id) is not None
        refs = TransactionReferences6(
            end_to_end_id=NOT_PROVIDED,
            uetr=payment_id if is_uetr else None,
            clr_sys_ref=payment_id.replace("-", "") if payment_id and not is_uetr else None,
        )
        return EntryTransaction10(refs=refs)
    refs = TransactionReferences6(
        msg_id=sent.msg_id,
        instr_id=sent.instr_id,
        end_to_end_id=sent.end_to_end_id or NOT_PROVIDED,
        uetr=sent.uetr,
        tx_id=sent.tx_id,
        clr_sys_ref=None if payment_id is None else payment_id.replace("-", ""),
    )
    exchange = None
    if sent.source_currency and sent.target_currency and sent.rate:
        exchange = CurrencyExchange5(
            src_ccy=sent.source_currency,
            trgt_ccy=sent.target_currency,
            unit_ccy=sent.source_currency,
            xchg_rate=Decimal(sent.rate),
        )
    amounts = AmountAndCurrencyExchange3(
        instd_amt=AmountAndCurrencyExchangeDetails3(
            amt=ActiveOrHistoricCurrencyAndAmount(
                value=Decimal(sent.instructed_amount), ccy=sent.instructed_currency
            ),
            ccy_xchg=exchange,
        ),
        tx_amt=AmountAndCurrencyExchangeDetails3(amt=_amount(entry.amount_minor, entry.currency)),
    )
    purpose = None
    if sent.purpose_code or sent.purpose_proprietary:
        # a choice: the code when the bank gave one, else its proprietary purpose
        proprietary = None if sent.purpose_code else sent.purpose_proprietary
        purpose = Purpose2Choice(cd=sent.purpose_code, prtry=proprietary)
    structured = [found for found in map(_structured, sent.structured) if found is not None]
    remittance = None
    if sent.unstructured or structured:
        remittance = RemittanceInformation16(ustrd=list(sent.unstructured), strd=structured)
    return EntryTransaction10(refs=refs, amt_dtls=amounts, purp=purpose, rmt_inf=remittance)


def _structured(xml: str) -> Any | None:
    """A Strd as sent, read into this statement's version of it; None when it does not fit there (a
    newer pacs.008's Strd with elements camt.053.001.08 lacks)."""
    root = ElementTree.fromstring(xml)  # the wire refused any DTD: no entity can be declared
    for node in root.iter():
        node.tag = f"{{{NAMESPACE}}}{node.tag.rpartition('}')[2]}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a value this version cannot hold is a misfit too
            return _PARSER.parse(root, StructuredRemittanceInformation16)
    except (ParserError, ValueError, TypeError, Warning):
        return None


def build_document(page: StatementPage, *, message_id: str) -> Any:
    """The camt.053 Document of one page: a Stmt per account, an Ntry per transfer touching it."""
    day = page.business_date
    start, end = business_day_bounds(day)
    period = DateTimePeriod1(fr_dt_tm=_stamp(start), to_dt_tm=_stamp(end - timedelta(seconds=1)))
    created = _stamp(page.created_at)
    by_account: dict[str, list[Any]] = {account.account_id: [] for account in page.accounts}
    for entry in page.entries:
        for account_id in (entry.debit_account_id, entry.credit_account_id):
            if account_id in by_account:
                by_account[account_id].append(_entry(entry, account_id))
    statements = []
    for account in page.accounts:
        totals = page.totals.get(account.account_id, AccountTotals())
        statements.append(
            AccountStatement9(
                id=_statement_id(account.account_id, day),
                elctrnc_seq_nb=Decimal(f"{day:%Y%m%d}"),
                cre_dt_tm=created,
                fr_to_dt=period,
                acct=CashAccount39(
                    id=AccountIdentification4Choice(
                        othr=GenericAccountIdentification1(id=account.account_id)
                    ),
                    ccy=account.currency,
                    nm=account.holder_name[:MAX_NAME_LENGTH],
                ),
                bal=[
                    _balance("OPBD", totals.opening_minor, account.currency, day),
                    _balance("CLBD", totals.closing_minor, account.currency, day),
                ],
                txs_summry=_summary(totals),
                ntry=by_account[account.account_id],
            )
        )
    return Document(
        bk_to_cstmr_stmt=BankToCustomerStatementV08(
            grp_hdr=GroupHeader81(
                msg_id=message_id,
                cre_dt_tm=created,
                msg_pgntn=Pagination1(pg_nb=str(page.page_number), last_pg_ind=page.next_after is None),
            ),
            stmt=statements,
        )
    )


def render(page: StatementPage) -> bytes:
    """UTF-8 XML with the camt.053 namespace as the default one; MsgId is unique per message."""
    message_id = "IBPS" + uuid.uuid4().hex[: MAX_ID_LENGTH - 4]
    document = build_document(page, message_id=message_id)
    return _SERIALIZER.render(document, ns_map={None: NAMESPACE}).encode()


# --- the route ------------------------------------------------------------------------------------


def _reader(request: Request) -> AsyncEngine:
    """The ledger's reader: read-only and repeatable read, so entries and balances agree."""
    engine: AsyncEngine = request.app.state.ledger.reader
    return engine


router = APIRouter(prefix="/ibps/v1", dependencies=[Depends(require_token)])


@router.get(
    "/statements/{business_date}/camt053",
    summary="The statement of a UTC+8 business date as ISO 20022 camt.053.001.08",
    response_class=Response,
    responses={
        200: {
            "content": {MEDIA_TYPE: {}},
            "description": f"BkToCstmrStmt; `{NEXT_AFTER_HEADER}` names the `after` of the next page",
        }
    },
)
async def get_camt053(
    business_date: KeptDate,
    request: Request,
    faults: FaultsDep,
    participant_id: Annotated[
        str | None, Query(max_length=40, description="One bank's accounts instead of the link account")
    ] = None,
    after: Annotated[int, Query(ge=0, description="Return entries with seq greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CAMT053_PAGE)] = DEFAULT_CAMT053_PAGE,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE_NUMBER, description="Written to MsgPgntn/PgNb")] = 1,
) -> Response:
    """One page of the statement; the last page has LastPgInd true and no next-page header."""

    async def build() -> tuple[bytes, int | None]:
        async with _reader(request).connect() as conn:
            statement_page = await read_page(
                conn,
                participant_id=participant_id,
                business_date=business_date,
                after=after,
                limit=limit,
                page_number=page,
                now=request.app.state.clock.now(),
            )
        return await asyncio.to_thread(render, statement_page), statement_page.next_after

    scope = participant_id or LINK_ACCOUNT_ID
    content, next_after = await faults.run(
        Call.STATEMENT, f"{business_date.isoformat()}:camt053:{scope}:{after}", build
    )
    headers = {} if next_after is None else {NEXT_AFTER_HEADER: str(next_after)}
    return Response(content=content, media_type=MEDIA_TYPE, headers=headers)

"""Reading camt.053 statements in the mock_ibps tests: parsed by the schema's models, every statement
checked to add up, and flattened for comparison."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pyiso20022.camt.camt_053_001_08 import Document
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig

from fpslink.iso20022.schema import check
from mock_ibps.camt053 import NAMESPACE

LINK = "IBPS-LINK-CNY"
EXAMPLE = Path(__file__).with_name("camt053_example.xml")
PARSER = XmlParser(config=ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True))


def business_today() -> date:
    return datetime.now(UTC).astimezone(timezone(timedelta(hours=8))).date()


def parse(xml: bytes) -> Any:
    """The message as the camt.053.001.08 model; it must also pass every facet of the schema."""
    assert ET.fromstring(xml).tag == f"{{{NAMESPACE}}}Document"
    document = PARSER.from_bytes(xml, Document)
    assert check(document) == []
    return document


@dataclass(frozen=True)
class Entry:
    ref: int
    amount: Decimal
    direction: str
    status: str
    uetr: str | None
    codes: tuple[str, str, str, str]


@dataclass(frozen=True)
class Stmt:
    account_id: str
    opening: Decimal
    closing: Decimal
    credits: tuple[int, Decimal]
    debits: tuple[int, Decimal]
    entries: list[Entry]


def signed(balance: Any) -> Decimal:
    value: Decimal = balance.amt.value
    return -value if balance.cdt_dbt_ind.value == "DBIT" else value


def read(document: Any, business_date: date) -> dict[str, Stmt]:
    """Each Stmt flattened, checking what must hold of every statement on the way."""
    out = {}
    for stmt in document.bk_to_cstmr_stmt.stmt:
        balances = {bal.tp.cd_or_prtry.cd: bal for bal in stmt.bal}
        assert set(balances) == {"OPBD", "CLBD"}
        assert all(bal.dt.dt.to_date() == business_date for bal in stmt.bal)
        assert stmt.fr_to_dt.fr_dt_tm.to_datetime() == datetime(
            business_date.year, business_date.month, business_date.day, tzinfo=timezone(timedelta(hours=8))
        )
        summary = stmt.txs_summry
        credits = (int(summary.ttl_cdt_ntries.nb_of_ntries), summary.ttl_cdt_ntries.sum)
        debits = (int(summary.ttl_dbt_ntries.nb_of_ntries), summary.ttl_dbt_ntries.sum)
        opening, closing = signed(balances["OPBD"]), signed(balances["CLBD"])
        assert opening + credits[1] - debits[1] == closing
        assert int(summary.ttl_ntries.nb_of_ntries) == credits[0] + debits[0]
        assert summary.ttl_ntries.sum == credits[1] + debits[1]
        entries = []
        for ntry in stmt.ntry:
            (details,) = ntry.ntry_dtls
            (tx,) = details.tx_dtls
            assert tx.refs.end_to_end_id == "NOTPROVIDED"
            assert ntry.amt.ccy == stmt.acct.ccy == "CNY"
            if ntry.sts.cd == "BOOK":
                assert ntry.bookg_dt.dt_tm.to_datetime().utcoffset() == timedelta(hours=8)
                assert ntry.val_dt.dt.to_date() == business_date
            else:
                assert ntry.bookg_dt is None
            domain = ntry.bk_tx_cd.domn
            codes = (domain.cd, domain.fmly.cd, domain.fmly.sub_fmly_cd, ntry.bk_tx_cd.prtry.cd)
            entries.append(
                Entry(
                    int(ntry.acct_svcr_ref),
                    ntry.amt.value,
                    ntry.cdt_dbt_ind.value,
                    ntry.sts.cd,
                    tx.refs.uetr,
                    codes,
                )
            )
        assert [e.ref for e in entries] == sorted(e.ref for e in entries)
        out[stmt.acct.id.othr.id] = Stmt(stmt.acct.id.othr.id, opening, closing, credits, debits, entries)
    return out


async def statement(
    http: httpx.AsyncClient, business_date: date, **params: Any
) -> tuple[httpx.Response, Any, dict[str, Stmt]]:
    response = await http.get(f"/ibps/v1/statements/{business_date.isoformat()}/camt053", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    document = parse(response.content)
    return response, document, read(document, business_date)

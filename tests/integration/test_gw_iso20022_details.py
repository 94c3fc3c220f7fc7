"""Nothing a bank sends in a pacs.008 is lost: its references, purpose, unstructured and structured
remittance and InstdAmt are kept with each payment, shown on it (API and console), sent in its
webhook events, carried in the IBPS statement (camt.053, with the amounts before and after
conversion) and listed in the reconciliation report, so that a bank matches by its own references.
This module has databases of its own (its IBPS statement and its reconciliation day hold only its
payments), at the real time of day, as the reconciliation tests are."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
from gw_support import IBPS_TOKEN, Harness, IsoWorld, iso_world, several
from iso20022_corpus import XSD_DIR, official_verdict
from recon_support import ReconStack, ibps_engine, real_time, recon_stack, reconcile
from sqlalchemy import delete, insert, select
from webhook_support import Receiver, until, webhook_receiver

from fpslink.iso20022 import pacs002
from mock_ibps.models import transfers as ibps_transfers

EXAMPLES = Path(__file__).parent / "iso20022_examples"
PAY = "/v1/iso20022/pacs.008"
XML = {"Content-Type": "application/xml"}
CAMT = "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.08}"
MSG_ID = "HARBOURHK20260622-000015"
E2E = "RF18539007547034"
SETTLED = '<IntrBkSttlmAmt Ccy="HKD">120.00</IntrBkSttlmAmt>'
CHARGES = (
    '<InstdAmt Ccy="HKD">125.00</InstdAmt><ChrgBr>SHAR</ChrgBr><ChrgsInf><Amt Ccy="HKD">5.00</Amt>'
    "<Agt><FinInstnId><BICFI>HRBRHKH0XXX</BICFI></FinInstnId></Agt></ChrgsInf>"
)
LINES = "<Ustrd>Invoice INV-2026-0345</Ustrd><Ustrd>for June</Ustrd>"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ReconStack]:
    async with recon_stack("iso_details", tmp_path_factory.mktemp("iso-details")) as made:
        yield made


@pytest.fixture
def receiver(harness: Harness) -> Iterator[Receiver]:
    with webhook_receiver() as got:
        harness.allow_webhooks(got.endpoint)
        yield got


def _message(world: IsoWorld) -> tuple[bytes, str, str]:
    """The structured-remittance sample (pacs.008.001.11), today's, as two transactions: the
    sample's with an InstdAmt of 125.00 less 5.00 of charges and two Ustrd lines, and one of 30.00
    with a Ustrd line and no Strd; with its MsgId and the first transaction's UETR."""
    msg_id, uetr = f"M-{uuid.uuid4().hex[:20]}", str(uuid.uuid4())
    text = (EXAMPLES / "pacs008_v11_structured_remittance.xml").read_text()
    text = text.replace("<IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt>", "").replace(MSG_ID, msg_id)
    text = text.replace("<CtrlSum>120.00</CtrlSum>", "<CtrlSum>150.00</CtrlSum>")
    strd = text[text.index("<Strd>") : text.index("</Strd>") + len("</Strd>")]
    text = several(
        text,
        {
            "0b1e5d3f-7a29-4c6e-8f41-3d2c9a6b5e70": uetr,
            "<ChrgBr>SLEV</ChrgBr>": CHARGES,
            "<RmtInf>": f"<RmtInf>{LINES}",
        },
        {
            strd: "<Ustrd>second</Ustrd>",
            "0b1e5d3f-7a29-4c6e-8f41-3d2c9a6b5e70": str(uuid.uuid4()),
            E2E: "E2E-SECOND",
            SETTLED: '<IntrBkSttlmAmt Ccy="HKD">30.00</IntrBkSttlmAmt>',
            "<Cd>IVPT</Cd>": "<Cd>GIFT</Cd>",
        },
    )
    return world.fill(text).encode(), msg_id, uetr


async def _paid(h: Harness, world: IsoWorld) -> tuple[list[str], str, str]:
    """Send the message; the payment ids of its transactions, its MsgId and first UETR."""
    body, msg_id, uetr = _message(world)
    response = await h.http.post(PAY, content=body, headers={**world.hk.headers, **XML})
    assert response.status_code == 201, response.text
    report = pacs002.parse(response.content).fito_fipmt_sts_rpt
    assert [t.tx_sts for t in report.tx_inf_and_sts] == ["ACSC", "ACSC"]
    ids = [str(uuid.UUID(t.clr_sys_ref)) for t in report.tx_inf_and_sts if t.clr_sys_ref]
    return ids, msg_id, uetr


async def test_what_the_bank_sent_is_kept_and_shown_on_the_payment(harness: Harness) -> None:
    """Structured remittance was dropped; the UETR, TxId and InstdAmt were kept nowhere on the payment."""
    h = harness
    await real_time(h)
    world = await iso_world(h)
    (first, second), msg_id, uetr = await _paid(h, world)
    payment = (await h.http.get(f"/v1/payments/{first}", headers=world.hk.headers)).json()
    assert payment["end_to_end_id"] == E2E and payment["purpose"] == "INVOICE"
    assert payment["remittance_info"] == "Invoice INV-2026-0345 for June"
    sent = payment["iso20022"]
    assert {k: sent[k] for k in ("message_name", "msg_id", "instr_id", "end_to_end_id", "tx_id", "uetr")} == {
        "message_name": "pacs.008.001.11",
        "msg_id": msg_id,
        "instr_id": "HARBOURHK-INSTR-000015",
        "end_to_end_id": E2E,
        "tx_id": None,
        "uetr": uetr,
    }
    assert sent["purpose"] == {"code": "IVPT", "proprietary": None}
    assert (sent["instructed_amount"], sent["instructed_currency"]) == ("125.00", "HKD")
    assert sent["remittance"]["unstructured"] == ["Invoice INV-2026-0345", "for June"]
    (strd,) = sent["remittance"]["structured"]
    assert strd.startswith('<Strd xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.11"><RfrdDocInf>')
    assert "<Nb>INV-2026-0345</Nb>" in strd and f"<Ref>{E2E}</Ref>" in strd
    assert '<DuePyblAmt Ccy="HKD">120.00</DuePyblAmt>' in strd
    other = (await h.http.get(f"/v1/payments/{second}", headers=world.hk.headers)).json()["iso20022"]
    assert (other["end_to_end_id"], other["purpose"]["code"]) == ("E2E-SECOND", "GIFT")
    assert other["remittance"] == {"unstructured": ["second"], "structured": []}
    assert other["instructed_amount"] is None
    # the creditor's bank sees it too; a JSON payment has no such object
    cn = (await h.http.get(f"/v1/payments/{first}", headers=h.operator)).json()
    assert cn["iso20022"] == sent
    number = f"+{world.number[1:].replace('-', '')}"
    json_paid = await h.pay(world.hk, debtor=world.hk_account, proxy=number, amount="1.00", currency="HKD")
    assert "iso20022" not in json_paid.json()
    looked_up = (
        await h.http.get(f"/v1/payments/{json_paid.json()['payment_id']}", headers=h.operator)
    ).json()
    assert "iso20022" not in looked_up


async def test_the_console_shows_it(harness: Harness) -> None:
    h = harness
    await real_time(h)
    world = await iso_world(h)
    (first, _), msg_id, uetr = await _paid(h, world)
    transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as browser:
        login = await browser.post(
            "/console/login", data={"api_key": world.hk.api_key, "next": "/console/payments"}
        )
        assert login.status_code == 303, login.text
        page = await browser.get(f"/console/payments/{first}")
    assert page.status_code == 200, page.text
    assert 'id="iso20022"' in page.text and msg_id in page.text and uetr in page.text
    assert "INV-2026-0345" in page.text and "125.00 HKD" in page.text
    assert f"<OrgnlMsgId>{msg_id}</OrgnlMsgId>" in page.text.replace("&lt;", "<").replace("&gt;", ">")


@pytest.mark.settings(webhook_interval_s=0.05, webhook_backoff_s=1.0, webhook_timeout_s=2.0)
async def test_webhook_events_carry_it(harness: Harness, receiver: Receiver) -> None:
    h = harness
    await real_time(h)
    world = await iso_world(h)
    created = await h.http.post("/v1/webhooks", json={"url": receiver.base + "/hk"}, headers=world.hk.headers)
    assert created.status_code == 201, created.text
    (first, second), msg_id, uetr = await _paid(h, world)
    await until(lambda: len(receiver.on("/hk")) >= 2)
    events = {json.loads(r.body)["payment"]["payment_id"]: json.loads(r.body) for r in receiver.on("/hk")}
    sent = events[first]["payment"]["iso20022"]
    assert (sent["msg_id"], sent["uetr"], sent["end_to_end_id"]) == (msg_id, uetr, E2E)
    assert sent["remittance"]["unstructured"] == ["Invoice INV-2026-0345", "for June"]
    assert "<Ref>RF18539007547034</Ref>" in sent["remittance"]["structured"][0]
    assert events[second]["payment"]["iso20022"]["end_to_end_id"] == "E2E-SECOND"


async def _statement(stack: ReconStack, day: date, participant_id: str) -> bytes:
    async with httpx.AsyncClient(base_url=stack.ibps_url, timeout=30) as ibps:
        response = await ibps.get(
            f"/ibps/v1/statements/{day.isoformat()}/camt053",
            params={"participant_id": participant_id},
            headers={"Authorization": f"Bearer {IBPS_TOKEN}"},
        )
    assert response.status_code == 200, response.text
    return response.content


def _entry(statement: bytes, payment_id: str) -> ET.Element:
    root = ET.fromstring(statement)
    for entry in root.iter(f"{CAMT}Ntry"):
        if entry.findtext(f".//{CAMT}ClrSysRef") == payment_id.replace("-", ""):
            return entry
        if entry.findtext(f".//{CAMT}UETR") == payment_id:
            return entry
    raise AssertionError(f"no entry for {payment_id}")


async def test_the_ibps_statement_carries_the_banks_references_and_amounts(
    harness: Harness, stack: ReconStack
) -> None:
    """camt.053 gave EndToEndId NOTPROVIDED, the link's payment id as UETR, no FX amounts, no remittance."""
    h = harness
    today = await real_time(h)
    world = await iso_world(h)
    (first, second), msg_id, uetr = await _paid(h, world)
    number = f"+{world.number[1:].replace('-', '')}"
    json_paid = await h.pay(world.hk, debtor=world.hk_account, proxy=number, amount="1.00", currency="HKD")
    payment = (await h.http.get(f"/v1/payments/{first}", headers=world.hk.headers)).json()
    # the mainland bank's own statement: the credits to its customer
    participant = await _participant_of(h, payment["creditor_account_id"])
    statement = await _statement(stack, today, participant)
    if XSD_DIR.is_dir():
        assert official_verdict(statement) is True
    entry = _entry(statement, first)
    refs = entry.find(f".//{CAMT}Refs")
    assert refs is not None
    assert {child.tag.removeprefix(CAMT): child.text for child in refs} == {
        "MsgId": msg_id,
        "InstrId": "HARBOURHK-INSTR-000015",
        "EndToEndId": E2E,
        "UETR": uetr,
        "ClrSysRef": first.replace("-", ""),
    }
    instructed = entry.find(f".//{CAMT}AmtDtls/{CAMT}InstdAmt")
    assert instructed is not None
    amount = instructed.find(f"{CAMT}Amt")
    assert amount is not None and (amount.text, amount.get("Ccy")) == ("125.00", "HKD")
    exchange = instructed.find(f"{CAMT}CcyXchg")
    assert exchange is not None
    assert [exchange.findtext(f"{CAMT}{tag}") for tag in ("SrcCcy", "TrgtCcy", "UnitCcy")] == [
        "HKD",
        "CNY",
        "HKD",
    ]
    assert Decimal(exchange.findtext(f"{CAMT}XchgRate") or "0") == Decimal(payment["rate"])
    moved = entry.find(f".//{CAMT}AmtDtls/{CAMT}TxAmt/{CAMT}Amt")
    assert moved is not None and (moved.text, moved.get("Ccy")) == (payment["target_amount"], "CNY")
    assert entry.findtext(f".//{CAMT}Purp/{CAMT}Cd") == "IVPT"
    assert [u.text for u in entry.iter(f"{CAMT}Ustrd")] == ["Invoice INV-2026-0345", "for June"]
    assert entry.findtext(f".//{CAMT}Strd/{CAMT}CdtrRefInf/{CAMT}Ref") == E2E
    assert entry.findtext(f".//{CAMT}Strd/{CAMT}RfrdDocInf/{CAMT}Nb") == "INV-2026-0345"
    other = _entry(statement, second)
    assert other.findtext(f".//{CAMT}Refs/{CAMT}EndToEndId") == "E2E-SECOND"
    assert other.find(f".//{CAMT}Strd") is None
    second_amount = other.find(f".//{CAMT}InstdAmt/{CAMT}Amt")  # no InstdAmt sent: the amount fixed
    assert second_amount is not None and (second_amount.text, second_amount.get("Ccy")) == ("30.00", "HKD")
    # a JSON payment's entry is as it was
    plain = _entry(statement, json_paid.json()["payment_id"])
    assert plain.findtext(f".//{CAMT}Refs/{CAMT}EndToEndId") == "NOTPROVIDED"
    assert plain.findtext(f".//{CAMT}Refs/{CAMT}UETR") == json_paid.json()["payment_id"]
    assert plain.find(f".//{CAMT}AmtDtls") is None


async def _participant_of(h: Harness, account_id: str) -> str:
    response = await h.http.get(f"/v1/accounts/{account_id}", headers=h.operator)
    assert response.status_code == 200, response.text
    participant: str = response.json()["participant_id"]
    return participant


async def test_the_reconciliation_report_lists_the_banks_references(
    harness: Harness, stack: ReconStack
) -> None:
    h = harness
    today = await real_time(h)
    world = await iso_world(h)
    (first, _), msg_id, uetr = await _paid(h, world)
    engine = ibps_engine(stack)
    try:
        async with engine.begin() as conn:
            row = (
                (await conn.execute(select(ibps_transfers).where(ibps_transfers.c.payment_id == first)))
                .mappings()
                .one()
            )
            await conn.execute(delete(ibps_transfers).where(ibps_transfers.c.payment_id == first))
        try:
            report = await reconcile(h, today)
            (found,) = [b for b in report["breaks"] if b["payment_id"] == first]
            assert found["break_type"] == "MISSING_AT_IBPS"
            assert {k: found[k] for k in ("end_to_end_id", "msg_id", "instr_id", "tx_id", "uetr")} == {
                "end_to_end_id": E2E,
                "msg_id": msg_id,
                "instr_id": "HARBOURHK-INSTR-000015",
                "tx_id": None,
                "uetr": uetr,
            }
            as_csv = await h.http.get(
                f"/v1/reconciliations/{report['reconciliation_id']}",
                params={"format": "csv"},
                headers=h.operator,
            )
            lines = [r for r in csv.DictReader(io.StringIO(as_csv.text)) if r["payment_id"] == first]
            assert [(r["end_to_end_id"], r["uetr"], r["msg_id"]) for r in lines] == [(E2E, uetr, msg_id)]
            page = await h.http.get(
                f"/v1/reconciliations/{report['reconciliation_id']}",
                params={"format": "html"},
                headers=h.operator,
            )
            assert f"UETR: {uetr}" in page.text and f"EndToEndId: {E2E}" in page.text
        finally:
            async with engine.begin() as conn:
                await conn.execute(insert(ibps_transfers).values(dict(row)))
    finally:
        await engine.dispose()

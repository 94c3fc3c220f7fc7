"""ISO 20022 as banks send it: every supported pacs.008 version, the business application header in
the envelopes CBPR+ and HVPS+ use, the schema checked as the official XSDs check it, and every
refusal answered as a pacs.002 RJCT with the ISO reason code that fits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
from gw_support import Bank, Harness, fresh_bic, fresh_uetr, iso_reasons, iso_rejection, problem
from iso20022_corpus import XSD_DIR, failing_cases, official_verdict

from fpslink.iso20022 import pacs002

EXAMPLES = Path(__file__).parent / "iso20022_examples"
URL = "/v1/iso20022/pacs.008"
XML = {"Content-Type": "application/xml"}
ISO = "urn:iso:std:iso:20022:tech:xsd:"
LINK_BIC = "FPSLHKH0XXX"
VERSIONS = ("08", "09", "10", "11", "12", "13")
HEADERS = "head.001.001.02, head.001.001.03, head.001.001.04"


@dataclass
class World:
    hk: Bank
    other_hk: Bank
    hk_account: str
    other_account: str
    cn_account: str
    number: str
    payments_before: int

    def fill(self, text: str) -> bytes:
        """A sample message written for the demo world, addressed to this test's banks and accounts,
        with a UETR of its own (a bank's UETR names one payment)."""
        assert self.hk.bic is not None
        for old, new in (
            ("HKDEMO0001", self.hk_account),
            ("CNDEMO0002", self.cn_account),
            ("+86-13800138000", self.number),
            ("HRBRHKH0XXX", self.hk.bic),
            ("HRBRHKH0", self.hk.bic[:8]),
            ("<MmbId>HARBOURHK</MmbId>", f"<MmbId>{self.hk.participant_id}</MmbId>"),
            ("<Id>harbourhk</Id>", f"<Id>{self.hk.participant_id.lower()}</Id>"),
        ):
            text = text.replace(old, new)
        return fresh_uetr(text).encode()

    def sample(self, name: str, **replace: str) -> bytes:
        text = (EXAMPLES / name).read_text()
        for old, new in replace.items():
            assert old in text, old
            text = text.replace(old, new)
        return self.fill(text)


async def _world(h: Harness) -> World:
    hk = await h.bank("FPS", bic=fresh_bic("HK"))
    other = await h.bank("FPS", bic=fresh_bic("HK"))
    cn = await h.bank("IBPS", bic=fresh_bic("CN"))
    hk_account = await h.account(hk, "HKD", "50000.00")
    other_account = await h.account(other, "HKD", "50000.00")
    cn_account = await h.account(cn, "CNY", "50000.00")
    number = await h.proxy(cn, cn_account)
    payments = await h.payment_count()
    return World(hk, other, hk_account, other_account, cn_account, f"+86-{number[3:]}", payments)


async def _post(h: Harness, bank: Bank, body: bytes, **headers: str) -> httpx.Response:
    return await h.http.post(URL, content=body, headers={**bank.headers, **XML, **headers})


def _settled(response: httpx.Response, name: str) -> pacs002.Document:
    assert response.status_code == 201, response.text
    report = pacs002.parse(response.content)
    assert report.fito_fipmt_sts_rpt.tx_inf_and_sts[0].tx_sts == "ACSC"
    assert report.fito_fipmt_sts_rpt.orgnl_grp_inf_and_sts[0].orgnl_msg_nm_id == name
    return report


def _parts(response: httpx.Response) -> tuple[ET.Element, ET.Element, ET.Element]:
    """(envelope, AppHdr, Document) of an answer in an envelope, each valid against its XSD."""
    root = ET.fromstring(response.content)
    header, document = list(root)
    pacs002.parse(response.content)
    if XSD_DIR.is_dir():
        assert official_verdict(response.content) is True
    return root, header, document


def _text(element: ET.Element, path: str) -> str | None:
    namespace = element.tag[1:].split("}")[0]
    found = element.find("/".join(f"{{{namespace}}}{step}" for step in path.split("/")))
    return None if found is None else found.text


async def test_each_supported_version_settles_and_is_named_in_its_report(harness: Harness) -> None:
    h = harness
    world = await _world(h)
    for number, version in enumerate(VERSIONS):
        body = world.sample(
            "pacs008_northbound_proxy.xml",
            **{
                "pacs.008.001.08": f"pacs.008.001.{version}",
                ">1000.00<": ">10.00<",
                "HARBOURHK20260622-000001": f"VERSIONS-{number}",
            },
        )
        _settled(await _post(h, world.hk, body), f"pacs.008.001.{version}")
    assert await h.balance(world.hk_account) == ("49940.00", "0.00")


async def test_an_unsupported_version_is_refused_naming_it_and_the_supported_ones(harness: Harness) -> None:
    """It answered "Unknown property Document:FIToFICstmrCdtTrf", naming neither."""
    h = harness
    world = await _world(h)
    listed = ", ".join(f"pacs.008.001.{v}" for v in VERSIONS)
    for name in ("pacs.008.001.07", "pacs.008.001.14"):
        body = world.sample("pacs008_northbound_proxy.xml", **{"pacs.008.001.08": name})
        response = await _post(h, world.hk, body)
        assert iso_rejection(response, 422) == ["FF01"]
        assert iso_reasons(response) == [f"{name} is not supported; send one of {listed}"]
        group = pacs002.parse(response.content).fito_fipmt_sts_rpt.orgnl_grp_inf_and_sts[0]
        assert (group.orgnl_msg_id, group.orgnl_msg_nm_id) == ("HARBOURHK20260622-000001", name)
    other = world.sample("pacs008_northbound_proxy.xml", **{"pacs.008.001.08": "pacs.009.001.08"})
    response = await _post(h, world.hk, other)
    assert iso_rejection(response, 422) == ["FF01"]
    assert iso_reasons(response)[0].startswith("pacs.009.001.08 is not accepted here; send pacs.008")
    assert await h.payment_count() - world.payments_before == 0


ENVELOPED = {
    "pacs008_v08_cbpr_envelope.xml": ("{urn:swift:xsd:envelope}Envelope", "head.001.001.02"),
    "pacs008_v09_hvps_requestpayload.xml": ("RequestPayload", "head.001.001.02"),
    "pacs008_v12_busmsgenvlp.xml": ("{urn:swift:xsd:envelope}BusMsgEnvlp", "head.001.001.04"),
}
BARE = ("pacs008_v10_mojaloop_style.xml", "pacs008_v11_structured_remittance.xml", "pacs008_v13_prefixed.xml")


async def test_messages_as_banks_send_them_settle_and_come_back_in_their_envelope(harness: Harness) -> None:
    """CBPR+ and HVPS+ wrap the Document with its AppHdr; the gateway answered "Unknown property
    Document:AppHdr". Now the report comes back in the same envelope with its own AppHdr."""
    h = harness
    world = await _world(h)
    for name, (envelope, head) in ENVELOPED.items():
        body = world.sample(name)
        request = ET.fromstring(body)
        response = await _post(h, world.hk, body)
        assert response.status_code == 201, response.text
        root, header, document = _parts(response)
        assert root.tag == envelope
        assert header.tag == f"{{{ISO}{head}}}AppHdr"
        asked = request[0]
        assert ET.tostring(header.find(f"{{{ISO}{head}}}Fr")) != ET.tostring(
            header.find(f"{{{ISO}{head}}}To")
        )
        assert _text(header, "Fr/FIId/FinInstnId/BICFI") == _text(asked, "To/FIId/FinInstnId/BICFI")
        assert _text(header, "To/FIId/FinInstnId/BICFI") == _text(asked, "Fr/FIId/FinInstnId/BICFI")
        assert _text(header, "To/FIId/FinInstnId/ClrSysMmbId/MmbId") == _text(
            asked, "Fr/FIId/FinInstnId/ClrSysMmbId/MmbId"
        )
        assert _text(header, "MsgDefIdr") == "pacs.002.001.10"
        assert _text(header, "BizMsgIdr") == _text(document, "FIToFIPmtStsRpt/GrpHdr/MsgId")
        assert _text(header, "Rltd/BizMsgIdr") == _text(asked, "BizMsgIdr")
        assert _text(header, "Rltd/MsgDefIdr") == _text(asked, "MsgDefIdr")
        assert _text(header, "BizSvc") == _text(asked, "BizSvc")
        assert _text(document, "FIToFIPmtStsRpt/TxInfAndSts/TxSts") == "ACSC"
        location = response.headers["location"]
        payment = (await h.http.get(location, headers=world.hk.headers)).json()
        assert payment["status"] == "SETTLED"
        again = await _post(h, world.hk, body)
        assert again.headers["idempotent-replayed"] == "true" and again.content == response.content
    for name in BARE:
        response = await _post(h, world.hk, world.sample(name))
        report = _settled(response, re.sub(r"pacs008_v(\d\d)_.*", r"pacs.008.001.\1", name))
        assert ET.fromstring(response.content).tag == f"{{{pacs002.NAMESPACE}}}Document"
        assert report.fito_fipmt_sts_rpt.tx_inf_and_sts[0].tx_sts == "ACSC"
    assert await h.payment_count() - world.payments_before == len(ENVELOPED) + len(BARE)


async def test_without_purpose_the_links_default_is_recorded(harness: Harness) -> None:
    """Purp was mandatory; three of four real pacs.008.001.08 samples carry none."""
    h = harness
    world = await _world(h)
    response = await _post(h, world.hk, world.sample("pacs008_v08_cbpr_envelope.xml"))
    assert response.status_code == 201, response.text
    payment = (await h.http.get(response.headers["location"], headers=world.hk.headers)).json()
    assert payment["purpose"] == "OTHER"  # ISO 20022 OTHR
    assert payment["remittance_info"] == "/INV/2026-0611 consulting fee"


@pytest.mark.settings(iso20022_default_purpose="FAMILY_SUPPORT")
async def test_the_default_purpose_is_a_setting(harness: Harness) -> None:
    h = harness
    world = await _world(h)
    response = await _post(h, world.hk, world.sample("pacs008_v10_mojaloop_style.xml"))
    assert response.status_code == 201, response.text
    payment = (await h.http.get(response.headers["location"], headers=world.hk.headers)).json()
    assert payment["purpose"] == "FAMILY_SUPPORT"


async def test_a_header_that_does_not_match_the_caller_the_link_or_the_document_is_refused(
    harness: Harness,
) -> None:
    h = harness
    world = await _world(h)
    assert world.other_hk.bic is not None
    name = "pacs008_v08_cbpr_envelope.xml"
    fr = "<Fr>\n      <FIId>\n        <FinInstnId>\n          <BICFI>HRBRHKH0XXX</BICFI>"
    to = "<To>\n      <FIId>\n        <FinInstnId>\n          <BICFI>FPSLHKH0XXX</BICFI>"
    cases = {
        "AG08": {fr: fr.replace("HRBRHKH0XXX", world.other_hk.bic)},
        "AGNT": {to: to.replace(LINK_BIC, "HKICHKH0XXX")},
        "FF01": {"<MsgDefIdr>pacs.008.001.08</MsgDefIdr>": "<MsgDefIdr>pacs.008.001.09</MsgDefIdr>"},
        "CH16": {"<BizMsgIdr>HRBR2026062200011</BizMsgIdr>": "<BizMsgIdr>HRBR-OTHER-ID</BizMsgIdr>"},
    }
    for code, replace in cases.items():
        response = await _post(h, world.hk, world.sample(name, **replace))
        assert iso_rejection(response, 422) == [code], code
        _, header, _ = _parts(response)
        assert _text(header, "Rltd/BizMsgIdr") is not None  # the request's header was readable
    # another bank's member id, and a bank with no BIC sending a BICFI
    hvps = (EXAMPLES / "pacs008_v09_hvps_requestpayload.xml").read_text()
    other_member = f"<MmbId>{world.other_hk.participant_id}</MmbId>"
    member = world.fill(hvps.replace("<MmbId>HARBOURHK</MmbId>", other_member, 1))  # AppHdr/Fr only
    assert iso_rejection(await _post(h, world.hk, member), 422) == ["AG08"]
    no_bic = await h.bank("FPS")
    response = await _post(h, no_bic, world.sample(name))
    assert iso_rejection(response, 422)[0] == "AG08"
    assert "not your bank (MmbId " in iso_reasons(response)[0]
    assert await h.payment_count() - world.payments_before == 0


async def test_a_header_that_cannot_be_read_is_refused_in_an_answer_the_bank_can_read(
    harness: Harness,
) -> None:
    h = harness
    world = await _world(h)
    name = "pacs008_v08_cbpr_envelope.xml"
    broken = world.sample(name, **{"<BizMsgIdr>HRBR2026062200011</BizMsgIdr>": ""})
    response = await _post(h, world.hk, broken)
    assert iso_rejection(response, 422) == ["FF01"]
    assert iso_reasons(response)[0].endswith("AppHdr: missing element BizMsgIdr (required before MsgDefIdr)")
    _, header, _ = _parts(response)
    assert _text(header, "Fr/FIId/FinInstnId/BICFI") == LINK_BIC
    assert _text(header, "To/FIId/FinInstnId/BICFI") == world.hk.bic
    assert _text(header, "Rltd/BizMsgIdr") is None
    old_header = world.sample(name, **{"head.001.001.02": "head.001.001.01"})
    response = await _post(h, world.hk, old_header)
    assert iso_rejection(response, 422) == ["FF01"]
    assert iso_reasons(response) == [f"AppHdr head.001.001.01 is not supported; send one of {HEADERS}"]
    assert ET.fromstring(response.content).tag == f"{{{pacs002.NAMESPACE}}}Document"
    bare_envelope = re.sub(rb"<AppHdr.*</AppHdr>", b"", world.sample(name), flags=re.S)
    response = await _post(h, world.hk, bare_envelope)
    assert iso_rejection(response, 422) == ["FF01"]
    assert "an envelope holds AppHdr and then Document, found Document" in iso_reasons(response)[0]
    assert await h.payment_count() - world.payments_before == 0


async def test_the_cases_that_went_wrong(harness: Harness) -> None:
    """An element inside a text element answered 500 (xsdata's XmlContextError); a root named
    Envelope, a foreign namespace, elements out of order, IBAN beside Othr and stray text were settled;
    NbOfTxs 01, an amount with trailing zeros and a message without Purp, all schema-valid, were
    refused. Each is now judged as the official schema judges it."""
    h = harness
    world = await _world(h)
    accepted = 0
    for number, (case, (text, valid)) in enumerate(sorted(failing_cases().items())):
        body = world.fill(text.replace("HARBOURHK20260622-000001", f"CASE-{number}"))
        response = await _post(h, world.hk, body)
        if valid:
            _settled(response, "pacs.008.001.08")
            accepted += 1
            continue
        assert iso_rejection(response, 422) == ["FF01"], case
        report = pacs002.parse(response.content).fito_fipmt_sts_rpt
        assert report.orgnl_grp_inf_and_sts[0].orgnl_msg_id in (f"CASE-{number}", "NOTPROVIDED")
    assert await h.payment_count() - world.payments_before == accepted == 3
    mixed = dict(failing_cases())["element inside a text element"][0]
    response = await _post(h, world.hk, world.fill(mixed.replace("HARBOURHK20260622-000001", "MIXED")))
    assert iso_reasons(response) == [
        "the message does not conform to pacs.008.001.08: CdtTrfTxInf/PmtId/EndToEndId: element b inside "
        "a text element"
    ]


async def test_refusals_by_the_links_rules_and_the_payments_service_are_pacs002(harness: Harness) -> None:
    """Unknown debtor account, another bank's account, a currency the link does not carry: these
    answered problem+json. Each is now a pacs.002 RJCT whose TxInfAndSts echoes the transaction."""
    h = harness
    world = await _world(h)
    good = "pacs008_northbound_proxy.xml"
    cases: list[tuple[dict[str, str], int, str]] = [
        ({"HKDEMO0001": "HKNOSUCHACCOUNT"}, 404, "AC02"),
        ({"HKDEMO0001": world.other_account}, 404, "AC02"),
        ({'Ccy="HKD">1000.00': 'Ccy="USD">1000.00'}, 422, "AM03"),
        ({">1000.00<": ">1000.001<"}, 422, "CH20"),
        ({">1000.00<": ">0.00<"}, 422, "AM01"),
        ({"<NbOfTxs>1</NbOfTxs>": "<NbOfTxs>2</NbOfTxs>"}, 422, "AM18"),
        (
            {"<Ustrd>Tuition for June</Ustrd>": "<Ustrd>" + "x" * 140 + "</Ustrd><Ustrd>more</Ustrd>"},
            422,
            "CH15",
        ),
        ({"<EndToEndId>INV-2026-0622-0001": "<EndToEndId>INV é"}, 422, "FF08"),
        ({"<Cd>TELE</Cd>": "<Cd>EMAL</Cd>"}, 422, "BE23"),
    ]
    for number, (replace, status, code) in enumerate(cases):
        replace = {**replace, "HARBOURHK20260622-000001": f"RULES-{number}"}
        body = world.sample(good, **replace)
        response = await _post(h, world.hk, body)
        assert iso_rejection(response, status) == [code], (replace, response.text)
        report = pacs002.parse(response.content).fito_fipmt_sts_rpt
        if code != "AM18":
            (tx,) = report.tx_inf_and_sts
            assert tx.orgnl_instr_id == "HARBOURHK-INSTR-000001"
            assert tx.orgnl_uetr is not None and f"<UETR>{tx.orgnl_uetr}</UETR>".encode() in body
    assert await h.payment_count() - world.payments_before == 0


async def test_any_msgid_the_schema_allows_is_a_key(harness: Harness) -> None:
    """A MsgId with a space or a non-ASCII letter could not be an Idempotency-Key, so such a message
    was refused (422 IDEMPOTENCY_KEY_INVALID); it now keys by the MsgId's hash, and replays alike."""
    h = harness
    world = await _world(h)
    for msg_id in ("HARBOUR HK 0001", "匯款-0001"):
        body = world.sample("pacs008_northbound_proxy.xml", **{"HARBOURHK20260622-000001": msg_id})
        first = await _post(h, world.hk, body)
        _settled(first, "pacs.008.001.08")
        again = await _post(h, world.hk, body)
        assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert await h.payment_count() - world.payments_before == 2


async def test_what_is_not_a_message_stays_problem_json(harness: Harness) -> None:
    h = harness
    world = await _world(h)
    body = world.sample("pacs008_northbound_proxy.xml")
    problem(await _post(h, world.hk, b"\x00\x01garbage"), 400, "ISO20022_MALFORMED")
    problem(
        await _post(h, world.hk, body, **{"Idempotency-Key": "not a key"}), 422, "IDEMPOTENCY_KEY_INVALID"
    )
    problem(await h.http.post(URL, content=body, headers=XML), 401, "UNAUTHORIZED")

"""pacs.028 through the gateway: a bank asks about a payment it sent as a pacs.008 and gets its pacs.002
as it stands now (ACSC, PDNG, RJCT with its reason); another bank's payment, or none, is "never
received" alike; a request that names no one payment is refused. Every answer is checked against
pacs.002.001.10 (and the official XSDs when at hand)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest
from gw_support import Bank, Harness, IsoWorld, iso_reasons, iso_rejection, iso_world, problem
from iso20022_corpus import XSD_DIR, official_verdict

from fpslink.iso20022 import pacs002
from fpslink.settlement import recovery

EXAMPLES = Path(__file__).parent / "iso20022_examples"
PAY = "/v1/iso20022/pacs.008"
ASK = "/v1/iso20022/pacs.028"
XML = {"Content-Type": "application/xml"}
ISO = "urn:iso:std:iso:20022:tech:xsd:"
UETR = "8a562c67-ca16-48ba-b074-65581be6f011"
REF = "3c5f1e2a8b7d4c6e9a102f4b6d8e0a13"
"""The ClrSysRef placeholder of pacs028_v06_by_clrsysref.xml."""


class Crash(BaseException):
    """Stands for the process dying at a settlement step."""


def _sample(world: IsoWorld, name: str, bank: Bank | None = None, **replace: str) -> bytes:
    """A sample for this test's banks, sent by `bank` (the HK bank by default)."""
    text = (EXAMPLES / name).read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return world.fill(text, bank).encode()


async def _pay(h: Harness, world: IsoWorld, name: str, **replace: str) -> httpx.Response:
    response = await h.http.post(
        PAY, content=_sample(world, name, **replace), headers={**world.hk.headers, **XML}
    )
    assert response.status_code in (201, 202), response.text
    return response


async def _ask(h: Harness, bank: Bank, body: bytes, **headers: str) -> httpx.Response:
    return await h.http.post(ASK, content=body, headers={**bank.headers, **XML, **headers})


def _report(response: httpx.Response, status: int = 200) -> pacs002.FitoFipaymentStatusReportV10:
    """The answer's status report, checked against the derived schema and the official XSD."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml")
    report = pacs002.parse(response.content).fito_fipmt_sts_rpt
    if XSD_DIR.is_dir():
        assert official_verdict(response.content) is True
    return report


def _payment_ref(response: httpx.Response) -> str:
    return response.headers["location"].rsplit("/", 1)[1].replace("-", "")


async def test_a_status_request_answers_the_payments_report(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    paid = await _pay(h, world, "pacs008_northbound_proxy.xml")
    answer = await _ask(h, world.hk, _sample(world, "pacs028_v03_by_uetr.xml"))
    report = _report(answer)
    (group,) = report.orgnl_grp_inf_and_sts
    (tx,) = report.tx_inf_and_sts
    assert (group.orgnl_msg_id, group.orgnl_msg_nm_id, group.grp_sts) == (
        "HARBOURHK20260622-000001",
        "pacs.008.001.08",
        None,
    )
    assert (tx.sts_id, tx.tx_sts, tx.orgnl_uetr, tx.orgnl_instr_id, tx.orgnl_end_to_end_id) == (
        "HARBOURHK-STS-0001",
        "ACSC",
        UETR,
        "HARBOURHK-INSTR-000001",
        "INV-2026-0622-0001",
    )
    assert tx.clr_sys_ref == _payment_ref(paid) and answer.headers["location"] == paid.headers["location"]
    original = pacs002.parse(paid.content).fito_fipmt_sts_rpt
    assert report.grp_hdr.msg_id.startswith("FPSLINK") and report.grp_hdr.msg_id != original.grp_hdr.msg_id
    # by the link's reference, in a later version written with a namespace prefix
    by_ref = _sample(world, "pacs028_v06_by_clrsysref.xml", **{REF: _payment_ref(paid)})
    (tx,) = _report(await _ask(h, world.hk, by_ref)).tx_inf_and_sts
    assert (tx.tx_sts, tx.orgnl_uetr, tx.sts_id) == ("ACSC", UETR, "HARBOURHK-STS-0004")
    # by the MsgId of a pacs.008 without UETR, with no TxInf
    mojaloop = await _pay(h, world, "pacs008_v10_mojaloop_style.xml")
    report = _report(await _ask(h, world.hk, _sample(world, "pacs028_v05_by_msgid.xml")))
    assert report.orgnl_grp_inf_and_sts[0].orgnl_msg_nm_id == "pacs.008.001.10"
    (tx,) = report.tx_inf_and_sts
    assert (tx.tx_sts, tx.orgnl_tx_id, tx.clr_sys_ref) == (
        "ACSC",
        "01J0F9Z8Q3TX0000014",
        _payment_ref(mojaloop),
    )


async def test_a_status_request_in_an_envelope_is_answered_in_one(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    await _pay(h, world, "pacs008_v08_cbpr_envelope.xml")
    request = _sample(world, "pacs028_v03_cbpr_envelope.xml")
    answer = await _ask(h, world.hk, request)
    _report(answer)
    root = ET.fromstring(answer.content)
    header, document = list(root)
    head = f"{{{ISO}head.001.001.02}}"
    assert root.tag == "{urn:swift:xsd:envelope}Envelope" and header.tag == f"{head}AppHdr"
    assert header.findtext(f"{head}MsgDefIdr") == "pacs.002.001.10"
    assert header.findtext(f"{head}Rltd/{head}MsgDefIdr") == "pacs.028.001.03"
    assert header.findtext(f"{head}Rltd/{head}BizMsgIdr") == "HRBR2026062200012"
    assert header.findtext(f"{head}To/{head}FIId/{head}FinInstnId/{head}BICFI") == world.hk.bic
    rpt = f"{{{pacs002.NAMESPACE}}}"
    assert header.findtext(f"{head}BizMsgIdr") == document.findtext(
        f"{rpt}FIToFIPmtStsRpt/{rpt}GrpHdr/{rpt}MsgId"
    )
    tx = document.find(f"{rpt}FIToFIPmtStsRpt/{rpt}TxInfAndSts")
    assert tx is not None and tx.findtext(f"{rpt}TxSts") == "ACSC"
    assert tx.findtext(f"{rpt}OrgnlUETR") == "2f6b3c1e-8d4a-4f2b-9c7e-5a1d0e3b7f64"


async def test_pending_and_rejected_payments_are_reported_as_they_stand(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    # rejected: no account for the number; the answer carries the reason
    await _pay(h, world, "pacs008_unknown_proxy.xml")
    unknown = "5d3b8f0e-2c71-4a9f-8e26-0b94c7a1d352"
    ask_unknown = _sample(
        world,
        "pacs028_v03_by_uetr.xml",
        **{
            UETR: unknown,
            "INV-2026-0622-0001": "INV-2026-0622-0003",
            "HARBOURHK-INSTR-000001": "HARBOURHK-INSTR-000003",
            "HARBOURHK20260622-000001": "HARBOURHK20260622-000003",
        },
    )
    (tx,) = _report(await _ask(h, world.hk, ask_unknown)).tx_inf_and_sts
    assert tx.tx_sts == "RJCT" and tx.sts_rsn_inf[0].rsn is not None and tx.sts_rsn_inf[0].rsn.cd == "BE23"
    assert "".join(tx.sts_rsn_inf[0].addtl_inf).startswith("BE23: no account is registered for +86")

    # pending: the process died after the decision, before telling the bank (or tying the UETR)
    def crash(reached: str) -> None:
        if reached == "decided":
            raise Crash(reached)

    h.gw.crash_hook = crash
    with pytest.raises(Crash):
        await h.http.post(
            PAY, content=_sample(world, "pacs008_northbound_proxy.xml"), headers={**world.hk.headers, **XML}
        )
    h.gw.crash_hook = lambda reached: None
    ask = _sample(world, "pacs028_v03_by_uetr.xml")
    (tx,) = _report(await _ask(h, world.hk, ask)).tx_inf_and_sts
    assert (tx.tx_sts, tx.sts_rsn_inf) == ("PDNG", [])
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    await recovery.sweep(h.gw)
    (tx,) = _report(await _ask(h, world.hk, ask)).tx_inf_and_sts
    assert tx.tx_sts == "ACSC"
    # and the pacs.008 sent again is its replay, not a second payment
    again = await h.http.post(
        PAY, content=_sample(world, "pacs008_northbound_proxy.xml"), headers={**world.hk.headers, **XML}
    )
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert await h.balance(world.hk_account) == ("49000.00", "0.00")


async def test_only_the_bank_that_sent_a_payment_may_ask_about_it(harness: Harness) -> None:
    """Another bank's payment and no payment at all answer alike: AG09, never received, echoing only
    what the request gave."""
    h = harness
    world = await iso_world(h)
    paid = await _pay(h, world, "pacs008_northbound_proxy.xml")
    ref = _payment_ref(paid)
    answers = {
        "theirs, by UETR": await _ask(h, world.other, _sample(world, "pacs028_v03_by_uetr.xml", world.other)),
        "none, by UETR": await _ask(
            h,
            world.other,
            _sample(world, "pacs028_v03_by_uetr.xml", world.other, **{UETR: str(uuid.uuid4())}),
        ),
        "theirs, by ClrSysRef": await _ask(
            h, world.other, _sample(world, "pacs028_v06_by_clrsysref.xml", world.other, **{REF: ref})
        ),
        "none, by ClrSysRef": await _ask(
            h,
            world.other,
            _sample(world, "pacs028_v06_by_clrsysref.xml", world.other, **{REF: uuid.uuid4().hex}),
        ),
        "mine, another EndToEndId": await _ask(
            h, world.hk, _sample(world, "pacs028_v03_by_uetr.xml", **{"INV-2026-0622-0001": "INV-OTHER"})
        ),
        "mine, another version named": await _ask(
            h, world.hk, _sample(world, "pacs028_v03_by_uetr.xml", **{"pacs.008.001.08": "pacs.008.001.09"})
        ),
    }
    words = set()
    for case, answer in answers.items():
        assert iso_rejection(answer, 404) == ["AG09"], case
        _report(answer, 404)
        words.update(iso_reasons(answer))
        assert "location" not in answer.headers
        assert ref not in answer.text or case.endswith("ClrSysRef")  # only what was asked is echoed
        assert world.hk.participant_id not in answer.text and world.hk_account not in answer.text, case
    assert words == {"no payment of yours has these references: the link never received it from you"}
    same_shape = {
        re.sub(r"FPSLINK\w+|[0-9a-f-]{36}", "", answers[c].text) for c in ("theirs, by UETR", "none, by UETR")
    }
    assert len(same_shape) == 1  # the same answer, but for its id and the UETR asked about


async def test_status_requests_that_name_no_one_payment_are_refused(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    await _pay(h, world, "pacs008_northbound_proxy.xml")
    assert world.other.bic is not None
    tx_inf = "<TxInf>\n      <StsReqId>HARBOURHK-STS-0001</StsReqId>"
    other_bic = f"<BICFI>{world.other.bic}</BICFI>"
    cases: list[tuple[dict[str, str], str, str]] = [
        (
            {"</TxInf>": f"</TxInf><TxInf><OrgnlUETR>{UETR}</OrgnlUETR></TxInf>"},
            "AM18",
            "names 2 TxInf and 0 OrgnlGrpInf",
        ),
        ({tx_inf: "<TxInf><Foo>1</Foo>"}, "FF01", "TxInf: unexpected element Foo"),
        (
            {"pacs.028.001.03": "pacs.028.001.02"},
            "FF01",
            "pacs.028.001.02 is not supported; send one of pacs.028.001.03",
        ),
        (
            {"</GrpHdr>": f"<InstgAgt><FinInstnId>{other_bic}</FinInstnId></InstgAgt></GrpHdr>"},
            "AGNT",
            "GrpHdr/InstgAgt/FinInstnId/BICFI",
        ),
    ]
    for replace, code, words in cases:
        answer = await _ask(h, world.hk, _sample(world, "pacs028_v03_by_uetr.xml", **replace))
        assert iso_rejection(answer, 422) == [code], answer.text
        assert words in iso_reasons(answer)[0], iso_reasons(answer)
        report = _report(answer, 422)
        assert report.orgnl_grp_inf_and_sts[0].orgnl_msg_id == "HARBOURHK20260622-STS-0001"
    nameless = _sample(
        world,
        "pacs028_v03_by_uetr.xml",
        **{
            f"<OrgnlUETR>{UETR}</OrgnlUETR>": "",
            "<OrgnlGrpInf>\n        <OrgnlMsgId>HARBOURHK20260622-000001</OrgnlMsgId>\n        "
            "<OrgnlMsgNmId>pacs.008.001.08</OrgnlMsgNmId>\n      </OrgnlGrpInf>": "",
        },
    )
    answer = await _ask(h, world.hk, nameless)
    assert iso_rejection(answer, 422) == ["CH21"]
    assert (
        "give TxInf/ClrSysRef (the link's reference), TxInf/OrgnlUETR or OrgnlGrpInf/OrgnlMsgId"
        in iso_reasons(answer)[0]
    )
    # a pacs.008 is not a status request; a header from another bank is refused as for a pacs.008
    wrong = await _ask(h, world.hk, _sample(world, "pacs008_northbound_proxy.xml"))
    assert iso_rejection(wrong, 422) == ["FF01"]
    assert iso_reasons(wrong)[0].startswith(
        "pacs.008.001.08 is not accepted here; send pacs.028 (pacs.028.001.03, "
    )
    foreign = _sample(world, "pacs028_v03_cbpr_envelope.xml", world.other)
    assert iso_rejection(await _ask(h, world.hk, foreign), 422)[0] == "AG08"
    # what is not a message stays problem+json
    problem(await _ask(h, world.hk, b"<Document"), 400, "ISO20022_MALFORMED")
    body = _sample(world, "pacs028_v03_by_uetr.xml")
    problem(
        await h.http.post(
            ASK, content=body, headers={**world.hk.headers, "Content-Type": "application/json"}
        ),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    problem(await h.http.post(ASK, content=body, headers={**h.operator, **XML}), 403, "PARTICIPANT_ONLY")
    problem(await h.http.post(ASK, content=body, headers=XML), 401, "UNAUTHORIZED")

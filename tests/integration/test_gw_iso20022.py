"""ISO 20022 at the gateway: realistic pacs.008 messages in, schema-valid pacs.002 reports out."""

from __future__ import annotations

import uuid
from pathlib import Path

from gw_support import Bank, Harness, cn_mobile, iso_reasons, iso_rejection, problem

from fpslink.iso20022 import pacs002

EXAMPLES = Path(__file__).parent / "iso20022_examples"
XML = {"Content-Type": "application/xml"}
UETR = b"8a562c67-ca16-48ba-b074-65581be6f011"
"""The UETR of pacs008_northbound_proxy.xml: a bank's other payments need their own."""


def example(name: str, **replace: str) -> bytes:
    text = (EXAMPLES / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return text.encode()


async def _world(h: Harness) -> dict[str, object]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    hk_acc = await h.account(hk, "HKD", "50000.00")
    cn_acc = await h.account(cn, "CNY", "50000.00")
    other_hk = await h.account(await h.bank("FPS"), "HKD", "0.00")
    number = await h.proxy(cn, cn_acc)
    return {
        "hk": hk,
        "cn": cn,
        "HKDEMO0001": hk_acc,
        "CNDEMO0001": cn_acc,
        "CNDEMO0002": cn_acc,
        "HKDEMO0003": other_hk,
        "+86-13800138000": f"+86-{number[3:]}",
        "<MmbId>HARBOURHK</MmbId>": f"<MmbId>{hk.participant_id}</MmbId>",
        "<MmbId>PEARLCN</MmbId>": f"<MmbId>{cn.participant_id}</MmbId>",
    }


def _ids(world: dict[str, object]) -> dict[str, str]:
    return {k: v for k, v in world.items() if isinstance(v, str)}


async def _send(h: Harness, bank: Bank, body: bytes, **headers: str) -> pacs002.Document:
    response = await h.http.post(
        "/v1/iso20022/pacs.008", content=body, headers={**bank.headers, **XML, **headers}
    )
    assert response.status_code in (201, 202), response.text
    assert response.headers["content-type"].startswith("application/xml")
    return pacs002.parse(response.content)


async def test_northbound_by_proxy_settles_and_reports_acsc(harness: Harness) -> None:
    h = harness
    world = await _world(h)
    hk = world["hk"]
    assert isinstance(hk, Bank)
    body = example("pacs008_northbound_proxy.xml", **_ids(world))
    response = await h.http.post("/v1/iso20022/pacs.008", content=body, headers={**hk.headers, **XML})
    assert response.status_code == 201, response.text
    report = pacs002.parse(response.content).fito_fipmt_sts_rpt
    tx = report.tx_inf_and_sts[0]
    assert tx.tx_sts == "ACSC" and not tx.sts_rsn_inf
    assert report.orgnl_grp_inf_and_sts[0].orgnl_msg_id == "HARBOURHK20260622-000001"
    assert report.orgnl_grp_inf_and_sts[0].orgnl_msg_nm_id == "pacs.008.001.08"
    assert tx.orgnl_end_to_end_id == "INV-2026-0622-0001"
    assert tx.orgnl_instr_id == "HARBOURHK-INSTR-000001"
    assert tx.orgnl_uetr == "8a562c67-ca16-48ba-b074-65581be6f011"
    location = response.headers["location"]
    payment = (await h.http.get(location, headers=hk.headers)).json()
    assert tx.clr_sys_ref == payment["payment_id"].replace("-", "")
    assert payment["status"] == "SETTLED"
    assert payment["end_to_end_id"] == "INV-2026-0622-0001"
    assert payment["purpose"] == "FAMILY_SUPPORT"
    assert payment["remittance_info"] == "Tuition for June"
    assert (payment["source_amount"], payment["target_amount"]) == ("1000.00", "917.70")
    assert await h.balance(_ids(world)["HKDEMO0001"]) == ("49000.00", "0.00")


async def test_resending_a_message_replays_its_report(harness: Harness) -> None:
    h = harness
    world = await _world(h)
    hk = world["hk"]
    assert isinstance(hk, Bank)
    body = example("pacs008_northbound_proxy.xml", **_ids(world))
    url = "/v1/iso20022/pacs.008"
    first = await h.http.post(url, content=body, headers={**hk.headers, **XML})
    again = await h.http.post(url, content=body, headers={**hk.headers, **XML})
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert await h.balance(_ids(world)["HKDEMO0001"]) == ("49000.00", "0.00")
    # another payment under the same MsgId (and its own UETR)
    changed = body.replace(b">1000.00<", b">999.00<").replace(UETR, str(uuid.uuid4()).encode())
    refused = await h.http.post(url, content=changed, headers={**hk.headers, **XML})
    assert iso_rejection(refused, 422) == ["DU01"]
    keyed = await h.http.post(url, content=changed, headers={**hk.headers, **XML, "Idempotency-Key": "k-1"})
    assert keyed.status_code == 201 and "Idempotent-Replayed" not in keyed.headers


async def test_receive_amount_by_account_and_southbound(harness: Harness) -> None:
    h = harness
    world = await _world(h)
    hk, cn = world["hk"], world["cn"]
    assert isinstance(hk, Bank) and isinstance(cn, Bank)
    ids = _ids(world)
    report = await _send(h, hk, example("pacs008_northbound_account_receive.xml", **ids))
    tx = report.fito_fipmt_sts_rpt.tx_inf_and_sts[0]
    assert tx.tx_sts == "ACSC" and tx.orgnl_tx_id == "HARBOURHK-TX-000002"
    assert await h.balance(ids["CNDEMO0002"]) == ("50500.00", "0.00")
    south = await _send(h, cn, example("pacs008_southbound_account.xml", **ids))
    tx = south.fito_fipmt_sts_rpt.tx_inf_and_sts[0]
    assert tx.tx_sts == "ACSC"
    assert tx.orgnl_end_to_end_id == "NOTPROVIDED"
    assert await h.balance(ids["HKDEMO0003"]) == ("867.39", "0.00")


async def test_business_rejections_carry_iso_reason_codes(harness: Harness) -> None:
    h = harness
    world = await _world(h)
    hk = world["hk"]
    assert isinstance(hk, Bank)
    ids = _ids(world)
    unknown = await _send(
        h, hk, example("pacs008_unknown_proxy.xml", **ids, **{"+86-13700000000": cn_mobile()})
    )
    tx = unknown.fito_fipmt_sts_rpt.tx_inf_and_sts[0]
    assert tx.tx_sts == "RJCT"
    assert tx.sts_rsn_inf[0].rsn is not None and tx.sts_rsn_inf[0].rsn.cd == "BE23"
    poor = await _send(
        h,
        hk,
        example(
            "pacs008_northbound_proxy.xml",
            **ids,
            **{">1000.00<": ">60000.00<", "000001": "000009", UETR.decode(): str(uuid.uuid4())},
        ),
    )
    tx = poor.fito_fipmt_sts_rpt.tx_inf_and_sts[0]
    assert tx.tx_sts == "RJCT" and tx.sts_rsn_inf[0].rsn is not None
    assert tx.sts_rsn_inf[0].rsn.cd == "AM02"
    domestic = await _send(
        h,
        hk,
        example(
            "pacs008_northbound_account_receive.xml",
            **{**ids, "CNDEMO0002": ids["HKDEMO0003"], 'Ccy="CNY"': 'Ccy="HKD"', "000002": "000010"},
        ),
    )
    tx = domestic.fito_fipmt_sts_rpt.tx_inf_and_sts[0]
    assert tx.tx_sts == "RJCT" and tx.sts_rsn_inf[0].rsn is not None
    assert tx.sts_rsn_inf[0].rsn.cd == "NARR"
    assert tx.sts_rsn_inf[0].addtl_inf[0].startswith("NOT_CROSS_BORDER: ")
    assert await h.balance(ids["HKDEMO0001"]) == ("50000.00", "0.00")


async def test_bad_messages_are_refused_before_anything_is_created(harness: Harness) -> None:
    """A schema error, an unsupported currency or proxy type: a pacs.002 RJCT with its ISO code (they
    answered problem+json, and errors named Python fields such as `chrg_br`). Only bodies that are not
    XML the gateway reads, and requests refused before the body is read, stay problem+json."""
    h = harness
    world = await _world(h)
    hk = world["hk"]
    assert isinstance(hk, Bank)
    ids = _ids(world)
    good = example("pacs008_northbound_proxy.xml", **ids)
    url = "/v1/iso20022/pacs.008"
    hdrs = {**hk.headers, **XML}
    before = await h.payment_count()
    problem(await h.http.post(url, content=good[:-40], headers=hdrs), 400, "ISO20022_MALFORMED")
    doctype = good.replace(b"<Document", b'<!DOCTYPE d [<!ENTITY x "y">]>\n<Document', 1)
    problem(await h.http.post(url, content=doctype, headers=hdrs), 400, "ISO20022_MALFORMED")
    unknown = good.replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>1</NbOfTxs><Priority>HIGH</Priority>")
    response = await h.http.post(url, content=unknown, headers=hdrs)
    assert iso_rejection(response, 422) == ["FF01"]
    assert "GrpHdr: unexpected element Priority" in iso_reasons(response)[0]
    missing = good.replace(b"<ChrgBr>SLEV</ChrgBr>", b"")
    response = await h.http.post(url, content=missing, headers=hdrs)
    assert iso_rejection(response, 422) == ["FF01"]
    assert "CdtTrfTxInf: missing element ChrgBr" in iso_reasons(response)[0]
    for old, new in (
        (b"<ChrgBr>SLEV", b"<ChrgBr>NONE"),
        (b">1000.00<", b">1,000.00<"),
        (b'Ccy="HKD"', b'Ccy="hk"'),
        (b"8a562c67-ca16-48ba-b074-65581be6f011", b"not-a-uuid"),
    ):
        response = await h.http.post(url, content=good.replace(old, new), headers=hdrs)
        assert iso_rejection(response, 422) == ["FF01"], (old, new)
    usd = good.replace(b'Ccy="HKD"', b'Ccy="USD"')
    assert iso_rejection(await h.http.post(url, content=usd, headers=hdrs), 422) == ["AM03"]
    unknown_purpose = good.replace(b"<Prtry>FAMILY_SUPPORT</Prtry>", b"<Prtry>TUITION</Prtry>")
    response = await h.http.post(url, content=unknown_purpose, headers=hdrs)
    assert iso_rejection(response, 422) == ["FF07"]
    assert "FAMI (FAMILY_SUPPORT)" in iso_reasons(response)[0]
    email = good.replace(b"<Cd>TELE</Cd>", b"<Cd>EMAL</Cd>")
    assert iso_rejection(await h.http.post(url, content=email, headers=hdrs), 422) == ["BE23"]
    problem(
        await h.http.post(url, content=good, headers={**hk.headers, "Content-Type": "application/json"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    problem(await h.http.post(url, content=good, headers={**h.operator, **XML}), 403, "PARTICIPANT_ONLY")
    problem(await h.http.post(url, content=good, headers=XML), 401, "UNAUTHORIZED")
    assert await h.payment_count() == before

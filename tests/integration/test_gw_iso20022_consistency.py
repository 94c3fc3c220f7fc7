"""What a pacs.008 must say consistently, through the gateway: sums, the charging rule, the agents, the
settlement date and a UETR's one payment, each refusal a pacs.002 RJCT naming the XML path; the
creditor's mobile number where real messages carry it."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from gw_support import Bank, Harness, IsoWorld, iso_reasons, iso_rejection, iso_world
from iso20022_corpus import XSD_DIR, official_verdict

from fpslink.iso20022 import pacs002

EXAMPLES = Path(__file__).parent / "iso20022_examples"
URL = "/v1/iso20022/pacs.008"
XML = {"Content-Type": "application/xml"}
UETR = "8a562c67-ca16-48ba-b074-65581be6f011"
"""The UETR of pacs008_northbound_proxy.xml."""
BEARER = "<ChrgBr>SLEV</ChrgBr>"
DATE = "<IntrBkSttlmDt>2026-06-22</IntrBkSttlmDt>"
AGENT = "<ClrSysMmbId>\n            <MmbId>HARBOURHK</MmbId>\n          </ClrSysMmbId>"


def _sample(world: IsoWorld, name: str = "pacs008_northbound_proxy.xml", **replace: str) -> bytes:
    """A sample for this test's banks, with a MsgId and a UETR of its own unless `replace` keeps them."""
    text = (EXAMPLES / name).read_text()
    for old, new in {
        "HARBOURHK20260622-000001": f"M-{uuid.uuid4().hex[:20]}",
        UETR: str(uuid.uuid4()),
    }.items():
        if old not in replace:
            text = text.replace(old, new)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return world.fill(text).encode()


async def _post(h: Harness, bank: Bank, body: bytes, **headers: str) -> httpx.Response:
    return await h.http.post(URL, content=body, headers={**bank.headers, **XML, **headers})


def _valid(response: httpx.Response) -> pacs002.Document:
    """The answer's pacs.002, checked against the derived schema and the official XSD."""
    report = pacs002.parse(response.content)
    if XSD_DIR.is_dir():
        assert official_verdict(response.content) is True
    return report


async def _refused(h: Harness, world: IsoWorld, body: bytes, code: str, words: str) -> pacs002.Document:
    response = await _post(h, world.hk, body)
    assert iso_rejection(response, 422) == [code], response.text
    assert any(words in text for text in iso_reasons(response)), iso_reasons(response)
    return _valid(response)


async def test_counts_and_sums_must_match_the_transactions(harness: Harness) -> None:
    """A CtrlSum of 999.00 for a 1000.00 payment was accepted."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    for total, words in (
        (
            "<CtrlSum>999.00</CtrlSum>",
            "GrpHdr/CtrlSum is 999.00 but the transactions' IntrBkSttlmAmt sum to 1000.00",
        ),
        ('<TtlIntrBkSttlmAmt Ccy="HKD">1.00</TtlIntrBkSttlmAmt>', "GrpHdr/TtlIntrBkSttlmAmt is 1.00 HKD"),
    ):
        body = _sample(world, **{"<NbOfTxs>1</NbOfTxs>": f"<NbOfTxs>1</NbOfTxs>{total}"})
        report = await _refused(h, world, body, "AM16", words)
        assert report.fito_fipmt_sts_rpt.tx_inf_and_sts == []  # about the message: group level
    right = _sample(world, **{"<NbOfTxs>1</NbOfTxs>": "<NbOfTxs>01</NbOfTxs><CtrlSum>1000</CtrlSum>"})
    assert (await _post(h, world.hk, right)).status_code == 201
    assert await h.payment_count() - before == 1


async def test_amounts_and_charges_agree_under_the_links_charging_rule(harness: Harness) -> None:
    """InstdAmt 2.00 with a settlement amount of 1.00 settled 2.00; charges were read by nothing."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    settled = '<IntrBkSttlmAmt Ccy="HKD">1000.00</IntrBkSttlmAmt>'
    agent = f"<Agt><FinInstnId><BICFI>{world.hk.bic}</BICFI></FinInstnId></Agt>"
    cases = [
        (
            {
                settled: '<IntrBkSttlmAmt Ccy="HKD">1.00</IntrBkSttlmAmt>',
                DATE: f'{DATE}<InstdAmt Ccy="HKD">2.00</InstdAmt>',
            },
            "AM09",
            "CdtTrfTxInf/IntrBkSttlmAmt 1.00 HKD should be 2.00: InstdAmt, as under ChrgBr SLEV",
        ),
        (
            {
                DATE: f'{DATE}<InstdAmt Ccy="HKD">1000.00</InstdAmt>',
                BEARER: f'<ChrgBr>CRED</ChrgBr><ChrgsInf><Amt Ccy="HKD">5.00</Amt>{agent}</ChrgsInf>',
            },
            "AM09",
            "should be 995.00: InstdAmt 1000.00 less the ChrgsInf deducted under ChrgBr CRED (5.00)",
        ),
        ({DATE: f'{DATE}<InstdAmt Ccy="CNY">917.70</InstdAmt>'}, "AM11", "CdtTrfTxInf/InstdAmt is in CNY"),
        ({BEARER: f"<XchgRate>0.9177</XchgRate>{BEARER}"}, "CH17", "CdtTrfTxInf/XchgRate 0.9177"),
        (
            {BEARER: f'{BEARER}<ChrgsInf><Amt Ccy="HKD">5.00</Amt>{agent}</ChrgsInf>'},
            "CH21",
            "needs InstdAmt",
        ),
    ]
    for replace, code, words in cases:
        report = await _refused(h, world, _sample(world, **replace), code, words)
        (tx,) = report.fito_fipmt_sts_rpt.tx_inf_and_sts
        assert tx.orgnl_instr_id == "HARBOURHK-INSTR-000001"  # the transaction's references, echoed
    assert await h.payment_count() - before == 0
    # SHAR: 5.00 of charges came off the 1005.00 instructed; the link pays the 1000.00 settled
    shared = _sample(
        world,
        **{
            DATE: f'{DATE}<InstdAmt Ccy="HKD">1005.00</InstdAmt>',
            BEARER: f'<ChrgBr>SHAR</ChrgBr><ChrgsInf><Amt Ccy="HKD">5.00</Amt>{agent}</ChrgsInf>',
        },
    )
    response = await _post(h, world.hk, shared)
    assert response.status_code == 201, response.text
    payment = (await h.http.get(response.headers["location"], headers=world.hk.headers)).json()
    assert payment["source_amount"] == "1000.00"
    assert await h.balance(world.hk_account) == ("49000.00", "0.00")


async def test_the_debtor_agent_is_the_callers_bank(harness: Harness) -> None:
    """A message whose debtor agent was another bank was accepted under the caller's key."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    assert world.other.bic is not None
    other_member = f"<ClrSysMmbId><MmbId>{world.other.participant_id}</MmbId></ClrSysMmbId>"
    other_bic = f"<BICFI>{world.other.bic}</BICFI>"
    cases = [
        ({AGENT: other_member}, "RC09", "CdtTrfTxInf/DbtrAgt/FinInstnId/ClrSysMmbId/MmbId"),
        (
            {AGENT: f"<BICFI>{world.other.bic}</BICFI>"},
            "RC06",
            f"DbtrAgt/FinInstnId/BICFI {world.other.bic} is not",
        ),
        ({AGENT: "<Nm>Harbour Bank</Nm>"}, "RC03", "DbtrAgt/FinInstnId names no BICFI"),
        (
            {BEARER: f"{BEARER}<InstgAgt><FinInstnId>{other_bic}</FinInstnId></InstgAgt>"},
            "AGNT",
            "CdtTrfTxInf/InstgAgt",
        ),
    ]
    for replace, code, words in cases:
        await _refused(h, world, _sample(world, **replace), code, words)
    # this bank's message under the other bank's key
    response = await _post(h, world.other, _sample(world))
    assert iso_rejection(response, 422) == ["RC09"]
    assert await h.payment_count() - before == 0
    by_bic = _sample(world, **{AGENT: "<BICFI>" + (world.hk.bic or "")[:8] + "</BICFI>"})  # BIC8 is BIC11 XXX
    assert (await _post(h, world.hk, by_bic)).status_code == 201


async def test_the_settlement_date_is_todays_business_date(harness: Harness) -> None:
    """The settlement date was read by nothing; the link settles at once, on today's date (UTC+8)."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    await _refused(
        h, world, _sample(world, **{DATE: "<IntrBkSttlmDt>2026-06-21</IntrBkSttlmDt>"}), "DT01", "2026-06-21"
    )
    report = await _refused(
        h,
        world,
        _sample(world, **{DATE: "", "<SttlmInf>": "<IntrBkSttlmDt>2026-06-23</IntrBkSttlmDt><SttlmInf>"}),
        "DT01",
        "GrpHdr/IntrBkSttlmDt is 2026-06-23",
    )
    assert report.fito_fipmt_sts_rpt.tx_inf_and_sts == []
    # 23:59:59 in Hong Kong: a message dated today settles; sent again after midnight, it is a replay
    h.clock.advance(12 * 3600 - 1)
    body = _sample(world)
    first = await _post(h, world.hk, body)
    assert first.status_code == 201, first.text
    h.clock.advance(2)
    again = await _post(h, world.hk, body)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    keyed = await _post(h, world.hk, body, **{"Idempotency-Key": "after-midnight"})
    assert keyed.status_code == 201 and keyed.content == first.content  # its UETR's payment
    await _refused(h, world, _sample(world), "DT01", "today's business date 2026-06-23")
    assert await h.payment_count() - before == 1


async def test_a_uetr_is_unique_per_debtor_bank(harness: Harness) -> None:
    """A reused UETR settled again: UETRs were not stored."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    uetr = str(uuid.uuid4())
    body = _sample(world, **{UETR: uetr, "HARBOURHK20260622-000001": "UETR-1"})
    first = await _post(h, world.hk, body)
    assert first.status_code == 201, first.text
    # the same message: a replay, with its key or another
    for headers in ({}, {"Idempotency-Key": "another-key"}):
        again = await _post(h, world.hk, body, **headers)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content
    # another message with the UETR: refused DUPL, whatever else it changes
    for replace in (
        {UETR: uetr, "HARBOURHK20260622-000001": "UETR-2"},
        {UETR: uetr, "HARBOURHK20260622-000001": "UETR-1", ">1000.00<": ">999.00<"},
        {UETR: uetr, ">1000.00<": ">999.00<"},
    ):
        report = await _refused(
            h, world, _sample(world, **replace), "DUPL", f"PmtId/UETR {uetr} came with another"
        )
        (tx,) = report.fito_fipmt_sts_rpt.tx_inf_and_sts
        assert tx.orgnl_uetr == uetr
    assert await h.payment_count() - before == 1
    # unique per debtor bank: another bank may use it
    other_account = await h.account(world.other, "HKD", "1000.00")
    theirs = _sample(
        world,
        **{
            UETR: uetr,
            "HKDEMO0001": other_account,
            "<MmbId>HARBOURHK</MmbId>": f"<MmbId>{world.other.participant_id}</MmbId>",
            ">1000.00<": ">10.00<",
        },
    )
    assert (await _post(h, world.other, theirs)).status_code == 201
    # for good: past the idempotency key's life, the same message still answers its payment
    undated = _sample(world, **{DATE: ""})
    kept = await _post(h, world.hk, undated)
    assert kept.status_code == 201
    h.clock.advance((h.gw.settings.idempotency_ttl_h + 1) * 3600)
    later = await _post(h, world.hk, undated)
    assert later.status_code == 201 and later.headers["idempotent-replayed"] == "true"
    assert later.headers["location"] == kept.headers["location"]
    assert await h.payment_count() - before == 3


async def test_a_message_refused_before_paying_leaves_its_uetr_free(harness: Harness) -> None:
    """A refusal makes nothing: mended, the message goes through with the same UETR and MsgId."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    uetr = str(uuid.uuid4())
    wrong = _sample(
        world, **{UETR: uetr, "HARBOURHK20260622-000001": "MEND-1", "HKDEMO0001": "HKNOSUCHACCOUNT"}
    )
    response = await _post(h, world.hk, wrong)
    assert iso_rejection(response, 404) == ["AC02"]
    assert await h.payment_count() == before
    mended = _sample(world, **{UETR: uetr, "HARBOURHK20260622-000001": "MEND-1"})
    assert (await _post(h, world.hk, mended)).status_code == 201
    assert await h.payment_count() - before == 1


async def test_a_mobile_number_resolves_where_real_messages_carry_it(harness: Harness) -> None:
    """Mojaloop-style numbers (an MSISDN account id, the creditor's MSISDN id or contact mobile)
    were not used as proxies."""
    h = harness
    world = await iso_world(h)
    name = "pacs008_v10_mojaloop_style.xml"
    proxy = (
        "<CdtrAcct>\n        <Prxy>\n          <Tp>\n            <Prtry>MOBILE</Prtry>\n          </Tp>\n"
        "          <Id>+86-13800138000</Id>\n        </Prxy>\n      </CdtrAcct>"
    )
    creditor = "<Cdtr>\n        <Nm>ZHANG Xiao Ming</Nm>\n      </Cdtr>"
    msisdn = "<Othr><Id>+86-13800138000</Id><SchmeNm><Prtry>MSISDN</Prtry></SchmeNm></Othr>"
    places = [
        {proxy: f"<CdtrAcct><Id>{msisdn}</Id></CdtrAcct>"},
        {proxy: "", creditor: f"<Cdtr><Nm>ZHANG Xiao Ming</Nm><Id><PrvtId>{msisdn}</PrvtId></Id></Cdtr>"},
        {proxy: "", creditor: "<Cdtr><CtctDtls><MobNb>+86-13800138000</MobNb></CtctDtls></Cdtr>"},
    ]
    for number, replace in enumerate(places):
        body = _sample(world, name, **{**replace, "01J0F9Z8Q3HARBOURHK000014": f"MOBILE-{number}"})
        response = await _post(h, world.hk, body)
        assert response.status_code == 201, response.text
        payment = (await h.http.get(response.headers["location"], headers=world.hk.headers)).json()
        assert payment["creditor_account_id"] == world.cn_account
    assert await h.balance(world.hk_account) == ("49773.50", "0.00")
    other_number = msisdn.replace("+86-13800138000", "+86-13900139000")
    mobile = "<Prxy><Tp><Prtry>MOBILE</Prtry></Tp><Id>+86-13800138000</Id></Prxy>"
    body = _sample(world, name, **{proxy: f"<CdtrAcct><Id>{other_number}</Id>{mobile}</CdtrAcct>"})
    response = await _post(h, world.hk, body)
    assert iso_rejection(response, 422) == ["BE23"]
    assert "name different mobile numbers" in iso_reasons(response)[0]

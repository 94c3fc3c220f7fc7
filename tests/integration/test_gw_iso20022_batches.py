"""pacs.008 messages of several transactions, through the gateway: each transaction is a payment of its
own (its own limits, its own two-phase settlement), the pacs.002 gives the group's status and each
transaction's in the message's order, a replay answers the same report, and a status request naming
the message answers for all of its payments. Every answer is checked against pacs.002.001.10 and the
official XSD when at hand."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from gw_support import Harness, IsoWorld, fresh_uetr, iso_reasons, iso_rejection, iso_world, several
from iso20022_corpus import XSD_DIR, official_verdict

from fpslink.directory.phones import normalize_mobile
from fpslink.iso20022 import inbound, pacs002, pacs008
from fpslink.payments import service as payments_service
from fpslink.payments.acceptance import ENDPOINT

EXAMPLES = Path(__file__).parent / "iso20022_examples"
PAY = "/v1/iso20022/pacs.008"
ASK = "/v1/iso20022/pacs.028"
XML = {"Content-Type": "application/xml"}
MSG_ID = "HARBOURHK20260622-000001"
E2E = "INV-2026-0622-0001"
AMOUNT = ">1000.00<"
PURPOSE = "<Prtry>FAMILY_SUPPORT</Prtry>"
SAMPLE_UETR = "8a562c67-ca16-48ba-b074-65581be6f011"


def _message(world: IsoWorld, *changes: dict[str, str], msg_id: str | None = None) -> bytes:
    """The northbound sample with one transaction per `changes` (each with a UETR of its own) under a
    MsgId of its own."""
    text = (EXAMPLES / "pacs008_northbound_proxy.xml").read_text()
    text = several(text, *changes).replace(MSG_ID, msg_id or f"M-{uuid.uuid4().hex[:20]}")
    return world.fill(fresh_uetr(text)).encode()


async def _post(h: Harness, world: IsoWorld, body: bytes) -> httpx.Response:
    return await h.http.post(PAY, content=body, headers={**world.hk.headers, **XML})


def _report(response: httpx.Response, status: int) -> pacs002.FitoFipaymentStatusReportV10:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/xml")
    report = pacs002.parse(response.content).fito_fipmt_sts_rpt
    if XSD_DIR.is_dir():
        assert official_verdict(response.content) is True
    return report


def _payment_id(clr_sys_ref: str | None) -> str:
    assert clr_sys_ref is not None
    return str(uuid.UUID(clr_sys_ref))


def _per_status(report: pacs002.FitoFipaymentStatusReportV10) -> list[tuple[str, str]]:
    (group,) = report.orgnl_grp_inf_and_sts
    return [(d.dtld_sts, d.dtld_nb_of_txs) for d in group.nb_of_txs_per_sts]


async def test_each_transaction_settles_as_a_payment_of_its_own(harness: Harness) -> None:
    """A message with two transactions was refused whole ("the link settles one transaction per message")."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    body = _message(
        world,
        {},
        {E2E: "INV-2026-0622-0002", AMOUNT: ">250.00<"},
        {E2E: "INV-2026-0622-0003", AMOUNT: ">10.00<"},
    )
    response = await _post(h, world, body)
    report = _report(response, 201)
    (group,) = report.orgnl_grp_inf_and_sts
    assert (group.orgnl_msg_nm_id, group.orgnl_nb_of_txs, group.grp_sts) == ("pacs.008.001.08", "3", "ACSC")
    assert _per_status(report) == [("ACSC", "3")]
    statuses = report.tx_inf_and_sts
    assert [t.orgnl_end_to_end_id for t in statuses] == [E2E, "INV-2026-0622-0002", "INV-2026-0622-0003"]
    assert [t.tx_sts for t in statuses] == ["ACSC"] * 3
    assert len({t.orgnl_uetr for t in statuses}) == len({t.clr_sys_ref for t in statuses}) == 3
    assert "location" not in response.headers and "idempotent-replayed" not in response.headers
    for status, amount in zip(statuses, ("1000.00", "250.00", "10.00"), strict=True):
        found = await h.http.get(f"/v1/payments/{_payment_id(status.clr_sys_ref)}", headers=world.hk.headers)
        payment = found.json()
        assert (payment["status"], payment["source_amount"]) == ("SETTLED", amount)
        assert payment["end_to_end_id"] == status.orgnl_end_to_end_id
        events = [e["event"] for e in payment["events"]]
        assert events.count("LIMITS_RESERVED") == events.count("DECIDED_COMMIT") == 1, events
    assert await h.payment_count() - before == 3
    assert await h.balance(world.hk_account) == ("48740.00", "0.00")


async def test_a_replay_of_the_message_answers_the_same_report(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    body = _message(world, {}, {E2E: "INV-2026-0622-0002", AMOUNT: ">20.00<"})
    first = await _post(h, world, body)
    _report(first, 201)
    count = await h.payment_count()
    again = await _post(h, world, body)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert await h.payment_count() == count
    assert await h.balance(world.hk_account) == ("48980.00", "0.00")


async def test_each_transaction_counts_against_the_limits_on_its_own(harness: Harness) -> None:
    """Three payments of 4,000 HKD from one account against the daily limit of 10,000: two settle,
    one is rejected AM14 (which one is the order the batch accepted them in), and the group is PART."""
    h = harness
    world = await iso_world(h)
    body = _message(
        world,
        {AMOUNT: ">4000.00<"},
        {E2E: "INV-2026-0622-0002", AMOUNT: ">4000.00<"},
        {E2E: "INV-2026-0622-0003", AMOUNT: ">4000.00<"},
    )
    first = await _post(h, world, body)
    report = _report(first, 201)
    (group,) = report.orgnl_grp_inf_and_sts
    assert group.grp_sts == "PART"
    assert _per_status(report) == [("ACSC", "2"), ("RJCT", "1")]
    (rejected,) = [t for t in report.tx_inf_and_sts if t.tx_sts == "RJCT"]
    assert [r.rsn.cd for r in rejected.sts_rsn_inf if r.rsn] == ["AM14"]
    payment = (
        await h.http.get(f"/v1/payments/{_payment_id(rejected.clr_sys_ref)}", headers=world.hk.headers)
    ).json()
    assert (payment["status"], payment["reason_code"]) == ("REJECTED", "AM14")
    assert await h.balance(world.hk_account) == ("42000.00", "0.00")
    again = await _post(h, world, body)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"


async def test_a_transaction_the_rules_refuse_is_refused_alone(harness: Harness) -> None:
    """An unknown purpose (FF07) and a UETR given twice in one message (DUPL) refuse those two
    transactions; the first is paid."""
    h = harness
    world = await iso_world(h)
    uetr = str(uuid.uuid4())
    text = several(
        (EXAMPLES / "pacs008_northbound_proxy.xml").read_text(),
        {SAMPLE_UETR: uetr},
        {E2E: "INV-2026-0622-0002", PURPOSE: "<Prtry>LOTTERY</Prtry>"},
        {E2E: "INV-2026-0622-0003", SAMPLE_UETR: uetr, AMOUNT: ">5.00<"},
    ).replace(MSG_ID, f"M-{uuid.uuid4().hex[:20]}")
    body = world.fill(text.replace(SAMPLE_UETR, str(uuid.uuid4()))).encode()
    before = await h.payment_count()
    first = await _post(h, world, body)
    report = _report(first, 201)
    assert report.orgnl_grp_inf_and_sts[0].grp_sts == "PART"
    paid, purpose, twice = report.tx_inf_and_sts
    assert (paid.tx_sts, paid.orgnl_uetr) == ("ACSC", uetr)
    assert purpose.tx_sts == twice.tx_sts == "RJCT"
    assert purpose.clr_sys_ref is None and twice.clr_sys_ref is None
    assert [r.rsn.cd for r in purpose.sts_rsn_inf if r.rsn] == ["FF07"]
    assert [r.rsn.cd for r in twice.sts_rsn_inf if r.rsn] == ["DUPL"]
    assert "also the UETR of transaction 1 of this message" in "".join(twice.sts_rsn_inf[0].addtl_inf)
    assert await h.payment_count() - before == 1
    again = await _post(h, world, body)
    assert again.content == first.content


async def test_a_message_whose_every_transaction_is_refused_makes_nothing(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    body = _message(
        world,
        {PURPOSE: "<Prtry>LOTTERY</Prtry>"},
        {E2E: "INV-2026-0622-0002", "HKDEMO0001": "HKNOSUCH0001"},
    )
    response = await _post(h, world, body)
    report = _report(response, 422)
    assert report.orgnl_grp_inf_and_sts[0].grp_sts == "RJCT"
    assert [[r.rsn.cd for r in t.sts_rsn_inf if r.rsn] for t in report.tx_inf_and_sts] == [["FF07"], ["AC02"]]
    assert all(t.tx_sts == "RJCT" for t in report.tx_inf_and_sts)
    assert await h.payment_count() == before


@pytest.mark.settings(iso20022_max_transactions=2)
async def test_more_transactions_than_the_setting_allows_are_refused_whole(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()
    body = _message(world, {}, {E2E: "INV-2026-0622-0002"}, {E2E: "INV-2026-0622-0003"})
    response = await _post(h, world, body)
    assert iso_rejection(response, 422) == ["AM18"]
    assert iso_reasons(response) == [
        "the message carries 3 CdtTrfTxInf: the link takes at most 2 in one message; send the rest in another"
    ]
    assert await h.payment_count() == before


def _left(response: httpx.Response) -> int:
    """What the bank's quota holds after this answer, from its RateLimit field."""
    field = response.headers["ratelimit"]
    return int(field.split(";r=")[1].split(";")[0])


@pytest.mark.settings(rate_limit_quota=11, rate_limit_window_s=3600, rate_limit_max_wait_s=0)
async def test_the_banks_quota_counts_transactions_not_messages(harness: Harness) -> None:
    """Before: a message counted as one request, so a bank sending messages of 100 transactions
    paid 100 times its quota's worth of payments and took the shared sandbox from the others."""
    h = harness
    world = await iso_world(h)
    before = await h.payment_count()

    def three() -> bytes:
        return _message(world, {}, {E2E: "INV-2026-0622-0002"}, {E2E: "INV-2026-0622-0003"})

    first = await _post(h, world, three())
    assert first.status_code == 201, first.text
    left = _left(first)
    assert left in (11 - 3, 11 - 1 - 3), first.headers["ratelimit"]  # (the account's opening may spend one)
    for _ in range(2):
        again = await _post(h, world, three())
        assert again.status_code == 201, again.text
        assert _left(again) == left - 3, "each transaction spends a token, not each message"
        left -= 3
    assert left in (1, 2) and await h.payment_count() - before == 9

    refused = await _post(h, world, three())  # one or two left: not enough for three payments
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "RATE_LIMITED"
    assert [k for k, _ in refused.headers.multi_items()].count("ratelimit") == 1
    assert int(refused.headers["retry-after"]) > 0
    assert await h.payment_count() - before == 9, "a message refused for its quota pays nothing"


async def test_a_status_request_naming_the_message_answers_for_each_payment(harness: Harness) -> None:
    h = harness
    world = await iso_world(h)
    msg_id = f"M-{uuid.uuid4().hex[:20]}"
    body = _message(
        world,
        {},
        {E2E: "INV-2026-0622-0002", AMOUNT: ">20.00<"},
        {E2E: "INV-2026-0622-0003", PURPOSE: "<Prtry>LOTTERY</Prtry>"},
        msg_id=msg_id,
    )
    paid = _report(await _post(h, world, body), 201)
    request = (EXAMPLES / "pacs028_v05_by_msgid.xml").read_text()
    request = request.replace("01J0F9Z8Q3HARBOURHK000014", msg_id).replace(
        "pacs.008.001.10", "pacs.008.001.08"
    )
    answer = await h.http.post(ASK, content=world.fill(request).encode(), headers={**world.hk.headers, **XML})
    report = _report(answer, 200)
    (group,) = report.orgnl_grp_inf_and_sts
    assert (group.orgnl_msg_id, group.grp_sts, group.orgnl_nb_of_txs) == (msg_id, "ACSC", "2")
    assert [t.clr_sys_ref for t in report.tx_inf_and_sts] == [t.clr_sys_ref for t in paid.tx_inf_and_sts[:2]]
    # a transaction's reference narrows the request to one payment
    narrowed = request.replace("<OrgnlGrpInf>", "<TxInf><OrgnlGrpInf>").replace(
        "</OrgnlGrpInf>", "</OrgnlGrpInf><OrgnlEndToEndId>INV-2026-0622-0002</OrgnlEndToEndId></TxInf>"
    )
    answer = await h.http.post(
        ASK, content=world.fill(narrowed).encode(), headers={**world.hk.headers, **XML}
    )
    (tx,) = _report(answer, 200).tx_inf_and_sts
    assert tx.clr_sys_ref == paid.tx_inf_and_sts[1].clr_sys_ref


async def test_a_transaction_whose_key_is_in_use_answers_409_once_the_others_are_done(
    harness: Harness,
) -> None:
    """The message answers as a message of one would (409 IDEMPOTENCY_IN_PROGRESS) while one of its
    transactions' keys belongs to a request still running; the others are paid first, and a resend
    once that key is free answers the whole report."""
    h = harness
    world = await iso_world(h)
    msg_id = f"M-{uuid.uuid4().hex[:20]}"
    body = _message(world, {}, {E2E: "INV-2026-0622-0002", AMOUNT: ">20.00<"}, msg_id=msg_id)
    second = pacs008.credit_transfers(inbound.read(body))[1]
    assert isinstance(second, pacs008.CreditTransfer)
    command = second.command
    proxy = normalize_mobile(command.creditor_proxy) if command.creditor_proxy else None
    key = f"pacs.008/{msg_id}/2"
    now = h.clock()
    async with h.gw.uow() as tx:
        assert await tx.idempotency.bind(
            scope=world.hk.participant_id,
            key=key,
            endpoint=ENDPOINT,
            fingerprint=payments_service._fingerprint(command, proxy),
            payment_id=None,
            now=now,
            lease_until=now + timedelta(minutes=5),
            expires_at=now + timedelta(days=2),
        )
        await tx.commit()
    before = await h.payment_count()
    busy = await _post(h, world, body)
    assert busy.status_code == 409 and busy.json()["code"] == "IDEMPOTENCY_IN_PROGRESS", busy.text
    assert await h.payment_count() - before == 1  # the first transaction was paid meanwhile
    async with h.gw.uow() as tx:
        await tx.idempotency.release(scope=world.hk.participant_id, key=key)
        await tx.commit()
    report = _report(await _post(h, world, body), 201)
    assert [t.tx_sts for t in report.tx_inf_and_sts] == ["ACSC", "ACSC"]
    assert await h.payment_count() - before == 2

"""The certification kit judged by clients that behave: the reference client (examples/) passes every
scenario, the naive one fails exactly those it should, against a served sandbox. A run perturbs its
own bank's requests and webhooks only: the creditor's bank sees its real events, once each.

Before: there was no /v1/certifications, and nothing judged a bank's client.
"""

from __future__ import annotations

import time

import httpx
from certification_support import Sandbox, parties, sandbox, statuses

from examples.naive_client import NaiveClient, NaiveReceiver
from examples.reference_client import Receiver, certify

__all__ = ["sandbox"]  # the module's served sandbox (a fixture)

EVERY = {
    "LOST_REPLY",
    "IN_PROGRESS",
    "SLOW_IBPS",
    "REJECTED_AM02",
    "REJECTED_AM14",
    "REJECTED_BE23",
    "REJECTED_AB06",
    "QUOTE_EXPIRED",
    "RATE_LIMITED",
    "WEBHOOK_DUPLICATE",
    "WEBHOOK_BAD_SIGNATURE",
    "WEBHOOK_STALE_TIMESTAMP",
    "RECONCILIATION",
}
WEBHOOKS = {"WEBHOOK_DUPLICATE", "WEBHOOK_BAD_SIGNATURE", "WEBHOOK_STALE_TIMESTAMP"}
NAIVE_PASSES = {
    "REJECTED_AM02",
    "REJECTED_AM14",
    "REJECTED_BE23",
    "REJECTED_AB06",
    "WEBHOOK_DUPLICATE",
    "WEBHOOK_BAD_SIGNATURE",
}


async def test_the_reference_client_passes_every_scenario_and_only_its_bank_is_touched(
    sandbox: Sandbox,
) -> None:
    payer, payee = await parties(sandbox.url)
    creditor_side = Receiver("127.0.0.1", sandbox.receivers[3])
    creditor_side.start()
    try:
        async with httpx.AsyncClient(base_url=sandbox.url, timeout=30, headers=payee.headers) as http:
            # the creditor's bank listens too: it must see its real events only
            hooked = await http.post("/v1/webhooks", json={"url": creditor_side.url})
            assert hooked.status_code == 201, hooked.text
            creditor_side.secret = hooked.json()["secret"].encode()
        receiver = Receiver("127.0.0.1", sandbox.receivers[0])
        began = time.monotonic()
        result = await certify(
            base_url=sandbox.url,
            api_key=payer.key,
            debtor=payer.account,
            creditor=payee.proxy or "",
            target_currency="CNY",
            receiver=receiver,
        )
        took = time.monotonic() - began
    finally:
        creditor_side.stop()
    print(f"reference client: full run in {took:.1f} s")  # the closing note's figure (pytest -s)
    assert statuses(result) == dict.fromkeys(EVERY, "PASSED"), result
    assert result["status"] == "PASSED" and result["passed"] == 13 and result["failed"] == 0
    for scenario in result["scenarios"]:
        if scenario["scenario"] != "RECONCILIATION":
            assert scenario["evidence"], scenario  # observed, with request ids and times
    lost = next(s for s in result["scenarios"] if s["scenario"] == "LOST_REPLY")
    assert "dropped on purpose" in lost["evidence"][0]["what"]
    assert lost["evidence"][0]["request_id"] and lost["evidence"][0]["at"]
    # the run's start and end were announced to the bank's webhook
    certification_id = result["certification_id"]
    kinds = {e["event"] for e in receiver.events.values() if "certification" in e}
    assert kinds == {"certification.started", "certification.completed"}
    # the bad and stale probes were refused
    assert len(receiver.refused) == 2

    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30, headers=payer.headers) as http:
        page = await http.get(f"/v1/certifications/{certification_id}/certificate")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src" not in page.headers["content-security-policy"]
        assert 'id="run-status" class="PASSED">PASSED<' in page.text and certification_id in page.text
        log = (await http.get("/v1/webhooks/deliveries", params={"limit": 200})).json()["items"]
        assert {d["probe"] for d in log} == {None, "DUPLICATE", "BAD_SIGNATURE", "STALE_TIMESTAMP"}
        assert {d["certification_id"] for d in log} == {None, certification_id}
        listed = (await http.get("/v1/certifications")).json()["items"]
        assert [r["certification_id"] for r in listed] == [certification_id]
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30, headers=payee.headers) as http:
        # the creditor's bank was told of the settled payments, once each, and of nothing else
        theirs = (await http.get("/v1/webhooks/deliveries", params={"limit": 200})).json()["items"]
        assert theirs and {d["event"] for d in theirs} == {"payment.settled"}
        assert {(d["probe"], d["certification_id"]) for d in theirs} == {(None, None)}
        assert all(d["status"] == "DELIVERED" for d in theirs)
    assert not creditor_side.refused


async def test_the_naive_client_fails_what_it_gets_wrong_and_passes_the_rest(sandbox: Sandbox) -> None:
    payer, payee = await parties(sandbox.url)
    result = await certify(
        base_url=sandbox.url,
        api_key=payer.key,
        debtor=payer.account,
        creditor=payee.proxy or "",
        target_currency="CNY",
        receiver=NaiveReceiver("127.0.0.1", sandbox.receivers[1]),
        client_type=NaiveClient,
    )
    got = statuses(result)
    assert {s for s, status in got.items() if status == "PASSED"} == NAIVE_PASSES, result
    assert {s for s, status in got.items() if status == "FAILED"} == EVERY - NAIVE_PASSES, result
    assert result["status"] == "FAILED"
    reasons = {s["scenario"]: s["reason"] for s in result["scenarios"]}
    assert reasons["LOST_REPLY"].startswith("paid twice")
    assert reasons["IN_PROGRESS"].startswith("paid twice")
    assert "poll no more often" in reasons["SLOW_IBPS"]
    assert "Retry-After said 2 s" in reasons["RATE_LIMITED"]
    assert "expired quote" in reasons["QUOTE_EXPIRED"]
    assert "stale timestamp" in reasons["WEBHOOK_STALE_TIMESTAMP"]
    assert "MISSING_FROM_RECORD" in reasons["RECONCILIATION"]
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30, headers=payer.headers) as http:
        page = await http.get(f"/v1/certifications/{result['certification_id']}/certificate")
        assert 'class="FAILED">FAILED<' in page.text and "paid twice" in page.text


async def test_an_ibps_bank_certifies_its_southbound_payments(sandbox: Sandbox) -> None:
    payee, payer = await parties(sandbox.url)  # the IBPS bank pays the FPS bank's account, in CNY
    result = await certify(
        base_url=sandbox.url,
        api_key=payer.key,
        debtor=payer.account,
        creditor=payee.account,
        target_currency="HKD",
        receiver=Receiver("127.0.0.1", sandbox.receivers[2]),
        suite="PAYMENTS",
    )
    assert statuses(result) == dict.fromkeys(EVERY - WEBHOOKS, "PASSED"), result
    assert {s["currency"] for s in result["scenarios"] if s["amount"]} == {"CNY"}

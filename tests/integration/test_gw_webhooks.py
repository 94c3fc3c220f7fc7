"""Webhooks: signed deliveries to a receiver on 127.0.0.1, retried after a failure, and logged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from gw_support import Harness, cn_mobile, problem
from webhook_support import Receiver, until, webhook_receiver

from fpslink.webhooks import signing


@pytest.fixture
def receiver(harness: Harness) -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1, which the gateway is allowed to reach."""
    with webhook_receiver() as got:
        harness.allow_webhooks(got.endpoint)
        yield got


@pytest.mark.settings(webhook_interval_s=0.05, webhook_backoff_s=1.0, webhook_timeout_s=2.0)
async def test_settled_payment_is_delivered_signed_after_a_retry(
    harness: Harness, receiver: Receiver
) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    hk_acc, cn_acc = await h.account(hk, "HKD", "5000.00"), await h.account(cn, "CNY", "0.00")
    proxy = await h.proxy(cn, cn_acc)
    secrets = {}
    for bank, path in ((hk, "/hk"), (cn, "/cn")):
        response = await h.http.post("/v1/webhooks", json={"url": receiver.base + path}, headers=bank.headers)
        assert response.status_code == 201, response.text
        secrets[path] = response.json()["secret"]
        assert secrets[path].startswith("whsec_")
    listed = (await h.http.get("/v1/webhooks", headers=hk.headers)).json()["items"]
    assert [w["url"] for w in listed] == [receiver.base + "/hk"]
    assert listed[0].get("secret") is None

    paid = (await h.pay(hk, debtor=hk_acc, proxy=proxy, amount="100.00", currency="HKD")).json()
    assert paid["status"] == "SETTLED"
    await until(lambda: len(receiver.on("/hk")) == 1 and len(receiver.on("/cn")) == 1)
    for _ in range(200):
        log = (await h.http.get("/v1/webhooks/deliveries", headers=hk.headers)).json()["items"]
        if log[0]["last_status_code"] is not None:
            break
        await asyncio.sleep(0.05)
    assert log[0]["status"] == "PENDING" and log[0]["attempts"] == 1 and log[0]["last_status_code"] == 500
    assert log[0]["next_attempt_at"] is not None
    h.clock.advance(5)
    await until(lambda: len(receiver.on("/hk")) == 2 and len(receiver.on("/cn")) == 2)

    for path, bank in (("/hk", hk), ("/cn", cn)):
        first, second = receiver.on(path)
        assert first.body == second.body
        assert first.headers["fpslink-event-id"] == second.headers["fpslink-event-id"]
        header = second.headers[signing.HEADER.lower()]
        timestamp = int(header.split(",")[0].removeprefix("t="))
        assert signing.verify(secrets[path], header, second.body, now=timestamp)
        assert not signing.verify("whsec_wrong", header, second.body, now=timestamp)
        assert not signing.verify(secrets[path], header, second.body + b" ", now=timestamp)
        event = json.loads(second.body)
        assert event["event"] == "payment.settled"
        assert event["event_id"] == second.headers["fpslink-event-id"]
        assert event["payment"]["payment_id"] == paid["payment_id"]
        assert event["payment"]["status"] == "SETTLED"
        assert event["payment"]["target_amount"] == paid["target_amount"]
        await _until_delivered(h, bank.headers)

    page = await h.http.get("/v1/webhooks/deliveries", params={"limit": 1}, headers=hk.headers)
    item = page.json()["items"][0]
    assert item["status"] == "DELIVERED" and item["attempts"] == 2 and item["last_status_code"] == 200
    assert item["delivered_at"] is not None and item["next_attempt_at"] is None
    assert item["payment_id"] == paid["payment_id"] and item["event"] == "payment.settled"


async def _until_delivered(h: Harness, headers: dict[str, str]) -> None:
    for _ in range(200):
        items = (await h.http.get("/v1/webhooks/deliveries", headers=headers)).json()["items"]
        if items and all(item["status"] == "DELIVERED" for item in items):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries not marked DELIVERED in time")


@pytest.mark.settings(webhook_interval_s=0.05, webhook_backoff_s=1.0, webhook_timeout_s=2.0)
async def test_rejections_are_delivered_and_the_log_pages(harness: Harness, receiver: Receiver) -> None:
    h = harness
    hk = await h.bank("FPS")
    hk_acc = await h.account(hk, "HKD", "5000.00")
    created = await h.http.post("/v1/webhooks", json={"url": receiver.base + "/r"}, headers=hk.headers)
    assert created.status_code == 201
    for _ in range(3):
        paid = await h.pay(hk, debtor=hk_acc, proxy=cn_mobile(), amount="10.00", currency="HKD")
        assert paid.json()["reason_code"] == "BE23"
    await until(lambda: len(receiver.on("/r")) >= 3)
    h.clock.advance(5)
    await until(lambda: len(receiver.on("/r")) >= 4)
    assert {json.loads(r.body)["event"] for r in receiver.on("/r")} == {"payment.rejected"}
    for delivered in receiver.on("/r"):  # nothing debited or credited; the amount asked is quoted
        event = json.loads(delivered.body)["payment"]
        assert (event["source_amount"], event["target_amount"]) == (None, None)
        assert event["quoted_source_amount"] == "10.00"
    seen, cursor = [], None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await h.http.get("/v1/webhooks/deliveries", params=params, headers=hk.headers)).json()
        seen += [item["delivery_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3
    problem(
        await h.http.get("/v1/webhooks/deliveries", params={"cursor": "!!"}, headers=hk.headers),
        422,
        "INVALID_CURSOR",
    )
    other = await h.bank("FPS")
    assert (await h.http.get("/v1/webhooks/deliveries", headers=other.headers)).json()["items"] == []
    webhook_id = created.json()["webhook_id"]
    problem(
        await h.http.delete(f"/v1/webhooks/{webhook_id}", headers=other.headers), 404, "WEBHOOK_NOT_FOUND"
    )
    assert (await h.http.delete(f"/v1/webhooks/{webhook_id}", headers=hk.headers)).status_code == 204
    problem(await h.http.delete(f"/v1/webhooks/{webhook_id}", headers=hk.headers), 404, "WEBHOOK_NOT_FOUND")
    assert (await h.http.get("/v1/webhooks", headers=hk.headers)).json()["items"] == []


@pytest.mark.settings(webhook_allow="localhost:9,127.0.0.2:8443,[::1]:9,127.0.0.1:9")
async def test_webhook_urls_stay_on_the_allowed_local_endpoints(harness: Harness) -> None:
    h = harness
    hk = await h.bank("FPS")
    for url in (
        "http://example.com/hook",
        "ftp://127.0.0.1/x",
        "http://10.0.0.1/x",
        "http://user:pw@127.0.0.1/",
        "http://127.0.0.1:10/x",
        "http://localhost:8080/x",
    ):
        problem(
            await h.http.post("/v1/webhooks", json={"url": url}, headers=hk.headers),
            422,
            "WEBHOOK_URL_NOT_ALLOWED",
        )
    for url in ("http://localhost:9/x", "https://127.0.0.2:8443/x", "http://[::1]:9/x"):
        response = await h.http.post("/v1/webhooks", json={"url": url}, headers=hk.headers)
        assert response.status_code == 201, response.text
    problem(
        await h.http.post("/v1/webhooks", json={"url": "http://127.0.0.1/"}, headers=h.operator),
        403,
        "PARTICIPANT_ONLY",
    )
    for n in range(2):
        await h.http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:9/{n}"}, headers=hk.headers)
    problem(
        await h.http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/6"}, headers=hk.headers),
        409,
        "WEBHOOK_LIMIT_REACHED",
    )


@pytest.mark.settings(webhook_allow_hosts="hooks.bank.test")
async def test_operator_can_allow_more_hosts(harness: Harness) -> None:
    h = harness

    async def resolve(host: str, port: int) -> list[str]:  # no DNS in tests
        assert (host, port) == ("hooks.bank.test", 443)
        return ["93.184.215.14"]

    h.gw.resolver = resolve
    hk = await h.bank("FPS")
    response = await h.http.post(
        "/v1/webhooks", json={"url": "https://hooks.bank.test/x"}, headers=hk.headers
    )
    assert response.status_code == 201, response.text
    assert (
        await h.http.delete(f"/v1/webhooks/{response.json()['webhook_id']}", headers=hk.headers)
    ).status_code == 204

"""Who may see and touch what: 401 without a key, 403 for the wrong role, 404 for another bank's."""

from __future__ import annotations

import uuid

from gw_support import Harness, problem


async def test_missing_or_unknown_key_is_401(harness: Harness) -> None:
    h = harness
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        problem(await h.http.get("/v1/fx/rates", headers=headers), 401, "UNAUTHORIZED")
    assert (await h.http.get("/healthz")).status_code == 200
    assert (await h.http.get("/metrics")).status_code == 200


async def test_roles(harness: Harness) -> None:
    h = harness
    hk = await h.bank("FPS")
    participant = {"participant_id": "XX" + uuid.uuid4().hex[:8].upper(), "name": "X", "system": "FPS"}
    problem(await h.http.post("/v1/participants", json=participant, headers=hk.headers), 403, "OPERATOR_ONLY")
    account = {"participant_id": hk.participant_id, "holder_name": "A", "currency": "HKD"}
    problem(await h.http.post("/v1/accounts", json=account, headers=hk.headers), 403, "OPERATOR_ONLY")
    quote = {"source_currency": "HKD", "target_currency": "CNY", "amount": "1.00", "amount_type": "SEND"}
    problem(await h.http.post("/v1/quotes", json=quote, headers=h.operator), 403, "PARTICIPANT_ONLY")
    payment = {
        "debtor_account_id": "HKDEMO0001",
        "creditor": {"account_id": "CNDEMO0001"},
        "amount": "1.00",
        "currency": "HKD",
        "purpose": "GIFT",
    }
    response = await h.http.post(
        "/v1/payments", json=payment, headers={**h.operator, "Idempotency-Key": "op-1"}
    )
    problem(response, 403, "PARTICIPANT_ONLY")
    dup = await h.http.post(
        "/v1/participants",
        json={"participant_id": hk.participant_id, "name": "again", "system": "FPS"},
        headers=h.operator,
    )
    problem(dup, 409, "PARTICIPANT_EXISTS")


async def test_a_bank_cannot_read_or_use_another_banks_things(harness: Harness) -> None:
    h = harness
    mine, theirs, cn = await h.bank("FPS"), await h.bank("FPS"), await h.bank("IBPS")
    my_acc = await h.account(mine, "HKD", "100.00")
    their_acc = await h.account(theirs, "HKD", "100.00")
    cn_acc = await h.account(cn, "CNY", "100.00")

    for path in (f"/v1/accounts/{their_acc}", f"/v1/accounts/{their_acc}/limits", f"/v1/accounts/{cn_acc}"):
        problem(await h.http.get(path, headers=mine.headers), 404, "ACCOUNT_NOT_FOUND")
    problem(await h.http.get("/v1/accounts/HKNOSUCHTHING", headers=mine.headers), 404, "ACCOUNT_NOT_FOUND")

    # another bank's debtor account: 404, and nothing is created
    before = await h.payment_count()
    response = await h.pay(mine, debtor=their_acc, creditor_account=cn_acc, amount="1.00", currency="HKD")
    problem(response, 404, "ACCOUNT_NOT_FOUND")
    assert await h.payment_count() == before

    # another bank's quote
    quote = await h.http.post(
        "/v1/quotes",
        json={"source_currency": "HKD", "target_currency": "CNY", "amount": "1.00", "amount_type": "SEND"},
        headers=theirs.headers,
    )
    response = await h.pay(
        mine,
        debtor=my_acc,
        creditor_account=cn_acc,
        amount="1.00",
        currency="HKD",
        quote_id=quote.json()["quote_id"],
    )
    problem(response, 404, "QUOTE_NOT_FOUND")
    assert await h.payment_count() == before

    # another bank's proxy registration
    register = await h.http.post(
        "/v1/proxies",
        json={"proxy_type": "MOBILE", "proxy_value": "+85296000001", "account_id": their_acc},
        headers=mine.headers,
    )
    problem(register, 404, "ACCOUNT_NOT_FOUND")

    # another bank's payment: the debtor's and creditor's banks see it, a third bank does not
    paid = await h.pay(theirs, debtor=their_acc, creditor_account=cn_acc, amount="1.00", currency="HKD")
    pid = paid.json()["payment_id"]
    problem(await h.http.get(f"/v1/payments/{pid}", headers=mine.headers), 404, "PAYMENT_NOT_FOUND")
    assert (await h.http.get(f"/v1/payments/{pid}", headers=theirs.headers)).status_code == 200
    assert (await h.http.get(f"/v1/payments/{pid}", headers=cn.headers)).status_code == 200
    assert (await h.http.get(f"/v1/payments/{pid}", headers=h.operator)).status_code == 200
    listed = (await h.http.get("/v1/payments", headers=mine.headers)).json()["items"]
    assert pid not in [p["payment_id"] for p in listed]
    assert pid in [
        p["payment_id"] for p in (await h.http.get("/v1/payments", headers=cn.headers)).json()["items"]
    ]


async def test_listing_pages_and_filters(harness: Harness) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "1000.00")
    creditor = await h.account(cn, "CNY", "0.00")
    ids = []
    for i in range(5):
        h.clock.advance(1)
        ids.append(
            (
                await h.pay(
                    hk, debtor=debtor, creditor_account=creditor, amount=f"{i + 1}.00", currency="HKD"
                )
            ).json()["payment_id"]
        )
    h.clock.advance(1)
    rejected = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="9999.00", currency="HKD")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await h.http.get("/v1/payments", params=params, headers=hk.headers)).json()
        seen += [p["payment_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [rejected.json()["payment_id"], *reversed(ids)]
    only = (await h.http.get("/v1/payments", params={"status": "REJECTED"}, headers=hk.headers)).json()
    assert [p["payment_id"] for p in only["items"]] == [rejected.json()["payment_id"]]
    north = (await h.http.get("/v1/payments", params={"direction": "SOUTHBOUND"}, headers=hk.headers)).json()
    assert north["items"] == []
    problem(
        await h.http.get("/v1/payments", params={"cursor": "!!"}, headers=hk.headers), 422, "INVALID_CURSOR"
    )
    problem(
        await h.http.get("/v1/payments", params={"limit": 0}, headers=hk.headers), 422, "VALIDATION_ERROR"
    )

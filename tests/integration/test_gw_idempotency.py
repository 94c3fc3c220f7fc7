"""Idempotency-Key on payments (docs/architecture.md#rulings, R7) and on the other POST endpoints."""

from __future__ import annotations

import uuid

import pytest
from gw_support import Harness, problem


async def _pair(h: Harness) -> tuple[object, str, str]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, "HKD", "1000.00")
    creditor = await h.account(cn, "CNY", "0.00")
    return hk, debtor, creditor


async def test_replay_returns_the_original_and_moves_money_once(harness: Harness) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    key = str(uuid.uuid4())
    first = await h.pay(
        hk, debtor=debtor, creditor_account=creditor, amount="100.00", currency="HKD", key=key
    )
    again = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="100.0", currency="HKD", key=key)
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await h.balance(debtor) == ("900.00", "0.00")


async def test_quoted_key_is_the_same_key(harness: Harness) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    first = await h.pay(
        hk, debtor=debtor, creditor_account=creditor, amount="1.00", currency="HKD", key="abc-123"
    )
    again = await h.pay(
        hk, debtor=debtor, creditor_account=creditor, amount="1.00", currency="HKD", key='"abc-123"'
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["payment_id"] == first.json()["payment_id"]


async def test_replay_of_a_rejection_is_the_rejection(harness: Harness) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    key = str(uuid.uuid4())
    first = await h.pay(
        hk, debtor=debtor, creditor_account=creditor, amount="5000.00", currency="HKD", key=key
    )
    again = await h.pay(
        hk, debtor=debtor, creditor_account=creditor, amount="5000.00", currency="HKD", key=key
    )
    assert first.json()["reason_code"] == "AM04"
    assert again.status_code == 201 and again.json() == first.json()


async def test_same_key_different_body_is_422(harness: Harness) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    key = str(uuid.uuid4())
    await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD", key=key)
    other = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="11.00", currency="HKD", key=key)
    problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await h.balance(debtor) == ("990.00", "0.00")


async def test_keys_are_scoped_per_participant(harness: Harness) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    hk2 = await h.bank("FPS")
    debtor2 = await h.account(hk2, "HKD", "1000.00")
    key = str(uuid.uuid4())
    a = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD", key=key)
    b = await h.pay(hk2, debtor=debtor2, creditor_account=creditor, amount="10.00", currency="HKD", key=key)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["payment_id"] != b.json()["payment_id"]


async def test_key_is_required_and_validated(harness: Harness) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    body = {
        "debtor_account_id": debtor,
        "creditor": {"account_id": creditor},
        "amount": "1.00",
        "currency": "HKD",
        "purpose": "GIFT",
    }
    problem(await h.http.post("/v1/payments", json=body, headers=hk.headers), 422, "IDEMPOTENCY_KEY_MISSING")
    for bad in (b"a b", b"x" * 256, "\u00e9t\u00e9".encode(), b"tab\there"):
        response = await h.http.post(
            "/v1/payments", json=body, headers={**hk.headers, "Idempotency-Key": bad}
        )
        problem(response, 422, "IDEMPOTENCY_KEY_INVALID")
    assert await h.balance(debtor) == ("1000.00", "0.00")
    ok = await h.http.post("/v1/payments", json=body, headers={**hk.headers, "Idempotency-Key": "k" * 255})
    assert ok.status_code == 201


async def test_a_failed_validation_does_not_bind_the_key(harness: Harness) -> None:
    h = harness
    hk, debtor, creditor = await _pair(h)
    key = str(uuid.uuid4())
    bad = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="-1", currency="HKD", key=key)
    problem(bad, 422, "VALIDATION_ERROR")
    good = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="1.00", currency="HKD", key=key)
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers


async def test_other_posts_replay_their_stored_answer(harness: Harness) -> None:
    h = harness
    hk = await h.bank("FPS")
    body = {"source_currency": "HKD", "target_currency": "CNY", "amount": "100.00", "amount_type": "SEND"}
    headers = {**hk.headers, "Idempotency-Key": "quote-1"}
    first = await h.http.post("/v1/quotes", json=body, headers=headers)
    h.clock.advance(5)
    again = await h.http.post("/v1/quotes", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    changed = await h.http.post("/v1/quotes", json={**body, "amount": "101.00"}, headers=headers)
    problem(changed, 422, "IDEMPOTENCY_KEY_REUSED")
    without = await h.http.post("/v1/quotes", json=body, headers=hk.headers)
    assert without.json()["quote_id"] != first.json()["quote_id"]


async def test_account_opening_is_idempotent_with_a_key(harness: Harness) -> None:
    h = harness
    hk = await h.bank("FPS")
    body = {
        "participant_id": hk.participant_id,
        "holder_name": "LEE Ka Yan",
        "currency": "HKD",
        "opening_balance": "10.00",
    }
    headers = {**h.operator, "Idempotency-Key": str(uuid.uuid4())}
    first = await h.http.post("/v1/accounts", json=body, headers=headers)
    again = await h.http.post("/v1/accounts", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["account_id"] == again.json()["account_id"]


async def test_a_key_whose_request_died_answers_from_the_payment(harness: Harness) -> None:
    """While the first request runs the key answers 409; once its lease is over, the payment's state."""
    h = harness
    hk, debtor, creditor = await _pair(h)
    key = str(uuid.uuid4())

    class Crash(BaseException):
        pass

    def crash(point: str) -> None:
        if point == "accepted":
            raise Crash(point)

    h.gw.crash_hook = crash
    with pytest.raises(Crash):
        await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD", key=key)
    h.gw.crash_hook = lambda point: None
    running = await h.pay(
        hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD", key=key
    )
    problem(running, 409, "IDEMPOTENCY_IN_PROGRESS")
    h.clock.advance(h.gw.settings.request_lease_s + 1)
    pending = await h.pay(
        hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD", key=key
    )
    assert pending.status_code == 202
    assert pending.json()["status"] == "PENDING"
    assert pending.headers["idempotent-replayed"] == "true"
    from fpslink.settlement import recovery

    await recovery.sweep(h.gw)
    final = await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD", key=key)
    assert final.status_code == 201
    assert final.json()["status"] == "REJECTED" and final.json()["reason_code"] == "AB05"
    assert await h.balance(debtor) == ("1000.00", "0.00")

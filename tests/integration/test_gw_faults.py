"""Injected IBPS faults: every kind, the magic values, retries, the deadline and the circuit breaker.

Fault rules live in the session's one mock_ibps process, so every test here clears them when done.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from gw_support import Harness, problem

from fpslink.settlement import recovery

FAST = {"ibps_timeout_s": 1.0, "ibps_retries": 2, "ibps_backoff_s": 0.01, "payment_deadline_s": 6.0}


async def _pair(h: Harness, direction: str = "NORTHBOUND") -> dict[str, Any]:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    hk_acc = await h.account(hk, "HKD", "5000.00")
    cn_acc = await h.account(cn, "CNY", "5000.00")
    if direction == "NORTHBOUND":
        return {"bank": hk, "debtor": hk_acc, "creditor": cn_acc, "currency": "HKD", "cn": cn, "hk": hk}
    return {"bank": cn, "debtor": cn_acc, "creditor": hk_acc, "currency": "CNY", "cn": cn, "hk": hk}


async def _pay(h: Harness, w: dict[str, Any], amount: str = "100.00", **extra: Any) -> Any:
    return await h.pay(
        w["bank"],
        debtor=w["debtor"],
        creditor_account=w["creditor"],
        amount=amount,
        currency=w["currency"],
        **extra,
    )


async def _settle_pending(h: Harness) -> None:
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    await recovery.sweep(h.gw)


async def test_the_fault_api_is_the_operators(harness: Harness, faults: Any) -> None:
    h = harness
    bank = await h.bank("FPS")
    rule = {"call": "commit", "kind": "lost_reply", "probability": 0.5, "seed": 7}
    problem(await h.http.post("/v1/sandbox/faults", json=rule, headers=bank.headers), 403, "OPERATOR_ONLY")
    problem(await h.http.get("/v1/sandbox/faults", headers=bank.headers), 403, "OPERATOR_ONLY")
    bad = await h.http.post("/v1/sandbox/faults", json={**rule, "probability": 2}, headers=h.operator)
    problem(bad, 422, "VALIDATION_ERROR")
    bad = await h.http.post("/v1/sandbox/faults", json={**rule, "kind": "gremlins"}, headers=h.operator)
    problem(bad, 422, "VALIDATION_ERROR")
    created = await faults(**rule)
    assert created["rule_id"] and created["seed"] == 7
    listed = (await h.http.get("/v1/sandbox/faults", headers=h.operator)).json()
    assert [r["rule_id"] for r in listed["rules"]] == [created["rule_id"]]
    assert (await h.http.delete("/v1/sandbox/faults", headers=h.operator)).status_code == 204
    assert (await h.http.get("/v1/sandbox/faults", headers=h.operator)).json()["rules"] == []


@pytest.mark.settings(**FAST)
@pytest.mark.parametrize(
    ("call", "kind", "extra"),
    [
        ("prepare", "error", {}),
        ("prepare", "timeout", {"hang_ms": 3000}),
        ("prepare", "lost_reply", {"hang_ms": 3000}),
        ("commit", "error", {}),
        ("commit", "timeout", {"hang_ms": 3000}),
        ("commit", "lost_reply", {"hang_ms": 3000}),
        ("lookup", "error", {}),
    ],
)
async def test_a_failed_first_attempt_is_retried_and_settles(
    harness: Harness, faults: Any, call: str, kind: str, extra: dict[str, Any]
) -> None:
    h = harness
    w = await _pair(h)
    proxy = await h.proxy(w["cn"], w["creditor"])
    await faults(call=call, kind=kind, probability=1.0, only_attempts=1, **extra)
    body = (await h.pay(w["bank"], debtor=w["debtor"], proxy=proxy, amount="100.00", currency="HKD")).json()
    assert body["status"] == "SETTLED", body
    assert await h.balance(w["debtor"]) == ("4900.00", "0.00")
    assert await h.balance(w["creditor"]) == ("5091.77", "0.00")
    injected = (await h.http.get("/v1/sandbox/faults", headers=h.operator)).json()["injected"]
    assert injected[call][kind] >= 1


@pytest.mark.settings(**FAST)
@pytest.mark.parametrize("direction", ["NORTHBOUND", "SOUTHBOUND"])
async def test_duplicated_deliveries_and_latency_change_nothing(
    harness: Harness, faults: Any, direction: str
) -> None:
    h = harness
    w = await _pair(h, direction)
    for call in ("prepare", "commit", "abort"):
        await faults(call=call, kind="duplicate", probability=1.0)
    await faults(call="prepare", kind="latency", probability=1.0, latency_ms=150)
    settled = (await _pay(h, w, "100.00")).json()
    refused = (await _pay(h, w, "9000.00")).json()
    assert settled["status"] == "SETTLED", settled
    assert refused["status"] == "REJECTED" and refused["reason_code"] in {"AM02", "AM04"}
    debit = Decimal(settled["source_amount"])
    credit = Decimal(settled["target_amount"])
    assert await h.balance(w["debtor"]) == (f"{Decimal('5000.00') - debit}", "0.00")
    assert await h.balance(w["creditor"]) == (f"{Decimal('5000.00') + credit}", "0.00")


@pytest.mark.settings(ibps_timeout_s=0.5, ibps_retries=1, ibps_backoff_s=0.01, payment_deadline_s=1.5)
async def test_a_hanging_ibps_answers_pending_within_the_deadline_then_recovers(
    harness: Harness, faults: Any
) -> None:
    h = harness
    w = await _pair(h, "SOUTHBOUND")
    await faults(call="prepare", kind="timeout", probability=1.0, hang_ms=5000)
    await faults(call="abort", kind="timeout", probability=1.0, hang_ms=5000)
    response = await _pay(h, w)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["last_event"]["event"] == "IBPS_ABORT_FAILED"
    await h.http.delete("/v1/sandbox/faults", headers=h.operator)
    await _settle_pending(h)
    done = (await h.http.get(f"/v1/payments/{body['payment_id']}", headers=w["bank"].headers)).json()
    assert (done["status"], done["reason_code"]) == ("REJECTED", "AB06")
    assert await h.balance(w["debtor"]) == ("5000.00", "0.00")


@pytest.mark.settings(
    ibps_timeout_s=1.0,
    ibps_retries=0,
    ibps_breaker_threshold=2,
    ibps_breaker_reset_s=0.5,
    payment_deadline_s=4,
)
async def test_the_circuit_breaker_rejects_at_once_then_lets_a_trial_through(
    harness: Harness, faults: Any
) -> None:
    h = harness
    w = await _pair(h)
    await faults(call="prepare", kind="error", probability=1.0)
    await faults(call="abort", kind="error", probability=1.0)
    first = (await _pay(h, w)).json()  # prepare fails, abort fails: the circuit opens
    assert first["status"] == "PENDING", first
    second = (await _pay(h, w)).json()
    assert (second["status"], second["reason_code"]) == ("REJECTED", "AB06")
    assert "circuit open" in second["reason"]
    assert [e["event"] for e in second["events"]] == ["REJECTED"]  # nothing was held
    assert await h.balance(w["debtor"]) == ("5000.00", "0.00")  # the first's ABORT voided its hold
    await h.http.delete("/v1/sandbox/faults", headers=h.operator)
    await asyncio.sleep(0.6)  # the breaker's reset time passes
    third = (await _pay(h, w)).json()
    assert third["status"] == "SETTLED", third
    await _settle_pending(h)
    assert await h.balance(w["debtor"]) == ("4900.00", "0.00")


@pytest.mark.settings(**FAST, ibps_breaker_threshold=100)
async def test_magic_values(harness: Harness) -> None:
    h = harness
    w = await _pair(h)
    lookup = await h.pay(
        w["bank"], debtor=w["debtor"], proxy="+86 139 0000 0408", amount="1.00", currency="HKD"
    )
    assert (lookup.json()["status"], lookup.json()["reason_code"]) == ("REJECTED", "AB06")
    lookup_api = await h.http.get("/v1/proxies/MOBILE/+8613900000408", headers=w["bank"].headers)
    problem(lookup_api, 503, "AB06")

    async def receive(amount: str) -> dict[str, Any]:
        response = await h.pay(
            w["bank"], debtor=w["debtor"], creditor_account=w["creditor"], amount=amount, currency="CNY"
        )
        body: dict[str, Any] = response.json()
        return body

    refused = await receive("404.04")
    assert (refused["status"], refused["reason_code"]) == ("REJECTED", "RR04")
    for amount in ("408.08", "502.02", "503.03"):
        body = await receive(amount)
        assert body["status"] == "SETTLED", (amount, body)
    expected = Decimal("5000.00") + Decimal("408.08") + Decimal("502.02") + Decimal("503.03")
    assert await h.balance(w["creditor"]) == (f"{expected}", "0.00")

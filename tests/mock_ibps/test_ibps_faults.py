"""Fault injection: reproducible decisions, every kind's effect, the magic values, bounded memory."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from mock_ibps import faults as faults_module
from mock_ibps.errors import InjectedFault, InjectedTimeout
from mock_ibps.faults import Call, FaultInjector, FaultRule, Kind


def test_the_same_seed_gives_the_same_faults() -> None:
    keys = [str(uuid.UUID(int=i)) for i in range(500)]

    def draws(seed: int) -> list[tuple[Kind | None, int, int]]:
        injector = FaultInjector()
        injector.add(FaultRule(call=Call.COMMIT, kind=Kind.ERROR, probability=0.3, seed=seed))
        return [injector.decide(Call.COMMIT, key) for key in keys for _ in range(2)]

    first, again, other = draws(11), draws(11), draws(12)
    assert first == again
    assert first != other
    fired = sum(1 for kind, _, _ in first if kind is Kind.ERROR)
    assert 200 < fired < 400  # about 30% of 1000 decisions


def test_decisions_depend_on_the_attempt_and_only_attempts_limits_them() -> None:
    injector = FaultInjector()
    injector.add(FaultRule(call=Call.PREPARE, kind=Kind.TIMEOUT, probability=1.0, seed=1, only_attempts=2))
    kinds = [injector.decide(Call.PREPARE, "p1")[0] for _ in range(4)]
    assert kinds == [Kind.TIMEOUT, Kind.TIMEOUT, None, None]
    assert injector.decide(Call.COMMIT, "p1")[0] is None  # another call is untouched


def test_latency_adds_to_another_fault() -> None:
    injector = FaultInjector()
    injector.add(FaultRule(call=Call.ABORT, kind=Kind.LATENCY, probability=1.0, seed=1, latency_ms=40))
    injector.add(FaultRule(call=Call.ABORT, kind=Kind.DUPLICATE, probability=1.0, seed=1))
    assert injector.decide(Call.ABORT, "x") == (Kind.DUPLICATE, 40, faults_module.DEFAULT_HANG_MS)


def test_attempt_counters_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults_module, "MAX_TRACKED_KEYS", 10)
    injector = FaultInjector()
    injector.add(FaultRule(call=Call.ABORT, kind=Kind.ERROR, probability=0.5, seed=1))
    for i in range(50):
        injector.decide(Call.PREPARE, f"k{i}", amount_minor=faults_module.MAGIC_COMMIT_LOST_MINOR)
    assert len(injector._attempts) == 10
    assert len(injector._amounts) == 10


def test_without_a_rule_only_magic_values_are_remembered() -> None:
    """A sandbox without faults keeps nothing per payment: a soak's mock_ibps grew by ~90 MiB in
    its first minutes while these maps filled to their bound."""
    injector = FaultInjector()
    for i in range(1000):
        for call in (Call.PREPARE, Call.COMMIT):
            assert injector.decide(call, f"k{i}", amount_minor=10_000 + i)[0] is None
    assert (len(injector._attempts), len(injector._amounts)) == (0, 0)
    assert injector.decide(Call.PREPARE, "m", amount_minor=faults_module.MAGIC_COMMIT_LOST_MINOR)[0] is None
    assert (len(injector._attempts), len(injector._amounts)) == (1, 1)


def test_magic_values_fire_on_the_first_attempt_only() -> None:
    injector = FaultInjector()
    assert injector.decide(Call.PREPARE, "a", amount_minor=40808)[0] is Kind.TIMEOUT
    assert injector.decide(Call.PREPARE, "a", amount_minor=40808)[0] is None
    assert injector.decide(Call.PREPARE, "b", amount_minor=50303)[0] is Kind.LOST_REPLY
    assert injector.decide(Call.PREPARE, "c", amount_minor=50202)[0] is None
    assert injector.decide(Call.COMMIT, "c")[0] is Kind.LOST_REPLY  # remembered from the prepare
    assert injector.decide(Call.COMMIT, "c")[0] is None
    for _ in range(3):
        assert injector.decide(Call.LOOKUP, faults_module.MAGIC_TIMEOUT_PROXY)[0] is Kind.TIMEOUT


async def test_run_applies_each_kind() -> None:
    calls: list[int] = []

    async def action() -> int:
        calls.append(1)
        return len(calls)

    async def run_with(kind: Kind, **extra: Any) -> Any:
        injector = FaultInjector()
        injector.add(FaultRule(call=Call.COMMIT, kind=kind, probability=1.0, seed=0, hang_ms=10, **extra))
        calls.clear()
        return await injector.run(Call.COMMIT, "p", action)

    with pytest.raises(InjectedFault):
        await run_with(Kind.ERROR)
    assert calls == []
    with pytest.raises(InjectedTimeout):
        await run_with(Kind.TIMEOUT)
    assert calls == []
    assert await run_with(Kind.LOST_REPLY) == 1 and calls == [1]
    assert await run_with(Kind.DUPLICATE) == 2 and calls == [1, 1]
    assert await run_with(Kind.LATENCY, latency_ms=5) == 1


async def test_the_fault_api(client: httpx.AsyncClient) -> None:
    rule = {"call": "prepare", "kind": "error", "probability": 1.0, "seed": 3}
    created = await client.post("/ibps/v1/sandbox/faults", json=rule)
    assert created.status_code == 201, created.text
    try:
        response = await client.post(
            "/ibps/v1/transfers/prepare",
            json={
                "payment_id": str(uuid.uuid4()),
                "kind": "CREDIT",
                "account_id": "CNX",
                "amount": "1.00",
                "currency": "CNY",
            },
        )
        assert response.status_code == 503
        assert response.json()["code"] == "INJECTED_FAULT"
        listed = (await client.get("/ibps/v1/sandbox/faults")).json()
        assert listed["injected"] == {"prepare": {"error": 1}}
        assert listed["rules"][0]["seed"] == 3
        bad = await client.post("/ibps/v1/sandbox/faults", json={**rule, "probability": 1.5})
        assert bad.status_code == 422
    finally:
        assert (await client.delete("/ibps/v1/sandbox/faults")).status_code == 204
    assert (await client.get("/ibps/v1/sandbox/faults")).json()["rules"] == []


async def test_a_magic_amount_is_refused_rr04(client: httpx.AsyncClient, bank: Any) -> None:
    account = await bank.open_account("1000.00")
    response = await client.post(
        "/ibps/v1/transfers/prepare",
        json={
            "payment_id": str(uuid.uuid4()),
            "kind": "DEBIT",
            "account_id": account,
            "amount": "404.04",
            "currency": "CNY",
        },
    )
    body = response.json()
    assert (body["outcome"], body["reason_code"]) == ("REFUSED", "RR04")
    assert await bank.balances(account) == ("1000.00", "0.00", "1000.00")

"""Faults in a batch: each item draws its fault as a single call would, and nothing hangs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ibps_support import Bank, abort_item, commit_item, new_payment_id, prepare_item

from mock_ibps.errors import IbpsError, InjectedFault, TimedOut
from mock_ibps.faults import BatchCall, Call, FaultInjector, FaultRule, Kind

FAULTS = "/ibps/v1/sandbox/faults"


@pytest.fixture
async def faults(client: httpx.AsyncClient) -> AsyncIterator[Any]:
    """Adds fault rules for one test and removes them, and their attempt counts, afterwards."""

    async def add(call: str, kind: str, **extra: Any) -> None:
        rule = {"call": call, "kind": kind, "probability": 1.0, "seed": 7, **extra}
        response = await client.post(FAULTS, json=rule)
        assert response.status_code == 201, response.text

    try:
        yield add
    finally:
        assert (await client.delete(FAULTS)).status_code == 204


async def _status(bank: Bank, payment_id: str) -> str | None:
    response = await bank.http.get(f"/ibps/v1/transfers/{payment_id}")
    return None if response.status_code == 404 else str(response.json()["status"])


async def test_an_error_applies_nothing_and_counts_as_an_attempt(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("100.00")
    failing, other = new_payment_id(), new_payment_id()
    await faults("prepare", "error", only_attempts=1)
    results = await bank.batch(
        [
            prepare_item(failing, "DEBIT", account_id, "10.00"),
            abort_item(other),
        ]  # aborts draw no prepare fault
    )
    assert results[0]["status"] == 503
    assert results[0]["body"]["code"] == "INJECTED_FAULT"
    assert results[0]["body"]["key"] == failing
    assert results[0]["body"]["status"] == 503
    assert results[1]["status"] == 200
    assert await _status(bank, failing) is None
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")
    # The single call that retries it is the second attempt, which the rule lets through.
    retried = await bank.prepare(failing, "DEBIT", account_id, "10.00")
    assert retried["outcome"] == "PREPARED"
    listed = (await bank.http.get(FAULTS)).json()
    assert listed["injected"] == {"prepare": {"error": 1}}
    await bank.abort(failing)


async def test_a_single_call_before_the_batch_counts_too(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "CREDIT", account_id, "10.00")
    await faults("commit", "error", only_attempts=1)
    response = await bank.commit(payment_id)
    assert (response.status_code, response.json()["code"]) == (503, "INJECTED_FAULT")
    (result,) = await bank.batch([commit_item(payment_id)])  # attempt 2: through
    assert (result["status"], result["body"]["status"]) == (200, "POSTED")
    assert await bank.balances(account_id) == ("110.00", "0.00", "110.00")


async def test_a_time_out_answers_at_once_and_applies_nothing(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "DEBIT", account_id, "10.00")
    await faults("commit", "timeout", hang_ms=60_000, only_attempts=1)
    started = time.monotonic()
    (result,) = await bank.batch([commit_item(payment_id)])
    assert time.monotonic() - started < 10
    assert result["status"] == 504
    assert result["body"]["code"] == "TIMEOUT"
    assert result["body"]["status"] == 504
    assert await _status(bank, payment_id) == "PENDING"
    assert (await bank.commit(payment_id)).json()["status"] == "POSTED"
    assert await bank.balances(account_id) == ("90.00", "0.00", "90.00")


async def test_a_lost_reply_applies_but_answers_a_time_out(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "DEBIT", account_id, "10.00")
    await faults("commit", "lost_reply", hang_ms=60_000, only_attempts=1)
    started = time.monotonic()
    (result,) = await bank.batch([commit_item(payment_id)])
    assert time.monotonic() - started < 10
    assert (result["status"], result["body"]["code"]) == (504, "TIMEOUT")
    assert await _status(bank, payment_id) == "POSTED"
    assert await bank.balances(account_id) == ("90.00", "0.00", "90.00")
    # The caller's lone retry learns the outcome.
    assert (await bank.commit(payment_id)).json()["status"] == "POSTED"


async def test_a_time_out_and_a_lost_reply_look_alike(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("100.00")
    lost, timed_out = new_payment_id(), new_payment_id()
    await faults("abort", "lost_reply", only_attempts=1)
    (lost_result,) = await bank.batch([abort_item(lost)])
    await bank.http.delete(FAULTS)
    await faults("abort", "timeout", only_attempts=1)
    (timed_out_result,) = await bank.batch([abort_item(timed_out)])

    def shape(result: dict[str, Any]) -> tuple[int, set[str], Any]:
        return result["status"], set(result["body"]), result["body"]["code"]

    assert shape(lost_result) == shape(timed_out_result)
    assert await _status(bank, lost) == "VOIDED"
    assert await _status(bank, timed_out) is None
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")


async def test_a_duplicate_applies_once_and_answers_the_second_delivery(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("100.00")
    debit, committed, aborted = new_payment_id(), new_payment_id(), new_payment_id()
    await bank.prepare(committed, "DEBIT", account_id, "30.00")
    await bank.prepare(aborted, "DEBIT", account_id, "20.00")
    for call in ("prepare", "commit", "abort"):
        await faults(call, "duplicate")
    items = [
        prepare_item(debit, "DEBIT", account_id, "40.00"),
        commit_item(committed),
        abort_item(aborted),
    ]
    results = await bank.batch(items)
    assert [r["status"] for r in results] == [200, 200, 200]
    assert results[0]["body"]["outcome"] == "PREPARED"
    assert results[1]["body"]["status"] == "POSTED"
    assert results[2]["body"]["status"] == "VOIDED"
    assert await bank.balances(account_id) == ("70.00", "40.00", "30.00")
    await bank.http.delete(FAULTS)
    for item, result in zip(items, results, strict=True):
        assert await bank.single(item) == (200, result["body"])
    await bank.abort(debit)


async def test_a_duplicated_prepare_refused_for_funds_replays_the_refusal(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("10.00")
    payment_id = new_payment_id()
    await faults("prepare", "duplicate")
    (result,) = await bank.batch([prepare_item(payment_id, "DEBIT", account_id, "20.00")])
    assert (result["body"]["outcome"], result["body"]["reason_code"]) == ("REFUSED", "AM04")
    assert await bank.balances(account_id) == ("10.00", "0.00", "10.00")


async def test_latency_is_waited_once_per_batch(bank: Bank, faults: Any) -> None:
    account_id = await bank.open_account("100.00")
    await faults("prepare", "latency", latency_ms=150)
    await faults("commit", "latency", latency_ms=300)
    ids = [new_payment_id() for _ in range(6)]
    await bank.prepare(ids[0], "CREDIT", account_id, "1.00")
    started = time.monotonic()
    results = await bank.batch(
        [commit_item(ids[0])] + [prepare_item(p, "CREDIT", account_id, "1.00") for p in ids[1:]]
    )
    elapsed = time.monotonic() - started
    assert {r["status"] for r in results} == {200}
    assert 0.3 <= elapsed < 0.3 + 5 * 0.15  # the largest once, not the sum
    for payment_id in ids[1:]:
        await bank.abort(payment_id)


async def test_magic_amounts_act_per_item(bank: Bank, client: httpx.AsyncClient) -> None:
    assert (await client.delete(FAULTS)).status_code == 204  # count from zero
    account_id = await bank.open_account("5000.00")
    refused, times_out, prepare_lost, commit_lost, plain = (new_payment_id() for _ in range(5))
    results = await bank.batch(
        [
            prepare_item(refused, "DEBIT", account_id, "404.04"),
            prepare_item(times_out, "DEBIT", account_id, "408.08"),
            prepare_item(prepare_lost, "DEBIT", account_id, "503.03"),
            prepare_item(commit_lost, "CREDIT", account_id, "502.02"),
            prepare_item(plain, "DEBIT", account_id, "1.00"),
        ]
    )
    assert [(r["status"], r["body"].get("reason_code"), r["body"].get("code")) for r in results] == [
        (200, "RR04", None),
        (504, None, "TIMEOUT"),
        (504, None, "TIMEOUT"),
        (200, None, None),
        (200, None, None),
    ]
    assert await _status(bank, times_out) is None
    assert await _status(bank, prepare_lost) == "PENDING"
    assert await bank.balances(account_id) == ("5000.00", "504.03", "4495.97")
    # The retries (second attempts) go through, alone or in a batch.
    retried = await bank.batch(
        [
            prepare_item(times_out, "DEBIT", account_id, "408.08"),
            prepare_item(prepare_lost, "DEBIT", account_id, "503.03"),
            commit_item(commit_lost),  # the first commit of a 502.02 leg loses its reply
        ]
    )
    assert [(r["status"], r["body"].get("outcome"), r["body"].get("code")) for r in retried] == [
        (200, "PREPARED", None),
        (200, "PREPARED", None),
        (504, None, "TIMEOUT"),
    ]
    assert await _status(bank, commit_lost) == "POSTED"
    assert (await bank.commit(commit_lost)).status_code == 200
    for payment_id in (times_out, prepare_lost, plain):
        await bank.abort(payment_id)
    assert await bank.balances(account_id) == ("5502.02", "0.00", "5502.02")
    injected = (await client.get(FAULTS)).json()["injected"]
    assert injected == {
        "prepare": {"magic_timeout": 1, "magic_lost_reply": 1},
        "commit": {"magic_lost_reply": 1},
    }
    assert (await client.delete(FAULTS)).status_code == 204


async def test_run_batch_delivers_each_kind() -> None:
    delivered: list[list[int]] = []

    async def action(indexes: list[int]) -> list[str]:
        delivered.append(indexes)
        return [f"answer {n} to {index}" for n, index in enumerate(indexes)]

    injector = FaultInjector()
    injector.add(FaultRule(call=Call.PREPARE, kind=Kind.ERROR, probability=1.0, seed=0))
    results: list[str | IbpsError] = await injector.run_batch(
        [BatchCall(Call.PREPARE, "p", 100), BatchCall(Call.COMMIT, "c")], action
    )
    assert isinstance(results[0], InjectedFault)
    assert results[1] == "answer 0 to 1"
    assert delivered == [[1]]

    injector = FaultInjector()
    injector.add(FaultRule(call=Call.ABORT, kind=Kind.DUPLICATE, probability=1.0, seed=0))
    injector.add(FaultRule(call=Call.COMMIT, kind=Kind.LOST_REPLY, probability=1.0, seed=0))
    delivered.clear()
    results = await injector.run_batch(
        [BatchCall(Call.ABORT, "a"), BatchCall(Call.COMMIT, "b"), BatchCall(Call.PREPARE, "c", 100)], action
    )
    assert delivered == [[0, 0, 1, 2]]
    assert results[0] == "answer 1 to 0"  # the second delivery's answer
    assert isinstance(results[1], TimedOut)
    assert results[2] == "answer 3 to 2"

"""Racing requests never double-apply: duplicates hold once, competitors never over-hold.

The unique payment id decides which duplicate applies, and the accounts' row locks make competing
holds wait for each other. A second app (its own engine and pool) stands in for a second process.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from ibps_support import Bank, client_for, new_payment_id

from mock_ibps.app import create_app
from mock_ibps.config import Settings

RACERS = 20


async def test_identical_debit_prepares_hold_once(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    results = await asyncio.gather(
        *(bank.prepare(payment_id, "DEBIT", account_id, "30.00") for _ in range(RACERS))
    )
    assert {result["outcome"] for result in results} == {"PREPARED"}
    assert len({result["transfer"]["seq"] for result in results}) == 1
    assert await bank.balances(account_id) == ("100.00", "30.00", "70.00")

    commits = await asyncio.gather(*(bank.commit(payment_id) for _ in range(RACERS)))
    assert {response.status_code for response in commits} == {200}
    assert await bank.balances(account_id) == ("70.00", "0.00", "70.00")


async def test_competing_debit_prepares_never_over_hold(bank: Bank) -> None:
    account_id = await bank.open_account("1000.00")
    payment_ids = [new_payment_id() for _ in range(RACERS)]
    results = await asyncio.gather(
        *(bank.prepare(payment_id, "DEBIT", account_id, "100.00") for payment_id in payment_ids)
    )
    outcomes = [result["outcome"] for result in results]
    assert outcomes.count("PREPARED") == 10
    assert {r["reason_code"] for r in results if r["outcome"] == "REFUSED"} == {"AM04"}
    assert await bank.balances(account_id) == ("1000.00", "1000.00", "0.00")

    prepared = [r["transfer"]["payment_id"] for r in results if r["outcome"] == "PREPARED"]
    to_commit, to_abort = prepared[:4], prepared[4:]
    await asyncio.gather(*(bank.commit(p) for p in to_commit), *(bank.abort(p) for p in to_abort))
    assert await bank.balances(account_id) == ("600.00", "0.00", "600.00")


async def test_abort_racing_commit_settles_one_way(bank: Bank) -> None:
    account_id = await bank.open_account("500.00")
    payment_ids = [new_payment_id() for _ in range(10)]
    for payment_id in payment_ids:
        await bank.prepare(payment_id, "DEBIT", account_id, "10.00")
    responses = await asyncio.gather(*(call(p) for p in payment_ids for call in (bank.commit, bank.abort)))
    posted = 0
    for commit, abort in zip(responses[0::2], responses[1::2], strict=True):
        # Exactly one of the two wins; the loser answers 409.
        assert sorted([commit.status_code, abort.status_code]) == [200, 409]
        posted += commit.status_code == 200
    balance = 50000 - posted * 1000
    expected = f"{balance // 100}.00"
    assert await bank.balances(account_id) == (expected, "0.00", expected)


async def test_two_apps_on_one_database(app: FastAPI, bank: Bank, database_url: str) -> None:
    account_id = await bank.open_account("500.00")
    other = create_app(Settings(database_url=database_url, token="test-token"))
    async with other.router.lifespan_context(other), client_for(other) as other_http:
        other_bank = Bank(other_http, bank.participant_id)
        payment_ids = [new_payment_id() for _ in range(RACERS)]
        # Each payment is prepared through both apps at once; every second one is a competitor.
        calls = [
            caller.prepare(payment_id, "DEBIT", account_id, "50.00")
            for payment_id in payment_ids
            for caller in (bank, other_bank)
        ]
        results = await asyncio.gather(*calls)
    by_payment: dict[str, set[str]] = {}
    for result in results:
        by_payment.setdefault(result["transfer"]["payment_id"], set()).add(result["outcome"])
    assert all(len(outcomes) == 1 for outcomes in by_payment.values())
    prepared = [p for p, outcomes in by_payment.items() if outcomes == {"PREPARED"}]
    assert len(prepared) == 10
    assert await bank.balances(account_id) == ("500.00", "500.00", "0.00")
    for payment_id in prepared:
        await bank.abort(payment_id)

"""Batches racing each other and single calls: every payment applies once, nothing deadlocks.

A second app (its own engine and pool) stands in for a second process. The client fixture checks
the ledger's invariants after each test.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ibps_support import TOKEN, Bank, abort_item, client_for, commit_item, new_payment_id, prepare_item

from mock_ibps.app import create_app
from mock_ibps.config import Settings

PAYMENTS = 20


@pytest.fixture
async def other_bank(bank: Bank, database_url: str) -> AsyncIterator[Bank]:
    """The same bank calling through a second app on the same database."""
    other = create_app(Settings(database_url=database_url, token=TOKEN))
    async with other.router.lifespan_context(other), client_for(other) as http:
        yield Bank(http, bank.participant_id)


def _by_payment(answers: list[tuple[str, int, dict[str, Any]]]) -> dict[str, set[str]]:
    """Each payment's distinct answers, as comparable text."""
    seen: dict[str, set[str]] = {}
    for payment_id, status, body in answers:
        seen.setdefault(payment_id, set()).add(f"{status} {sorted(body.items())}")
    return seen


async def test_batches_and_single_calls_prepare_each_payment_once(bank: Bank, other_bank: Bank) -> None:
    account_id = await bank.open_account("500.00")
    ids = [new_payment_id() for _ in range(PAYMENTS)]
    shuffled = random.Random(3).sample(ids, len(ids))

    def prepares(order: list[str]) -> list[dict[str, Any]]:
        return [prepare_item(p, "DEBIT", account_id, "50.00") for p in order]

    async def single(caller: Bank, payment_id: str) -> list[dict[str, Any]]:
        status, body = await caller.single(prepare_item(payment_id, "DEBIT", account_id, "50.00"))
        return [{"payment_id": payment_id, "status": status, "body": body}]

    runs = await asyncio.gather(
        bank.batch(prepares(ids)),
        other_bank.batch(prepares(ids[::-1])),
        bank.batch(prepares(shuffled)),
        *(single(bank if i % 2 else other_bank, p) for i, p in enumerate(ids)),
    )
    answers = [(r["payment_id"], r["status"], r["body"]) for run in runs for r in run]
    assert {status for _, status, _ in answers} == {200}
    by_payment = _by_payment(answers)
    assert all(len(distinct) == 1 for distinct in by_payment.values())  # every caller heard the same
    outcomes = {p: body["outcome"] for p, _, body in answers}
    prepared = [p for p, outcome in outcomes.items() if outcome == "PREPARED"]
    assert len(prepared) == 10
    assert {body["reason_code"] for _, _, body in answers if body["outcome"] == "REFUSED"} == {"AM04"}
    assert await bank.balances(account_id) == ("500.00", "500.00", "0.00")

    # Settle them while duplicates race: commits against commits, aborts against aborts, and a
    # few payments committed and aborted at once, which must settle one way.
    to_commit, to_abort, contested = prepared[:4], prepared[4:8], prepared[8:]
    settle = [commit_item(p) for p in to_commit + contested] + [abort_item(p) for p in to_abort]
    runs = await asyncio.gather(
        bank.batch(settle),
        other_bank.batch(settle[::-1]),
        bank.batch([abort_item(p) for p in contested]),
        *(other_bank.commit(p) for p in to_commit),
        *(bank.abort(p) for p in to_abort + contested),
    )
    for run in runs:
        if isinstance(run, list):
            assert all(r["status"] in (200, 409) for r in run), run
        else:
            assert run.status_code in (200, 409), run.text
    posted = 0
    for payment_id in contested:
        status = (await bank.http.get(f"/ibps/v1/transfers/{payment_id}")).json()["status"]
        assert status in ("POSTED", "VOIDED")
        posted += status == "POSTED"
    for payment_id in to_commit:
        assert (await bank.http.get(f"/ibps/v1/transfers/{payment_id}")).json()["status"] == "POSTED"
    for payment_id in to_abort:
        assert (await bank.http.get(f"/ibps/v1/transfers/{payment_id}")).json()["status"] == "VOIDED"
    remaining = 50000 - (len(to_commit) + posted) * 5000
    expected = f"{remaining // 100}.00"
    assert await bank.balances(account_id) == (expected, "0.00", expected)


async def test_batches_over_many_accounts_in_any_order_never_deadlock(bank: Bank, other_bank: Bank) -> None:
    accounts = [await bank.open_account("100.00") for _ in range(4)]
    rng = random.Random(11)
    batches: list[tuple[Bank, list[dict[str, Any]]]] = []
    singles: list[tuple[Bank, dict[str, Any]]] = []
    for n in range(8):
        items = [
            prepare_item(new_payment_id(), rng.choice(["DEBIT", "CREDIT"]), account_id, "7.00")
            for account_id in rng.sample(accounts, len(accounts))
            for _ in range(3)
        ]
        batches.append((bank if n % 2 else other_bank, items))
        singles += [(bank if n % 2 else other_bank, item) for item in rng.sample(items, 3)]
    runs = await asyncio.gather(
        *(caller.batch(items) for caller, items in batches),
        *(caller.single(item) for caller, item in singles),
    )
    prepared = {
        r["payment_id"] for run in runs[: len(batches)] for r in run if r["body"]["outcome"] == "PREPARED"
    }
    for status, _body in runs[len(batches) :]:
        assert status == 200
    # Settle everything in shuffled batches, racing each other across the accounts.
    settle = [commit_item(p) if rng.random() < 0.5 else abort_item(p) for p in sorted(prepared)]
    orders = [rng.sample(settle, len(settle)) for _ in range(3)]
    results = await asyncio.gather(
        *(caller.batch(items) for caller, items in zip([bank, other_bank, bank], orders, strict=True))
    )
    assert {r["status"] for run in results for r in run} == {200}  # duplicates agree

"""A batch is the same as its items called one by one: same answers, same transfers, same balances.

Each scenario runs twice, in two fresh worlds of the same shape (accounts and payment ids of their
own): once item by item through the single endpoints, once batch by batch. Answers are compared
with the ids and timestamps a world makes up replaced by the names the scenario uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ibps_support import Bank, abort_item, commit_item, new_payment_id, prepare_item

from mock_ibps.db import create_engine
from mock_ibps.domain import (
    AbortRequest,
    CommitRequest,
    PrepareRequest,
    PrepareResult,
    Transfer,
    TransferKind,
    TransferRequest,
)
from mock_ibps.errors import IbpsError
from mock_ibps.service import IbpsLedger

ACCOUNTS = 2
PAYMENTS = 6
OPENING = "100.00"
AMOUNTS = ["10.00", "30.00", "60.00", "404.04"]

Step = tuple[str, int, str, int, str]
"""(op, payment, kind, account, amount): a scenario's item, in names rather than ids."""


@dataclass
class World:
    bank: Bank
    accounts: list[str]
    payments: list[str]

    @classmethod
    async def create(cls, bank: Bank) -> World:
        accounts = [await bank.open_account(OPENING) for _ in range(ACCOUNTS)]
        return cls(bank, accounts, [new_payment_id() for _ in range(PAYMENTS)])

    def item(self, step: Step) -> dict[str, Any]:
        op, payment, kind, account, amount = step
        payment_id = self.payments[payment]
        if op == "prepare":
            return prepare_item(payment_id, kind, self.accounts[account], amount)
        return commit_item(payment_id) if op == "commit" else abort_item(payment_id)

    def names(self, value: Any) -> Any:
        """The answer with this world's ids named and its sequence numbers and times left out."""
        if isinstance(value, dict):
            return {
                key: (item is not None if key == "resolved_at" else self.names(item))
                for key, item in value.items()
                if key not in ("seq", "created_at")
            }
        if isinstance(value, list):
            return [self.names(item) for item in value]
        if value in self.payments:
            return f"payment {self.payments.index(value)}"
        if value in self.accounts:
            return f"account {self.accounts.index(value)}"
        return value

    async def ledger(self) -> dict[str, Any]:
        balances = [await self.bank.balances(account_id) for account_id in self.accounts]
        transfers = []
        for payment_id in self.payments:
            response = await self.bank.http.get(f"/ibps/v1/transfers/{payment_id}")
            transfers.append(self.names(response.json()))
        return {"balances": balances, "transfers": transfers}

    async def settle(self) -> None:
        """Abort whatever is left pending, so the shared ledger is not littered with holds."""
        for payment_id in self.payments:
            await self.bank.abort(payment_id)


async def _one_by_one(world: World, batches: Sequence[Sequence[Step]]) -> list[Any]:
    answers = []
    for batch in batches:
        for step in batch:
            status, body = await world.bank.single(world.item(step))
            answers.append((status, world.names(body)))
    return answers


async def _batched(world: World, batches: Sequence[Sequence[Step]]) -> list[Any]:
    answers = []
    for batch in batches:
        for result in await world.bank.batch([world.item(step) for step in batch]):
            answers.append((result["status"], world.names(result["body"])))
    return answers


async def _assert_equivalent(bank: Bank, batches: Sequence[Sequence[Step]]) -> None:
    single, batched = await World.create(bank), await World.create(bank)
    assert await _one_by_one(single, batches) == await _batched(batched, batches)
    assert await single.ledger() == await batched.ledger()
    await single.settle()
    await batched.settle()


async def test_a_busy_scenario_batched_equals_one_by_one(bank: Bank) -> None:
    await _assert_equivalent(
        bank,
        [
            [
                ("prepare", 0, "DEBIT", 0, "60.00"),
                ("prepare", 1, "DEBIT", 0, "30.00"),
                ("prepare", 2, "DEBIT", 0, "30.00"),  # AM04: 10.00 left
                ("prepare", 3, "CREDIT", 1, "10.00"),
                ("abort", 4, "", 0, ""),  # a tombstone
            ],
            [
                ("commit", 0, "", 0, ""),
                ("abort", 1, "", 0, ""),
                ("prepare", 2, "DEBIT", 0, "30.00"),  # replays the refusal
                ("prepare", 4, "CREDIT", 1, "10.00"),  # refused by the tombstone
                ("commit", 5, "", 0, ""),  # unknown
            ],
            [
                ("abort", 0, "", 0, ""),  # posted
                ("commit", 1, "", 0, ""),  # voided
                ("prepare", 3, "CREDIT", 1, "30.00"),  # mismatch
                ("commit", 2, "", 0, ""),  # refused for funds: voided
                ("prepare", 5, "DEBIT", 1, "404.04"),  # RR04
            ],
        ],
    )


def _batches() -> st.SearchStrategy[list[list[Step]]]:
    step = st.tuples(
        st.sampled_from(["prepare", "prepare", "commit", "abort"]),
        st.integers(0, PAYMENTS - 1),
        st.sampled_from(["CREDIT", "DEBIT"]),
        st.integers(0, ACCOUNTS - 1),
        st.sampled_from(AMOUNTS),
    )
    # The endpoint takes each payment once per batch.
    batch = st.lists(step, min_size=1, max_size=PAYMENTS, unique_by=lambda s: s[1])
    return st.lists(batch, min_size=1, max_size=4)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=_batches())
async def test_any_scenario_batched_equals_one_by_one(bank: Bank, batches: list[list[Step]]) -> None:
    await _assert_equivalent(bank, batches)


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[IbpsLedger]:
    """The service on its own engine, to call it with what the endpoint would refuse."""
    engine = create_engine(database_url)
    ledger = IbpsLedger(engine)
    try:
        yield ledger
    finally:
        await ledger.close()
        await engine.dispose()


def _requests(steps: Sequence[Step], payments: list[str], accounts: list[str]) -> list[TransferRequest]:
    requests: list[TransferRequest] = []
    for op, payment, kind, account, amount in steps:
        payment_id = payments[payment]
        if op == "prepare":
            minor = int(amount.replace(".", ""))
            requests.append(PrepareRequest(payment_id, TransferKind(kind), accounts[account], minor, "CNY"))
        else:
            requests.append(CommitRequest(payment_id) if op == "commit" else AbortRequest(payment_id))
    return requests


def _comparable(answer: PrepareResult | Transfer | IbpsError, payments: list[str]) -> Any:
    if isinstance(answer, IbpsError):
        return type(answer).__name__
    outcome, transfer = (
        (answer.outcome, answer.transfer) if isinstance(answer, PrepareResult) else (None, answer)
    )
    named = None if transfer.payment_id is None else payments.index(transfer.payment_id)
    return outcome, named, transfer.kind, transfer.amount_minor, transfer.status, transfer.reason_code


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["prepare", "prepare", "commit", "abort"]),
            st.integers(0, 3),
            st.sampled_from(["CREDIT", "DEBIT"]),
            st.integers(0, ACCOUNTS - 1),
            st.sampled_from(AMOUNTS),
        ),
        min_size=1,
        max_size=16,
    )
)
async def test_the_service_takes_any_sequence_even_a_payment_twice(
    bank: Bank, ledger: IbpsLedger, steps: list[Step]
) -> None:
    """``apply_batch`` itself allows repeats (fault injection's duplicates rely on it)."""
    worlds = [await World.create(bank) for _ in range(2)]
    one_by_one, batched = (_requests(steps, w.payments, w.accounts) for w in worlds)
    answers = [(await ledger.apply_batch([request]))[0] for request in one_by_one]
    together = await ledger.apply_batch(batched)
    assert [_comparable(a, worlds[0].payments) for a in answers] == [
        _comparable(a, worlds[1].payments) for a in together
    ]
    assert await worlds[0].ledger() == await worlds[1].ledger()
    for world in worlds:
        await world.settle()

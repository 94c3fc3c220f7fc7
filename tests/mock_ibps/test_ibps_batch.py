"""The batch endpoint: each item answers what its single call would, in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from ibps_support import (
    TOKEN,
    Bank,
    abort_item,
    assert_problem,
    commit_item,
    new_id,
    new_payment_id,
    prepare_item,
)
from sqlalchemy import event
from sqlalchemy.engine import Connection

from mock_ibps import repository
from mock_ibps.db import Lane, create_engine
from mock_ibps.domain import AbortRequest, CommitRequest, PrepareRequest, TransferKind, TransferRequest
from mock_ibps.service import IbpsLedger

BATCH = "/ibps/v1/transfers/batch"


async def test_prepare_and_commit_credits_and_debits(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    credit, debit = new_payment_id(), new_payment_id()
    prepares = [
        prepare_item(credit, "CREDIT", account_id, "25.5"),
        prepare_item(debit, "DEBIT", account_id, "40"),
    ]
    prepared = await bank.batch(prepares)
    assert [r["status"] for r in prepared] == [200, 200]
    assert [r["body"]["outcome"] for r in prepared] == ["PREPARED", "PREPARED"]
    assert prepared[0]["body"]["transfer"]["credit_account_id"] == account_id
    assert prepared[1]["body"]["transfer"]["debit_account_id"] == account_id
    assert prepared[1]["body"]["transfer"]["amount"] == "40.00"
    assert await bank.balances(account_id) == ("100.00", "40.00", "60.00")
    # A single prepare of the same payment now replays exactly what the batch answered.
    for item, result in zip(prepares, prepared, strict=True):
        assert await bank.single(item) == (200, result["body"])

    committed = await bank.batch([commit_item(credit), commit_item(debit)])
    assert [r["body"]["status"] for r in committed] == ["POSTED", "POSTED"]
    assert await bank.balances(account_id) == ("85.50", "0.00", "85.50")
    for result in committed:
        assert await bank.single(commit_item(result["payment_id"])) == (200, result["body"])
        fetched = await bank.http.get(f"/ibps/v1/transfers/{result['payment_id']}")
        assert fetched.json() == result["body"]
    # A batch replay of the commits answers alike and moves nothing.
    assert await bank.batch([commit_item(credit), commit_item(debit)]) == committed
    assert await bank.balances(account_id) == ("85.50", "0.00", "85.50")


async def test_refusals_answer_the_single_endpoints_problems(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    posted, voided, pending, unknown = (new_payment_id() for _ in range(4))
    await bank.prepare(posted, "DEBIT", account_id, "10.00")
    await bank.commit(posted)
    await bank.prepare(voided, "CREDIT", account_id, "5.00")
    await bank.abort(voided)
    await bank.prepare(pending, "DEBIT", account_id, "20.00")
    refusals = [
        commit_item(unknown),
        commit_item(voided),
        abort_item(posted),
        prepare_item(pending, "DEBIT", account_id, "20.01"),
    ]
    replays = [abort_item(voided), commit_item(posted)]
    results = await bank.batch(refusals) + await bank.batch(replays)
    expected = [
        (404, "TRANSFER_NOT_FOUND"),
        (409, "TRANSFER_VOIDED"),
        (409, "TRANSFER_POSTED"),
        (409, "TRANSFER_MISMATCH"),
        (200, None),
        (200, None),
    ]
    assert [(r["status"], r["body"].get("code")) for r in results] == expected
    for item, result in zip(refusals + replays, results, strict=True):
        assert await bank.single(item) == (result["status"], result["body"])
    assert results[0]["body"]["payment_id"] == unknown
    assert await bank.balances(account_id) == ("90.00", "20.00", "70.00")
    await bank.abort(pending)


async def test_business_refusals_are_recorded(bank: Bank) -> None:
    account_id = await bank.open_account("1000.00")
    unknown_account, magic = new_payment_id(), new_payment_id()
    items = [
        prepare_item(unknown_account, "CREDIT", new_id(), "1.00"),
        prepare_item(magic, "DEBIT", account_id, "404.04"),
    ]
    results = await bank.batch(items)
    assert [(r["status"], r["body"]["outcome"], r["body"]["reason_code"]) for r in results] == [
        (200, "REFUSED", "AC01"),
        (200, "REFUSED", "RR04"),
    ]
    assert all(r["body"]["transfer"]["status"] == "VOIDED" for r in results)
    assert all(r["body"]["reason"] for r in results)
    for item, result in zip(items, results, strict=True):
        assert await bank.single(item) == (200, result["body"])
        assert_problem(await bank.commit(item["payment_id"]), 409, "TRANSFER_VOIDED")
    assert await bank.balances(account_id) == ("1000.00", "0.00", "1000.00")


async def test_abort_unknown_leaves_a_tombstone(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    (tombstone,) = await bank.batch([abort_item(payment_id)])
    assert tombstone["status"] == 200
    body = tombstone["body"]
    assert (body["status"], body["reason_code"], body["kind"], body["amount"]) == (
        "VOIDED",
        "ALREADY_ABORTED",
        None,
        None,
    )
    assert await bank.single(abort_item(payment_id)) == (200, body)
    (late,) = await bank.batch([prepare_item(payment_id, "DEBIT", account_id, "10.00")])
    assert (late["body"]["outcome"], late["body"]["reason_code"]) == ("REFUSED", "ALREADY_ABORTED")
    assert late["body"]["transfer"] == body
    (commit,) = await bank.batch([commit_item(payment_id)])
    assert (commit["status"], commit["body"]["code"]) == (409, "TRANSFER_VOIDED")
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")


async def test_abort_of_a_pending_debit_releases_its_hold(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    debit, credit = new_payment_id(), new_payment_id()
    await bank.prepare(debit, "DEBIT", account_id, "70.00")
    await bank.prepare(credit, "CREDIT", account_id, "5.00")
    assert await bank.balances(account_id) == ("100.00", "70.00", "30.00")
    aborted = await bank.batch([abort_item(debit), abort_item(credit)])
    assert [(r["status"], r["body"]["status"], r["body"]["reason_code"]) for r in aborted] == [
        (200, "VOIDED", None),
        (200, "VOIDED", None),
    ]
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")
    assert await bank.batch([abort_item(debit), abort_item(credit)]) == aborted
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")


async def test_mixed_batch_of_different_payments(bank: Bank) -> None:
    payer, payee = await bank.open_account("500.00"), await bank.open_account("0.00")
    to_commit, to_abort, fresh_debit, fresh_credit = (new_payment_id() for _ in range(4))
    await bank.prepare(to_commit, "DEBIT", payer, "100.00")
    await bank.prepare(to_abort, "DEBIT", payer, "50.00")
    assert await bank.balances(payer) == ("500.00", "150.00", "350.00")
    results = await bank.batch(
        [
            commit_item(to_commit),
            prepare_item(fresh_debit, "DEBIT", payer, "400.00"),  # 400 free after the next abort only
            abort_item(to_abort),
            prepare_item(fresh_credit, "CREDIT", payee, "30.00"),
        ]
    )
    assert results[0]["body"]["status"] == "POSTED"
    assert (results[1]["body"]["outcome"], results[1]["body"]["reason_code"]) == ("REFUSED", "AM04")
    assert results[2]["body"]["status"] == "VOIDED"
    assert results[3]["body"]["outcome"] == "PREPARED"
    assert await bank.balances(payer) == ("400.00", "0.00", "400.00")
    assert await bank.balances(payee) == ("0.00", "0.00", "0.00")
    final = await bank.batch(
        [prepare_item(new_payment_id(), "DEBIT", payer, "400.00"), commit_item(fresh_credit)]
    )
    assert final[0]["body"]["outcome"] == "PREPARED"
    assert final[1]["body"]["status"] == "POSTED"
    assert await bank.balances(payer) == ("400.00", "400.00", "0.00")
    assert await bank.balances(payee) == ("30.00", "0.00", "30.00")
    await bank.abort(final[0]["payment_id"])


async def test_debits_of_one_account_hold_in_item_order_until_funds_run_out(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    credit = new_payment_id()
    await bank.prepare(credit, "CREDIT", account_id, "15.00")
    ids = [new_payment_id() for _ in range(5)]
    results = await bank.batch(
        [
            prepare_item(ids[0], "DEBIT", account_id, "40.00"),
            prepare_item(ids[1], "DEBIT", account_id, "40.00"),
            prepare_item(ids[2], "DEBIT", account_id, "30.00"),  # 20 left: refused
            prepare_item(ids[3], "DEBIT", account_id, "20.00"),  # exactly what is left
            commit_item(credit),  # 15 more from here on
            prepare_item(ids[4], "DEBIT", account_id, "15.00"),
        ]
    )
    outcomes = [(r["body"].get("outcome"), r["body"].get("reason_code")) for r in results]
    assert outcomes == [
        ("PREPARED", None),
        ("PREPARED", None),
        ("REFUSED", "AM04"),
        ("PREPARED", None),
        (None, None),
        ("PREPARED", None),
    ]
    refused = results[2]["body"]["transfer"]
    assert (refused["status"], refused["reason_code"]) == ("VOIDED", "AM04")
    assert refused["resolved_at"] == refused["created_at"]
    assert await bank.balances(account_id) == ("115.00", "115.00", "0.00")
    # The refusal is recorded: it refuses alike once funds are free, as a single call's would.
    await bank.batch([abort_item(ids[0])])
    assert await bank.single(prepare_item(ids[2], "DEBIT", account_id, "30.00")) == (200, results[2]["body"])
    await bank.batch([abort_item(payment_id) for payment_id in ids[1:]])
    assert await bank.balances(account_id) == ("115.00", "0.00", "115.00")


async def test_payment_id_spelling_is_normalised(bank: Bank) -> None:
    account_id = await bank.open_account("10.00")
    payment_id = new_payment_id()
    (prepared,) = await bank.batch([prepare_item(payment_id.upper(), "CREDIT", account_id, "1.00")])
    assert prepared["payment_id"] == payment_id
    assert prepared["body"]["transfer"]["payment_id"] == payment_id
    (committed,) = await bank.batch([commit_item(payment_id.upper())])
    assert committed["body"]["status"] == "POSTED"


async def test_a_full_batch(bank: Bank) -> None:
    account_id = await bank.open_account("1000.00")
    ids = [new_payment_id() for _ in range(1000)]
    prepared = await bank.batch([prepare_item(p, "DEBIT", account_id, "1.00") for p in ids])
    assert {r["body"]["outcome"] for r in prepared} == {"PREPARED"}
    assert await bank.balances(account_id) == ("1000.00", "1000.00", "0.00")
    settled = await bank.batch([commit_item(p) for p in ids[:500]] + [abort_item(p) for p in ids[500:]])
    assert [r["body"]["status"] for r in settled] == ["POSTED"] * 500 + ["VOIDED"] * 500
    assert await bank.balances(account_id) == ("500.00", "0.00", "500.00")


def _batch_body(items: list[Any]) -> dict[str, Any]:
    return {"items": items}


def _bad_batches() -> list[tuple[str, Any, str]]:
    good = prepare_item(new_payment_id(), "CREDIT", new_id(), "1.00")
    twice = new_payment_id()
    return [
        ("empty", _batch_body([]), "VALIDATION_ERROR"),
        ("too many", _batch_body([commit_item(new_payment_id()) for _ in range(1001)]), "VALIDATION_ERROR"),
        ("duplicate id", _batch_body([commit_item(twice), abort_item(twice)]), "VALIDATION_ERROR"),
        (
            "duplicate id spelt twice",
            _batch_body([good, commit_item(good["payment_id"].upper())]),
            "VALIDATION_ERROR",
        ),
        ("no items", {}, "VALIDATION_ERROR"),
        ("items not a list", {"items": good}, "VALIDATION_ERROR"),
        ("unknown field", {"items": [good], "atomic": True}, "VALIDATION_ERROR"),
        ("missing op", _batch_body([{k: v for k, v in good.items() if k != "op"}]), "VALIDATION_ERROR"),
        ("unknown op", _batch_body([{**good, "op": "refund"}]), "VALIDATION_ERROR"),
        ("bad amount", _batch_body([{**good, "amount": "1.001"}]), "VALIDATION_ERROR"),
        ("number amount", _batch_body([{**good, "amount": 1}]), "VALIDATION_ERROR"),
        ("bad kind", _batch_body([{**good, "kind": "OPENING"}]), "VALIDATION_ERROR"),
        ("usd", _batch_body([{**good, "currency": "USD"}]), "CURRENCY_NOT_SUPPORTED"),
        ("bad account", _batch_body([{**good, "account_id": "CN 01"}]), "VALIDATION_ERROR"),
        ("bad payment id", _batch_body([commit_item("not-a-uuid")]), "VALIDATION_ERROR"),
        (
            "commit with amount",
            _batch_body([{**commit_item(new_payment_id()), "amount": "1.00"}]),
            "VALIDATION_ERROR",
        ),
        ("null item", _batch_body([good, None]), "VALIDATION_ERROR"),
    ]


BAD_BATCHES = _bad_batches()


@pytest.mark.parametrize(
    ("body", "code"), [(b, c) for _, b, c in BAD_BATCHES], ids=[n for n, _, _ in BAD_BATCHES]
)
async def test_bad_batches_are_refused_whole(client: httpx.AsyncClient, body: Any, code: str) -> None:
    response = await client.post(BATCH, json=body)
    problem = assert_problem(response, 422, code)
    assert problem["errors"]
    for item in body.get("items", [])[:3] if isinstance(body.get("items"), list) else []:
        if isinstance(item, dict) and "payment_id" in item and item["payment_id"] != "not-a-uuid":
            assert (await client.get(f"/ibps/v1/transfers/{item['payment_id']}")).status_code == 404


async def test_duplicate_ids_are_named(client: httpx.AsyncClient) -> None:
    twice = new_payment_id()
    response = await client.post(BATCH, json=_batch_body([abort_item(twice), commit_item(twice)]))
    problem = assert_problem(response, 422, "VALIDATION_ERROR")
    assert twice in problem["detail"]
    assert (await client.get(f"/ibps/v1/transfers/{twice}")).status_code == 404


async def test_the_batch_needs_the_token(app: FastAPI) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as anonymous:
        response = await anonymous.post(BATCH, json=_batch_body([abort_item(new_payment_id())]))
    assert_problem(response, 401, "UNAUTHORIZED")


@pytest.fixture
async def lenient_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the 500 response rather than the app's exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as http:
        yield http


async def test_an_unexpected_failure_rolls_the_whole_batch_back(
    bank: Bank, lenient_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id = await bank.open_account("100.00")
    pending = new_payment_id()
    await bank.prepare(pending, "DEBIT", account_id, "10.00")
    fresh, tombstone = new_payment_id(), new_payment_id()

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    # The last statement of the batch fails: everything before it must roll back.
    monkeypatch.setattr(repository, "write_plan", broken)
    items = [prepare_item(fresh, "DEBIT", account_id, "20.00"), commit_item(pending), abort_item(tombstone)]
    response = await lenient_client.post(BATCH, json=_batch_body(items))
    assert_problem(response, 500, "INTERNAL_ERROR")
    monkeypatch.undo()
    for payment_id in (fresh, tombstone):
        assert (await bank.http.get(f"/ibps/v1/transfers/{payment_id}")).status_code == 404
    assert (await bank.http.get(f"/ibps/v1/transfers/{pending}")).json()["status"] == "PENDING"
    assert await bank.balances(account_id) == ("100.00", "10.00", "90.00")
    # Every item can be retried, alone or as a batch.
    results = await bank.batch(items)
    assert [r["status"] for r in results] == [200, 200, 200]
    await bank.abort(fresh)


async def test_the_number_of_statements_does_not_grow_with_the_batch(bank: Bank, database_url: str) -> None:
    """Counted as sent, on every connection the ledger uses: the engine's and the lane's."""
    engine = create_engine(database_url)
    statements: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def count_lane(conn: asyncpg.Connection) -> None:
        # BEGIN, COMMIT and the lane's statements
        conn.add_query_logger(lambda query: statements.append(query.query))

    ledger = IbpsLedger(engine, lane=Lane(engine, init=count_lane))
    account_id = await bank.open_account("100000.00")

    async def run(size: int) -> int:
        ids = [new_payment_id() for _ in range(size)]
        setup: list[TransferRequest] = [
            PrepareRequest(p, TransferKind.DEBIT, account_id, 100, "CNY") for p in ids
        ]
        await ledger.apply_batch(setup)
        await asyncio.sleep(0)  # the setup's last statements are logged soon, not at once
        statements.clear()
        mixed: list[TransferRequest] = []
        for index, payment_id in enumerate(ids):
            mixed.append(CommitRequest(payment_id) if index % 2 else AbortRequest(payment_id))
            mixed.append(PrepareRequest(new_payment_id(), TransferKind.CREDIT, account_id, 100, "CNY"))
            mixed.append(AbortRequest(new_payment_id()))
        answers = await ledger.apply_batch(mixed)
        assert len(answers) == len(mixed)
        await asyncio.sleep(0)  # asyncpg calls its query loggers soon, not at once
        return len(statements)

    try:
        assert await run(4) == await run(200)
        # BEGIN, 4 statements at most (some only when needed), COMMIT
        assert 4 <= await run(4) <= 6, statements
    finally:
        await ledger.close()
        await engine.dispose()

"""Two-phase transfers: prepare, commit, abort, their replays, refusals and conflicts."""

from __future__ import annotations

from datetime import datetime

from ibps_support import Bank, assert_problem, new_id, new_payment_id


async def test_credit_prepare_commit(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    prepared = await bank.prepare(payment_id, "CREDIT", account_id, "25.5")
    assert prepared["outcome"] == "PREPARED"
    assert prepared["reason_code"] is None
    transfer = prepared["transfer"]
    assert transfer["payment_id"] == payment_id
    assert transfer["kind"] == "CREDIT"
    assert transfer["account_id"] == account_id
    assert transfer["debit_account_id"] == "IBPS-LINK-CNY"
    assert transfer["credit_account_id"] == account_id
    assert transfer["amount"] == "25.50"
    assert transfer["status"] == "PENDING"
    assert transfer["resolved_at"] is None
    assert datetime.fromisoformat(transfer["created_at"]).utcoffset() is not None
    # A credit holds nothing and moves nothing until it is posted.
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")

    committed = await bank.commit(payment_id)
    assert committed.status_code == 200, committed.text
    assert committed.json()["status"] == "POSTED"
    assert datetime.fromisoformat(committed.json()["resolved_at"]).utcoffset() is not None
    assert await bank.balances(account_id) == ("125.50", "0.00", "125.50")

    replay = await bank.commit(payment_id)
    assert replay.status_code == 200
    assert replay.json() == committed.json()
    again = await bank.prepare(payment_id, "CREDIT", account_id, "25.50")
    assert again["outcome"] == "PREPARED"
    assert again["transfer"] == committed.json()
    assert await bank.balances(account_id) == ("125.50", "0.00", "125.50")
    fetched = await bank.http.get(f"/ibps/v1/transfers/{payment_id}")
    assert fetched.json() == committed.json()


async def test_debit_prepare_commit(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    prepared = await bank.prepare(payment_id, "DEBIT", account_id, "40")
    assert prepared["outcome"] == "PREPARED"
    assert prepared["transfer"]["debit_account_id"] == account_id
    assert prepared["transfer"]["credit_account_id"] == "IBPS-LINK-CNY"
    assert await bank.balances(account_id) == ("100.00", "40.00", "60.00")

    replay = await bank.prepare(payment_id, "DEBIT", account_id, "40.00")
    assert replay == prepared
    assert await bank.balances(account_id) == ("100.00", "40.00", "60.00")

    committed = await bank.commit(payment_id)
    assert committed.json()["status"] == "POSTED"
    assert await bank.balances(account_id) == ("60.00", "0.00", "60.00")
    assert (await bank.commit(payment_id)).json() == committed.json()
    assert await bank.balances(account_id) == ("60.00", "0.00", "60.00")


async def test_debit_prepare_abort_releases_hold(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "DEBIT", account_id, "70.00")
    assert await bank.balances(account_id) == ("100.00", "70.00", "30.00")
    aborted = await bank.abort(payment_id)
    assert aborted.status_code == 200
    assert aborted.json()["status"] == "VOIDED"
    assert aborted.json()["reason_code"] is None
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")
    assert (await bank.abort(payment_id)).json() == aborted.json()
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")

    late = await bank.prepare(payment_id, "DEBIT", account_id, "70.00")
    assert late["outcome"] == "REFUSED"
    assert late["reason_code"] == "ALREADY_ABORTED"
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")
    assert_problem(await bank.commit(payment_id), 409, "TRANSFER_VOIDED")


async def test_credit_prepare_abort(bank: Bank) -> None:
    account_id = await bank.open_account("10.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "CREDIT", account_id, "5.00")
    assert (await bank.abort(payment_id)).json()["status"] == "VOIDED"
    assert await bank.balances(account_id) == ("10.00", "0.00", "10.00")
    assert_problem(await bank.commit(payment_id), 409, "TRANSFER_VOIDED")


async def test_insufficient_funds_refused_am04(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    held = new_payment_id()
    await bank.prepare(held, "DEBIT", account_id, "60.00")
    payment_id = new_payment_id()
    refused = await bank.prepare(payment_id, "DEBIT", account_id, "40.01")
    assert refused["outcome"] == "REFUSED"
    assert refused["reason_code"] == "AM04"
    assert refused["reason"]
    assert refused["transfer"]["status"] == "VOIDED"
    assert refused["transfer"]["reason_code"] == "AM04"
    assert await bank.balances(account_id) == ("100.00", "60.00", "40.00")
    # The refusal is recorded: the same request answers the same refusal even once funds are free.
    await bank.abort(held)
    assert await bank.prepare(payment_id, "DEBIT", account_id, "40.01") == refused
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")
    assert_problem(await bank.commit(payment_id), 409, "TRANSFER_VOIDED")
    # Exactly the available balance is enough.
    exact = await bank.prepare(new_payment_id(), "DEBIT", account_id, "100.00")
    assert exact["outcome"] == "PREPARED"
    assert await bank.balances(account_id) == ("100.00", "100.00", "0.00")
    await bank.abort(exact["transfer"]["payment_id"])


async def test_unknown_account_refused_ac01(bank: Bank) -> None:
    payment_id = new_payment_id()
    for kind in ("CREDIT", "DEBIT"):
        unknown = new_id()
        pid = payment_id if kind == "CREDIT" else new_payment_id()
        refused = await bank.prepare(pid, kind, unknown, "1.00")
        assert refused["outcome"] == "REFUSED"
        assert refused["reason_code"] == "AC01"
        assert refused["transfer"]["account_id"] == unknown
        assert refused["transfer"]["status"] == "VOIDED"
        assert await bank.prepare(pid, kind, unknown, "1.00") == refused
    refused = await bank.prepare(new_payment_id(), "DEBIT", "IBPS-FUNDING-CNY", "1.00")
    assert refused["reason_code"] == "AC01"


async def test_abort_tombstone_refuses_late_prepare(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    tombstone = await bank.abort(payment_id)
    assert tombstone.status_code == 200
    body = tombstone.json()
    assert body["status"] == "VOIDED"
    assert body["reason_code"] == "ALREADY_ABORTED"
    assert body["kind"] is None
    assert body["account_id"] is None
    assert body["amount"] is None
    assert (await bank.abort(payment_id)).json() == body
    for kind in ("DEBIT", "CREDIT"):
        late = await bank.prepare(payment_id, kind, account_id, "10.00")
        assert late["outcome"] == "REFUSED"
        assert late["reason_code"] == "ALREADY_ABORTED"
        assert late["transfer"] == body
    assert await bank.balances(account_id) == ("100.00", "0.00", "100.00")
    assert_problem(await bank.commit(payment_id), 409, "TRANSFER_VOIDED")


async def test_abort_after_commit_conflicts(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "DEBIT", account_id, "10.00")
    await bank.commit(payment_id)
    assert_problem(await bank.abort(payment_id), 409, "TRANSFER_POSTED")
    assert await bank.balances(account_id) == ("90.00", "0.00", "90.00")


async def test_commit_unknown_and_get_unknown(bank: Bank) -> None:
    payment_id = new_payment_id()
    assert_problem(await bank.commit(payment_id), 404, "TRANSFER_NOT_FOUND")
    response = await bank.http.get(f"/ibps/v1/transfers/{payment_id}")
    assert_problem(response, 404, "TRANSFER_NOT_FOUND")


async def test_same_payment_id_different_transfer_is_mismatch(bank: Bank) -> None:
    account_id, other_account = await bank.open_account("100.00"), await bank.open_account()
    payment_id = new_payment_id()
    await bank.prepare(payment_id, "DEBIT", account_id, "10.00")
    for kind, account, amount in (
        ("CREDIT", account_id, "10.00"),
        ("DEBIT", other_account, "10.00"),
        ("DEBIT", account_id, "10.01"),
    ):
        response = await bank.http.post(
            "/ibps/v1/transfers/prepare",
            json={
                "payment_id": payment_id,
                "kind": kind,
                "account_id": account,
                "amount": amount,
                "currency": "CNY",
            },
        )
        assert_problem(response, 409, "TRANSFER_MISMATCH")
    assert await bank.balances(account_id) == ("100.00", "10.00", "90.00")
    await bank.commit(payment_id)
    assert await bank.balances(account_id) == ("90.00", "0.00", "90.00")


async def test_payment_id_spelling_is_normalised(bank: Bank) -> None:
    account_id = await bank.open_account("10.00")
    payment_id = new_payment_id()
    await bank.prepare(payment_id.upper(), "CREDIT", account_id, "1.00")
    committed = await bank.commit(payment_id.upper())
    assert committed.json()["payment_id"] == payment_id
    assert (await bank.http.get(f"/ibps/v1/transfers/{payment_id}")).status_code == 200


async def test_list_transfers_pages_in_seq_order(bank: Bank) -> None:
    account_id = await bank.open_account("100.00")
    first = await bank.prepare(new_payment_id(), "CREDIT", account_id, "1.00")
    after = first["transfer"]["seq"] - 1
    expected = [first["transfer"]["payment_id"]]
    for _ in range(4):
        prepared = await bank.prepare(new_payment_id(), "CREDIT", account_id, "1.00")
        expected.append(prepared["transfer"]["payment_id"])
    seen: list[str] = []
    seqs: list[int] = []
    cursor: int | None = after
    pages = 0
    while cursor is not None:
        page = (await bank.http.get(f"/ibps/v1/transfers?after={cursor}&limit=2")).json()
        seen += [item["payment_id"] for item in page["items"]]
        seqs += [item["seq"] for item in page["items"]]
        assert all(item["payment_id"] is not None for item in page["items"])
        cursor = page["next_after"]
        pages += 1
        assert pages < 100
    assert seen == expected
    assert seqs == sorted(seqs)
    default = (await bank.http.get(f"/ibps/v1/transfers?after={after}")).json()
    assert default["next_after"] is None
    assert len(default["items"]) == 5
    for payment_id in expected:
        await bank.abort(payment_id)

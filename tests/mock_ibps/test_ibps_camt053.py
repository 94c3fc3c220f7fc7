"""The camt.053 statement: schema-valid, balances that add up, entries that match the transfers, paging."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from camt053_support import EXAMPLE, LINK, Stmt, business_today, parse, read, statement
from ibps_support import TOKEN, Bank, assert_problem, client_for, new_payment_id

from ibps_wire.schemas import NEXT_AFTER_HEADER
from mock_ibps.app import create_app
from mock_ibps.config import Settings


async def transfer_seq(http: httpx.AsyncClient, payment_id: str) -> int:
    seq: int = (await http.get(f"/ibps/v1/transfers/{payment_id}")).json()["seq"]
    return seq


async def test_a_banks_statement_matches_its_transfers(client: httpx.AsyncClient, bank: Bank) -> None:
    day = business_today()
    first = await bank.open_account("1000.00")
    second = await bank.open_account("500.00")
    credited, debited, voided, pending = (new_payment_id() for _ in range(4))
    await bank.prepare(credited, "CREDIT", first, "25.50")
    assert (await bank.commit(credited)).status_code == 200
    await bank.prepare(debited, "DEBIT", first, "40.00")
    assert (await bank.commit(debited)).status_code == 200
    await bank.prepare(voided, "DEBIT", second, "70.00")
    assert (await bank.abort(voided)).status_code == 200
    await bank.prepare(pending, "CREDIT", second, "10.00")
    assert (await bank.abort(new_payment_id())).status_code == 200  # a tombstone: no account, no entry

    response, document, stmts = await statement(client, day, participant_id=bank.participant_id)
    assert NEXT_AFTER_HEADER not in response.headers
    header = document.bk_to_cstmr_stmt.grp_hdr
    assert header.msg_pgntn.pg_nb == "1" and header.msg_pgntn.last_pg_ind is True
    assert len(header.msg_id) <= 35
    assert sorted(stmts) == sorted([first, second])

    a = stmts[first]
    assert (a.opening, a.closing) == (Decimal("0.00"), Decimal("985.50"))
    assert a.credits == (2, Decimal("1025.50")) and a.debits == (1, Decimal("40.00"))
    assert [(e.amount, e.direction, e.status, e.uetr) for e in a.entries] == [
        (Decimal("1000.00"), "CRDT", "BOOK", None),
        (Decimal("25.50"), "CRDT", "BOOK", credited),
        (Decimal("40.00"), "DBIT", "BOOK", debited),
    ]
    assert [e.codes for e in a.entries] == [
        ("ACMT", "MCOP", "OTHR", "OPENING"),
        ("PMNT", "RCDT", "XBCT", "CREDIT"),
        ("PMNT", "ICDT", "XBCT", "DEBIT"),
    ]
    assert a.entries[1].ref == await transfer_seq(client, credited)
    assert a.entries[2].ref == await transfer_seq(client, debited)
    assert (await bank.balances(first))[0] == "985.50"

    b = stmts[second]
    assert (b.opening, b.closing) == (Decimal("0.00"), Decimal("500.00"))
    assert b.credits == (1, Decimal("500.00")) and b.debits == (0, Decimal("0.00"))
    assert [(e.amount, e.direction, e.status, e.uetr) for e in b.entries] == [
        (Decimal("500.00"), "CRDT", "BOOK", None),
        (Decimal("10.00"), "CRDT", "PDNG", pending),
    ]

    assert (await bank.commit(pending)).status_code == 200
    _, _, after_commit = await statement(client, day, participant_id=bank.participant_id)
    b = after_commit[second]
    assert b.closing == Decimal("510.00") and b.credits == (2, Decimal("510.00"))
    assert [e.status for e in b.entries] == ["BOOK", "BOOK"]
    assert after_commit[first] == stmts[first]

    # The day before knows none of it: balances zero, no entries, and still one Stmt per account.
    _, _, yesterday = await statement(client, day - timedelta(days=1), participant_id=bank.participant_id)
    assert all(s.opening == s.closing == 0 and s.entries == [] for s in yesterday.values())


async def test_the_link_account_statement_is_the_default(client: httpx.AsyncClient, bank: Bank) -> None:
    day = business_today()
    account_id = await bank.open_account("300.00")
    _, _, before = await statement(client, day)
    assert list(before) == [LINK]
    northbound, southbound, aborted = (new_payment_id() for _ in range(3))
    await bank.prepare(northbound, "CREDIT", account_id, "88.80")
    await bank.commit(northbound)
    await bank.prepare(southbound, "DEBIT", account_id, "120.00")
    await bank.commit(southbound)
    await bank.prepare(aborted, "CREDIT", account_id, "5.00")
    await bank.abort(aborted)

    first_seq = await transfer_seq(client, northbound)
    _, document, after = await statement(client, day)
    link = after[LINK]
    assert document.bk_to_cstmr_stmt.stmt[0].acct.ccy == "CNY"
    # Northbound the link pays the mainland payee (a debit), southbound it collects (a credit).
    assert link.closing - before[LINK].closing == Decimal("120.00") - Decimal("88.80")
    assert link.opening == before[LINK].opening
    mine = [e for e in link.entries if e.ref >= first_seq]
    assert [(e.amount, e.direction, e.status, e.uetr) for e in mine] == [
        (Decimal("88.80"), "DBIT", "BOOK", northbound),
        (Decimal("120.00"), "CRDT", "BOOK", southbound),
    ]
    _, _, only_mine = await statement(client, day, after=first_seq - 1)
    assert only_mine[LINK].entries == mine
    assert (only_mine[LINK].opening, only_mine[LINK].closing) == (link.opening, link.closing)

    # Yesterday's closing balance is today's opening balance.
    _, _, yesterday = await statement(client, day - timedelta(days=1))
    assert yesterday[LINK].closing == link.opening


async def test_paging_splits_entries_and_repeats_the_totals(client: httpx.AsyncClient, bank: Bank) -> None:
    day = business_today()
    account_id = await bank.open_account("100.00")
    for cents in range(1, 6):
        payment_id = new_payment_id()
        await bank.prepare(payment_id, "CREDIT", account_id, f"1.0{cents}")
        await bank.commit(payment_id)
    _, _, whole = await statement(client, day, participant_id=bank.participant_id)
    assert len(whole[account_id].entries) == 6

    pages: list[dict[str, Stmt]] = []
    after, page = 0, 1
    for _ in range(10):
        response, document, stmts = await statement(
            client, day, participant_id=bank.participant_id, after=after, limit=3, page=page
        )
        pages.append(stmts)
        pagination = document.bk_to_cstmr_stmt.grp_hdr.msg_pgntn
        assert pagination.pg_nb == str(page)
        if NEXT_AFTER_HEADER not in response.headers:
            assert pagination.last_pg_ind is True
            break
        assert pagination.last_pg_ind is False
        after, page = int(response.headers[NEXT_AFTER_HEADER]), page + 1
    assert len(pages) == 2  # six entries in pages of three: no empty third page
    assert [e for p in pages for e in p[account_id].entries] == whole[account_id].entries
    for p in pages:
        totals = (p[account_id].opening, p[account_id].closing, p[account_id].credits, p[account_id].debits)
        assert totals == (Decimal("0.00"), Decimal("105.15"), (6, Decimal("105.15")), (0, Decimal("0.00")))


async def test_a_day_without_activity_has_zero_balances(client: httpx.AsyncClient) -> None:
    _, document, stmts = await statement(client, date(2001, 1, 1))
    assert stmts[LINK] == Stmt(
        LINK, Decimal("0.00"), Decimal("0.00"), (0, Decimal("0.00")), (0, Decimal("0.00")), []
    )
    assert document.bk_to_cstmr_stmt.stmt[0].elctrnc_seq_nb == Decimal("20010101")


async def test_auth_is_required(app: Any) -> None:
    async with client_for(app) as http:
        path = f"/ibps/v1/statements/{business_today().isoformat()}/camt053"
        assert_problem(await http.get(path, headers={"Authorization": ""}), 401, "UNAUTHORIZED")
        assert_problem(await http.get(path, headers={"Authorization": "Bearer wrong"}), 401, "UNAUTHORIZED")


async def test_bad_requests_are_problems(client: httpx.AsyncClient) -> None:
    base = "/ibps/v1/statements"
    assert_problem(await client.get(f"{base}/2026-02-30/camt053"), 422, "VALIDATION_ERROR")
    assert_problem(await client.get(f"{base}/yesterday/camt053"), 422, "VALIDATION_ERROR")
    for params in ({"limit": 0}, {"limit": 10_001}, {"after": -1}, {"page": 0}):
        assert_problem(await client.get(f"{base}/2026-06-22/camt053", params=params), 422, "VALIDATION_ERROR")
    unknown = await client.get(f"{base}/2026-06-22/camt053", params={"participant_id": "NOSUCHBANK"})
    assert_problem(unknown, 404, "PARTICIPANT_NOT_FOUND")
    empty = await Bank.create(client)
    no_accounts = await client.get(
        f"{base}/2026-06-22/camt053", params={"participant_id": empty.participant_id}
    )
    assert_problem(no_accounts, 404, "ACCOUNT_NOT_FOUND")


async def test_the_statement_fault_hook_applies(database_url: str) -> None:
    """On an app of its own, so the shared app's fault counters stay as other tests expect them."""
    application = create_app(Settings(database_url=database_url, token=TOKEN))
    async with application.router.lifespan_context(application), client_for(application) as http:
        rule = {"call": "statement", "kind": "error", "probability": 1.0, "seed": 7}
        assert (await http.post("/ibps/v1/sandbox/faults", json=rule)).status_code == 201
        response = await http.get(f"/ibps/v1/statements/{business_today().isoformat()}/camt053")
        assert_problem(response, 503, "INJECTED_FAULT")
        assert (await http.get("/ibps/v1/sandbox/faults")).json()["injected"] == {"statement": {"error": 1}}
        assert (await http.delete("/ibps/v1/sandbox/faults")).status_code == 204
        await statement(http, business_today())


def test_the_example_message_parses_and_adds_up() -> None:
    """The example in the docs is a real answer of the service, kept to show the format."""
    document = parse(EXAMPLE.read_bytes())
    stmts = read(document, date(2026, 11, 27))
    link = stmts[LINK]
    assert link.opening + link.credits[1] - link.debits[1] == link.closing
    assert {e.status for e in link.entries} == {"BOOK", "PDNG"}

"""What a bank's every request costs on the wire: its account read, and its quota's leases.

A bank flooding the gateway at ten times its quota weighed on every other bank's reads
(benchmarks/fairness.py) through what its own admitted requests cost. The account read was two
transactions (the directory's row, then the ledger's balances: BEGIN, SELECT, ROLLBACK twice) and a
lease three round trips (BEGIN, the upsert, COMMIT); each is now one statement in one round trip.
What goes to PostgreSQL is counted by the relay of benchmarks/roundtrips.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pgtest
import pytest
from gateway_stack import Stack, settings_for
from gw_support import FakeClock, Harness, bank_code, problem
from sqlalchemy import text
from sqlalchemy.engine import make_url

from fpslink.app import create_app
from fpslink.invariants import check_invariants
from fpslink.ratelimit.policy import Quota


@dataclass
class Counted:
    h: Harness
    relay: Any

    async def trips(self, request: Callable[[], Awaitable[object]]) -> list[tuple[str, int, int]]:
        """(kind, statements, transactions) of each round trip of a second run of `request`. A
        statement new to the pooled connection it gets is prepared first, once per connection
        (a trip of its own, and asyncpg's look-up of its types): not what a request costs, so
        not counted."""
        await request()
        await self.relay.quiet(0.05)
        mark = len(self.relay.trips)
        await request()
        await self.relay.quiet(0.05)
        return [
            (t.kind, t.statements, t.transactions)
            for t in self.relay.trips[mark:]
            if t.kind != "prepare" and t.source != "asyncpg"
        ]


@pytest.fixture
async def counted(stack: Stack) -> AsyncIterator[Counted]:
    roundtrips = pgtest.roundtrips()
    url = make_url(stack.gateway_db)
    relay = roundtrips.Relay(roundtrips.upstream(url))
    port = await relay.start()
    # no key look-up, quota lease or webhook delivery falls in a counted request
    settings = settings_for(
        stack,
        database_url=roundtrips.through(url, port),
        webhooks_enabled=False,
        key_cache_ttl_s=60,
    )
    app = create_app(settings, clock=FakeClock())
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
                h = Harness(app=app, http=http, clock=FakeClock())
                yield Counted(h, relay)
                report = await check_invariants(h.gw)
                assert report.ok, "\n".join(report.violations)
    finally:
        await relay.close()


async def test_an_account_read_is_one_statement_whoever_asks(counted: Counted) -> None:
    h = counted.h
    mine, theirs = await h.bank("FPS"), await h.bank("FPS")
    account = await h.account(mine, opening="250.00")
    path = f"/v1/accounts/{account}"

    async def as_owner() -> httpx.Response:
        shown = await h.http.get(path, headers=mine.headers)
        assert shown.status_code == 200, shown.text
        assert (shown.json()["balance"], shown.json()["held"]) == ("250.00", "0.00")
        return shown

    async def as_operator() -> httpx.Response:
        shown = await h.http.get(path, headers=h.operator)
        assert shown.status_code == 200, shown.text
        return shown

    async def as_another_bank() -> httpx.Response:
        hidden = await h.http.get(path, headers=theirs.headers)
        problem(hidden, 404, "ACCOUNT_NOT_FOUND")
        return hidden

    async def missing() -> httpx.Response:
        hidden = await h.http.get("/v1/accounts/HK0000000000000000", headers=mine.headers)
        problem(hidden, 404, "ACCOUNT_NOT_FOUND")
        return hidden

    one_statement = [("SELECT", 1, 1)]  # no BEGIN, no ROLLBACK: a statement is its own snapshot
    for request in (as_owner, as_operator, as_another_bank, missing):
        assert await counted.trips(request) == one_statement, request.__name__


async def test_a_quota_lease_is_one_statement_that_commits_by_itself(counted: Counted) -> None:
    gw = counted.h.gw
    quota = Quota(100, 5)  # a lease is 5 tokens: one request takes a lease, and spends one of them
    banks = [bank_code("LEASE") for _ in range(2)]
    unleased = iter(banks)

    async def first_request() -> None:
        assert (await gw.rate_limiter.admit(next(unleased), quota)).admitted

    assert await counted.trips(first_request) == [("INSERT", 1, 1)]  # no BEGIN, no COMMIT
    async with gw.engine.connect() as conn:
        kept = await conn.execute(
            text("SELECT granted, tokens FROM rate_buckets WHERE participant_id = ANY(:banks)"),
            {"banks": banks},
        )
        assert sorted(kept) == [(5, 95.0), (5, 95.0)]  # each lease stayed, committed

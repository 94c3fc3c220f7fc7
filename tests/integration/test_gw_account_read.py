"""GET /v1/accounts/{id} asks PostgreSQL once: the caller's check and the read are one statement.

It was two transactions (the directory's row, then the ledger's balances: BEGIN, SELECT, ROLLBACK
twice), about 2 ms of gateway CPU a read; a bank flooding the gateway with reads weighed on every
other bank's (benchmarks/fairness.py). What goes to PostgreSQL is counted on the wire by the relay
of benchmarks/roundtrips.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pgtest
import pytest
from gateway_stack import Stack, settings_for
from gw_support import FakeClock, Harness, problem
from sqlalchemy.engine import make_url

from fpslink.app import create_app
from fpslink.invariants import check_invariants


@dataclass
class Counted:
    h: Harness
    relay: Any

    async def trips(self, request: Callable[[], Awaitable[httpx.Response]]) -> list[tuple[str, int, int]]:
        """(kind, statements, transactions) of each round trip of `request`, its statements
        already prepared on the pooled connection by a first run."""
        await request()
        await self.relay.quiet(0.05)
        mark = len(self.relay.trips)
        await request()
        await self.relay.quiet(0.05)
        return [(t.kind, t.statements, t.transactions) for t in self.relay.trips[mark:]]


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

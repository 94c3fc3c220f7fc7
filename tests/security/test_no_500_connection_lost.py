"""The gateway's PostgreSQL connections killed at each step of a payment batch: every payment of the
batch answers 503 DATABASE_UNAVAILABLE, not 500, and nothing is left half done.

At one step of the batch (the settlement crash hook names the steps; `before_accept` is before the
batch's first statement), an admin connection locks the payments table, waits until the gateway's
next statement of the batch is blocked on it, and then runs pg_terminate_backend on every backend of
the gateway's database, as a database restart or failover would: the statement, inside its
transaction where the step has one, dies with its connection. asyncpg raises
ConnectionDoesNotExistError, AdminShutdownError or InterfaceError "connection is closed", which
answered 500. Afterwards the recovery sweep ends every payment as the step reached implies, a retry
with the same Idempotency-Key answers the payment, and the invariants hold (checked by the harness).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from typing import Any

import asyncpg
import httpx
import pgtest
import pytest
from gateway_stack import GATEWAY_DB
from gw_support import Bank, Harness, problem

from fpslink.settlement import recovery

PAYMENTS = 6
EXPECTED = {
    "before_accept": None,  # nothing was accepted: the retry is the payment's first submission
    "accepted": "REJECTED",
    "ibps_prepared": "REJECTED",
    "decided": "SETTLED",
    "ibps_finished": "SETTLED",
}


class Outage:
    """Kills the gateway's connections while one of its statements waits on a lock (a thread of its
    own with its own loop, since it starts from the crash hook, inside the gateway's loop)."""

    def __init__(self) -> None:
        self.started = False
        self.locked = threading.Event()
        self.blocked = 0
        self.killed = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Lock the payments table; return once it is locked. The rest happens in the background.

        This blocks the gateway's loop until the lock is held: no other transaction of the gateway
        may be open then (the test runs without the webhook dispatcher, and a step holds none between
        its statements), or the lock would wait for a transaction that cannot finish."""
        self.started = True
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        assert self.locked.wait(10), "the payments table was not locked"

    def join(self) -> None:
        assert self._thread is not None, "the outage never started"
        self._thread.join(30)

    async def _run(self) -> None:
        conn = await asyncpg.connect(pgtest.dsn(GATEWAY_DB), timeout=10)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
                self.locked.set()
                others = "datname = $1 AND pid <> pg_backend_pid()"
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not self.blocked:
                    self.blocked = await conn.fetchval(
                        f"SELECT count(*) FROM pg_stat_activity WHERE {others} AND wait_event_type = 'Lock'",
                        GATEWAY_DB,
                    )
                    await asyncio.sleep(0.005)
                self.killed = await conn.fetchval(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                    f"FROM pg_stat_activity WHERE {others}",
                    GATEWAY_DB,
                )
        finally:
            self.locked.set()
            await conn.close()


async def terminate_gateway_backends() -> int:
    """pg_terminate_backend on every backend of the gateway's database, each waited for."""
    conn = await asyncpg.connect(pgtest.dsn("postgres"), timeout=10)
    try:
        killed: int = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            GATEWAY_DB,
        )
        return killed
    finally:
        await conn.close()


async def _pay(h: Harness, bank: Bank, debtor: str, creditor: str, key: str) -> httpx.Response:
    return await h.pay(
        bank, debtor=debtor, amount="10.00", currency="HKD", creditor_account=creditor, key=key
    )


@pytest.mark.parametrize("step", list(EXPECTED))
@pytest.mark.settings(webhooks_enabled=False)  # no other transaction of this process to wait for
async def test_a_connection_lost_mid_batch_answers_503_and_nothing_is_half_done(
    harness: Harness, step: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, opening="1000.00")
    creditor = await h.account(cn)
    warm = await _pay(h, hk, debtor, creditor, str(uuid.uuid4()))  # accounts cached, pool in use
    assert warm.status_code == 201, warm.text

    outage = Outage()

    def hook(reached: str) -> None:
        if reached == step and not outage.started:
            outage.start()

    if step == "before_accept":
        outage.start()
    else:
        h.gw.crash_hook = hook
    keys = [str(uuid.uuid4()) for _ in range(PAYMENTS)]
    caplog.clear()
    caplog.set_level(logging.INFO)
    answers = await asyncio.gather(*(_pay(h, hk, debtor, creditor, key) for key in keys))
    h.gw.crash_hook = lambda point: None
    await asyncio.to_thread(outage.join)
    assert outage.blocked >= 1, "no statement of the batch waited on the lock"
    assert outage.killed >= 1, "no backend was terminated"
    for answer in answers:
        body = problem(answer, 503, "DATABASE_UNAVAILABLE")
        assert answer.headers["retry-after"] == "1", body
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info or r.exc_text]
    assert not tracebacks, tracebacks

    # the database is back (it never left: only the connections did); recovery ends what was left
    h.clock.advance(h.gw.settings.settlement_timeout_s + 1)
    for _ in range(3):
        await recovery.sweep(h.gw)
    expected = EXPECTED[step]
    finals: set[Any] = set()
    for key in keys:
        answer = await _pay(h, hk, debtor, creditor, key)  # the client's retry, answered at once
        if expected is None:  # never accepted: the retry is the payment's first submission
            assert answer.status_code == 201 and "idempotent-replayed" not in answer.headers, answer.text
            assert answer.json()["status"] == "SETTLED"
        else:
            assert answer.status_code == 201, answer.text
            assert answer.headers["idempotent-replayed"] == "true"
            finals.add(answer.json()["status"])
    assert finals == ({expected} if expected else set())
    balance, held = await h.balance(debtor)
    settled = PAYMENTS + 1 if expected in (None, "SETTLED") else 1
    assert (balance, held) == (f"{1000 - 10 * settled}.00", "0.00")


async def test_connections_killed_while_idle_are_replaced_without_an_error(harness: Harness) -> None:
    """A restart or failover while the pool sits idle costs no request an error: a connection the
    server closed is replaced when it is checked out."""
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor = await h.account(hk, opening="1000.00")
    creditor = await h.account(cn)
    warm = await asyncio.gather(*(_pay(h, hk, debtor, creditor, str(uuid.uuid4())) for _ in range(4)))
    assert {a.status_code for a in warm} == {201}
    assert await terminate_gateway_backends() >= 2
    await asyncio.sleep(0.05)  # the gateway's loop reads each connection's end
    answers = await asyncio.gather(
        h.http.get(f"/v1/accounts/{debtor}", headers=hk.headers),
        *(_pay(h, hk, debtor, creditor, str(uuid.uuid4())) for _ in range(4)),
    )
    assert [a.status_code for a in answers] == [200, 201, 201, 201, 201], [a.text for a in answers]

"""Retention on PostgreSQL, moved through the days by the test clock: keys forgotten after their TTL and
not before; purged days that leave both ledgers balanced, every balance as it was and the days kept
reconciled without a break; payments not final kept.

The module has its own databases and mock_ibps (the clock moves by days). The gateway keeps today and
the 2 dates before it, mock_ibps one more (as the settings require); timelines and finished webhook
deliveries 1 day, keys 24 hours. Every scenario ends with the invariant check (I1-I6).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pgtest
import pytest
from clock_support import DAY_S, advance, gateway, hkt, move_to, next_noon, northbound, southbound, world
from gateway_stack import Stack, stack_on
from gw_support import IBPS_TOKEN, OPERATOR_KEY, Crash, Harness, crash_at, problem
from sqlalchemy import func, select, update

from fpslink.ibps_client import IbpsRefused
from fpslink.idempotency.models import idempotency_keys
from fpslink.invariants import check_invariants
from fpslink.iso20022.models import iso20022_details, iso20022_transactions
from fpslink.ledger.models import ledger_transfers
from fpslink.limits.models import limit_usage
from fpslink.retention.models import limit_usage_carried
from fpslink.retention.service import LOCK_KEY
from fpslink.settlement import recovery
from fpslink.webhooks.models import webhook_deliveries

RETENTION_DB = f"fpslink_t_gw_retention_{pgtest.RUN}"
RETENTION_IBPS_DB = f"fpslink_t_gw_retention_ibps_{pgtest.RUN}"
KEPT = {
    "payment_retention_days": 2,
    "timeline_retention_days": 1,
    "webhook_retention_days": 1,
    "idempotency_ttl_h": 24,
}
IBPS_KEPT_DAYS = 3


@pytest.fixture(scope="module")
async def retention_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack_on(tmp_path_factory.mktemp("retention"), RETENTION_DB, RETENTION_IBPS_DB) as made:
        yield made


@pytest.fixture
async def retained(retention_stack: Stack) -> AsyncIterator[Harness]:
    """The gateway with the test clock, short retention, and no dispatcher: deliveries stay pending."""
    async with gateway(retention_stack, webhooks_enabled=False, payment_deadline_s=2.0, **KEPT) as h:
        yield h
        report = await check_invariants(h.gw)
        assert report.ok, "\n".join(report.violations)


def environment(stack: Stack) -> dict[str, str]:
    """What `fpslink retention` and `mock-ibps retention` read, with this module's retention."""
    return {
        **os.environ,
        "FPSLINK_DATABASE_URL": stack.gateway_db,
        "FPSLINK_IBPS_URL": stack.ibps_url,
        "FPSLINK_IBPS_TOKEN": IBPS_TOKEN,
        "FPSLINK_OPERATOR_KEY": OPERATOR_KEY,
        **{f"FPSLINK_{name.upper()}": str(value) for name, value in KEPT.items()},
        "MOCK_IBPS_DATABASE_URL": stack.ibps_db,
        "MOCK_IBPS_RETENTION_DAYS": str(IBPS_KEPT_DAYS),
    }


async def command(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", *args],
        env=environment(stack),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def key_bound(h: Harness, key: str) -> bool:
    async with h.gw.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(idempotency_keys).where(idempotency_keys.c.key == key)
        )
    return bool(count)


async def reconcile(h: Harness, day: date) -> Any:
    return await h.http.post(
        "/v1/reconciliations", json={"business_date": day.isoformat()}, headers=h.operator
    )


async def clean(h: Harness, day: date) -> None:
    run = await reconcile(h, day)
    assert run.status_code == 201, run.text
    body = run.json()
    assert (body["status"], body["break_count"]) == ("COMPLETED", 0), (day, body["breaks_by_type"])


async def found(h: Harness, payment_id: str) -> dict[str, Any] | None:
    response = await h.http.get(f"/v1/payments/{payment_id}", headers=h.operator)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_key_is_forgotten_once_its_ttl_has_passed_and_not_before(
    retained: Harness, retention_stack: Stack
) -> None:
    h = retained
    await next_noon(h)
    w = await world(h)
    key = f"retention-{uuid.uuid4()}"
    first = await northbound(h, w, "10.00", key=key)
    assert first["status"] == "SETTLED", first

    await advance(h, DAY_S - 60)
    assert (await h.gw.retention.run_once()).ran
    assert await key_bound(h, key)
    replay = await h.pay(
        w["hk"], debtor=w["hk_acc"], creditor_account=w["cn_acc"], amount="10.00", currency="HKD", key=key
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["payment_id"] == first["payment_id"]

    await advance(h, 120)
    done = await command(retention_stack, "fpslink.cli", "retention", "--json")
    assert done.returncode == 0, done.stderr
    passes = [json.loads(line) for line in done.stdout.splitlines()]
    assert passes[-1]["finished"] and passes[0]["purged"]["keys"] >= 1, passes
    assert not await key_bound(h, key)
    again = await northbound(h, w, "10.00", key=key)
    assert again["status"] == "SETTLED" and again["payment_id"] != first["payment_id"]


async def test_one_purger_at_a_time(retained: Harness, retention_stack: Stack) -> None:
    h = retained
    holder = await asyncpg.connect(pgtest.dsn(RETENTION_DB))
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        assert not (await h.gw.retention.run_once()).ran
        busy = await command(retention_stack, "fpslink.cli", "retention")
        assert busy.returncode == 2 and "another process" in busy.stderr
    finally:
        await holder.close()
    assert (await h.gw.retention.run_once()).ran


async def test_purged_days_leave_the_ledgers_balanced_and_the_days_kept_reconciled(
    retained: Harness, retention_stack: Stack
) -> None:
    h = retained
    h.allow_webhooks("127.0.0.1:9")
    d1 = await next_noon(h)
    w = await world(h)
    for bank in (w["hk"], w["cn"]):
        hook = await h.http.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=bank.headers
        )
        assert hook.status_code == 201, hook.text

    # day 1: settled both ways, refused by IBPS (voided on both ledgers), and one left decided
    paid: dict[date, list[str]] = {}
    paid[d1] = [
        (await northbound(h, w, "100.00"))["payment_id"],
        (await southbound(h, w, "200.00"))["payment_id"],
    ]
    refused = await southbound(h, w, "404.04")
    assert (refused["status"], refused["reason_code"]) == ("REJECTED", "RR04"), refused
    paid[d1] += [refused["payment_id"], await pacs008(h, w, d1)]
    h.gw.crash_hook = crash_at("decided")
    with pytest.raises(Crash):
        await h.pay(w["hk"], debtor=w["hk_acc"], creditor_account=w["cn_acc"], amount="50.00", currency="HKD")
    h.gw.crash_hook = lambda reached: None
    listed = (await h.http.get("/v1/payments", params={"status": "PENDING"}, headers=w["hk"].headers)).json()
    (stuck,) = [p["payment_id"] for p in listed["items"]]
    # days 2 to 4
    d2 = await next_noon(h)
    paid[d2] = [
        (await northbound(h, w, "300.00"))["payment_id"],
        (await southbound(h, w, "400.00"))["payment_id"],
    ]
    d3 = await next_noon(h)
    paid[d3] = [(await northbound(h, w, "500.00"))["payment_id"]]
    d4 = await next_noon(h)
    paid[d4] = [(await southbound(h, w, "600.00"))["payment_id"]]
    async with h.gw.engine.begin() as conn:
        d = webhook_deliveries.c
        for pid, finished_at in ((paid[d3][0], hkt(d3, 12)), (paid[d4][0], hkt(d4 + timedelta(days=1), 11))):
            await conn.execute(
                update(webhook_deliveries)
                .where(d.payment_id == pid)
                .values(status="DELIVERED", next_attempt_at=finished_at, delivered_at=finished_at)
            )

    # day 5: the gateway keeps days 3 to 5, mock_ibps days 2 to 5
    d5 = d4 + timedelta(days=1)
    await move_to(h, hkt(d5, 12))
    accounts = (w["hk_acc"], w["cn_acc"], "FPS-LINK-HKD", "FPS-FUNDING-HKD")
    balances = {account: await balance(h, account) for account in accounts}
    report = await h.gw.retention.run_once()
    assert report.ran and report.finished and report.kept_from == d3, report
    assert report.purged["payments"] >= 5 and report.carried >= 2, report
    ibps = await command(retention_stack, "mock_ibps.cli", "retention")
    assert ibps.returncode == 0, ibps.stderr
    assert f"kept from {d5 - timedelta(days=IBPS_KEPT_DAYS)}" in ibps.stdout

    for day in (d1, d2):
        for pid in paid[day]:
            assert await found(h, pid) is None, (day, pid)
    assert (await found(h, stuck) or {}).get("status") == "PENDING"
    assert {account: await balance(h, account) for account in accounts} == balances
    async with h.gw.engine.connect() as conn:
        d, u, t, i = webhook_deliveries.c, limit_usage.c, ledger_transfers.c, iso20022_transactions.c
        deliveries = {
            pid: n for pid, n in await conn.execute(select(d.payment_id, func.count()).group_by(d.payment_id))
        }
        usage_days = {row[0] for row in await conn.execute(select(u.period_key).where(u.period == "DAY"))}
        carried_days = {row[0] for row in await conn.execute(select(limit_usage_carried.c.period_key))}
        carried = {
            account
            for debit, credit in await conn.execute(
                select(t.debit_account_id, t.credit_account_id).where(t.kind == "CARRIED")
            )
            for account in (debit, credit)
        }
        references = await conn.scalar(select(func.count()).where(i.payment_id.in_(paid[d1])))
        sent_with = await conn.scalar(select(func.count()).where(iso20022_details.c.payment_id.in_(paid[d1])))
    assert references == sent_with == 0  # the pacs.008's references and details went with its payment
    # the balances purged postings made are carried forward, against the funding account
    assert {w["hk_acc"], "FPS-LINK-HKD", "FPS-FUNDING-HKD"} <= carried
    # pending deliveries went with their payments; day 3's finished ones are a day old, day 4's not
    assert not [pid for day in (d1, d2, d3) for pid in paid[day] if pid in deliveries]
    assert deliveries.get(paid[d4][0]) == 2
    # the timeline of day 3 went (kept 1 day) and its payment stays; day 4's timeline is kept
    kept_d3, kept_d4 = await found(h, paid[d3][0]), await found(h, paid[d4][0])
    assert kept_d3 is not None and kept_d3["events"] == []
    assert kept_d4 is not None and kept_d4["events"]
    # usage: day 2's rows went (only purged payments reserved them), day 1's stays for the one left
    assert d2.isoformat() not in usage_days and d1.isoformat() in usage_days
    assert d1.isoformat() in carried_days and d2.isoformat() not in carried_days

    # the days kept reconcile without a break; the purged ones are refused, on both sides
    problem(await reconcile(h, d2), 422, "BUSINESS_DATE_PURGED")
    with pytest.raises(IbpsRefused, match="STATEMENT_PURGED"):
        await h.gw.ibps.statement_page(d1)
    assert (await h.gw.ibps.statement_page(d2)).entries
    await clean(h, d3)
    await clean(h, d4)

    # the payment left behind finishes, and is kept: it changed today. Recovery takes it once its
    # batch may no longer be settling it, in real time, however far the clock moved meanwhile
    # (the window runs from the last move this worker saw, the wall clock here standing still)
    await asyncio.sleep(h.gw.settings.payment_deadline_s + recovery.BATCH_WORK_S + 0.2)
    assert (await recovery.sweep(h.gw)).get("SETTLED") == 1
    again = await h.gw.retention.run_once()
    assert "payments" not in again.purged, again
    assert (await found(h, stuck) or {}).get("status") == "SETTLED"
    today = await northbound(h, w, "700.00")
    assert today["status"] == "SETTLED", today
    await clean(h, d5)


async def pacs008(h: Harness, w: dict[str, Any], day: date) -> str:
    """A northbound payment sent as a pacs.008 (the examples' message, for this world and day); its id."""
    number = await h.proxy(w["cn"], w["cn_acc"])
    text = (Path(__file__).parent / "iso20022_examples" / "pacs008_northbound_proxy.xml").read_text()
    for old, new in {
        "HKDEMO0001": w["hk_acc"],
        "+86-13800138000": f"+86-{number[3:]}",
        "<MmbId>HARBOURHK</MmbId>": f"<MmbId>{w['hk'].participant_id}</MmbId>",
        "8a562c67-ca16-48ba-b074-65581be6f011": str(uuid.uuid4()),
        "2026-06-22": day.isoformat(),
    }.items():
        text = text.replace(old, new)
    response = await h.http.post(
        "/v1/iso20022/pacs.008",
        content=text.encode(),
        headers={**w["hk"].headers, "Content-Type": "application/xml"},
    )
    assert response.status_code == 201, response.text
    payment_id: str = response.headers["location"].rsplit("/", 1)[-1]
    i = iso20022_transactions.c
    async with h.gw.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).where(i.payment_id == payment_id)) == 1
        details = iso20022_details.c
        assert await conn.scalar(select(func.count()).where(details.payment_id == payment_id)) == 1
    return payment_id


async def balance(h: Harness, account: str) -> tuple[str, str] | int:
    """A customer's (balance, held) as the operator reads it; a link or funding account's balance,
    derived from the FPS postings."""
    if not account.startswith("FPS-"):
        return await h.balance(account)
    t = ledger_transfers.c
    posted = t.status == "POSTED"
    async with h.gw.engine.connect() as conn:
        credits = await conn.scalar(
            select(func.sum(t.amount_minor)).where(posted, t.credit_account_id == account)
        )
        debits = await conn.scalar(
            select(func.sum(t.amount_minor)).where(posted, t.debit_account_id == account)
        )
    return int(credits or 0) - int(debits or 0)

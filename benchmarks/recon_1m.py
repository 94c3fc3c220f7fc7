"""Reconcile a business day of 1,000,000 payments on PostgreSQL; print time per phase and peak memory.

    .venv/bin/python benchmarks/recon_1m.py [--payments 1000000] [--keep | --reuse]

Creates `fpslink_bench_gw` and `fpslink_bench_ibps` on 127.0.0.1:5432 (user postgres), generates the
day directly in both databases with `INSERT ... SELECT generate_series` (payments and FPS transfers in
the gateway's, transfers in mock_ibps's; both databases at once, each table's indexes and constraints
dropped for the load and rebuilt after it, which is several times faster than a million index
insertions), injects a handful of breaks, starts a real mock_ibps on 127.0.0.1, runs the same
`reconcile()` the API runs, and drops both databases (unless --keep). `--reuse` reconciles the
databases a `--keep` run left, without generating them again. Generation time is reported apart from
the reconciliation's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from fpslink import migrate  # noqa: E402
from fpslink.config import Settings  # noqa: E402
from fpslink.context import Gateway  # noqa: E402
from fpslink.db import create_engine  # noqa: E402
from fpslink.fx.domain import RateSheet  # noqa: E402
from fpslink.ibps_client import client_from_settings  # noqa: E402
from fpslink.money import Currency  # noqa: E402
from fpslink.reconciliation.domain import business_date_of, business_day_bounds  # noqa: E402
from ibps_wire.credentials import new_secret  # noqa: E402
from mock_ibps import migrate as ibps_migrate  # noqa: E402

SERVER = os.environ.get("FPSLINK_BENCH_POSTGRES", "postgres@127.0.0.1:5432")
GW_DB, IBPS_DB = "fpslink_bench_gw", "fpslink_bench_ibps"
TOKEN = new_secret("bench_ibps_")
"""This run's mock_ibps token: `mock-ibps serve` refuses a fixed one."""
ACCOUNTS = 1000


async def admin(sql: list[str]) -> None:
    conn = await asyncpg.connect(f"postgresql://{SERVER}/postgres")
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


INJECTED: dict[str, int] = {
    "AMOUNT_MISMATCH": 4,
    "FX_MISMATCH": 1,
    "STUCK_PENDING": 1,
    "MISSING_AT_IBPS": 3,
    "STATUS_MISMATCH": 1,
    "UNEXPECTED_AT_IBPS": 2,
}


@contextlib.asynccontextmanager
async def bulk_load(conn: asyncpg.Connection, tables: list[str]) -> AsyncIterator[None]:
    """Drop the tables' indexes and constraints (and foreign keys pointing at them) for the load, and
    rebuild them afterwards: one sort per index instead of a million random insertions."""
    constraints = await conn.fetch(
        "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def,"
        " contype::text AS contype"  # "char", which asyncpg would read as bytes
        " FROM pg_constraint WHERE contype IN ('p', 'u', 'f')"
        " AND (conrelid = ANY($1::regclass[]) OR confrelid = ANY($1::regclass[]))",
        tables,
    )
    indexes = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def FROM pg_index i"
        " WHERE indrelid = ANY($1::regclass[])"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        tables,
    )
    ordered = sorted(constraints, key=lambda c: c["contype"] != "f")
    for c in ordered:
        await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    yield
    await conn.execute("SET maintenance_work_mem = '256MB'")
    for index in indexes:
        await conn.execute(index["def"])
    for c in reversed(ordered):
        await conn.execute(f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}')


async def generate(n: int, day: date) -> dict[str, int]:
    """The day in both databases, generated at once; returns the breaks injected, by type."""
    await asyncio.gather(_generate_gateway(n, day), _generate_ibps(n, day))
    return dict(INJECTED)


def _day_sql(n: int, day: date) -> tuple[str, str]:
    """(columns every table derives from payment number i, the target amount expression)."""
    start, _ = business_day_bounds(day)
    nb_rate, sb_rate, _, _ = _rates()
    nb_micro, sb_micro = int(nb_rate * 1_000_000), int(sb_rate * 1_000_000)
    step_ms = 86_000_000 // n
    # i % 5 == 0: southbound CNY -> HKD, else northbound HKD -> CNY; i % 50 == 7: rejected (legs voided)
    common = f"""
        md5('p' || i)::uuid::text AS payment_id,
        (i % 5 = 0) AS south,
        (i % 50 = 7) AS rejected,
        1000 + (i * 7919) % 900000 AS source_minor,
        '{start.isoformat()}'::timestamptz + (i * {step_ms}) * interval '1 millisecond' AS created_at,
        'HKBENCH' || lpad((i % {ACCOUNTS})::text, 9, '0') AS hk_account,
        'CNBENCH' || lpad((i % {ACCOUNTS})::text, 9, '0') AS cn_account
    """
    target = (
        f"CASE WHEN south THEN source_minor * {sb_micro} / 1000000"
        f" ELSE source_minor * {nb_micro} / 1000000 END"
    )
    return common, target


def _rates() -> tuple[Any, Any, Any, Any]:
    """(northbound rate, southbound rate, northbound mid, southbound mid) as the gateway records them."""
    sheet = RateSheet(mid_hkd_cny=Settings().fx_mid_hkd_cny, spread_bps=Settings().fx_spread_bps)
    return (
        sheet.applied(Currency.HKD, Currency.CNY),
        sheet.applied(Currency.CNY, Currency.HKD),
        sheet.mid(Currency.HKD, Currency.CNY),
        sheet.mid(Currency.CNY, Currency.HKD),
    )


async def _generate_gateway(n: int, day: date) -> None:
    common, target = _day_sql(n, day)
    nb_rate, sb_rate, nb_mid, sb_mid = _rates()
    gw = await asyncpg.connect(f"postgresql://{SERVER}/{GW_DB}")
    try:
        # the transfers' foreign keys, restored after the load, need their accounts
        await gw.execute(
            f"""
            INSERT INTO ledger_accounts (account_id, currency, kind, balance_minor, held_minor)
            SELECT 'HKBENCH' || lpad(i::text, 9, '0'), 'HKD', 'CUSTOMER', 0, 0
            FROM generate_series(0, {ACCOUNTS - 1}) AS i
            """
        )
        async with bulk_load(gw, ["payments", "ledger_transfers"]):
            await gw.execute(
                f"""
                INSERT INTO payments (payment_id, participant_id, creditor_participant_id, direction,
                    state, debtor_account_id, creditor_account_id, creditor_masked_name, source_minor,
                    source_currency, target_minor, target_currency, amount_type, mid_rate, rate,
                    spread_bps, purpose, end_to_end_id, reason_code, business_date, limit_minor,
                    limit_currency, attempts, created_at, updated_at, decided_at, settled_at)
                SELECT payment_id,
                    CASE WHEN south THEN 'BENCHCN' ELSE 'BENCHHK' END,
                    CASE WHEN south THEN 'BENCHHK' ELSE 'BENCHCN' END,
                    CASE WHEN south THEN 'SOUTHBOUND' ELSE 'NORTHBOUND' END,
                    CASE WHEN rejected THEN 'REJECTED' ELSE 'SETTLED' END,
                    CASE WHEN south THEN cn_account ELSE hk_account END,
                    CASE WHEN south THEN hk_account ELSE cn_account END,
                    'C*N', source_minor, CASE WHEN south THEN 'CNY' ELSE 'HKD' END,
                    {target}, CASE WHEN south THEN 'HKD' ELSE 'CNY' END, 'SEND',
                    CASE WHEN south THEN '{sb_mid}' ELSE '{nb_mid}' END,
                    CASE WHEN south THEN '{sb_rate}' ELSE '{nb_rate}' END, '25', 'FAMILY_SUPPORT',
                    'E2E' || i, CASE WHEN rejected THEN 'AB06' END, '{day.isoformat()}', source_minor,
                    CASE WHEN south THEN 'CNY' ELSE 'HKD' END, 1, created_at,
                    created_at + interval '300 milliseconds', created_at + interval '120 milliseconds',
                    CASE WHEN rejected THEN NULL
                         ELSE created_at + ((40 + (i * 37) % 1500) * interval '1 millisecond') END
                FROM (SELECT i, {common} FROM generate_series(1::bigint, {n}) AS i) AS g
                """
            )
            await gw.execute(
                f"""
                INSERT INTO ledger_transfers (payment_id, kind, debit_account_id, credit_account_id,
                    currency, amount_minor, status, created_at, resolved_at)
                SELECT payment_id,
                    CASE WHEN south THEN 'CREDIT' ELSE 'DEBIT' END,
                    CASE WHEN south THEN 'FPS-LINK-HKD' ELSE hk_account END,
                    CASE WHEN south THEN hk_account ELSE 'FPS-LINK-HKD' END,
                    'HKD', CASE WHEN south THEN {target} ELSE source_minor END,
                    CASE WHEN rejected THEN 'VOIDED' ELSE 'POSTED' END, created_at,
                    created_at + interval '120 milliseconds'
                FROM (SELECT i, {common} FROM generate_series(1::bigint, {n}) AS i) AS g
                """
            )
        # injected at the gateway and FPS: 2 FPS amounts, 1 FX rate, 1 stuck payment
        await gw.execute(
            "UPDATE ledger_transfers SET amount_minor = amount_minor + 1 WHERE payment_id IN "
            "(md5('p11')::uuid::text, md5('p12')::uuid::text)"
        )
        await gw.execute("UPDATE payments SET rate = '0.900000' WHERE payment_id = md5('p13')::uuid::text")
        await gw.execute(
            "UPDATE payments SET state = 'COMMITTING', settled_at = NULL "
            "WHERE payment_id = md5('p14')::uuid::text"
        )
        await gw.execute("VACUUM ANALYZE payments")
        await gw.execute("VACUUM ANALYZE ledger_transfers")
    finally:
        await gw.close()


async def _generate_ibps(n: int, day: date) -> None:
    common, target = _day_sql(n, day)
    start, _ = business_day_bounds(day)
    ibps = await asyncpg.connect(f"postgresql://{SERVER}/{IBPS_DB}")
    try:
        await ibps.execute("INSERT INTO participants VALUES ('BENCHCN', 'Bench CN', now())")
        await ibps.execute(
            f"""
            INSERT INTO accounts (account_id, participant_id, kind, holder_name, currency, balance_minor,
                held_minor, created_at)
            SELECT 'CNBENCH' || lpad(i::text, 9, '0'), 'BENCHCN', 'CUSTOMER', 'Bench', 'CNY', 0, 0, now()
            FROM generate_series(0, {ACCOUNTS - 1}) AS i
            """
        )
        async with bulk_load(ibps, ["transfers"]):
            await ibps.execute(
                f"""
                INSERT INTO transfers (transfer_id, payment_id, kind, account_id, debit_account_id,
                    credit_account_id, currency, amount_minor, status, reason_code, created_at, resolved_at)
                SELECT md5('t' || i)::uuid::text, payment_id,
                    CASE WHEN south THEN 'DEBIT' ELSE 'CREDIT' END, cn_account,
                    CASE WHEN south THEN cn_account ELSE 'IBPS-LINK-CNY' END,
                    CASE WHEN south THEN 'IBPS-LINK-CNY' ELSE cn_account END,
                    'CNY', CASE WHEN south THEN source_minor ELSE {target} END,
                    CASE WHEN rejected THEN 'VOIDED' ELSE 'POSTED' END, NULL,
                    created_at + interval '20 milliseconds', created_at + interval '200 milliseconds'
                FROM (SELECT i, {common} FROM generate_series(1::bigint, {n}) AS i) AS g
                """
            )
        # injected at IBPS: 3 missing, 2 amounts, 1 status, 2 strays
        await ibps.execute(
            "DELETE FROM transfers WHERE payment_id IN "
            "(md5('p21')::uuid::text, md5('p22')::uuid::text, md5('p23')::uuid::text)"
        )
        await ibps.execute(
            "UPDATE transfers SET amount_minor = amount_minor + 100 WHERE payment_id IN "
            "(md5('p24')::uuid::text, md5('p26')::uuid::text)"
        )
        await ibps.execute(
            "UPDATE transfers SET status = 'PENDING' WHERE payment_id = md5('p27')::uuid::text"
        )
        await ibps.execute(
            f"""
            INSERT INTO transfers (transfer_id, payment_id, kind, account_id, debit_account_id,
                credit_account_id, currency, amount_minor, status, created_at)
            SELECT md5('stray' || i)::uuid::text, md5('stray-p' || i)::uuid::text, 'CREDIT',
                'CNBENCH000000001', 'IBPS-LINK-CNY', 'CNBENCH000000001', 'CNY', 5000, 'POSTED',
                '{start.isoformat()}'::timestamptz + interval '3 hours'
            FROM generate_series(1, 2) AS i
            """
        )
        await ibps.execute("VACUUM ANALYZE transfers")
    finally:
        await ibps.close()


async def kept_day() -> date:
    conn = await asyncpg.connect(f"postgresql://{SERVER}/{GW_DB}")
    try:
        found = await conn.fetchval("SELECT min(business_date) FROM payments")
    finally:
        await conn.close()
    if found is None:
        raise SystemExit("no kept day to reuse: run once with --keep first")
    return date.fromisoformat(str(found))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mock_ibps(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_ibps.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-migrate",
        ],
        env={**os.environ, "MOCK_IBPS_DATABASE_URL": url, "MOCK_IBPS_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"mock_ibps did not start; see {log}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="reconcile the databases a --keep run left (implies --keep)"
    )
    args = parser.parse_args()
    args.keep = args.keep or args.reuse
    day = business_date_of(datetime.now(UTC)) - timedelta(days=1)
    gw_url = f"postgresql+asyncpg://{SERVER}/{GW_DB}"
    ibps_url = f"postgresql+asyncpg://{SERVER}/{IBPS_DB}"
    if not args.reuse:
        await admin(
            [
                s
                for db in (GW_DB, IBPS_DB)
                for s in (f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', f'CREATE DATABASE "{db}"')
            ]
        )
    process = None
    try:
        await asyncio.to_thread(migrate.upgrade, gw_url)
        await asyncio.to_thread(ibps_migrate.upgrade, ibps_url)
        if args.reuse:
            day = await kept_day()
            injected = dict(INJECTED)
            print(f"reusing the kept day {day}")
        else:
            mark = time.perf_counter()
            injected = await generate(args.payments, day)
            generation_s = time.perf_counter() - mark
            print(
                f"generated {args.payments:,} payments of {day} (+ FPS and IBPS transfers)"
                f" in {generation_s:.1f} s"
            )

        port = free_port()
        process = await asyncio.to_thread(
            start_mock_ibps, ibps_url, port, Path("/tmp/recon_1m_mock_ibps.log")
        )
        settings = Settings(
            database_url=gw_url,
            ibps_url=f"http://127.0.0.1:{port}",
            ibps_token=TOKEN,
            ibps_timeout_s=30,
            settlement_timeout_s=120,
            operator_key=new_secret("bench_operator_"),
        )
        engine = create_engine(gw_url, pool_size=2)
        ibps = client_from_settings(settings)
        gw = Gateway(settings=settings, engine=engine, ibps=ibps)
        rss_before = peak_rss_mb()
        try:
            mark = time.perf_counter()
            run_id = await gw.reconciliation.reconcile(business_date=day)
            elapsed = time.perf_counter() - mark
            run = await gw.reconciliation.get_run(run_id)
        finally:
            await ibps.aclose()
            await engine.dispose()
        found = {k: v for k, v in run.summary["breaks_by_type"].items() if v}
        print(f"reconciliation {run_id}: {elapsed:.1f} s in all")
        for phase, seconds in run.summary["timings_s"].items():
            print(f"  {phase:<12} {seconds:8.2f} s")
        print(f"IBPS statement entries: {run.summary['statement_entries']:,}")
        print(f"peak RSS of this process: {peak_rss_mb():.0f} MB (before the run: {rss_before:.0f} MB)")
        print(f"breaks found:    {found}")
        print(f"breaks injected: {injected}")
        print("OK" if found == injected else "MISMATCH between injected and found breaks")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
            print(
                "peak RSS of mock_ibps:",
                f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB",
            )
        if not args.keep:
            await admin([f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in (GW_DB, IBPS_DB)])


if __name__ == "__main__":
    asyncio.run(main())

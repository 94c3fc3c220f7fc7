"""Storage per payment, and what the retention job costs to purge it, on the databases a throughput run kept.

    .venv/bin/python benchmarks/throughput.py --only fpslink --duration 15 --keep
    .venv/bin/python benchmarks/retention.py [--rate 1000] [--purge]

Reads `fpslink_bench_tp_gw` and `fpslink_bench_tp_ibps` (what throughput.py leaves with `--keep`) on
the benchmark's PostgreSQL (`FPSLINK_BENCH_POSTGRES`) and prints each table that grows with payments,
its size (`pg_total_relation_size`: heap, indexes and TOAST, as the run left them, dead rows and
free space included) and its bytes per payment; then what a day at `--rate` payments a second
writes, and what the default retention keeps at steady state: payments, their FPS transfers, usage
and quotes for today and 30 dates, IBPS transfers one date more, timelines and webhook deliveries 7
days, keys 48 hours (docs/operations.md#retention).

`--purge` then moves both databases' sandbox clocks past the payments' retention and runs each
service's retention job in this process until it is done, and prints the rows deleted, the seconds,
payments purged a second, and the CPU seconds of this process (the jobs' Python) and of the
PostgreSQL backends that served them; then the sizes again. A DELETE leaves its space to new rows once
vacuumed: the files do not shrink, which is what keeps a table bounded at steady state.

The databases are the throughput run's, to throw away (the next run drops them); this script holds
the throughput run's lock while it reads and purges them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.throughput import (  # noqa: E402
    GW_DB,
    IBPS_DB,
    SERVER,
    postgres_backends,
    process_cpu_s,
    take_lock,
)

DAY_S = 86_400
DEFAULT_DAYS = {"payments": 31.0, "transfers": 32.0, "timeline": 7.0, "deliveries": 7.0, "keys": 2.0}
"""Days of payments each kind of table holds at steady state under the default settings (payments:
today and 30 dates; mock_ibps one date more; timelines and deliveries 7 days; keys 48 hours)."""


@dataclass(frozen=True)
class Table:
    database: str
    name: str
    kept: str | None
    """Which retention bounds it (a key of DEFAULT_DAYS); None for a table that grows with something
    else than payments, listed but left out of the projection."""


TABLES = (
    Table(GW_DB, "payments", "payments"),
    Table(GW_DB, "ledger_transfers", "payments"),
    Table(GW_DB, "payment_events", "timeline"),
    Table(GW_DB, "idempotency_keys", "keys"),
    Table(IBPS_DB, "transfers", "transfers"),
    Table(GW_DB, "webhook_deliveries", None),  # a row per payment and subscribed bank; none here
    Table(GW_DB, "limit_usage", None),  # a row per debtor account and date
    Table(GW_DB, "quotes", None),  # a row per quote asked for; none here
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="payments a second to project a day at")
    parser.add_argument("--purge", action="store_true", help="then purge every payment and time it")
    return parser.parse_args(argv)


def dsn(database: str) -> str:
    return f"postgresql://{SERVER}/{database}"


async def sizes() -> tuple[int, dict[Table, int]]:
    """(payments in the gateway's database, each table's total size in bytes)."""
    import asyncpg

    found: dict[Table, int] = {}
    payments = 0
    for database in (GW_DB, IBPS_DB):
        conn = await asyncpg.connect(dsn(database))
        try:
            if database == GW_DB:
                payments = int(await conn.fetchval("SELECT count(*) FROM payments"))
            for table in (t for t in TABLES if t.database == database):
                found[table] = int(
                    await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", table.name)
                )
        finally:
            await conn.close()
    return payments, found


def storage_report(payments: int, found: dict[Table, int], rate: float) -> list[str]:
    if not payments:
        return ["no payments: run benchmarks/throughput.py --only fpslink --keep first"]
    lines = [f"{payments} payments; bytes per payment by table (pg_total_relation_size):"]
    each_total = per_day = steady = 0.0
    for table, size in found.items():
        each = size / payments
        note = "" if table.kept else "  (grows with something else: not projected)"
        if table.kept:
            each_total += each
            per_day += each * rate * DAY_S
            steady += each * rate * DAY_S * DEFAULT_DAYS[table.kept]
        lines.append(
            f"  {table.database}.{table.name:<20} {size / 2**20:9.1f} MiB  {each:7.0f} B/payment{note}"
        )
    lines.append(f"  the tables that grow with payments: {each_total:.0f} B/payment")
    lines.append(f"at {rate:.0f} payments/s: {per_day / 2**30:.0f} GiB written a day")
    lines.append(f"kept at steady state by the default retention: {steady / 2**30:.0f} GiB")
    return lines


async def move_clocks(days: int) -> None:
    """Both services' sandbox offsets, so that their jobs (which read them) run `days` ahead."""
    import asyncpg

    offset_us = days * DAY_S * 1_000_000
    for database in (GW_DB, IBPS_DB):
        conn = await asyncpg.connect(dsn(database))
        try:
            await conn.execute("UPDATE sandbox_clock SET offset_us = greatest(offset_us, $1)", offset_us)
        finally:
            await conn.close()


async def backends_cpu_s() -> dict[int, float]:
    import asyncpg

    conn = await asyncpg.connect(dsn("postgres"))
    try:
        return {pid: process_cpu_s([pid]) for pid in await postgres_backends(conn, [GW_DB, IBPS_DB])}
    finally:
        await conn.close()


async def purge() -> list[str]:
    """Both jobs until done, on engines kept open to the end so that their backends can be measured."""
    from fpslink.config import Settings
    from fpslink.context import Gateway
    from fpslink.db import create_engine
    from fpslink.ibps_client import client_from_settings
    from mock_ibps.clock import IbpsClock
    from mock_ibps.config import Settings as IbpsSettings
    from mock_ibps.db import create_engine as create_ibps_engine
    from mock_ibps.retention import IbpsRetention

    settings = Settings(database_url=f"postgresql+asyncpg://{SERVER}/{GW_DB}", retention_max_batches=100_000)
    await move_clocks(settings.payment_retention_days + 2)
    engine, ibps_engine = (
        create_engine(settings.database_url, pool_size=2),
        create_ibps_engine(f"postgresql+asyncpg://{SERVER}/{IBPS_DB}"),
    )
    ibps = client_from_settings(settings)
    lines = []
    try:
        gw = Gateway(settings=settings, engine=engine, ibps=ibps)
        await gw.read_sandbox_offset()
        ibps_clock = IbpsClock(ibps_engine)
        await ibps_clock.read()
        ibps_job = IbpsRetention(
            ibps_engine, clock=ibps_clock.now, settings=IbpsSettings(retention_max_batches=100_000)
        )
        before = await backends_cpu_s()
        started, cpu = time.perf_counter(), time.process_time()
        report = await gw.retention.run_once()
        gateway_s = time.perf_counter() - started
        ibps_report = await ibps_job.run_once()
        wall, python = time.perf_counter() - started, time.process_time() - cpu
        after = await backends_cpu_s()
        database = sum(used - before.get(pid, 0.0) for pid, used in after.items())
        payments = report.purged.get("payments", 0)
        lines += [
            f"gateway: {report.purged}, {report.carried} carried entries, {gateway_s:.1f} s "
            f"({payments / max(gateway_s, 1e-9):.0f} payments/s)",
            f"mock_ibps: {ibps_report.transfers} transfers, {ibps_report.carried} carried entries, "
            f"{wall - gateway_s:.1f} s",
            f"CPU: this process {python:.1f} s, PostgreSQL backends {database:.1f} s; "
            f"{1000 * (python + database) / max(payments, 1):.3f} ms a payment, both services",
        ]
    finally:
        await ibps.aclose()
        await engine.dispose()
        await ibps_engine.dispose()
    return lines


async def main(args: argparse.Namespace) -> int:
    lock = take_lock()
    if lock is None:
        print("a throughput run holds its lock (and the databases); not starting")
        return 2
    payments, found = await sizes()
    print("\n".join(storage_report(payments, found, args.rate)))
    if args.purge and payments:
        print("\n".join(await purge()))
        after_payments, after = await sizes()
        print(
            f"after the purge: {after_payments} payments left; the tables hold "
            f"{sum(after.values()) / 2**20:.1f} MiB (their space is reused once vacuumed)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))

"""A soak: hours of payments at a steady rate, and whether latency, memory or the ledgers drift.

    .venv/bin/python benchmarks/soak.py --hours 1 [--rate 300] [--workers 2] [--tail-ms 250] [--keep]

The PostgreSQL is the sandbox's embedded server (`fpslink_tools.embedded_pg`), fresh in a temporary
directory and configured as a production server is: autovacuum on, checkpoints spread, durable
commits (its `SETTINGS`; the run prints the ones that matter). Not the machine's shared server, whose
autovacuum is off: hours without vacuum measure a bloat that no one runs with. On it, as
`throughput.py` does: fresh databases, mock_ibps and `fpslink serve --workers N` on 127.0.0.1 (open
all day, limits and the banks' quota out of the way, recovery on) and 400 funded accounts opened
through the API; then `--rate` payments a second both ways, open loop (scheduled whatever the
answers, over up to 64 connections; a latency counts from the payment's scheduled time), for
`--hours` (fractions allowed; rounded to whole minutes, at least 3), after a 30 s warm-up that is
not counted.

Printed every minute, one fixed-width row: the time (UTC), the 1-minute load average (the machine is
shared), settled payments/s, p50 and p99 ms, failed payments (transport errors, unexpected statuses,
rejections, payments not sent because 256 were already waiting), CPU ms per settled payment (every
process), the RSS of each gateway worker and of mock_ibps, the mean RSS of the PostgreSQL backends
serving the two databases and how many there are, each database's size (pg_database_size) and dead
tuples (pg_stat_user_tables.n_dead_tup summed, and the table with most). RSS leaves shared memory
out (RssAnon + RssFile of /proc/PID/status): a backend's shared part is the shared buffers it has
touched, which grows for hours without costing anything. At the end the same table every 10 minutes,
percentiles pooled over the 10 minutes.

The steady tail: the p99 of each 10 s of the load (a checkpoint or a vacuum that stalls commits for
seconds shows in one window, and is lost in a minute's p99). Each row gives its minute's highest
(`10s max`); the end gives their spread and every window above `--tail-ms` (250 ms; 0 judges none),
as "minute 7, 20-30 s". A window of fewer than 100 answers (a rate under 10 a second) is not judged:
its p99 is its slowest answer.

Then the judgement: the last 10 minutes against the first 10 (in a run shorter than 20 minutes, the
last third against the first third, and the report says so). It fails when the pooled p99 is more
than 20% above the first window's, or the mean RSS of the gateway's workers (together), of
mock_ibps or of a PostgreSQL backend more than 10% above (a fall is no drift). Then, once nothing
is pending, the gateway is stopped and, as `fpslink check` and `fpslink recon` do, the invariants
I1-I6 are checked and every business date the run touched is reconciled. Exit status 1 when
something drifted, a 10 s window's p99 passed `--tail-ms`, a payment failed, an invariant broke
or a reconciliation found a break; 2 when another soak is running (a lock in `FPSLINK_BENCH_LOGS`,
/tmp/fpslink-throughput, where the servers' logs go too).

Each minute is one call of `throughput.drive`, so the load pauses between minutes while a minute's
last answers come in (under a second). Only the latencies still needed (the first window, the last
window's worth so far, the 10 minutes being summed) are kept, so a run of any length fits in memory.
SIGINT or SIGTERM ends the load after the current minute and goes on to the judgement and checks; a
second one stops at once. The temporary directory is removed at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.throughput import (  # noqa: E402
    LOAD_ENV,
    LOG_DIR,
    Result,
    Running,
    _percentile,
    cpu_probe,
    drive,
    fpslink_request,
    loadavg,
    on_server,
    postgres_backends,
    running_fpslink,
    seed_fpslink,
    settle_and_audit,
    take_lock,
    worker_pids,
)

if TYPE_CHECKING:
    import asyncpg

GW_DB, IBPS_DB = "fpslink_soak_gw", "fpslink_soak_ibps"
CONNECTIONS = 64
ACCOUNTS = 400
WARMUP_S = 30.0
MINUTE_S = 60.0
BLOCK_MINUTES = 10
"""The rows of the closing table, and the windows compared in a run of SHORT_RUN_MINUTES or more."""
SHORT_RUN_MINUTES = 20
TAIL_WINDOW_S = 10.0
"""The steady tail is judged on the p99 of each 10 s: a checkpoint or a vacuum that stalls commits
for a few seconds shows there, and is lost in a minute's p99."""
MIN_WINDOW_ANSWERS = 100
"""Windows with fewer answers (a run under 10 payments a second) are shown but not judged."""
P99_DRIFT = 0.20
RSS_DRIFT = 0.10
GROUPS = ("gateway workers", "mock_ibps", "postgres backend")
"""The RSS judged: the workers' sum, mock_ibps, and the mean of the PostgreSQL backends (whose
number follows the pools, so their sum would measure the load, not a leak)."""
PG_SETTINGS = (
    "autovacuum",
    "autovacuum_naptime",
    "autovacuum_vacuum_scale_factor",
    "checkpoint_timeout",
    "max_wal_size",
    "shared_buffers",
    "synchronous_commit",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; bounds every number so that a run always ends."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=1.0, help="length of the load (fractions allowed)")
    parser.add_argument("--rate", type=float, default=300.0, help="payments offered a second (open loop)")
    parser.add_argument("--workers", type=int, default=2, help="gateway workers")
    parser.add_argument("--port", type=int, default=28730, help="gateway port; mock_ibps takes the next")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and its database")
    parser.add_argument(
        "--tail-ms",
        type=float,
        default=250.0,
        help="the steady tail: every 10 s window's p99 at most this (ms); 0 reports it without judging",
    )
    args = parser.parse_args(argv)
    checks = {
        "--hours": 3 / 60 <= args.hours <= 24,
        "--tail-ms": 0 <= args.tail_ms <= 60_000,
        "--rate": 1 <= args.rate <= 5000,
        "--workers": 1 <= args.workers <= 16,
        "--port": 1024 <= args.port <= 65_000,
    }
    for name, ok in checks.items():
        if not ok:
            parser.error(f"{name} is out of range")
    args.minutes = max(3, round(args.hours * 60))
    return args


# ---------------------------------------------------------------- the judgement (pure)


def window_minutes(minutes: int) -> int:
    """The length of the two windows compared: 10 minutes, or a third of a run shorter than 20."""
    return BLOCK_MINUTES if minutes >= SHORT_RUN_MINUTES else max(1, minutes // 3)


def still_needed(minute: int, done: int, planned: int) -> bool:
    """Whether the latencies of `minute` (from 0) may still be pooled once `done` minutes are done:
    it is in the first window, among the last window's worth so far (the run may stop early, and a
    shorter run's window is never longer), or in the 10 minutes not yet summed."""
    window = window_minutes(planned)
    return minute < window or minute >= done - window or minute // BLOCK_MINUTES == done // BLOCK_MINUTES


@dataclass(frozen=True)
class Drift:
    """The last window against the first: p99 and mean RSS of each group, and what drifted."""

    window: int
    short: bool
    p99_ms: tuple[float, float]
    rss_mib: dict[str, tuple[float, float]]
    drifted: list[str]

    def lines(self) -> list[str]:
        if self.short:
            head = (
                f"the last third ({self.window} min) against the first (a run under {SHORT_RUN_MINUTES} min)"
            )
        else:
            head = f"the last {self.window} minutes against the first {self.window}"
        rss = "; ".join(
            f"{group} {a:.1f} -> {b:.1f} ({_change(a, b)})" for group, (a, b) in self.rss_mib.items()
        )
        first, last = self.p99_ms
        return [
            f"drift, {head}:",
            f"  p99 ms {first:.1f} -> {last:.1f} ({_change(first, last)}; limit +{P99_DRIFT:.0%})",
            f"  RSS MiB {rss} (limit +{RSS_DRIFT:.0%})",
        ]


def _change(before: float, after: float) -> str:
    return f"{after / before - 1:+.1%}" if before > 0 else "n/a"


def judge(latencies: Sequence[Sequence[float]], rss: Sequence[Mapping[str, float]]) -> Drift:
    """Each minute's latencies (ms) and RSS (MiB) by group, in order: the last window against the first.

    Only growth drifts: a p99 or RSS that falls is what a warming cache or a quieter machine gives."""
    minutes = len(latencies)
    window = window_minutes(minutes)
    first = _percentile([x for minute in latencies[:window] for x in minute], 0.99)
    last = _percentile([x for minute in latencies[minutes - window :] for x in minute], 0.99)
    drifted = []
    if math.isnan(first) or math.isnan(last):
        drifted.append("p99: a window has no answers")
    elif last > first * (1 + P99_DRIFT):
        drifted.append(f"p99 {first:.1f} -> {last:.1f} ms ({_change(first, last)})")
    means: dict[str, tuple[float, float]] = {}
    for group in dict.fromkeys(chain.from_iterable(rss)):
        early = [m[group] for m in rss[:window] if group in m]
        late = [m[group] for m in rss[len(rss) - window :] if group in m]
        if not early or not late:
            drifted.append(f"RSS of {group}: not measured in a window")
            continue
        means[group] = (statistics.fmean(early), statistics.fmean(late))
        if means[group][1] > means[group][0] * (1 + RSS_DRIFT):
            before, after = means[group]
            drifted.append(f"RSS of {group} {before:.1f} -> {after:.1f} MiB ({_change(before, after)})")
    return Drift(window, minutes < SHORT_RUN_MINUTES, (first, last), means, drifted)


@dataclass(frozen=True)
class Window:
    """Ten seconds of one minute's load: the requests sent in it, and the p99 of their latencies."""

    minute: int
    """From 1, as in the rows."""
    start_s: int
    """Seconds into the minute's load (its warm-up left out)."""
    answers: int
    p99_ms: float

    @property
    def judged(self) -> bool:
        """Over fewer answers than MIN_WINDOW_ANSWERS a p99 is the slowest one or two: not a tail."""
        return self.answers >= MIN_WINDOW_ANSWERS

    def label(self) -> str:
        return f"minute {self.minute}, {self.start_s}-{self.start_s + int(TAIL_WINDOW_S)} s"


def windows_of(minute: int, result: Result) -> list[Window]:
    """The minute's 10 s windows that have answers, in order."""
    groups: dict[int, list[float]] = {}
    for sent, latency in zip(result.sent_s, result.latencies_ms, strict=True):
        groups.setdefault(int(sent // TAIL_WINDOW_S), []).append(latency)
    return [
        Window(minute, int(i * TAIL_WINDOW_S), len(values), _percentile(values, 0.99))
        for i, values in sorted(groups.items())
    ]


def worst_p99(windows: Sequence[Window]) -> float:
    """The highest p99 of the windows judged (NaN if none is)."""
    return max((w.p99_ms for w in windows if w.judged), default=math.nan)


@dataclass(frozen=True)
class Tail:
    """The p99 of every 10 s window of the run, and the windows above the bound."""

    windows: tuple[Window, ...]
    limit_ms: float
    over: tuple[Window, ...]

    def lines(self) -> list[str]:
        ranked = sorted(w.p99_ms for w in self.windows if w.judged)
        unjudged = len(self.windows) - len(ranked)
        few = f"; {unjudged} with fewer than {MIN_WINDOW_ANSWERS} answers not judged" if unjudged else ""
        if not ranked:
            return [f"steady tail: no 10 s window to judge{few}"]
        q = {name: _percentile(ranked, f) for name, f in (("median", 0.5), ("p90", 0.9), ("p99", 0.99))}
        spread = ", ".join(f"{name} {value:.1f}" for name, value in q.items())
        bound = f"; above {self.limit_ms:g} ms: {len(self.over)}" if self.limit_ms else " (no bound set)"
        lines = [
            f"steady tail, the p99 of each {TAIL_WINDOW_S:g} s ({len(ranked)} windows), ms:"
            f" {spread}, max {ranked[-1]:.1f}{bound}{few}"
        ]
        lines += [f"  {w.label()}: p99 {w.p99_ms:.1f} ms over {w.answers} answers" for w in self.over[:10]]
        if len(self.over) > 10:
            lines.append(f"  ... and {len(self.over) - 10} more")
        return lines


def judge_tail(windows: Sequence[Window], limit_ms: float) -> Tail:
    """Every window judged against `limit_ms` (0: none is). Only windows with answers exist; a
    minute whose answers stopped says so in its failures."""
    over = tuple(w for w in windows if limit_ms and w.judged and not w.p99_ms <= limit_ms)
    return Tail(tuple(windows), limit_ms, over)


# ---------------------------------------------------------------- what each minute measures


@dataclass(frozen=True)
class Sample:
    """Memory and storage at the end of a minute."""

    gateway_mib: list[float]
    """Each gateway worker's RSS."""
    ibps_mib: float
    backends_mib: list[float]
    db_bytes: dict[str, int]
    dead: dict[str, tuple[int, str]]
    """Each database's dead tuples, and its table with most ("name count")."""

    def rss(self) -> dict[str, float]:
        """MiB by group of GROUPS."""
        workers, ibps, backend = GROUPS
        groups = {workers: sum(self.gateway_mib), ibps: self.ibps_mib}
        if self.backends_mib:
            groups[backend] = statistics.fmean(self.backends_mib)
        return groups


def rss_mib(pid: int) -> float | None:
    """Resident memory without shared memory (RssAnon + RssFile), or None for a process gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = 0
    for line in status.splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            kib += int(line.split()[1])
    return kib / 1024


async def take_sample(running: Running, server: str) -> Sample:
    import asyncpg

    dead: dict[str, tuple[int, str]] = {}
    for name in (GW_DB, IBPS_DB):
        conn = await asyncpg.connect(on_server(server, name))
        try:
            dead[name] = await dead_tuples(conn)
        finally:
            await conn.close()
    conn = await asyncpg.connect(server)
    try:
        sizes = await conn.fetch(
            "SELECT datname, pg_database_size(datname) AS bytes FROM pg_database"
            " WHERE datname = ANY($1::text[])",
            [GW_DB, IBPS_DB],
        )
        backends = await postgres_backends(conn, [GW_DB, IBPS_DB], clients_only=True)
    finally:
        await conn.close()
    return Sample(
        gateway_mib=[m for pid in worker_pids(running.gateway) if (m := rss_mib(pid)) is not None],
        ibps_mib=rss_mib(running.ibps.pid) or 0.0,
        backends_mib=[m for pid in backends if (m := rss_mib(pid)) is not None],
        db_bytes={row["datname"]: row["bytes"] for row in sizes},
        dead=dead,
    )


async def dead_tuples(conn: asyncpg.Connection) -> tuple[int, str]:
    """The connection's database's dead tuples, and its table with most."""
    rows = await conn.fetch(
        "SELECT relname, n_dead_tup FROM pg_stat_user_tables ORDER BY n_dead_tup DESC, relname"
    )
    top = f"{rows[0]['relname']} {rows[0]['n_dead_tup']}" if rows else "-"
    return sum(row["n_dead_tup"] for row in rows), top


@dataclass
class Minute:
    label: str
    clock: str
    load1: float
    settled_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int
    cpu_ms: float
    sample: Sample
    worst_10s_ms: float
    """The highest p99 of the minute's 10 s windows."""
    latencies_ms: array[float] = field(default_factory=lambda: array("f"))


def minute_of(index: int, result: Result, sample: Sample, windows: Sequence[Window]) -> Minute:
    settled = max(result.settled, 1)
    return Minute(
        label=str(index + 1),
        clock=datetime.now(UTC).strftime("%H:%M:%S"),
        load1=os.getloadavg()[0],
        settled_per_s=result.per_s(result.settled),
        p50_ms=result.percentile(0.50),
        p99_ms=result.percentile(0.99),
        failed=result.error_count,
        cpu_ms=1000 * sum(result.cpu_s.values()) / settled,
        sample=sample,
        worst_10s_ms=worst_p99(windows),
        latencies_ms=array("f", result.latencies_ms),
    )


def block_of(minutes: Sequence[Minute]) -> Minute:
    """Minutes summed into one row: percentiles pooled, memory and storage as at its end."""
    pooled = [x for m in minutes for x in m.latencies_ms]
    return Minute(
        label=f"{minutes[0].label}-{minutes[-1].label}",
        clock=minutes[-1].clock,
        load1=statistics.fmean(m.load1 for m in minutes),
        settled_per_s=statistics.fmean(m.settled_per_s for m in minutes),
        p50_ms=_percentile(pooled, 0.50),
        p99_ms=_percentile(pooled, 0.99),
        failed=sum(m.failed for m in minutes),
        cpu_ms=statistics.fmean(m.cpu_ms for m in minutes),
        sample=minutes[-1].sample,
        worst_10s_ms=max(
            (m.worst_10s_ms for m in minutes if not math.isnan(m.worst_10s_ms)), default=math.nan
        ),
    )


COLUMNS = (
    ("minute", 8),
    ("UTC", 10),
    ("load", 6),
    ("settled/s", 10),
    ("p50 ms", 8),
    ("p99 ms", 8),
    ("10s max", 8),
    ("failed", 7),
    ("cpu ms", 7),
    ("gw workers MiB", 16),
    ("ibps MiB", 9),
    ("pg MiB x n", 12),
    ("gw db MiB", 10),
    ("ibps db MiB", 12),
    ("gw dead", 9),
    ("  gw top dead", 28),
    ("ibps dead", 10),
    ("  ibps top dead", 28),
)
TEXT_COLUMNS = {"  gw top dead", "  ibps top dead"}


def table_line(cells: Sequence[str]) -> str:
    """One fixed-width line: numbers right-aligned, table names left-aligned (and cut to fit)."""
    out = []
    for (title, width), cell in zip(COLUMNS, cells, strict=True):
        if title in TEXT_COLUMNS:
            out.append(("  " + cell)[:width].ljust(width))
        else:
            out.append(cell[: width - 1].rjust(width))
    return "".join(out).rstrip()


def header() -> str:
    titles = (title.ljust(w) if title in TEXT_COLUMNS else title.rjust(w) for title, w in COLUMNS)
    return "".join(titles).rstrip()


def row(m: Minute) -> str:
    s = m.sample
    mib = 1024 * 1024
    backends = f"{statistics.fmean(s.backends_mib):.1f} x{len(s.backends_mib)}" if s.backends_mib else "-"
    gw_dead, gw_top = s.dead.get(GW_DB, (0, "-"))
    ibps_dead, ibps_top = s.dead.get(IBPS_DB, (0, "-"))
    return table_line(
        [
            m.label,
            m.clock,
            f"{m.load1:.2f}",
            f"{m.settled_per_s:.1f}",
            f"{m.p50_ms:.1f}",
            f"{m.p99_ms:.1f}",
            f"{m.worst_10s_ms:.0f}",
            str(m.failed),
            f"{m.cpu_ms:.2f}",
            "+".join(f"{x:.0f}" for x in s.gateway_mib),
            f"{s.ibps_mib:.0f}",
            backends,
            f"{s.db_bytes.get(GW_DB, 0) / mib:.0f}",
            f"{s.db_bytes.get(IBPS_DB, 0) / mib:.0f}",
            str(gw_dead),
            gw_top,
            str(ibps_dead),
            ibps_top,
        ]
    )


# ---------------------------------------------------------------- the run


async def postgres_settings(server: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        version = await conn.fetchval("SHOW server_version")
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1::text[])"
            " ORDER BY name",
            list(PG_SETTINGS),
        )
    finally:
        await conn.close()
    return f"PostgreSQL {version}: " + ", ".join(f"{r['name']} {r['value']}" for r in rows)


@dataclass
class Outcome:
    minutes: list[Minute] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    """The rows of every 10 minutes, printed."""
    breaks: list[str] = field(default_factory=list)
    """Failed payments, invariant violations, reconciliation breaks."""
    notes: list[str] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    """Each 10 s of the load that had answers, in order."""


async def soak(args: argparse.Namespace, server: str, stopping: asyncio.Event) -> Outcome:
    """The stack on `server`, the load minute by minute, then the audit."""
    from fpslink_tools.loadtest import business_dates

    out = Outcome()
    minutes = out.minutes
    failures: Counter[str] = Counter()
    at = (GW_DB, IBPS_DB)
    async with running_fpslink(
        at, args.port, args.workers, LOAD_ENV, log_prefix="soak_", keep=args.keep, server=server
    ) as running:
        world = await seed_fpslink(args.port, running.operator_key, ACCOUNTS)
        print(
            f"{len(world.hk)} FPS and {len(world.cn)} IBPS accounts opened; {WARMUP_S:.0f} s warm-up, then:"
        )
        print(header())
        make = fpslink_request(world)
        gateway, ibps = running.gateway, running.ibps
        probe = cpu_probe(
            {
                "gateway": lambda: sorted({gateway.pid, *worker_pids(gateway)}),
                "mock_ibps": lambda: [ibps.pid],
            },
            [GW_DB, IBPS_DB],
            server=server,
        )
        started = datetime.now(UTC)
        for index in range(args.minutes):
            if stopping.is_set():
                print(f"stopped after {index} minutes")
                break
            load = argparse.Namespace(
                duration=MINUTE_S,
                warmup=WARMUP_S if index == 0 else 0.0,
                concurrency=CONNECTIONS,
                rate=args.rate,
                seed=index + 1,
            )
            result = await drive(f"minute {index + 1}", args.port, make, load, cpu=probe)
            failures.update(result.errors)
            windows = windows_of(index + 1, result)
            out.windows += windows
            minutes.append(minute_of(index, result, await take_sample(running, server), windows))
            print(row(minutes[-1]))
            done = index + 1
            if done % BLOCK_MINUTES == 0:
                out.blocks.append(row(block_of(minutes[done - BLOCK_MINUTES :])))
            for i, minute in enumerate(minutes):
                if minute.latencies_ms and not still_needed(i, done, args.minutes):
                    minute.latencies_ms = array("f")
        if len(minutes) % BLOCK_MINUTES:
            out.blocks.append(row(block_of(minutes[len(minutes) - len(minutes) % BLOCK_MINUTES :])))
        days = business_dates(started, datetime.now(UTC))
        out.breaks, out.notes = await settle_and_audit(running, args.port, days)
    out.breaks += [f"payments failed: {kind} x{n}" for kind, n in failures.most_common()]
    return out


async def main(args: argparse.Namespace) -> int:
    from fpslink_tools.embedded_pg import serving

    stopping = asyncio.Event()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stopping.is_set() and task is not None:
            task.cancel()  # the second: stop now (servers stopped, the directory removed)
        else:
            stopping.set()
            print("stopping after this minute (again to stop at once)")

    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, on_signal)
    lock = take_lock("soak.lock")
    if lock is None:
        print(f"another soak holds {LOG_DIR / 'soak.lock'} (same ports); not starting")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="fpslink-soak-"))
    print(
        f"soak: {args.minutes} minutes at {args.rate:g} payments/s (open loop,"
        f" {CONNECTIONS} connections at most), {args.workers} gateway worker(s);"
        f" started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC;"
        f" load average {loadavg()} on {os.cpu_count()} cores"
    )
    try:
        with serving(workdir / "pg") as endpoint:
            server = endpoint.url("postgres", driver="")
            print(f"embedded {await postgres_settings(server)} (in {workdir})")
            out = await soak(args, server, stopping)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nevery {BLOCK_MINUTES} minutes (percentiles pooled; memory and storage at the end of each):")
    print(header())
    print("\n".join(out.blocks))
    problems = [f"BREAK {line}" for line in out.breaks]
    if len(out.minutes) >= 2:
        drift = judge([m.latencies_ms for m in out.minutes], [m.sample.rss() for m in out.minutes])
        print("\n" + "\n".join(drift.lines()))
        problems += [f"DRIFT {what}" for what in drift.drifted]
    else:
        problems.append("DRIFT: fewer than 2 minutes, nothing to compare")
    tail = judge_tail(out.windows, args.tail_ms)
    print("\n".join(tail.lines()))
    if tail.over:
        worst = max(w.p99_ms for w in tail.over)
        problems.append(
            f"TAIL {len(tail.over)} of {len(tail.windows)} windows of {TAIL_WINDOW_S:g} s with a p99"
            f" above {args.tail_ms:g} ms (the highest {worst:.1f} ms)"
        )
    print("\n".join(out.notes))
    print(f"load average at the end: {loadavg()}")
    print(
        "\n".join(problems)
        or f"no drift, {'a steady tail' if args.tail_ms else 'the tail not judged'}, no failed payment,"
        " invariants hold, reconciliation clean"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    import uvloop

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # read while it runs
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main(parse_args())))

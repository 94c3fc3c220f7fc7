"""Sustained throughput of settled two-phase payments: fpslink against the single-hop skeleton, one run.

    .venv/bin/python benchmarks/throughput.py [--duration 60] [--concurrency 64] [--workers 2] [--warmup 5]

In one run, on PostgreSQL at 127.0.0.1:5432 (`FPSLINK_BENCH_POSTGRES`, default `postgres@127.0.0.1:5432`):

1. fpslink: fresh databases `fpslink_bench_tp_gw` and `fpslink_bench_tp_ibps`, mock_ibps and
   `fpslink serve --workers N` on 127.0.0.1 (limits and the banks' rate limit raised out of the way,
   southbound 24 h, recovery on), banks and `--accounts` funded accounts opened through the API (so
   no account is hot); then `POST /v1/payments` both ways, creditor by account id, a fresh
   Idempotency-Key per payment; then
   the gateway is stopped, pending payments having been let finish, and the invariants I1-I6 and a
   reconciliation of the run's business day(s) are run against both ledgers.
2. the skeleton (`benchmarks/skeleton/`): fresh `fpslink_bench_skel_front` and
   `fpslink_bench_skel_back`, back.py (1 worker, like mock_ibps) and front.py (N workers), driven
   with `POST /pay` by the same generator for the same time and concurrency; then its audit.

The load generator is an asyncio client in this process (uvloop, `benchmarks/skeleton/rawhttp.py`:
persistent HTTP/1.1 connections, one per concurrent client, each sending its next request as soon as
the previous answer arrives). Only requests started after the warm-up count. Printed for each:
requests/s, settled payments/s, p50/p95/p99 latency, errors (transport failures, unexpected HTTP
statuses, and rejected payments: none is expected), payments left pending, breaks (invariant
violations plus reconciliation breaks; for the skeleton, its audit), and fpslink / skeleton.

Each system's line also gives the CPU milliseconds per settled payment of each group of processes
(servers, the PostgreSQL backends of its databases, the load generator), from /proc over the
measured window: steadier than throughput on a shared machine, and it says where the cost is.

`--profile FILE` also records one gateway worker with py-spy during the measured window (a `.txt`
file gets py-spy's raw collapsed stacks and a table of the top functions; anything else a flame graph).
`--locust` then also runs `loadtests/locustfile.py` (the realistic mix) against fpslink.
Every server binds 127.0.0.1; the databases are dropped at the end unless `--keep`; one run at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    import asyncpg

    from fpslink.config import Settings

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.skeleton import schema as skeleton_schema  # noqa: E402
from benchmarks.skeleton.rawhttp import HttpError, Pool  # noqa: E402

SERVER = os.environ.get("FPSLINK_BENCH_POSTGRES", "postgres@127.0.0.1:5432")
SERVER_DSN = f"postgresql://{SERVER}/postgres"
"""asyncpg's DSN of the server's `postgres` database; the helpers below take another (`server=`)."""
HOST = "127.0.0.1"
WINDOW_S = 10.0
"""Width of the windows whose p99 latencies the report lists."""
GW_DB, IBPS_DB = "fpslink_bench_tp_gw", "fpslink_bench_tp_ibps"
SKEL_FRONT_DB, SKEL_BACK_DB = "fpslink_bench_skel_front", "fpslink_bench_skel_back"
BANKS = (("TPHK1", "FPS"), ("TPHK2", "FPS"), ("TPCN1", "IBPS"), ("TPCN2", "IBPS"))
MAX_REQUESTS_PER_CLIENT = 10_000_000
BACKLOG_PER_CONNECTION = 4
"""Open loop: scheduled requests waiting for a connection, at most this many per connection."""
LOG_DIR = Path(os.environ.get("FPSLINK_BENCH_LOGS", "/tmp/fpslink-throughput"))
LOAD_ENV = {
    "FPSLINK_SOUTHBOUND_HOURS": "00:00-24:00",
    "FPSLINK_RATE_LIMIT_QUOTA": "10000000",
    "FPSLINK_RATE_LIMIT_WINDOW_S": "1",
    "FPSLINK_RECOVERY_ENABLED": "true",
}
"""The gateway's settings under load: open all day, the banks' quota out of the way, recovery on."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; bounds every number so that a run always ends."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per system")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent clients (connections)")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: offer this many payments per second whatever the answers (up to --concurrency "
        "connections at once); latency counts from each request's scheduled time",
    )
    parser.add_argument("--workers", type=int, default=2, help="gateway and skeleton front workers")
    parser.add_argument("--accounts", type=int, default=400, help="funded accounts on each side")
    parser.add_argument(
        "--only", choices=("both", "fpslink", "skeleton"), default="both", help="which systems to run"
    )
    parser.add_argument("--port", type=int, default=28710, help="first of four local ports")
    parser.add_argument("--seed", type=int, default=1, help="seed of the payments' accounts and amounts")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy one gateway worker into FILE")
    parser.add_argument(
        "--locust",
        action="store_true",
        help="after the measurement, also run loadtests/locustfile.py (the realistic mix) against fpslink",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure fpslink and the skeleton this many times, alternately, and report each round's "
        "ratio and their median: a burst of load from elsewhere then skews one round, not the result",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    checks = {
        "--duration": 1 <= args.duration <= 3600,
        "--warmup": 0 <= args.warmup <= 600,
        "--concurrency": 1 <= args.concurrency <= 1024,
        "--rate": args.rate is None or 1 <= args.rate <= 20_000,
        "--workers": 1 <= args.workers <= 16,
        "--accounts": 2 <= args.accounts <= 100_000,
        "--port": 1024 <= args.port <= 65_000,
        "--rounds": 1 <= args.rounds <= 10,
    }
    for name, ok in checks.items():
        if not ok:
            parser.error(f"{name} is out of range")
    return args


# ---------------------------------------------------------------- processes and databases


def spawn(argv: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    """A server in its own process group (so that stopping it stops its workers), logging to a file."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = (LOG_DIR / log_name).open("ab")
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


async def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    pool = Pool(HOST, port, size=1, timeout_s=2.0)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server on port {port} exited with {process.returncode}; see {LOG_DIR}"
                )
            try:
                if (await pool.request("GET", "/healthz")).status == 200:
                    return
            except (HttpError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    finally:
        await pool.aclose()
    raise RuntimeError(f"the server on port {port} was not healthy within {timeout_s:.0f} s")


def worker_pids(process: subprocess.Popen[bytes]) -> list[int]:
    """uvicorn's worker processes: its children with several workers, itself with one."""
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    except OSError:
        children = []
    pids = [int(pid) for pid in children]
    # the multiprocess supervisor may also hold a resource-tracker child; workers run uvicorn's code
    workers = [pid for pid in pids if "spawn_main" in _cmdline(pid)]
    return workers or pids or [process.pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def on_server(server: str, database: str, driver: str = "") -> str:
    """The URL of `database` on the server that the DSN `server` reaches (by TCP or a Unix socket's
    `?host=`): asyncpg's own with no `driver`, SQLAlchemy's with `driver="asyncpg"`."""
    from sqlalchemy.engine import make_url

    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return make_url(server).set(drivername=scheme, database=database).render_as_string(hide_password=False)


async def admin(*statements: str, server: str = SERVER_DSN) -> None:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def recreate(*names: str, server: str = SERVER_DSN) -> None:
    pairs = ((f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)', f'CREATE DATABASE "{n}"') for n in names)
    await admin(*(statement for pair in pairs for statement in pair), server=server)


async def drop(*names: str, server: str = SERVER_DSN) -> None:
    await admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names), server=server)


@dataclass(frozen=True)
class Running:
    """A gateway and its mock_ibps as `running_fpslink` started them."""

    gateway: subprocess.Popen[bytes]
    ibps: subprocess.Popen[bytes]
    env: dict[str, str]
    """The gateway's environment: its database, mock_ibps's URL and token, the operator key."""

    @property
    def operator_key(self) -> str:
        return self.env["FPSLINK_OPERATOR_KEY"]


@contextlib.asynccontextmanager
async def running_fpslink(
    databases: tuple[str, str],
    port: int,
    workers: int,
    env: dict[str, str],
    *,
    log_prefix: str = "",
    keep: bool = False,
    server: str = SERVER_DSN,
) -> AsyncIterator[Running]:
    """mock_ibps on `port` + 1 and `fpslink serve --workers` on `port`, on fresh, migrated databases
    (gateway, IBPS) on `server` with a new operator key and IBPS token and the northbound limits out
    of reach; `env` adds to the gateway's. Both stopped after, and the databases dropped unless `keep`."""
    from fpslink import migrate
    from ibps_wire.credentials import new_secret
    from mock_ibps import migrate as ibps_migrate

    gw_db, ibps_db = databases
    gw_url, ibps_url = on_server(server, gw_db, "asyncpg"), on_server(server, ibps_db, "asyncpg")
    ibps_port = port + 1
    await recreate(gw_db, ibps_db, server=server)
    await asyncio.to_thread(migrate.upgrade, gw_url)
    await asyncio.to_thread(ibps_migrate.upgrade, ibps_url)
    token = new_secret("bench_ibps_")
    gateway_env = {
        "FPSLINK_DATABASE_URL": gw_url,
        "FPSLINK_IBPS_URL": f"http://{HOST}:{ibps_port}",
        "FPSLINK_IBPS_TOKEN": token,
        "FPSLINK_OPERATOR_KEY": new_secret("bench_operator_"),
        "FPSLINK_NORTHBOUND_DAILY_HKD": "1000000000000",
        "FPSLINK_NORTHBOUND_YEARLY_HKD": "1000000000000",
        "FPSLINK_LOG_LEVEL": "WARNING",
        **env,
    }
    ibps = gateway = None
    try:
        ibps = spawn(
            ["-m", "mock_ibps.cli", "serve", "--host", HOST, "--port", str(ibps_port), "--no-migrate"],
            {"MOCK_IBPS_DATABASE_URL": ibps_url, "MOCK_IBPS_TOKEN": token},
            f"{log_prefix}mock_ibps.log",
        )
        await wait_healthy(ibps_port, ibps)
        serve = ["serve", "--host", HOST, "--port", str(port), "--workers", str(workers), "--no-migrate"]
        gateway = spawn(["-m", "fpslink.cli", *serve], gateway_env, f"{log_prefix}gateway.log")
        await wait_healthy(port, gateway)
        yield Running(gateway, ibps, gateway_env)
    finally:
        stop(gateway)
        stop(ibps)
        if not keep:
            await drop(gw_db, ibps_db, server=server)


# ---------------------------------------------------------------- the load generator


@dataclass
class Result:
    name: str
    duration_s: float = 0.0
    requests: int = 0
    settled: int = 0
    pending: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    sent_s: list[float] = field(default_factory=list)
    """When each latency's request was sent (or due), in seconds into the measured window."""
    breaks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds each group of processes used during the measured window."""
    writes: dict[str, float] = field(default_factory=dict)
    """PostgreSQL's WAL bytes and rows written for the system's databases in the measured window."""

    def percentile(self, q: float) -> float:
        return _percentile(self.latencies_ms, q)

    def windows_p99(self, width_s: float) -> list[float]:
        """p99 latency of the requests sent in each `width_s` of the measured window: a tail that
        comes from one burst (a checkpoint, a vacuum, another process) shows in one window only."""
        windows: dict[int, list[float]] = {}
        for sent, latency in zip(self.sent_s, self.latencies_ms, strict=True):
            windows.setdefault(int(sent // width_s), []).append(latency)
        return [_percentile(windows[i], 0.99) for i in sorted(windows)]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def per_s(self, count: int) -> float:
        return count / self.duration_s if self.duration_s else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


Request = tuple[str, bytes, dict[str, str]]
"""(path, JSON body, headers) of one request."""

CpuByProcess = dict[int, float]
"""CPU seconds each process has used so far, by pid."""
CpuProbe = Callable[[], Awaitable[tuple[dict[str, CpuByProcess], dict[str, float]]]]
"""CPU seconds by process of each group of processes, and `postgres_writes`."""

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pids: Sequence[int]) -> float:
    """User plus system CPU seconds of these processes (all their threads); gone ones count nothing."""
    return sum(process_cpu_by_pid(pids).values())


def process_cpu_by_pid(pids: Sequence[int]) -> CpuByProcess:
    """Each process's user plus system CPU seconds so far (all its threads); gone ones are left out."""
    used: CpuByProcess = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return used


def cpu_used(before: CpuByProcess, after: CpuByProcess) -> float:
    """CPU seconds a group used between two probes, process by process: one that started in between
    counts from its start; one that ended in between counts nothing. Totals of the group go negative
    when a process that has worked long ends (a backend that served a soak's hour did)."""
    return sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items())


async def postgres_backends(
    conn: asyncpg.Connection, databases: Sequence[str], *, clients_only: bool = False
) -> list[int]:
    """The server processes working for `databases`; with `clients_only`, the servers' connections
    alone (not autovacuum's workers, which come and go, nor `conn`)."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])"
        " AND (NOT $2::boolean OR (backend_type = 'client backend' AND pid <> pg_backend_pid()))",
        list(databases),
        clients_only,
    )
    return [row["pid"] for row in rows]


async def postgres_writes(conn: asyncpg.Connection, databases: Sequence[str]) -> dict[str, float]:
    """The server's WAL position and the rows `databases` have written so far: unlike CPU time, they
    do not depend on the machine's load, so they show what a change saves on a noisy machine.
    Row counts reach the statistics about once a second, so they are approximate."""
    row = await conn.fetchrow(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS wal,"
        " sum(tup_inserted) AS inserted, sum(tup_updated) AS updated, sum(tup_deleted) AS deleted"
        " FROM pg_stat_database WHERE datname = ANY($1::text[])",
        list(databases),
    )
    assert row is not None
    return {name: float(row[name] or 0) for name in ("wal", "inserted", "updated", "deleted")}


def cpu_probe(
    groups: dict[str, Callable[[], list[int]]], databases: Sequence[str], *, server: str = SERVER_DSN
) -> CpuProbe:
    """A probe of the servers' processes, the PostgreSQL backends serving `databases` (on this host),
    and the load generator itself: CPU per payment is steadier than throughput on a shared machine."""

    async def probe() -> tuple[dict[str, CpuByProcess], dict[str, float]]:
        import asyncpg

        conn = await asyncpg.connect(server)
        try:
            used = {name: process_cpu_by_pid(pids()) for name, pids in groups.items()}
            used["postgres"] = process_cpu_by_pid(await postgres_backends(conn, databases))
            used["load generator"] = {os.getpid(): time.process_time()}
            return used, await postgres_writes(conn, databases)
        finally:
            await conn.close()

    return probe


def classify(status: int, body: bytes) -> str:
    """SETTLED, PENDING, or the kind of error an answer is."""
    if status not in (201, 202):
        return f"HTTP {status}"
    try:
        answer = json.loads(body)
    except ValueError:
        return "unreadable answer"
    outcome = str(answer.get("status"))
    if outcome == "REJECTED":
        return f"REJECTED {answer.get('reason_code')}"
    return outcome if outcome in ("SETTLED", "PENDING") else f"status {outcome}"


async def drive(
    name: str,
    port: int,
    make: Callable[[random.Random], Request],
    args: argparse.Namespace,
    *,
    on_measuring: Callable[[], Awaitable[None]] | None = None,
    cpu: CpuProbe | None = None,
) -> Result:
    """Closed loop (default): `args.concurrency` clients, each sending its next request when its answer
    comes. Open loop (`args.rate`): requests scheduled at that rate whatever the answers, over up to
    `args.concurrency` connections; a request's latency counts from its scheduled time, so time spent
    waiting for a connection is not hidden. For warm-up + duration seconds; counts requests scheduled
    inside the measured window."""
    result = Result(name=name, duration_s=args.duration)
    pool = Pool(HOST, port, size=args.concurrency, timeout_s=30.0)
    started = time.monotonic()
    measure_from = started + args.warmup
    end = measure_from + args.duration

    async def one(rng: random.Random, sent: float) -> None:
        path, body, headers = make(rng)
        try:
            answer = await pool.request("POST", path, body, headers)
            outcome = classify(answer.status, answer.body)
        except (HttpError, TimeoutError) as exc:
            outcome = f"transport {type(exc).__name__}"
        if sent < measure_from:
            return
        result.requests += 1
        result.latencies_ms.append((time.monotonic() - sent) * 1000)
        result.sent_s.append(sent - measure_from)
        if outcome == "SETTLED":
            result.settled += 1
        elif outcome == "PENDING":
            result.pending += 1
        else:
            result.errors[outcome] += 1

    async def client(index: int) -> None:
        rng = random.Random(args.seed * 7919 + index)
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            sent = time.monotonic()
            if sent >= end:
                return
            await one(rng, sent)

    async def scheduler() -> None:
        rng = random.Random(args.seed * 7919)
        interval = 1.0 / args.rate
        running: set[asyncio.Task[None]] = set()
        for i in range(MAX_REQUESTS_PER_CLIENT):
            due = started + i * interval
            if due >= end:
                break
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            if len(running) >= BACKLOG_PER_CONNECTION * args.concurrency:
                if due >= measure_from:  # the system fell this far behind: shed, and say so
                    result.errors["not sent: backlog full"] += 1
                continue
            task = asyncio.create_task(one(rng, due))
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.wait(running)

    if args.rate is None:
        tasks = [asyncio.create_task(client(i)) for i in range(args.concurrency)]
    else:
        tasks = [asyncio.create_task(scheduler())]
    try:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before, writes_before = await cpu() if cpu is not None else ({}, {})
        if on_measuring is not None:
            await on_measuring()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.warmup + args.duration + 60)
        if cpu is not None:
            cpu_after, writes_after = await cpu()
            result.cpu_s = {name: cpu_used(cpu_before.get(name, {}), cpu_after[name]) for name in cpu_after}
            result.writes = {name: writes_after[name] - writes_before[name] for name in writes_after}
    finally:
        for task in tasks:
            task.cancel()
        await pool.aclose()
    return result


# ---------------------------------------------------------------- fpslink


@dataclass
class World:
    keys: dict[str, str]
    hk: list[tuple[str, str, str]]
    """(bank, account id, currency) of FPS accounts."""
    cn: list[tuple[str, str, str]]


async def seed_fpslink(port: int, operator_key: str, accounts: int) -> World:
    """Banks and accounts through the public API, a few at a time."""
    import httpx

    operator = {"Authorization": f"Bearer {operator_key}"}
    keys: dict[str, str] = {}
    world = World(keys=keys, hk=[], cn=[])
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30, limits=limits) as http:
        for code, system in BANKS:
            body = {"participant_id": code, "name": code, "system": system}
            created = await http.post("/v1/participants", json=body, headers=operator)
            created.raise_for_status()
            keys[code] = created.json()["api_key"]
        gate = asyncio.Semaphore(16)

        async def open_account(code: str, system: str) -> None:
            currency = "HKD" if system == "FPS" else "CNY"
            body = {
                "participant_id": code,
                "holder_name": "CHAN Tai Man" if system == "FPS" else "张小明",
                "currency": currency,
                "opening_balance": "100000000.00",
            }
            async with gate:
                opened = await http.post("/v1/accounts", json=body, headers=operator)
            opened.raise_for_status()
            (world.hk if system == "FPS" else world.cn).append((code, opened.json()["account_id"], currency))

        per_bank = max(1, accounts // 2)
        await asyncio.gather(*(open_account(code, system) for code, system in BANKS for _ in range(per_bank)))
    world.hk.sort()
    world.cn.sort()
    return world


def fpslink_request(world: World) -> Callable[[random.Random], Request]:
    def make(rng: random.Random) -> Request:
        northbound = rng.random() < 0.5
        bank, debtor, currency = rng.choice(world.hk if northbound else world.cn)
        _, creditor, _ = rng.choice(world.cn if northbound else world.hk)
        body = {
            "debtor_account_id": debtor,
            "creditor": {"account_id": creditor},
            "amount": f"{rng.randint(100, 9_999) / 100:.2f}",
            "currency": currency,
            "purpose": "OTHER",
        }
        headers = {"Authorization": f"Bearer {world.keys[bank]}", "Idempotency-Key": str(uuid.uuid4())}
        return "/v1/payments", json.dumps(body).encode(), headers

    return make


async def wait_no_pending(port: int, operator_key: str, timeout_s: float) -> int:
    """Let recovery finish what the load left pending; returns how many are still pending."""
    pool = Pool(HOST, port, size=1, timeout_s=10)
    headers = {"Authorization": f"Bearer {operator_key}"}
    deadline = time.monotonic() + timeout_s
    left = -1
    try:
        while time.monotonic() < deadline:
            answer = await pool.request("GET", "/v1/payments?status=PENDING&limit=200", headers=headers)
            left = len(json.loads(answer.body)["items"]) if answer.status == 200 else -1
            if left == 0:
                return 0
            await asyncio.sleep(1.0)
    finally:
        await pool.aclose()
    return left


async def batch_steps(port: int) -> list[str]:
    """One worker's batches since it started, from its /metrics: their size and each step's mean.

    Says where a payment's latency goes: waiting for a batch, then the batch's four steps.
    """
    pool = Pool(HOST, port, size=1, timeout_s=10)
    try:
        answer = await pool.request("GET", "/metrics")
    except HttpError as exc:
        return [f"batch steps: /metrics unreadable ({exc})"]
    finally:
        await pool.aclose()
    return [batch_summary(answer.body.decode())]


def batch_summary(metrics_text: str) -> str:
    """The batch figures of /metrics (every worker's, summed), in a line."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name in ("fpslink_batch_size_sum", "fpslink_batch_size_count"):
                sums[sample.name] = sample.value
            elif sample.name.startswith("fpslink_batch_step_seconds_") and "step" in sample.labels:
                sums[sample.labels["step"] + sample.name.removeprefix("fpslink_batch_step_seconds")] = (
                    sample.value
                )
    batches = sums.get("fpslink_batch_size_count", 0.0)
    if not batches:
        return "batch steps: no batch in /metrics"
    steps = [
        f"{step} {1000 * sums.get(step + '_sum', 0.0) / max(sums.get(step + '_count', 0.0), 1):.0f}"
        for step in ("accept", "prepare", "decide", "finish")
    ]
    return (
        f"the workers' {batches:.0f} batches: {sums['fpslink_batch_size_sum'] / batches:.0f} payments "
        f"each on average; mean ms per step: {', '.join(steps)}"
    )


async def settle_and_audit(running: Running, port: int, days: Sequence[date]) -> tuple[list[str], list[str]]:
    """After the load: recovery given time to finish what is pending, the gateway stopped, then
    `audit_fpslink` while mock_ibps still runs; (breaks, notes)."""
    from fpslink.config import Settings

    notes = []
    still = await wait_no_pending(port, running.operator_key, timeout_s=90)
    if still:
        notes.append(f"{still} payments still PENDING 90 s after the load")
    stop(running.gateway)
    settings = Settings(
        database_url=running.env["FPSLINK_DATABASE_URL"],
        ibps_url=running.env["FPSLINK_IBPS_URL"],
        ibps_token=running.env["FPSLINK_IBPS_TOKEN"],
        operator_key=running.operator_key,
    )
    breaks, audit_notes = await audit_fpslink(settings, days)
    return breaks, notes + audit_notes


async def audit_fpslink(settings: Settings, days: Sequence[date]) -> tuple[list[str], list[str]]:
    """(invariant violations and reconciliation breaks, notes): the same checks as `fpslink check`
    and `fpslink recon`."""
    from fpslink.invariants import check_invariants
    from fpslink_tools.stack import offline_gateway

    breaks: list[str] = []
    notes: list[str] = []
    async with offline_gateway(settings) as gw:
        report = await check_invariants(gw)
        breaks += [f"invariant: {line}" for line in report.violations]
        notes.append(f"payments by state: {dict(report.payments_by_state)}")
        for day in days:
            mark = time.perf_counter()
            run_id = await gw.reconciliation.reconcile(business_date=day)
            run = await gw.reconciliation.get_run(run_id)
            found = {k: v for k, v in run.summary.get("breaks_by_type", {}).items() if v}
            notes.append(
                f"reconciliation of {day}: {run.break_count} breaks {found or ''}"
                f" in {time.perf_counter() - mark:.1f} s"
            )
            breaks += [f"reconciliation {day}: {kind} x{count}" for kind, count in found.items()]
            if run.break_count and not found:
                breaks.append(f"reconciliation {day}: {run.break_count} breaks")
    return breaks, notes


async def run_fpslink(args: argparse.Namespace) -> Result:
    from fpslink.reconciliation.domain import business_date_of

    port = args.port
    profiler = None
    async with running_fpslink((GW_DB, IBPS_DB), port, args.workers, LOAD_ENV, keep=args.keep) as running:
        gateway, ibps, operator_key = running.gateway, running.ibps, running.operator_key
        try:
            mark = time.perf_counter()
            world = await seed_fpslink(port, operator_key, args.accounts)
            seeded_s = time.perf_counter() - mark
            print(f"fpslink: {len(world.hk)} FPS and {len(world.cn)} IBPS accounts in {seeded_s:.1f} s")

            async def start_profile() -> None:
                nonlocal profiler
                if args.profile is not None:
                    profiler = start_profiler(worker_pids(gateway)[0], args.profile, args.duration)

            first_day = business_date_of(datetime.now(UTC))
            probe = cpu_probe(
                {
                    "gateway": lambda: sorted({gateway.pid, *worker_pids(gateway)}),
                    "mock_ibps": lambda: [ibps.pid],
                },
                [GW_DB, IBPS_DB],
            )
            result = await drive(
                "fpslink", port, fpslink_request(world), args, on_measuring=start_profile, cpu=probe
            )
            result.notes += await batch_steps(port)
            if args.locust:
                result.notes += await run_locust(port, operator_key, args)
            days = sorted({first_day, business_date_of(datetime.now(UTC))})
            breaks, notes = await settle_and_audit(running, port, days)
            result.breaks += breaks
            result.notes += notes
            if profiler is not None:
                result.notes += finish_profiler(profiler, args.profile)
            return result
        finally:
            if profiler is not None and profiler.poll() is None:
                profiler.kill()


def venv_tool(name: str) -> str | None:
    """A command installed beside this Python (the virtualenv's bin) or on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def read_csv(path: Path) -> list[dict[str, str]] | None:
    import csv

    try:
        return list(csv.DictReader(path.read_text().splitlines()))
    except OSError:
        return None


async def run_locust(port: int, operator_key: str, args: argparse.Namespace) -> list[str]:
    """The realistic mix of `loadtests/` (Locust's FastHttpUser, its own wait times) with as many
    users as `--concurrency`, for warm-up + duration; returns Locust's figures per request name."""
    locust = venv_tool("locust")
    if locust is None:
        return ["locust is not installed (pip install -e '.[load]'); no realistic mix"]
    prefix = LOG_DIR / "locust"
    seconds = int(args.warmup + args.duration)
    command = [locust, "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless", "--only-summary"]
    command += ["-u", str(args.concurrency), "-r", str(max(1, args.concurrency // 2)), "-t", f"{seconds}s"]
    command += ["--host", f"http://{HOST}:{port}", "--csv", str(prefix), "--stop-timeout", "10"]
    env = {**os.environ, "FPSLINK_OPERATOR_KEY": operator_key, "LOADTEST_RUN_ID": f"TP{secrets.token_hex(3)}"}
    with (LOG_DIR / "locust.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log, cwd=ROOT)
        try:
            await asyncio.wait_for(process.wait(), timeout=seconds + 180)
        except TimeoutError:
            process.kill()
            await process.wait()
            return ["locust did not finish in time"]
    rows = read_csv(Path(f"{prefix}_stats.csv"))
    if rows is None:
        return [f"locust wrote no statistics; see {LOG_DIR / 'locust.log'}"]
    notes = [f"locust mix, {args.concurrency} users, {seconds} s (ramp-up included):"]
    for row in rows:
        notes.append(
            f"  {row['Type'] or '':<5}{row['Name']:<36}{float(row['Requests/s']):>8.1f} req/s"
            f"{int(row['Failure Count']):>6} failed  p50 {row['50%']} p95 {row['95%']} p99 {row['99%']} ms"
        )
    return notes


# ---------------------------------------------------------------- the skeleton


async def run_skeleton(args: argparse.Namespace) -> Result:
    import asyncpg

    front_port, back_port = args.port + 2, args.port + 3
    await recreate(SKEL_FRONT_DB, SKEL_BACK_DB)
    front_dsn, back_dsn = f"postgresql://{SERVER}/{SKEL_FRONT_DB}", f"postgresql://{SERVER}/{SKEL_BACK_DB}"
    front_db, back_db = await asyncpg.connect(front_dsn), await asyncpg.connect(back_dsn)
    accounts = skeleton_schema.account_ids(args.accounts)
    front = back = None
    try:
        await skeleton_schema.create(front_db, back_db, accounts=args.accounts)
        uvicorn = ["-m", "uvicorn", "--host", HOST, "--loop", "uvloop", "--http", "httptools"]
        uvicorn += ["--log-level", "warning", "--no-access-log"]
        back = spawn(
            [*uvicorn, "--port", str(back_port), "--workers", "1", "benchmarks.skeleton.back:app"],
            {"SKEL_BACK_DATABASE": back_dsn},
            "skeleton_back.log",
        )
        await wait_healthy(back_port, back)
        front = spawn(
            [
                *uvicorn,
                "--port",
                str(front_port),
                "--workers",
                str(args.workers),
                "benchmarks.skeleton.front:app",
            ],
            {"SKEL_FRONT_DATABASE": front_dsn, "SKEL_BACK_URL": f"http://{HOST}:{back_port}"},
            "skeleton_front.log",
        )
        await wait_healthy(front_port, front)

        def make(rng: random.Random) -> Request:
            debtor, creditor = rng.sample(accounts, 2)
            body = {
                "payment_id": str(uuid.uuid4()),
                "debtor": debtor,
                "creditor": creditor,
                "amount_minor": rng.randint(100, 9_999),
            }
            return "/pay", json.dumps(body).encode(), {}

        probe = cpu_probe(
            {"front": lambda: sorted({front.pid, *worker_pids(front)}), "back": lambda: [back.pid]},
            [SKEL_FRONT_DB, SKEL_BACK_DB],
        )
        result = await drive("skeleton", front_port, make, args, cpu=probe)
        stop(front)
        stop(back)
        result.breaks += await skeleton_schema.audit(front_db, back_db, accounts=args.accounts)
        return result
    finally:
        stop(front)
        stop(back)
        await front_db.close()
        await back_db.close()
        if not args.keep:
            await drop(SKEL_FRONT_DB, SKEL_BACK_DB)


# ---------------------------------------------------------------- profile and report


def start_profiler(pid: int, output: Path, duration_s: float) -> subprocess.Popen[bytes] | None:
    py_spy = venv_tool("py-spy")
    if py_spy is None:
        print("py-spy is not installed (.venv/bin/pip install py-spy); no profile")
        return None
    seconds = max(1, int(min(duration_s, 20)))
    fmt = "raw" if output.suffix == ".txt" else "flamegraph"
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200"]
    command += ["--nonblocking", "--format", fmt, "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(profiler: subprocess.Popen[bytes], output: Path) -> list[str]:
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        return ["py-spy did not finish"]
    notes = [f"profile of one gateway worker: {output}"]
    if output.suffix == ".txt" and output.exists():
        notes += top_functions(output.read_text().splitlines())
    return notes


def top_functions(collapsed: list[str], count: int = 15) -> list[str]:
    """From py-spy's collapsed stacks: the share of samples in which each function is on the stack
    (inclusive) and at the top of it (self)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed:
        stack, _, n_text = line.rpartition(" ")
        if not stack or not n_text.isdigit():
            continue
        n = int(n_text)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return ["profile: no samples"]
    lines = [f"profile: {total} samples; top functions by self time (self %, inclusive %):"]
    for frame, n in own.most_common(count):
        lines.append(f"  {100 * n / total:5.1f} %  {100 * inclusive[frame] / total:5.1f} %  {frame}")
    return lines


def round_ratios(results: Sequence[Result]) -> list[float]:
    """fpslink's settled payments over the skeleton's, for each round that measured both."""
    rounds: dict[str, dict[str, Result]] = {}
    for r in results:
        system, _, number = r.name.partition(" ")
        rounds.setdefault(number, {})[system] = r
    return [
        pair["fpslink"].settled / pair["skeleton"].settled
        for pair in rounds.values()
        if "fpslink" in pair and "skeleton" in pair and pair["skeleton"].settled
    ]


def report(results: list[Result], args: argparse.Namespace, load: tuple[str, str]) -> str:
    lines = [
        "load generator: asyncio + rawhttp keep-alive client in one process, "
        + (
            f"{args.concurrency} connections, closed loop;"
            if args.rate is None
            else f"open loop at {args.rate:g} payments/s over up to {args.concurrency} connections;"
        )
        + f" {args.warmup:g} s warm-up, {args.duration:g} s measured; {args.workers} worker(s)",
        f"load average before: {load[0]}; after: {load[1]}",
        "",
        f"{'system':<12}{'req/s':>9}{'settled/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'pending':>9}{'breaks':>8}",
    ]
    for r in results:
        lines.append(
            f"{r.name:<12}{r.per_s(r.requests):>9.0f}{r.per_s(r.settled):>11.0f}{r.percentile(0.50):>9.1f}"
            f"{r.percentile(0.95):>9.1f}{r.percentile(0.99):>9.1f}{r.error_count:>8}{r.pending:>9}{len(r.breaks):>8}"
        )
    ratios = round_ratios(results)
    if len(ratios) == 1:
        lines.append(f"\nfpslink / skeleton (settled payments/s): {ratios[0]:.2f}   (target >= 1.0)")
    elif ratios:
        each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        lines.append(
            f"\nfpslink / skeleton (settled payments/s), median of {len(ratios)} rounds: "
            f"{statistics.median(ratios):.2f}   (target >= 1.0); rounds: {each}"
        )
    for r in results:
        if r.cpu_s and r.settled:
            per = ", ".join(f"{name} {1000 * s / r.settled:.2f}" for name, s in r.cpu_s.items())
            total = 1000 * sum(r.cpu_s.values()) / r.settled
            lines.append(f"{r.name}: CPU ms per settled payment: {per}; all {total:.2f}")
        if r.writes and r.settled:
            w = {name: value / r.settled for name, value in r.writes.items()}
            lines.append(
                f"{r.name}: PostgreSQL per settled payment: WAL {w['wal'] / 1024:.2f} KiB, rows inserted"
                f" {w['inserted']:.1f}, updated {w['updated']:.1f}, deleted {w['deleted']:.1f} (approximate)"
            )
    for r in results:
        if len(r.latencies_ms) > 1000 and args.duration >= 2 * WINDOW_S:
            each = " ".join(f"{p99:.0f}" for p99 in r.windows_p99(WINDOW_S))
            lines.append(f"{r.name}: p99 ms of each {WINDOW_S:g} s: {each}")
    for r in results:
        for kind, n in r.errors.most_common(10):
            lines.append(f"{r.name} error: {kind} x{n}")
        lines += [f"{r.name} break: {b}" for b in r.breaks[:20]]
        lines += [f"{r.name}: {note}" for note in r.notes]
    return "\n".join(lines)


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def take_lock(name: str = "run.lock") -> IO[str] | None:
    """One run at a time: runs share database names and ports. The lock lasts as long as the process."""
    import fcntl

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    lock = (LOG_DIR / name).open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


async def main(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    if task is not None:
        # SIGTERM cancels the run, so that its servers are stopped and its databases dropped
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    lock = take_lock()
    if lock is None:
        print(f"another throughput run holds {LOG_DIR / 'run.lock'} (same databases and ports); not starting")
        return 2
    before = loadavg()
    results: list[Result] = []
    for number in range(1, args.rounds + 1):
        measured = []
        if args.only in ("both", "fpslink"):
            measured.append(await run_fpslink(args))
        if args.only in ("both", "skeleton"):
            measured.append(await run_skeleton(args))
        if args.rounds > 1:
            for result in measured:
                result.name = f"{result.name} #{number}"
        results += measured
    print(report(results, args, (before, loadavg())))
    return 0 if all(not r.breaks and not r.error_count for r in results) else 1


if __name__ == "__main__":
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raise SystemExit(runner.run(main(parse_args())))

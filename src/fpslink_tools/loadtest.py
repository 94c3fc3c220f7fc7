"""`fpslink loadtest`: the locust mix against a fresh PostgreSQL-backed stack, then an audit.

A load test is only worth its numbers if the money still adds up afterwards, so one command does the
whole round: fresh databases, mock_ibps and `fpslink serve --workers N` on 127.0.0.1, locust headless
(loadtests/locustfile.py, steady or the 24-hour DayShape) bounded in time, a wait for the payments
still in flight, then the invariant check (I1-I6) and the reconciliation of the run's business
dates. Everything lands in one directory: locust's CSV and HTML, the reconciliation reports (JSON
and HTML), the processes' logs and summary.json. Any locust failure, invariant violation,
reconciliation break or payment left pending makes the run fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib.util
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from fpslink.config import Settings
from fpslink_tools.embedded_pg import free_port
from fpslink_tools.pgadmin import ForeignDatabase
from fpslink_tools.stack import (
    Stack,
    drop_databases,
    end_process_group,
    fresh_databases,
    invariant_violations,
    offline_gateway,
)
from ibps_wire.credentials import new_secret


def install_hint() -> str:
    """How to install locust into the environment this command runs in: its own interpreter's pip,
    since the `pip` on PATH is rarely the one of the .venv that `python3 tasks.py` made."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    return f"fpslink loadtest needs locust, which is not installed: {python} -m pip install -e '.[load]'"


DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/fpslink_loadtest"
MAX_DURATION_S = 24 * 3600.0
STOP_TIMEOUT_S = 10
"""When the time is up, users get this long to finish the request in flight (locust --stop-timeout)."""
OVERRUN_MARGIN_S = 120.0
"""Locust's start-up and the world's set-up on top of the duration; past it the run is killed."""
MAX_BUSINESS_DATES = 3
MAX_LISTED_FAILURES = 20
PAYMENTS_ROUTE = "/v1/payments"
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class LoadtestError(RuntimeError):
    """The run could not be set up or carried out; the message says why in one line."""


def parse_duration(text: str) -> float:
    """Seconds from "60", "90s", "2m", "1h30m" (locust's own spelling); between 1 s and 24 h."""
    raw = text.strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        match = _DURATION.fullmatch(raw)
        if not raw or match is None:
            raise ValueError(f"a duration looks like 60s, 2m, 1h30m or 90, got {text!r}") from None
        h, m, s = (int(part or 0) for part in match.groups())
        seconds = float(h * 3600 + m * 60 + s)
    if not math.isfinite(seconds) or not 1 <= seconds <= MAX_DURATION_S:
        raise ValueError(f"a duration must be between 1 s and 24 h, got {text!r}")
    return seconds


def locust_missing() -> bool:
    return importlib.util.find_spec("locust") is None


def default_locustfile() -> Path:
    """loadtests/locustfile.py of the source tree this package runs from, else of the working directory."""
    beside_source = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
    return beside_source if beside_source.is_file() else Path("loadtests/locustfile.py").resolve()


def auto_accounts_per_bank(users: int, duration_s: float) -> int:
    """Enough accounts that few users hit a daily limit: about one per 100 user-seconds, 5 to 50.

    A user pays roughly every 4 s and an account takes about ten payments a day under the default
    northbound limit (HKD 10,000); the locustfile opens more on demand, but each opening is a request
    that is not a payment.
    """
    return max(5, min(50, math.ceil(users * duration_s / 100)))


def auto_spawn_rate(users: int) -> float:
    """All users running within about five seconds."""
    return float(max(1, math.ceil(users / 5)))


@dataclass(frozen=True)
class LoadtestConfig:
    workers: int = 2
    duration_s: float = 60.0
    users: int = 20
    spawn_rate: float | None = None
    shape: bool = False
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 18720
    ibps_port: int = 18721
    keep_databases: bool = False
    output: Path = Path("loadtest")
    accounts_per_bank: int | None = None
    locustfile: Path = field(default_factory=default_locustfile)
    locust_processes: int = 1
    """Locust processes generating load: more than one runs locust distributed on this machine, a
    master and that many workers (one Python process saturates at a few hundred requests a second)."""

    @property
    def workdir(self) -> Path:
        """Where the stack writes processes.log: the output directory."""
        return self.output

    def check(self) -> None:
        """Refuse what cannot work before anything is created."""
        if make_url(self.database_url).get_backend_name() != "postgresql":
            raise LoadtestError(f"--database-url must name a PostgreSQL database, got {self.database_url}")
        if self.host != "127.0.0.1":
            raise LoadtestError("the load test's servers bind 127.0.0.1 only")
        if self.shape and self.duration_s < 24:
            raise LoadtestError("with --shape the duration is one simulated day: at least 24s")
        if not self.locustfile.is_file():
            raise LoadtestError(f"no locustfile at {self.locustfile}")
        if self.locust_processes > 1 and os.name == "nt":
            raise LoadtestError("--locust-processes above 1 needs fork: Linux or macOS")


@dataclass
class EndpointStats:
    """One row of locust's stats CSV; latencies in milliseconds, None when nothing was measured."""

    name: str
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests_per_s: float


@dataclass
class ReconResult:
    business_date: str
    reconciliation_id: str
    break_count: int
    breaks_by_type: dict[str, int]
    json_report: str
    html_report: str


@dataclass
class LoadtestReport:
    workers: int
    users: int
    shape: bool
    duration_s: float
    output: str
    started_at: str = ""
    finished_at: str = ""
    locust_exit_code: int | None = None
    locust_killed: bool = False
    requests: int = 0
    failures: int = 0
    exceptions: int = 0
    payments_endpoint: EndpointStats | None = None
    p99_by_minute: list[float | None] = field(default_factory=list)
    """POST /v1/payments: each minute's worst p99 of locust's 10-second windows (ms)."""
    gateway_p99_by_minute: list[float | None] = field(default_factory=list)
    """The same minutes as the gateway saw them (`fpslink_payment_seconds`, all workers): the bucket
    bound under which 99% of its answers of the minute fell (ms). A minute whose locust p99 is far
    above it lost the time outside the gateway: in locust, or on a host short of CPU."""
    failure_kinds: list[dict[str, str]] = field(default_factory=list)
    payments_by_state: dict[str, int] = field(default_factory=dict)
    settled: int = 0
    settled_per_s: float = 0.0
    """Settled payments per second of `payment_window_s`."""
    payment_window_s: float = 0.0
    """From the first payment to the last: the run's duration less Locust's start-up and set-up
    (with the clock moved, whose jumps the payments' times took, from locust's stats history)."""
    clock_moved_s: float = 0.0
    """How far the simulated day moved the sandbox's clock ahead of the wall clock (`--shape`)."""
    still_pending: int = 0
    invariant_violations: list[str] = field(default_factory=list)
    reconciliations: list[ReconResult] = field(default_factory=list)
    total_s: float = 0.0

    @property
    def breaks(self) -> int:
        return sum(r.break_count for r in self.reconciliations)

    @property
    def problems(self) -> list[str]:
        """Every reason this run fails; empty when it passes."""
        found = []
        if self.locust_killed:
            found.append("locust overran its time and was killed")
        elif self.locust_exit_code != 0:
            found.append(f"locust exited with {self.locust_exit_code} (see locust.log)")
        if self.failures:
            found.append(f"{self.failures} locust failures")
        if self.exceptions:
            found.append(f"{self.exceptions} exceptions in the locustfile")
        if self.payments_endpoint is None:
            found.append(f"no POST {PAYMENTS_ROUTE} in locust's statistics")
        if self.settled == 0:
            found.append("no payment settled")
        if self.still_pending:
            found.append(f"{self.still_pending} payments still not final")
        if self.invariant_violations:
            found.append(f"{len(self.invariant_violations)} invariant violations")
        if self.breaks:
            found.append(f"{self.breaks} reconciliation breaks")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "breaks": self.breaks, "problems": self.problems, "ok": self.ok}


# locust --------------------------------------------------------------------------------------------


def locust_command(cfg: LoadtestConfig, base_url: str) -> list[str]:
    spawn_rate = cfg.spawn_rate or auto_spawn_rate(cfg.users)
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(cfg.locustfile),
        "--headless",
        "-u",
        str(cfg.users),
        "-r",
        f"{spawn_rate:g}",
        "-t",
        f"{math.ceil(cfg.duration_s)}s",
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--host",
        base_url,
        "--csv",
        str(cfg.output / "locust"),
        "--html",
        str(cfg.output / "locust.html"),
        "--csv-full-history",
        "--only-summary",
        *distributed_options(cfg),
    ]


def distributed_options(cfg: LoadtestConfig) -> list[str]:
    """Locust distributed on this machine: a master and `locust_processes` forked workers, which
    talk over a free port of 127.0.0.1 (locust's master listens on every interface unless told
    otherwise)."""
    if cfg.locust_processes <= 1:
        return []
    port = str(free_port())  # the host is 127.0.0.1 (`check`)
    return [
        "--processes",
        str(cfg.locust_processes),
        "--master-bind-host",
        cfg.host,
        "--master-bind-port",
        port,
        "--master-host",
        cfg.host,
        "--master-port",
        port,
    ]


def locust_env(cfg: LoadtestConfig, operator_key: str) -> dict[str, str]:
    """The locustfile's settings for this run; LOADTEST_ACCOUNTS_PER_BANK from the caller wins."""
    accounts = (
        cfg.accounts_per_bank
        or os.environ.get("LOADTEST_ACCOUNTS_PER_BANK", "").strip()
        or auto_accounts_per_bank(cfg.users, cfg.duration_s)
    )
    env = {
        "FPSLINK_OPERATOR_KEY": operator_key,
        "LOADTEST_ACCOUNTS_PER_BANK": str(accounts),
        "LOADTEST_SHAPE": "day" if cfg.shape else "",
        "LOADTEST_DAY_SECONDS": f"{cfg.duration_s:g}" if cfg.shape else "",
        "LOADTEST_PEAK_USERS": str(cfg.users) if cfg.shape else "",
        "LOADTEST_DAYS": "1",
    }
    return {**os.environ, **env}


def run_locust(
    cfg: LoadtestConfig, base_url: str, operator_key: str, started: list[subprocess.Popen[bytes]]
) -> tuple[int | None, bool]:
    """Run locust to its end, or kill its process group once it overruns; (exit code, killed).

    The process goes into `started` at once, so that the caller can end it when the run is
    interrupted while this thread still waits.
    """
    budget_s = cfg.duration_s + STOP_TIMEOUT_S + OVERRUN_MARGIN_S
    with (cfg.output / "locust.log").open("ab") as log:
        process = subprocess.Popen(
            locust_command(cfg, base_url),
            env=locust_env(cfg, operator_key),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        try:
            return process.wait(timeout=budget_s), False
        except subprocess.TimeoutExpired:
            end_process_group(process)
            return process.returncode, True


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def read_locust_stats(prefix: Path) -> tuple[dict[str, EndpointStats], list[dict[str, str]], int]:
    """(rows of <prefix>_stats.csv by "TYPE name", the failures listed, exceptions counted)."""
    rows: dict[str, EndpointStats] = {}
    stats_file = Path(f"{prefix}_stats.csv")
    if stats_file.is_file():
        with stats_file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                key = f"{row.get('Type') or ''} {row['Name']}".strip()
                rows[key] = EndpointStats(
                    name=key,
                    requests=int(_number(row.get("Request Count")) or 0),
                    failures=int(_number(row.get("Failure Count")) or 0),
                    p50_ms=_number(row.get("50%")),
                    p95_ms=_number(row.get("95%")),
                    p99_ms=_number(row.get("99%")),
                    requests_per_s=_number(row.get("Requests/s")) or 0.0,
                )
    failures: list[dict[str, str]] = []
    failures_file = Path(f"{prefix}_failures.csv")
    if failures_file.is_file():
        with failures_file.open(newline="", encoding="utf-8") as handle:
            failures = sorted(csv.DictReader(handle), key=lambda r: -int(_number(r.get("Occurrences")) or 0))[
                :MAX_LISTED_FAILURES
            ]
    exceptions = 0
    exceptions_file = Path(f"{prefix}_exceptions.csv")
    if exceptions_file.is_file():
        with exceptions_file.open(newline="", encoding="utf-8") as handle:
            exceptions = sum(int(_number(r.get("Count")) or 0) for r in csv.DictReader(handle))
    return rows, failures, exceptions


def _history_rows(history: Path, name: str) -> Iterator[dict[str, str]]:
    """The rows of `name` ("POST /v1/payments") in locust's full stats history, a row a second;
    none when there is no history."""
    if not history.is_file():
        return
    with history.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if f"{row.get('Type') or ''} {row.get('Name')}".strip() == name:
                yield row


def p99_by_minute(history: Path, name: str) -> list[float | None]:
    """From locust's full stats history (percentiles over each row's last 10 seconds): for each
    minute since the first row, the highest p99 of `name` (None: none)."""
    worst: dict[int, float | None] = {}
    first: int | None = None
    for row in _history_rows(history, name):
        stamp = int(_number(row.get("Timestamp")) or 0)
        first = stamp if first is None else first
        minute = (stamp - first) // 60
        p99 = _number(row.get("99%"))
        seen = worst.get(minute)
        worst[minute] = p99 if seen is None or (p99 is not None and p99 > seen) else seen
    return [worst.get(m) for m in range(max(worst) + 1)] if worst else []


def sending_window_s(history: Path, name: str) -> float:
    """From locust's stats history: the seconds from the first row in which `name` had been sent to
    the last in which its count grew, so Locust's start-up and set-up are left out as
    `payment_window_s` leaves them out from the payments' own times (0: never sent)."""
    first: float | None = None
    last: float | None = None
    sent = 0.0
    for row in _history_rows(history, name):
        count = _number(row.get("Total Request Count")) or 0.0
        stamp = _number(row.get("Timestamp"))
        if stamp is None or count <= sent:
            continue
        first = stamp if first is None else first
        last, sent = stamp, count
    return 0.0 if first is None or last is None else last - first


LatencyScrape = tuple[dict[float, float], float]
"""`fpslink_payment_seconds` in one /metrics answer: cumulative count by bucket bound (s), count."""
SCRAPE_EVERY_S = 60.0
LATENCY_METRIC = "fpslink_payment_seconds"


def latency_scrape(text: str) -> LatencyScrape | None:
    """The gateway's answer-time histogram from a /metrics answer; None when it has none."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        if family.name != LATENCY_METRIC:
            continue
        buckets: dict[float, float] = {}
        count = 0.0
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
        return buckets, count
    return None


def p99_bound_ms(before: LatencyScrape, after: LatencyScrape) -> float | None:
    """The smallest bucket bound (ms) under which 99% of the answers between two scrapes fell;
    None when there were none. Past the largest finite bound, that bound: "at least" (JSON has no
    infinity)."""
    (was, was_count), (now, count) = before, after
    answered = count - was_count
    finite = [bound for bound in sorted(now) if math.isfinite(bound)]
    if answered <= 0 or not finite:
        return None
    for bound in finite:
        if now[bound] - was.get(bound, 0.0) >= 0.99 * answered:
            return bound * 1000
    return finite[-1] * 1000


def p99_bounds(scrapes: list[LatencyScrape | None]) -> list[float | None]:
    """Each interval's `p99_bound_ms`, None where a scrape around it failed."""
    return [None if a is None or b is None else p99_bound_ms(a, b) for a, b in itertools.pairwise(scrapes)]


async def watch_gateway(base_url: str, scrapes: list[LatencyScrape | None], done: asyncio.Event) -> None:
    """Scrape the gateway's /metrics when the run starts, every SCRAPE_EVERY_S after (on a fixed
    grid), and once `done` is set, into `scrapes` (None for a scrape that failed): the gateway's side
    of each minute's latency. Never raises: it only watches."""
    import httpx

    loop = asyncio.get_running_loop()
    began = loop.time()
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        for tick in itertools.count(1):
            try:
                resp = await client.get("/metrics")
                scrapes.append(latency_scrape(resp.text) if resp.status_code == 200 else None)
            except Exception:  # a gateway stopped or a garbled answer: a gap in the figures
                scrapes.append(None)
            if done.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), max(0.0, began + tick * SCRAPE_EVERY_S - loop.time()))


def failure_line(row: dict[str, str]) -> str:
    """One row of locust's failures CSV as a line: how often, which request, what went wrong."""
    return f"{row.get('Occurrences')}x {row.get('Method')} {row.get('Name')}: {row.get('Error')}"


# the gateway's database ------------------------------------------------------------------------------


async def payments_by_state(database_url: str, *, since: datetime | None = None) -> dict[str, int]:
    """Payments per settlement state, all of them or those created since `since`."""
    from fpslink.db import create_engine
    from fpslink.payments.models import payments

    engine = create_engine(database_url, pool_size=1)
    try:
        query = select(payments.c.state, func.count()).group_by(payments.c.state)
        if since is not None:
            query = query.where(payments.c.created_at >= since)
        async with engine.connect() as conn:
            return {str(state): int(n) for state, n in (await conn.execute(query)).all()}
    finally:
        await engine.dispose()


async def payment_window_s(database_url: str, *, since: datetime) -> float:
    """Seconds from the first payment created since `since` to the last one: the time payments
    were being sent, without Locust's start-up and the users' account set-up."""
    from fpslink.db import create_engine
    from fpslink.payments.models import payments

    engine = create_engine(database_url, pool_size=1)
    try:
        query = select(func.min(payments.c.created_at), func.max(payments.c.created_at)).where(
            payments.c.created_at >= since
        )
        async with engine.connect() as conn:
            first, last = (await conn.execute(query)).one()
    finally:
        await engine.dispose()
    return 0.0 if first is None or last is None else (last - first).total_seconds()


async def booked_dates(database_url: str, *, since: datetime) -> list[date]:
    """The business dates the payments created since `since` were booked to, oldest first: with the
    test clock moved (`--shape`) they are the simulated days', not the wall clock's."""
    from fpslink.db import create_engine
    from fpslink.payments.models import payments

    engine = create_engine(database_url, pool_size=1)
    try:
        query = (
            select(payments.c.business_date)
            .where(payments.c.created_at >= since)
            .group_by(payments.c.business_date)
            .order_by(payments.c.business_date)
            .limit(MAX_BUSINESS_DATES)
        )
        async with engine.connect() as conn:
            return [date.fromisoformat(day) for day in (await conn.scalars(query)).all()]
    finally:
        await engine.dispose()


async def clock_offset_s(database_url: str) -> float:
    """How far the test clock was moved ahead of the wall clock, in seconds (0: never)."""
    from fpslink.clock.models import sandbox_clock
    from fpslink.db import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            offset_us = await conn.scalar(select(sandbox_clock.c.offset_us).where(sandbox_clock.c.id == 1))
    finally:
        await engine.dispose()
    return (offset_us or 0) / 1_000_000


def not_final(by_state: dict[str, int]) -> int:
    return sum(n for state, n in by_state.items() if state not in ("SETTLED", "REJECTED"))


async def wait_for_final(database_url: str, settings: Settings, say: Callable[[str], None]) -> int:
    """Let recovery finish what the run left in flight; bounded by its time-out and three sweeps."""
    deadline = time.monotonic() + settings.settlement_timeout_s + 3 * settings.recovery_interval_s + 10
    told = False
    while True:
        pending = not_final(await payments_by_state(database_url))
        if pending == 0 or time.monotonic() >= deadline:
            return pending
        if not told:
            say(f"waiting for {pending} payments still in flight")
            told = True
        await asyncio.sleep(0.5)


def business_dates(start: datetime, end: datetime) -> list[date]:
    """The UTC+8 business dates a run touched, oldest first."""
    from fpslink.reconciliation.domain import business_date_of

    first, last = business_date_of(start), business_date_of(end)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return days[:MAX_BUSINESS_DATES]


async def reconcile_dates(settings: Settings, dates: list[date], output: Path) -> list[ReconResult]:
    """Reconcile each date and write its report as JSON and HTML into `output`."""
    from fpslink.reconciliation.command import write_report

    results = []
    async with offline_gateway(settings) as gw:
        for day in dates:
            run_id = await gw.reconciliation.reconcile(business_date=day)
            json_path = output / f"recon-{day.isoformat()}.json"
            html_path = output / f"recon-{day.isoformat()}.html"
            await write_report(gw.reconciliation, run_id, "json", json_path)
            await write_report(gw.reconciliation, run_id, "html", html_path)
            run = await gw.reconciliation.get_run(run_id)
            results.append(
                ReconResult(
                    business_date=day.isoformat(),
                    reconciliation_id=run_id,
                    break_count=run.break_count or 0,
                    breaks_by_type={k: int(v) for k, v in run.summary.get("breaks_by_type", {}).items() if v},
                    json_report=json_path.name,
                    html_report=html_path.name,
                )
            )
    return results


# the run ---------------------------------------------------------------------------------------------


def _no_news(line: str) -> None:
    return None


class Terminated(Exception):
    """SIGTERM stopped the run; its processes were stopped and its databases dropped first."""


async def run_until_terminated(
    cfg: LoadtestConfig, *, say: Callable[[str], None] = _no_news
) -> LoadtestReport:
    """`run`, stopped by SIGTERM as cleanly as by Ctrl-C: the run's task is cancelled, so its
    clean-up (Locust, the servers, the databases) runs before the command exits."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await run(cfg, say=say)
    except asyncio.CancelledError:
        if terminated:
            raise Terminated(
                "stopped by SIGTERM; its processes are stopped and, unless --keep-databases, "
                "its databases dropped"
            ) from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def run(cfg: LoadtestConfig, *, say: Callable[[str], None] = _no_news) -> LoadtestReport:
    """The whole round; the report says what happened and `report.ok` whether it passed."""
    cfg.check()
    began = time.monotonic()
    cfg.output.mkdir(parents=True, exist_ok=True)
    report = LoadtestReport(
        workers=cfg.workers,
        users=cfg.users,
        shape=cfg.shape,
        duration_s=cfg.duration_s,
        output=str(cfg.output),
    )
    gateway_db = cfg.database_url
    try:
        ibps_db = await fresh_databases(gateway_db)
    except ForeignDatabase as exc:
        raise LoadtestError(f"{exc} (--database-url)") from exc
    except (OSError, asyncpg.PostgresError) as exc:
        where = make_url(gateway_db).render_as_string(hide_password=True)
        raise LoadtestError(f"cannot create the databases at {where}: {exc}") from exc
    say(f"fresh databases {make_url(gateway_db).database} and {make_url(ibps_db).database}")
    operator_key = new_secret("loadtest_operator_")
    token = new_secret("loadtest_ibps_")
    ibps_url = f"http://{cfg.host}:{cfg.ibps_port}"
    env = {
        "FPSLINK_DATABASE_URL": gateway_db,
        "FPSLINK_IBPS_URL": ibps_url,
        "FPSLINK_IBPS_TOKEN": token,
        "FPSLINK_OPERATOR_KEY": operator_key,
    }
    if cfg.shape:
        # the simulated day moves the gateway's clock hour by hour (loadtests/fpsload/clock.py)
        env["FPSLINK_SANDBOX_CLOCK"] = "true"
    settings = Settings(
        database_url=gateway_db,
        ibps_url=ibps_url,
        ibps_token=token,
        operator_key=operator_key,
        sandbox_clock=cfg.shape,
    )
    stack = Stack(cfg, env, {"MOCK_IBPS_DATABASE_URL": ibps_db, "MOCK_IBPS_TOKEN": token})
    base_url = f"http://{cfg.host}:{cfg.port}"
    locust: list[subprocess.Popen[bytes]] = []
    try:
        try:
            await stack.start_ibps()
            await stack.start_gateway()
        except RuntimeError as exc:  # a port in use, a bad setting: the log says which
            raise LoadtestError(f"{exc} (see {cfg.output / 'processes.log'})") from exc
        say(f"gateway on {base_url} with {cfg.workers} workers, mock_ibps on {ibps_url}")
        started = datetime.now(UTC)
        say(
            f"locust: {cfg.users} {'peak ' if cfg.shape else ''}users for {cfg.duration_s:g} s"
            + (" (24-hour shape)" if cfg.shape else "")
        )
        scrapes: list[LatencyScrape | None] = []
        sent = asyncio.Event()
        watcher = asyncio.create_task(watch_gateway(base_url, scrapes, sent))
        try:
            report.locust_exit_code, report.locust_killed = await asyncio.to_thread(
                run_locust, cfg, base_url, operator_key, locust
            )
        finally:
            sent.set()
            await watcher
        report.gateway_p99_by_minute = p99_bounds(scrapes)
        finished = datetime.now(UTC)
        report.started_at, report.finished_at = started.isoformat(), finished.isoformat()
        report.still_pending = await wait_for_final(gateway_db, settings, say)
        stack.stop_gateway()
        report.payments_by_state = await payments_by_state(gateway_db, since=started)
        report.settled = report.payments_by_state.get("SETTLED", 0)
        report.clock_moved_s = await clock_offset_s(gateway_db)
        if not report.clock_moved_s:  # else created_at jumped with the clock: locust's history says
            report.payment_window_s = await payment_window_s(gateway_db, since=started)
        say("checking invariants I1-I6")
        report.invariant_violations = await invariant_violations(settings)
        dates = await booked_dates(gateway_db, since=started) or business_dates(started, datetime.now(UTC))
        say(f"reconciling {', '.join(d.isoformat() for d in dates)}")
        report.reconciliations = await reconcile_dates(settings, dates, cfg.output)
    finally:
        for process in locust:
            end_process_group(process)
        stack.stop()
        if not cfg.keep_databases:
            await drop_databases(gateway_db)
    rows, report.failure_kinds, report.exceptions = read_locust_stats(cfg.output / "locust")
    report.payments_endpoint = rows.get(f"POST {PAYMENTS_ROUTE}")
    history = cfg.output / "locust_stats_history.csv"
    report.p99_by_minute = p99_by_minute(history, f"POST {PAYMENTS_ROUTE}")
    if report.clock_moved_s:
        sent_s = sending_window_s(history, f"POST {PAYMENTS_ROUTE}")
        report.payment_window_s = sent_s or report.duration_s
    report.settled_per_s = report.settled / max(report.payment_window_s, 1.0)
    aggregated = rows.get("Aggregated")
    report.requests = aggregated.requests if aggregated else 0
    report.failures = aggregated.failures if aggregated else 0
    report.total_s = time.monotonic() - began
    (cfg.output / "summary.json").write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
    return report


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def summary_table(report: LoadtestReport) -> Table:
    """The run at a glance, as the command prints it."""
    how = "24-hour shape, peak" if report.shape else "steady"
    table = Table(
        title=f"fpslink loadtest: {report.workers} gateway workers, {how} {report.users} users, "
        f"{report.duration_s:g} s"
    )
    table.add_column("what")
    table.add_column("result", justify="right")
    table.add_row("settled payments", f"{report.settled:,}")
    table.add_row(
        "settled payments per second",
        f"{report.settled_per_s:,.1f} over {report.payment_window_s:,.0f} s",
    )
    if report.clock_moved_s:
        table.add_row("sandbox clock moved ahead (h)", f"{report.clock_moved_s / 3600:,.1f}")
    for state, n in sorted(report.payments_by_state.items()):
        if state != "SETTLED":
            table.add_row(f"  payments {state}", f"{n:,}")
    endpoint = report.payments_endpoint
    if endpoint is not None:
        table.add_row(f"POST {PAYMENTS_ROUTE} requests", f"{endpoint.requests:,}")
        table.add_row(f"POST {PAYMENTS_ROUTE} failures", f"{endpoint.failures:,}")
        table.add_row(
            f"POST {PAYMENTS_ROUTE} p50 / p95 / p99 (ms)",
            " / ".join(_ms(v) for v in (endpoint.p50_ms, endpoint.p95_ms, endpoint.p99_ms)),
        )
    if report.p99_by_minute:
        table.add_row(
            f"POST {PAYMENTS_ROUTE} p99 of each minute (ms)",
            " ".join(_ms(v) for v in report.p99_by_minute),
        )
    if report.gateway_p99_by_minute:
        table.add_row(
            "  the same, in the gateway (ms, bucket bound)",
            " ".join(_ms(v) for v in report.gateway_p99_by_minute),
        )
    table.add_row("requests (all)", f"{report.requests:,}")
    table.add_row("failures (all)", f"{report.failures:,}")
    table.add_row("exceptions in the locustfile", f"{report.exceptions:,}")
    code = "killed" if report.locust_killed else str(report.locust_exit_code)
    table.add_row("locust exit code", code)
    table.add_row("payments left not final", f"{report.still_pending:,}")
    table.add_row("invariant violations (I1-I6)", f"{len(report.invariant_violations):,}")
    for recon in report.reconciliations:
        listed = ", ".join(f"{k} {v}" for k, v in recon.breaks_by_type.items())
        table.add_row(
            f"reconciliation breaks {recon.business_date}",
            f"{recon.break_count:,}" + (f" ({listed})" if listed else ""),
        )
    table.add_row("total time (s)", f"{report.total_s:.1f}")
    return table

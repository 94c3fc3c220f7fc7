"""One bank offering ten times its quota: how much does another bank's read latency move?

    .venv/bin/python benchmarks/fairness.py [--rounds 4] [--duration 10] [--noise reads|payments]

On PostgreSQL at 127.0.0.1:5432 (`FPSLINK_BENCH_POSTGRES`), in fresh databases `fpslink_bench_fair_gw`
and `fpslink_bench_fair_ibps` (dropped at the end unless `--keep`): mock_ibps and `fpslink serve
--workers 2` on 127.0.0.1 with the sandbox's default quota (`FPSLINK_RATE_LIMIT_QUOTA` per
`_WINDOW_S`, read from the settings; `--max-wait` sets `FPSLINK_RATE_LIMIT_MAX_WAIT_S`), three banks
opened through the API (a quiet HK bank with one account, a noisy HK bank, a mainland bank to pay).
Then `--rounds` pairs of phases, each `--warmup` + `--duration` seconds, alone then noisy in odd
rounds and noisy then alone in even ones (so that a drift of the machine's load weighs on both):

1. **alone**: the quiet bank reads its account, `GET /v1/accounts/{id}`, `--quiet-rate` times a
   second (open loop over 4 connections; latency counts from each request's scheduled time);
2. **noisy**: the same, while the noisy bank offers `--times` (10) times its quota from another
   process, open loop over 32 connections (what it cannot send, its connections busy, it drops and
   counts as -1): reads of its own accounts (`--noise reads`) or `POST /v1/payments` to the
   mainland bank (`--noise payments`).

Last, once, **unthrottled**: the operator raises the noisy bank's quota out of reach and it offers
the same again: what the quota protects the quiet bank from. Printed for each phase: the quiet bank's
p50/p95/p99, the noisy bank's answers by status, the CPU each group of processes used a second; then
both conditions pooled over the rounds, and the change of the quiet bank's p99 (target: under 20%;
the exit status is 1 above it), with the host's load averages (a shared machine's other work moves
the figures). Every request has a time-out, every loop a bound. It takes throughput.py's lock
(`run.lock` in its log directory) and does not start while another run holds it (exit status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.skeleton.rawhttp import HttpError, Pool  # noqa: E402
from benchmarks.throughput import (  # noqa: E402
    HOST,
    LOG_DIR,
    SERVER,
    _percentile,
    loadavg,
    postgres_backends,
    process_cpu_s,
    running_fpslink,
    take_lock,
    worker_pids,
)
from fpslink.config import Settings  # noqa: E402

GW_DB, IBPS_DB = "fpslink_bench_fair_gw", "fpslink_bench_fair_ibps"
DEFAULTS = Settings.model_fields
QUOTA: int = DEFAULTS["rate_limit_quota"].default
WINDOW_S: int = DEFAULTS["rate_limit_window_s"].default
"""The sandbox's default quota: what a bank meets (`--quota`, `--window` to try another), and what the
gateway here is given explicitly."""
NOISE_CONNECTIONS = 32
QUIET_CONNECTIONS = 4
MAX_REQUESTS = 1_000_000
"""No phase sends more than this, whatever the arguments."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of each phase not measured")
    parser.add_argument("--rounds", type=int, default=4, help="alone/noisy pairs (ABBA order), pooled")
    parser.add_argument(
        "--quiet-rate", type=float, default=15.0, help="the quiet bank's reads per second (within its quota)"
    )
    parser.add_argument("--noise", choices=("reads", "payments"), default="reads")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=DEFAULTS["rate_limit_max_wait_s"].default,
        help="FPSLINK_RATE_LIMIT_MAX_WAIT_S of the gateway (0: a request over the quota is a 429 at once)",
    )
    parser.add_argument("--times", type=float, default=10.0, help="the noisy bank's rate, in quotas")
    parser.add_argument("--quota", type=int, default=QUOTA, help="every bank's quota (requests per window)")
    parser.add_argument("--window", type=int, default=WINDOW_S, help="the quota's window, in seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=28760, help="gateway port; mock_ibps takes the next")
    parser.add_argument("--no-unthrottled", action="store_true", help="skip the unthrottled phase")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    checks = {
        "--duration": 1 <= args.duration <= 120,
        "--warmup": 0 <= args.warmup <= 30,
        "--rounds": 1 <= args.rounds <= 10,
        "--quota": 1 <= args.quota <= 100_000,
        "--window": 1 <= args.window <= 3600,
        "--quiet-rate": 1 <= args.quiet_rate <= args.quota / args.window,
        "--times": 1 <= args.times <= 40,
        "--max-wait": 0 <= args.max_wait <= 10,
        "--workers": 1 <= args.workers <= 8,
        "--port": 1024 <= args.port <= 65_000,
    }
    for name, ok in checks.items():
        if not ok:
            parser.error(f"{name} is out of range")
    return args


@dataclass
class World:
    quiet_key: str
    quiet_account: str
    noisy_id: str
    noisy_key: str
    noisy_accounts: list[str]
    creditor: str


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    quiet: Counter[str] = field(default_factory=Counter)
    noise: Counter[str] = field(default_factory=Counter)
    noise_sent: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per second of the measured window, by group of processes."""
    load: str = ""
    """The host's load averages when the phase ended: the machine may be shared."""

    phases: int = 0

    def p(self, q: float) -> float:
        return _percentile(self.latencies_ms, q)

    def add(self, other: Phase) -> None:
        """Pool another phase's figures into this one (CPU as the mean over the phases)."""
        self.latencies_ms += other.latencies_ms
        self.quiet.update(other.quiet)
        self.noise.update(other.noise)
        self.noise_sent += other.noise_sent
        self.cpu = {
            k: (self.cpu.get(k, 0.0) * self.phases + other.cpu.get(k, 0.0)) / (self.phases + 1)
            for k in {*self.cpu, *other.cpu}
        }
        self.phases += 1


async def seed(port: int, operator_key: str) -> World:
    import httpx

    operator = {"Authorization": f"Bearer {operator_key}"}
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30) as http:

        async def bank(code: str, system: str) -> str:
            created = await http.post(
                "/v1/participants",
                json={"participant_id": code, "name": code, "system": system},
                headers=operator,
            )
            created.raise_for_status()
            return str(created.json()["api_key"])

        async def account(code: str, currency: str) -> str:
            opened = await http.post(
                "/v1/accounts",
                json={
                    "participant_id": code,
                    "holder_name": "CHAN Tai Man" if currency == "HKD" else "张小明",
                    "currency": currency,
                    "opening_balance": "100000000.00",
                },
                headers=operator,
            )
            opened.raise_for_status()
            return str(opened.json()["account_id"])

        quiet_key, noisy_key = await bank("FAIRQUIET", "FPS"), await bank("FAIRNOISY", "FPS")
        await bank("FAIRCN", "IBPS")
        return World(
            quiet_key=quiet_key,
            quiet_account=await account("FAIRQUIET", "HKD"),
            noisy_id="FAIRNOISY",
            noisy_key=noisy_key,
            noisy_accounts=[await account("FAIRNOISY", "HKD") for _ in range(8)],
            creditor=await account("FAIRCN", "CNY"),
        )


def outcome(status: int) -> str:
    return str(status)


async def open_loop(
    port: int,
    rate: float,
    seconds: float,
    connections: int,
    request: Any,
    on_answer: Any,
    *,
    drain: bool = True,
) -> int:
    """Send `request(i)` at `rate` a second for `seconds` over `connections`; `on_answer(sent_at,
    status)` for each answer (status 0: a transport failure, -1: not sent, the backlog being full).
    `drain`: wait for the answers still due at the end (else drop them, so that nothing is sent
    after `seconds`). Returns how many were sent."""
    pool = Pool(HOST, port, size=connections, timeout_s=10.0)
    started = time.monotonic()
    running: set[asyncio.Task[None]] = set()
    sent = 0

    async def one(i: int, due: float) -> None:
        method, path, body, headers = request(i)
        try:
            status = (await pool.request(method, path, body, headers)).status
        except (HttpError, TimeoutError):
            status = 0
        on_answer(due, status)

    try:
        for i in range(min(MAX_REQUESTS, int(rate * seconds))):
            due = started + i / rate
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            if len(running) >= 8 * connections:
                on_answer(due, -1)  # the gateway fell this far behind: shed, and count it
                continue
            task = asyncio.create_task(one(i, due))
            running.add(task)
            task.add_done_callback(running.discard)
            sent += 1
        if running and drain:
            await asyncio.wait(running, timeout=30)
    finally:
        for task in running:
            task.cancel()
        await pool.aclose()
    return sent


def noise_process(port: int, world: World, noise: str, rate: float, seconds: float, out: Queue[Any]) -> None:
    """The noisy bank, in a process of its own so that its load does not delay the quiet bank's
    measurement in the same event loop."""
    counts: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {world.noisy_key}"}

    def request(i: int) -> tuple[str, str, bytes, dict[str, str]]:
        debtor = world.noisy_accounts[i % len(world.noisy_accounts)]
        if noise == "reads":
            return "GET", f"/v1/accounts/{debtor}", b"", headers
        body = {
            "debtor_account_id": debtor,
            "creditor": {"account_id": world.creditor},
            "amount": "1.00",
            "currency": "HKD",
            "purpose": "OTHER",
        }
        return (
            "POST",
            "/v1/payments",
            json.dumps(body).encode(),
            {**headers, "Idempotency-Key": str(uuid.uuid4())},
        )

    def on_answer(due: float, status: int) -> None:
        counts[outcome(status)] += 1

    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sent = runner.run(open_loop(port, rate, seconds, NOISE_CONNECTIONS, request, on_answer, drain=False))
    out.put((sent, dict(counts)))


@dataclass
class Servers:
    gateway: subprocess.Popen[bytes]
    ibps: subprocess.Popen[bytes]
    probe: asyncpg.Connection
    """Held for the whole run: a shared server may have no connection to spare mid-run."""

    async def cpu_s(self, noise_pid: int | None) -> dict[str, float]:
        """CPU seconds used so far by the gateway, mock_ibps, PostgreSQL's backends of the two
        databases, and the noisy bank's process (this process, the quiet bank, is left out)."""
        backends = await postgres_backends(self.probe, [GW_DB, IBPS_DB])
        return {
            "gateway": process_cpu_s(sorted({self.gateway.pid, *worker_pids(self.gateway)})),
            "mock_ibps": process_cpu_s([self.ibps.pid]),
            "postgres": process_cpu_s(backends),
            "noisy client": process_cpu_s([noise_pid]) if noise_pid else 0.0,
        }


async def run_phase(
    name: str, port: int, world: World, args: argparse.Namespace, servers: Servers, *, noisy: bool
) -> Phase:
    phase = Phase(name)
    seconds = args.warmup + args.duration
    measure_from = time.monotonic() + args.warmup
    context = multiprocessing.get_context("spawn")
    out: Queue[Any] = context.Queue()
    child = None
    if noisy:
        rate = args.times * args.quota / args.window
        child = context.Process(target=noise_process, args=(port, world, args.noise, rate, seconds, out))
        child.start()
    headers = {"Authorization": f"Bearer {world.quiet_key}"}

    def request(i: int) -> tuple[str, str, bytes, dict[str, str]]:
        return "GET", f"/v1/accounts/{world.quiet_account}", b"", headers

    def on_answer(due: float, status: int) -> None:
        if due < measure_from:
            return
        phase.quiet[outcome(status)] += 1
        if status == 200:
            phase.latencies_ms.append((time.monotonic() - due) * 1000)

    async def measure_cpu() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        noise_pid = child.pid if child is not None else None
        before, mark = await servers.cpu_s(noise_pid), time.monotonic()
        await asyncio.sleep(max(0.0, args.duration - 0.5))
        after, took = await servers.cpu_s(noise_pid), time.monotonic() - mark
        phase.cpu = {k: (after[k] - before[k]) / took for k in after}

    try:
        probe = asyncio.create_task(measure_cpu())
        await open_loop(port, args.quiet_rate, seconds, QUIET_CONNECTIONS, request, on_answer)
        await probe
        if child is not None:
            sent, counts = await asyncio.to_thread(out.get, True, seconds + 90)
            phase.noise_sent, phase.noise = sent, Counter(counts)
    finally:
        if child is not None:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    phase.load = loadavg()
    return phase


async def raise_quota(port: int, operator_key: str, participant_id: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30) as http:
        raised = await http.put(
            f"/v1/participants/{participant_id}/rate-limit",
            json={"quota": 1_000_000, "window_s": 1},
            headers={"Authorization": f"Bearer {operator_key}"},
        )
        raised.raise_for_status()
    await asyncio.sleep(3)  # every worker's key look-up has expired (FPSLINK_KEY_CACHE_TTL_S, 2 s)


def line(phase: Phase, alone: Phase | None, args: argparse.Namespace) -> str:
    figures = f"p50 {phase.p(0.5):6.1f}  p95 {phase.p(0.95):6.1f}  p99 {phase.p(0.99):6.1f} ms"
    text = f"{phase.name:<22} quiet {figures}  ({sum(phase.quiet.values())} reads {dict(phase.quiet)})"
    if alone is not None:
        text += f"  p99 {100 * (phase.p(0.99) / alone.p(0.99) - 1):+.0f}%"
    if phase.noise_sent:
        per_s = phase.noise_sent / (args.warmup + args.duration) / max(1, phase.phases)
        text += f"\n{'':<22} noisy bank: {phase.noise_sent} sent ({per_s:.0f}/s), answers {dict(phase.noise)}"
    cpu = ", ".join(f"{name} {1000 * used:.0f}" for name, used in phase.cpu.items() if used)
    text += f"\n{'':<22} CPU ms per second: {cpu}"
    if phase.load:
        text += f"; host load {phase.load}"
    return text


async def main(args: argparse.Namespace) -> int:
    import asyncpg

    task = asyncio.current_task()
    if task is not None:
        # SIGTERM (`timeout`, a kill) cancels the run, so that its servers are stopped and its
        # databases dropped, as Ctrl-C does; by default it would leave both behind
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    lock = take_lock()
    if lock is None:
        print(f"a benchmark run holds {LOG_DIR / 'run.lock'}; not starting (its load would be measured)")
        return 2
    before = loadavg()
    port = args.port
    env = {
        "FPSLINK_RATE_LIMIT_QUOTA": str(args.quota),
        "FPSLINK_RATE_LIMIT_WINDOW_S": str(args.window),
        "FPSLINK_RATE_LIMIT_MAX_WAIT_S": str(args.max_wait),
    }
    databases = (GW_DB, IBPS_DB)
    async with running_fpslink(
        databases, port, args.workers, env, log_prefix="fairness-", keep=args.keep
    ) as running:
        gateway, ibps, operator_key = running.gateway, running.ibps, running.operator_key
        probe = await asyncpg.connect(f"postgresql://{SERVER}/postgres")
        try:
            world = await seed(port, operator_key)
            servers = Servers(gateway, ibps, probe)
            print(
                f"quota {args.quota} per {args.window} s a bank, waits up to {args.max_wait:g} s; "
                f"the quiet bank reads {args.quiet_rate:g}/s; the noisy bank offers {args.noise} at "
                f"{args.times:g}x its quota ({args.times * args.quota / args.window:g}/s) over "
                f"{NOISE_CONNECTIONS} connections; "
                f"{args.duration:g} s measured a phase"
            )
            pooled = {False: Phase("alone, pooled"), True: Phase("noisy, pooled")}
            ratios = []
            for round_ in range(1, args.rounds + 1):
                # alone then noisy, then noisy then alone: a drift of the machine's load weighs on both
                pair = {}
                for noisy in (False, True) if round_ % 2 else (True, False):
                    name = f"round {round_} {'noisy' if noisy else 'alone'}"
                    pair[noisy] = phase = await run_phase(name, port, world, args, servers, noisy=noisy)
                    print(line(phase, None, args), flush=True)
                    pooled[noisy].add(phase)
                ratios.append(pair[True].p(0.99) / pair[False].p(0.99))
            print()
            print(line(pooled[False], None, args))
            print(line(pooled[True], pooled[False], args), flush=True)
            if not args.no_unthrottled:
                await raise_quota(port, operator_key, world.noisy_id)
                alone = await run_phase("unthrottled: alone", port, world, args, servers, noisy=False)
                print(line(alone, None, args), flush=True)
                unthrottled = await run_phase("unthrottled: noisy", port, world, args, servers, noisy=True)
                print(line(unthrottled, alone, args), flush=True)
            change = pooled[True].p(0.99) / pooled[False].p(0.99) - 1
            median = statistics.median(ratios) - 1
            print(
                f"the quiet bank's p99 with the noisy bank: {100 * change:+.0f}% pooled, "
                f"{100 * median:+.0f}% the median round's (a burst of load from elsewhere moves one "
                "round, not the median); target: under +20%"
            )
            print(f"host load averages (1, 5, 15 min): {before} before, {loadavg()} after")
            return 0 if change < 0.20 else 1
        finally:
            await probe.close()


if __name__ == "__main__":
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sys.exit(runner.run(main(parse_args())))

"""The default sandbox as a new user gets it: time to the first settled payment, then its throughput.

    .venv/bin/python benchmarks/sandbox.py [--duration 20] [--concurrency 64] [--accounts 40]

1. `fpslink sandbox` (what `python3 tasks.py sandbox` runs once the virtualenv exists) in a fresh
   temporary directory, with no FPSLINK_DATABASE_URL: it starts its embedded PostgreSQL there,
   migrates, starts mock_ibps and seeds the demo world. Printed: the seconds from the command to
   its banner, the parts the sandbox reports (database, migrations, mock_ibps and seed), and to the
   first settled payment (the banner's northbound curl, sent as soon as the banner shows).
2. Banks and `--accounts` funded accounts on each side opened through the API with the
   operator key, then `--concurrency` clients paying between them both ways for `--duration`
   seconds after `--warmup`, closed loop, creditor by account id, limits and the banks' rate limit
   raised by environment (as a load tester raises them), southbound open 24 h. Printed: settled
   payments/s, p50/p95/p99,
   the p99 of each 5 s, errors, and CPU milliseconds per settled payment of the gateway (the
   sandbox process and its workers),
   mock_ibps, the PostgreSQL backends and the load generator.
3. Ctrl-C (SIGINT) to the sandbox: it must exit 0 and leave its PostgreSQL stopped; then a second
   start on the same directory must find its data again (the seconds to its banner are printed).

Everything binds 127.0.0.1 or a Unix socket in the temporary directory, which is removed at the end
unless `--keep`. Targets (issue: one engine): at least 1,000 settled/s with p99 at most 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from benchmarks.throughput import (  # noqa: E402
    HOST,
    Result,
    batch_steps,
    cpu_probe,
    drive,
    finish_profiler,
    fpslink_request,
    seed_fpslink,
    start_profiler,
)
from fpslink_tools.sandbox import SandboxProcess  # noqa: E402
from ibps_wire.credentials import new_secret  # noqa: E402

WINDOW_S = 5.0
READY = "fpslink sandbox is running"
START_TIMEOUT_S = 180.0
LIMITS_RAISED = {
    "FPSLINK_NORTHBOUND_PER_TXN_HKD": "1000000000",
    "FPSLINK_NORTHBOUND_DAILY_HKD": "1000000000000",
    "FPSLINK_NORTHBOUND_YEARLY_HKD": "1000000000000",
    "FPSLINK_SOUTHBOUND_HOURS": "00:00-24:00",
    "FPSLINK_RATE_LIMIT_QUOTA": "10000000",
    "FPSLINK_RATE_LIMIT_WINDOW_S": "1",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds (at most 120)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--accounts", type=int, default=40, help="funded accounts on each side")
    parser.add_argument("--port", type=int, default=18800, help="gateway port; mock_ibps takes the next")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--workers", type=int, default=None, help="gateway workers (default: the sandbox's own choice)"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy the busiest gateway process into FILE"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be 1-120 s and --warmup 0-60 s")
    args.rate = None  # closed loop: each client sends its next payment when its answer comes
    return args


class Sandbox(SandboxProcess):
    """The sandbox with the load test's environment, and its processes for the CPU probe."""

    def __init__(self, workdir: Path, port: int, operator_key: str, workers: int | None = None) -> None:
        env = {**LIMITS_RAISED, "FPSLINK_OPERATOR_KEY": operator_key, "FPSLINK_LOG_LEVEL": "WARNING"}
        options = ["--port", str(port), "--ibps-port", str(port + 1)]
        if workers is not None:
            options += ["--workers", str(workers)]
        super().__init__(workdir, options, env)

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> str:
        banner = super().wait_ready(timeout_s)
        if READY not in banner:
            raise RuntimeError(f"no sandbox banner:\n{banner[-3000:]}")
        return banner

    def gateway_pids(self) -> list[int]:
        """The sandbox's process and its gateway workers."""
        return [self.process.pid, *(pid for pid in self.child_pids() if not _is_mock_ibps(pid))]

    def mock_ibps_pids(self) -> list[int]:
        return [pid for pid in self.child_pids() if _is_mock_ibps(pid)]

    def child_pids(self) -> list[int]:
        """The sandbox's own children (mock_ibps, the gateway workers) by /proc's parent links."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                if int(stat[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found


def _is_mock_ibps(pid: int) -> bool:
    try:
        return b"mock_ibps" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def first_payment(port: int, operator_key: str) -> tuple[str, float]:
    """The banner's curl: HKD 1,000.00 northbound to +86 138 0013 8000; (status, seconds)."""
    import httpx

    from fpslink.demo import demo_key

    body = {
        "debtor_account_id": "HKDEMO0001",
        "creditor": {"proxy_type": "MOBILE", "proxy_value": "+8613800138000"},
        "amount": "1000.00",
        "currency": "HKD",
        "purpose": "FAMILY_SUPPORT",
    }
    headers = {
        "Authorization": f"Bearer {demo_key(operator_key, 'HARBOURHK')}",
        "Idempotency-Key": secrets.token_hex(8),
    }
    mark = time.monotonic()
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30) as http:
        answer = await http.post("/v1/payments", json=body, headers=headers)
    return str(answer.json().get("status", answer.status_code)), time.monotonic() - mark


def embedded_dsn(workdir: Path) -> str:
    from fpslink_tools.embedded_pg import EmbeddedPostgres

    endpoint = EmbeddedPostgres(workdir / ".fpslink" / "pg").running()
    if endpoint is None:
        raise RuntimeError("the sandbox's embedded PostgreSQL is not running")
    return endpoint.url("postgres", driver="")


async def load(sandbox: Sandbox, workdir: Path, args: argparse.Namespace, operator_key: str) -> Result:
    world = await seed_fpslink(args.port, operator_key, args.accounts)  # that many on each side
    print(f"load: {len(world.hk)} FPS and {len(world.cn)} IBPS accounts, {args.concurrency} clients")
    probe = cpu_probe(
        {"gateway": sandbox.gateway_pids, "mock_ibps": sandbox.mock_ibps_pids},
        ["fpslink", "fpslink_ibps"],
        server=embedded_dsn(workdir),
    )
    profiler = None

    async def start_profile() -> None:
        nonlocal profiler
        if args.profile is not None:
            profiler = start_profiler(busiest(sandbox.gateway_pids()), args.profile, args.duration)

    result = await drive(
        "sandbox", args.port, fpslink_request(world), args, on_measuring=start_profile, cpu=probe
    )
    if profiler is not None:
        result.notes += finish_profiler(profiler, args.profile)
    return result


def busiest(pids: list[int]) -> int:
    """The process that has used the most CPU so far (with one worker: the worker, not its parent)."""

    def used(pid: int) -> int:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return -1
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    return max(pids, key=used)


def report(result: Result) -> list[str]:
    settled_per_s = result.per_s(result.settled)
    cpu = ", ".join(
        f"{name} {seconds * 1000 / max(result.settled, 1):.2f}" for name, seconds in result.cpu_s.items()
    )
    windows = " ".join(f"{p:.0f}" for p in result.windows_p99(WINDOW_S))
    verdict = settled_per_s >= 1000 and result.percentile(0.99) <= 250 and not result.error_count
    return [
        f"settled {result.settled:,} in {result.duration_s:.0f} s: {settled_per_s:,.0f}/s;"
        f" pending {result.pending}, errors {dict(result.errors) or 0}",
        f"latency ms p50 {result.percentile(0.5):.0f}  p95 {result.percentile(0.95):.0f}"
        f"  p99 {result.percentile(0.99):.0f};  p99 of each {WINDOW_S:.0f} s: {windows}",
        f"CPU ms per settled payment: {cpu}",
        f"target (>= 1,000 settled/s, p99 <= 250 ms, no errors): {'met' if verdict else 'NOT met'}",
    ]


async def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="fpslink-sandbox-bench-"))
    operator_key = new_secret("bench_operator_")
    lines: list[str] = []
    code = 0
    sandbox = Sandbox(workdir, args.port, operator_key, args.workers)
    try:
        await asyncio.to_thread(sandbox.wait_ready)
        ready_s = sandbox.ready_s or 0.0
        status, paid_s = await first_payment(args.port, operator_key)
        lines.append(
            f"first start: banner after {ready_s:.1f} s ({sandbox.parts()}); the first payment "
            f"{status} {paid_s * 1000:.0f} ms later: {ready_s + paid_s:.1f} s from the command"
        )
        if status != "SETTLED":
            code = 1
        result = await load(sandbox, workdir, args, operator_key)
        lines += report(result)
        if not lines[-1].endswith(": met"):
            code = 1
        lines += await batch_steps(args.port)
        lines += result.notes
    finally:
        exit_code = sandbox.interrupt()
    from fpslink_tools.embedded_pg import EmbeddedPostgres

    stopped = EmbeddedPostgres(workdir / ".fpslink" / "pg").running() is None
    lines.append(
        f"Ctrl-C: the sandbox exited {exit_code}; its PostgreSQL {'stopped' if stopped else 'RUNS ON'}"
    )
    code = code or int(exit_code != 0 or not stopped)
    again = Sandbox(workdir, args.port, operator_key, args.workers)
    try:
        await asyncio.to_thread(again.wait_ready)
        ready_s = again.ready_s or 0.0
        status, paid_s = await first_payment(args.port, operator_key)
        lines.append(
            f"second start on the same data: banner after {ready_s:.1f} s ({again.parts()}); {status}"
        )
    finally:
        again.interrupt()
    print("\n".join(lines))
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    arguments = parse_args()
    if re.fullmatch(r"127\.0\.0\.1", HOST) is None:  # never load another address
        raise SystemExit("the load generator only targets 127.0.0.1")
    print(json.dumps({k: v for k, v in vars(arguments).items() if k != "rate"}, default=str))
    raise SystemExit(asyncio.run(main(arguments)))

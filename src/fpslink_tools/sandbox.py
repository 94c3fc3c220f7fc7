"""The one-command sandbox: databases, migrations, mock_ibps, the demo world's seed, banner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from fpslink.config import DEFAULT_DATA_DIR, Settings, ready_to_serve
from fpslink.context import OPERATOR, Gateway
from fpslink.db import create_engine
from fpslink.demo import DEMO_ACCOUNTS, DEMO_BANKS, demo_key
from fpslink.errors import Conflict
from fpslink.ibps_client import client_from_settings
from fpslink.participants.service import hash_key
from fpslink_tools import embedded_pg
from fpslink_tools.local_secrets import (
    IBPS_TOKEN_FILE,
    forget_sandbox,
    private_dir,
    running_sandbox,
    with_local_secrets,
    write_sandbox,
)
from fpslink_tools.pgadmin import ensure_database, ibps_database_url

SANDBOX_WEBHOOK_ALLOW = "127.0.0.1:9000,localhost:9000"
"""The local receiver of docs/webhooks.md, allowed unless FPSLINK_WEBHOOK_ALLOW says otherwise."""
IBPS_HOST = "127.0.0.1"
"""Where the sandbox's mock_ibps listens unless told otherwise, whatever address the gateway binds:
only the gateway calls it, and its token mints money (docs/architecture.md#mock_ibps)."""


def default_workers() -> int:
    """Gateway workers for a sandbox on this machine: half the cores it may use, at least one.

    The sandbox shares its cores with its own PostgreSQL and mock_ibps, and usually with the load
    generator; the gateway takes about half of what a payment costs in CPU. Each worker batches only
    its own payments, so fewer workers make larger batches: on two cores, one worker against two
    (`benchmarks/sandbox.py --workers 1` and `--workers 2`, alternated, 64 clients) settled as many
    payments per second with about 30% less CPU per payment (1.6-2.0 ms against 2.6-3.3 ms, all
    processes), its batches 32 payments against 16.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    return max(1, cores // 2)


async def seed_demo(gw: Gateway, op_key: str) -> list[str]:
    """Create whatever part of the demo world is missing; returns warnings for the banner."""
    warnings: list[str] = []
    for bank in DEMO_BANKS:
        key = demo_key(op_key, bank.participant_id)
        async with gw.uow() as tx:
            existing = await tx.participants.participant(bank.participant_id)
            by_key = await tx.participants.participant_by_key_hash(hash_key(key))
        if existing is None:
            await gw.participants.create_participant(
                participant_id=bank.participant_id,
                name=bank.name,
                system=bank.system,
                api_key=key,
                bic=bank.bic,
            )
        elif by_key is None:
            warnings.append(
                f"{bank.participant_id} was created with another operator key; its printed key "
                "will not work (delete the sandbox data to start afresh)"
            )
    for acc in DEMO_ACCOUNTS:
        async with gw.uow() as tx:
            exists = await tx.participants.account(acc.account_id) is not None
        if not exists:
            await gw.participants.open_account(
                participant_id=acc.participant_id,
                holder_name=acc.holder_name,
                currency=acc.currency,
                opening_balance=acc.opening_balance,
                account_id=acc.account_id,
            )
        if acc.proxy:
            with contextlib.suppress(Conflict):
                await gw.directory.register(
                    OPERATOR,
                    proxy_type="MOBILE",
                    proxy_value=acc.proxy,
                    account_id=acc.account_id,
                )
    return warnings


def wait_healthy(url: str, *, process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url} exited with code {process.returncode} while starting")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy within {timeout_s:.0f} s")


def start_mock_ibps(
    *,
    host: str,
    port: int,
    database_url: str,
    token: str,
    insecure_local: bool = False,
    log_level: str = "warning",
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MOCK_IBPS_DATABASE_URL": database_url,
        "MOCK_IBPS_TOKEN": token,
        "MOCK_IBPS_INSECURE_LOCAL": "1" if insecure_local else "0",
        "MOCK_IBPS_LOG_LEVEL": log_level,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_ibps.cli", "serve", "--host", host, "--port", str(port), "--no-migrate"],
        env=env,
    )
    try:
        wait_healthy(f"http://{host}:{port}/healthz", process=process, timeout_s=30)
    except BaseException:
        process.terminate()
        process.wait(timeout=10)
        raise
    return process


async def seed(settings: Settings, op_key: str) -> list[str]:
    engine = create_engine(settings.database_url, pool_size=2)
    ibps = client_from_settings(settings)
    try:
        gw = Gateway(settings=settings, engine=engine, ibps=ibps)
        await gw.read_sandbox_offset()  # a sandbox started again runs at the time it was left at
        return await seed_demo(gw, op_key)
    finally:
        await ibps.aclose()
        await engine.dispose()


def banner(*, host: str, port: int, ibps_host: str, ibps_port: int, op_key: str, warnings: list[str]) -> str:
    base = f"http://{host}:{port}"
    keys = {bank.participant_id: demo_key(op_key, bank.participant_id) for bank in DEMO_BANKS}
    lines = [
        "",
        "fpslink sandbox is running",
        f"  gateway   {base}   (API docs: {base}/docs)",
        f"  console   {base}/console   (log in with any key below)",
        f"  mock_ibps http://{ibps_host}:{ibps_port}   (for the gateway only: its token is in "
        f"{Path(DEFAULT_DATA_DIR) / IBPS_TOKEN_FILE})",
        "",
        f"  operator key   {op_key}",
    ]
    for bank in DEMO_BANKS:
        lines.append(f"  {bank.participant_id:<11}{bank.system.value:<5} key {keys[bank.participant_id]}")
    lines += ["", "  demo accounts"]
    for acc in DEMO_ACCOUNTS:
        lines.append(
            f"    {acc.account_id}  {acc.participant_id:<11}{acc.currency.value} "
            f"{acc.opening_balance:>10}  {acc.holder_name}  {acc.proxy or ''}"
        )
    lines += [
        "",
        "  send 1000.00 HKD northbound to +86 138 0013 8000 (settles at once):",
        "",
        f"    curl -s -X POST {base}/v1/payments \\",
        f"      -H 'Authorization: Bearer {keys['HARBOURHK']}' \\",
        "      -H \"Idempotency-Key: demo-$(date +%s%N)\" -H 'Content-Type: application/json' \\",
        '      -d \'{"debtor_account_id": "HKDEMO0001", "creditor": {"proxy_type": "MOBILE", '
        '"proxy_value": "+8613800138000"}, "amount": "1000.00", "currency": "HKD", '
        '"purpose": "FAMILY_SUPPORT"}\'',
        "",
        f"  check every ledger invariant:  {runnable('fpslink')} check",
        "",
    ]
    lines += [f"  warning: {w}" for w in warnings]
    return "\n".join(lines)


def runnable(command: str) -> str:
    """How to type `command` from this shell: its bare name when it is on PATH, else its path in
    this virtualenv (what `python3 tasks.py sandbox` users have: the venv is not activated)."""
    script = Path(sys.executable).with_name(command + (".exe" if os.name == "nt" else ""))
    found = shutil.which(command)
    if found is not None and Path(found).resolve() == script.resolve():
        return command
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def run_sandbox(
    settings: Settings,
    *,
    host: str,
    port: int,
    ibps_port: int,
    ibps_host: str = IBPS_HOST,
    workers: int | None = None,
) -> None:
    """The sandbox on FPSLINK_DATABASE_URL's server, else on the embedded PostgreSQL in
    `.fpslink/pg`, which runs for as long as the sandbox does (Ctrl-C stops both).

    Its operator key and IBPS token are this install's own, generated into `.fpslink/` on the first
    start (unless the environment sets them) and reused after; a weak one set in the environment is
    refused before anything starts (`ready_to_serve`), unless in the insecure local mode.
    """
    data_dir = private_dir(Path(DEFAULT_DATA_DIR))
    settings, warnings = ready_to_serve(
        with_local_secrets(settings, data_dir, generate=True),
        hosts={"the gateway": host, "mock_ibps": ibps_host},
    )
    _ports_free(data_dir, {"--port": (host, port), "--ibps-port": (ibps_host, ibps_port)})
    started = time.monotonic()
    # A SIGTERM at any step (migrations, seeding, serving) ends in the cleanup below, which stops
    # mock_ibps and the embedded PostgreSQL; with one worker uvicorn re-raises it after its shutdown.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    configured_database = settings.database_url  # "" for the embedded server, which commands find
    with embedded_pg.database_url(settings.database_url, data_dir / "pg", "fpslink") as url:
        timings = {"database": time.monotonic() - started}
        _run(
            settings.model_copy(update={"database_url": url}),
            data_dir=data_dir,
            configured_database=configured_database,
            host=host,
            port=port,
            ibps_host=ibps_host,
            ibps_port=ibps_port,
            workers=workers or default_workers(),
            timings=timings,
            warnings=warnings,
        )


def _ports_free(data_dir: Path, addresses: dict[str, tuple[str, int]]) -> None:
    """PortInUse, naming the option that moves it, when another server holds an address the sandbox
    needs. Checked before anything starts: else mock_ibps's health check and the banner would
    find the other server's answer, and announce a sandbox that then fails to bind."""
    from fpslink.serving import PortInUse, ensure_free

    for option, (host, port) in addresses.items():
        try:
            ensure_free(host, port)
        except PortInUse as exc:
            running = running_sandbox(data_dir)
            whose = f" (the sandbox of this directory, {running.get('gateway_url')})" if running else ""
            raise PortInUse(f"{exc}{whose}; stop it, or choose another {option}") from None


def _run(
    settings: Settings,
    *,
    data_dir: Path,
    configured_database: str,
    host: str,
    port: int,
    ibps_host: str,
    ibps_port: int,
    workers: int,
    timings: dict[str, float],
    warnings: list[str],
) -> None:
    from fpslink import migrate, serving
    from mock_ibps import migrate as ibps_migrate

    mark = time.monotonic()
    assert settings.operator_key is not None  # with_local_secrets(generate=True) always sets it
    op_key = settings.operator_key
    ibps_url_db = ibps_database_url(settings.database_url, os.environ.get("MOCK_IBPS_DATABASE_URL"))
    for url in (settings.database_url, ibps_url_db):
        asyncio.run(ensure_database(url))
    migrate.upgrade(settings.database_url)
    ibps_migrate.upgrade(ibps_url_db)
    timings["migrations"], mark = time.monotonic() - mark, time.monotonic()
    settings = settings.model_copy(update={"ibps_url": f"http://{ibps_host}:{ibps_port}"})
    ibps = start_mock_ibps(
        host=ibps_host,
        port=ibps_port,
        database_url=ibps_url_db,
        token=settings.ibps_token,
        insecure_local=settings.insecure_local,
    )
    try:
        warnings = warnings + asyncio.run(seed(settings, op_key))
        timings["mock_ibps and seed"] = time.monotonic() - mark
        # The workers are processes of their own that read their settings from the environment.
        os.environ.update(
            FPSLINK_DATABASE_URL=settings.database_url,
            FPSLINK_OPERATOR_KEY=op_key,
            FPSLINK_IBPS_URL=settings.ibps_url,
            FPSLINK_IBPS_TOKEN=settings.ibps_token,
        )
        text = banner(
            host=host, port=port, ibps_host=ibps_host, ibps_port=ibps_port, op_key=op_key, warnings=warnings
        )
        os.environ.setdefault("FPSLINK_WEBHOOK_ALLOW", SANDBOX_WEBHOOK_ALLOW)
        # a single-user sandbox may move its own time (the test clock); =false keeps it still
        os.environ.setdefault("FPSLINK_SANDBOX_CLOCK", "true")
        write_sandbox(
            data_dir,
            gateway_url=f"http://{host}:{port}",
            ibps_url=settings.ibps_url,
            database_url=configured_database,
        )
        threading.Thread(
            target=_announce, args=(f"http://{host}:{port}/healthz", text, timings), daemon=True
        ).start()
        serving.serve(
            "fpslink.app:app_from_env",
            host=host,
            port=port,
            workers=workers,
            log_level=os.environ.get("FPSLINK_LOG_LEVEL", "warning").lower(),
        )
    finally:
        forget_sandbox(data_dir)
        ibps.terminate()
        try:
            ibps.wait(timeout=10)
        except subprocess.TimeoutExpired:
            ibps.kill()


def _announce(health_url: str, text: str, timings: dict[str, float]) -> None:
    """The banner once the gateway answers, so that its curl works the moment it shows."""
    mark = time.monotonic()
    while time.monotonic() - mark < 120:
        try:
            if httpx.get(health_url, timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    else:
        return
    timings["gateway"] = time.monotonic() - mark
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    print(f"{text}\n  ready: {parts}\n", flush=True)


class SandboxProcess:
    """`fpslink sandbox` as a child process in a directory of its own, its output read as it comes:
    how the tests and benchmarks run the sandbox as a new user does, and stop it with Ctrl-C."""

    READY = "ready:"
    """The banner's last line, printed once the gateway answers."""

    def __init__(self, workdir: Path, options: list[str], env: dict[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("FPSLINK_", "MOCK_IBPS_"))}
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fpslink.cli", "sandbox", *options],
            cwd=workdir,
            env={**clean, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready_s: float | None = None
        """Seconds from the command to the banner's last line."""
        self._done = threading.Event()
        threading.Thread(target=self._read, name="sandbox-output", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.strip().startswith(self.READY) and self.ready_s is None:
                self.ready_s = time.monotonic() - self.started
                self._done.set()
        self._done.set()  # the process ended: waiting longer is pointless

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout_s: float = 180.0) -> str:
        """The banner, once the sandbox is ready; RuntimeError with its last output otherwise."""
        if not self._done.wait(timeout_s) or self.ready_s is None:
            raise RuntimeError(
                f"the sandbox did not become ready in {timeout_s:.0f} s:\n{self.output[-3000:]}"
            )
        return self.output

    def parts(self) -> str:
        """The banner's line of start-up parts and their seconds."""
        return next((line.strip() for line in self.lines if line.strip().startswith(self.READY)), "")

    def interrupt(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, then its exit code (-9 when it had to be killed)."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return -9

"""A PostgreSQL-backed stack on 127.0.0.1 for the commands that build their own (chaos, loadtest).

Fresh databases with migrations, mock_ibps and `fpslink serve --workers N` as subprocesses (each in
its own process group, so a kill takes the uvicorn parent and every worker), and the after-the-run
view of the gateway that the invariant check and reconciliation need once the server has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import httpx

from fpslink.config import Settings
from fpslink.context import Gateway
from fpslink_tools.pgadmin import drop_database, ibps_database_url, recreate_database


class StackConfig(Protocol):
    """Where the stack's processes listen and log; ChaosConfig and LoadtestConfig both fit."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def ibps_port(self) -> int: ...
    @property
    def workers(self) -> int: ...
    @property
    def workdir(self) -> Path: ...


async def fresh_databases(gateway_db: str) -> str:
    """Drop and create the gateway's and mock_ibps's databases, migrate both; returns mock_ibps's URL."""
    from fpslink import migrate
    from mock_ibps import migrate as ibps_migrate

    ibps_db = ibps_database_url(gateway_db)
    for url in (gateway_db, ibps_db):
        await recreate_database(url)
    await asyncio.to_thread(migrate.upgrade, gateway_db)
    await asyncio.to_thread(ibps_migrate.upgrade, ibps_db)
    return ibps_db


async def drop_databases(gateway_db: str) -> None:
    for url in (gateway_db, ibps_database_url(gateway_db)):
        await drop_database(url)


class Stack:
    """The run's processes: mock_ibps, and a gateway that can be killed and restarted."""

    def __init__(self, cfg: StackConfig, env: dict[str, str], ibps_env: dict[str, str]) -> None:
        self.cfg = cfg
        self.env = env
        self.ibps_env = ibps_env
        self.gateway: subprocess.Popen[bytes] | None = None
        self.ibps: subprocess.Popen[bytes] | None = None
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        self.log = (cfg.workdir / "processes.log").open("ab")

    def _spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def start_ibps(self) -> None:
        self.ibps = self._spawn(
            [
                "-m",
                "mock_ibps.cli",
                "serve",
                "--host",
                self.cfg.host,
                "--port",
                str(self.cfg.ibps_port),
                "--no-migrate",
            ],
            self.ibps_env,
        )
        await wait_healthy(f"http://{self.cfg.host}:{self.cfg.ibps_port}/healthz", self.ibps)

    async def start_gateway(self) -> None:
        self.gateway = self._spawn(
            [
                "-m",
                "fpslink.cli",
                "serve",
                "--host",
                self.cfg.host,
                "--port",
                str(self.cfg.port),
                "--workers",
                str(self.cfg.workers),
                "--no-migrate",
            ],
            self.env,
        )
        await wait_healthy(f"http://{self.cfg.host}:{self.cfg.port}/healthz", self.gateway)

    def kill_gateway(self) -> None:
        """SIGKILL the whole process group: the uvicorn parent and every worker, mid-request."""
        if self.gateway is not None and self.gateway.poll() is None:
            os.killpg(self.gateway.pid, signal.SIGKILL)
            self.gateway.wait(timeout=30)

    def stop_gateway(self) -> None:
        """SIGTERM the gateway's process group (SIGKILL after 15 s): a graceful end of a run."""
        end_process_group(self.gateway)

    def stop(self) -> None:
        for process in (self.gateway, self.ibps):
            end_process_group(process)
        self.log.close()


def end_process_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process group, SIGKILL it 15 s later if it is still there."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


async def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} was not healthy within {timeout_s:.0f} s")


@contextlib.asynccontextmanager
async def offline_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway's runtime without its server, for the checks and reports that follow a run."""
    from fpslink import context
    from fpslink.db import create_engine
    from fpslink.ibps_client import client_from_settings

    engine = create_engine(settings.database_url, pool_size=2)
    ibps = client_from_settings(settings)
    try:
        gw = context.Gateway(settings=settings, engine=engine, ibps=ibps)
        await gw.read_sandbox_offset()
        yield gw
    finally:
        await ibps.aclose()
        await engine.dispose()


async def invariant_violations(settings: Settings) -> list[str]:
    """Invariants I1-I6 across the gateway, the FPS ledger and mock_ibps (which must still run)."""
    from fpslink.invariants import check_invariants

    async with offline_gateway(settings) as gw:
        report = await check_invariants(gw)
    return report.violations

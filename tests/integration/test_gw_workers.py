"""`fpslink serve --workers N`: one listening socket per worker, connections spread over them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
from gateway_stack import IBPS_TOKEN, OPERATOR_KEY, Stack
from gw_support import free_port, start_process, stop_process

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's"
)

CONNECTIONS = 64


def _env(stack: Stack) -> dict[str, str]:
    return {
        "FPSLINK_DATABASE_URL": stack.gateway_db,
        "FPSLINK_IBPS_URL": stack.ibps_url,
        "FPSLINK_IBPS_TOKEN": IBPS_TOKEN,
        "FPSLINK_OPERATOR_KEY": OPERATOR_KEY,
    }


def _serve_args(port: int) -> list[str]:
    return ["-m", "fpslink.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]


@pytest.fixture
async def server(stack: Stack) -> AsyncIterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    process = await asyncio.to_thread(
        start_process,
        [*_serve_args(port), "--no-migrate"],
        env=_env(stack),
        health_url=f"http://127.0.0.1:{port}/healthz",
        log=stack.logs / f"gateway-workers-{port}.log",
    )
    try:
        yield port, process
    finally:
        await asyncio.to_thread(stop_process, process)


def _established(worker: psutil.Process, port: int) -> int:
    return sum(
        1
        for c in worker.net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def _listening_socket(worker: psutil.Process, port: int) -> str:
    """The kernel's identity of the worker's listening socket (shared sockets have one)."""
    (listening,) = [
        c
        for c in worker.net_connections(kind="tcp")
        if c.laddr.port == port and c.status == psutil.CONN_LISTEN
    ]
    return os.readlink(f"/proc/{worker.pid}/fd/{listening.fd}")


def _workers(process: subprocess.Popen[bytes], want: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 30
    while True:
        workers = [
            w
            for w in psutil.Process(process.pid).children()
            if w.is_running() and "spawn_main" in " ".join(w.cmdline())  # not the resource tracker
        ]
        if len(workers) == want or time.monotonic() > deadline:
            return workers
        time.sleep(0.2)


async def test_persistent_connections_opened_in_a_burst_spread_over_both_workers(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = server
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=httpx.Limits(max_connections=1))
        for _ in range(CONNECTIONS)
    ]
    try:
        answers = await asyncio.gather(*(client.get("/healthz") for client in clients))
        assert all(a.status_code == 200 for a in answers), {(a.status_code, a.text[:200]) for a in answers}
        workers = _workers(process, 2)
        assert len(workers) == 2
        # a socket each, so the kernel (not a race to accept) decides where a connection goes
        assert len({_listening_socket(w, port) for w in workers}) == 2
        counts = [_established(w, port) for w in workers]
        # the kernel hashes each connection to a socket: about half each, never (nearly) all on one
        assert sum(counts) == CONNECTIONS, counts
        assert min(counts) >= CONNECTIONS // 5, counts
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


async def test_a_worker_that_dies_is_replaced_and_the_port_keeps_serving(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, process = server
    victim = _workers(process, 2)[0]
    os.kill(victim.pid, signal.SIGKILL)
    await asyncio.to_thread(victim.wait, 10)
    workers = await asyncio.to_thread(_workers, process, 2)
    assert len(workers) == 2 and victim.pid not in {w.pid for w in workers}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the replacement worker never served"
            await asyncio.sleep(0.2)


async def test_a_second_server_on_a_taken_port_fails_instead_of_sharing_it(
    server: tuple[int, subprocess.Popen[bytes]], stack: Stack
) -> None:
    port, _ = server
    second = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *_serve_args(port), "--no-migrate"],
        env={**os.environ, **_env(stack)},
        capture_output=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert b"Address already in use" in second.stderr or b"address already in use" in second.stderr.lower()


def _healthz_count(exposition: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("fpslink_http_requests_total{") and 'route="/healthz"' in line
    )


async def test_metrics_sum_every_worker_whichever_answers_the_scrape(
    server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    """A scrape answered by either worker counts the requests both served, not its own share."""
    port, process = server
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=httpx.Limits(max_connections=1))
        for _ in range(CONNECTIONS)
    ]
    try:
        answers = await asyncio.gather(*(client.get("/healthz") for client in clients))
        assert all(a.status_code == 200 for a in answers), {(a.status_code, a.text[:200]) for a in answers}
        workers = _workers(process, 2)
        served = [_established(w, port) for w in workers]
        assert min(served) > 0, served  # both workers answered some of them
        scrapes = await asyncio.gather(*(client.get("/metrics") for client in clients))
        counts = {_healthz_count(scrape.text) for scrape in scrapes}
        # every scrape the same total: these requests and the start-up's health checks
        assert len(counts) == 1 and min(counts) >= CONNECTIONS, counts
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


async def test_a_dead_workers_gauges_leave_the_scrape(stack: Stack, tmp_path: Path) -> None:
    """Gauges in a `live` mode (a circuit open in some worker) stop counting a worker that died; in
    the operator's own PROMETHEUS_MULTIPROC_DIR, so the test can look at the files."""
    port = free_port()
    process = await asyncio.to_thread(
        start_process,
        [*_serve_args(port), "--no-migrate"],
        env={**_env(stack), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        health_url=f"http://127.0.0.1:{port}/healthz",
        log=stack.logs / f"gateway-workers-{port}.log",
    )
    try:
        victim = (await asyncio.to_thread(_workers, process, 2))[0]

        def files() -> set[str]:
            return {path.name for path in tmp_path.iterdir()}

        deadline = time.monotonic() + 30
        # the worker's IBPS client sets the link's circuit as it starts
        while f"gauge_livemax_{victim.pid}.db" not in await asyncio.to_thread(files):
            assert time.monotonic() < deadline, await asyncio.to_thread(files)
            await asyncio.sleep(0.2)
        os.kill(victim.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 10)
        workers = await asyncio.to_thread(_workers, process, 2)
        assert len(workers) == 2 and victim.pid not in {w.pid for w in workers}
        left = await asyncio.to_thread(files)
        assert not {f for f in left if f.startswith("gauge_live") and f.endswith(f"_{victim.pid}.db")}, left
        assert f"counter_{victim.pid}.db" in left, "its counts stay: they happened"
    finally:
        await asyncio.to_thread(stop_process, process)

"""Several gateway workers on one port, each listening on its own socket (SO_REUSEPORT).

uvicorn's `--workers` shares one listening socket, and whichever worker is first in accept() takes
the next connection. Clients that open persistent connections in a burst (a load test, a bank's
connection pool) ended up about two to one on two workers: the busier worker's batches, latency
and CPU ran hot while the other idled. With a socket per worker the kernel spreads connections over
the workers by a hash of their addresses.

The supervisor is small on purpose: it starts the workers, starts a worker again when one dies, and
stops them all on SIGINT or SIGTERM (each stops gracefully, as uvicorn does). Where the platform
has no SO_REUSEPORT, or for one worker, it is plain `uvicorn.run`.

Request heads are bounded here (`FPSLINK_MAX_HEADER_BYTES`): uvicorn's h11 has a setting for it
(`h11_max_incomplete_event_size`), but its faster httptools parser, the one it picks, has none and
keeps whatever a client sends as headers until they end. `serving_http.HeadLimitedHttpTools` counts
the head as it arrives and answers 431 past the limit.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

from fpslink.config import Settings

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess directory, as fpslink.metrics reads it. prometheus-client picks
file-backed values when it is imported with this set: each spawned worker imports it afresh."""

log = logging.getLogger("fpslink.serving")

STARTUP_FAILURE = 3
"""uvicorn's exit code for a worker that could not start: the same would happen on every restart."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT, for one worker; the worker's server listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class PortInUse(OSError):
    """Another server listens on the address: a command that would serve there cannot run."""


def ensure_free(host: str, port: int) -> None:
    """Fail now if anything listens on the port: workers bound with SO_REUSEPORT would otherwise
    share it with another server of the same user instead of failing, and one uvicorn process
    would exit with its own code (3) after the caller had announced it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"{host}:{port} is in use ({exc.strerror or exc}): another server listens there"
            ) from None


def access_log(log_level: str) -> bool:
    """Whether uvicorn writes access lines: it builds each line's fields before the logger drops
    it, about 1% of a worker under load, so only at a level that shows them."""
    level = logging.getLevelName(log_level.upper())
    return isinstance(level, int) and level <= logging.INFO


def http_protocol() -> str:
    """uvicorn's HTTP protocol, by import path (workers are spawned): httptools with the head limit,
    or h11 where httptools is not installed (h11 applies the same limit itself)."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        return "h11"
    return "fpslink.serving_http:HeadLimitedHttpTools"


def _options(host: str, port: int, log_level: str, max_header_bytes: int) -> dict[str, Any]:
    """uvicorn's settings for an app factory, the same with one process or several.

    uvicorn's own proxy headers are off: by default it believes X-Forwarded-For and
    X-Forwarded-Proto from 127.0.0.1 (FORWARDED_ALLOW_IPS), so any local process could pose as
    another client or as https. The app applies FPSLINK_TRUSTED_PROXIES instead (`fpslink.app`).
    """
    return {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": access_log(log_level),
        "proxy_headers": False,
        "http": http_protocol(),
        # h11's limit on a request's head; HeadLimitedHttpTools reads the same setting
        "h11_max_incomplete_event_size": max_header_bytes,
    }


def _worker(app: str, host: str, port: int, log_level: str, max_header_bytes: int) -> None:
    config = uvicorn.Config(app, **_options(host, port, log_level, max_header_bytes))
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def serve(
    app: str, *, host: str, port: int, workers: int, log_level: str, max_header_bytes: int | None = None
) -> None:
    """Serve the app factory `app` ("module:function") with `workers` processes.

    `max_header_bytes` bounds each request's head; by default `FPSLINK_MAX_HEADER_BYTES`.
    """
    head = Settings().max_header_bytes if max_header_bytes is None else max_header_bytes
    ensure_free(host, port)
    if workers == 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, workers=workers, **_options(host, port, log_level, head))
        return
    # the workers count metrics in files here, and /metrics sums them (fpslink.metrics); a directory
    # the operator chose is theirs to keep, ours is fresh for this run and removed at the end
    own_metrics_dir = not os.environ.get(MULTIPROC_DIR)
    if own_metrics_dir:
        os.environ[MULTIPROC_DIR] = tempfile.mkdtemp(prefix="fpslink-metrics-")
    try:
        _supervise(app, host=host, port=port, workers=workers, log_level=log_level, head=head)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ.pop(MULTIPROC_DIR), ignore_errors=True)


def forget_worker(pid: int | None) -> None:
    """Drop a dead worker's `live` gauges (fpslink.metrics), so /metrics stops showing, say, a
    circuit it had open; its counters stay, as counts already made."""
    directory = os.environ.get(MULTIPROC_DIR)
    if pid is None or not directory:
        return
    from prometheus_client import multiprocess  # reads no metric: it removes that pid's gauge files

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _supervise(app: str, *, host: str, port: int, workers: int, log_level: str, head: int) -> None:
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(app, host, port, log_level, head), daemon=False)
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    while not stop.wait(0.5):
        for i, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s failed to start; stopping", process.pid)
                stop.set()
                break
            log.warning("worker %s exited (%s); starting another", process.pid, process.exitcode)
            forget_worker(process.pid)
            processes[i] = start()
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + 30
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
        forget_worker(process.pid)  # an operator's directory outlives the run

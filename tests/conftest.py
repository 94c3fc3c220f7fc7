"""The whole suite's PostgreSQL: the machine's server when it answers, else an embedded one (pgtest)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from pgtest import DEFAULT_SERVER, DSN_ENV, SERVER_ENV, server_answers

from fpslink_tools.embedded_pg import EmbeddedPostgres

pytest_plugins = ("gateway_stack",)
"""The gateway's fixtures (stack, harness, faults), for every directory of tests."""

_embedded: list[tuple[EmbeddedPostgres, Path]] = []

for _switch in ("FPSLINK_RETENTION_ENABLED", "MOCK_IBPS_RETENTION_ENABLED"):
    # The tests date their data by fake and moved clocks, months from the real time that a gateway or
    # mock_ibps they start runs on: no background purge, in this process or those it starts. The
    # retention tests run passes themselves.
    os.environ.setdefault(_switch, "false")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(DSN_ENV) or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    server = os.environ.get(SERVER_ENV, DEFAULT_SERVER)
    if server_answers(server):
        os.environ[DSN_ENV] = f"postgresql://{server}/{{database}}"
        return
    if os.environ.get(SERVER_ENV) or os.environ.get("CI"):
        raise pytest.UsageError(f"PostgreSQL at {server} does not answer; the tests need it")
    root = Path(tempfile.mkdtemp(prefix="fpslink-test-pg-"))
    server_ = EmbeddedPostgres(root)
    endpoint = server_.start()
    _embedded.append((server_, root))
    os.environ[DSN_ENV] = endpoint.url("{database}", driver="")
    print(f"\ntests run on an embedded PostgreSQL in {root} (nothing answers at {server})")


def pytest_unconfigure(config: pytest.Config) -> None:
    while _embedded:
        server, root = _embedded.pop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)

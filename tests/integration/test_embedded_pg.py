"""The embedded PostgreSQL (fpslink_tools.embedded_pg): its life cycle and its settings."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from fpslink_tools.embedded_pg import SETTINGS, EmbeddedPostgres, serving


@pytest.fixture
def root() -> Iterator[Path]:
    """A directory outside pytest's base temporary directory, which other sessions reset to 0700."""
    path = Path(tempfile.mkdtemp(prefix="fpslink-embedded-test-"))
    try:
        yield path / "pg"
    finally:
        server = EmbeddedPostgres(path / "pg")
        if server.running() is not None:
            server.stop()
        shutil.rmtree(path, ignore_errors=True)


async def _show(url: str, *names: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [str(await conn.fetchval(f"SHOW {name}")) for name in names]
    finally:
        await conn.close()


def test_start_keeps_production_settings_stop_is_clean_and_a_restart_reuses_the_data(root: Path) -> None:
    server = EmbeddedPostgres(root)
    endpoint = server.start()
    assert server.started_here
    url = endpoint.url("postgres", driver="")
    fsync, autovacuum, listen, checkpoint = asyncio.run(
        _show(url, "fsync", "autovacuum", "listen_addresses", "checkpoint_timeout")
    )
    assert (fsync, autovacuum, listen, checkpoint) == ("on", "on", "", SETTINGS["checkpoint_timeout"])

    async def write() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE kept (n int)")
            await conn.execute("INSERT INTO kept VALUES (42)")
        finally:
            await conn.close()

    asyncio.run(write())
    # a second process attaches to the running server and does not own it
    other = EmbeddedPostgres(root)
    assert other.start() == endpoint and not other.started_here

    server.stop()
    assert server.running() is None and not (root / "data" / "postmaster.pid").exists()

    with serving(root) as again:

        async def read() -> int:
            conn = await asyncpg.connect(again.url("postgres", driver=""))
            try:
                return int(await conn.fetchval("SELECT n FROM kept"))
            finally:
                await conn.close()

        assert asyncio.run(read()) == 42
    assert EmbeddedPostgres(root).running() is None, "serving() stops the server it started"


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only when started as root")
def test_stop_works_when_a_parent_directory_lost_its_traverse_bit(root: Path) -> None:
    server = EmbeddedPostgres(root)
    server.start()
    root.parent.chmod(0o700)  # as pytest does to its base temporary directory in another session
    server.stop()
    assert server.running() is None


def test_a_stale_pid_file_is_not_a_running_server(root: Path) -> None:
    server = EmbeddedPostgres(root)
    server.start()
    server.stop()
    pid_file = root / "data" / "postmaster.pid"
    # a crash leaves the file; its pid now names another program (this test's own process)
    pid_file.write_text(f"{os.getpid()}\n{root / 'data'}\n0\n5432\n{root / 'socket'}\n\n0 0\nready\n")
    assert server.running() is None
    server.stop()  # must signal nothing: that pid is not a postgres
    assert pid_file.exists(), "stop() acted on a server that is not there"

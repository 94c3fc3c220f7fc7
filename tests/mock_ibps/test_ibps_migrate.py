"""Migrations from code and the command line: idempotent, and they seed the scheme accounts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from mock_ibps.cli import main
from mock_ibps.db import create_engine
from mock_ibps.migrate import upgrade
from mock_ibps.models import FUNDING_ACCOUNT_ID, LINK_ACCOUNT_ID, accounts


async def _scheme_accounts(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(accounts.c.account_id, accounts.c.kind))
            return {row.account_id: row.kind for row in rows}
    finally:
        await engine.dispose()


async def test_upgrade_twice_from_a_running_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dir' / 'ibps.db'}"
    upgrade(url)  # called from the loop's own thread: runs on a worker thread
    await asyncio.to_thread(upgrade, url)
    assert await _scheme_accounts(url) == {LINK_ACCOUNT_ID: "LINK", FUNDING_ACCOUNT_ID: "FUNDING"}


async def test_cli_migrate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli' / 'ibps.db'}"
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", url)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert set(await _scheme_accounts(url)) == {LINK_ACCOUNT_ID, FUNDING_ACCOUNT_ID}


async def test_cli_migrate_on_each_backend(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the session's database is migrated already: migrating it again is a no-op that returns 0
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", database_url)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert set(await _scheme_accounts(database_url)) == {LINK_ACCOUNT_ID, FUNDING_ACCOUNT_ID}


def test_cli_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        main([])

"""Migrations from code and the command line: idempotent, and they seed the scheme accounts."""

from __future__ import annotations

import asyncio

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


async def test_upgrade_twice_from_a_running_loop(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url)  # called from the loop's own thread: runs on a worker thread
    await asyncio.to_thread(upgrade, url)
    assert await _scheme_accounts(url) == {LINK_ACCOUNT_ID: "LINK", FUNDING_ACCOUNT_ID: "FUNDING"}


async def test_cli_migrate(empty_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = empty_database_url
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", url)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert set(await _scheme_accounts(url)) == {LINK_ACCOUNT_ID, FUNDING_ACCOUNT_ID}


def test_cli_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        main([])

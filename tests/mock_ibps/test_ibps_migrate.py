"""Migrations from code and the command line: idempotent, and they seed the scheme accounts. Without a
database URL, each way in says how to set one."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from mock_ibps.cli import main
from mock_ibps.db import DatabaseNotConfigured, create_engine
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


async def test_cli_migrate_again_is_a_no_op(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the session's database is migrated already (other tests may have opened accounts in it):
    # migrating it again is a no-op that returns 0 and leaves the scheme accounts as they are
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", database_url)
    before = await _scheme_accounts(database_url)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    after = await _scheme_accounts(database_url)
    assert after == before
    assert {LINK_ACCOUNT_ID: "LINK", FUNDING_ACCOUNT_ID: "FUNDING"}.items() <= after.items()


def test_cli_requires_a_command() -> None:
    with pytest.raises(SystemExit):
        main([])


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["serve", "--no-migrate"]])
def test_cli_without_a_database_url_says_how_to_set_one(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MOCK_IBPS_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as exited:  # as from any command line's usage error
        main(command)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "MOCK_IBPS_DATABASE_URL is not set" in err and "postgresql+asyncpg://" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("url", ["", "  "])
def test_no_database_url_is_refused_before_connecting(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOCK_IBPS_DATABASE_URL", raising=False)  # migrate's fallback
    with pytest.raises(DatabaseNotConfigured, match="MOCK_IBPS_DATABASE_URL"):
        create_engine(url)
    with pytest.raises(DatabaseNotConfigured, match="MOCK_IBPS_DATABASE_URL"):
        upgrade(url)

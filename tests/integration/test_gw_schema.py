"""The gateway's migrations build the schema its metadata declares, and migration 0008 upgrades a
ledger in use (and refuses one that breaks its constraints)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pgtest
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from gateway_stack import Stack
from gw_support import Harness
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from fpslink import migrate
from fpslink.db import create_engine
from fpslink.invariants import check_invariants
from fpslink.models import metadata

BEFORE = "0007_fillfactor"
SCRATCH = f"fpslink_t_gw_schema_{pgtest.RUN}"

_CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint AS c JOIN pg_namespace AS n ON n.oid = c.connamespace
WHERE n.nspname = 'public' AND c.conrelid <> 0 AND c.conrelid::regclass::text <> 'alembic_version'
"""
_INDEXES = (
    "SELECT tablename, indexname, indexdef FROM pg_indexes"
    " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
)
_LEDGER_CONSTRAINTS = (
    "SELECT conname FROM pg_constraint WHERE contype IN ('c', 'f')"
    " AND conrelid IN ('ledger_accounts'::regclass, 'ledger_transfers'::regclass, 'payments'::regclass)"
)


async def _schema(url: str) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(constraints, indexes) of a database, each as (table, name, definition)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        constraints = {tuple(row) for row in await conn.fetch(_CONSTRAINTS)}
        indexes = {tuple(row) for row in await conn.fetch(_INDEXES)}
    finally:
        await conn.close()
    return constraints, indexes


async def _fetch(url: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return [row[0] for row in await conn.fetch(sql)]
    finally:
        await conn.close()


def _differences(sync: Connection) -> list[Any]:
    return compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)


async def test_the_migrations_build_what_the_metadata_declares(stack: Stack) -> None:
    """Columns, types, keys and indexes as Alembic compares them; CHECK constraints, which it does
    not compare, by their definitions in a database built from the metadata alone."""
    engine = create_engine(stack.gateway_db, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()
    declared = await pgtest.recreate(SCRATCH)
    try:
        engine = create_engine(declared, pool_size=1)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        finally:
            await engine.dispose()
        (migrated_constraints, migrated_indexes), (declared_constraints, declared_indexes) = (
            await _schema(stack.gateway_db),
            await _schema(declared),
        )
    finally:
        await pgtest.drop(SCRATCH)
    assert sorted(migrated_constraints ^ declared_constraints) == []
    assert sorted(migrated_indexes ^ declared_indexes) == []
    assert any(name == "ck_ledger_accounts_held_within_balance" for _, name, _ in declared_constraints)


async def test_0008_upgrades_a_ledger_in_use(harness: Harness, stack: Stack) -> None:
    """Settled payments both ways, one IBPS refused (its FPS transfer voided), one refused at
    acceptance and an account opened at 0.00: the ledger satisfies the invariants, and 0008 goes
    down and up again on it."""
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    hk_account, cn_account = await h.account(hk, "HKD", "5000.00"), await h.account(cn, "CNY", "5000.00")
    await h.account(hk, "HKD", "0.00")
    statuses = [
        (
            await h.pay(hk, debtor=hk_account, creditor_account=cn_account, amount=amount, currency=currency)
        ).json()["status"]
        for amount, currency in (("100.00", "HKD"), ("404.04", "CNY"), ("99999.00", "HKD"))
    ]
    southbound = await h.pay(
        cn, debtor=cn_account, creditor_account=hk_account, amount="50.00", currency="CNY"
    )
    assert (*statuses, southbound.json()["status"]) == ("SETTLED", "REJECTED", "REJECTED", "SETTLED")
    assert (await check_invariants(h.gw)).ok
    added = set(await _fetch(stack.gateway_db, _LEDGER_CONSTRAINTS))
    assert len(added) == 16
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(stack.gateway_db), BEFORE)
    try:
        assert not set(await _fetch(stack.gateway_db, _LEDGER_CONSTRAINTS))
    finally:
        await asyncio.to_thread(migrate.upgrade, stack.gateway_db)
    assert set(await _fetch(stack.gateway_db, _LEDGER_CONSTRAINTS)) == added


async def test_0008_refuses_a_ledger_that_breaks_it() -> None:
    """A hold larger than its balance stops the upgrade, naming the constraint; the database stays
    at 0007 and upgrades once the row is mended."""
    url = await pgtest.recreate(SCRATCH)
    try:
        await asyncio.to_thread(migrate.upgrade, url, BEFORE)
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(
                "INSERT INTO ledger_accounts (account_id, currency, kind, balance_minor, held_minor)"
                " VALUES ('FPS-OVERHELD', 'HKD', 'CUSTOMER', 100, 101)"
            )
            with pytest.raises(IntegrityError, match="ck_ledger_accounts_held_within_balance"):
                await asyncio.to_thread(migrate.upgrade, url)
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == BEFORE
            await conn.execute(
                "UPDATE ledger_accounts SET held_minor = 100 WHERE account_id = 'FPS-OVERHELD'"
            )
            await asyncio.to_thread(migrate.upgrade, url, "0008_ledger_constraints")
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == "0008_ledger_constraints"
        finally:
            await conn.close()
    finally:
        await pgtest.drop(SCRATCH)

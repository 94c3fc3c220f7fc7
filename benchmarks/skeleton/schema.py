"""The skeleton's two schemas and their seeding, shared by its services and the throughput benchmark."""

from __future__ import annotations

from typing import Any

FRONT_SCHEMA = """
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    balance_minor BIGINT NOT NULL
);
CREATE TABLE transfers (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id TEXT NOT NULL UNIQUE,
    debit_account_id TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""

BACK_SCHEMA = """
CREATE TABLE credits (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""

OPENING_MINOR = 10_000_000_000


def account_ids(count: int) -> list[str]:
    return [f"SKEL{i:06d}" for i in range(count)]


async def create(front: Any, back: Any, *, accounts: int) -> None:
    """Create both schemas (asyncpg connections) and open `accounts` funded accounts at the front."""
    await front.execute(FRONT_SCHEMA)
    await back.execute(BACK_SCHEMA)
    await front.executemany(
        "INSERT INTO accounts (account_id, balance_minor) VALUES ($1, $2)",
        [(account_id, OPENING_MINOR) for account_id in account_ids(accounts)],
    )


async def audit(front: Any, back: Any, *, accounts: int) -> list[str]:
    """Breaks: money created or lost at the front, and payments missing on either side."""
    breaks: list[str] = []
    total = await front.fetchval("SELECT COALESCE(SUM(balance_minor), 0) FROM accounts")
    if total != OPENING_MINOR * accounts:
        breaks.append(f"front balances sum to {total}, expected {OPENING_MINOR * accounts}")
    front_ids = {r["payment_id"] for r in await front.fetch("SELECT payment_id FROM transfers")}
    back_ids = {r["payment_id"] for r in await back.fetch("SELECT payment_id FROM credits")}
    if missing := len(front_ids - back_ids):
        breaks.append(f"{missing} payments posted at the front have no credit at the back")
    if unexpected := len(back_ids - front_ids):
        breaks.append(f"{unexpected} credits at the back have no transfer at the front")
    return breaks

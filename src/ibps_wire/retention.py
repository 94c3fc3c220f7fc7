"""Retention's pieces that both ledgers share: the carried-forward entries that replace purged
postings, and the lock that lets one process at a time purge a database.

A purge removes whole transfers, each of which moves one amount from one account to another in one
currency, so whatever is removed sums to zero per currency. What it removes from each account's
postings is put back as one CARRIED transfer between the account and the currency's funding account,
which keeps every account's derived balance (the funding account's too) to the minor unit, and so
the ledger's sum per currency and every cached balance still equal the postings
(docs/decisions/0007-retention.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from ibps_wire import pg

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Posting:
    """A posted transfer (or a carried entry) leaving the ledger: `amount_minor` from debit to credit."""

    debit_account_id: str
    credit_account_id: str
    currency: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class CarriedEntry:
    """The balance that purged postings brought to `account_id`, as one posted transfer between it and
    its currency's funding account (from the funding account when positive)."""

    account_id: str
    debit_account_id: str
    credit_account_id: str
    currency: str
    amount_minor: int


def carry_forward(removed: Iterable[Posting], *, funding_account: Callable[[str], str]) -> list[CarriedEntry]:
    """The carried entries that replace `removed` (the purged postings and the carried entries of the
    accounts they touch), one per account whose net is not zero, in account order.

    The funding account gets no entry of its own: each entry has it as the other side, so its
    derived balance changes by minus the sum of the others' nets, which is its own net exactly,
    since every posting is balanced in one currency.
    """
    nets: dict[tuple[str, str], int] = defaultdict(int)
    for posting in removed:
        nets[(posting.credit_account_id, posting.currency)] += posting.amount_minor
        nets[(posting.debit_account_id, posting.currency)] -= posting.amount_minor
    entries: list[CarriedEntry] = []
    for (account_id, currency), net in sorted(nets.items()):
        funding = funding_account(currency)
        if account_id == funding or net == 0:
            continue
        debit, credit = (funding, account_id) if net > 0 else (account_id, funding)
        entries.append(CarriedEntry(account_id, debit, credit, currency, abs(net)))
    return entries


def kept_from(today: date, keep_days: int) -> date:
    """The first business date kept: today and the `keep_days` before it; every earlier one is purged."""
    return today - timedelta(days=keep_days)


async def run_locked(
    connect: Callable[[], AsyncConnection], key: int, work: Callable[[AsyncConnection], Awaitable[T]]
) -> T | None:
    """`work` on a connection of its own while its session holds the advisory lock `key`; None, at once,
    when another session holds it: one purger per database, however many processes try.

    A session lock, so `work` may commit many short transactions under it; a process that dies loses
    it with its connection, so no lease can outlive its holder. On an error the connection is
    discarded, and the lock with it.
    """
    async with connect() as conn:
        raw = await pg.raw(conn)
        if not await raw.fetchval("SELECT pg_try_advisory_lock($1)", key):
            return None
        try:
            result = await work(conn)
        except BaseException:
            await conn.invalidate()
            raise
        await raw.execute("SELECT pg_advisory_unlock($1)", key)
        return result

"""Limit policy, free of I/O: which limits apply, in which currency, on which business day.

Usage is kept per (debtor account, direction): northbound in HKD, southbound in CNY, booked to the
UTC+8 business date on which the payment was accepted (docs/architecture.md#rulings, R5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from fpslink.money import Currency
from fpslink.vocabulary import Direction, Period, State

HK_TZ = timezone(timedelta(hours=8), "UTC+8")

UsageKey = tuple[str, str, str, str]
"""(account_id, direction, period, period_key): one row of limit usage."""


@dataclass(frozen=True, slots=True)
class LimitSet:
    currency: Currency
    per_transaction: Decimal
    daily: Decimal | None
    yearly: Decimal | None

    def for_period(self, period: Period) -> Decimal | None:
        return self.daily if period is Period.DAY else self.yearly


def business_date(at: datetime) -> date:
    """The UTC+8 calendar date of an instant: the day usage is booked to."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(HK_TZ).date()


def period_key(period: Period, day: date) -> str:
    return day.isoformat() if period is Period.DAY else f"{day.year:04d}"


def usage_key(account_id: str, direction: Direction, period: Period, day: date) -> UsageKey:
    """The usage row a payment of business date `day` counts against in `period`."""
    return account_id, direction.value, period.value, period_key(period, day)


def in_service_hours(at: datetime, window: tuple[time, time]) -> bool:
    """Whether `at` falls in the UTC+8 window [start, end)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(HK_TZ).time().replace(tzinfo=None)
    start, end = window
    return start <= local < end or (end == time.max and local >= start)


class LimitBreach(StrEnum):
    PER_TRANSACTION = "per-transaction"
    DAILY = "daily"
    YEARLY = "yearly"


def check_per_transaction(limits: LimitSet, amount: Decimal) -> LimitBreach | None:
    return LimitBreach.PER_TRANSACTION if amount > limits.per_transaction else None


Amount = TypeVar("Amount", int, Decimal)
"""Minor units (acceptance, on locked rows) or a Decimal (the limits a bank reads): never mixed."""


def fits(limit: Amount | None, used: Amount, amount: Amount) -> bool:
    """Whether `amount` more still fits under `limit` (None: no limit)."""
    return limit is None or used + amount <= limit


RELEASED: frozenset[State] = frozenset({State.REJECTED, State.ABORTING})
"""States whose usage is released: an abort decision gives the payment's usage back."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a payment reserves, read from its row: `limit_minor` on its day's and year's usage."""

    account_id: str
    direction: str
    state: State
    business_date: str
    """UTC+8 date of acceptance, YYYY-MM-DD: the day (and year) its usage is booked to (R5)."""
    limit_minor: int


def reserved_usage(reservations: Iterable[Reservation]) -> dict[UsageKey, int]:
    """What the payments reserve on each usage row: all but those rejected or being aborted. I5 holds
    each row to this (plus what purged payments had reserved), and retention carries it forward."""
    reserved: dict[UsageKey, int] = defaultdict(int)
    for r in reservations:
        if r.state in RELEASED:
            continue
        for period, key in ((Period.DAY, r.business_date), (Period.YEAR, r.business_date[:4])):
            reserved[(r.account_id, r.direction, period.value, key)] += r.limit_minor
    return dict(reserved)

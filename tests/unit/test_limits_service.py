"""The limits service on fake units of work: an account's limits and what is left of them today."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fpslink.config import Settings
from fpslink.errors import NotFound
from fpslink.limits.service import LimitsService, period_keys
from fpslink.money import Currency
from fpslink.participants.repository import AccountRecord, ParticipantRecord
from fpslink.participants.service import ParticipantsService
from fpslink.principal import OPERATOR, Principal
from fpslink.vocabulary import Direction, Period, System
from unit.fakes import FakeDatabase, FakeIbps

NOW = datetime(2026, 6, 22, 17, 30, tzinfo=UTC)  # 01:30 on 23 June in Hong Kong


@pytest.fixture
def db() -> FakeDatabase:
    db = FakeDatabase()
    for bank, system, account, currency in (
        ("HKBANK", System.FPS, "HKACC", Currency.HKD),
        ("CNBANK", System.IBPS, "CNACC", Currency.CNY),
    ):
        db.rows.participants[bank] = ParticipantRecord(bank, bank, system)
        db.rows.accounts[account] = AccountRecord(account, bank, system, currency, "CHAN Tai Man")
    return db


@pytest.fixture
def limits(db: FakeDatabase) -> LimitsService:
    settings = Settings()
    participants = ParticipantsService(db.uow, FakeIbps(), clock=lambda: NOW, settings=settings)
    return LimitsService(db.uow, clock=lambda: NOW, settings=settings, participants=participants)


async def test_northbound_usage_counts_against_todays_and_this_years_limits(
    limits: LimitsService, db: FakeDatabase
) -> None:
    keys = period_keys(NOW)
    assert keys[Period.DAY] == "2026-06-23"  # the UTC+8 business date
    db.rows.limit_usage[("HKACC", Direction.NORTHBOUND, Period.DAY, keys[Period.DAY])] = 250_000
    db.rows.limit_usage[("HKACC", Direction.NORTHBOUND, Period.DAY, "2026-06-22")] = 999_999  # yesterday
    found = await limits.account_limits(Principal("HKBANK"), "HKACC")
    assert (found.direction, found.currency, found.business_date) == (
        Direction.NORTHBOUND,
        Currency.HKD,
        "2026-06-23",
    )
    lines = {line.period: line for line in found.lines}
    assert (lines[Period.DAY].used, lines[Period.DAY].remaining) == (Decimal("2500"), Decimal("7500"))
    assert lines[Period.YEAR].used == Decimal(0)


async def test_southbound_has_no_daily_or_yearly_limit_by_default(limits: LimitsService) -> None:
    found = await limits.account_limits(OPERATOR, "CNACC")
    assert (found.direction, found.currency) == (Direction.SOUTHBOUND, Currency.CNY)
    assert all(line.limit is None and line.remaining is None for line in found.lines)


async def test_another_banks_limits_are_not_found(limits: LimitsService) -> None:
    with pytest.raises(NotFound):
        await limits.account_limits(Principal("CNBANK"), "HKACC")

"""Which limits apply (from settings) and how much of them an account has used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fpslink.config import Settings
from fpslink.db import Clock
from fpslink.limits.policy import LimitSet, business_date, period_key
from fpslink.money import Currency, from_minor, to_minor
from fpslink.participants.service import ParticipantsService
from fpslink.principal import Principal
from fpslink.uow import UnitsOfWork
from fpslink.vocabulary import Direction, Period, System


def limits_for(settings: Settings, direction: Direction) -> LimitSet:
    if direction is Direction.NORTHBOUND:
        return LimitSet(
            currency=Currency.HKD,
            per_transaction=settings.northbound_per_txn_hkd,
            daily=settings.northbound_daily_hkd,
            yearly=settings.northbound_yearly_hkd,
        )
    return LimitSet(
        currency=Currency.CNY,
        per_transaction=settings.southbound_per_txn_cny,
        daily=settings.southbound_daily_cny,
        yearly=settings.southbound_yearly_cny,
    )


def direction_of(system: System) -> Direction:
    """Direction follows the debtor account's system (docs/architecture.md#rulings, R1)."""
    return Direction.NORTHBOUND if system is System.FPS else Direction.SOUTHBOUND


def period_keys(at: datetime) -> dict[Period, str]:
    day = business_date(at)
    return {period: period_key(period, day) for period in Period}


def limit_minor(limits: LimitSet, period: Period) -> int | None:
    value = limits.for_period(period)
    return None if value is None else to_minor(value, limits.currency)


@dataclass(frozen=True, slots=True)
class UsageLine:
    period: Period
    period_key: str
    limit: Decimal | None
    used: Decimal
    remaining: Decimal | None


@dataclass(frozen=True, slots=True)
class AccountLimits:
    account_id: str
    direction: Direction
    currency: Currency
    per_transaction: Decimal
    business_date: str
    lines: list[UsageLine]


class LimitsService:
    """An account's limits and their usage; built once per process (`fpslink.context.Gateway`).
    Acceptance reserves usage in its own batch transaction (`fpslink.payments.acceptance`)."""

    def __init__(
        self, uow: UnitsOfWork, *, clock: Clock, settings: Settings, participants: ParticipantsService
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings
        self._participants = participants

    async def account_limits(self, principal: Principal, account_id: str) -> AccountLimits:
        account = await self._participants.owned_account(principal, account_id)
        direction = direction_of(account.system)
        limits = limits_for(self._settings, direction)
        now = self._clock()
        keys = period_keys(now)
        async with self._uow() as tx:
            used = await tx.limits.usage(account_id=account_id, direction=direction, keys=keys)
        lines = []
        for period, key in keys.items():
            limit = limits.for_period(period)
            used_amount = from_minor(used[period], limits.currency)
            lines.append(
                UsageLine(
                    period=period,
                    period_key=key,
                    limit=limit,
                    used=used_amount,
                    remaining=None if limit is None else max(limit - used_amount, Decimal(0)),
                )
            )
        return AccountLimits(
            account_id=account_id,
            direction=direction,
            currency=limits.currency,
            per_transaction=limits.per_transaction,
            business_date=business_date(now).isoformat(),
            lines=lines,
        )

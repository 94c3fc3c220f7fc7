"""Which payments of a batch fit their limits and their debtor's funds, decided in pure code.

Acceptance reads (locks the batch's limit usage rows and debtor balances), calls `plan`, and writes
what it returns, the shape of mock_ibps's `plan_batch`: the decision can be tested without a
database, and the code that runs is the code the tests check. Payments are decided in arrival
order; each one that fits changes the usage and funds the next one sees, and one that does not
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from fpslink.ledger import repository as ledger
from fpslink.ledger.domain import Transfer
from fpslink.ledger.repository import link_account
from fpslink.limits.policy import UsageKey, fits
from fpslink.money import Currency, Money
from fpslink.vocabulary import Direction, Period, TransferKind

Funds = tuple[str, int, int]
"""(currency, balance, held) of a debtor account, in minor units."""


@dataclass(frozen=True, slots=True)
class LimitLine:
    """One limit a payment counts against: its usage row, its cap in minor units (None: no cap)
    and the cap as configured, for the message of a refusal."""

    period: Period
    key: UsageKey
    cap_minor: int | None
    limit: Decimal | None


@dataclass(frozen=True, slots=True)
class Ask:
    """A bound payment asking to be accepted."""

    payment_id: str
    direction: Direction
    limit_currency: Currency
    limit_minor: int
    """The amount that counts against the limits, in `limit_currency`."""
    lines: tuple[LimitLine, ...]
    debtor_account_id: str
    creditor_account_id: str | None
    source: Money
    target: Money
    now: datetime


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    reason: str


@dataclass(slots=True)
class Plan:
    """What acceptance writes: the new (used, cap) of each usage row that changed, the holds to
    add to debtor accounts, the pending FPS transfers, and the payments refused."""

    usage: dict[UsageKey, tuple[int, int | None]] = field(default_factory=dict)
    holds: dict[str, int] = field(default_factory=dict)
    pending: list[Transfer] = field(default_factory=list)
    refused: dict[str, Refusal] = field(default_factory=dict)


def plan(asks: Sequence[Ask], usage: Mapping[UsageKey, int], funds: Mapping[str, Funds]) -> Plan:
    """Decide every ask in order against the locked `usage` and `funds` (neither is changed)."""
    used = dict(usage)
    available = dict(funds)
    result = Plan()
    for ask in asks:
        refusal = _over_limit(ask, used)
        if refusal is None and ask.direction is Direction.NORTHBOUND:
            refusal = _short_of_funds(ask, available)
        if refusal is not None:
            result.refused[ask.payment_id] = refusal
            continue
        for line in ask.lines:
            used[line.key] = used.get(line.key, 0) + ask.limit_minor
            result.usage[line.key] = (used[line.key], line.cap_minor)
        if ask.direction is Direction.NORTHBOUND:
            currency, balance, held = available[ask.debtor_account_id]
            available[ask.debtor_account_id] = (currency, balance, held + ask.source.minor)
            result.holds[ask.debtor_account_id] = (
                result.holds.get(ask.debtor_account_id, 0) + ask.source.minor
            )
            result.pending.append(
                ledger.pending_transfer(
                    payment_id=ask.payment_id,
                    kind=TransferKind.DEBIT,
                    debit=ask.debtor_account_id,
                    credit=link_account(ask.source.currency),
                    currency=ask.source.currency,
                    amount_minor=ask.source.minor,
                    now=ask.now,
                )
            )
        else:
            if ask.creditor_account_id is None:
                raise ValueError(f"southbound payment {ask.payment_id} has no FPS creditor account")
            result.pending.append(
                ledger.pending_transfer(
                    payment_id=ask.payment_id,
                    kind=TransferKind.CREDIT,
                    debit=link_account(ask.target.currency),
                    credit=ask.creditor_account_id,
                    currency=ask.target.currency,
                    amount_minor=ask.target.minor,
                    now=ask.now,
                )
            )
    return result


def _over_limit(ask: Ask, used: Mapping[UsageKey, int]) -> Refusal | None:
    for line in ask.lines:
        if not fits(line.cap_minor, used.get(line.key, 0), ask.limit_minor):
            name = "daily" if line.period is Period.DAY else "yearly"
            return Refusal(
                "AM14",
                f"the {name} {ask.direction.value.lower()} limit of "
                f"{line.limit} {ask.limit_currency.value} would be exceeded",
            )
    return None


def _short_of_funds(ask: Ask, available: Mapping[str, Funds]) -> Refusal | None:
    """The debtor's available balance (balance less holds) must cover the debit, in its currency."""
    currency, balance, held = available.get(ask.debtor_account_id, ("", 0, 0))
    if currency != ask.source.currency.value or balance - held < ask.source.minor:
        return Refusal("AM04", "insufficient funds in the debtor account")
    return None

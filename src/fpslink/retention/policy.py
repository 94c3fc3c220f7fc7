"""What a retention pass may purge, decided from the time and the settings alone (no I/O).

Payments go by UTC+8 business date: the kept days are today and the `payment_retention_days`
before it, and reconciliation of a kept day must find every payment and FPS leg it matches. A
day's IBPS entries may belong to payments accepted just before its midnight (IBPS records a leg
within the settlement time-out of acceptance, give or take the two clocks' skew:
`reconciliation.domain.cut_off_window_s`), so a payment is purged only when it was accepted, and
last changed, that window before the first kept midnight. Timelines, webhook deliveries and keys
simply go by age (docs/decisions/0007-retention.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fpslink.config import Settings
from fpslink.limits.policy import Reservation, UsageKey, reserved_usage
from fpslink.reconciliation.domain import business_date_of, business_day_bounds, cut_off_window_s
from ibps_wire.retention import kept_from


@dataclass(frozen=True, slots=True)
class Horizon:
    """The cut-offs of one pass: what is older goes."""

    kept_from: date
    """The first business date whose payments are all kept, and can be reconciled."""
    payments_before: datetime
    """A final payment accepted and last changed before this is purged: the start of `kept_from`
    less the reconciliation's cut-off window."""
    quotes_before: datetime
    """A quote made before this has expired long before any payment kept could use it."""
    timeline_before: datetime
    deliveries_before: datetime
    """A finished webhook delivery is purged once its last attempt is older."""
    keys_expired_at: datetime
    """Keys whose `expires_at` is not after this are forgotten: now."""


def horizon(now: datetime, settings: Settings) -> Horizon:
    first_kept = kept_from(business_date_of(now), settings.payment_retention_days)
    payments_before = business_day_bounds(first_kept)[0] - timedelta(
        seconds=cut_off_window_s(settings.settlement_timeout_s)
    )
    return Horizon(
        kept_from=first_kept,
        payments_before=payments_before,
        quotes_before=payments_before - timedelta(seconds=settings.quote_ttl_s),
        timeline_before=now - timedelta(days=settings.timeline_retention_days),
        deliveries_before=now - timedelta(days=settings.webhook_retention_days),
        keys_expired_at=now,
    )


def carried_usage(purged: Iterable[Reservation]) -> dict[UsageKey, int]:
    """What the purged payments reserved on each usage row, to carry forward for I5 (the rows
    themselves keep their usage: the limits still count it)."""
    return {key: amount for key, amount in reserved_usage(purged).items() if amount}


def closed_periods(first_kept: date) -> tuple[str, str]:
    """(day, year) period keys before which a usage row's period is over for good: usage of a date
    before the first kept one, or of a year before its year, can no longer change."""
    return first_kept.isoformat(), f"{first_kept.year:04d}"

"""Retention's pure decisions: the carried-forward entries, the cut-offs of a pass, what usage is carried,
and the settings that keep what goes with a payment no longer than the payment."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from fpslink.config import Settings
from fpslink.limits.policy import Reservation
from fpslink.retention import policy
from fpslink.vocabulary import State
from ibps_wire.retention import CarriedEntry, Posting, carry_forward, kept_from

FUNDING = {"HKD": "FPS-FUNDING-HKD", "CNY": "FPS-FUNDING-CNY"}
NOW = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)  # noon in Hong Kong


def nets(postings: list[Posting] | list[CarriedEntry]) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for p in postings:
        found[p.credit_account_id] += p.amount_minor
        found[p.debit_account_id] -= p.amount_minor
    return {account: net for account, net in found.items() if net}


def test_carried_entries_give_every_account_its_net_and_the_funding_account_the_rest() -> None:
    removed = [
        Posting("HK1", "FPS-LINK-HKD", "HKD", 10_000),  # northbound debits
        Posting("HK2", "FPS-LINK-HKD", "HKD", 2_500),
        Posting("FPS-LINK-HKD", "HK1", "HKD", 4_000),  # a southbound credit
        Posting("FPS-LINK-CNY", "HK3", "CNY", 700),
        Posting("FPS-FUNDING-HKD", "HK2", "HKD", 1_000),  # an earlier carried entry of HK2
    ]
    entries = carry_forward(removed, funding_account=FUNDING.__getitem__)
    assert nets(entries) == nets(removed)
    assert [(e.account_id, e.debit_account_id, e.credit_account_id, e.amount_minor) for e in entries] == [
        ("FPS-LINK-CNY", "FPS-LINK-CNY", "FPS-FUNDING-CNY", 700),
        ("FPS-LINK-HKD", "FPS-FUNDING-HKD", "FPS-LINK-HKD", 8_500),
        ("HK1", "HK1", "FPS-FUNDING-HKD", 6_000),
        ("HK2", "HK2", "FPS-FUNDING-HKD", 1_500),
        ("HK3", "FPS-FUNDING-CNY", "HK3", 700),
    ]
    assert {e.account_id: e.currency for e in entries}["HK3"] == "CNY"


def test_an_account_whose_purged_postings_cancel_out_gets_no_entry() -> None:
    removed = [Posting("HK1", "FPS-LINK-HKD", "HKD", 500), Posting("FPS-LINK-HKD", "HK1", "HKD", 500)]
    assert carry_forward(removed, funding_account=FUNDING.__getitem__) == []


def test_the_kept_dates_are_today_and_the_retention_before_it() -> None:
    assert kept_from(date(2026, 6, 22), 30) == date(2026, 5, 23)


def test_a_pass_keeps_whole_days_and_the_cut_off_window_before_the_first() -> None:
    settings = Settings(
        payment_retention_days=2, timeline_retention_days=1, webhook_retention_days=2, idempotency_ttl_h=24
    )
    h = policy.horizon(NOW, settings)
    assert h.kept_from == date(2026, 6, 20)
    first_midnight = datetime(2026, 6, 19, 16, 0, tzinfo=UTC)  # 20 June 00:00 in Hong Kong
    window = timedelta(seconds=settings.settlement_timeout_s + 60)
    assert h.payments_before == first_midnight - window
    assert h.quotes_before == h.payments_before - timedelta(seconds=settings.quote_ttl_s)
    assert h.timeline_before == NOW - timedelta(days=1)
    assert h.deliveries_before == NOW - timedelta(days=2)
    assert h.keys_expired_at == NOW
    assert policy.closed_periods(h.kept_from) == ("2026-06-20", "2026")


def test_only_what_still_reserved_usage_is_carried() -> None:
    def paid(state: State, amount: int, day: str = "2026-06-19") -> Reservation:
        return Reservation("HK1", "NORTHBOUND", state, day, amount)

    carried = policy.carried_usage(
        [paid(State.SETTLED, 100), paid(State.SETTLED, 50, "2026-06-18"), paid(State.REJECTED, 900)]
    )
    assert carried == {
        ("HK1", "NORTHBOUND", "DAY", "2026-06-19"): 100,
        ("HK1", "NORTHBOUND", "DAY", "2026-06-18"): 50,
        ("HK1", "NORTHBOUND", "YEAR", "2026"): 150,
    }


@pytest.mark.parametrize(
    "values",
    [
        {"payment_retention_days": 3, "timeline_retention_days": 4},
        {"payment_retention_days": 3, "webhook_retention_days": 4},
        {"payment_retention_days": 1, "idempotency_ttl_h": 48},
    ],
)
def test_nothing_that_goes_with_a_payment_may_outlive_it(values: dict[str, int]) -> None:
    with pytest.raises(ValidationError, match="cannot exceed FPSLINK_PAYMENT_RETENTION_DAYS"):
        Settings(**{"timeline_retention_days": 1, "webhook_retention_days": 1, **values})

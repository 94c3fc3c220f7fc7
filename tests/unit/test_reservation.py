"""`reservation.plan`: the acceptance decision on locked usage and funds, with no database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fpslink.limits.policy import UsageKey
from fpslink.money import Currency, Money
from fpslink.payments.reservation import Ask, LimitLine, Refusal, plan
from fpslink.vocabulary import Direction, Period, TransferKind, TransferStatus

NOW = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
DAILY_CAP = 1_000_000  # HKD 10,000.00
YEARLY_CAP = 20_000_000


def day_key(account: str, direction: Direction = Direction.NORTHBOUND) -> UsageKey:
    return (account, direction.value, Period.DAY.value, "2026-06-22")


def year_key(account: str, direction: Direction = Direction.NORTHBOUND) -> UsageKey:
    return (account, direction.value, Period.YEAR.value, "2026")


def north(payment_id: str, hkd_minor: int, *, debtor: str = "HK1", yearly: int | None = YEARLY_CAP) -> Ask:
    return Ask(
        payment_id=payment_id,
        direction=Direction.NORTHBOUND,
        limit_currency=Currency.HKD,
        limit_minor=hkd_minor,
        lines=(
            LimitLine(Period.DAY, day_key(debtor), DAILY_CAP, Decimal("10000.00")),
            LimitLine(
                Period.YEAR, year_key(debtor), yearly, None if yearly is None else Decimal(yearly) / 100
            ),
        ),
        debtor_account_id=debtor,
        creditor_account_id=None,
        source=Money.from_minor(hkd_minor, Currency.HKD),
        target=Money.from_minor(hkd_minor * 92 // 100, Currency.CNY),
        now=NOW,
    )


def south(payment_id: str, cny_minor: int, *, creditor: str | None = "HK9") -> Ask:
    debtor = "CN1"
    return Ask(
        payment_id=payment_id,
        direction=Direction.SOUTHBOUND,
        limit_currency=Currency.CNY,
        limit_minor=cny_minor,
        lines=(
            LimitLine(Period.DAY, day_key(debtor, Direction.SOUTHBOUND), None, None),
            LimitLine(Period.YEAR, year_key(debtor, Direction.SOUTHBOUND), None, None),
        ),
        debtor_account_id=debtor,
        creditor_account_id=creditor,
        source=Money.from_minor(cny_minor, Currency.CNY),
        target=Money.from_minor(cny_minor * 108 // 100, Currency.HKD),
        now=NOW,
    )


FUNDED = {"HK1": ("HKD", 5_000_000, 0), "HK2": ("HKD", 5_000_000, 0)}


def test_a_payment_that_fits_reserves_its_limits_holds_its_debit_and_prepares_its_transfer() -> None:
    result = plan([north("p1", 100_000)], {}, FUNDED)
    assert result.refused == {}
    assert result.usage == {day_key("HK1"): (100_000, DAILY_CAP), year_key("HK1"): (100_000, YEARLY_CAP)}
    assert result.holds == {"HK1": 100_000}
    [transfer] = result.pending
    assert transfer.payment_id == "p1" and transfer.kind is TransferKind.DEBIT
    assert (transfer.debit_account_id, transfer.credit_account_id) == ("HK1", "FPS-LINK-HKD")
    assert (transfer.amount_minor, transfer.currency, transfer.status) == (
        100_000,
        Currency.HKD,
        TransferStatus.PENDING,
    )
    assert transfer.resolved_at is None


def test_payments_are_decided_in_arrival_order_on_the_usage_the_earlier_ones_left() -> None:
    result = plan([north("p1", 600_000), north("p2", 400_000), north("p3", 1)], {}, FUNDED)
    assert result.refused == {
        "p3": Refusal("AM14", "the daily northbound limit of 10000.00 HKD would be exceeded")
    }
    assert result.usage[day_key("HK1")] == (DAILY_CAP, DAILY_CAP)  # exactly at the cap fits
    assert result.holds == {"HK1": 1_000_000}
    assert [t.payment_id for t in result.pending] == ["p1", "p2"]


def test_usage_already_booked_counts_and_a_refused_payment_changes_nothing() -> None:
    booked = {day_key("HK1"): 900_000, year_key("HK1"): 900_000}
    result = plan([north("big", 200_000), north("small", 100_000)], booked, FUNDED)
    assert set(result.refused) == {"big"}
    assert result.usage[day_key("HK1")] == (1_000_000, DAILY_CAP)
    assert result.holds == {"HK1": 100_000}


def test_the_yearly_limit_refuses_when_the_day_still_has_room() -> None:
    booked = {year_key("HK1"): YEARLY_CAP - 50}
    result = plan([north("p1", 100)], booked, FUNDED)
    assert result.refused["p1"].code == "AM14"
    assert "yearly" in result.refused["p1"].reason


def test_no_yearly_cap_means_no_yearly_refusal() -> None:
    booked = {year_key("HK1"): 10**12}
    assert plan([north("p1", 100, yearly=None)], booked, FUNDED).refused == {}


def test_funds_are_the_balance_less_what_is_held_including_earlier_payments_of_the_batch() -> None:
    funds = {"HK1": ("HKD", 300_000, 100_000)}
    result = plan([north("p1", 150_000), north("p2", 50_001), north("p3", 50_000)], {}, funds)
    assert result.refused == {"p2": Refusal("AM04", "insufficient funds in the debtor account")}
    assert result.holds == {"HK1": 200_000}
    # the refused payment reserved no limit either
    assert result.usage[day_key("HK1")] == (200_000, DAILY_CAP)


def test_a_debtor_account_in_another_currency_or_unknown_has_no_funds_for_it() -> None:
    funds = {"HK1": ("CNY", 10**9, 0)}
    result = plan([north("p1", 100), north("p2", 100, debtor="GONE")], {}, funds)
    assert {k: r.code for k, r in result.refused.items()} == {"p1": "AM04", "p2": "AM04"}
    assert result.holds == {} and result.pending == []


def test_southbound_needs_no_fps_funds_and_credits_the_fps_creditor_from_the_link() -> None:
    result = plan([south("s1", 50_000)], {}, {})
    assert result.refused == {} and result.holds == {}
    [transfer] = result.pending
    assert transfer.kind is TransferKind.CREDIT
    assert (transfer.debit_account_id, transfer.credit_account_id) == ("FPS-LINK-HKD", "HK9")
    assert (transfer.amount_minor, transfer.currency) == (54_000, Currency.HKD)
    assert result.usage[day_key("CN1", Direction.SOUTHBOUND)] == (50_000, None)


def test_the_inputs_are_left_as_they_were() -> None:
    booked = {day_key("HK1"): 1}
    funds = dict(FUNDED)
    plan([north("p1", 100), north("p2", 100, debtor="HK2")], booked, funds)
    assert booked == {day_key("HK1"): 1}
    assert funds == FUNDED


def test_a_first_payment_exactly_at_the_cap_fits_with_no_usage_row_yet() -> None:
    """No usage booked yet counts as zero: a payment of exactly the daily cap fits."""
    result = plan([north("p1", DAILY_CAP)], {}, {"HK1": ("HKD", DAILY_CAP, 0)})
    assert result.refused == {}
    assert result.usage[day_key("HK1")] == (DAILY_CAP, DAILY_CAP)
    assert result.holds == {"HK1": DAILY_CAP}, "the whole balance, exactly"


def test_the_refusal_names_the_limit_that_would_be_exceeded() -> None:
    booked = {year_key("HK1"): YEARLY_CAP}
    result = plan([north("p1", 1)], booked, FUNDED)
    reason = "the yearly northbound limit of 200000 HKD would be exceeded"
    assert result.refused["p1"] == Refusal("AM14", reason)


def test_the_pending_transfers_carry_the_payment_and_its_time() -> None:
    result = plan([north("p1", 100), south("s1", 200)], {}, FUNDED)
    assert [(t.payment_id, t.created_at) for t in result.pending] == [("p1", NOW), ("s1", NOW)]


def test_a_southbound_payment_without_an_fps_creditor_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="southbound payment s1 has no FPS creditor account"):
        plan([south("s1", 200, creditor=None)], {}, {})

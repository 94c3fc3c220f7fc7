"""Reconciliation rules without I/O: the FX check on integers, break descriptions, chart geometry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from fpslink.fx.domain import AmountType, RateSheet, convert
from fpslink.money import Currency
from fpslink.reconciliation.domain import (
    BreakType,
    business_day_bounds,
    describe,
    fx_consistent,
    latency_labels,
    rate_micro,
)
from fpslink.reconciliation.render import bar_chart, column_chart

SHEET = RateSheet(mid_hkd_cny=Decimal("0.92"), spread_bps=Decimal("25"))


def test_rate_micro_reads_stored_rates() -> None:
    assert rate_micro("0.917700") == 917_700
    assert rate_micro("1") == 1_000_000
    assert rate_micro("1.08424") == 1_084_240


def test_integer_fx_check_agrees_with_the_decimal_conversion() -> None:
    for source, target in (
        (Currency.HKD, Currency.CNY),
        (Currency.CNY, Currency.HKD),
        (Currency.CNY, Currency.CNY),
    ):
        for amount in ("0.11", "1.00", "999.99", "1000.00", "1234.57", "9999.99"):
            for kind in AmountType:
                c = convert(
                    SHEET,
                    source_currency=source,
                    target_currency=target,
                    amount=Decimal(amount),
                    amount_type=kind,
                )
                assert fx_consistent(
                    amount_type=kind.value,
                    source_minor=c.source.minor,
                    target_minor=c.target.minor,
                    rate=str(c.rate),
                )
                assert not fx_consistent(
                    amount_type=kind.value,
                    source_minor=c.source.minor + 1,
                    target_minor=c.target.minor - 1,
                    rate=str(c.rate),
                )


def test_business_day_is_utc_plus_8() -> None:
    start, end = business_day_bounds(date(2026, 6, 22))
    assert start == datetime(2026, 6, 21, 16, 0, tzinfo=UTC)
    assert (end - start).days == 1


def test_describe_gives_both_sides_and_an_action() -> None:
    row = {
        "break_type": "AMOUNT_MISMATCH",
        "side": "IBPS",
        "payment_id": "p1",
        "direction": "NORTHBOUND",
        "gateway_state": "SETTLED",
        "amount_type": "SEND",
        "source_minor": 100_000,
        "source_currency": "HKD",
        "target_minor": 91_770,
        "target_currency": "CNY",
        "rate": "0.917700",
        "fps_status": "POSTED",
        "fps_amount_minor": 100_000,
        "fps_currency": "HKD",
        "ibps_status": "POSTED",
        "ibps_amount_minor": 90_000,
        "ibps_currency": "CNY",
        "occurred_at": datetime(2026, 6, 22, 4, 0, tzinfo=UTC),
    }
    view = describe(row, as_of=datetime(2026, 6, 22, 5, 0, tzinfo=UTC))
    assert view.break_type is BreakType.AMOUNT_MISMATCH
    assert view.gateway_value == "SETTLED 1000.00 HKD -> 917.70 CNY at 0.917700"
    assert (view.fps_value, view.ibps_value, view.expected) == (
        "POSTED 1000.00 HKD",
        "POSTED 900.00 CNY",
        "917.70 CNY",
    )
    assert view.age_s == 3600
    assert view.suggested_action


def test_charts_scale_to_their_box() -> None:
    chart = column_chart("c", ["a", "b"], [("n", "#000", [5, 10]), ("s", "#111", [5, 0])])
    assert len(chart.bars) == 3
    assert all(bar["y"] >= 0 and bar["y"] + bar["h"] <= chart.height for bar in chart.bars)
    bars = bar_chart("b", [("X", 0), ("Y", 4)])
    assert len(bars.bars) == 1
    assert len(latency_labels()) == 10

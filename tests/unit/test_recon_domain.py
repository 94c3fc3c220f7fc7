"""Reconciliation rules without I/O: the FX check on integers, break descriptions, chart geometry."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from fpslink.fx.domain import AmountType, RateSheet, convert
from fpslink.money import Currency
from fpslink.reconciliation import tsv
from fpslink.reconciliation.domain import (
    CLOCK_SKEW_S,
    BreakType,
    business_day_bounds,
    cut_off_window_s,
    describe,
    fx_consistent,
    latency_labels,
    neighbour_entry,
    rate_micro,
)
from fpslink.reconciliation.render import CSV_COLUMNS, bar_chart, column_chart, timing_lines
from fpslink.reconciliation.report import fold_totals, timing_rows
from fpslink.reconciliation.repository import Run
from ibps_wire.schemas import TransferOut

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


def test_tsv_round_trips_nulls_escapes_and_integers() -> None:
    rows = [
        (1, "a\tb\\c\nd", None, 5, "x\r\x08\x0c\x0b"),
        (2, "", "plain", None, "天"),
    ]
    data = tsv.encode(rows)
    assert data.count(b"\n") == 2
    assert tsv.decode(data, width=5, int_columns=(0, 3)) == rows


def test_tsv_reads_what_postgresql_copy_writes() -> None:
    assert tsv.decode(b"7\t\\N\ta\\\\b\t\\101\\x42\n", width=4, int_columns=(0,)) == [(7, None, "a\\b", "AB")]
    with pytest.raises(ValueError):
        tsv.decode(b"1\t2\n", width=3)


def _group(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(
        (
            "state",
            "direction",
            "source_currency",
            "target_currency",
            "hour",
            "bucket",
            "mid_rate",
            "fps_kind",
            "fps_status",
            "fps_currency",
            "ibps_kind",
            "ibps_status",
            "ibps_currency",
            "source_minor",
            "target_minor",
            "fps_amount_minor",
            "ibps_amount_minor",
        )
    )
    base.update(in_day=1, fps_in_day=1, count=1)
    base.update(values)
    return base


def test_fold_totals_adds_groups_and_the_spread_of_each_mid_rate() -> None:
    settled = dict(
        state="SETTLED",
        direction="NORTHBOUND",
        source_currency="HKD",
        target_currency="CNY",
        hour=9,
        fps_kind="DEBIT",
        fps_status="POSTED",
        fps_currency="HKD",
        ibps_kind="CREDIT",
        ibps_status="POSTED",
        ibps_currency="CNY",
    )
    folded = fold_totals(
        [
            _group(
                **settled,
                bucket=0,
                mid_rate="0.920000",
                count=2,
                source_minor=200_000,
                target_minor=183_540,
                fps_amount_minor=200_000,
                ibps_amount_minor=183_540,
            ),
            _group(
                **settled,
                bucket=3,
                mid_rate="0.920000",
                count=1,
                source_minor=100_000,
                target_minor=91_770,
                fps_amount_minor=100_000,
                ibps_amount_minor=91_770,
            ),
            _group(
                in_day=0,
                state="SETTLED",
                fps_status="POSTED",
                fps_kind="DEBIT",
                fps_currency="HKD",
                fps_amount_minor=10,
                count=1,
            ),
            _group(
                in_day=0,
                fps_in_day=0,
                ibps_kind="CREDIT",
                ibps_status="VOIDED",
                ibps_currency="CNY",
                ibps_amount_minor=5,
                count=1,
            ),
        ]
    )
    assert folded["gateway"] == [
        {
            "direction": "NORTHBOUND",
            "state": "SETTLED",
            "source_currency": "HKD",
            "target_currency": "CNY",
            "count": 3,
            "source_minor": 300_000,
            "target_minor": 275_310,
        }
    ]
    (pair,) = folded["fx"]
    # 3,000.00 HKD at the 0.92 mid is 2,760.00 CNY; 2,753.10 was paid: 6.90 CNY, in millionths of a fen
    assert pair["spread_micro_minor"] == 300_000 * 920_000 - 275_310 * 1_000_000 == 690 * 1_000_000
    assert folded["latency"][0] == 2 and folded["latency"][3] == 1 and sum(folded["latency"]) == 3
    assert folded["hourly"] == [{"hour": 9, "direction": "NORTHBOUND", "count": 3, "settled": 3}]
    fps = {(r["kind"], r["status"]): r for r in folded["ledgers"]["FPS"]}
    assert fps[("DEBIT", "POSTED")] == {
        "kind": "DEBIT",
        "status": "POSTED",
        "currency": "HKD",
        "count": 4,
        "amount_minor": 300_010,
    }
    assert folded["ledgers"]["IBPS"][1]["status"] == "VOIDED"
    assert folded["unmatched"] == {
        "fps_other_date": 1,
        "ibps_other_date": 0,
        "ibps_voided_without_payment": 1,
        "fps_voided_without_payment": 0,
    }


def test_an_entry_on_a_neighbouring_day_is_a_timing_difference() -> None:
    day = date(2026, 11, 27)
    start, end = business_day_bounds(day)
    answer = {
        "seq": 7,
        "payment_id": "p-1",
        "kind": "CREDIT",
        "account_id": "CN1",
        "debit_account_id": "LINK",
        "credit_account_id": "CN1",
        "amount": "917.70",
        "currency": "CNY",
        "status": "POSTED",
        "reason_code": None,
        "created_at": (end + timedelta(milliseconds=50)).isoformat().replace("+00:00", "Z"),
        "resolved_at": None,
    }

    def transfer(**changes: Any) -> TransferOut:
        return TransferOut.model_validate_json(json.dumps({**answer, **changes}))

    entry = neighbour_entry(day, transfer())
    assert entry is not None
    assert (entry.day_offset, entry.amount_minor, entry.status, entry.kind) == (1, 91_770, "POSTED", "CREDIT")
    assert entry.created_at == end + timedelta(milliseconds=50)
    before = neighbour_entry(day, transfer(created_at=(start - timedelta(seconds=1)).isoformat()))
    assert before is not None and before.day_offset == -1
    # an entry of the day itself, or of a farther day, is no timing difference
    assert neighbour_entry(day, transfer(created_at=start.isoformat())) is None
    assert neighbour_entry(day, transfer(created_at=(end + timedelta(days=1)).isoformat())) is None
    tombstone = neighbour_entry(day, transfer(amount=None, kind=None, currency=None, status="VOIDED"))
    assert tombstone is not None and tombstone.amount_minor is None and tombstone.kind is None


def test_the_cut_off_window_covers_the_settlement_time_out_and_clock_skew() -> None:
    assert cut_off_window_s(30.0) == 30.0 + CLOCK_SKEW_S


def test_an_ibps_entry_of_a_neighbouring_day_stays_out_of_the_days_ibps_totals() -> None:
    row = dict(
        in_day=1,
        state="SETTLED",
        direction="NORTHBOUND",
        source_currency="HKD",
        target_currency="CNY",
        hour=23,
        bucket=0,
        mid_rate=None,
        fps_kind="DEBIT",
        fps_status="POSTED",
        fps_currency="HKD",
        fps_in_day=1,
        ibps_kind="CREDIT",
        ibps_status="POSTED",
        ibps_currency="CNY",
        count=1,
        source_minor=100_000,
        target_minor=91_770,
        fps_amount_minor=100_000,
        ibps_amount_minor=91_770,
    )
    folded = fold_totals([{**row, "ibps_day_offset": None}, {**row, "ibps_day_offset": 1}])
    assert [r["count"] for r in folded["ledgers"]["IBPS"]] == [1]
    assert [r["count"] for r in folded["ledgers"]["FPS"]] == [2]
    assert folded["gateway"][0]["count"] == 2


def test_timing_differences_are_csv_lines_of_their_own_category() -> None:
    moment = datetime(2026, 11, 27, 15, 59, 59, 900_000, tzinfo=UTC)
    items = timing_rows(
        [
            {
                "payment_id": "p-1",
                "direction": "NORTHBOUND",
                "gateway_state": "SETTLED",
                "created_at": moment,
                "want_ibps_minor": 91_770,
                "want_ibps_currency": "CNY",
                "ibps_status": "POSTED",
                "ibps_amount_minor": 91_770,
                "ibps_currency": "CNY",
                "ibps_created_at": moment + timedelta(milliseconds=150),
                "ibps_day_offset": 1,
            }
        ]
    )
    assert items[0]["ibps_business_date"] == "2026-11-28"
    assert items[0]["ibps_amount"] == items[0]["expected"] == "917.70 CNY"
    run = Run(
        run_id="r",
        business_date="2026-11-27",
        status="COMPLETED",
        created_at=moment,
        as_of=moment,
        completed_at=moment,
        break_count=0,
        summary={"timing_differences": {"count": 1, "items": items}},
        error=None,
    )
    (line,) = timing_lines(run)
    assert set(line) == set(CSV_COLUMNS)
    assert (line["category"], line["break_type"], line["ibps_value"]) == (
        "TIMING_DIFFERENCE",
        "",
        "POSTED 917.70 CNY",
    )

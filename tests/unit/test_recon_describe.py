"""How the report puts each break into words: every break type on each side, and the small helpers.

What the operator reads decides what they do: the expected value must be the leg of the side that
broke, in that leg's currency, and the age and action must be the break's own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from fpslink.reconciliation import domain
from fpslink.reconciliation.domain import (
    SUGGESTED_ACTION,
    BreakType,
    Side,
    age_text,
    business_day_bounds,
    describe,
    expected_legs,
    hour_of_day,
    latency_labels,
    money_text,
)
from ibps_wire.schemas import TransferOut

AS_OF = datetime(2026, 6, 22, 5, 0, tzinfo=UTC)


def stored(break_type: str, side: str, direction: str = "NORTHBOUND", **changes: Any) -> dict[str, Any]:
    """A break row as the run stores it: a settled payment of that direction with both legs posted."""
    if direction == "NORTHBOUND":  # SEND 1000.00 HKD -> 917.70 CNY
        payment = {"source_minor": 100_000, "source_currency": "HKD", "target_minor": 91_770}
        payment |= {"target_currency": "CNY", "rate": "0.917700"}
        legs = {"fps_amount_minor": 100_000, "fps_currency": "HKD", "ibps_amount_minor": 91_770}
        legs |= {"ibps_currency": "CNY"}
    else:  # SEND 800.00 CNY -> 867.39 HKD
        payment = {"source_minor": 80_000, "source_currency": "CNY", "target_minor": 86_739}
        payment |= {"target_currency": "HKD", "rate": "1.084240"}
        legs = {"fps_amount_minor": 86_739, "fps_currency": "HKD", "ibps_amount_minor": 80_000}
        legs |= {"ibps_currency": "CNY"}
    row: dict[str, Any] = {
        "break_type": break_type,
        "side": side,
        "payment_id": "p1",
        "direction": direction,
        "gateway_state": "SETTLED",
        "amount_type": "SEND",
        **payment,
        "fps_status": "POSTED",
        "ibps_status": "POSTED",
        **legs,
        "related_payment_id": None,
        "occurrences": None,
        "occurred_at": AS_OF - timedelta(hours=1),
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("break_type", "side", "direction", "changes", "expected"),
    [
        ("AMOUNT_MISMATCH", "FPS", "NORTHBOUND", {}, "1000.00 HKD"),
        ("AMOUNT_MISMATCH", "IBPS", "NORTHBOUND", {}, "917.70 CNY"),
        ("AMOUNT_MISMATCH", "FPS", "SOUTHBOUND", {}, "867.39 HKD"),
        ("AMOUNT_MISMATCH", "IBPS", "SOUTHBOUND", {}, "800.00 CNY"),
        ("CURRENCY_MISMATCH", "FPS", "NORTHBOUND", {"fps_currency": "CNY"}, "1000.00 HKD"),
        ("CURRENCY_MISMATCH", "IBPS", "NORTHBOUND", {"ibps_currency": "HKD"}, "917.70 CNY"),
        ("CURRENCY_MISMATCH", "FPS", "SOUTHBOUND", {}, "867.39 HKD"),
        ("CURRENCY_MISMATCH", "IBPS", "SOUTHBOUND", {}, "800.00 CNY"),
        ("MISSING_AT_FPS", "FPS", "NORTHBOUND", {"fps_status": None}, "1000.00 HKD"),
        ("MISSING_AT_FPS", "FPS", "SOUTHBOUND", {"fps_status": None}, "867.39 HKD"),
        ("MISSING_AT_IBPS", "IBPS", "NORTHBOUND", {"ibps_status": None}, "917.70 CNY"),
        ("MISSING_AT_IBPS", "IBPS", "SOUTHBOUND", {"ibps_status": None}, "800.00 CNY"),
        ("STATUS_MISMATCH", "FPS", "NORTHBOUND", {"fps_status": "PENDING"}, "POSTED"),
        ("STATUS_MISMATCH", "IBPS", "SOUTHBOUND", {"ibps_status": "VOIDED"}, "POSTED"),
        ("STATUS_MISMATCH", "FPS", "NORTHBOUND", {"gateway_state": "REJECTED"}, "VOIDED or no entry"),
        ("STATUS_MISMATCH", "IBPS", "SOUTHBOUND", {"gateway_state": "REJECTED"}, "VOIDED or no entry"),
        ("FX_MISMATCH", "GATEWAY", "NORTHBOUND", {"rate": "0.927700"}, "target 927.70 CNY at 0.927700"),
        (
            "FX_MISMATCH",
            "GATEWAY",
            "NORTHBOUND",
            {"amount_type": "RECEIVE", "source_minor": 54_485, "target_minor": 50_000, "rate": "0.927700"},
            "source 538.97 HKD at 0.927700",  # ceil(500.00 / 0.9277) = 538.9673...
        ),
        ("FX_MISMATCH", "GATEWAY", "SOUTHBOUND", {"rate": "0"}, "a positive rate, not 0"),
        # the smallest positive rate is a rate: 100.00 HKD at 0.000001 buys nothing
        ("FX_MISMATCH", "GATEWAY", "NORTHBOUND", {"rate": "0.000001"}, "target 0.00 CNY at 0.000001"),
        # an exact quotient is not rounded up a further cent: 500.00 CNY at 0.5 costs 1,000.00 HKD
        (
            "FX_MISMATCH",
            "GATEWAY",
            "NORTHBOUND",
            {"amount_type": "RECEIVE", "target_minor": 50_000, "rate": "0.500000"},
            "source 1000.00 HKD at 0.500000",
        ),
        # one millionth over a whole cent is a cent more: 0.01 CNY at 0.999999 costs 0.02 HKD
        (
            "FX_MISMATCH",
            "GATEWAY",
            "NORTHBOUND",
            {"amount_type": "RECEIVE", "target_minor": 1, "rate": "0.999999"},
            "source 0.02 HKD at 0.999999",
        ),
        # the largest amounts, in integers: a float would be a cent out
        (
            "FX_MISMATCH",
            "GATEWAY",
            "NORTHBOUND",
            {"amount_type": "RECEIVE", "target_minor": 100_000_000_000_000, "rate": "0.500000"},
            "source 2000000000000.00 HKD at 0.500000",
        ),
        (
            "FX_MISMATCH",
            "GATEWAY",
            "NORTHBOUND",
            {"source_minor": 10_000_000_627_699, "rate": "0.917701"},
            "target 91770105760.39 CNY at 0.917701",
        ),
        ("FX_MISMATCH", "GATEWAY", "NORTHBOUND", {"rate": None}, "-"),
        ("FX_MISMATCH", "GATEWAY", "NORTHBOUND", {"source_minor": None}, "-"),
        ("FX_MISMATCH", "GATEWAY", "NORTHBOUND", {"target_minor": None}, "-"),
        ("DUPLICATE", "GATEWAY", "NORTHBOUND", {"related_payment_id": "p0"}, "first payment p0"),
        ("DUPLICATE", "IBPS", "NORTHBOUND", {"occurrences": 3}, "one entry, found 3"),
        ("DUPLICATE", "IBPS", "NORTHBOUND", {}, "one entry, found 2"),
        ("STUCK_PENDING", "GATEWAY", "NORTHBOUND", {"gateway_state": "COMMITTING"}, "SETTLED or REJECTED"),
        ("UNEXPECTED_AT_IBPS", "IBPS", "NORTHBOUND", {"gateway_state": None}, "no entry"),
        ("UNEXPECTED_AT_FPS", "FPS", "NORTHBOUND", {"gateway_state": None}, "no entry"),
    ],
)
def test_the_expected_value_is_that_of_the_side_that_broke(
    break_type: str, side: str, direction: str, changes: dict[str, Any], expected: str
) -> None:
    view = describe(stored(break_type, side, direction, **changes), as_of=AS_OF)
    assert view.expected == expected
    assert (view.break_type, view.side) == (BreakType(break_type), Side(side))
    assert view.suggested_action == SUGGESTED_ACTION[view.break_type]


def test_every_break_type_has_its_own_action() -> None:
    assert set(SUGGESTED_ACTION) == set(BreakType)
    assert len(set(SUGGESTED_ACTION.values())) == len(BreakType)


def test_the_three_sides_are_put_side_by_side() -> None:
    view = describe(stored("AMOUNT_MISMATCH", "IBPS", ibps_amount_minor=90_000), as_of=AS_OF)
    assert view.gateway_value == "SETTLED 1000.00 HKD -> 917.70 CNY at 0.917700"
    assert (view.fps_value, view.ibps_value) == ("POSTED 1000.00 HKD", "POSTED 900.00 CNY")
    assert (view.payment_id, view.direction, view.related_payment_id) == ("p1", "NORTHBOUND", None)
    assert (view.age_s, view.occurred_at) == (3600, AS_OF - timedelta(hours=1))


def test_a_missing_side_or_payment_reads_as_such() -> None:
    view = describe(
        stored("UNEXPECTED_AT_IBPS", "IBPS", gateway_state=None, fps_status=None, rate=None), as_of=AS_OF
    )
    assert (view.gateway_value, view.fps_value) == ("(no payment)", "(no entry)")
    assert view.ibps_value == "POSTED 917.70 CNY"
    no_rate = describe(stored("MISSING_AT_FPS", "FPS", fps_status=None, rate=""), as_of=AS_OF)
    assert no_rate.gateway_value == "SETTLED 1000.00 HKD -> 917.70 CNY"


def test_a_duplicate_names_the_first_payment() -> None:
    view = describe(stored("DUPLICATE", "GATEWAY", related_payment_id="p0"), as_of=AS_OF)
    assert view.related_payment_id == "p0"


@pytest.mark.parametrize(
    ("occurred_at", "age_s"),
    [
        (AS_OF - timedelta(seconds=90), 90),
        (AS_OF - timedelta(seconds=90, milliseconds=900), 90),
        (AS_OF, 0),
        (AS_OF + timedelta(seconds=30), 0),  # the other side's clock ahead: never negative
        (None, 0),
    ],
)
def test_the_age_is_whole_seconds_since_it_occurred(occurred_at: datetime | None, age_s: int) -> None:
    assert describe(stored("STUCK_PENDING", "GATEWAY", occurred_at=occurred_at), as_of=AS_OF).age_s == age_s


def test_expected_legs_follow_the_direction() -> None:
    row = {"source_minor": 1, "source_currency": "HKD", "target_minor": 2, "target_currency": "CNY"}
    assert expected_legs({**row, "direction": "NORTHBOUND"}) == ((1, "HKD"), (2, "CNY"))
    assert expected_legs({**row, "direction": "SOUTHBOUND"}) == ((2, "CNY"), (1, "HKD"))
    assert expected_legs({**row, "direction": None}) == ((None, None), (None, None))


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (None, "HKD", "-"),
        (0, "HKD", "0.00 HKD"),
        (91_770, "CNY", "917.70 CNY"),
        (5, "HKD", "0.05 HKD"),
        (12_345, "USD", "123.45 USD"),  # a currency the link does not speak, as a ledger may hold
        (12_345, None, "123.45 ?"),
    ],
)
def test_money_text(minor: int | None, currency: str | None, text: str) -> None:
    assert money_text(minor, currency) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (119, "119 s"),
        (120, "2 min"),
        (7_199, "119 min"),
        (7_200, "2 h"),
        (172_799, "47 h"),
        (172_800, "2 d"),
        (864_000, "10 d"),
    ],
)
def test_age_text(seconds: int, text: str) -> None:
    assert age_text(seconds) == text


def test_latency_buckets_are_labelled_from_zero_to_the_slower_rest() -> None:
    assert latency_labels() == [
        "0ms-50ms",
        "50ms-100ms",
        "100ms-250ms",
        "250ms-500ms",
        "500ms-1s",
        "1s-2s",
        "2s-5s",
        "5s-10s",
        "10s-30s",
        ">30s",
    ]
    assert (domain._ms(999), domain._ms(1_000), domain._ms(1_500), domain._ms(2_000)) == (
        "999ms",
        "1s",
        "1500ms",
        "2s",
    )


@pytest.mark.parametrize(
    ("moment", "hour"),
    [
        (datetime(2026, 6, 22, 15, 59, tzinfo=UTC), 23),
        (datetime(2026, 6, 22, 16, 0, tzinfo=UTC), 0),
        (datetime(2026, 6, 22, 4, 30, tzinfo=UTC), 12),
    ],
)
def test_hour_of_day_is_utc_plus_8(moment: datetime, hour: int) -> None:
    assert hour_of_day(moment) == hour


@pytest.mark.parametrize(
    ("amount_type", "source_minor", "target_minor", "rate", "consistent"),
    [
        ("SEND", 100, 0, "0", False),  # no rate at all is never consistent
        ("RECEIVE", 100, 0, "0", False),
        ("SEND", 100, 0, "0.000001", True),  # the smallest rate: 1.00 buys nothing
        ("SEND", 101, 50, "0.500000", True),  # 1.01 at 0.5 pays 0.50 (0.505, rounded down) ...
        ("RECEIVE", 101, 50, "0.500000", False),  # ... but 0.50 received costs 1.00, not 1.01
        ("RECEIVE", 100, 50, "0.500000", True),
        ("RECEIVE", 2, 1, "0.999999", True),  # 0.01 at 0.999999 costs 0.010000010...: 0.02
        ("RECEIVE", 1, 1, "0.999999", False),
        ("SEND", 10_000_000_627_699, 9_177_010_576_039, "0.917701", True),
    ],
)
def test_fx_consistent_on_integers(
    amount_type: str, source_minor: int, target_minor: int, rate: str, consistent: bool
) -> None:
    assert (
        domain.fx_consistent(
            amount_type=amount_type, source_minor=source_minor, target_minor=target_minor, rate=rate
        )
        is consistent
    )


@pytest.mark.parametrize(
    ("rate", "micro"),
    [("0.917700", 917_700), (".5", 500_000), ("2", 2_000_000), ("0.0000019", 1), ("1.08424", 1_084_240)],
)
def test_rate_micro_reads_what_postgresql_reads(rate: str, micro: int) -> None:
    assert domain.rate_micro(rate) == micro


def _transfer(created_at: datetime) -> TransferOut:
    return TransferOut.model_validate(
        {
            "seq": 7,
            "payment_id": "p-1",
            "kind": "CREDIT",
            "account_id": "CN1",
            "debit_account_id": "IBPS-LINK-CNY",
            "credit_account_id": "CN1",
            "amount": "917.70",
            "currency": "CNY",
            "status": "POSTED",
            "reason_code": None,
            "created_at": created_at,
            "resolved_at": None,
        }
    )


def test_a_neighbouring_entry_keeps_its_payment_and_currency() -> None:
    day = date(2026, 11, 27)
    _, end = business_day_bounds(day)
    entry = domain.neighbour_entry(day, _transfer(end + timedelta(seconds=1)))
    assert entry is not None
    assert (entry.payment_id, entry.currency, entry.amount_minor) == ("p-1", "CNY", 91_770)


@pytest.mark.usefixtures("machine_clock_in_another_zone")
def test_an_entry_stamped_in_another_offset_is_dated_by_its_instant() -> None:
    """00:30 on the 28th in Hong Kong is 16:30 UTC on the 27th: the next day's statement."""
    day = date(2026, 11, 27)
    hkt = timezone(timedelta(hours=8))
    entry = domain.neighbour_entry(day, _transfer(datetime(2026, 11, 28, 0, 30, tzinfo=hkt)))
    assert entry is not None and entry.day_offset == 1
    assert entry.created_at == datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    assert entry.created_at.utcoffset() == timedelta(0)


@pytest.mark.usefixtures("machine_clock_in_another_zone")
def test_a_naive_entry_time_is_utc_whatever_the_machines_zone() -> None:
    day = date(2026, 11, 27)
    entry = domain.neighbour_entry(day, _transfer(datetime(2026, 11, 27, 16, 30)))
    assert entry is not None and entry.day_offset == 1
    assert entry.created_at == datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    assert domain.neighbour_entry(day, _transfer(datetime(2026, 11, 27, 15, 59))) is None


@pytest.fixture
def machine_clock_in_another_zone() -> Iterator[None]:
    """The process's local time zone far from UTC (POSIX TZ, no zone files needed)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "EST+5"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("machine_clock_in_another_zone")
def test_a_business_day_is_bounded_in_utc_whatever_the_machines_zone() -> None:
    start, end = business_day_bounds(date(2026, 11, 27))
    assert (start, end) == (datetime(2026, 11, 26, 16, tzinfo=UTC), datetime(2026, 11, 27, 16, tzinfo=UTC))
    assert start.utcoffset() == end.utcoffset() == timedelta(0)

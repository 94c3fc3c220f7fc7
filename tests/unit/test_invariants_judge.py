"""`invariants.judge`: I2-I6 over what the check read, with no database and no IBPS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fpslink.invariants import Snapshot, judge
from ibps_wire.schemas import TransferOut

NOW = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
STALE_BEFORE = NOW - timedelta(seconds=35)


def payment(pid: str, state: str, **changes: Any) -> dict[str, Any]:
    """A northbound payment: HKD 1,000.00 from HK1 to CN1, CNY 917.70 at IBPS."""
    row: dict[str, Any] = {
        "payment_id": pid,
        "state": state,
        "direction": "NORTHBOUND",
        "debtor_account_id": "HK1",
        "creditor_account_id": "CN1",
        "source_minor": 100_000,
        "source_currency": "HKD",
        "target_minor": 91_770,
        "target_currency": "CNY",
        "limit_minor": 100_000,
        "business_date": "2026-06-22",
        "updated_at": NOW,
    }
    row.update(changes)
    return row


def fps(status: str, amount: int = 100_000) -> dict[str, Any]:
    return {
        "status": status,
        "debit_account_id": "HK1",
        "credit_account_id": "FPS-LINK-HKD",
        "amount_minor": amount,
    }


def ibps(pid: str, status: str, amount: str = "917.70") -> TransferOut:
    return TransferOut.model_validate(
        {
            "seq": 1,
            "payment_id": pid,
            "kind": "CREDIT",
            "account_id": "CN1",
            "debit_account_id": "IBPS-LINK-CNY",
            "credit_account_id": "CN1",
            "amount": amount,
            "currency": "CNY",
            "status": status,
            "reason_code": None,
            "created_at": NOW,
            "resolved_at": None if status == "PENDING" else NOW,
        }
    )


def usage(used: int, period: str = "DAY", key: str = "2026-06-22", cap: int | None = None) -> dict[str, Any]:
    return {
        "account_id": "HK1",
        "direction": "NORTHBOUND",
        "period": period,
        "period_key": key,
        "used_minor": used,
        "cap_minor": cap,
    }


def snapshot(**parts: Any) -> Snapshot:
    values: dict[str, Any] = {
        "payments": [],
        "fps": {},
        "ibps": {},
        "ibps_reachable": True,
        "usage": [],
        "shared_keys": [],
    }
    values.update(parts)
    return Snapshot(**values)


def reserved(amount: int) -> list[dict[str, Any]]:
    return [usage(amount), usage(amount, "YEAR", "2026")]


def test_a_settled_payment_with_both_legs_posted_as_recorded_holds() -> None:
    found, by_state = judge(
        snapshot(
            payments=[payment("p1", "SETTLED")],
            fps={"p1": fps("POSTED")},
            ibps={"p1": ibps("p1", "POSTED")},
            usage=reserved(100_000),
        ),
        stale_before=STALE_BEFORE,
    )
    assert found == []
    assert by_state == {"SETTLED": 1}


def test_i2_a_settled_payment_needs_both_legs_posted_and_as_recorded() -> None:
    found, _ = judge(
        snapshot(
            payments=[payment("p1", "SETTLED"), payment("p2", "SETTLED")],
            fps={"p1": fps("PENDING"), "p2": fps("POSTED", amount=99_999)},
            ibps={"p1": ibps("p1", "PENDING"), "p2": ibps("p2", "POSTED", amount="917.71")},
            usage=reserved(200_000),
        ),
        stale_before=STALE_BEFORE,
    )
    assert found == [
        "I2 p1: SETTLED but FPS transfer is PENDING",
        "I2 p1: SETTLED but IBPS transfer is PENDING",
        "I2 p2: FPS transfer does not match the payment's FX record",
        "I2 p2: IBPS transfer does not match the payment's FX record",
    ]


def test_an_unread_ibps_ledger_is_not_judged() -> None:
    found, _ = judge(
        snapshot(
            payments=[
                payment("p1", "SETTLED"),
                payment("p2", "ACCEPTED", updated_at=NOW - timedelta(hours=1)),
            ],
            fps={"p1": fps("POSTED"), "p2": fps("PENDING")},
            ibps_reachable=False,
            usage=reserved(200_000),
        ),
        stale_before=STALE_BEFORE,
    )
    assert found == []  # neither the missing IBPS leg nor I4 while IBPS is out of reach


def test_i3_a_rejected_payment_leaves_only_voided_legs() -> None:
    found, _ = judge(
        snapshot(
            payments=[payment("p1", "REJECTED"), payment("p2", "REJECTED")],
            fps={"p1": fps("POSTED"), "p2": fps("VOIDED")},
            ibps={"p1": ibps("p1", "PENDING"), "p2": ibps("p2", "VOIDED")},
        ),
        stale_before=STALE_BEFORE,
    )
    assert found == [
        "I3 p1: REJECTED but FPS transfer is POSTED",
        "I3 p1: REJECTED but IBPS transfer is PENDING",
    ]


def test_i4_a_payment_left_unfinished_past_the_time_out() -> None:
    old = NOW - timedelta(minutes=5)
    found, by_state = judge(
        snapshot(
            payments=[payment("p1", "COMMITTING", updated_at=old), payment("p2", "ACCEPTED")],
            fps={"p1": fps("POSTED"), "p2": fps("PENDING")},
            usage=reserved(200_000),
        ),
        stale_before=STALE_BEFORE,
    )
    assert found == [f"I4 p1: COMMITTING since {old.isoformat()}"]
    assert by_state == {"COMMITTING": 1, "ACCEPTED": 1}


def test_transfers_without_a_payment_except_an_ibps_abort_tombstone() -> None:
    found, _ = judge(
        snapshot(
            fps={"gone": fps("PENDING")},
            ibps={"ghost": ibps("ghost", "POSTED"), "tomb": ibps("tomb", "VOIDED")},
        ),
        stale_before=STALE_BEFORE,
    )
    assert found == [
        "IBPS ghost: POSTED transfer without a gateway payment",
        "FPS gone: PENDING transfer without a gateway payment",
    ]


def test_i5_usage_equals_what_live_payments_reserve_and_stays_under_its_cap() -> None:
    day = ("HK1", "NORTHBOUND", "DAY", "2026-06-22")
    year = ("HK1", "NORTHBOUND", "YEAR", "2026")
    found, _ = judge(
        snapshot(
            # the rejected and the aborting payment reserve nothing
            payments=[
                payment("p1", "SETTLED"),
                payment("p2", "REJECTED"),
                payment("p3", "ABORTING"),
            ],
            fps={"p1": fps("POSTED"), "p2": fps("VOIDED"), "p3": fps("VOIDED")},
            ibps={"p1": ibps("p1", "POSTED")},
            usage=[usage(150_000, cap=120_000)],
        ),
        stale_before=STALE_BEFORE,
    )
    assert found == [
        f"I5 {day}: usage 150000 over the limit 120000",
        f"I5 {day}: usage 150000 but payments reserve 100000",
        f"I5 {year}: payments reserve 100000 but no usage is recorded",
    ]


def test_i6_a_payment_bound_to_two_keys() -> None:
    found, _ = judge(snapshot(shared_keys=[("p1", 2)]), stale_before=STALE_BEFORE)
    assert found == ["I6 p1: bound to 2 idempotency keys"]

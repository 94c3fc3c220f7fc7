"""The report's summary: totals per side, the net settlement position, FX, and the chart series.

Built from the matcher's GROUP BY results (a few dozen rows whatever the day's volume) and stored as
JSON with the run; amounts leave as decimal strings, like everywhere in the API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fpslink.money import Currency, format_minor
from fpslink.reconciliation.domain import (
    LATENCY_BUCKETS_MS,
    BreakType,
    business_date_of,
    latency_labels,
    money_text,
    rate_micro,
)
from fpslink.settlement.states import status_of
from fpslink.vocabulary import State

FPS_DIRECTION = {"DEBIT": "NORTHBOUND", "CREDIT": "SOUTHBOUND"}
IBPS_DIRECTION = {"CREDIT": "NORTHBOUND", "DEBIT": "SOUTHBOUND"}
CURRENCIES = (Currency.HKD.value, Currency.CNY.value)


def amount(minor: int, currency: str | None) -> str:
    if currency in CURRENCIES:
        return format_minor(minor, Currency(currency))
    return f"{Decimal(minor).scaleb(-2):f}"


def _client_status(state: str | None) -> str:
    try:
        return status_of(State(state or "")).value
    except ValueError:
        return str(state)


def gateway_rows(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gateway totals by direction, client status (PENDING covers every non-final state) and currencies."""
    merged: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in raw:
        key = (r["direction"], _client_status(r["state"]), r["source_currency"], r["target_currency"] or "")
        acc = merged[key]
        acc[0] += r["count"]
        acc[1] += r["source_minor"]
        acc[2] += r["target_minor"]
    return [
        {
            "direction": d,
            "status": st,
            "source_currency": sc,
            "target_currency": tc or None,
            "count": acc[0],
            "source_amount": amount(acc[1], sc),
            "target_amount": amount(acc[2], tc),
        }
        for (d, st, sc, tc), acc in sorted(merged.items())
    ]


def ledger_rows(raw: list[dict[str, Any]], directions: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "direction": directions.get(r["kind"] or "", "UNKNOWN"),
            "kind": r["kind"],
            "status": r["status"],
            "currency": r["currency"],
            "count": r["count"],
            "amount": amount(r["amount_minor"], r["currency"]),
        }
        for r in sorted(raw, key=lambda r: (str(r["kind"]), str(r["status"]), str(r["currency"])))
    ]


def positions(ledgers: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Net settlement position from the posted legs of each link account, per currency.

    FPS collects northbound payers' funds and pays southbound payees; IBPS pays northbound payees in
    CNY and collects southbound payers' CNY. What IBPS paid out less what it collected is what the
    FPS side owes it across the border (negative: IBPS owes the FPS side).
    """
    posted: dict[tuple[str, str, str], int] = defaultdict(int)
    for side, rows in ledgers.items():
        for r in rows:
            if r["status"] == "POSTED" and r["kind"] in ("DEBIT", "CREDIT"):
                posted[(side, r["kind"], r["currency"])] += r["amount_minor"]
    lines = []
    for cur in CURRENCIES:
        fps_in, fps_out = posted[("FPS", "DEBIT", cur)], posted[("FPS", "CREDIT", cur)]
        ibps_in, ibps_out = posted[("IBPS", "DEBIT", cur)], posted[("IBPS", "CREDIT", cur)]
        lines.append(
            {
                "currency": cur,
                "fps_collected": amount(fps_in, cur),
                "fps_paid": amount(fps_out, cur),
                "fps_net": amount(fps_in - fps_out, cur),
                "ibps_collected": amount(ibps_in, cur),
                "ibps_paid": amount(ibps_out, cur),
                "ibps_net": amount(ibps_in - ibps_out, cur),
            }
        )
    due = posted[("IBPS", "CREDIT", "CNY")] - posted[("IBPS", "DEBIT", "CNY")]
    return {"lines": lines, "net_cny_due_to_ibps": amount(due, "CNY")}


def fx_rows(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency pair: volume-weighted customer rate and the spread earned (in the target currency)."""
    out = []
    for r in sorted(raw, key=lambda r: (r["source_currency"], r["target_currency"])):
        source, target = r["source_minor"], r["target_minor"]
        rate = (Decimal(target) / Decimal(source)).quantize(Decimal("0.000001")) if source else Decimal(0)
        spread = (Decimal(r["spread_micro_minor"]).scaleb(-8)).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
        out.append(
            {
                "pair": f"{r['source_currency']}->{r['target_currency']}",
                "count": r["count"],
                "source_amount": amount(source, r["source_currency"]),
                "target_amount": amount(target, r["target_currency"]),
                "volume_weighted_rate": f"{rate:f}",
                "spread_earned": f"{spread:f}",
                "spread_currency": r["target_currency"],
            }
        )
    return out


def hourly_rows(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    hours = [{"hour": h, "northbound": 0, "southbound": 0, "settled": 0} for h in range(24)]
    for r in raw:
        slot = hours[r["hour"] % 24]
        slot["northbound" if r["direction"] == "NORTHBOUND" else "southbound"] += r["count"]
        slot["settled"] += r["settled"]
    return hours


def latency_rows(counts: list[int]) -> list[dict[str, Any]]:
    return [{"bucket": label, "count": n} for label, n in zip(latency_labels(), counts, strict=True)]


def timing_rows(raw: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listed timing differences: each payment of the day and its IBPS entry of another day."""
    return [
        {
            "payment_id": r["payment_id"],
            "direction": r["direction"],
            "gateway_state": r["gateway_state"],
            "accepted_at": r["created_at"].isoformat(),
            "ibps_business_date": business_date_of(r["ibps_created_at"]).isoformat(),
            "ibps_created_at": r["ibps_created_at"].isoformat(),
            "ibps_status": r["ibps_status"],
            "ibps_amount": money_text(r["ibps_amount_minor"], r["ibps_currency"]),
            "expected": money_text(r["want_ibps_minor"], r["want_ibps_currency"]),
        }
        for r in raw
    ]


def breaks_by_type(counts: dict[str, int]) -> dict[str, int]:
    return {kind.value: counts.get(kind.value, 0) for kind in BreakType}


def fold_totals(groups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The report's totals from the grouped rows of `totals`: pure, so the rules read in one place."""
    gateway: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
    ledgers: dict[str, dict[tuple[Any, ...], list[int]]] = {
        "FPS": defaultdict(lambda: [0, 0]),
        "IBPS": defaultdict(lambda: [0, 0]),
    }
    fx: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    hourly: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    latency = [0] * (len(LATENCY_BUCKETS_MS) + 1)
    unmatched = dict.fromkeys(
        ("fps_other_date", "ibps_other_date", "ibps_voided_without_payment", "fps_voided_without_payment"), 0
    )
    for g in groups:
        count = int(g["count"])
        source, target = int(g["source_minor"] or 0), int(g["target_minor"] or 0)
        state, in_day = g["state"], int(g["in_day"]) == 1
        fps_of_day = g["fps_status"] is not None and int(g["fps_in_day"]) == 1
        if in_day:
            acc = gateway[(g["direction"], state, g["source_currency"], g["target_currency"])]
            acc[0] += count
            acc[1] += source
            acc[2] += target
            hour = hourly[(int(g["hour"]), g["direction"])]
            hour[0] += count
            hour[1] += count if state == "SETTLED" else 0
            if state == "SETTLED" and g["mid_rate"] is not None:
                # the spread is linear in the amounts, so one mid rate's sums give its exact total
                pair = fx[(g["source_currency"], g["target_currency"])]
                pair[0] += count
                pair[1] += source
                pair[2] += target
                pair[3] += source * rate_micro(g["mid_rate"]) - target * 1_000_000
            if g["bucket"] is not None:
                latency[int(g["bucket"])] += count
        if fps_of_day:
            leg = ledgers["FPS"][(g["fps_kind"], g["fps_status"], g["fps_currency"])]
            leg[0] += count
            leg[1] += int(g["fps_amount_minor"] or 0)
        # an entry found on a neighbouring day's statement is in that day's IBPS totals, not this one's
        if g["ibps_status"] is not None and g.get("ibps_day_offset") is None:
            leg = ledgers["IBPS"][(g["ibps_kind"], g["ibps_status"], g["ibps_currency"])]
            leg[0] += count
            leg[1] += int(g["ibps_amount_minor"] or 0)
        if not in_day and state is not None:
            unmatched["fps_other_date"] += count if fps_of_day else 0
            unmatched["ibps_other_date"] += count if g["ibps_status"] is not None else 0
        if state is None:
            unmatched["ibps_voided_without_payment"] += count if g["ibps_status"] == "VOIDED" else 0
            unmatched["fps_voided_without_payment"] += count if g["fps_status"] == "VOIDED" else 0
    return {
        "gateway": [
            {
                "direction": d,
                "state": st,
                "source_currency": sc,
                "target_currency": tc,
                "count": acc[0],
                "source_minor": acc[1],
                "target_minor": acc[2],
            }
            for (d, st, sc, tc), acc in gateway.items()
        ],
        "ledgers": {
            side: [
                {"kind": k, "status": st, "currency": cur, "count": acc[0], "amount_minor": acc[1]}
                for (k, st, cur), acc in legs.items()
            ]
            for side, legs in ledgers.items()
        },
        "fx": [
            {
                "source_currency": sc,
                "target_currency": tc,
                "count": acc[0],
                "source_minor": acc[1],
                "target_minor": acc[2],
                "spread_micro_minor": acc[3],
            }
            for (sc, tc), acc in fx.items()
        ],
        "hourly": [
            {"hour": h, "direction": d, "count": acc[0], "settled": acc[1]} for (h, d), acc in hourly.items()
        ],
        "latency": latency,
        "unmatched": unmatched,
    }

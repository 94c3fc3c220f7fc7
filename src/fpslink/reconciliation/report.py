"""The report's summary: totals per side, the net settlement position, FX, and the chart series.

Built from the matcher's GROUP BY results (a few dozen rows whatever the day's volume) and stored as
JSON with the run; amounts leave as decimal strings, like everywhere in the API.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fpslink.money import Currency, format_minor
from fpslink.reconciliation.domain import BreakType, latency_labels
from fpslink.settlement.states import State, status_of

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


def breaks_by_type(counts: dict[str, int]) -> dict[str, int]:
    return {kind.value: counts.get(kind.value, 0) for kind in BreakType}

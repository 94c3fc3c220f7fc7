"""The report as JSON, CSV and one self-contained HTML page with server-side SVG charts.

JSON and CSV stream every break; the HTML page shows the first `HTML_MAX_BREAKS` (the rest are in
the CSV) and needs no network or script: inline CSS, inline SVG, every value escaped by Jinja2.
Timing differences (a payment matched with an IBPS entry of the neighbouring day) are not breaks:
JSON has them in the summary, CSV as lines of category TIMING_DIFFERENCE after the breaks, HTML in a
table of their own.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape

from fpslink.reconciliation.domain import BreakType, age_text, describe
from fpslink.reconciliation.repository import REFERENCE_COLUMNS, Run, reference_columns

HTML_MAX_BREAKS: Final = 1_000
CSV_COLUMNS: Final = (
    "business_date",
    "break_type",
    "side",
    "payment_id",
    "direction",
    "gateway_value",
    "fps_value",
    "ibps_value",
    "expected",
    "age_s",
    "related_payment_id",
    "suggested_action",
    "category",
    *REFERENCE_COLUMNS,
)
"""The last columns are the debtor bank's references to the payment (`BankReferences`), so that the
bank finds it in its own books: EndToEndId, and for a payment sent as a pacs.008 MsgId, InstrId,
TxId and UETR."""
BREAK, TIMING_DIFFERENCE = "BREAK", "TIMING_DIFFERENCE"
NORTH, SOUTH, ACCENT = "#1f6feb", "#d97706", "#b91c1c"

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _break_dict(run: Run, row: dict[str, Any]) -> dict[str, Any]:
    view = describe(row, as_of=run.as_of)
    return {
        "business_date": run.business_date,
        "break_type": view.break_type.value,
        "side": view.side.value,
        "payment_id": view.payment_id,
        "direction": view.direction,
        "gateway_value": view.gateway_value,
        "fps_value": view.fps_value,
        "ibps_value": view.ibps_value,
        "expected": view.expected,
        "age_s": view.age_s,
        "related_payment_id": view.related_payment_id,
        "suggested_action": view.suggested_action,
        "category": BREAK,
        **reference_columns(row.get("references")),
    }


def timing_lines(run: Run) -> list[dict[str, Any]]:
    """The listed timing differences as CSV lines: no break type, the IBPS date in `expected`."""
    return [
        {
            "business_date": run.business_date,
            "break_type": "",
            "side": "IBPS",
            "payment_id": item["payment_id"],
            "direction": item["direction"],
            "gateway_value": item["gateway_state"],
            "fps_value": "",
            "ibps_value": f"{item['ibps_status']} {item['ibps_amount']}",
            "expected": item["expected"],
            "age_s": "",
            "related_payment_id": "",
            "suggested_action": (
                f"None: booked by IBPS on {item['ibps_business_date']} across the cut-off; matched and "
                "compared, any mismatch is listed as a break."
            ),
            "category": TIMING_DIFFERENCE,
            **{column: item.get(column) for column in REFERENCE_COLUMNS},
        }
        for item in run.summary.get("timing_differences", {}).get("items", [])
    ]


async def json_chunks(run: Run, breaks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """`{...run and summary..., "breaks": [...]}`, written break by break."""
    head = json.dumps(run.as_json(), separators=(",", ":"))
    yield head[:-1] + ',"breaks":['
    first = True
    async for row in breaks:
        yield ("" if first else ",") + json.dumps(_break_dict(run, row), separators=(",", ":"))
        first = False
    yield "]}"


async def csv_chunks(run: Run, breaks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """One line per break (RFC 4180), a header first, then one per listed timing difference."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    async for row in breaks:
        writer.writerow(_break_dict(run, row))
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(timing_lines(run))
    yield buffer.getvalue()


# charts -----------------------------------------------------------------------------------------


@dataclass
class Chart:
    """An SVG chart's geometry, drawn by the template."""

    title: str
    width: int
    height: int
    bars: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[dict[str, Any]] = field(default_factory=list)
    legend: list[dict[str, Any]] = field(default_factory=list)
    axis: dict[str, int] = field(default_factory=dict)


LABEL_CHAR_W = 7.2
"""Width of one character of an axis label, to tell whether labels fit their columns: 11px
system-ui in Chromium on Debian measured "250ms-500ms" at 79px and "0ms-50ms" at 58px."""


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = int(10 ** (len(str(value)) - 1))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def column_chart(
    title: str,
    labels: list[str],
    series: list[tuple[str, str, list[int]]],
    *,
    width: int = 620,
    height: int = 240,
    label_every: int = 1,
) -> Chart:
    """Stacked columns: one per label, one stack segment per series (name, colour, values)."""
    left, right, top, bottom = 52, 10, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(labels), 1)
    # labels wider than their columns are shown every so many columns, so that none lies on the next
    widest = max((len(label) for label in labels), default=0) * LABEL_CHAR_W
    label_every = max(label_every, math.ceil(widest / (slot * 0.9)))
    totals = [sum(s[2][i] for s in series) for i in range(len(labels))]
    top_value = _nice_max(max(totals, default=0))
    chart = Chart(title=title, width=width, height=height)
    chart.axis = {"x0": left, "y0": top + plot_h, "x1": left + plot_w, "y1": top}
    for t in range(5):
        value = top_value * t // 4
        y = top + plot_h - plot_h * t / 4
        chart.ticks.append(
            {"y": round(y, 1), "x": left - 6, "label": f"{value:,}", "x0": left, "x1": left + plot_w}
        )
    for i, label in enumerate(labels):
        base = 0
        x = left + i * slot + slot * 0.15
        for name, colour, values in series:
            value = values[i]
            if value:
                h = plot_h * value / top_value
                y = top + plot_h - plot_h * (base + value) / top_value
                chart.bars.append(
                    {
                        "x": round(x, 1),
                        "y": round(y, 1),
                        "w": round(slot * 0.7, 1),
                        "h": round(h, 1),
                        "fill": colour,
                        "title": f"{label}: {value:,} {name}",
                    }
                )
            base += value
        if i % label_every == 0:
            chart.labels.append({"x": round(x + slot * 0.35, 1), "y": top + plot_h + 16, "text": label})
    if len(series) > 1:
        chart.legend = [
            {"x": left + 110 * n, "y": height - 4, "fill": colour, "text": name}
            for n, (name, colour, _values) in enumerate(series)
        ]
    return chart


def bar_chart(title: str, items: list[tuple[str, int]], *, width: int = 620, row_h: int = 20) -> Chart:
    """Horizontal bars with their labels on the left and counts at the end."""
    left, right, top = 170, 60, 8
    height = top * 2 + row_h * len(items)
    top_value = max((v for _, v in items), default=0) or 1
    plot_w = width - left - right
    chart = Chart(title=title, width=width, height=height)
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = plot_w * value / top_value
        chart.labels.append({"x": left - 6, "y": y + row_h * 0.7, "text": label, "anchor": "end"})
        chart.labels.append(
            {"x": left + w + 4, "y": y + row_h * 0.7, "text": f"{value:,}", "anchor": "start"}
        )
        if value:
            chart.bars.append(
                {
                    "x": left,
                    "y": y + 3,
                    "w": round(max(w, 1.0), 1),
                    "h": row_h - 6,
                    "fill": ACCENT,
                    "title": f"{label}: {value:,}",
                }
            )
    return chart


def axis_label(bucket: str) -> str:
    """A latency bucket by its upper bound ("100ms-250ms" as "≤250ms"), short enough for its column."""
    low, dash, high = bucket.partition("-")
    return f"≤{high}" if dash else low


def charts(summary: dict[str, Any]) -> list[Chart]:
    hourly = summary.get("hourly", [])
    latency = summary.get("latency", [])
    by_type = summary.get("breaks_by_type", {})
    return [
        column_chart(
            "Volume by hour (UTC+8)",
            [f"{h['hour']:02d}" for h in hourly],
            [
                ("northbound", NORTH, [h["northbound"] for h in hourly]),
                ("southbound", SOUTH, [h["southbound"] for h in hourly]),
            ],
            label_every=2,
        ),
        bar_chart("Breaks by type", [(kind.value, int(by_type.get(kind.value, 0))) for kind in BreakType]),
        column_chart(
            "Settlement latency (accepted to settled)",
            [axis_label(b["bucket"]) for b in latency],
            [("settled payments", NORTH, [b["count"] for b in latency])],
        ),
    ]


async def html(run: Run, breaks: AsyncIterator[dict[str, Any]]) -> str:
    shown = [_break_dict(run, row) async for row in breaks]
    for item in shown:
        item["age"] = age_text(item["age_s"])
    template = _env.get_template("report.html.j2")
    return template.render(
        run=run.as_json(),
        summary=run.summary,
        charts=charts(run.summary),
        breaks=shown,
        hidden=max(0, (run.break_count or 0) - len(shown)),
        timing=run.summary.get("timing_differences", {}),
    )

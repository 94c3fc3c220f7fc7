"""Timeline events grouped a row per payment and instant, and expanded back on read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from fpslink.payments.domain import TimelineEntry
from fpslink.payments.repository import expanded_events, grouped_events

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

events = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3"]),
        st.integers(0, 2),
        st.text(min_size=1, max_size=12),
        st.none() | st.text(max_size=20),
    ),
    max_size=30,
)


@given(events)
def test_each_payment_reads_back_its_events_in_order(written: list[tuple[str, int, str, str | None]]) -> None:
    # a step writes one instant; later steps write later instants
    written.sort(key=lambda e: e[1])
    rows = [(p, TimelineEntry(T0 + timedelta(seconds=s), e, d)) for p, s, e, d in written]
    stored = grouped_events(rows)

    assert len(stored) == len({(p, entry.at) for p, entry in rows})
    for payment in {p for p, _ in rows}:
        timeline = expanded_events(r for r in stored if r["payment_id"] == payment)
        assert timeline == [entry for p, entry in rows if p == payment]


def test_a_row_written_before_grouping_reads_as_one_event() -> None:
    old = {"at": T0, "event": "RECOVERY", "detail": "found ACCEPTED", "more": None}
    assert expanded_events([old]) == [TimelineEntry(T0, "RECOVERY", "found ACCEPTED")]


def test_a_single_event_stores_no_list() -> None:
    (row,) = grouped_events([("p", TimelineEntry(T0, "REJECTED", "AM04: short"))])
    assert row["more"] is None

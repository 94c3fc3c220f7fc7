"""The set-based matcher: every step is one SQL statement over whole sets, never a loop over payments.

One connection does a run. It bulk-loads the IBPS statement into a temporary staging table (COPY
FROM STDIN of the export's text pages), then makes one pass over the day (`build_match`): the three
sides joined by payment id (two hash FULL JOINs of the day's sets), every
break rule evaluated once per row as a bit mask, and one GROUP BY into `recon_groups`. The rows in
order (all but a handful on a normal day) end there as totals; the others, the possible breaks and
the rows whose payment or FPS leg may be of another date, get a group of their own and are copied,
completed by id, into `recon_match`, where the rules run again and the breaks are written. The
repeated-instruction check reads the payments table on a second connection meanwhile. The totals
are folded by `report.fold_totals`; the break rules themselves are defined in `domain`.

Cut-off: a payment of the day near midnight without an entry on the day's statement also goes to
`recon_match` (`near_cut_off`); the service looks its entry up at IBPS by id, and one found on the
previous or next day's statement is written into its row (`record_neighbours`) before the rules
run, so it is compared like any other entry and reported as a timing difference.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select, Subquery
from sqlalchemy.sql.elements import Grouping

from fpslink import pg
from fpslink.ledger.models import ledger_transfers
from fpslink.payments.models import payments
from fpslink.reconciliation import report as rep
from fpslink.reconciliation.domain import (
    LATENCY_BUCKETS_MS,
    BreakType,
    NeighbourEntry,
    Side,
    business_day_bounds,
)
from fpslink.reconciliation.models import groups, ibps_staging, match, neighbours, recon_breaks

STAGING_COLUMNS: Final = (
    "seq",
    "payment_id",
    "kind",
    "account_id",
    "currency",
    "amount_minor",
    "status",
    "created_at_us",
)
"""The statement export's TSV columns, loaded as they come into `ibps_staging`."""
STAGING_INT_COLUMNS: Final = (0, 5, 7)
MAX_DUPLICATES_LISTED: Final = 10_000
DUPLICATES_PER_STATEMENT: Final = 400
"""Payment ids listed in one statement."""
TEMP_BUFFERS: Final = "512MB"
WORK_MEM: Final = "256MB"
"""Per hash table of one statement, set for the run's transactions only: the day's three sets of a
million ids then join in memory instead of spilling to disk in batches."""
FINAL_STATES: Final = ("SETTLED", "REJECTED")

m = match.c


async def tune(conn: AsyncConnection) -> None:
    """Give the current transaction (only) the memory its joins and aggregates need."""
    await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))


async def create_work_tables(conn: AsyncConnection) -> None:
    """Fresh temporary tables for this connection (a pooled connection may carry old ones)."""
    # Temporary tables live in per-session buffers (8 MB by default); the setting can only change
    # before a session first touches a temporary table, so a reused connection keeps what it has.
    try:
        async with conn.begin_nested():
            await conn.execute(text(f"SET temp_buffers = '{TEMP_BUFFERS}'"))
    except DBAPIError:
        pass
    await drop_work_tables(conn)
    for table in (ibps_staging, match, groups, neighbours):
        await conn.run_sync(table.create)
    await tune(conn)


async def drop_work_tables(conn: AsyncConnection) -> None:
    for table in (neighbours, groups, match, ibps_staging):
        await conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))


async def load_staging(conn: AsyncConnection, data: bytes) -> None:
    """Append one statement page (COPY text format, STAGING_COLUMNS): PostgreSQL parses it itself."""
    if not data:
        return
    await (await pg.raw(conn)).copy_to_table(
        ibps_staging.name, source=io.BytesIO(data), columns=list(STAGING_COLUMNS)
    )


async def remove_staging_duplicates(conn: AsyncConnection) -> list[tuple[str, int]]:
    """Keep the first entry of each payment id; return (payment id, occurrences) of the repeated ones."""
    s = ibps_staging.c
    repeated = (
        await conn.execute(
            select(s.payment_id, func.count(), func.min(s.seq))
            .group_by(s.payment_id)
            .having(func.count() > 1)
            .order_by(s.payment_id)
            .limit(MAX_DUPLICATES_LISTED)
        )
    ).all()
    for payment_id, _count, first_seq in repeated:
        await conn.execute(delete(ibps_staging).where(s.payment_id == payment_id, s.seq != first_seq))
    # the join planner needs the staged row count; without it the day is joined by sorting
    await conn.execute(text(f"ANALYZE {ibps_staging.name} (payment_id)"))
    return [(str(pid), int(count)) for pid, count, _ in repeated]


_PAYMENT_COLUMNS: Final = (
    ("gateway_state", "state"),
    ("direction", "direction"),
    ("debtor_account_id", "debtor_account_id"),
    ("creditor_account_id", "creditor_account_id"),
    ("end_to_end_id", "end_to_end_id"),
    ("amount_type", "amount_type"),
    ("source_minor", "source_minor"),
    ("source_currency", "source_currency"),
    ("target_minor", "target_minor"),
    ("target_currency", "target_currency"),
    ("rate", "rate"),
    ("mid_rate", "mid_rate"),
    ("created_at", "created_at"),
    ("settled_at", "settled_at"),
)
"""recon_match column <- payments column."""
_FPS_COLUMNS: Final = (
    ("fps_kind", "kind"),
    ("fps_status", "status"),
    ("fps_amount_minor", "amount_minor"),
    ("fps_currency", "currency"),
    ("fps_created_at", "created_at"),
)
"""recon_match column <- ledger_transfers column."""


def _ibps_columns() -> dict[str, Any]:
    i = ibps_staging.c
    return {
        "ibps_kind": i.kind,
        "ibps_status": i.status,
        "ibps_amount_minor": i.amount_minor,
        "ibps_currency": i.currency,
        "ibps_created_at": _from_micros(f"{ibps_staging.name}.created_at_us"),
        "ibps_day_offset": cast(null(), Integer),
    }


def _derived(columns: dict[str, Any]) -> dict[str, Any]:
    """Figures the rules use more than once, computed once per row: the expected legs and the rate."""
    northbound = columns["direction"] == "NORTHBOUND"
    source, target = columns["source_minor"], columns["target_minor"]
    source_currency, target_currency = columns["source_currency"], columns["target_currency"]
    return {
        "want_fps_minor": case((northbound, source), else_=target),
        "want_fps_currency": case((northbound, source_currency), else_=target_currency),
        "want_ibps_minor": case((northbound, target), else_=source),
        "want_ibps_currency": case((northbound, target_currency), else_=source_currency),
        "rate_micro": _micro(columns["rate"]),
    }


def day_join(*, business_date: date) -> Subquery:
    """Every payment id of the day on any side, the three sides side by side (recon_match's columns).

    The day's payments FULL JOIN the day's FPS legs FULL JOIN the statement, each set read and
    hashed once. A row without a payment of the day or without an FPS leg of the day may still have
    one of another date: `needs_lookup` marks it, and `lookup_join` completes it.
    """
    start, end = business_day_bounds(business_date)
    p, f, i = payments.c, ledger_transfers.c, ibps_staging.c
    day_payments = (
        select(p.payment_id, *(p[source] for _, source in _PAYMENT_COLUMNS))
        .where(p.created_at >= start, p.created_at < end)
        .subquery("p")
    )
    day_fps = (
        select(f.payment_id, *(f[source] for _, source in _FPS_COLUMNS))
        .where(f.payment_id.is_not(None), f.created_at >= start, f.created_at < end)
        .subquery("f")
    )
    gateway_or_fps = func.coalesce(day_payments.c.payment_id, day_fps.c.payment_id)
    joined = day_payments.join(day_fps, day_fps.c.payment_id == day_payments.c.payment_id, full=True).join(
        ibps_staging, i.payment_id == gateway_or_fps, full=True
    )
    columns: dict[str, Any] = {
        "payment_id": func.coalesce(day_payments.c.payment_id, day_fps.c.payment_id, i.payment_id),
        "in_day": case((day_payments.c.payment_id.is_not(None), 1), else_=0),
        **{name: day_payments.c[source] for name, source in _PAYMENT_COLUMNS},
        **{name: day_fps.c[source] for name, source in _FPS_COLUMNS},
        **_ibps_columns(),
    }
    columns.update(_derived(columns))
    # OFFSET 0 keeps the planner from pulling the join up into the rules' query, so each column (the
    # rate above all) is computed once per row rather than once per rule that mentions it.
    return (
        select(*(value.label(name) for name, value in columns.items()))
        .select_from(joined)
        .offset(0)
        .subquery("day")
    )


def needs_lookup(c: Any) -> ColumnElement[bool]:
    """A row of `day_join` that may have a payment or FPS leg of another date."""
    return or_(c.gateway_state.is_(None), c.fps_status.is_(None))


def _sides_of(payment_id: Any, ids: Any, *, business_date: date) -> Select[Any]:
    """The three sides of each id in `ids`, LEFT JOINed by id whatever the date of the payment or leg."""
    start, end = business_day_bounds(business_date)
    p, f, i = payments.c, ledger_transfers.c, ibps_staging.c
    joined = (
        ids.outerjoin(payments, p.payment_id == payment_id)
        .outerjoin(ledger_transfers, f.payment_id == payment_id)
        .outerjoin(ibps_staging, i.payment_id == payment_id)
    )
    columns: dict[str, Any] = {
        "payment_id": payment_id,
        "in_day": case((and_(p.created_at >= start, p.created_at < end), 1), else_=0),
        **{name: p[source] for name, source in _PAYMENT_COLUMNS},
        **{name: f[source] for name, source in _FPS_COLUMNS},
        **_ibps_columns(),
    }
    columns.update(_derived(columns))
    return select(*(value.label(name) for name, value in columns.items())).select_from(joined)


def near_cut_off(c: Any, *, business_date: date, window_s: float) -> ColumnElement[bool]:
    """A payment of the day without an entry on the day's statement, accepted so near either end of
    the day that its entry may be on the neighbouring day's statement."""
    start, end = business_day_bounds(business_date)
    window = timedelta(seconds=window_s)
    return and_(
        c.in_day == 1,
        c.ibps_status.is_(None),
        or_(c.created_at < start + window, c.created_at >= end - window),
    )


async def build_match(
    conn: AsyncConnection, *, business_date: date, as_of: datetime, timeout_s: float, window_s: float
) -> None:
    """One pass over the day: the totals of every row that is in order go to `recon_groups`, and the
    rest (a possible break, a side of another date to look up, or a payment whose IBPS entry may be
    on a neighbouring day's statement) to `recon_match`, complete.

    Only the rows of `recon_match`, a handful on a normal day, are then looked at one by one: the
    break rules run again on them once their other-date sides are filled in.
    """
    day = day_join(business_date=business_date)
    rules = break_rules(day.c, as_of=as_of, timeout_s=timeout_s)
    odd = or_(
        break_mask(rules) != 0,
        needs_lookup(day.c),
        near_cut_off(day.c, business_date=business_date, window_s=window_s),
    )
    keys = total_keys(day.c, business_date=business_date)
    odd_id = case((odd, day.c.payment_id), else_=null()).label("odd_id")
    labelled = [column.label(name) for name, column in keys.items()]
    sums = [column.label(name) for name, column in total_sums(day.c).items()]
    await conn.execute(
        insert(groups).from_select(
            [*keys, "odd_id", *(column.name for column in sums)],
            select(*labelled, odd_id, *sums).group_by(*labelled, odd_id),
        )
    )
    odd_ids = select(groups.c.odd_id.label("payment_id")).where(groups.c.odd_id.is_not(None)).subquery("odd")
    complete = _sides_of(odd_ids.c.payment_id, odd_ids, business_date=business_date)
    names = [column.name for column in complete.selected_columns]
    await conn.execute(insert(match).from_select(names, complete))


async def cross_day_candidates(
    conn: AsyncConnection, *, business_date: date, window_s: float, limit: int
) -> tuple[list[str], int]:
    """(up to `limit` ids, how many in all) of the payments of `recon_match` whose IBPS entry may be
    on a neighbouring day's statement; the latest first, as most such entries follow midnight."""
    candidate = near_cut_off(m, business_date=business_date, window_s=window_s)
    total = int(await conn.scalar(select(func.count()).select_from(match).where(candidate)) or 0)
    if not total:
        return [], 0
    ids = await conn.scalars(
        select(m.payment_id).where(candidate).order_by(m.created_at.desc(), m.payment_id).limit(limit)
    )
    return list(ids), total


async def record_neighbours(conn: AsyncConnection, entries: Sequence[NeighbourEntry]) -> None:
    """Put each entry found on a neighbouring day's statement into its payment's row of `recon_match`,
    in one statement, so the break rules compare it as they compare the day's own entries."""
    if not entries:
        return
    await conn.execute(
        insert(neighbours),
        [
            {
                "payment_id": e.payment_id,
                "day_offset": e.day_offset,
                "kind": e.kind,
                "status": e.status,
                "amount_minor": e.amount_minor,
                "currency": e.currency,
                "created_at": e.created_at,
            }
            for e in entries
        ],
    )
    n = neighbours.c

    def found(column: Any) -> Any:
        return select(column).where(n.payment_id == m.payment_id).scalar_subquery()

    await conn.execute(
        update(match)
        .where(m.payment_id.in_(select(n.payment_id)), m.ibps_status.is_(None))
        .values(
            ibps_kind=found(n.kind),
            ibps_status=found(n.status),
            ibps_amount_minor=found(n.amount_minor),
            ibps_currency=found(n.currency),
            ibps_created_at=found(n.created_at),
            ibps_day_offset=found(n.day_offset),
        )
    )


async def timing_differences(conn: AsyncConnection, *, limit: int) -> list[dict[str, Any]]:
    """The first `limit` payments of the day matched with an IBPS entry of a neighbouring day."""
    rows = await conn.execute(
        select(
            m.payment_id,
            m.direction,
            m.gateway_state,
            m.created_at,
            m.want_ibps_minor,
            m.want_ibps_currency,
            m.ibps_status,
            m.ibps_amount_minor,
            m.ibps_currency,
            m.ibps_created_at,
            m.ibps_day_offset,
        )
        .where(m.ibps_day_offset.is_not(None))
        .order_by(m.created_at, m.payment_id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def _from_micros(column: str) -> ColumnElement[Any]:
    """Epoch microseconds (as the statement sends them) as a timestamp."""
    return literal_column(f"(TIMESTAMPTZ 'epoch' + {column} * INTERVAL '1 microsecond')")


# break rules: written once over any column collection with recon_match's names ----------------


def _micro(rate: ColumnElement[Any]) -> ColumnElement[Any]:
    """A rate string ("0.917700", "1") as an integer of millionths, like `domain.rate_micro`: read as
    a NUMERIC, exact, and far cheaper per row than cutting the string up."""
    return cast(func.trunc(cast(rate, Numeric), 6) * 1_000_000, BigInteger)


def _fx_broken(c: Any) -> ColumnElement[bool]:
    micro = c.rate_micro
    # `/` of two integers divides whole on both backends; the operands are never negative here
    send_due = Grouping(c.source_minor * micro).op("/")(1_000_000)
    receive_due = Grouping(c.target_minor * 1_000_000 + micro - 1).op("/")(func.nullif(micro, 0))
    return or_(
        micro <= 0,
        and_(c.amount_type == "SEND", c.target_minor != send_due),
        and_(c.amount_type != "SEND", c.source_minor != receive_due),
    )


def _select_break(
    run_id: str,
    kind: BreakType,
    side: Side,
    *,
    occurred: ColumnElement[Any] | None = None,
    related: ColumnElement[Any] | None = None,
    occurrences: ColumnElement[Any] | None = None,
    source: Any = None,
    break_type: ColumnElement[Any] | None = None,
    side_column: ColumnElement[Any] | None = None,
) -> tuple[list[str], Any]:
    cols = source.c if source is not None else m
    values: dict[str, Any] = {
        "run_id": literal(run_id, String),
        "break_type": break_type if break_type is not None else literal(kind.value, String),
        "side": side_column if side_column is not None else literal(side.value, String),
        "payment_id": cols.payment_id,
        "direction": cols.direction,
        "gateway_state": cols.gateway_state,
        "amount_type": cols.amount_type,
        "source_minor": cols.source_minor,
        "source_currency": cols.source_currency,
        "target_minor": cols.target_minor,
        "target_currency": cols.target_currency,
        "rate": cols.rate,
        "fps_status": cols.fps_status,
        "fps_amount_minor": cols.fps_amount_minor,
        "fps_currency": cols.fps_currency,
        "ibps_status": cols.ibps_status,
        "ibps_amount_minor": cols.ibps_amount_minor,
        "ibps_currency": cols.ibps_currency,
        "related_payment_id": related if related is not None else null(),
        "occurrences": occurrences if occurrences is not None else null(),
        "occurred_at": occurred if occurred is not None else cols.created_at,
    }
    return list(values), select(*values.values())


async def _insert(conn: AsyncConnection, names: list[str], query: Any) -> None:
    await conn.execute(insert(recon_breaks).from_select(names, query))


def break_rules(
    c: Any, *, as_of: datetime, timeout_s: float
) -> list[tuple[BreakType, Side, ColumnElement[bool]]]:
    """Every per-row break rule over `c` (recon_match's columns), in report order."""
    settled, rejected = c.gateway_state == "SETTLED", c.gateway_state == "REJECTED"
    in_day = c.in_day == 1
    fps_amount, fps_currency = c.want_fps_minor, c.want_fps_currency
    ibps_amount, ibps_currency = c.want_ibps_minor, c.want_ibps_currency
    rules: list[tuple[BreakType, Side, ColumnElement[bool]]] = [
        (BreakType.MISSING_AT_FPS, Side.FPS, and_(in_day, ~rejected, c.fps_status.is_(None))),
        (
            BreakType.MISSING_AT_IBPS,
            Side.IBPS,
            and_(in_day, c.gateway_state.in_(("SETTLED", "COMMITTING")), c.ibps_status.is_(None)),
        ),
        (
            BreakType.UNEXPECTED_AT_IBPS,
            Side.IBPS,
            and_(c.gateway_state.is_(None), c.ibps_status.in_(("PENDING", "POSTED"))),
        ),
        (
            BreakType.UNEXPECTED_AT_FPS,
            Side.FPS,
            and_(c.gateway_state.is_(None), c.fps_status.in_(("PENDING", "POSTED"))),
        ),
    ]
    for side, status, amount, currency, want_amount, want_currency in (
        (Side.FPS, c.fps_status, c.fps_amount_minor, c.fps_currency, fps_amount, fps_currency),
        (Side.IBPS, c.ibps_status, c.ibps_amount_minor, c.ibps_currency, ibps_amount, ibps_currency),
    ):
        rules += [
            (
                BreakType.AMOUNT_MISMATCH,
                side,
                and_(in_day, amount.is_not(None), want_amount.is_not(None), amount != want_amount),
            ),
            (
                BreakType.CURRENCY_MISMATCH,
                side,
                and_(in_day, currency.is_not(None), want_currency.is_not(None), currency != want_currency),
            ),
            (
                BreakType.STATUS_MISMATCH,
                side,
                and_(
                    in_day,
                    status.is_not(None),
                    or_(and_(settled, status != "POSTED"), and_(rejected, status != "VOIDED")),
                ),
            ),
        ]
    rules += [
        (
            BreakType.FX_MISMATCH,
            Side.GATEWAY,
            and_(
                in_day,
                ~rejected,
                c.source_minor.is_not(None),
                c.target_minor.is_not(None),
                c.rate.is_not(None),
                _fx_broken(c),
            ),
        ),
        (
            BreakType.STUCK_PENDING,
            Side.GATEWAY,
            and_(
                in_day,
                c.gateway_state.not_in(FINAL_STATES),
                c.created_at < as_of - timedelta(seconds=timeout_s),
            ),
        ),
    ]
    return rules


def break_mask(rules: Sequence[tuple[BreakType, Side, ColumnElement[bool]]]) -> ColumnElement[Any]:
    """Bit n set when the row breaks rule n: every rule evaluated in one expression, once per row."""
    return sum(
        (case((condition, 1 << position), else_=0) for position, (_, _, condition) in enumerate(rules)),
        start=literal(0, BigInteger),
    )


async def insert_breaks(
    conn: AsyncConnection,
    *,
    run_id: str,
    business_date: date,
    as_of: datetime,
    timeout_s: float,
    statement_duplicates: Sequence[tuple[str, int]] = (),
    repeated_instructions: bool = True,
) -> None:
    """Write every break of the run in one pass over `recon_match`, then the repeated instructions
    (`repeated_instructions=False` when `any_repeated_instruction` has said there are none).

    Each row gets a bit mask of the rules it breaks (one CASE per rule, evaluated once per row); only
    the rows with a non-zero mask meet the small rule table, which yields one break per set bit.
    """
    rules = break_rules(m, as_of=as_of, timeout_s=timeout_s)
    mask = break_mask(rules).label("mask")
    flagged = select(*m, mask).subquery("flagged")
    rule_table = union_all(
        *(
            select(
                literal(1 << position, BigInteger).label("bit"),
                literal(position, Integer).label("position"),
                literal(kind.value, String).label("break_type"),
                literal(side.value, String).label("side"),
            )
            for position, (kind, side, _) in enumerate(rules)
        )
    ).subquery("rules")
    unexpected = {
        BreakType.UNEXPECTED_AT_IBPS: flagged.c.ibps_created_at,
        BreakType.UNEXPECTED_AT_FPS: flagged.c.fps_created_at,
    }
    occurred = case(
        *(
            (rule_table.c.position == position, unexpected[kind])
            for position, (kind, _, _) in enumerate(rules)
            if kind in unexpected
        ),
        else_=flagged.c.created_at,
    )
    names, query = _select_break(
        run_id,
        BreakType.MISSING_AT_FPS,
        Side.FPS,
        source=flagged,
        occurred=occurred,
        break_type=rule_table.c.break_type,
        side_column=rule_table.c.side,
    )
    query = (
        query.select_from(flagged.join(rule_table, flagged.c.mask.op("&")(rule_table.c.bit) != 0))
        .where(flagged.c.mask != 0)
        .order_by(rule_table.c.position, flagged.c.payment_id)
    )
    await _insert(conn, names, query)
    if repeated_instructions:
        await _insert_gateway_duplicates(conn, run_id, business_date=business_date)
    for first in range(0, len(statement_duplicates), DUPLICATES_PER_STATEMENT):
        chunk = statement_duplicates[first : first + DUPLICATES_PER_STATEMENT]
        listed = union_all(
            *(
                select(literal(pid, String).label("payment_id"), literal(n, Integer).label("occurrences"))
                for pid, n in chunk
            )
        ).subquery("listed")
        sides = (
            _sides_of(listed.c.payment_id, listed, business_date=business_date)
            .add_columns(listed.c.occurrences)
            .subquery("sides")
        )
        names, query = _select_break(
            run_id,
            BreakType.DUPLICATE,
            Side.IBPS,
            source=sides,
            occurred=func.coalesce(sides.c.created_at, sides.c.ibps_created_at),
            occurrences=sides.c.occurrences,
        )
        await _insert(conn, names, query)


def _repeated_instructions(business_date: date) -> tuple[Select[Any], list[Any], ColumnElement[bool]]:
    start, end = business_day_bounds(business_date)
    p = payments.c
    keys = [p.debtor_account_id, p.end_to_end_id, p.creditor_account_id, p.source_currency, p.source_minor]
    eligible = and_(
        p.created_at >= start, p.created_at < end, p.end_to_end_id.is_not(None), p.state != "REJECTED"
    )
    return select(*keys).where(eligible).group_by(*keys).having(func.count() > 1), keys, eligible


async def any_repeated_instruction(conn: AsyncConnection, *, business_date: date) -> bool:
    """Whether a payment of the day repeats another (see DUPLICATE). It reads only the payments table,
    so a run asks it on a second connection while the first loads the statement."""
    repeated, _, _ = _repeated_instructions(business_date)
    return (await conn.execute(repeated.limit(1))).first() is not None


async def _insert_gateway_duplicates(conn: AsyncConnection, run_id: str, *, business_date: date) -> None:
    """The later payments of each group of the day that repeats (debtor, end_to_end_id, creditor,
    amount), read from the payments table."""
    repeated, keys, eligible = _repeated_instructions(business_date)
    p = payments.c
    repeating = repeated.subquery("repeating")
    order = (p.created_at, p.payment_id)
    members = (
        select(
            p.payment_id,
            func.row_number().over(partition_by=keys, order_by=order).label("position"),
            func.first_value(p.payment_id).over(partition_by=keys, order_by=order).label("first_id"),
        )
        .select_from(payments.join(repeating, and_(*(key == repeating.c[key.name] for key in keys))))
        .where(eligible)
        .subquery("members")
    )
    later = select(members.c.payment_id, members.c.first_id).where(members.c.position > 1).subquery("later")
    sides = (
        _sides_of(later.c.payment_id, later, business_date=business_date)
        .add_columns(later.c.first_id)
        .subquery("sides")
    )
    names, query = _select_break(
        run_id, BreakType.DUPLICATE, Side.GATEWAY, source=sides, related=sides.c.first_id
    )
    await _insert(conn, names, query)


# totals ----------------------------------------------------------------------------------------


def total_keys(c: Any, *, business_date: date) -> dict[str, ColumnElement[Any]]:
    """The GROUP BY keys of the totals: all low-cardinality, so a day groups into a few thousand rows."""
    start, end = business_day_bounds(business_date)
    in_day = c.in_day == 1
    latency = _latency_us(c)
    bucket = case(
        (
            and_(in_day, c.gateway_state == "SETTLED", c.settled_at.is_not(None)),
            case(
                *((latency < bound * 1000, index) for index, bound in enumerate(LATENCY_BUCKETS_MS)),
                else_=len(LATENCY_BUCKETS_MS),
            ),
        ),
        else_=null(),
    )
    return {
        "in_day": c.in_day,
        "state": c.gateway_state,
        "direction": c.direction,
        "source_currency": c.source_currency,
        "target_currency": c.target_currency,
        "hour": case((in_day, _hour(c)), else_=null()),
        "bucket": bucket,
        "mid_rate": c.mid_rate,
        "fps_kind": c.fps_kind,
        "fps_status": c.fps_status,
        "fps_currency": c.fps_currency,
        "fps_in_day": case((and_(c.fps_created_at >= start, c.fps_created_at < end), 1), else_=0),
        "ibps_kind": c.ibps_kind,
        "ibps_status": c.ibps_status,
        "ibps_currency": c.ibps_currency,
        "ibps_day_offset": c.ibps_day_offset,
    }


def total_sums(c: Any) -> dict[str, ColumnElement[Any]]:
    return {
        "count": func.count(),
        "source_minor": func.sum(c.source_minor),
        "target_minor": func.sum(c.target_minor),
        "fps_amount_minor": func.sum(c.fps_amount_minor),
        "ibps_amount_minor": func.sum(c.ibps_amount_minor),
    }


async def totals(conn: AsyncConnection, *, business_date: date) -> dict[str, Any]:
    """Every total of the report: the in-order rows' groups from `recon_groups` plus the rows of
    `recon_match` (complete by now) grouped the same way, folded by `report.fold_totals`."""
    g = groups.c
    sum_names = list(total_sums(m))
    keys = total_keys(m, business_date=business_date)
    rows = [
        dict(row._mapping)
        for row in await conn.execute(
            select(*(g[name] for name in keys), *(g[name] for name in sum_names)).where(g.odd_id.is_(None))
        )
    ]
    labelled = [column.label(name) for name, column in keys.items()]
    odd = await conn.execute(
        select(*labelled, *(column.label(name) for name, column in total_sums(m).items())).group_by(*labelled)
    )
    rows += [dict(row._mapping) for row in odd]
    return rep.fold_totals(rows)


def _hour(c: Any) -> ColumnElement[Any]:
    """The UTC+8 hour of `created_at` (date_part is a float, cheaper than EXTRACT's NUMERIC)."""
    local = func.timezone("UTC", c.created_at) + literal_column("INTERVAL '8 hours'")
    return cast(func.date_part("hour", local), Integer)


def _latency_us(c: Any) -> ColumnElement[Any]:
    """Accepted -> settled in microseconds, rounded to a whole number so bucket bounds compare exactly."""
    return func.round(func.date_part("epoch", c.settled_at - c.created_at) * 1_000_000)


async def break_counts(conn: AsyncConnection, *, run_id: str) -> dict[str, int]:
    b = recon_breaks.c
    rows = await conn.execute(
        select(b.break_type, func.count()).where(b.run_id == run_id).group_by(b.break_type)
    )
    return {str(kind): int(count) for kind, count in rows}

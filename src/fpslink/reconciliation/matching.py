"""The set-based matcher: every step is one SQL statement over whole sets, never a loop over payments.

One connection does a run. It bulk-loads the IBPS statement into a temporary staging table (COPY
FROM STDIN of the export's text pages on PostgreSQL, executemany on SQLite) and builds `recon_match`,
one row per payment id seen on any side: the payment, its FPS leg and its IBPS entry side by side.
On PostgreSQL that is one INSERT ... SELECT of two hash FULL JOINs over the day's three sets, then
two small UPDATEs for legs and payments of other dates; SQLite takes the plain path, the union of
the ids with each side LEFT JOINed. Then one pass writes every break (each row's matching rules as
a bit mask, joined to the rule table), one more the repeated instructions, and one GROUP BY gives
all the totals, folded by `fold_totals`. The break rules themselves are defined in `domain`.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
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
    union,
    union_all,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.ledger.models import ledger_transfers
from fpslink.payments.models import payments
from fpslink.reconciliation import tsv
from fpslink.reconciliation.domain import LATENCY_BUCKETS_MS, BreakType, Side, business_day_bounds
from fpslink.reconciliation.models import ibps_staging, match, recon_breaks

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
TEMP_BUFFERS: Final = "512MB"
WORK_MEM: Final = "256MB"
"""Per hash table of one statement, set for the run's transactions only: the day's three sets of a
million ids then join in memory instead of spilling to disk in batches."""
FINAL_STATES: Final = ("SETTLED", "REJECTED")

m = match.c


def _is_pg(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


async def tune(conn: AsyncConnection) -> None:
    """Give the current transaction (only) the memory its joins and aggregates need."""
    if _is_pg(conn):
        await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))


async def create_work_tables(conn: AsyncConnection) -> None:
    """Fresh temporary tables for this connection (a pooled connection may carry old ones)."""
    if _is_pg(conn):
        # Temporary tables live in per-session buffers (8 MB by default); the setting can only change
        # before a session first touches a temporary table, so a reused connection keeps what it has.
        try:
            async with conn.begin_nested():
                await conn.execute(text(f"SET temp_buffers = '{TEMP_BUFFERS}'"))
        except DBAPIError:
            pass
    await drop_work_tables(conn)
    for table in (ibps_staging, match):
        await conn.run_sync(table.create)
    await tune(conn)


async def drop_work_tables(conn: AsyncConnection) -> None:
    for table in (match, ibps_staging):
        await conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))


async def load_staging(conn: AsyncConnection, data: bytes) -> None:
    """Append one statement page (COPY text format, STAGING_COLUMNS): PostgreSQL parses it itself."""
    if not data:
        return
    if _is_pg(conn):
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_to_table(ibps_staging.name, source=io.BytesIO(data), columns=list(STAGING_COLUMNS))
        return
    rows = tsv.decode(data, width=len(STAGING_COLUMNS), int_columns=STAGING_INT_COLUMNS)
    await conn.execute(insert(ibps_staging), [dict(zip(STAGING_COLUMNS, row, strict=True)) for row in rows])


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
    if _is_pg(conn):
        await conn.execute(text(f"ANALYZE {ibps_staging.name}"))
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


async def build_match(conn: AsyncConnection, *, business_date: date) -> None:
    """Fill `recon_match`: the fast path on PostgreSQL, the plain one elsewhere; the same rows."""
    if _is_pg(conn):
        await _build_match_full_joins(conn, business_date=business_date)
    else:
        await _build_match_union(conn, business_date=business_date)


def _ibps_columns(conn: AsyncConnection) -> dict[str, Any]:
    i = ibps_staging.c
    return {
        "ibps_kind": i.kind,
        "ibps_status": i.status,
        "ibps_amount_minor": i.amount_minor,
        "ibps_currency": i.currency,
        "ibps_created_at": _from_micros(conn, f"{ibps_staging.name}.created_at_us"),
    }


async def _build_match_full_joins(conn: AsyncConnection, *, business_date: date) -> None:
    """The day's payments FULL JOIN the day's FPS legs FULL JOIN the statement: each set is read once
    and hashed once, with no union of three million ids to deduplicate first. A leg or payment of
    another date is then filled in by id, for the few rows that lack one."""
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
        **_ibps_columns(conn),
    }
    await conn.execute(
        insert(match).from_select(list(columns), select(*columns.values()).select_from(joined))
    )
    await conn.execute(text(f"ANALYZE {match.name}"))
    await conn.execute(
        update(match)
        .where(m.gateway_state.is_(None), m.payment_id == p.payment_id)
        .values({name: p[source] for name, source in _PAYMENT_COLUMNS})
    )
    await conn.execute(
        update(match)
        .where(m.fps_status.is_(None), m.payment_id == f.payment_id)
        .values({name: f[source] for name, source in _FPS_COLUMNS})
    )


async def _build_match_union(conn: AsyncConnection, *, business_date: date) -> None:
    """One INSERT ... SELECT: the union of the day's ids on the three sides, each side LEFT JOINed."""
    start, end = business_day_bounds(business_date)
    p, f, i = payments.c, ledger_transfers.c, ibps_staging.c
    ids = union(
        select(p.payment_id.label("payment_id")).where(p.created_at >= start, p.created_at < end),
        select(f.payment_id).where(f.payment_id.is_not(None), f.created_at >= start, f.created_at < end),
        select(i.payment_id),
    ).subquery("ids")
    joined = (
        ids.outerjoin(payments, p.payment_id == ids.c.payment_id)
        .outerjoin(ledger_transfers, f.payment_id == ids.c.payment_id)
        .outerjoin(ibps_staging, i.payment_id == ids.c.payment_id)
    )
    columns: dict[str, Any] = {
        "payment_id": ids.c.payment_id,
        "in_day": case((and_(p.created_at >= start, p.created_at < end), 1), else_=0),
        **{name: p[source] for name, source in _PAYMENT_COLUMNS},
        **{name: f[source] for name, source in _FPS_COLUMNS},
        **_ibps_columns(conn),
    }
    await conn.execute(
        insert(match).from_select(list(columns), select(*columns.values()).select_from(joined))
    )


def _from_micros(conn: AsyncConnection, column: str) -> ColumnElement[Any]:
    """Epoch microseconds (as the statement sends them) as a timestamp each backend stores natively."""
    if _is_pg(conn):
        return literal_column(f"(TIMESTAMPTZ 'epoch' + {column} * INTERVAL '1 microsecond')")
    return literal_column(
        f"(strftime('%Y-%m-%d %H:%M:%S', {column} / 1000000, 'unixepoch')"
        f" || '.' || printf('%06d', {column} % 1000000))"
    )


# expected legs ---------------------------------------------------------------------------------

_northbound = m.direction == "NORTHBOUND"
_fps_amount = case((_northbound, m.source_minor), else_=m.target_minor)
_fps_currency = case((_northbound, m.source_currency), else_=m.target_currency)
_ibps_amount = case((_northbound, m.target_minor), else_=m.source_minor)
_ibps_currency = case((_northbound, m.target_currency), else_=m.source_currency)
_in_day = m.in_day == 1


def _micro(conn: AsyncConnection, rate: ColumnElement[Any]) -> ColumnElement[Any]:
    """A rate string ("0.917700", "1") as an integer of millionths, like `domain.rate_micro`."""
    padded = rate.concat(".")
    position = func.strpos(padded, ".") if _is_pg(conn) else func.instr(padded, ".")
    whole = cast(func.substr(padded, 1, position - 1, type_=String), BigInteger)
    fraction = func.substr(
        func.substr(padded, position + 1, type_=String).concat("000000"), 1, 6, type_=String
    )
    return whole * 1_000_000 + cast(fraction, BigInteger)


def _fx_broken(conn: AsyncConnection) -> ColumnElement[bool]:
    micro = _micro(conn, m.rate)
    send_due = (m.source_minor * micro) // 1_000_000
    receive_due = (m.target_minor * 1_000_000 + micro - 1) // func.nullif(micro, 0)
    return or_(
        micro <= 0,
        and_(m.amount_type == "SEND", m.target_minor != send_due),
        and_(m.amount_type != "SEND", m.source_minor != receive_due),
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
    conn: AsyncConnection, *, as_of: datetime, timeout_s: float
) -> list[tuple[BreakType, Side, ColumnElement[bool]]]:
    """Every per-row break rule over `recon_match`, in report order: (type, side, condition)."""
    settled, rejected = m.gateway_state == "SETTLED", m.gateway_state == "REJECTED"
    rules: list[tuple[BreakType, Side, ColumnElement[bool]]] = [
        (BreakType.MISSING_AT_FPS, Side.FPS, and_(_in_day, ~rejected, m.fps_status.is_(None))),
        (
            BreakType.MISSING_AT_IBPS,
            Side.IBPS,
            and_(_in_day, m.gateway_state.in_(("SETTLED", "COMMITTING")), m.ibps_status.is_(None)),
        ),
        (
            BreakType.UNEXPECTED_AT_IBPS,
            Side.IBPS,
            and_(m.gateway_state.is_(None), m.ibps_status.in_(("PENDING", "POSTED"))),
        ),
        (
            BreakType.UNEXPECTED_AT_FPS,
            Side.FPS,
            and_(m.gateway_state.is_(None), m.fps_status.in_(("PENDING", "POSTED"))),
        ),
    ]
    for side, status, amount, currency, want_amount, want_currency in (
        (Side.FPS, m.fps_status, m.fps_amount_minor, m.fps_currency, _fps_amount, _fps_currency),
        (Side.IBPS, m.ibps_status, m.ibps_amount_minor, m.ibps_currency, _ibps_amount, _ibps_currency),
    ):
        rules += [
            (
                BreakType.AMOUNT_MISMATCH,
                side,
                and_(_in_day, amount.is_not(None), want_amount.is_not(None), amount != want_amount),
            ),
            (
                BreakType.CURRENCY_MISMATCH,
                side,
                and_(_in_day, currency.is_not(None), want_currency.is_not(None), currency != want_currency),
            ),
            (
                BreakType.STATUS_MISMATCH,
                side,
                and_(
                    _in_day,
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
                _in_day,
                ~rejected,
                m.source_minor.is_not(None),
                m.target_minor.is_not(None),
                m.rate.is_not(None),
                _fx_broken(conn),
            ),
        ),
        (
            BreakType.STUCK_PENDING,
            Side.GATEWAY,
            and_(
                _in_day,
                m.gateway_state.not_in(FINAL_STATES),
                m.created_at < as_of - timedelta(seconds=timeout_s),
            ),
        ),
    ]
    return rules


async def insert_breaks(
    conn: AsyncConnection,
    *,
    run_id: str,
    as_of: datetime,
    timeout_s: float,
    statement_duplicates: Sequence[tuple[str, int]] = (),
) -> None:
    """Write every break of the run in one pass over `recon_match`, then the repeated instructions.

    Each row gets a bit mask of the rules it breaks (one CASE per rule, evaluated once per row); only
    the rows with a non-zero mask meet the small rule table, which yields one break per set bit.
    """
    rules = break_rules(conn, as_of=as_of, timeout_s=timeout_s)
    mask = sum(
        (case((condition, 1 << position), else_=0) for position, (_, _, condition) in enumerate(rules)),
        start=literal(0, BigInteger),
    ).label("mask")
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
    await _insert_gateway_duplicates(conn, run_id)
    for payment_id, count in statement_duplicates:
        names, query = _select_break(
            run_id,
            BreakType.DUPLICATE,
            Side.IBPS,
            occurred=func.coalesce(m.created_at, m.ibps_created_at),
            occurrences=literal(count, Integer),
        )
        await _insert(conn, names, query.where(m.payment_id == payment_id))


async def _insert_gateway_duplicates(conn: AsyncConnection, run_id: str) -> None:
    """The later payments of each group that repeats (debtor, end_to_end_id, creditor, amount)."""
    keys = [m.debtor_account_id, m.end_to_end_id, m.creditor_account_id, m.source_currency, m.source_minor]
    eligible = and_(_in_day, m.end_to_end_id.is_not(None), m.gateway_state != "REJECTED")
    groups = select(*keys).where(eligible).group_by(*keys).having(func.count() > 1).subquery("groups")
    order = (m.created_at, m.payment_id)
    members = (
        select(
            *m,
            func.row_number().over(partition_by=keys, order_by=order).label("position"),
            func.first_value(m.payment_id).over(partition_by=keys, order_by=order).label("first_id"),
        )
        .select_from(match.join(groups, and_(*(key == groups.c[key.name] for key in keys))))
        .where(eligible)
        .subquery("members")
    )
    names, query = _select_break(
        run_id,
        BreakType.DUPLICATE,
        Side.GATEWAY,
        source=members,
        related=members.c.first_id,
        occurred=members.c.created_at,
    )
    await _insert(conn, names, query.where(members.c.position > 1))


# totals ----------------------------------------------------------------------------------------


async def totals(conn: AsyncConnection, *, business_date: date) -> dict[str, Any]:
    """Every total of the report from one GROUP BY over `recon_match`, folded by `fold_totals`.

    The keys are all low-cardinality (direction, states, currencies, hour, latency bucket), so the
    grouped rows number in the thousands whatever the day's volume.
    """
    start, end = business_day_bounds(business_date)
    settled = and_(_in_day, m.gateway_state == "SETTLED")
    latency = _latency_ms(conn)
    bucket = case(
        (
            and_(settled, m.settled_at.is_not(None)),
            case(
                *((latency < bound, index) for index, bound in enumerate(LATENCY_BUCKETS_MS)),
                else_=len(LATENCY_BUCKETS_MS),
            ),
        ),
        else_=null(),
    )
    keys: dict[str, ColumnElement[Any]] = {
        "in_day": m.in_day,
        "state": m.gateway_state,
        "direction": m.direction,
        "source_currency": m.source_currency,
        "target_currency": m.target_currency,
        "hour": case((_in_day, _hour(conn)), else_=null()),
        "bucket": bucket,
        "has_mid": case((m.mid_rate.is_not(None), 1), else_=0),
        "fps_kind": m.fps_kind,
        "fps_status": m.fps_status,
        "fps_currency": m.fps_currency,
        "fps_in_day": case((and_(m.fps_created_at >= start, m.fps_created_at < end), 1), else_=0),
        "ibps_kind": m.ibps_kind,
        "ibps_status": m.ibps_status,
        "ibps_currency": m.ibps_currency,
    }
    spread = m.source_minor * _micro(conn, m.mid_rate) - m.target_minor * 1_000_000
    sums: dict[str, ColumnElement[Any]] = {
        "count": func.count(),
        "source_minor": func.sum(m.source_minor),
        "target_minor": func.sum(m.target_minor),
        "spread": func.sum(case((and_(settled, m.mid_rate.is_not(None)), spread), else_=0)),
        "fps_amount_minor": func.sum(m.fps_amount_minor),
        "ibps_amount_minor": func.sum(m.ibps_amount_minor),
    }
    labelled = [column.label(name) for name, column in keys.items()]
    rows = await conn.execute(
        select(*labelled, *(column.label(name) for name, column in sums.items())).group_by(*labelled)
    )
    return fold_totals([dict(row._mapping) for row in rows])


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
            if state == "SETTLED" and int(g["has_mid"]):
                pair = fx[(g["source_currency"], g["target_currency"])]
                pair[0] += count
                pair[1] += source
                pair[2] += target
                pair[3] += int(g["spread"] or 0)
            if g["bucket"] is not None:
                latency[int(g["bucket"])] += count
        if fps_of_day:
            leg = ledgers["FPS"][(g["fps_kind"], g["fps_status"], g["fps_currency"])]
            leg[0] += count
            leg[1] += int(g["fps_amount_minor"] or 0)
        if g["ibps_status"] is not None:
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


def _hour(conn: AsyncConnection) -> ColumnElement[Any]:
    if _is_pg(conn):
        return literal_column(
            "CAST(EXTRACT(HOUR FROM (created_at AT TIME ZONE 'UTC') + INTERVAL '8 hours') AS INTEGER)"
        )
    return literal_column("CAST(strftime('%H', created_at, '+8 hours') AS INTEGER)")


def _latency_ms(conn: AsyncConnection) -> ColumnElement[Any]:
    if _is_pg(conn):
        return literal_column("(EXTRACT(EPOCH FROM (settled_at - created_at)) * 1000)")
    return literal_column("((julianday(settled_at) - julianday(created_at)) * 86400000.0)")


async def break_counts(conn: AsyncConnection, *, run_id: str) -> dict[str, int]:
    b = recon_breaks.c
    rows = await conn.execute(
        select(b.break_type, func.count()).where(b.run_id == run_id).group_by(b.break_type)
    )
    return {str(kind): int(count) for kind, count in rows}

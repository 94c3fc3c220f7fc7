"""The reconciliation break rules, every rule on every side, evaluated without a database.

`matching.break_rules` builds each rule as a SQLAlchemy expression that PostgreSQL evaluates once per
row. Here a small evaluator (`evaluate`) reads those same expressions with SQL's three-valued logic
(NULL compares to nothing, AND/OR as SQL has them) over the rows of `recon_rules_cases`, so the rules
are tested as written, case by case, in milliseconds; the PostgreSQL run of the same table
(tests/integration/test_gw_recon_rules_pg.py) keeps the evaluator honest.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from recon_rules_cases import AS_OF, CASES, COLUMNS, PAYMENTS, TIMEOUT_S, Case, row
from sqlalchemy import BigInteger, Integer, Numeric
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    Cast,
    ClauseList,
    ColumnClause,
    ExpressionClauseList,
    False_,
    Grouping,
    Label,
    Null,
    True_,
    UnaryExpression,
)
from sqlalchemy.sql.elements import (
    Case as CaseElement,
)
from sqlalchemy.sql.functions import Function

from fpslink.reconciliation import matching
from fpslink.reconciliation.domain import BreakType, Side, business_day_bounds, rate_micro
from fpslink.reconciliation.models import match

m = match.c


def rules() -> list[tuple[BreakType, Side, Any]]:
    """The rules of a run at AS_OF, built afresh by each test (never once at import, so that the
    code each test exercises is the code under test at that moment, as mutation testing needs)."""
    return matching.break_rules(m, as_of=AS_OF, timeout_s=TIMEOUT_S)


# --- a SQL evaluator for the expressions the rules use ----------------------------------------------


def _kleene_and(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _kleene_or(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _int_divide(a: Any, b: Any) -> Any:
    """PostgreSQL's `/` on integers: truncates toward zero; division by zero is an error."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a) / Decimal(b)
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


COMPARISONS: dict[Any, Callable[[Any, Any], Any]] = {
    operators.eq: operator.eq,
    operators.ne: operator.ne,
    operators.lt: operator.lt,
    operators.le: operator.le,
    operators.gt: operator.gt,
    operators.ge: operator.ge,
    operators.add: operator.add,
    operators.sub: operator.sub,
    operators.mul: operator.mul,
}


def evaluate(node: Any, values: dict[str, Any]) -> Any:
    """The value PostgreSQL gives `node` on a row of `recon_match` holding `values` (None is NULL)."""
    if isinstance(node, (Label, Grouping)):
        return evaluate(node.element, values)
    if isinstance(node, ColumnClause):
        return values[node.name]
    if isinstance(node, BindParameter):
        return node.effective_value
    if isinstance(node, Null):
        return None
    if isinstance(node, True_):
        return True
    if isinstance(node, False_):
        return False
    if isinstance(node, Cast):
        return _cast(evaluate(node.clause, values), node.type)
    if isinstance(node, CaseElement):
        for condition, result in node.whens:
            if evaluate(condition, values) is True:
                return evaluate(result, values)
        return None if node.else_ is None else evaluate(node.else_, values)
    if isinstance(node, Function):
        return _function(node.name.lower(), [evaluate(arg, values) for arg in node.clauses])
    if isinstance(node, UnaryExpression) and node.operator is operators.inv:
        inner = evaluate(node.element, values)
        return None if inner is None else not inner
    if isinstance(node, (ClauseList, ExpressionClauseList)):
        parts = [evaluate(clause, values) for clause in node.clauses]
        if node.operator in (operators.and_, operators.or_):
            return _kleene_and(parts) if node.operator is operators.and_ else _kleene_or(parts)
        if node.operator in COMPARISONS:  # a flattened a + b + c
            total = parts[0]
            for part in parts[1:]:
                total = None if total is None or part is None else COMPARISONS[node.operator](total, part)
            return total
    if isinstance(node, BinaryExpression):
        return _binary(node, values)
    raise NotImplementedError(f"no evaluation for {type(node).__name__}: {node}")


def _binary(node: BinaryExpression[Any], values: dict[str, Any]) -> Any:
    op, left = node.operator, evaluate(node.left, values)
    if op is operators.is_:
        return left is evaluate(node.right, values)
    if op is operators.is_not:
        return left is not evaluate(node.right, values)
    right = evaluate(node.right, values)
    if op in (operators.in_op, operators.not_in_op):
        if left is None:
            return None
        inside = left in right
        return inside if op is operators.in_op else not inside
    if left is None or right is None:
        return None
    if op in COMPARISONS:
        return COMPARISONS[op](left, right)
    if isinstance(op, operators.custom_op) and op.opstring == "/":
        return _int_divide(left, right)
    raise NotImplementedError(f"no evaluation for operator {op}")


def _cast(value: Any, to: Any) -> Any:
    if value is None:
        return None
    if isinstance(to, (BigInteger, Integer)):  # numeric -> integer rounds half away from zero
        return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if isinstance(to, Numeric):
        return Decimal(str(value))
    raise NotImplementedError(f"no cast to {to}")


def _function(name: str, args: list[Any]) -> Any:
    if name == "trunc":
        value, places = args
        return None if value is None else value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)
    if name == "nullif":
        return None if args[0] == args[1] else args[0]
    raise NotImplementedError(f"no function {name}")


def derived(values: dict[str, Any]) -> dict[str, Any]:
    """The row with the columns the matcher derives (expected legs, rate in millionths) filled in by
    the matcher's own expressions, as `day_join` and `_sides_of` do."""
    expressions = matching._derived({name: m[name] for name in COLUMNS})
    return {**values, **{name: evaluate(expr, values) for name, expr in expressions.items()}}


def breaks_of(values: dict[str, Any]) -> set[tuple[BreakType, Side]]:
    full = derived(values)
    return {(kind, side) for kind, side, condition in rules() if evaluate(condition, full) is True}


def expected_mask(case: Case) -> int:
    return sum(1 << n for n, (kind, side, _) in enumerate(rules()) if (kind, side) in case.breaks)


# --- the table ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_row_gives_exactly_its_breaks(case: Case) -> None:
    assert breaks_of(case.row) == set(case.breaks)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_mask_has_one_bit_per_break_in_rule_order(case: Case) -> None:
    assert evaluate(matching.break_mask(rules()), derived(case.row)) == expected_mask(case)


def test_the_table_covers_every_rule_on_every_side() -> None:
    per_row = {(kind, side) for kind, side, _ in rules()}
    assert per_row == {pair for case in CASES for pair in case.breaks}
    assert {kind for kind, _ in per_row} == set(BreakType) - {BreakType.DUPLICATE}
    for kind in (BreakType.AMOUNT_MISMATCH, BreakType.CURRENCY_MISMATCH, BreakType.STATUS_MISMATCH):
        assert {side for k, side in per_row if k is kind} == {Side.FPS, Side.IBPS}, kind


def test_every_rule_has_a_row_that_breaks_it_alone() -> None:
    alone = {next(iter(case.breaks)) for case in CASES if len(case.breaks) == 1}
    assert alone == {(kind, side) for kind, side, _ in rules()}


def test_the_rules_come_in_report_order() -> None:
    assert [(kind.value, side.value) for kind, side, _ in rules()] == [
        ("MISSING_AT_FPS", "FPS"),
        ("MISSING_AT_IBPS", "IBPS"),
        ("UNEXPECTED_AT_IBPS", "IBPS"),
        ("UNEXPECTED_AT_FPS", "FPS"),
        ("AMOUNT_MISMATCH", "FPS"),
        ("CURRENCY_MISMATCH", "FPS"),
        ("STATUS_MISMATCH", "FPS"),
        ("AMOUNT_MISMATCH", "IBPS"),
        ("CURRENCY_MISMATCH", "IBPS"),
        ("STATUS_MISMATCH", "IBPS"),
        ("FX_MISMATCH", "GATEWAY"),
        ("STUCK_PENDING", "GATEWAY"),
    ]


@pytest.mark.parametrize("side", [Side.FPS, Side.IBPS])
@pytest.mark.parametrize("kind", ["NB-SEND", "SB-RECEIVE"])
def test_a_rejected_payment_whose_leg_is_posted_is_a_status_mismatch(kind: str, side: Side) -> None:
    """Money moved on one side while the bank was told "rejected": the break that must never go quiet."""
    leg = "fps_status" if side is Side.FPS else "ibps_status"
    assert breaks_of(row(kind, "REJECTED", **{leg: "POSTED"})) == {(BreakType.STATUS_MISMATCH, side)}


# --- the expressions the rules read --------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PAYMENTS))
def test_the_expected_legs_follow_the_direction(kind: str) -> None:
    p = PAYMENTS[kind]
    full = derived(row(kind))
    source, target = (p["source_minor"], p["source_currency"]), (p["target_minor"], p["target_currency"])
    fps, ibps = (source, target) if p["direction"] == "NORTHBOUND" else (target, source)
    assert (full["want_fps_minor"], full["want_fps_currency"]) == fps
    assert (full["want_ibps_minor"], full["want_ibps_currency"]) == ibps


@pytest.mark.parametrize(
    "rate", ["0.917700", "1", "1.08424", "1.084240", "0.9177009", "0.0000019", "12.5", "0"]
)
def test_the_rate_in_millionths_agrees_with_the_domain(rate: str) -> None:
    assert derived(row(rate=rate))["rate_micro"] == rate_micro(rate)


def test_a_row_without_a_payment_expects_no_legs() -> None:
    full = derived(row(state=None))
    assert [full[f"want_{leg}_{what}"] for leg in ("fps", "ibps") for what in ("minor", "currency")] == [
        None
    ] * 4


@pytest.mark.parametrize(
    ("changes", "looked_up"),
    [
        ({}, False),
        ({"gateway_state": None}, True),
        ({"fps_status": None}, True),
        ({"ibps_status": None}, False),
    ],
    ids=["complete", "no-payment", "no-fps-leg", "no-ibps-leg"],
)
def test_a_row_lacking_its_payment_or_fps_leg_is_looked_up_by_id(
    changes: dict[str, Any], looked_up: bool
) -> None:
    assert evaluate(matching.needs_lookup(m), {**row(), **changes}) is looked_up


DAY = date(2026, 6, 22)
WINDOW_S = 90.0


@pytest.mark.parametrize(
    ("offset_s", "in_day", "ibps_status", "near"),
    [
        (0, 1, None, True),  # the first instant of the day
        (WINDOW_S - 1, 1, None, True),
        (WINDOW_S, 1, None, False),
        (12 * 3600, 1, None, False),
        (86_400 - WINDOW_S - 1, 1, None, False),
        (86_400 - WINDOW_S, 1, None, True),
        (86_399, 1, None, True),
        (10, 1, "POSTED", False),  # its entry is on the day's statement
        (10, 0, None, False),  # a payment of another day
    ],
)
def test_near_the_cut_off(offset_s: float, in_day: int, ibps_status: str | None, near: bool) -> None:
    start, _ = business_day_bounds(DAY)
    values = {"in_day": in_day, "ibps_status": ibps_status, "created_at": start + timedelta(seconds=offset_s)}
    assert evaluate(matching.near_cut_off(m, business_date=DAY, window_s=WINDOW_S), values) is near


def test_the_evaluator_uses_sql_nulls() -> None:
    """A NULL state is neither REJECTED nor not: `~rejected` must not make a row with no payment break."""
    values = {"gateway_state": None, "in_day": 1, "fps_status": None}
    assert evaluate(m.gateway_state != "REJECTED", values) is None
    assert evaluate(rules()[0][2], values) is None
    assert evaluate(m.gateway_state.in_(("SETTLED",)), values) is None
    assert evaluate(m.gateway_state.is_(None), values) is True
    assert _int_divide(-7, 2) == -3 and _int_divide(7, 2) == 3
    assert datetime(2026, 1, 1, tzinfo=UTC) < AS_OF

"""The break-rule table (tests/recon_rules_cases.py) run through PostgreSQL, as a reconciliation runs it.

The unit tests read the rules with a Python evaluator; this runs the very SQL on the database: the
rows go into a `recon_match` of their own, the expected legs and the rate are derived by the
matcher's UPDATE expressions, and each row's break mask must hold exactly the table's breaks. If the
evaluator and PostgreSQL ever disagree (NULLs, integer division, casts), this fails.
"""

from __future__ import annotations

import uuid

from gw_support import Harness
from recon_rules_cases import AS_OF, CASES, COLUMNS, TIMEOUT_S, Case
from sqlalchemy import insert, select, update

from fpslink.reconciliation import matching
from fpslink.reconciliation.domain import rate_micro
from fpslink.reconciliation.models import match

m = match.c


def expected_mask(rules: list[tuple[object, object, object]], case: Case) -> int:
    return sum(1 << n for n, (kind, side, _) in enumerate(rules) if (kind, side) in case.breaks)


async def test_postgresql_gives_each_row_of_the_table_exactly_its_breaks(harness: Harness) -> None:
    rules = matching.break_rules(m, as_of=AS_OF, timeout_s=TIMEOUT_S)
    by_id = {str(uuid.uuid4()): case for case in CASES}
    async with harness.gw.engine.connect() as conn:
        await matching.create_work_tables(conn)
        try:
            await conn.execute(
                insert(match),
                [{"payment_id": pid, **{c: case.row[c] for c in COLUMNS}} for pid, case in by_id.items()],
            )
            await conn.execute(update(match).values(**matching._derived({c: m[c] for c in COLUMNS})))
            rows = await conn.execute(select(m.payment_id, m.rate, m.rate_micro, matching.break_mask(rules)))
            found = {pid: (rate, micro, int(mask)) for pid, rate, micro, mask in rows}
        finally:
            await matching.drop_work_tables(conn)
            await conn.rollback()

    assert set(found) == set(by_id)
    wrong = {
        by_id[pid].id: (mask, expected_mask(rules, by_id[pid]))
        for pid, (_, _, mask) in found.items()
        if mask != expected_mask(rules, by_id[pid])
    }
    assert wrong == {}, "(mask PostgreSQL gave, mask the table wants) per case"
    for rate, micro, _ in found.values():
        if rate is not None:
            assert micro == rate_micro(rate), rate

"""A small seeded chaos run on PostgreSQL: faults on every IBPS call and two gateway kills."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pgtest
from gw_support import free_port

from fpslink_tools import chaos


async def test_a_seeded_chaos_run_loses_nothing(tmp_path: object) -> None:
    cfg = chaos.ChaosConfig(
        payments=150,
        fault_rate=0.15,
        kills=2,
        seed=20250622,
        concurrency=16,
        workers=1,
        accounts_per_bank=4,
        database_url=pgtest.url(f"fpslink_t_chaos_{pgtest.RUN}"),
        port=free_port(),
        ibps_port=free_port(),
        max_seconds=240,
        workdir=Path(str(tmp_path)),
    )
    report = await chaos.run(cfg)
    assert report.kills == 2
    assert sum(report.by_status.values()) == 150
    assert report.pending == 0 and report.unanswered == 0
    assert all(amount == Decimal(0) for amount in report.money_drift.values()), report.money_drift
    assert all(amount == Decimal(0) for amount in report.holds_left.values()), report.holds_left
    assert sum(sum(kinds.values()) for kinds in report.faults_injected.values()) > 0
    assert report.invariant_violations == []
    assert report.ok

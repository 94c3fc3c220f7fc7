"""Reconciliation over the API and the CLI: formats, roles, unknown ids, bad dates."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gw_support import IBPS_TOKEN, OPERATOR_KEY, Harness, problem
from recon_support import ReconStack, a_day, real_time, recon_stack

from fpslink.reconciliation.matching import STAGING_COLUMNS
from fpslink.reconciliation.service import parse_page

pytestmark = pytest.mark.settings(southbound_hours="00:00-24:00")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ReconStack]:
    async with recon_stack("recon_api", tmp_path_factory.mktemp("recon-api")) as made:
        yield made


async def test_report_formats_roles_and_errors(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    bank = await h.bank("FPS")

    created = await h.http.post(
        "/v1/reconciliations", json={"business_date": today.isoformat()}, headers=h.operator
    )
    assert created.status_code == 201, created.text
    summary = created.json()
    run_id = summary["reconciliation_id"]
    assert summary["business_date"] == today.isoformat()
    assert summary["status"] == "COMPLETED"
    assert summary["break_count"] == 0
    assert "breaks" not in summary

    as_json = await h.http.get(f"/v1/reconciliations/{run_id}?format=json", headers=h.operator)
    assert as_json.status_code == 200
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["breaks"] == []

    as_csv = await h.http.get(f"/v1/reconciliations/{run_id}?format=csv", headers=h.operator)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows == []
    assert as_csv.text.startswith("business_date,break_type,side,payment_id")

    as_html = await h.http.get(f"/v1/reconciliations/{run_id}?format=html", headers=h.operator)
    assert as_html.status_code == 200
    assert as_html.headers["content-type"].startswith("text/html")
    assert as_html.text.count("<svg") == 3
    assert "No breaks" in as_html.text
    assert "http://" not in as_html.text.replace('xmlns="http://www.w3.org/2000/svg"', "")

    problem(await h.http.get(f"/v1/reconciliations/{run_id}", headers=bank.headers), 403, "OPERATOR_ONLY")
    problem(
        await h.http.post(
            "/v1/reconciliations", json={"business_date": today.isoformat()}, headers=bank.headers
        ),
        403,
        "OPERATOR_ONLY",
    )
    problem(
        await h.http.get("/v1/reconciliations/00000000-0000-4000-8000-000000000000", headers=h.operator),
        404,
        "RECONCILIATION_NOT_FOUND",
    )
    for bad in ("2026-13-01", "yesterday", "", "2026-02-30"):
        problem(
            await h.http.post("/v1/reconciliations", json={"business_date": bad}, headers=h.operator),
            422,
            "VALIDATION_ERROR",
        )
    problem(
        await h.http.post("/v1/reconciliations", json={"business_date": "2999-01-01"}, headers=h.operator),
        422,
        "VALIDATION_ERROR",
    )
    problem(
        await h.http.get(f"/v1/reconciliations/{run_id}?format=pdf", headers=h.operator),
        422,
        "VALIDATION_ERROR",
    )
    assert day.northbound


async def test_breaks_in_csv_parse_with_both_sides(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    day = await a_day(h)
    from sqlalchemy import select, update

    from fpslink.ledger.models import ledger_transfers

    async with h.gw.engine.begin() as conn:
        before = (
            await conn.execute(
                select(ledger_transfers.c.amount_minor).where(ledger_transfers.c.payment_id == day.northbound)
            )
        ).scalar_one()
        await conn.execute(
            update(ledger_transfers)
            .where(ledger_transfers.c.payment_id == day.northbound)
            .values(amount_minor=1)
        )
    try:
        created = await h.http.post(
            "/v1/reconciliations", json={"business_date": today.isoformat()}, headers=h.operator
        )
        run_id = created.json()["reconciliation_id"]
        text = (await h.http.get(f"/v1/reconciliations/{run_id}?format=csv", headers=h.operator)).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["break_type"], r["side"], r["payment_id"]) for r in rows] == [
            ("AMOUNT_MISMATCH", "FPS", day.northbound)
        ]
        assert rows[0]["fps_value"] == "POSTED 0.01 HKD"
        assert rows[0]["expected"] == "1000.00 HKD"
        page = (await h.http.get(f"/v1/reconciliations/{run_id}?format=html", headers=h.operator)).text
        assert "AMOUNT_MISMATCH" in page and "POSTED 0.01 HKD" in page
    finally:
        async with h.gw.engine.begin() as conn:
            await conn.execute(
                update(ledger_transfers)
                .where(ledger_transfers.c.payment_id == day.northbound)
                .values(amount_minor=before)
            )


async def test_cli_writes_each_format(harness: Harness, stack: ReconStack, tmp_path: Path) -> None:
    h = harness
    today = await real_time(h)
    await a_day(h)
    env = {
        **os.environ,
        "FPSLINK_DATABASE_URL": stack.gateway_db,
        "FPSLINK_IBPS_URL": stack.ibps_url,
        "FPSLINK_IBPS_TOKEN": IBPS_TOKEN,
        "FPSLINK_OPERATOR_KEY": OPERATOR_KEY,
    }
    for fmt in ("json", "csv", "html"):
        out = tmp_path / f"report.{fmt}"
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "fpslink.cli",
                "recon",
                "--date",
                today.isoformat(),
                "--format",
                fmt,
                "--output",
                str(out),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "0 breaks" in done.stderr
        assert out.stat().st_size > 100
    assert (tmp_path / "report.html").read_text().count("<svg") == 3
    bad = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "fpslink.cli",
            "recon",
            "--date",
            "2026-02-30",
            "--output",
            str(tmp_path / "x"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2


async def test_the_tsv_statement_pages_agree_with_the_json_export(harness: Harness) -> None:
    h = harness
    today = await real_time(h)
    await a_day(h)
    expected, after = [], 0
    for _ in range(100):
        body = await h.gw.ibps.statement_page(today, after=after, limit=1_000)
        assert body.columns[:8] == STAGING_COLUMNS
        expected += [tuple(row[:8]) for row in body.entries]
        if body.next_after is None:
            break
        after = body.next_after
    assert len(expected) >= 5

    pages, after = [], 0
    for _ in range(100):
        page = await h.gw.ibps.statement_tsv_page(today, after=after, limit=2)
        assert page.columns == STAGING_COLUMNS
        assert page.count <= 2
        assert (page.total is not None) == (after == 0)
        pages.append(page)
        if page.next_after is None:
            break
        after = page.next_after
    assert pages[0].total == len(expected)
    rows = [row for page in pages for row in parse_page(page).rows()]
    assert rows == expected
    assert sum(page.count for page in pages) == len(expected)

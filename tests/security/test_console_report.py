"""The HTML reconciliation report served over the API carries the console's policy for that page:
opened in a browser, it runs no script, loads nothing and is never sniffed into another type."""

from __future__ import annotations

from console_support import browser
from gw_support import OPERATOR_KEY, Harness


async def test_the_api_report_has_the_consoles_policy_and_nosniff(harness: Harness) -> None:
    h = harness
    run = await h.http.post("/v1/reconciliations", json={"business_date": "2026-06-22"}, headers=h.operator)
    assert run.status_code == 201, run.text
    run_id = run.json()["reconciliation_id"]

    async with browser(h, OPERATOR_KEY) as console:
        in_console = await console.get(f"/console/reconciliations/{run_id}/report")
    assert in_console.status_code == 200
    console_policy = in_console.headers["content-security-policy"]
    assert "default-src 'none'" in console_policy and "'sha256-" in console_policy
    assert "script-src" not in console_policy

    over_api = await h.http.get(f"/v1/reconciliations/{run_id}?format=html", headers=h.operator)
    assert over_api.status_code == 200 and over_api.headers["content-type"].startswith("text/html")
    assert over_api.text == in_console.text
    assert over_api.headers.get("content-security-policy") == console_policy
    assert over_api.headers.get("x-content-type-options") == "nosniff"

"""The console's certification page: a bank sees its own runs and their certificates, the operator
every bank's, another bank none; the certificate keeps the report's policy (its own styles, no script).

Before: the console had no certification page.
"""

from __future__ import annotations

from gw_support import OPERATOR_KEY, Harness
from test_gw_console_pages import browser


async def test_a_bank_reads_its_runs_and_certificates_in_the_console(harness: Harness) -> None:
    h = harness
    payer, other = await h.bank("FPS"), await h.bank("FPS")
    debtor = await h.account(payer)
    payee = await h.bank("IBPS")
    creditor = await h.account(payee)
    started = await h.http.post(
        "/v1/certifications",
        json={"suite": "WEBHOOKS", "debtor_account_id": debtor, "creditor": {"account_id": creditor}},
        headers=payer.headers,
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["certification_id"]
    running_certificate = f"/console/certifications/{run_id}/certificate"

    async with browser(h, payer.api_key) as client:
        listed = await client.get("/console/certifications")
        assert listed.status_code == 200 and run_id[:8] in listed.text and "RUNNING" in listed.text
        assert running_certificate not in listed.text  # no certificate before the run has ended
        assert (await client.get(running_certificate)).status_code == 409

    ended = await h.http.post(f"/v1/certifications/{run_id}/complete", headers=payer.headers)
    assert ended.status_code == 200 and ended.json()["status"] == "FAILED", ended.text

    async with browser(h, payer.api_key) as client:
        listed = await client.get("/console/certifications")
        assert running_certificate in listed.text and 'class="badge failed"' in listed.text
        page = await client.get(running_certificate)
        assert page.status_code == 200, page.text
        assert "script-src" not in page.headers["content-security-policy"]
        assert "'unsafe-inline'" not in page.headers["content-security-policy"]
        assert 'class="FAILED">FAILED<' in page.text and "WEBHOOK_DUPLICATE" in page.text
    async with browser(h, other.api_key) as client:
        assert run_id[:8] not in (await client.get("/console/certifications")).text
        assert (await client.get(running_certificate)).status_code == 404
    async with browser(h, OPERATOR_KEY) as client:
        listed = await client.get("/console/certifications")
        assert run_id[:8] in listed.text and payer.participant_id in listed.text
        assert (await client.get(running_certificate)).status_code == 200

"""Certification runs over the API of a served sandbox: a run perturbs only its own bank's tagged
requests, one run per bank at a time, and refuses what it cannot run, with stable codes.

Before: there was no /v1/certifications.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from certification_support import OPERATOR, Sandbox, parties, sandbox, starts_in, statuses
from gw_support import problem

__all__ = ["sandbox"]  # the module's served sandbox (a fixture)


async def test_a_run_perturbs_only_its_banks_tagged_payments(sandbox: Sandbox) -> None:
    payer, payee = await parties(sandbox.url)
    bystander, _ = await parties(sandbox.url)
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30) as http:
        started = await http.post(
            "/v1/certifications",
            json={
                "suite": "PAYMENTS",
                "debtor_account_id": payer.account,
                "creditor": {"proxy_type": "MOBILE", "proxy_value": payee.proxy},
            },
            headers=payer.headers,
        )
        assert started.status_code == 201, started.text
        run = started.json()
        assert run["status"] == "RUNNING" and {s["status"] for s in run["scenarios"]} == {"WAITING"}
        lost = next(s for s in run["scenarios"] if s["scenario"] == "LOST_REPLY")
        assert lost["client_does"].startswith(f"Pay {lost['amount']} HKD from {payer.account}")
        await asyncio.sleep(starts_in(run))

        def body(account: str, amount: str) -> dict[str, Any]:
            return {
                "debtor_account_id": account,
                "creditor": {"proxy_type": "MOBILE", "proxy_value": payee.proxy},
                "amount": amount,
                "currency": "HKD",
                "purpose": "FAMILY_SUPPORT",
            }

        def key() -> dict[str, str]:
            return {"Idempotency-Key": str(uuid.uuid4())}

        # another bank paying the very amount is not touched
        other = await http.post(
            "/v1/payments",
            json=body(bystander.account, lost["amount"]),
            headers={**bystander.headers, **key()},
        )
        assert other.status_code == 201 and other.json()["status"] == "SETTLED", other.text
        # nor is the certifying bank's payment of another amount
        untagged = await http.post(
            "/v1/payments", json=body(payer.account, "99.99"), headers={**payer.headers, **key()}
        )
        assert untagged.status_code == 201 and untagged.json()["status"] == "SETTLED", untagged.text
        # the tagged one is: its reply is lost
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(
                "/v1/payments", json=body(payer.account, lost["amount"]), headers={**payer.headers, **key()}
            )
        seen = (await http.get(f"/v1/certifications/{run['certification_id']}", headers=payer.headers)).json()
        judged = next(s for s in seen["scenarios"] if s["scenario"] == "LOST_REPLY")
        assert judged["status"] == "WAITING" and len(judged["evidence"]) == 1

        # one run at a time, the bank's own; the operator reads but does not start one
        again = await http.post(
            "/v1/certifications",
            json={"debtor_account_id": payer.account, "creditor": {"account_id": payee.account}},
            headers=payer.headers,
        )
        problem(again, 409, "CERTIFICATION_RUNNING")
        problem(
            await http.get(f"/v1/certifications/{run['certification_id']}", headers=bystander.headers),
            404,
            "CERTIFICATION_NOT_FOUND",
        )
        assert (
            await http.get(f"/v1/certifications/{run['certification_id']}", headers=OPERATOR)
        ).status_code == 200
        problem(
            await http.post(
                "/v1/certifications",
                json={"debtor_account_id": payer.account, "creditor": {"account_id": payee.account}},
                headers=OPERATOR,
            ),
            403,
            "PARTICIPANT_ONLY",
        )
        problem(
            await http.get(
                f"/v1/certifications/{run['certification_id']}/certificate", headers=payer.headers
            ),
            409,
            "CERTIFICATION_NOT_COMPLETE",
        )
        problem(
            await http.put(
                f"/v1/certifications/{run['certification_id']}/record",
                content=b"id,state\r\n",
                headers={**payer.headers, "Content-Type": "text/csv"},
            ),
            422,
            "CERTIFICATION_RECORD_INVALID",
        )
        ended = await http.post(
            f"/v1/certifications/{run['certification_id']}/complete", headers=payer.headers
        )
        assert ended.status_code == 200, ended.text
        done = ended.json()
        assert done["status"] == "FAILED" and statuses(done)["LOST_REPLY"] == "FAILED"
        assert next(s for s in done["scenarios"] if s["scenario"] == "LOST_REPLY")["reason"].startswith(
            "not done when the run ended"
        )
        # once ended, the same amounts pass untouched again
        after = await http.post(
            "/v1/payments", json=body(payer.account, lost["amount"]), headers={**payer.headers, **key()}
        )
        assert after.status_code == 201, after.text


async def test_a_run_refuses_what_it_cannot_run(sandbox: Sandbox) -> None:
    payer, payee = await parties(sandbox.url)
    other, _ = await parties(sandbox.url)
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30, headers=payer.headers) as http:
        foreign = {"debtor_account_id": other.account, "creditor": {"account_id": payee.account}}
        problem(await http.post("/v1/certifications", json=foreign), 404, "ACCOUNT_NOT_FOUND")
        same_side = {"debtor_account_id": payer.account, "creditor": {"account_id": other.account}}
        problem(await http.post("/v1/certifications", json=same_side), 422, "CERTIFICATION_CREDITOR_INVALID")
        unknown = {"debtor_account_id": payer.account, "creditor": {"account_id": "CN0000000000000000"}}
        problem(await http.post("/v1/certifications", json=unknown), 422, "CERTIFICATION_CREDITOR_INVALID")
        suite = {
            "suite": "ALL",
            "debtor_account_id": payer.account,
            "creditor": {"account_id": payee.account},
        }
        problem(await http.post("/v1/certifications", json=suite), 422, "VALIDATION_ERROR")
        problem(await http.get("/v1/certifications/not-a-run"), 404, "CERTIFICATION_NOT_FOUND")

"""A gateway process SIGKILLed at each settlement step, then restarted: recovery converges.

The first gateway runs with FPSLINK_CRASH_AT=<step> and dies by SIGKILL when a payment reaches that
step, with whatever it had committed; a second gateway on the same database finds the payment in
its recovery sweep and drives it to its end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from gateway_stack import Stack
from gw_support import IBPS_TOKEN, OPERATOR_KEY, bank_code, free_port, start_process, stop_process
from test_gw_concurrency import _invariants

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
EXPECTED = {
    "accepted": "REJECTED",
    "ibps_prepared": "REJECTED",
    "decided": "SETTLED",
    "ibps_finished": "SETTLED",
}


def _env(stack: Stack, **extra: str) -> dict[str, str]:
    return {
        "FPSLINK_DATABASE_URL": stack.gateway_db,
        "FPSLINK_IBPS_URL": stack.ibps_url,
        "FPSLINK_IBPS_TOKEN": IBPS_TOKEN,
        "FPSLINK_OPERATOR_KEY": OPERATOR_KEY,
        "FPSLINK_SOUTHBOUND_HOURS": "00:00-24:00",
        "FPSLINK_PAYMENT_DEADLINE_S": "1",
        "FPSLINK_SETTLEMENT_TIMEOUT_S": "1.5",
        "FPSLINK_RECOVERY_INTERVAL_S": "0.2",
        **extra,
    }


async def _gateway(stack: Stack, port: int, **extra: str) -> Any:
    return await asyncio.to_thread(
        start_process,
        ["-m", "fpslink.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
        env=_env(stack, **extra),
        health_url=f"http://127.0.0.1:{port}/healthz",
        log=stack.logs / f"gateway-kill-{port}.log",
    )


async def _open(http: httpx.AsyncClient, system: str, opening: str) -> tuple[str, str]:
    code = bank_code(system[:2])
    created = await http.post(
        "/v1/participants", json={"participant_id": code, "name": code, "system": system}, headers=OPERATOR
    )
    account = await http.post(
        "/v1/accounts",
        json={
            "participant_id": code,
            "holder_name": "A B",
            "currency": "HKD" if system == "FPS" else "CNY",
            "opening_balance": opening,
        },
        headers=OPERATOR,
    )
    return created.json()["api_key"], account.json()["account_id"]


CASES = [(point, "NORTHBOUND") for point in EXPECTED] + [
    ("ibps_prepared", "SOUTHBOUND"),
    ("decided", "SOUTHBOUND"),
]


@pytest.mark.parametrize(("point", "direction"), CASES)
async def test_a_killed_gateway_recovers_every_payment(stack: Stack, point: str, direction: str) -> None:
    port = free_port()
    first = await _gateway(stack, port, FPSLINK_CRASH_AT=point)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        hk_key, hk_acc = await _open(http, "FPS", "1000.00")
        cn_key, cn_acc = await _open(http, "IBPS", "1000.00")
        key, debtor, creditor, currency = (
            (hk_key, hk_acc, cn_acc, "HKD") if direction == "NORTHBOUND" else (cn_key, cn_acc, hk_acc, "CNY")
        )
        body = {
            "debtor_account_id": debtor,
            "creditor": {"account_id": creditor},
            "amount": "100.00",
            "currency": currency,
            "purpose": "GIFT",
        }
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
        with pytest.raises(httpx.HTTPError):
            await http.post("/v1/payments", json=body, headers=headers)
    await asyncio.to_thread(first.wait, 15)
    assert first.returncode is not None and first.returncode != 0  # it was killed, not stopped

    second = await _gateway(stack, port)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            bank = {"Authorization": f"Bearer {key}"}
            deadline = time.monotonic() + 30
            payment: dict[str, Any] = {}
            while time.monotonic() < deadline:
                items = (await http.get("/v1/payments", headers=bank)).json()["items"]
                assert len(items) == 1
                payment = items[0]
                if payment["status"] != "PENDING":
                    break
                await asyncio.sleep(0.3)
            assert payment["status"] == EXPECTED[point], payment
            replay = await http.post("/v1/payments", json=body, headers=headers)
            assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
            assert replay.json()["status"] == EXPECTED[point]
            moved = Decimal("100.00") if EXPECTED[point] == "SETTLED" else Decimal(0)
            account = (await http.get(f"/v1/accounts/{debtor}", headers=bank)).json()
            assert (Decimal(account["balance"]), account["held"]) == (Decimal("1000.00") - moved, "0.00")
    finally:
        await asyncio.to_thread(stop_process, second)
    await _invariants(stack)

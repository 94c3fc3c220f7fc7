"""Schemathesis over the gateway's OpenAPI: no 5xx and no answer outside the documented schema.

The gateway runs as a live server on 127.0.0.1 (real database, real mock_ibps), and every operation
is called with a bounded number of generated examples, once as a bank and once as the operator.
Fault injection is left out: it changes mock_ibps for every other test sharing it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from gateway_stack import Stack, settings_for
from gw_support import OPERATOR_KEY, bank_code, free_port
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from fpslink.app import create_app

MAX_EXAMPLES = 25
SKIPPED_PREFIXES = ("/v1/sandbox/faults",)


@pytest.fixture
def live_gateway(stack: Stack) -> Iterator[tuple[str, dict[str, Any]]]:
    app = create_app(settings_for(stack, webhooks_enabled=False, southbound_hours="00:00-24:00"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the gateway did not start"
    try:
        yield base, app.openapi()
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _seed(base: str) -> dict[str, str]:
    """A bank with a funded account, so generated requests sometimes reach the deeper paths."""
    op = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        code = bank_code("HK")
        bank = http.post(
            "/v1/participants", json={"participant_id": code, "name": code, "system": "FPS"}, headers=op
        )
        assert bank.status_code == 201, bank.text
        opened = http.post(
            "/v1/accounts",
            json={
                "participant_id": code,
                "holder_name": "CHAN Tai Man",
                "currency": "HKD",
                "opening_balance": "100.00",
            },
            headers=op,
        )
        assert opened.status_code == 201, opened.text
        return {"Authorization": f"Bearer {bank.json()['api_key']}"}


def _checker(operation: Any, base: str, auth: dict[str, str]) -> Any:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=base,
            headers=auth,
            checks=[not_a_server_error, response_schema_conformance],
            timeout=30,
        )

    return check


def _run(base: str, spec: dict[str, Any], auths: list[dict[str, str]]) -> list[str]:
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(SKIPPED_PREFIXES):
            continue
        for auth in auths:
            try:
                _checker(operation, base, auth)()
            except Exception as exc:
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    return failures


async def test_openapi_fuzzing_finds_no_server_errors(live_gateway: tuple[str, dict[str, Any]]) -> None:
    base, spec = live_gateway
    bank = await asyncio.to_thread(_seed, base)
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    started = time.monotonic()
    failures = await asyncio.to_thread(_run, base, spec, [bank, operator])
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 120

"""A served sandbox for the certification kit's tests, with ports its webhooks may reach, and banks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from gateway_stack import Stack, served_gateway
from gw_support import OPERATOR_KEY, cn_mobile, free_port, funded_bank

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@dataclass(frozen=True)
class Sandbox:
    url: str
    receivers: tuple[int, ...]
    """Ports of 127.0.0.1 that webhooks may reach."""


@dataclass(frozen=True)
class Party:
    participant_id: str
    key: str
    account: str
    proxy: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
async def sandbox(stack: Stack) -> AsyncIterator[Sandbox]:
    """`fpslink serve` as deployed, its settings the defaults but for the webhook receivers allowed and
    southbound service hours all day (the tests run at any hour)."""
    ports = tuple(free_port() for _ in range(4))
    allow = ",".join(f"127.0.0.1:{p}" for p in ports)
    env = {"FPSLINK_WEBHOOK_ALLOW": allow, "FPSLINK_SOUTHBOUND_HOURS": "00:00-24:00"}
    async with served_gateway(stack, "certification", **env) as url:
        yield Sandbox(url, ports)


async def party(http: httpx.AsyncClient, system: str) -> Party:
    """A new bank with a funded account (an IBPS bank's with a +86 number)."""
    code, key, account = await funded_bank(http, system)
    proxy = None
    if system == "IBPS":
        proxy = cn_mobile()
        registered = await http.post(
            "/v1/proxies",
            json={"proxy_type": "MOBILE", "proxy_value": proxy, "account_id": account},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert registered.status_code == 201, registered.text
    return Party(code, key, account, proxy)


async def parties(url: str) -> tuple[Party, Party]:
    """A payer at FPS and a payee at IBPS."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return await party(http, "FPS"), await party(http, "IBPS")


def starts_in(run: dict[str, Any]) -> float:
    """Seconds from the run's answer to its starts_at, from which its requests count."""
    return (
        datetime.fromisoformat(run["starts_at"]) - datetime.fromisoformat(run["created_at"])
    ).total_seconds()


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {s["scenario"]: s["status"] for s in result["scenarios"]}

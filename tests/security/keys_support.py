"""A real `fpslink serve --workers 2` on the session's databases, for what must hold across workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from gateway_stack import Stack, served_gateway
from gw_support import OPERATOR_KEY, bank_code

OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


@contextlib.asynccontextmanager
async def two_workers(stack: Stack, **env: str) -> AsyncIterator[str]:
    """The gateway's base URL, two worker processes behind one port (SO_REUSEPORT)."""
    async with served_gateway(stack, "gateway-security", workers=2, **env) as url:
        yield url


async def new_bank(base_url: str) -> tuple[str, str]:
    """(participant id, API key) of a new FPS bank."""
    code = bank_code("HK")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        created = await http.post(
            "/v1/participants", json={"participant_id": code, "name": code, "system": "FPS"}, headers=OPERATOR
        )
    assert created.status_code == 201, created.text
    return code, str(created.json()["api_key"])


async def on_fresh_connections(
    base_url: str, key: str, count: int, path: str = "/v1/payments?limit=1"
) -> list[int]:
    """GET `path` with `key` once on each of `count` new connections, at once: the kernel spreads new
    connections over the workers, so both answer some (all on one: 2 ** -(count - 1))."""
    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=1))
        for _ in range(count)
    ]
    try:
        answers = await asyncio.gather(
            *(c.get(path, headers={"Authorization": f"Bearer {key}"}) for c in clients)
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return [a.status_code for a in answers]

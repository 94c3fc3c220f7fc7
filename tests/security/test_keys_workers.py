"""A revoked key stops working in every worker of a deployment within seconds.

Before: each worker looked a key up once and trusted it until the worker restarted, and no key
could be revoked at all.
"""

from __future__ import annotations

import asyncio
import sys
import time

import httpx
import pytest
from gateway_stack import Stack
from keys_support import new_bank, on_fresh_connections, two_workers

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's"
)

TTL_S = 2.0
"""FPSLINK_KEY_CACHE_TTL_S's default, which the server below keeps."""
CONNECTIONS = 24


async def test_a_revoked_key_is_refused_by_every_worker_within_the_cache_ttl(stack: Stack) -> None:
    async with two_workers(stack) as base_url:
        bank, first_key = await new_bank(base_url)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            added = await http.post(
                f"/v1/participants/{bank}/keys", json={}, headers={"Authorization": f"Bearer {first_key}"}
            )
            assert added.status_code == 201, added.text
            second_key, prefix = added.json()["api_key"], added.json()["prefix"]
            # every worker looks the key up and keeps it
            assert await on_fresh_connections(base_url, second_key, CONNECTIONS) == [200] * CONNECTIONS
            revoked = await http.delete(
                f"/v1/participants/{bank}/keys/{prefix}", headers={"Authorization": f"Bearer {first_key}"}
            )
            assert revoked.status_code == 200, revoked.text
        started = time.monotonic()
        answers: list[int] = []
        while time.monotonic() - started < TTL_S + 3:
            answers = await on_fresh_connections(base_url, second_key, CONNECTIONS)
            if set(answers) == {401}:
                break
            await asyncio.sleep(0.1)
        took = time.monotonic() - started
        assert set(answers) == {401}, f"still served {answers.count(200)} of {CONNECTIONS} after {took:.1f} s"
        assert took <= TTL_S + 1.5, f"every worker refused the key only after {took:.1f} s"
        assert await on_fresh_connections(base_url, first_key, 4) == [200] * 4

"""A bank's quota holds across the workers of a deployment, and one bank's refusals are not another's.

Before: no limit at all; a quota kept per worker would let a bank send it once per worker.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import pytest
from gateway_stack import Stack
from keys_support import new_bank, on_fresh_connections, two_workers

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's"
)

QUOTA = 20
WINDOW_S = 60
"""20 requests a minute: a token refills every 3 s, one or two while the test sends on a quiet machine."""


async def test_a_banks_quota_is_shared_by_the_workers_not_granted_by_each(stack: Stack) -> None:
    env = {"FPSLINK_RATE_LIMIT_QUOTA": str(QUOTA), "FPSLINK_RATE_LIMIT_WINDOW_S": str(WINDOW_S)}
    async with two_workers(stack, **env) as base_url:
        (_, noisy), (_, quiet) = await new_bank(base_url), await new_bank(base_url)
        answers = Counter[int]()
        started = time.monotonic()
        for _ in range(3):  # 90 requests, each wave on 30 new connections spread over both workers
            answers.update(await on_fresh_connections(base_url, noisy, 30))
        refilled = int((time.monotonic() - started) * QUOTA / WINDOW_S)  # what the bucket may add
        assert set(answers) == {200, 429}, answers
        admitted = answers[200]
        assert QUOTA <= admitted <= QUOTA + refilled, f"{admitted} admitted of {QUOTA} + {refilled}"
        # the other bank has its own quota, whole
        assert Counter(await on_fresh_connections(base_url, quiet, QUOTA)) == {200: QUOTA}

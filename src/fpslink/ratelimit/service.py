"""Per-bank rate limits that hold across every worker of a deployment, at no I/O per request.

Each bank has one token bucket in PostgreSQL (`rate_buckets`). A worker does not ask it per request:
it leases a quarter second of the bank's refill at a time (`policy.LEASE_S`) in one statement and
spends the lease in memory, so an admitted request usually costs a decrement. All workers, on any
number of hosts, draw on the same bucket, so a bank gets its quota however its connections are
spread, and never more: a token is spent only once it has been taken from the shared bucket.

When the bucket is empty the worker refuses locally, without asking again, until a lease's worth
has refilled: a bank sending at ten times its quota costs its workers a statement every quarter
second, not one per request. Concurrent requests of one bank on one worker share a lease in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fpslink import metrics
from fpslink.ratelimit import policy
from fpslink.ratelimit.policy import Decision, Quota
from fpslink.uow import UnitsOfWork

ROUNDS = 3
"""Leases one request may wait for before it is refused: each lease is shared with the requests that
arrived while it was in flight, so a burst larger than a lease may need a second."""


@dataclass(slots=True)
class _Local:
    """One bank on this worker: its unspent lease and what the shared bucket held when last asked."""

    quota: Quota
    shared: float
    shared_at: float
    tokens: int = 0
    blocked_until: float = 0.0
    waiting: int = 0
    lease: asyncio.Future[None] | None = field(default=None, repr=False)

    def remaining(self, now: float) -> float:
        return self.tokens + self.quota.refilled(self.shared, now - self.shared_at)


class RateLimiter:
    """The process's view of every bank's bucket; built once per process (`fpslink.context.Gateway`)."""

    def __init__(self, uow: UnitsOfWork, *, now: Callable[[], float] = time.time) -> None:
        self._uow = uow
        self._now = now
        """Wall-clock seconds: the shared bucket's refill is measured between workers' clocks."""
        self._banks: dict[str, _Local] = {}

    async def admit(self, participant_id: str, quota: Quota) -> Decision:
        """Spend one of the bank's tokens, or refuse; raises only if the database cannot lease."""
        local = self._banks.get(participant_id)
        if local is None or local.quota != quota:
            # a changed quota starts afresh: tokens leased under the old one are not spent
            local = _Local(quota, shared=float(quota.quota), shared_at=self._now())
            self._banks[participant_id] = local
        now = self._now()
        for _ in range(ROUNDS):
            if local.tokens >= 1:
                local.tokens -= 1
                return policy.admitted(quota, local.remaining(now))
            if now < local.blocked_until:
                break
            await self._leased(participant_id, local)
            now = self._now()
        metrics.RATE_LIMITED.inc()
        return policy.refused(quota, local.blocked_until - now)

    async def _leased(self, participant_id: str, local: _Local) -> None:
        """Wait for a lease: the one in flight for this bank, or a new one."""
        if local.lease is None:
            lease = asyncio.ensure_future(self._lease(participant_id, local))
            local.lease = lease

            def done(_: asyncio.Future[None]) -> None:
                local.lease = None

            lease.add_done_callback(done)
        local.waiting += 1
        try:
            await asyncio.shield(local.lease)
        finally:
            local.waiting -= 1

    async def _lease(self, participant_id: str, local: _Local) -> None:
        quota = local.quota
        # the requests already waiting when the lease starts are served by it, not by the next one
        want = min(quota.quota, max(quota.lease, local.waiting))
        now = self._now()
        async with self._uow() as tx:
            got = await tx.rate_limits.lease(participant_id=participant_id, quota=quota, want=want, now=now)
            await tx.commit()
        local.tokens += got.granted
        local.shared, local.shared_at = got.left, now
        if got.granted == 0:
            # ask again once a lease's worth has refilled, not at every request until then
            local.blocked_until = now + quota.seconds_until(got.left, quota.lease)

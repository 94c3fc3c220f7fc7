"""Per-bank rate limits that hold across every worker of a deployment, at no I/O per request.

Each bank has one token bucket in PostgreSQL (`rate_buckets`). A worker does not ask it per request:
it leases a quarter second of the bank's refill at a time (`policy.LEASE_S`) in one statement and
spends the lease in memory, so an admitted request usually costs a decrement. All workers, on any
number of hosts, draw on the same bucket, so a bank gets its quota however its connections are
spread, and never more: a token is spent only once it has been taken from the shared bucket.

A worker takes the next lease when half of one is left, before it runs out, so a bank within its
quota seldom waits for the database; not for a quota slower than four a second, whose lease is one
token that a worker must not hold while the bank's next request reaches another. When the bucket is
empty the worker asks again only once a lease's worth has refilled: a bank sending at ten times its
quota costs its workers a statement every quarter second, not one per request. Concurrent requests
of one bank on one worker share a lease in flight.

A request that finds no token waits for the next lease if it comes within FPSLINK_RATE_LIMIT_MAX_WAIT_S
(1 s), as many of the bank's requests at a time as that second refills, like nginx's `limit_req`
with a burst: a client that sends a little too fast is slowed to its quota rather than refused, and
one that loops sends at its quota, not at ten times it, answered 429 in between. A request that
would wait longer, or finds that many waiting already, is answered 429 at once. The requests that
waited go on one per 1/rate seconds once they have their tokens, not all when a lease brings them:
a bank over its quota then sends its admitted requests on at its rate, not in bursts of a lease's
worth that every other bank's requests on the worker would queue behind.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fpslink import metrics
from fpslink.ratelimit import policy
from fpslink.ratelimit.policy import Decision, Quota
from fpslink.uow import UnitsOfWork

ROUNDS = 3
"""Leases that came back short (the shared bucket held less than they asked for) one request may
wait for before it is refused. A lease that got all it asked for does not count: the bucket held
more, and the request lost its tokens only to others of its bank that came while the lease was in
flight (a lease is sized by the requests waiting when it starts; one that arrives later takes what
is in hand). Counting those, two workers refused one of a bank's 20 concurrent requests 429 well
within its quota, about one run in fifteen. Such leases are bounded by STEPS alone, not by
FPSLINK_RATE_LIMIT_MAX_WAIT_S, which bounds the wait for the bucket to refill: every one of them
took tokens that requests of the bank spent, so none is a wasted statement."""
STEPS = 64
"""A bound on one request's leases and waits together, whatever the clocks do."""


@dataclass(slots=True)
class _Local:
    """One bank on this worker: its unspent lease and what the shared bucket held when last asked."""

    quota: Quota
    shared: float
    shared_at: float
    tokens: int = 0
    blocked_until: float = 0.0
    waiting: int = 0
    """Tokens that the requests waiting for the lease in flight need."""
    queued: int = 0
    """Requests waiting for the next lease (the bucket was empty)."""
    next_release: float = 0.0
    """When the next request that waited for its token may go on: one per 1/rate seconds."""
    lease: asyncio.Future[bool] | None = field(default=None, repr=False)

    @property
    def in_flight(self) -> asyncio.Future[bool] | None:
        """The lease in flight, if any. One that has finished is not, though the callback that
        forgets it has yet to run: a request that joined it would find it done, its tokens spent by
        others, and join it again without yielding, until its steps ran out and it was refused."""
        lease = self.lease
        return None if lease is None or lease.done() else lease

    def remaining(self, now: float) -> float:
        return self.tokens + self.quota.refilled(self.shared, now - self.shared_at)


class RateLimiter:
    """The process's view of every bank's bucket; built once per process (`fpslink.context.Gateway`)."""

    def __init__(
        self,
        uow: UnitsOfWork,
        *,
        max_wait_s: float,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._uow = uow
        self._max_wait_s = max_wait_s
        self._now = now
        """Wall-clock seconds: the shared bucket's refill is measured between workers' clocks."""
        self._sleep = sleep
        self._banks: dict[str, _Local] = {}

    async def admit(self, participant_id: str, quota: Quota, cost: int = 1) -> Decision:
        """Spend `cost` of the bank's tokens (one per request; a pacs.008 spends one more for each
        transaction after its first), waiting a little for them if they come soon, or refuse;
        raises only if the database cannot lease. A cost above the quota spends the whole quota:
        more could never be granted."""
        cost = max(1, min(cost, quota.quota))
        local = self._banks.get(participant_id)
        if local is None or local.quota != quota:
            # a changed quota starts afresh: tokens leased under the old one are not spent
            local = _Local(quota, shared=float(quota.quota), shared_at=self._now())
            self._banks[participant_id] = local
        now = self._now()
        deadline = now + self._max_wait_s
        queue = math.ceil(quota.rate * self._max_wait_s)
        leases = 0
        queued = False
        for _ in range(STEPS):
            if local.tokens >= cost:
                local.tokens -= cost
                if (
                    quota.leases_ahead
                    and local.tokens < quota.lease / 2
                    and local.in_flight is None
                    and now >= local.blocked_until
                ):
                    self._lease_ahead(participant_id, local)
                if queued:
                    await self._paced(local, deadline, cost)
                return policy.admitted(quota, local.remaining(now))
            if now < local.blocked_until:
                if local.blocked_until > deadline or local.queued >= queue:
                    break
                local.queued += 1
                try:
                    await self._sleep(local.blocked_until - now)
                finally:
                    local.queued -= 1
                queued = True
                leases = 0
            elif leases < ROUNDS:
                if not await self._leased(participant_id, local, cost):
                    leases += 1
            else:
                break
            now = self._now()
        metrics.RATE_LIMITED.inc()
        return policy.refused(quota, local.blocked_until - now)

    async def _paced(self, local: _Local, deadline: float, cost: int) -> None:
        """Let a request that waited for its tokens go on cost/rate after the last one that did,
        and never after its longest wait. The requests a lease wakes would otherwise run at once: a
        burst that other banks' requests on the worker queue behind."""
        now = self._now()
        release = max(now, local.next_release)
        local.next_release = release + cost / local.quota.rate
        if release > now:
            await self._sleep(min(release, deadline) - now)

    def _lease_ahead(self, participant_id: str, local: _Local) -> asyncio.Future[bool]:
        """The bank's lease in flight, or a new one: started before the tokens run out, so that a
        bank within its quota seldom waits for one (a request that finds none joins it)."""
        lease = local.in_flight
        if lease is None:
            lease = asyncio.ensure_future(self._lease(participant_id, local))
            local.lease = lease

            def done(finished: asyncio.Future[bool]) -> None:
                if local.lease is finished:
                    local.lease = None
                if not finished.cancelled():
                    finished.exception()  # a request waiting for it raises it; nobody else must

            lease.add_done_callback(done)
        return lease

    async def _leased(self, participant_id: str, local: _Local, cost: int) -> bool:
        """Wait for a lease, the one in flight for this bank or a new one; whether it got all it
        asked for."""
        lease = self._lease_ahead(participant_id, local)
        local.waiting += cost
        try:
            return await asyncio.shield(lease)
        finally:
            local.waiting -= cost

    async def _lease(self, participant_id: str, local: _Local) -> bool:
        quota = local.quota
        # the tokens that requests already waiting need are leased for them, not by the next lease
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
        return got.granted == want

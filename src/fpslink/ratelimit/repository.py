"""The shared token buckets of the rate limiter: one statement, a lease of tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.ratelimit.policy import Quota


@dataclass(frozen=True, slots=True)
class Lease:
    granted: int
    """Tokens taken for the worker to spend (0: the bucket held less than one)."""
    left: float
    """Tokens the bucket holds after the lease."""


_Q, _RATE, _WANT, _NOW = (f"${n}::float8" for n in (2, 3, 4, 5))
_AVAILABLE = f"LEAST({_Q}, b.tokens + {_RATE} * GREATEST(0, {_NOW} - b.at))"
_LEASE = (
    "INSERT INTO rate_buckets AS b (participant_id, tokens, at, granted)"
    f" VALUES ($1, {_Q} - LEAST({_WANT}, {_Q}), {_NOW}, LEAST({_WANT}, {_Q}))"
    " ON CONFLICT (participant_id) DO UPDATE SET"
    f" granted = LEAST({_WANT}, floor({_AVAILABLE})),"
    f" tokens = {_AVAILABLE} - LEAST({_WANT}, floor({_AVAILABLE})),"
    f" at = GREATEST(b.at, {_NOW})"
    " RETURNING granted, tokens"
)
"""In an upsert's SET every expression reads the row as it was, so `granted` and `tokens` agree."""


class RateLimitsRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lease(self, *, participant_id: str, quota: Quota, want: int, now: float) -> Lease:
        """Take up to `want` whole tokens from the bank's bucket, refilled to `now` at its quota (a
        new bucket starts full). One statement; the row lock orders concurrent leases. It stands
        alone (`pg.alone`): the first statement of its block commits by itself, in one round trip
        where BEGIN, it and COMMIT took three, and the block's commit then sends nothing."""
        row = await (await pg.alone(self._conn)).fetchrow(
            _LEASE, participant_id, float(quota.quota), quota.rate, float(want), now
        )
        assert row is not None  # an upsert's RETURNING always has its row
        return Lease(granted=int(row[0]), left=float(row[1]))

"""The shared token buckets of the rate limiter: one statement, a lease of tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.ratelimit.policy import Quota


@dataclass(frozen=True, slots=True)
class Lease:
    granted: int
    """Tokens taken for the worker to spend (0: the bucket held less than one)."""
    left: float
    """Tokens the bucket holds after the lease."""


_Q, _RATE, _WANT, _NOW = (f"CAST(:{name} AS float8)" for name in ("quota", "rate", "want", "now"))
_AVAILABLE = f"LEAST({_Q}, b.tokens + {_RATE} * GREATEST(0, {_NOW} - b.at))"
_LEASE = text(
    "INSERT INTO rate_buckets AS b (participant_id, tokens, at, granted)"
    f" VALUES (:participant_id, {_Q} - LEAST({_WANT}, {_Q}), {_NOW}, LEAST({_WANT}, {_Q}))"
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
        new bucket starts full). One statement; the row lock orders concurrent leases."""
        row = (
            await self._conn.execute(
                _LEASE,
                {
                    "participant_id": participant_id,
                    "quota": float(quota.quota),
                    "rate": quota.rate,
                    "want": float(want),
                    "now": now,
                },
            )
        ).one()
        return Lease(granted=int(row[0]), left=float(row[1]))

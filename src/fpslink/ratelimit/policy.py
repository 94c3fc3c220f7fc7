"""A bank's request quota as a token bucket, and the RateLimit header fields that describe it.

Pure: no I/O, no clock of its own. A `Quota` of q requests per w seconds is a bucket holding at most
q tokens that refills at q/w per second: a bank may send its whole quota at once, then q/w a second.
That is what the IETF RateLimit-Policy field says (draft-ietf-httpapi-ratelimit-headers-11):
`RateLimit-Policy: "bank";q=100;w=5`, and `RateLimit: "bank";r=57;t=1` gives the requests left (r)
and the seconds until the bucket is full again (t), or on a 429 until the next request may pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

POLICY = "bank"
"""The policy's name in the header fields: one quota per bank, whichever of its keys is used."""

LEASE_S = 0.25
"""A worker takes this many seconds' worth of its bank's refill from the shared bucket at a time.

Larger leases mean fewer statements (one per lease: at the default quota of 100 per 5 s, one per 5
requests; a load tester's 100,000 per second, one per 25,000), smaller ones that a bank whose
connections move between workers finds fewer tokens idle in the worker it left: a worker holds at
most one lease unused."""


@dataclass(frozen=True, slots=True)
class Quota:
    """`quota` requests per `window_s` seconds, and at most `quota` at once."""

    quota: int
    window_s: int

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.quota / self.window_s

    @property
    def lease(self) -> int:
        """How many tokens a worker asks the shared bucket for at a time (`LEASE_S`)."""
        return max(1, min(self.quota, math.ceil(self.rate * LEASE_S)))

    @property
    def leases_ahead(self) -> bool:
        """Whether a worker takes the next lease before its tokens run out.

        Only when a lease is a quarter second of refill: a lease rounded up to one token of a slow
        quota would hold the bank's next token in a worker the bank's next request may not reach,
        and the other workers would refuse that request for seconds while the bank is within its
        quota. A slow quota's requests take their leases as they come: at most four statements a
        second.
        """
        return self.rate * LEASE_S >= 1

    def refilled(self, tokens: float, elapsed_s: float) -> float:
        """The bucket's tokens `elapsed_s` after it held `tokens` (a clock that went back adds none)."""
        return min(float(self.quota), tokens + self.rate * max(0.0, elapsed_s))

    def seconds_until(self, tokens: float, wanted: float) -> float:
        """Seconds until a bucket holding `tokens` holds `wanted` (0 if it already does)."""
        return max(0.0, (min(wanted, self.quota) - tokens) / self.rate)

    @property
    def policy_field(self) -> str:
        return f'"{POLICY}";q={self.quota};w={self.window_s}'


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request may pass, and what its answer says about the quota."""

    admitted: bool
    quota: Quota
    remaining: int
    """Requests the bank may still send at once, as this worker knows it (other workers spend too)."""
    reset_s: int
    """Admitted: seconds until the bucket is full again. Refused: seconds until a request may pass."""

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The RateLimit-Policy and RateLimit fields, and Retry-After on a refusal."""
        fields = [
            (b"ratelimit-policy", self.quota.policy_field.encode()),
            (b"ratelimit", f'"{POLICY}";r={self.remaining};t={self.reset_s}'.encode()),
        ]
        if not self.admitted:
            fields.append((b"retry-after", str(self.reset_s).encode()))
        return fields


def admitted(quota: Quota, remaining: float) -> Decision:
    left = max(0, min(quota.quota, math.floor(remaining)))
    return Decision(True, quota, left, math.ceil(quota.seconds_until(left, quota.quota)))


def refused(quota: Quota, wait_s: float) -> Decision:
    """A refusal; the client is told to wait at least a second, as Retry-After counts whole seconds
    and the draft wants it no earlier than the end of the effective window (t)."""
    return Decision(False, quota, 0, max(1, math.ceil(wait_s)))

"""The delivery signature: `Fpslink-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.

The MAC is over `f"{t}.{body}"` with the webhook's secret, so a receiver can check both that the body
is ours and that it is fresh (reject a `t` too far from its own clock, e.g. 5 minutes).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Fpslink-Signature"
EVENT_ID_HEADER = "Fpslink-Event-Id"
TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does: parse the header, recompute, compare in constant time, check freshness."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))

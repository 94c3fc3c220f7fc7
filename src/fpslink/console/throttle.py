"""Console log-in throttling, decided in pure code (no I/O).

Every log-in attempt is counted, in fixed windows, against two buckets: the client's address (an
IPv6 client by its /64, what one host is usually given) and the key's prefix (`fpsl_<bank>_` for a
bank's key: guesses at one bank's key spread over many addresses still add up). A successful
log-in takes its attempt back, so the counts are failures plus attempts in flight. Counting
before the key is checked makes the limit hold against a burst of simultaneous attempts; once a
bucket is over its limit, every log-in in it is refused (429, Retry-After: the end of the window),
a right key included, so a refusal tells nothing about the key. A window boundary can let through
up to twice a limit in a short span; the windows are short and the keys long random strings.

Buckets name no key material: the prefix is hashed, and for a bank's key it is its bank's code.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

BANK_KEY_PREFIX: Final = "fpsl_"
IPV6_HOST_BITS: Final = 64


@dataclass(frozen=True, slots=True)
class Limits:
    window_s: int
    per_address: int
    per_key_prefix: int


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    limit: int


def key_prefix(api_key: str) -> str:
    """The part of a key that names no secret: `fpsl_<bank>_` for a bank's (or the sandbox
    operator's) key, else its first 8 characters."""
    if api_key.startswith(BANK_KEY_PREFIX):
        cut = api_key.find("_", len(BANK_KEY_PREFIX))
        if cut > len(BANK_KEY_PREFIX):
            return api_key[: cut + 1]
    return api_key[:8]


def address_bucket(host: str | None) -> str:
    """An IPv4 client by its address, an IPv6 client by its /64; a client with no address (a Unix
    socket) shares one bucket with the others like it."""
    if not host:
        return "addr:-"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "addr:" + host[:60]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"addr:{address.ipv4_mapped}"
        return f"addr:{ipaddress.IPv6Network((address, IPV6_HOST_BITS), strict=False)}"
    return f"addr:{address}"


def key_bucket(api_key: str) -> str:
    return "key:" + hashlib.sha256(key_prefix(api_key).encode()).hexdigest()[:32]


def buckets(limits: Limits, *, host: str | None, api_key: str) -> list[Bucket]:
    """The buckets one attempt counts against; an empty key counts against its address only."""
    found = [Bucket(address_bucket(host), limits.per_address)]
    if api_key:
        found.append(Bucket(key_bucket(api_key), limits.per_key_prefix))
    return found


def window_start(now: datetime, window_s: int) -> datetime:
    """The start of the fixed window that holds `now`."""
    epoch = math.floor(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_s, tz=UTC)


def retry_after_s(
    counts: Mapping[str, int], over: Sequence[Bucket], *, now: datetime, window_s: int
) -> int | None:
    """Seconds until an attempt may be made again when a bucket is over its limit (counts include
    this attempt), else None."""
    if all(counts.get(b.name, 0) <= b.limit for b in over):
        return None
    ends = window_start(now, window_s) + timedelta(seconds=window_s)
    return max(1, math.ceil((ends - now).total_seconds()))

"""Pure rules: which URLs a webhook may point at, and when a failed delivery is tried again."""

from __future__ import annotations

import ipaddress
import random
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


class UrlNotAllowed(ValueError):
    pass


def parse_allow_list(raw: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())


def check_url(url: str, allowed_hosts: frozenset[str]) -> str:
    """The URL if it is http(s) to a loopback host or a host the operator allowed; raises otherwise.

    The sandbox sends traffic only where it was told it may: loopback (127.0.0.0/8, ::1, localhost)
    by default, other hosts only when FPSLINK_WEBHOOK_ALLOW_HOSTS names them.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlNotAllowed("the webhook URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise UrlNotAllowed("the webhook URL must not carry credentials")
    try:
        _ = parts.port
    except ValueError as exc:
        raise UrlNotAllowed("the webhook URL has an invalid port") from exc
    host = parts.hostname.lower()
    if host in allowed_hosts or host in LOOPBACK_NAMES:
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise UrlNotAllowed(
        f"the sandbox delivers only to loopback hosts (127.0.0.0/8, ::1, localhost); {host} is not "
        "allowed (the operator can list more hosts in FPSLINK_WEBHOOK_ALLOW_HOSTS)"
    )


def backoff_s(attempts: int, *, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempts + 1`: exponential from base_s, capped, with full jitter on half."""
    ceiling = min(max_s, base_s * float(2 ** min(max(0, attempts - 1), 30)))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter

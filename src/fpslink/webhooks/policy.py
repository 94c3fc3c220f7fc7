"""Pure rules: which URLs a webhook may point at, which addresses it may reach, and when a failed
delivery is tried again.

A webhook URL is a bank's to choose, and the gateway connects to it from inside the deployment: to
its own loopback ports, the database's, mock_ibps's, a cloud metadata service at 169.254.169.254.
So the gateway delivers only where the operator allows:

- a host:port pair in FPSLINK_WEBHOOK_ALLOW (local receivers, such as the docs' 127.0.0.1:9000),
  whatever address its host has;
- any port of a host in FPSLINK_WEBHOOK_ALLOW_HOSTS, as long as every address it resolves to is
  public: not loopback, private, link-local, unique-local, unspecified, shared, reserved or
  multicast, nor an IPv6 address that embeds such an IPv4 one.

Both are checked when the webhook is registered and again at every delivery, on the addresses the
delivery then connects to (`fpslink.webhooks.targets`).
"""

from __future__ import annotations

import functools
import ipaddress
import random
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK_NAMES = frozenset({"localhost"})
"""Names that mean this machine, with `*.localhost` (RFC 6761): loopback, never looked up."""
LOOPBACK_ADDRESSES: tuple[IPAddress, ...] = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ALLOW_ENTRIES = 50
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlNotAllowed(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rules:
    """What the operator allows: public hosts (any port) and host:port pairs on any address."""

    hosts: frozenset[str] = frozenset()
    endpoints: frozenset[tuple[str, int]] = frozenset()


@dataclass(frozen=True, slots=True)
class Target:
    """A URL the rules allow: its normalised host (ASCII, lower case; an IP address compressed),
    the port it connects to, and whether the pair is listed (then any address is allowed)."""

    url: str
    scheme: str
    host: str
    port: int
    listed: bool


def normal_host(host: str) -> str:
    """The host as compared and looked up: lower case, no trailing dot, IDNA-encoded; an IP address
    in its compressed form (so `[0:0::1]` is `::1`)."""
    host = host.strip().lower().rstrip(".")
    literal = _literal(host)
    if literal is not None:
        return literal.compressed
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UrlNotAllowed(f"{host!r} is not a valid host name") from exc


def parse_allow_list(raw: str) -> frozenset[str]:
    """FPSLINK_WEBHOOK_ALLOW_HOSTS: comma-separated host names or IP addresses."""
    hosts = [h for h in raw.split(",") if h.strip()]
    if len(hosts) > MAX_ALLOW_ENTRIES:
        raise ValueError(f"at most {MAX_ALLOW_ENTRIES} hosts")
    return frozenset(normal_host(h) for h in hosts)


def parse_endpoints(raw: str) -> frozenset[tuple[str, int]]:
    """FPSLINK_WEBHOOK_ALLOW: comma-separated host:port pairs (an IPv6 address in brackets)."""
    entries = [e.strip() for e in raw.split(",") if e.strip()]
    if len(entries) > MAX_ALLOW_ENTRIES:
        raise ValueError(f"at most {MAX_ALLOW_ENTRIES} host:port pairs")
    endpoints = set()
    for entry in entries:
        parts = urlsplit(f"//{entry}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not host:port") from exc
        if not parts.hostname or port is None or parts.netloc != entry or parts.username is not None:
            raise ValueError(f"{entry!r} is not host:port (such as 127.0.0.1:9000 or [::1]:9000)")
        endpoints.add((normal_host(parts.hostname), port))
    return frozenset(endpoints)


@functools.lru_cache(maxsize=8)
def rules_of(allow_hosts: str, allow: str) -> Rules:
    """The rules the two settings give (read at each use, parsed once per value)."""
    return Rules(hosts=parse_allow_list(allow_hosts), endpoints=parse_endpoints(allow))


def is_public(address: IPAddress) -> bool:
    """Whether an address is one of the internet's: `is_global` (no loopback, private, link-local,
    unique-local, unspecified or shared address), no multicast or reserved one, and no IPv6 address
    that carries a non-public IPv4 one (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
        if address.is_site_local:
            return False
    return address.is_global and not address.is_multicast and not address.is_reserved


def check_url(url: str, rules: Rules) -> Target:
    """The URL's target if the rules allow its host and port; raises UrlNotAllowed otherwise.

    This looks at the URL alone; `choose` then checks the addresses its host resolves to.
    """
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise UrlNotAllowed("the webhook URL must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("the webhook URL must not carry credentials")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise UrlNotAllowed("the webhook URL has an invalid port") from exc
    host = normal_host(parts.hostname)
    target = Target(url=url, scheme=parts.scheme, host=host, port=port, listed=True)
    if (host, port) in rules.endpoints:
        return target
    literal = _literal(host)
    local = (literal is not None and not is_public(literal)) or _is_loopback_name(host)
    if host in rules.hosts and not local:
        return Target(url=url, scheme=parts.scheme, host=host, port=port, listed=False)
    if local:
        raise UrlNotAllowed(
            f"{_endpoint(host, port)} is a loopback or private address; the gateway delivers there only "
            "when the operator lists it in FPSLINK_WEBHOOK_ALLOW (host:port)"
        )
    raise UrlNotAllowed(
        f"{host} is not a host webhooks may reach (the operator lists them in "
        "FPSLINK_WEBHOOK_ALLOW_HOSTS, or host:port pairs in FPSLINK_WEBHOOK_ALLOW)"
    )


def fixed_addresses(target: Target) -> tuple[IPAddress, ...] | None:
    """The addresses of a host that needs no look-up (an IP address, or localhost); else None."""
    literal = _literal(target.host)
    if literal is not None:
        return (literal,)
    if _is_loopback_name(target.host):
        return LOOPBACK_ADDRESSES
    return None


def choose(target: Target, addresses: tuple[IPAddress, ...]) -> IPAddress:
    """The address to connect to: the first the host resolved to, once every one of them passes
    (a listed host:port passes on any address). Raises UrlNotAllowed otherwise."""
    if not addresses:
        raise UrlNotAllowed(f"{target.host} does not resolve to any address")
    if not target.listed:
        for address in addresses:
            if not is_public(address):
                raise UrlNotAllowed(
                    f"{target.host} resolves to a loopback or private address; the gateway delivers "
                    "there only when the operator lists it in FPSLINK_WEBHOOK_ALLOW (host:port)"
                )
    return addresses[0]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback_name(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.endswith(".localhost")


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def backoff_s(attempts: int, *, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempts + 1`: exponential from base_s, capped, with full jitter on half."""
    ceiling = min(max_s, base_s * float(2 ** min(max(0, attempts - 1), 30)))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter

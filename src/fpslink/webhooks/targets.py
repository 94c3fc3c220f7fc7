"""Where a webhook goes: its host resolved once, the addresses checked, the connection pinned.

Checking a name and then handing it to the HTTP client would let it be looked up twice, and a host
whose DNS answers a public address to the check and 127.0.0.1 to the connection (DNS rebinding)
would reach the gateway's own ports. So a delivery resolves the host once, `policy.choose` checks
every address, and the request goes to the chosen address itself, with the name in the Host header
and, over TLS, as the SNI and the name the certificate must match. The client keeps no connection
alive between deliveries: each is made to an address checked for that delivery.

What a bank reads in its delivery log is the HTTP status its receiver answered, or "unreachable"
for anything else (a refused connection, a time-out, a TLS failure, a target not allowed): no
difference between an open port and a closed one. The reason goes to the gateway's log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from fpslink.webhooks import policy

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""A host and port to the addresses to try, in order (`system_resolver`; tests pass a fake)."""

UNREACHABLE = "unreachable"


class Unresolvable(Exception):
    pass


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the operating system's resolver, each once, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Pinned:
    """A target and the one address its delivery connects to."""

    target: policy.Target
    address: policy.IPAddress

    def request_url(self) -> httpx.URL:
        return httpx.URL(self.target.url).copy_with(host=str(self.address))

    def headers(self) -> dict[str, str]:
        return {"Host": httpx.URL(self.target.url).netloc.decode("ascii")}

    def extensions(self) -> dict[str, Any]:
        if self.target.scheme == "https" and policy.fixed_addresses(self.target) is None:
            return {"sni_hostname": self.target.host}
        return {}


async def pin(url: str, rules: policy.Rules, resolve: Resolver) -> Pinned:
    """Check the URL, resolve its host once and choose the address; raises UrlNotAllowed or
    Unresolvable."""
    target = policy.check_url(url, rules)
    addresses = policy.fixed_addresses(target)
    if addresses is None:
        try:
            found = await resolve(target.host, target.port)
        except OSError as exc:  # socket.gaierror included
            raise Unresolvable(f"{target.host} does not resolve ({exc})") from exc
        try:
            addresses = tuple(ipaddress.ip_address(a) for a in found)
        except ValueError as exc:
            raise Unresolvable(f"{target.host} resolved to something that is not an address") from exc
    return Pinned(target, policy.choose(target, addresses))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt as the log shows it, and the reason kept for the gateway's log."""

    delivered: bool
    status_code: int | None
    error: str | None
    reason: str | None = None


async def deliver(
    client: httpx.AsyncClient,
    *,
    url: str,
    rules: policy.Rules,
    resolve: Resolver,
    body: bytes,
    headers: Mapping[str, str],
) -> Attempt:
    """POST `body` to the webhook at its pinned address; the response's body is never read."""
    try:
        pinned = await pin(url, rules, resolve)
    except (policy.UrlNotAllowed, Unresolvable) as exc:
        return Attempt(False, None, UNREACHABLE, str(exc))
    try:
        async with client.stream(
            "POST",
            pinned.request_url(),
            content=body,
            headers={**headers, **pinned.headers()},
            extensions=pinned.extensions(),
        ) as response:
            status = response.status_code
    except httpx.HTTPError as exc:
        return Attempt(False, None, UNREACHABLE, f"{pinned.address}: {type(exc).__name__}: {exc}"[:300])
    if 200 <= status < 300:
        return Attempt(True, status, None)
    return Attempt(False, status, f"HTTP {status}")


def client(timeout_s: float) -> httpx.AsyncClient:
    """The dispatcher's HTTP client: no redirects, no proxy from the environment (a proxy would
    resolve the name again), and no connection kept between deliveries."""
    return httpx.AsyncClient(
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )

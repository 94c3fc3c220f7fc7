"""Which targets a webhook may reach, and how a delivery reaches one: pure rules, a fake resolver and
an `httpx.MockTransport`. No DNS and no network: every address here is only compared."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import httpx
import pytest
from pydantic import ValidationError

from fpslink.config import Settings
from fpslink.webhooks import policy, targets

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:4700::1111"

NOT_PUBLIC = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "0.0.0.0",
    "::",
    "100.64.0.1",  # shared (carrier-grade NAT)
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible (reserved)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::7f00:1",
    "fec0::1",  # site-local
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_loopback_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not policy.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", "1.1.1.1", PUBLIC_V6, "2002:5db8:d70e::"])
def test_internet_addresses_are_public(address: str) -> None:
    assert policy.is_public(ipaddress.ip_address(address))


def rules(hosts: str = "", allow: str = "") -> policy.Rules:
    return policy.rules_of(hosts, allow)


# --- the settings ------------------------------------------------------------------------------


def test_allowed_endpoints_are_host_port_pairs_normalised() -> None:
    parsed = policy.parse_endpoints(
        " 127.0.0.1:9000, LocalHost.:8080 ,[0:0::1]:9000,, receiver.bank.test:443"
    )
    assert parsed == {("127.0.0.1", 9000), ("localhost", 8080), ("::1", 9000), ("receiver.bank.test", 443)}
    assert policy.parse_endpoints("") == frozenset()


@pytest.mark.parametrize(
    "raw",
    [
        "127.0.0.1",
        "localhost:",
        "127.0.0.1:99999",
        "127.0.0.1:x",
        ":9000",
        "u@h:9000",
        "h:9000/path",
        "::1:9000",
    ],
)
def test_a_malformed_endpoint_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        policy.parse_endpoints(raw)


def test_the_allow_settings_are_bounded_and_checked_at_start() -> None:
    assert Settings(webhook_allow="127.0.0.1:9000,localhost:9000").webhook_allow
    with pytest.raises(ValidationError):
        Settings(webhook_allow="127.0.0.1")
    with pytest.raises(ValidationError):
        Settings(webhook_allow=",".join(f"127.0.0.1:{9000 + n}" for n in range(51)))
    with pytest.raises(ValidationError):
        Settings(webhook_allow_hosts=",".join(f"h{n}.example" for n in range(51)))
    with pytest.raises(ValidationError):
        Settings(webhook_allow="x" * 4001)
    assert Settings().webhook_allow == "" and Settings().webhook_allow_hosts == ""


# --- the URL alone -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/x",
        "http://127.0.0.1:9001/x",
        "http://127.0.0.1/x",
        "https://localhost/x",
        "http://localhost:8080/",
        "http://app.localhost:9000/",
        "http://127.8.9.10:9000/",
        "http://[::1]:9000/",
        "http://10.0.0.1/x",
        "http://172.16.5.4:9000/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fc00::1]:9000/",
        "http://0.0.0.0:9000/",
        "http://[::ffff:127.0.0.1]:9000/",
    ],
)
def test_loopback_and_private_urls_are_refused_unless_their_host_and_port_are_listed(url: str) -> None:
    with pytest.raises(policy.UrlNotAllowed, match="FPSLINK_WEBHOOK_ALLOW"):
        policy.check_url(url, rules(hosts="10.0.0.1,localhost"))


def test_a_listed_host_and_port_is_allowed_on_any_address() -> None:
    allowed = rules(allow="127.0.0.1:9000,localhost:8080,[::1]:80,receiver.bank.test:8443")
    for url in (
        "http://127.0.0.1:9000/x",
        "http://LOCALHOST:8080/x",
        "http://localhost.:8080/x",
        "http://[::1]/x",
        "https://receiver.bank.test:8443/x",
    ):
        assert policy.check_url(url, allowed).listed, url
    for url in (
        "http://127.0.0.1:9001/",
        "http://localhost:9000/",
        "https://[::1]/",
        "http://127.0.0.2:9000/",
    ):
        with pytest.raises(policy.UrlNotAllowed):
            policy.check_url(url, allowed)


def test_a_public_host_is_allowed_on_any_port_when_the_operator_lists_it() -> None:
    allowed = rules(hosts=f" Hooks.Bank.test , {PUBLIC_V4}, bücher.example")
    target = policy.check_url("https://hooks.bank.test:8443/x", allowed)
    assert (target.host, target.port, target.listed) == ("hooks.bank.test", 8443, False)
    assert policy.check_url(f"http://{PUBLIC_V4}/", allowed).port == 80
    assert policy.check_url("https://BÜCHER.example/", allowed).host == "xn--bcher-kva.example"
    for url in ("https://evil.test/x", "https://hooks.bank.test.evil.test/", f"http://{PUBLIC_V4}.nip.io/"):
        with pytest.raises(policy.UrlNotAllowed, match="not a host webhooks may reach"):
            policy.check_url(url, allowed)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "127.0.0.1",
        "http:///x",
        "http://u:p@hooks.bank.test/",
        "http://hooks.bank.test:99999/",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(policy.UrlNotAllowed):
        policy.check_url(url, rules(hosts="hooks.bank.test", allow="127.0.0.1:80"))


# --- addresses ---------------------------------------------------------------------------------


def test_an_address_or_localhost_needs_no_look_up() -> None:
    allowed = rules(hosts=PUBLIC_V4, allow="localhost:9000,[::1]:9000")
    assert policy.fixed_addresses(policy.check_url(f"http://{PUBLIC_V4}/", allowed)) == (
        ipaddress.ip_address(PUBLIC_V4),
    )
    assert policy.fixed_addresses(policy.check_url("http://localhost:9000/", allowed)) == (
        policy.LOOPBACK_ADDRESSES
    )
    assert policy.fixed_addresses(policy.check_url("http://[::1]:9000/", allowed)) == (
        ipaddress.ip_address("::1"),
    )
    assert (
        policy.fixed_addresses(policy.check_url("http://hooks.bank.test/", rules(hosts="hooks.bank.test")))
        is None
    )


def addresses(*raw: str) -> tuple[policy.IPAddress, ...]:
    return tuple(ipaddress.ip_address(a) for a in raw)


def test_a_public_host_must_resolve_to_public_addresses_only() -> None:
    target = policy.check_url("https://hooks.bank.test/", rules(hosts="hooks.bank.test"))
    assert policy.choose(target, addresses(PUBLIC_V4, PUBLIC_V6)) == ipaddress.ip_address(PUBLIC_V4)
    for private in NOT_PUBLIC:
        with pytest.raises(policy.UrlNotAllowed, match="resolves to a loopback or private address"):
            policy.choose(target, addresses(PUBLIC_V4, private))
    with pytest.raises(policy.UrlNotAllowed, match="does not resolve"):
        policy.choose(target, ())


def test_a_listed_host_may_resolve_anywhere_and_the_first_address_is_used() -> None:
    target = policy.check_url("http://receiver.bank.test:9000/", rules(allow="receiver.bank.test:9000"))
    assert policy.choose(target, addresses("10.0.0.7", "127.0.0.1")) == ipaddress.ip_address("10.0.0.7")


# --- a delivery: resolved once, pinned, and "unreachable" whatever went wrong -----------------------


class FakeResolver:
    """A table of names; every look-up is counted, and a name may answer differently each time."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        answers = self.table.get(host)
        if not answers:
            raise OSError(f"{host}: no such name")
        return answers.pop(0) if len(answers) > 1 else answers[0]


class Seen:
    def __init__(self, answer: int | Exception = 204) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return httpx.Response(self.answer, content=b"x" * 10)


async def deliver(url: str, resolver: FakeResolver, seen: Seen, allowed: policy.Rules) -> targets.Attempt:
    async with httpx.AsyncClient(transport=httpx.MockTransport(seen)) as client:
        return await targets.deliver(
            client, url=url, rules=allowed, resolve=resolver, body=b"{}", headers={"X-Test": "1"}
        )


async def test_a_delivery_connects_to_the_address_it_checked_with_the_name_as_host_and_sni() -> None:
    """DNS rebinding: the name answers a public address, then 127.0.0.1. One look-up per delivery,
    and the request goes to the address that look-up gave, so the second answer is never used."""
    resolver = FakeResolver({"hooks.bank.test": [[PUBLIC_V4], ["127.0.0.1"]]})
    seen = Seen()

    attempt = await deliver(
        "https://hooks.bank.test:8443/events?x=1", resolver, seen, rules(hosts="hooks.bank.test")
    )

    assert attempt == targets.Attempt(True, 204, None)
    assert resolver.asked == [("hooks.bank.test", 8443)]
    (request,) = seen.requests
    assert request.url == httpx.URL(f"https://{PUBLIC_V4}:8443/events?x=1")
    assert request.headers["Host"] == "hooks.bank.test:8443"
    assert request.headers["X-Test"] == "1"
    assert request.extensions["sni_hostname"] == "hooks.bank.test"


async def test_each_delivery_looks_the_name_up_again_and_checks_the_answer() -> None:
    resolver = FakeResolver({"hooks.bank.test": [[PUBLIC_V4], ["127.0.0.1"]]})
    seen = Seen()
    allowed = rules(hosts="hooks.bank.test")
    assert (await deliver("https://hooks.bank.test/e", resolver, seen, allowed)).delivered

    second = await deliver("https://hooks.bank.test/e", resolver, seen, allowed)

    assert second == targets.Attempt(
        False,
        None,
        "unreachable",
        "hooks.bank.test resolves to a loopback or private address; the gateway delivers there only "
        "when the operator lists it in FPSLINK_WEBHOOK_ALLOW (host:port)",
    )
    assert len(resolver.asked) == 2 and len(seen.requests) == 1, "nothing was sent to 127.0.0.1"


async def test_a_listed_local_receiver_is_reached_at_its_address_without_a_look_up() -> None:
    resolver = FakeResolver({})
    seen = Seen()
    allowed = rules(allow="127.0.0.1:9000,localhost:9001,[::1]:9002")
    for url, expected in (
        ("http://127.0.0.1:9000/e", "http://127.0.0.1:9000/e"),
        ("http://localhost:9001/e", "http://127.0.0.1:9001/e"),
        ("http://[::1]:9002/e", "http://[::1]:9002/e"),
    ):
        assert (await deliver(url, resolver, seen, allowed)).delivered
        assert seen.requests[-1].url == httpx.URL(expected)
        assert "sni_hostname" not in seen.requests[-1].extensions
    assert [r.headers["Host"] for r in seen.requests] == ["127.0.0.1:9000", "localhost:9001", "[::1]:9002"]
    assert resolver.asked == []


async def test_a_target_no_longer_allowed_is_not_contacted() -> None:
    """The operator took 127.0.0.1:9000 off the list after the webhook was registered."""
    seen = Seen()
    attempt = await deliver("http://127.0.0.1:9000/e", FakeResolver({}), seen, rules())
    assert (attempt.delivered, attempt.status_code, attempt.error) == (False, None, "unreachable")
    assert seen.requests == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("All connection attempts failed"),  # a closed port
        httpx.ConnectTimeout("timed out"),  # a filtered port
        httpx.ReadTimeout("timed out"),  # an open port that does not answer HTTP
        httpx.RemoteProtocolError("illegal status line"),  # an open port that speaks something else
        httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"),
    ],
    ids=["refused", "connect-timeout", "read-timeout", "not-http", "tls"],
)
async def test_the_log_says_unreachable_whatever_kept_the_receiver_from_answering(failure: Exception) -> None:
    attempt = await deliver(
        "http://127.0.0.1:9000/e", FakeResolver({}), Seen(failure), rules(allow="127.0.0.1:9000")
    )
    assert (attempt.delivered, attempt.status_code, attempt.error) == (False, None, "unreachable")
    assert attempt.reason is not None and type(failure).__name__ in attempt.reason, (
        "kept for the gateway's log"
    )


async def test_an_unresolvable_name_is_unreachable() -> None:
    attempt = await deliver(
        "https://hooks.bank.test/e", FakeResolver({}), Seen(), rules(hosts="hooks.bank.test")
    )
    assert (attempt.error, attempt.reason) == (
        "unreachable",
        "hooks.bank.test does not resolve (hooks.bank.test: no such name)",
    )
    garbage = FakeResolver({"hooks.bank.test": [["not-an-address"]]})
    attempt = await deliver("https://hooks.bank.test/e", garbage, Seen(), rules(hosts="hooks.bank.test"))
    assert attempt.error == "unreachable"


@pytest.mark.parametrize(("status", "delivered"), [(200, True), (204, True), (302, False), (500, False)])
async def test_an_http_answer_is_logged_with_its_status(status: int, delivered: bool) -> None:
    attempt = await deliver(
        "http://127.0.0.1:9000/e", FakeResolver({}), Seen(status), rules(allow="127.0.0.1:9000")
    )
    assert attempt == targets.Attempt(delivered, status, None if delivered else f"HTTP {status}")


async def test_the_dispatchers_client_follows_no_redirect_no_proxy_and_keeps_no_connection() -> None:
    async with targets.client(2.0) as client:
        assert not client.follow_redirects
        assert not client.trust_env
        assert client.timeout == httpx.Timeout(2.0)
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._max_keepalive_connections == 0

"""Webhooks reach only the targets the operator allows, at the address that was checked, and the
delivery log does not tell an open port from a closed one.

A bank could point a webhook at any loopback port of the gateway's machine (its database, mock_ibps,
anything listening) and read in the delivery log whether the port was open ("HTTP 404"), closed
("ConnectError") or silent ("ReadTimeout"). Now loopback and private targets need a host:port on
FPSLINK_WEBHOOK_ALLOW, names are resolved and checked at registration and at every delivery, and the
log says "unreachable".

No DNS and no traffic beyond 127.0.0.1: the event loop's resolver is replaced by a table for these
tests (`dns`), which the gateway's HTTP client and its webhook checks both go through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from gw_support import Bank, Harness, free_port, problem

RECEIVER = free_port()
OTHER = free_port()
CLOSED = free_port()
SILENT = free_port()
PUBLIC = "93.184.215.14"
"""A public address the table answers; nothing is ever sent to it."""
FAST = {"webhook_interval_s": 0.05, "webhook_backoff_s": 30.0, "webhook_timeout_s": 0.5}


@dataclass
class FakeDns:
    """Names to addresses; IP addresses resolve to themselves without a look-up, anything else fails."""

    table: dict[str, list[str]] = field(default_factory=lambda: {"localhost": ["127.0.0.1"]})
    asked: list[str] = field(default_factory=list)


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDns]:
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    fake = FakeDns()

    async def getaddrinfo(
        host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name)
        except ValueError:
            fake.asked.append(name)
            if name not in fake.table:
                raise socket.gaierror(socket.EAI_NONAME, f"{name} is not in the test's table") from None
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (a, int(port or 0)),
                )
                for a in fake.table[name]
            ]
        return await real(
            host, port, family=family, type=type, proto=proto, flags=flags | socket.AI_NUMERICHOST
        )

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    yield fake


@dataclass
class Receiver:
    hits: list[tuple[str, str]] = field(default_factory=list)
    """(path, Host header) of every request."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Answers 204 on 127.0.0.1:RECEIVER."""
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.hits.append((self.path, self.headers.get("Host", "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", RECEIVER), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def _register(h: Harness, bank: Bank, url: str) -> Any:
    return await h.http.post("/v1/webhooks", json={"url": url}, headers=bank.headers)


@dataclass
class World:
    bank: Bank
    """The paying bank, whose webhooks get the payment's event."""
    debtor: str
    creditor: str


async def _world(h: Harness) -> World:
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    return World(hk, await h.account(hk, "HKD", "1000.00"), await h.account(cn, "CNY", "0.00"))


async def _settle(h: Harness, w: World) -> None:
    paid = await h.pay(w.bank, debtor=w.debtor, creditor_account=w.creditor, amount="10.00", currency="HKD")
    assert paid.json()["status"] == "SETTLED", paid.json()


async def _first_attempts(h: Harness, bank: Bank, count: int) -> list[dict[str, Any]]:
    """The bank's deliveries once each has an attempt recorded (10 s at most)."""
    for _ in range(200):
        items: list[dict[str, Any]] = (
            await h.http.get("/v1/webhooks/deliveries", headers=bank.headers)
        ).json()["items"]
        if len(items) == count and all(item["last_status_code"] or item["last_error"] for item in items):
            return items
        await asyncio.sleep(0.05)
    raise AssertionError("the deliveries were not attempted in time")


@pytest.mark.settings(webhook_allow=f"127.0.0.1:{RECEIVER}", **FAST)
async def test_loopback_and_private_targets_are_refused_unless_listed(harness: Harness, dns: FakeDns) -> None:
    h = harness
    hk = await h.bank("FPS")
    refused = {}
    for url in (
        f"http://127.0.0.1:{OTHER}/hook",
        "http://localhost:8080/hook",
        "http://[::1]:9000/hook",
        f"http://127.0.0.2:{RECEIVER}/hook",
        "http://10.0.0.1/hook",
        "http://172.16.0.1/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://0.0.0.0:9000/hook",
    ):
        response = await _register(h, hk, url)
        refused[url] = response.status_code
        if response.status_code == 422:
            problem(response, 422, "WEBHOOK_URL_NOT_ALLOWED")
    assert set(refused.values()) == {422}, refused
    assert (await _register(h, hk, f"http://127.0.0.1:{RECEIVER}/hook")).status_code == 201
    assert dns.asked == [], "addresses and localhost are never looked up"


@pytest.mark.settings(
    webhook_allow_hosts="intranet.bank.test,metadata.bank.test,v6.bank.test,mixed.bank.test,public.bank.test",
    **FAST,
)
async def test_names_that_resolve_to_private_addresses_are_refused(harness: Harness, dns: FakeDns) -> None:
    h = harness
    dns.table.update(
        {
            "intranet.bank.test": ["10.1.2.3"],
            "metadata.bank.test": ["169.254.169.254"],
            "v6.bank.test": ["fd00::5"],
            "mixed.bank.test": [PUBLIC, "127.0.0.1"],
            "public.bank.test": [PUBLIC],
        }
    )
    hk = await h.bank("FPS")
    answers = {
        name: (await _register(h, hk, f"https://{name}/hook")).status_code
        for name in ("intranet.bank.test", "metadata.bank.test", "v6.bank.test", "mixed.bank.test")
    }
    assert answers == dict.fromkeys(answers, 422), answers
    assert (await _register(h, hk, "https://public.bank.test/hook")).status_code == 201


@pytest.mark.settings(webhook_allow=f"127.0.0.1:{RECEIVER}", **FAST)
async def test_a_listed_local_receiver_gets_its_events(
    harness: Harness, dns: FakeDns, receiver: Receiver
) -> None:
    h = harness
    w = await _world(h)
    assert (await _register(h, w.bank, f"http://127.0.0.1:{RECEIVER}/events")).status_code == 201
    await _settle(h, w)
    (delivery,) = await _first_attempts(h, w.bank, 1)
    assert (delivery["status"], delivery["last_status_code"]) == ("DELIVERED", 204)
    assert receiver.hits == [("/events", f"127.0.0.1:{RECEIVER}")]


@pytest.mark.settings(webhook_allow_hosts="rebind.bank.test", **FAST)
async def test_a_name_rebound_to_loopback_after_registration_gets_nothing(
    harness: Harness, dns: FakeDns, receiver: Receiver
) -> None:
    """The name answered a public address when the webhook was registered, and 127.0.0.1 since: the
    delivery checks the address it connects to, and sends nothing to the gateway's own port."""
    h = harness
    dns.table["rebind.bank.test"] = [PUBLIC]
    w = await _world(h)
    assert (await _register(h, w.bank, f"http://rebind.bank.test:{RECEIVER}/hook")).status_code == 201
    dns.table["rebind.bank.test"] = ["127.0.0.1"]

    await _settle(h, w)
    (delivery,) = await _first_attempts(h, w.bank, 1)

    assert receiver.hits == []
    assert (delivery["status"], delivery["last_status_code"], delivery["last_error"]) == (
        "PENDING",
        None,
        "unreachable",
    )


@pytest.mark.settings(webhook_allow=f"127.0.0.1:{CLOSED},127.0.0.1:{SILENT}", **FAST)
async def test_the_delivery_log_does_not_tell_an_open_port_from_a_closed_one(
    harness: Harness, dns: FakeDns
) -> None:
    h = harness
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", SILENT))
    silent.listen(8)
    try:
        w = await _world(h)
        for port in (CLOSED, SILENT):
            assert (await _register(h, w.bank, f"http://127.0.0.1:{port}/hook")).status_code == 201
        await _settle(h, w)
        deliveries = await _first_attempts(h, w.bank, 2)
    finally:
        silent.close()

    seen = {
        (d["url"].split(":")[2].split("/")[0], d["last_status_code"], d["last_error"]) for d in deliveries
    }
    assert seen == {(str(CLOSED), None, "unreachable"), (str(SILENT), None, "unreachable")}, seen

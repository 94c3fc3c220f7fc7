"""Count what one payment costs: the gateway's round trips to PostgreSQL, and its HTTP calls to mock_ibps.

    .venv/bin/python benchmarks/roundtrips.py [--warmup 3] [--verbose] [--database-url URL]

Runs the gateway and mock_ibps in this process on a PostgreSQL of its own (an embedded server in a
temporary directory, stopped and removed at the end; or, with `--database-url`, the server that URL
names, where it creates `fpslink_bench_rt_gw` and `fpslink_bench_rt_ibps` and drops them at the
end). It pays a northbound payment by +86 proxy, a northbound one by account and a southbound one,
each alone (the gateway batches payments: one payment alone is a batch of one), after `--warmup`
payments of the same kind that fill the caches: the prepared statements of every pooled connection,
the keys and the accounts.

What is counted is what goes over the wire. The gateway reaches PostgreSQL through a relay on
127.0.0.1 in this process (`WireTally` reads the protocol's messages as they pass; it refuses SSL so
that it can), so SQLAlchemy's statements and those of the raw asyncpg lane (`fpslink.pg`) are
counted alike, and so is what a server log would not show (a prepare, a COPY's second wait):

- a **round trip** is a message after which the driver waits for the server: a simple query
  (asyncpg's BEGIN and COMMIT, the lane's COPY), a Sync (an execution of a prepared statement:
  Bind, Execute, Sync), a Flush (asyncpg's prepare of a new statement: Parse, Describe, Flush, a
  round trip of its own before the execution), a CopyDone (a COPY's rows, sent once the server has
  answered its statement), and a connection's start-up;
- a **statement** is an execution (an Execute message, or a simple query): as many as the server
  logs with `log_statement = 'all'`;
- a **transaction** is a statement sent while its connection is idle (the server's last
  ReadyForQuery says so): a BEGIN, or a statement that commits by itself.

Round trips are told apart by kind (the statement's first word; `prepare`) and by who sent them:
SQLAlchemy (its prepared statements are given names of their own here), the asyncpg lane (the
other prepared statements and COPY), asyncpg's look-up of a new statement's types, and the
transactions' BEGIN, COMMIT and ROLLBACK. `--warmup 0` shows what the first payments after a start
cost. Recovery and the webhook dispatcher are off, so nothing else talks to the database. mock_ibps
reaches its own database directly: its statements are not counted; the HTTP calls to it are, by
`CountingTransport`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shutil
import struct
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from fpslink import migrate
from fpslink.app import create_app
from fpslink.config import Settings
from fpslink_tools import pgadmin
from fpslink_tools.embedded_pg import serving
from mock_ibps import migrate as ibps_migrate
from mock_ibps.app import create_app as create_ibps_app
from mock_ibps.config import Settings as IbpsSettings

OPERATOR = "benchmark-operator-key-000"
GATEWAY_DB = "fpslink_bench_rt_gw"
IBPS_DB = "fpslink_bench_rt_ibps"
SQLALCHEMY_PREFIX = "fpslink_sa_"
"""The names given to SQLAlchemy's prepared statements, to tell them from the lane's on the wire."""
QUIET_S = 0.2
"""How long the relay must stay silent after an answer before a payment's count is closed."""

# Requests that come before a start-up message, with no message type (PostgreSQL's protocol codes).
SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
ASYNCPG_OWN = ("typeinfo_tree", "set_config('jit'", "current_setting('jit')")
"""What asyncpg's own look-up of a statement's types (with JIT off around it) contains."""
TRANSACTION_CONTROL = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="payments of each kind before the one counted (0-20)"
    )
    parser.add_argument("--verbose", action="store_true", help="list every round trip counted")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server to use instead of an embedded one (its database name is ignored)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.warmup <= 20:
        parser.error("--warmup must be 0-20")
    return args


# ---------------------------------------------------------------- what the gateway sends


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One wait of the driver for the server."""

    connection: int
    source: str
    """Who sent it: `SQLAlchemy`, `lane`, `transaction` (BEGIN, COMMIT, ROLLBACK), `asyncpg` (its
    look-up of a new statement's types) or `connect`."""
    kind: str
    """The first word of the statement(s) executed, `prepare`, `COPY rows` or `connect`."""
    statements: int
    transactions: int
    sql: str = ""


def verb(sql: str) -> str:
    """The first word of a statement, after any comments."""
    text = sql.lstrip()
    while text.startswith(("--", "/*")):
        end = text.find("\n") if text.startswith("--") else text.find("*/") + 1
        text = text[end + 1 :].lstrip() if end > 0 else ""
    word = text.split(None, 1)[0] if text else ""
    return word.rstrip(";(").upper() or "(empty)"


def _cstrings(body: bytes, count: int) -> list[str]:
    return [part.decode(errors="replace") for part in body.split(b"\0", count)[:count]]


@dataclass
class WireTally:
    """The PostgreSQL protocol of one client connection, read as it passes: its round trips.

    `client` takes the bytes the client sent and returns those to forward to the server, and those
    to answer at once (an SSL or GSSAPI request is refused, so that the rest is readable);
    `server` takes the server's bytes, which are forwarded untouched.
    """

    connection: int
    record: Callable[[RoundTrip], None]
    sqlalchemy_prefix: str = SQLALCHEMY_PREFIX
    _started: bool = False
    _inbound: bytearray = field(default_factory=bytearray)
    _outbound: bytearray = field(default_factory=bytearray)
    _statements: dict[str, str] = field(default_factory=dict)
    _portals: dict[str, str] = field(default_factory=dict)
    _group: list[tuple[str, str]] = field(default_factory=list)
    """(message type, statement name) of the messages since the last wait."""
    idle: bool = True
    """The server's last ReadyForQuery: no transaction block open."""

    def client(self, data: bytes) -> tuple[bytes, bytes]:
        self._inbound += data
        forward, answer = bytearray(), bytearray()
        while True:
            if not self._started:
                if len(self._inbound) < 8:
                    break
                length, code = struct.unpack("!ii", self._inbound[:8])
                if len(self._inbound) < length:
                    break
                message = bytes(self._inbound[:length])
                del self._inbound[:length]
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    answer += b"N"
                    self._trip("connect", "connect")
                    continue
                forward += message
                if code != CANCEL_REQUEST:
                    self._started = True
                    self._trip("connect", "connect")
                continue
            if len(self._inbound) < 5:
                break
            (length,) = struct.unpack("!i", self._inbound[1:5])
            if len(self._inbound) < 1 + length:
                break
            message = bytes(self._inbound[: 1 + length])
            del self._inbound[: 1 + length]
            self._message(chr(message[0]), message[5:])
            forward += message
        return bytes(forward), bytes(answer)

    def server(self, data: bytes) -> None:
        self._outbound += data
        while len(self._outbound) >= 5:
            (length,) = struct.unpack("!i", self._outbound[1:5])
            if len(self._outbound) < 1 + length:
                break
            if self._outbound[0:1] == b"Z":  # ReadyForQuery: I idle, T in a transaction, E failed
                self.idle = self._outbound[5:6] == b"I"
            del self._outbound[: 1 + length]

    def _message(self, kind: str, body: bytes) -> None:
        if kind == "P":  # Parse: statement name, SQL
            name, sql = _cstrings(body, 2)
            self._statements[name] = sql
            self._group.append(("P", name))
        elif kind == "B":  # Bind: portal, statement name
            portal, name = _cstrings(body, 2)
            self._portals[portal] = name
        elif kind == "E":  # Execute: portal
            (portal,) = _cstrings(body, 1)
            self._group.append(("E", self._portals.get(portal, "")))
        elif kind == "Q":  # a simple query: a round trip of its own
            (sql,) = _cstrings(body, 1)
            word = verb(sql)
            source = "transaction" if word in TRANSACTION_CONTROL else "lane"
            opens = self.idle and word not in {"COMMIT", "END", "ROLLBACK"}
            self._trip(source, word, statements=1, transactions=int(opens), sql=sql)
        elif kind in "SH":  # Sync, Flush: the client waits for what it sent since the last wait
            self._end_group()
        elif kind in "cf":  # CopyDone, CopyFail: the COPY's rows, after the server asked for them
            self._trip("lane", "COPY rows")
        elif kind == "p":  # a password or SASL response during start-up
            self._trip("connect", "connect")
        elif kind == "C":  # Close a statement or portal: waits only with the next Sync
            self._group.append(("C", ""))

    def _end_group(self) -> None:
        group, self._group = self._group, []
        executed = [name for kind, name in group if kind == "E"]
        named = executed or [name for kind, name in group if kind == "P"]
        name = named[0] if named else ""
        sql = self._statements.get(name, "")
        source = "SQLAlchemy" if name.startswith(self.sqlalchemy_prefix) else "lane"
        if any(mark in sql for mark in ASYNCPG_OWN):
            source = "asyncpg"
        if executed:
            kinds = sorted({verb(self._statements.get(n, "")) for n in executed})
            self._trip(
                source, "+".join(kinds), statements=len(executed), transactions=int(self.idle), sql=sql
            )
        elif named:
            self._trip(source, "prepare", sql=sql)
        else:
            self._trip("lane", "close" if group else "sync")

    def _trip(
        self, source: str, kind: str, *, statements: int = 0, transactions: int = 0, sql: str = ""
    ) -> None:
        self.record(RoundTrip(self.connection, source, kind, statements, transactions, " ".join(sql.split())))


class Relay:
    """A relay on 127.0.0.1 between the gateway and its PostgreSQL that tallies every connection."""

    def __init__(self, open_upstream: Callable[[], Any]) -> None:
        self._open_upstream = open_upstream
        self.trips: list[RoundTrip] = []
        self.last_traffic = time.monotonic()
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def quiet(self, seconds: float = QUIET_S, timeout_s: float = 10.0) -> None:
        """Wait until nothing has passed for `seconds`: whatever a payment sent is counted."""
        deadline = time.monotonic() + timeout_s
        while True:
            silent = time.monotonic() - self.last_traffic
            if silent >= seconds or time.monotonic() >= deadline:
                return
            await asyncio.sleep(seconds - silent)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        up_reader, up_writer = await self._open_upstream()
        tally = WireTally(next(self._ids), self.trips.append)

        async def inbound() -> None:
            while data := await reader.read(65536):
                self.last_traffic = time.monotonic()
                forward, answer = tally.client(data)
                if answer:
                    writer.write(answer)
                up_writer.write(forward)
                await up_writer.drain()

        async def outbound() -> None:
            while data := await up_reader.read(65536):
                self.last_traffic = time.monotonic()
                tally.server(data)
                writer.write(data)
                await writer.drain()

        pumps = [asyncio.create_task(inbound()), asyncio.create_task(outbound())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()
            self._handlers.discard(task)


def upstream(url: URL) -> Callable[[], Any]:
    """How the relay reaches the server that `url` names: a TCP address or a Unix socket directory."""
    host = url.host or url.query.get("host") or "127.0.0.1"
    port = url.port or int(str(url.query.get("port") or 5432))
    if isinstance(host, tuple):
        host = host[0]
    if host.startswith("/"):
        path = str(Path(host) / f".s.PGSQL.{port}")
        return lambda: asyncio.open_unix_connection(path)
    return lambda: asyncio.open_connection(host, port)


def through(url: URL, port: int) -> str:
    """`url` with the relay's address in place of the server's."""
    query = {k: v for k, v in url.query.items() if k not in {"host", "port"}}
    relayed = url.set(host="127.0.0.1", port=port, query=query)
    return relayed.render_as_string(hide_password=False)


# ---------------------------------------------------------------- the HTTP calls to mock_ibps


class CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        name = "/".join("{id}" if len(p) == 36 else p for p in path.split("/"))
        self.calls[f"{request.method} {name}"] += 1
        return await self.inner.handle_async_request(request)


# ---------------------------------------------------------------- the server


@contextlib.asynccontextmanager
async def databases(server_url: str) -> AsyncIterator[tuple[URL, URL]]:
    """The gateway's and mock_ibps's databases, migrated, on a server that is gone or clean after."""
    if server_url:
        base = make_url(server_url).set(drivername="postgresql+asyncpg")
        urls = base.set(database=GATEWAY_DB), base.set(database=IBPS_DB)
        for url in urls:
            rendered = url.render_as_string(hide_password=False)
            try:
                await pgadmin.recreate_database(rendered)
            except pgadmin.ForeignDatabase:
                sys.exit(
                    f"database {url.database} exists and this benchmark did not make it: drop it yourself"
                )
        try:
            await _migrate(*urls)
            yield urls
        finally:
            for url in urls:
                await pgadmin.drop_database(url.render_as_string(hide_password=False))
        return
    root = Path(tempfile.mkdtemp(prefix="fpslink-roundtrips-"))
    try:
        with serving(root) as endpoint:
            urls = make_url(endpoint.url(GATEWAY_DB)), make_url(endpoint.url(IBPS_DB))
            for url in urls:
                await pgadmin.ensure_database(url.render_as_string(hide_password=False))
            await _migrate(*urls)
            yield urls
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _migrate(gateway: URL, ibps: URL) -> None:
    await asyncio.to_thread(migrate.upgrade, gateway.render_as_string(hide_password=False))
    await asyncio.to_thread(ibps_migrate.upgrade, ibps.render_as_string(hide_password=False))


# ---------------------------------------------------------------- the payments


@dataclass
class Measured:
    name: str
    status: str
    batched: tuple[int, int]
    """Batches run and payments in them."""
    trips: list[RoundTrip]
    http: Counter[str]

    def by_source(self) -> dict[str, Counter[str]]:
        sources: dict[str, Counter[str]] = {}
        for trip in self.trips:
            sources.setdefault(trip.source, Counter())[trip.kind] += 1
        return sources


SOURCES = {
    "transaction": "BEGIN/COMMIT",
    "SQLAlchemy": "SQLAlchemy",
    "lane": "asyncpg lane",
    "asyncpg": "asyncpg types",
    "connect": "connect",
}


def report(results: list[Measured], warmup: int, verbose: bool) -> str:
    lines = [
        f"Each payment alone (a batch of one), after {warmup} of its kind; round trips from the gateway",
        "to PostgreSQL as sent on the wire, HTTP calls to mock_ibps.",
        "",
        f"{'payment':<36}{'status':<10}{'round trips':>12}{'statements':>11}{'txns':>6}{'HTTP':>6}",
    ]
    for r in results:
        statements = sum(t.statements for t in r.trips)
        transactions = sum(t.transactions for t in r.trips)
        lines.append(
            f"{r.name:<36}{r.status:<10}{len(r.trips):>12}{statements:>11}{transactions:>6}"
            f"{sum(r.http.values()):>6}"
        )
    for r in results:
        batches, payments = r.batched
        batched = f"a batch of {payments}" if batches == 1 else f"{batches} batches, {payments} payments"
        lines += ["", f"{r.name}: {batched}"]
        for source, label in SOURCES.items():
            kinds = r.by_source().get(source)
            if kinds:
                listed = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
                lines.append(f"  {label:<14}{sum(kinds.values()):>3} round trips: {listed}")
        calls = ", ".join(f"{call} {n}" for call, n in sorted(r.http.items())) or "none"
        lines.append(f"  {'mock_ibps':<14}{sum(r.http.values()):>3} HTTP calls: {calls}")
        if verbose:
            for t in r.trips:
                lines.append(f"    conn {t.connection:<3}{SOURCES[t.source]:<14}{t.kind:<12}{t.sql[:110]}")
    return "\n".join(lines)


async def measure(args: argparse.Namespace) -> list[Measured]:
    async with databases(args.database_url) as (gateway_url, ibps_url):
        relay = Relay(upstream(gateway_url))
        port = await relay.start()
        try:
            return await _pay(relay, through(gateway_url, port), ibps_url, args.warmup)
        finally:
            await relay.close()


async def _pay(relay: Relay, gateway_db: str, ibps_url: URL, warmup: int) -> list[Measured]:
    ibps_db = ibps_url.render_as_string(hide_password=False)
    ibps_app = create_ibps_app(IbpsSettings(database_url=ibps_db, token="t"))
    counting = CountingTransport(httpx.ASGITransport(app=ibps_app))
    settings = Settings(
        database_url=gateway_db,
        ibps_url="http://ibps",
        ibps_token="t",
        operator_key=OPERATOR,
        recovery_enabled=False,
        webhooks_enabled=False,
        southbound_hours="00:00-24:00",
        # a key's look-up (every 2 s by default) and a quota's lease (every quarter second of a bank's
        # quota) are not a payment's: at these values neither falls in a counted payment
        key_cache_ttl_s=60,
        rate_limit_quota=10_000_000,
        rate_limit_window_s=1,
    )
    app = create_app(settings, ibps_transport=counting)
    names = (SQLALCHEMY_PREFIX + str(n) for n in itertools.count(1))
    results: list[Measured] = []
    async with ibps_app.router.lifespan_context(ibps_app), app.router.lifespan_context(app):
        gateway = app.state.gateway

        @event.listens_for(gateway.engine.sync_engine, "do_connect")
        def _name_statements(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["prepared_statement_name_func"] = lambda: next(names)

        await gateway.engine.dispose()  # any connection opened before the listener is gone
        op = {"Authorization": f"Bearer {OPERATOR}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            keys, accounts = {}, {}
            for code, system, currency in (("BENCHHK", "FPS", "HKD"), ("BENCHCN", "IBPS", "CNY")):
                body = {"participant_id": code, "name": code, "system": system}
                keys[code] = (await http.post("/v1/participants", json=body, headers=op)).json()["api_key"]
                account = {
                    "participant_id": code,
                    "holder_name": "CHAN Tai Man",
                    "currency": currency,
                    "opening_balance": "100000.00",
                }
                opened = await http.post("/v1/accounts", json=account, headers=op)
                accounts[code] = opened.json()["account_id"]
            proxy = {
                "proxy_type": "MOBILE",
                "proxy_value": "+8613800138000",
                "account_id": accounts["BENCHCN"],
            }
            await http.post("/v1/proxies", json=proxy, headers={"Authorization": f"Bearer {keys['BENCHCN']}"})

            cases = {
                "northbound, creditor by +86 proxy": (
                    "BENCHHK",
                    {"proxy_type": "MOBILE", "proxy_value": "+8613800138000"},
                    "HKD",
                ),
                "northbound, creditor by account": ("BENCHHK", {"account_id": accounts["BENCHCN"]}, "HKD"),
                "southbound, creditor by account": ("BENCHCN", {"account_id": accounts["BENCHHK"]}, "CNY"),
            }
            for name, (bank, creditor, currency) in cases.items():
                payment: dict[str, Any] = {
                    "debtor_account_id": accounts[bank],
                    "creditor": creditor,
                    "amount": "1.00",
                    "currency": currency,
                    "purpose": "OTHER",
                }

                async def pay(bank: str = bank, payment: dict[str, Any] = payment) -> str:
                    headers = {"Authorization": f"Bearer {keys[bank]}", "Idempotency-Key": str(uuid.uuid4())}
                    response = await http.post("/v1/payments", json=payment, headers=headers)
                    status = response.json().get("status") or f"HTTP {response.status_code}"
                    return str(status)

                for _ in range(warmup):
                    await pay()
                await relay.quiet()
                mark, before = len(relay.trips), _batches(gateway)
                counting.calls.clear()
                status = await pay()
                await relay.quiet()
                after = _batches(gateway)
                batched = (after[0] - before[0], after[1] - before[1])
                results.append(Measured(name, status, batched, relay.trips[mark:], Counter(counting.calls)))
    return results


def _batches(gateway: Any) -> tuple[int, int]:
    batcher = gateway.payments.batcher
    return (batcher.batches, batcher.items) if batcher is not None else (0, 0)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    results = asyncio.run(measure(args))
    print(report(results, args.warmup, args.verbose))


if __name__ == "__main__":
    main()

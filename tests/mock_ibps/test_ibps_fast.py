"""The batch and the proxy look-up through the fast lane answer as their FastAPI routes do (mock_ibps.fast).

Two apps share one database and one ledger dated by one fixed clock: `fast` as it is served, and
`route`, built with `fast_path=False`. Each request goes to both, each side with payment ids of its
own (a repeat would be a replay); the status, the body bytes and the headers must be the same once
those ids, and the transfers' seqs, are masked. A spy behind the fast lane says which requests it
left to the router.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from ibps_support import TOKEN, abort_item, commit_item, new_id, prepare_item
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_ibps import repository
from mock_ibps.app import create_app
from mock_ibps.config import Settings
from mock_ibps.db import create_engine
from mock_ibps.fast import FastLane
from mock_ibps.service import IbpsLedger

BATCH = "/ibps/v1/transfers/batch"
PROXIES = "/ibps/v1/proxies/"
NOW = datetime(2026, 12, 7, 2, 0, 0, 123_456, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RouteSpy:
    """Counts the requests the fast lane left to the router behind it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


@dataclass
class Side:
    name: str
    http: httpx.AsyncClient
    payments: list[str] = field(default_factory=list)
    spy: RouteSpy | None = None

    def payment(self, index: int) -> str:
        while len(self.payments) <= index:
            self.payments.append(str(uuid.uuid4()))
        return self.payments[index]

    def mask(self, content: bytes) -> bytes:
        for index, payment_id in enumerate(self.payments):
            content = content.replace(payment_id.encode(), f"<payment {index:04d}>".encode())
        seqs: dict[bytes, bytes] = {}
        return re.sub(rb'"seq":(\d+)', lambda m: b'"seq":"#%d"' % seqs.setdefault(m[1], len(seqs)), content)


@dataclass
class Twin:
    fast: Side
    route: Side
    account: str
    poor: str
    proxy: str

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.fast, self.route


@dataclass
class Answer:
    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def json(self) -> Any:
        return json.loads(self.body)


Build = Callable[[Side], tuple[str, str, dict[str, str], bytes | list[bytes] | None]]
"""A request for one side: method, path, headers, body (chunks: sent as a stream)."""


async def send(side: Side, build: Build) -> Answer:
    method, path, headers, body = build(side)
    content: Any = body
    if isinstance(body, list):
        chunks = body

        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        content = stream()
    response = await side.http.request(method, path, headers=headers, content=content)
    masked = side.mask(response.content)
    headers_out = [(k, v) for k, v in response.headers.items() if k != "content-length"]
    if method != "HEAD":
        assert int(response.headers.get("content-length", len(response.content))) == len(response.content)
    return Answer(response.status_code, masked, headers_out)


async def both(twin: Twin, build: Build, *, fast: bool) -> Answer:
    """The same request to both apps: the same answer; `fast` says whether the lane served it."""
    answers = []
    for side in twin.sides:
        assert side.spy is not None
        before = side.spy.calls
        answers.append(await send(side, build))
        if side is twin.fast:
            assert (side.spy.calls == before) is fast, "served by the fast lane" if fast else "not served"
    fast_answer, route_answer = answers
    assert fast_answer == route_answer
    return fast_answer


JSON = {"Content-Type": "application/json"}


def batch(items: Callable[[Side], list[dict[str, Any]]], headers: dict[str, str] | None = None) -> Build:
    def build(side: Side) -> tuple[str, str, dict[str, str], bytes]:
        sent = {**JSON, **AUTH} if headers is None else headers
        return "POST", BATCH, sent, json.dumps({"items": items(side)}).encode()

    return build


def raw_batch(body: bytes | list[bytes], headers: dict[str, str]) -> Build:
    return lambda _side: ("POST", BATCH, headers, body)


def lookup(
    proxy_value: str, headers: dict[str, str] | None = None, *, method: str = "GET", query: str = ""
) -> Build:
    path = PROXIES + proxy_value.replace("+", "%2B") + query
    return lambda _side: (method, path, AUTH if headers is None else headers, None)


@pytest.fixture
async def twin(database_url: str) -> AsyncIterator[Twin]:
    settings = Settings(database_url=database_url, token=TOKEN)
    engine = create_engine(database_url)
    ledger = IbpsLedger(engine, clock=lambda: NOW)
    async with AsyncExitStack() as stack:
        sides = []
        for name, fast_path in (("fast", True), ("route", False)):
            app = create_app(settings, fast_path=fast_path)
            await stack.enter_async_context(app.router.lifespan_context(app))
            app.state.ledger = ledger  # one ledger and one clock for both
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://mock-ibps.test",
            )
            await stack.enter_async_context(http)
            sides.append(Side(name, http, spy=spy_on(app, fast=fast_path)))
        fast, route = sides
        setup = fast.http
        participant = new_id("BK")
        await setup.post(
            "/ibps/v1/participants", json={"participant_id": participant, "name": "B"}, headers=AUTH
        )
        accounts = []
        for opening in ("100000.00", "5.00"):
            account = new_id()
            response = await setup.post(
                "/ibps/v1/accounts",
                json={
                    "account_id": account,
                    "participant_id": participant,
                    "holder_name": "张小明",
                    "currency": "CNY",
                    "opening_balance": opening,
                },
                headers=AUTH,
            )
            assert response.status_code == 201, response.text
            accounts.append(account)
        proxy = "+86138" + str(uuid.uuid4().int)[:8]
        response = await setup.post(
            "/ibps/v1/proxies", json={"proxy_value": proxy, "account_id": accounts[0]}, headers=AUTH
        )
        assert response.status_code == 201, response.text
        yield Twin(fast, route, accounts[0], accounts[1], proxy)
        for side in (fast, route):  # abort what is left pending, so the ledger check holds
            await side.http.delete("/ibps/v1/sandbox/faults", headers=AUTH)
            if side.payments:
                items = [abort_item(payment_id) for payment_id in side.payments]
                await side.http.post(BATCH, json={"items": items}, headers=AUTH)
        check = (await fast.http.get("/ibps/v1/ledger/check", headers=AUTH)).json()
        assert check["ok"], check["violations"]
    await ledger.close()
    await engine.dispose()


def spy_on(app: FastAPI, *, fast: bool) -> RouteSpy:
    """Put a RouteSpy in front of the router: behind the fast lane, or alone."""
    if fast:
        lane = app.router.middleware_stack
        assert isinstance(lane, FastLane), "create_app() should put the fast lane in front of the router"
        spy = RouteSpy(lane.app)
        lane.app = spy
    else:
        assert not isinstance(app.router.middleware_stack, FastLane)
        spy = RouteSpy(app.router.middleware_stack)
        app.router.middleware_stack = spy
    return spy


async def test_prepares_commits_and_aborts_answer_alike(twin: Twin) -> None:
    def prepares(side: Side) -> list[dict[str, Any]]:
        return [
            prepare_item(side.payment(0), "CREDIT", twin.account, "25.50"),
            prepare_item(side.payment(1), "DEBIT", twin.account, "40"),
            prepare_item(side.payment(2), "DEBIT", twin.poor, "6.00"),  # AM04
            prepare_item(side.payment(3), "CREDIT", "CN0UNKNOWN", "1.00"),  # AC01
            prepare_item(side.payment(4), "DEBIT", twin.account, "404.04"),  # RR04
            prepare_item(side.payment(5).upper(), "DEBIT", twin.account, "1.00"),
        ]

    answer = await both(twin, batch(prepares), fast=True)
    outcomes = [
        (r["status"], r["body"]["outcome"], r["body"]["reason_code"]) for r in answer.json()["results"]
    ]
    assert outcomes == [
        (200, "PREPARED", None),
        (200, "PREPARED", None),
        (200, "REFUSED", "AM04"),
        (200, "REFUSED", "AC01"),
        (200, "REFUSED", "RR04"),
        (200, "PREPARED", None),
    ]
    # a replay answers the first answers, a repeat with other fields is 409
    await both(twin, batch(prepares), fast=True)
    changed = batch(lambda side: [prepare_item(side.payment(0), "CREDIT", twin.account, "25.51")])
    assert (await both(twin, changed, fast=True)).json()["results"][0]["status"] == 409

    def finishes(side: Side) -> list[dict[str, Any]]:
        return [
            commit_item(side.payment(0)),
            abort_item(side.payment(1)),
            commit_item(side.payment(2)),  # voided: 409
            commit_item(side.payment(6)),  # unknown: 404
            abort_item(side.payment(7)),  # a tombstone
            commit_item(side.payment(5)),
        ]

    answer = await both(twin, batch(finishes), fast=True)
    assert [r["status"] for r in answer.json()["results"]] == [200, 200, 409, 404, 200, 200]
    again = batch(
        lambda side: [abort_item(side.payment(0)), prepare_item(side.payment(7), "DEBIT", twin.account, "1")]
    )
    assert [r["status"] for r in (await both(twin, again, fast=True)).json()["results"]] == [409, 200]


async def test_faults_answer_alike(twin: Twin) -> None:
    for call, kind in (
        ("commit", "error"),
        ("prepare", "duplicate"),
        ("lookup", "timeout"),
        ("lookup", "latency"),
    ):
        rule = {"call": call, "kind": kind, "probability": 1.0, "hang_ms": 0, "latency_ms": 1}
        for side in twin.sides:
            assert (
                await side.http.post("/ibps/v1/sandbox/faults", json=rule, headers=AUTH)
            ).status_code == 201

    def items(side: Side) -> list[dict[str, Any]]:
        return [
            prepare_item(side.payment(10), "DEBIT", twin.account, "408.08"),  # times out: 504
            prepare_item(side.payment(11), "CREDIT", twin.account, "503.03"),  # reply lost: 504
            prepare_item(side.payment(12), "CREDIT", twin.account, "3.00"),  # delivered twice
            commit_item(side.payment(13)),  # an injected error: 503
        ]

    answer = await both(twin, batch(items), fast=True)
    assert [r["status"] for r in answer.json()["results"]] == [504, 504, 200, 503]
    timed_out = await both(twin, lookup(twin.proxy), fast=True)
    assert (timed_out.status, timed_out.json()["code"]) == (504, "INJECTED_TIMEOUT")
    listed = [
        (await side.http.get("/ibps/v1/sandbox/faults", headers=AUTH)).json()["injected"]
        for side in twin.sides
    ]
    assert listed[0] == listed[1]


async def test_look_ups_answer_alike(twin: Twin) -> None:
    found = await both(twin, lookup(twin.proxy), fast=True)
    assert (found.status, found.json()["account_id"]) == (200, twin.account)
    unknown = await both(twin, lookup("+8613000000000"), fast=True)
    assert (unknown.status, unknown.json()["code"]) == (404, "BE23")
    for value in ("+86123", "8613800000000", "+86138000000001", "abc", "+8613800000000/x"):
        assert (await both(twin, lookup(value), fast=False)).status in (404, 422)
    assert (await both(twin, lookup(twin.proxy, {}), fast=False)).status == 401
    assert (await both(twin, lookup(twin.proxy, {"Authorization": "Bearer wrong"}), fast=False)).status == 401
    assert (await both(twin, lookup(twin.proxy, method="HEAD"), fast=False)).status in (200, 405)
    assert (await both(twin, lookup(twin.proxy, query="?x=1"), fast=True)).status == 200


def well_formed(twin: Twin) -> Callable[[Side], list[dict[str, Any]]]:
    return lambda side: [prepare_item(side.payment(20), "CREDIT", twin.account, "1.00")]


NOT_SERVED: list[tuple[str, bytes | list[bytes], dict[str, str]]] = [
    ("no token", b'{"items": []}', {"Content-Type": "application/json"}),
    ("wrong token", b'{"items": []}', {"Content-Type": "application/json", "Authorization": "Bearer x"}),
    ("basic", b'{"items": []}', {"Content-Type": "application/json", "Authorization": f"Basic {TOKEN}"}),
    ("no items", b'{"items": []}', {"Content-Type": "application/json", **AUTH}),
    ("not json", b'{"items": [', {"Content-Type": "application/json", **AUTH}),
    ("empty", b"", {"Content-Type": "application/json", **AUTH}),
    ("array", b"[]", {"Content-Type": "application/json", **AUTH}),
    ("text", b'{"items": []}', {"Content-Type": "text/plain", **AUTH}),
    ("no content type", b'{"items": []}', AUTH),
    ("unknown field", b'{"items": [], "x": 1}', {"Content-Type": "application/json", **AUTH}),
    (
        "bad item",
        json.dumps({"items": [{"op": "commit", "payment_id": "nope"}]}).encode(),
        {"Content-Type": "application/json", **AUTH},
    ),
    (
        "unknown op",
        json.dumps({"items": [{"op": "undo", "payment_id": str(uuid.uuid4())}]}).encode(),
        {"Content-Type": "application/json", **AUTH},
    ),
    (
        "a payment twice",
        json.dumps({"items": [commit_item(p := str(uuid.uuid4())), abort_item(p)]}).encode(),
        {"Content-Type": "application/json", **AUTH},
    ),
    (
        "amount as a number",
        json.dumps(
            {"items": [prepare_item(str(uuid.uuid4()), "DEBIT", "CN1", "1") | {"amount": 1}]}
        ).encode(),
        {"Content-Type": "application/json", **AUTH},
    ),
    (
        "usd",
        json.dumps(
            {"items": [prepare_item(str(uuid.uuid4()), "DEBIT", "CN1", "1") | {"currency": "USD"}]}
        ).encode(),
        {"Content-Type": "application/json", **AUTH},
    ),
    (
        "too many",
        json.dumps({"items": [commit_item(str(uuid.uuid4())) for _ in range(1001)]}).encode(),
        {"Content-Type": "application/json", **AUTH},
    ),
    ("utf-16", '{"items": []}'.encode("utf-16"), {"Content-Type": "application/json", **AUTH}),
]


@pytest.mark.parametrize(
    ("body", "headers"), [(b, h) for _, b, h in NOT_SERVED], ids=[n for n, _, _ in NOT_SERVED]
)
async def test_what_the_lane_does_not_serve_the_route_answers(
    twin: Twin, body: bytes | list[bytes], headers: dict[str, str]
) -> None:
    answer = await both(twin, raw_batch(body, headers), fast=False)
    assert answer.status in (401, 422), answer.body


async def test_bodies_in_pieces_and_content_type_parameters_answer_alike(twin: Twin) -> None:
    def pieces(side: Side) -> tuple[str, str, dict[str, str], list[bytes]]:
        body = json.dumps({"items": well_formed(twin)(side)}).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **AUTH}
        return "POST", BATCH, headers, [body[:7], body[7:30], body[30:]]

    assert (await both(twin, pieces, fast=True)).status == 200
    spaced = {"Content-Type": "Application/JSON ; charset=utf-8", "Authorization": f"bearer   {TOKEN}  "}
    assert (await both(twin, batch(well_formed(twin), spaced), fast=True)).status == 200
    # +json is JSON to FastAPI too, but the lane leaves it to the route
    plus_json = {"Content-Type": "application/x+json", **AUTH}
    assert (await both(twin, batch(well_formed(twin), plus_json), fast=False)).status == 200


async def test_an_unexpected_failure_answers_alike(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(repository, "write_plan", broken)
    answer = await both(twin, batch(well_formed(twin)), fast=True)
    assert (answer.status, answer.json()["code"]) == (500, "INTERNAL_ERROR")
    monkeypatch.setattr(repository, "get_proxy", broken)
    assert (await both(twin, lookup(twin.proxy), fast=True)).status == 500

"""POST /v1/payments through the fast path answers as its FastAPI route does (fpslink.api.fast_payments).

Two gateways share one database and one clock: `fast` as it is served, and `route`, built with
`fast_path=False`. Each request goes to both; the status, the body bytes, the headers, the counters
the request moved and the log records it left must be the same. The only values allowed to differ
are the ids of the payments and quotes each gateway made (masked before comparing).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from gateway_stack import OPERATOR_KEY, Stack, settings_for
from gw_support import Bank, FakeClock, Harness, unreachable_database_settings
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Receive, Scope, Send

from fpslink import logs
from fpslink.api.certification_edge import CertificationEdge
from fpslink.api.fast_payments import FastPayments
from fpslink.app import create_app
from fpslink.config import Settings
from fpslink.invariants import check_invariants

COUNTED = (
    "fpslink_http_requests_total",
    "fpslink_payments_total",
    "fpslink_payment_seconds_count",
    "fpslink_idempotent_replays_total",
)
REQUEST_ID = "parity-request-0001"


class RouteSpy:
    """Counts the POST /v1/payments requests the fast path left to the router behind it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/payments" and scope["method"] == "POST":
            self.calls += 1
        await self.app(scope, receive, send)


def spy_on(app: Any) -> RouteSpy:
    """Put a RouteSpy between the app's FastPayments and its router."""
    edge = app.router.middleware_stack
    assert isinstance(edge, CertificationEdge), "create_app() should put the certification edge in front"
    fast = edge.app
    assert isinstance(fast, FastPayments), "create_app() should put the fast path in front of the router"
    spy = RouteSpy(fast.app)
    fast.app = spy
    return spy


@dataclass
class Answer:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]
    counted: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    logged: list[tuple[str, str, str, str | None, bool]]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Side:
    h: Harness
    name: str
    masks: dict[str, str] = field(default_factory=dict)
    spy: RouteSpy | None = None


@dataclass
class Twin:
    fast: Side
    route: Side
    hk: Bank
    cn: Bank
    debtor: str
    creditor: str
    creditor_proxy: str

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.fast, self.route


def counters() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name in COUNTED:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class Records(logging.Handler):
    """Every record logged while a request is handled, with the ids its context gave it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(logs.ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def call(
    side: Side,
    *,
    body: bytes | Iterable[bytes] | None,
    headers: dict[str, str],
) -> Answer:
    """One POST /v1/payments; its answer with the side's own ids masked, the counters it moved."""
    content: Any = body
    if body is not None and not isinstance(body, bytes):
        chunks = list(body)

        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        content = stream()
    before = counters()
    handler = Records()
    fpslink = logging.getLogger("fpslink")
    level = fpslink.level
    fpslink.addHandler(handler)
    fpslink.setLevel(logging.DEBUG)
    try:
        response = await side.h.http.post("/v1/payments", content=content, headers=headers)
    finally:
        fpslink.removeHandler(handler)
        fpslink.setLevel(level)
    after = counters()
    moved = {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}
    if response.status_code in (201, 202):
        side.masks.setdefault(response.json()["payment_id"], f"<payment {len(side.masks)}>")
    masked_body = response.content
    masked_headers = comparable(response.headers.raw)
    for real, mask in side.masks.items():
        masked_body = masked_body.replace(real.encode(), mask.encode())
        masked_headers = [(k, v.replace(real.encode(), mask.encode())) for k, v in masked_headers]
    logged = [
        (r.name, r.levelname, mask_all(r.getMessage(), side.masks), r.request_id, r.payment_id is not None)  # type: ignore[attr-defined]
        for r in handler.records
        # the request's own, and the API's (ServerErrorMiddleware logs after the request id is reset);
        # not the background tasks', which log on their own schedule
        if r.request_id == headers.get("X-Request-ID") or r.name == "fpslink.api"  # type: ignore[attr-defined]
    ]
    return Answer(response.status_code, masked_body, masked_headers, moved, logged)


def mask_all(text: str, masks: dict[str, str]) -> str:
    for real, mask in masks.items():
        text = text.replace(real, mask)
    return text


REMAINING = re.compile(rb'"bank";r=\d+;t=\d+')


def comparable(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers with the RateLimit field's figures masked: the requests left depend on which
    gateway's lease served the request (the two share one database), the field's shape does not."""
    return [(k, b"<left>" if k == b"ratelimit" and REMAINING.fullmatch(v) else v) for k, v in headers]


FRESH = "{fresh}"
"""In an Idempotency-Key: replaced by a new value on each side (the gateways share one database)."""


async def both(
    twin: Twin,
    body: dict[str, Any] | bytes | list[bytes] | None,
    *,
    key: str | None = FRESH,
    auth: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> tuple[Answer, Answer]:
    """The same request to both gateways; asserts the answers and their side effects are the same.

    `auth` defaults to the HK bank's key ({} sends none); `key` None sends no Idempotency-Key.
    """
    answers = []
    for side in twin.sides:
        sent = {"X-Request-ID": REQUEST_ID, **(twin.hk.headers if auth is None else auth)}
        if content_type is not None:
            sent["Content-Type"] = content_type
        if key is not None:
            sent["Idempotency-Key"] = key.replace(FRESH, f"{side.name}-{uuid.uuid4()}")
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        answers.append(await call(side, body=raw, headers=sent))
    fast, route = answers
    assert fast.status == route.status, (fast, route)
    assert fast.body == route.body
    assert fast.headers == route.headers
    assert fast.counted == route.counted
    assert fast.logged == route.logged
    return fast, route


async def gateways(
    exits: contextlib.AsyncExitStack, settings: Settings, clock: FakeClock
) -> tuple[Side, Side]:
    """The two gateways, started: `fast` as served, `route` with fast_path=False."""
    sides = []
    for name, fast_path in (("fast", True), ("route", False)):
        app = create_app(settings, clock=clock, fast_path=fast_path)
        await exits.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        http = await exits.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60)
        )
        sides.append(Side(Harness(app=app, http=http, clock=clock), name))
    fast, route = sides
    fast.spy = spy_on(fast.h.app)
    return fast, route


@pytest.fixture
async def twin(stack: Stack) -> AsyncIterator[Twin]:
    async with contextlib.AsyncExitStack() as exits:
        fast, route = await gateways(exits, settings_for(stack), FakeClock())
        hk, cn = await route.h.bank("FPS"), await route.h.bank("IBPS")
        debtor = await route.h.account(hk, "HKD", "1000000.00")
        creditor = await route.h.account(cn, "CNY", "0.00")
        proxy = await route.h.proxy(cn, creditor)
        yield Twin(fast, route, hk, cn, debtor, creditor, proxy)
        report = await check_invariants(route.h.gw)
        assert report.ok, "\n".join(report.violations)


def payment(twin: Twin, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "debtor_account_id": twin.debtor,
        "creditor": {"account_id": twin.creditor},
        "amount": "10.00",
        "currency": "HKD",
        "purpose": "FAMILY_SUPPORT",
    }
    body.update(changes)
    return body


async def test_a_settled_payment_is_answered_alike_and_by_the_fast_path(twin: Twin) -> None:
    assert twin.fast.spy is not None
    fast, _ = await both(twin, payment(twin))
    assert fast.status == 201 and fast.json()["status"] == "SETTLED"
    assert twin.fast.spy.calls == 0, "a well-formed payment should not reach the route"
    names = [k for k, _ in fast.headers]
    assert names == [
        b"location",
        b"content-length",
        b"content-type",
        b"ratelimit-policy",
        b"ratelimit",
        b"x-request-id",
        b"fpslink-sandbox-time",
    ]
    assert (b"x-request-id", REQUEST_ID.encode()) in fast.headers
    assert fast.counted[("fpslink_http_requests_total", (("route", "/v1/payments"), ("status", "201")))] == 1
    assert fast.counted[("fpslink_payments_total", (("direction", "NORTHBOUND"), ("status", "SETTLED")))] == 1
    assert fast.counted[("fpslink_payment_seconds_count", ())] == 1


async def test_payment_variants_are_answered_alike(twin: Twin) -> None:
    """By proxy, in the creditor's currency, with optional fields, charset, a chunked body."""
    by_proxy = {"proxy_type": "MOBILE", "proxy_value": twin.creditor_proxy}
    await both(twin, payment(twin, creditor=by_proxy, remittance_info="Nov", end_to_end_id="E2E-1"))
    await both(twin, payment(twin, amount=" 9.5 ", currency="CNY"))
    await both(twin, payment(twin), content_type="application/json; charset=utf-8")
    await both(twin, payment(twin), content_type="Application/JSON")
    chunks = json.dumps(payment(twin)).encode()
    await both(twin, [chunks[:7], chunks[7:50], b"", chunks[50:]])
    assert twin.fast.spy is not None and twin.fast.spy.calls == 0


async def test_a_quoted_payment_is_answered_alike(twin: Twin) -> None:
    quote = {"source_currency": "HKD", "target_currency": "CNY", "amount": "10.00", "amount_type": "SEND"}
    for side in twin.sides:
        made = await side.h.http.post("/v1/quotes", json=quote, headers=twin.hk.headers)
        assert made.status_code == 201, made.text
        side.masks[made.json()["quote_id"]] = "<quote>"
    answers = []
    for side in twin.sides:
        quote_id = next(real for real, mask in side.masks.items() if mask == "<quote>")
        sent = {**twin.hk.headers, "Idempotency-Key": str(uuid.uuid4()), "X-Request-ID": REQUEST_ID}
        body = json.dumps(payment(twin, quote_id=quote_id.upper())).encode()
        answers.append(await call(side, body=body, headers={**sent, "Content-Type": "application/json"}))
    fast, route = answers
    assert (fast.status, fast.body, fast.headers, fast.counted) == (
        route.status,
        route.body,
        route.headers,
        route.counted,
    )
    assert fast.json()["quote_id"] == "<quote>"


async def test_rejected_payments_are_answered_alike(twin: Twin) -> None:
    fast, _ = await both(twin, payment(twin, amount="999999.00"))
    assert fast.json()["status"] == "REJECTED"
    fast, _ = await both(twin, payment(twin, creditor={"account_id": "CNNOSUCHACCOUNT"}))
    assert fast.json()["reason_code"] == "AC01"
    hk2 = await twin.route.h.bank("FPS")
    other_hk = await twin.route.h.account(hk2, "HKD", "10.00")
    fast, _ = await both(twin, payment(twin, creditor={"account_id": other_hk}))
    assert fast.json()["reason_code"] == "NOT_CROSS_BORDER"


async def test_replays_and_reused_keys_are_answered_alike(twin: Twin) -> None:
    keys = {side.name: f"{side.name}-{uuid.uuid4()}" for side in twin.sides}
    firsts = []
    for side in twin.sides:
        sent = {**twin.hk.headers, "Idempotency-Key": keys[side.name], "X-Request-ID": REQUEST_ID}
        sent["Content-Type"] = "application/json"
        firsts.append(await call(side, body=json.dumps(payment(twin)).encode(), headers=sent))
    replays, reuses = [], []
    for side in twin.sides:
        sent = {**twin.hk.headers, "Idempotency-Key": keys[side.name], "X-Request-ID": REQUEST_ID}
        sent["Content-Type"] = "application/json"
        replays.append(await call(side, body=json.dumps(payment(twin, amount="10.0")).encode(), headers=sent))
        reuses.append(await call(side, body=json.dumps(payment(twin, amount="11.00")).encode(), headers=sent))
    for answers in (firsts, replays, reuses):
        fast, route = answers
        assert (fast.status, fast.body, fast.headers, fast.counted, fast.logged) == (
            route.status,
            route.body,
            route.headers,
            route.counted,
            route.logged,
        )
    assert replays[0].body == firsts[0].body
    assert (b"idempotent-replayed", b"true") in replays[0].headers
    assert replays[0].counted[("fpslink_idempotent_replays_total", (("endpoint", "POST /v1/payments"),))] == 1
    assert reuses[0].status == 422 and reuses[0].json()["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_a_payment_made_on_one_path_replays_identically_on_the_other(twin: Twin) -> None:
    for first, second in ((twin.fast, twin.route), (twin.route, twin.fast)):
        key = str(uuid.uuid4())
        sent = {**twin.hk.headers, "Idempotency-Key": key, "Content-Type": "application/json"}
        made = await first.h.http.post("/v1/payments", content=json.dumps(payment(twin)), headers=sent)
        again = await second.h.http.post("/v1/payments", content=json.dumps(payment(twin)), headers=sent)
        assert made.status_code == again.status_code == 201
        assert again.content == made.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == made.headers["location"]


async def test_unknown_and_foreign_debtors_are_answered_alike(twin: Twin) -> None:
    fast, _ = await both(twin, payment(twin, debtor_account_id="HKNOSUCHACCOUNT"))
    assert fast.status == 404 and fast.json()["code"] == "ACCOUNT_NOT_FOUND"
    other = await twin.route.h.bank("FPS")
    fast, _ = await both(twin, payment(twin), auth=other.headers)
    assert fast.status == 404
    fast, _ = await both(twin, payment(twin, currency="CNY", amount="1.00"), auth=twin.cn.headers)
    assert fast.status == 404


async def test_key_problems_are_answered_alike(twin: Twin) -> None:
    for key, code in ((None, "IDEMPOTENCY_KEY_MISSING"), ("x" * 256, "IDEMPOTENCY_KEY_INVALID")):
        fast, _ = await both(twin, payment(twin), key=key)
        assert fast.status == 422 and fast.json()["code"] == code
    fast, _ = await both(twin, payment(twin), key="")
    assert fast.json()["code"] == "IDEMPOTENCY_KEY_MISSING"
    fast, _ = await both(twin, payment(twin), key='""')
    assert fast.json()["code"] == "IDEMPOTENCY_KEY_INVALID"
    fast, _ = await both(twin, payment(twin), key=f'"{FRESH}"')  # quoted, as the IETF draft writes it
    assert fast.status == 201


async def test_bad_bodies_are_answered_alike(twin: Twin) -> None:
    good = payment(twin)
    cases: list[Any] = [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"amount": NaN}',
        b"\xef\xbb\xbf" + json.dumps(good).encode(),  # a BOM: Python's json reads it, pydantic's not
        json.dumps(good).encode("utf-16"),
        json.dumps(good).encode() + b" trailing",
        {k: v for k, v in good.items() if k != "purpose"},
        {**good, "unexpected": 1},
        {**good, "amount": "1.001"},
        {**good, "amount": 10},
        {**good, "currency": "EUR"},
        {
            **good,
            "creditor": {
                "account_id": twin.creditor,
                "proxy_type": "MOBILE",
                "proxy_value": "+8613800138000",
            },
        },
        {**good, "quote_id": "not-a-uuid"},
        {**good, "debtor_account_id": "bad id!"},
        [b'{"debtor_account_id": ', b"12}"],
    ]
    for body in cases:
        fast, _ = await both(twin, body)
        assert fast.status in (201, 422), (body, fast)
    # Python's json reads what pydantic's parser refuses: the route decides, so both agree
    fast, _ = await both(twin, b"\xef\xbb\xbf" + json.dumps(good).encode())
    duplicated = json.dumps(good)[:-1].encode() + b', "amount": "12.00"}'
    fast, _ = await both(twin, duplicated)
    assert fast.status == 201 and fast.json()["source_amount"] == "12.00"


async def test_content_types_are_answered_alike(twin: Twin) -> None:
    body = json.dumps(payment(twin)).encode()
    for content_type in (None, "", "text/plain", "application/problem+json", "application/x-json", "json"):
        await both(twin, body, content_type=content_type)


async def test_authentication_problems_are_answered_alike(twin: Twin) -> None:
    key = twin.hk.api_key
    for authorization in (
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic " + key,
        "bearer " + key,
        "BEARER   " + key + "  ",
        "Bearer unknown-key",
        "Bearer " + key + "x",
        f"Bearer {OPERATOR_KEY}",
        "Token " + key,
    ):
        auth = {} if authorization is None else {"Authorization": authorization}
        fast, _ = await both(twin, payment(twin), auth=auth)
        assert fast.status in (201, 401, 403), (authorization, fast)


async def test_request_ids_are_made_alike(twin: Twin) -> None:
    """Without X-Request-ID each answer gets a fresh one: 32 hex digits on both paths."""
    for side in twin.sides:
        sent = {**twin.hk.headers, "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
        answer = await call(side, body=json.dumps(payment(twin)).encode(), headers=sent)
        request_id = dict(answer.headers)[b"x-request-id"].decode()
        assert len(request_id) == 32 and int(request_id, 16) >= 0
        invalid = {**sent, "X-Request-ID": "spaces are not allowed", "Idempotency-Key": str(uuid.uuid4())}
        answer = await call(side, body=json.dumps(payment(twin)).encode(), headers=invalid)
        assert len(dict(answer.headers)[b"x-request-id"]) == 32


async def test_the_fast_path_leaves_other_requests_to_the_app(twin: Twin) -> None:
    assert twin.fast.spy is not None
    for method, path in (("GET", "/v1/payments"), ("POST", "/v1/payments/"), ("PUT", "/v1/payments")):
        answers = []
        for side in twin.sides:
            response = await side.h.http.request(
                method, path, headers={**twin.hk.headers, "X-Request-ID": REQUEST_ID}
            )
            answers.append((response.status_code, response.content, comparable(response.headers.raw)))
        assert answers[0] == answers[1]
    assert twin.fast.spy.calls == 0
    await both(twin, payment(twin), key=None)
    assert twin.fast.spy.calls == 1, "a request without Idempotency-Key goes to the route"


async def test_a_database_out_of_reach_is_answered_alike() -> None:
    """A database out of reach is answered 503 by the exception handlers, and counted as a 503, alike
    on both paths (it used to leave the app unhandled, counted as a 500 and logged as a traceback)."""
    settings = unreachable_database_settings()
    async with contextlib.AsyncExitStack() as exits:
        fast, route = await gateways(exits, settings, FakeClock())
        bank = Bank("HKX", "FPS", "fpsl_not_a_key_anyone_has")
        twin = Twin(fast, route, bank, bank, "HKNOWHERE", "CNNOWHERE", "")
        fast_answer, _ = await both(twin, payment(twin))
    assert fast_answer.status == 503 and fast_answer.json()["code"] == "DATABASE_UNAVAILABLE"
    # counted as answered: the request middleware wraps ServerErrorMiddleware, so it sees the 503
    assert fast_answer.counted == {
        ("fpslink_http_requests_total", (("route", "/v1/payments"), ("status", "503"))): 1.0
    }
    names = [k for k, _ in fast_answer.headers]
    assert b"x-request-id" in names and b"fpslink-sandbox-time" in names, names
    assert [(name, level) for name, level, *_ in fast_answer.logged] == [("fpslink.api", "WARNING")]

"""The fast path of POST /v1/payments takes only what the FastAPI route would take the same way.

The integration tests (tests/integration/test_gw_fast_payments.py) compare whole answers; these pin
the parsing the fast path does itself: whatever it accepts, the route would accept with the same
value, and what it read it gives back to the route unchanged.
"""

from __future__ import annotations

import asyncio
import email.message
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.types import Message

from fpslink.api import fast_payments, routes
from fpslink.api.certification_edge import CertificationEdge
from fpslink.api.fast_payments import FastPayments
from fpslink.api.schemas import PaymentCreate
from fpslink.app import create_app
from fpslink.config import Settings
from ibps_wire.asgi import is_json, read_body, replay

GOOD: dict[str, Any] = {
    "debtor_account_id": "HK3F9A0C21B7D4E5F6",
    "creditor": {"account_id": "CN0A1B2C3D4E5F6A7B"},
    "amount": "1000.00",
    "currency": "HKD",
    "purpose": "FAMILY_SUPPORT",
}


def route_reads_json(content_type: str) -> bool:
    """FastAPI's own test (fastapi.routing.get_request_handler, strict content type)."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def route_body(raw: bytes) -> PaymentCreate | None:
    """What the route's body parameter becomes: json.loads, then validation from Python objects."""
    try:
        return PaymentCreate.model_validate(json.loads(raw), from_attributes=True)
    except (ValueError, ValidationError):
        return None


def fast_body(raw: bytes) -> PaymentCreate | None:
    try:
        return PaymentCreate.model_validate_json(raw)
    except ValueError:
        return None


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        " application/json ;charset=latin-1",
        "application/json;",
        "application/problem+json",
        "application/x-json",
        "text/json",
        "application/json, text/plain",
        "application/json/x",
        "application/jsonx",
        "",
        "json",
    ],
)
def test_only_what_the_route_reads_as_json_is_taken(content_type: str) -> None:
    if is_json(content_type):
        assert route_reads_json(content_type)


def test_no_content_type_is_left_to_the_route() -> None:
    assert not is_json(None)


EDGE_BODIES = [
    json.dumps(GOOD).encode(),
    json.dumps(GOOD, ensure_ascii=False, indent=2).encode(),
    json.dumps(GOOD).encode() + b" \r\n\t",
    b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),  # BOM: json.loads reads it, the fast path does not
    json.dumps(GOOD).encode("utf-16"),
    json.dumps(GOOD)[:-1].encode() + b', "amount": "2.00"}',  # a duplicate key: the last wins in both
    json.dumps(GOOD)[:-1].encode() + b', "remittance_info": "\\ud800"}',  # a lone surrogate
    json.dumps(GOOD)[:-1].encode() + b', "remittance_info": "\\u5f20\\ud83d\\ude00\\u0000"}',
    json.dumps(GOOD)[:-1].encode() + b', "remittance_info": "\xff"}',  # not UTF-8
    json.dumps(GOOD)[:-1].encode() + b', "remittance_info": "a\tb"}',  # a raw control character
    json.dumps(GOOD)[:-1].encode() + b', "end_to_end_id": 1' + b"0" * 5000 + b"}",
    json.dumps({**GOOD, "amount": 10}).encode(),
    json.dumps({**GOOD, "amount": 1e400}).encode(),
    json.dumps(GOOD).replace('"1000.00"', "NaN").encode(),
    json.dumps({**GOOD, "quote_id": "5F0C6C1E-9A53-4C39-9D43-1F1F7D8A2B10"}).encode(),
    json.dumps({**GOOD, "creditor": {"proxy_type": "MOBILE", "proxy_value": "+86 138 0013 8000"}}).encode(),
    json.dumps({**GOOD, "purpose": "  padded  "}).encode(),
    b"[" * 10_000 + b"]" * 10_000,
    b"",
]


@pytest.mark.parametrize("raw", EDGE_BODIES)
def test_a_body_the_fast_path_takes_is_the_body_the_route_takes(raw: bytes) -> None:
    fast = fast_body(raw)
    if fast is not None:
        assert route_body(raw) == fast


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=40),
    field=st.sampled_from(["remittance_info", "purpose", "end_to_end_id", "amount", "debtor_account_id"]),
    ascii_only=st.booleans(),
)
def test_any_string_value_is_read_alike(text: str, field: str, ascii_only: bool) -> None:
    raw = json.dumps({**GOOD, field: text}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    fast = fast_body(raw)
    if fast is not None:
        assert route_body(raw) == fast


def test_the_body_is_read_whole_and_replayed_as_it_came() -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"a": ', "more_body": True},
        {"type": "http.request", "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
    ]
    live: list[Message] = [{"type": "http.disconnect"}]

    async def run() -> tuple[bytes | None, list[Message]]:
        source = iter(messages + live)

        async def receive() -> Message:
            return next(source)

        received: list[Message] = []
        body = await read_body(receive, received)
        again = replay(received, receive)
        return body, [await again() for _ in range(4)]

    body, replayed = asyncio.run(run())
    assert body == b'{"a": 1}'
    assert replayed == messages + live


def test_a_client_gone_before_the_end_of_the_body_is_left_to_the_route() -> None:
    async def run() -> tuple[bytes | None, list[Message]]:
        source = iter(
            [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
        )

        async def receive() -> Message:
            return next(source)

        received: list[Message] = []
        return await read_body(receive, received), received

    body, received = asyncio.run(run())
    assert body is None
    assert [m["type"] for m in received] == ["http.request", "http.disconnect"]


def test_the_fast_path_counts_under_the_route_the_router_selects() -> None:
    """RequestIdMiddleware labels requests by scope["route"]: the fast path must set the same object."""
    app = create_app(Settings())
    edge = app.router.middleware_stack
    assert isinstance(edge, CertificationEdge)  # which passes every request while no bank certifies
    fast = edge.app
    assert isinstance(fast, FastPayments)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/payments",
        "raw_path": b"/v1/payments",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    sent: list[Message] = []

    async def run() -> None:
        async def receive() -> Message:
            return {"type": "http.request", "body": b"{", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await create_app(Settings(), fast_path=False)(scope, receive, send)

    asyncio.run(run())
    assert sent[0]["status"] == 422
    assert scope["route"] is fast.route
    assert scope["route"].endpoint is routes.create_payment


def test_no_fast_path_when_a_body_limit_is_configured() -> None:
    app = create_app(Settings())
    app.router.middleware_stack = app.router.app  # as built, before install
    app.max_body_size = 1024
    fast_payments.install(app)
    assert not isinstance(app.router.middleware_stack, FastPayments)


def test_the_openapi_document_does_not_depend_on_the_fast_path() -> None:
    with_fast = create_app(Settings()).openapi()
    without = create_app(Settings(), fast_path=False).openapi()
    assert json.dumps(with_fast, sort_keys=True) == json.dumps(without, sort_keys=True)

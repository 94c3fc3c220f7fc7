"""Request size limits, enforced in the ASGI layer before any route, authentication included, runs.

A body is refused by its declared Content-Length before a byte of it is read, and otherwise counted
as it arrives (chunked bodies included), so the refusal comes as soon as the count passes the
limit, not after the whole body sits in memory: without it, one unauthenticated 50 MiB JSON body
to POST /v1/payments raised a worker's peak memory from 141 MB to 540 MB before its 401. The JSON
routes read their body before they authenticate, so an oversized body is refused first there too.

The request head (request line and headers) is bounded by the server (`fpslink.serving`); the
query string is bounded here. Every refusal is problem+json with a stable code:
413 PAYLOAD_TOO_LARGE, 414 URI_TOO_LONG.

The layer sits outside `fast_payments` and costs the hot path a look at the declared Content-Length
(about 1 us a request, measured in process): a body of declared length needs no counting, since the
server delivers exactly that many bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpslink.api.problems import problem_response
from fpslink.config import Settings

ISO20022_PREFIX = "/v1/iso20022/"
CLOSE = {"Connection": "close"}
"""Sent with a 413: the rest of the body is not read, so the connection cannot carry another request."""


class PayloadTooLarge(HTTPException):
    """A body that passed its limit while the app read it; the app's handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit), headers=CLOSE)


def too_large_detail(limit: int) -> str:
    return f"the request body exceeds {limit} bytes, the most this endpoint accepts"


class RequestLimits:
    """Refuses a request whose query string or body is larger than the settings allow."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_iso20022_body: int, max_query: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_iso20022_body = max_iso20022_body
        self.max_query = max_query

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The app's own coroutine, or the refusal's: not a coroutine of its own, so the layer adds
        no frame that every resumption of a request (each database and IBPS wait) passes through."""
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        if len(scope.get("query_string", b"")) > self.max_query:
            response = problem_response(
                414,
                "URI_TOO_LONG",
                "URI too long",
                f"the query string exceeds {self.max_query} bytes",
            )
            return response(scope, receive, send)
        limit = self.max_iso20022_body if scope["path"].startswith(ISO20022_PREFIX) else self.max_body
        declared = content_length(scope["headers"])
        if declared is None:  # chunked (or no body): counted as it arrives
            return self.app(scope, counted(receive, limit), send)
        if declared <= limit:  # the server delivers exactly the declared length, never more
            return self.app(scope, receive, send)
        response = problem_response(413, "PAYLOAD_TOO_LARGE", "Payload too large", too_large_detail(limit))
        response.headers.update(CLOSE)
        return response(scope, receive, send)


def content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared body length; None when absent (chunked). The server refuses a length that is not
    a number before the request gets here, and a request with both a length and chunks."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def counted(receive: Receive, limit: int) -> Receive:
    """`receive`, raising PayloadTooLarge as soon as the body read so far is over `limit`."""
    seen = 0

    async def receive_counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(limit)
        return message

    return receive_counted


def install(app: FastAPI, settings: Settings) -> None:
    """Put the limits in front of every route (inside the request-id layer, so refusals carry one)."""
    app.add_middleware(
        RequestLimits,
        max_body=settings.max_body_bytes,
        max_iso20022_body=settings.max_iso20022_body_bytes,
        max_query=settings.max_query_bytes,
    )

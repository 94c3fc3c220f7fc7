"""The two calls of the payment path without FastAPI's per-request machinery, answering as their routes do.

The gateway calls ``POST /ibps/v1/transfers/batch`` twice per batch of payments and
``GET /ibps/v1/proxies/{e164}`` for each +86 payee. Through FastAPI each cost a fixed share of the
service's CPU (the included routers' matching, dependency solving, parsing the body into Python
objects and validating them, checking the answer against its model) of about the same size as
all the work of a batch of thirty payments. This ASGI layer sits in front of the router, inside the
exception handlers, and serves those two requests itself when they are well formed: the bearer
token right, a JSON body that `BatchIn` accepts, a proxy value that `check_proxy` accepts. It then
runs the route's own use case (`api.run_batch`, `api.lookup`) and sends the answer the route would.

Anything else (another content type, a body or a value that does not validate, no token or a wrong
one) goes to the ordinary route, with the body replayed, so every such error answer is FastAPI's
own. An error raised while serving is not retried through the route (that would apply a batch
twice): it propagates to the same exception handlers the route's would reach.
tests/mock_ibps/test_ibps_fast.py compares both paths answer by answer.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from pydantic import TypeAdapter
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ibps_wire.asgi import is_json, read_body, replay
from ibps_wire.schemas import PROXY_RE, BatchIn, BatchOut, ProxyOut
from mock_ibps import api

BATCH_PATH: Final = "/ibps/v1/transfers/batch"
PROXY_PREFIX: Final = "/ibps/v1/proxies/"
JSON: Final = "application/json"
_BATCH_OUT: Final = TypeAdapter(BatchOut)
_PROXY_OUT: Final = TypeAdapter(ProxyOut)
"""What FastAPI serialises a route's answer with (its `dump_json` path), so the bytes are the same."""


class FastLane:
    """Serves a well-formed, authenticated batch or proxy look-up; hands every other request to `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == BATCH_PATH:
                received: list[Message] = []
                if not await self._batch(scope, receive, send, received):
                    await self.app(scope, replay(received, receive), send)
                return
            if method == "GET" and path.startswith(PROXY_PREFIX):
                if not await self._lookup(scope, receive, send, path[len(PROXY_PREFIX) :]):
                    await self.app(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _batch(self, scope: Scope, receive: Receive, send: Send, received: list[Message]) -> bool:
        """Answer the batch and return True, or return False having sent nothing."""
        headers = Headers(scope=scope)
        if not is_json(headers.get("content-type")):
            return False
        state = scope["app"].state
        if not api.token_matches(state.settings.token, headers.get("authorization")):
            return False
        raw = await read_body(receive, received)
        if raw is None:
            return False
        try:
            body = BatchIn.model_validate_json(raw)
        except ValueError:  # pydantic's ValidationError, invalid JSON included
            return False
        out = await api.run_batch(body, state.ledger, state.faults)
        await json_response(_BATCH_OUT.dump_json(out, by_alias=True))(scope, receive, send)
        return True

    async def _lookup(self, scope: Scope, receive: Receive, send: Send, proxy_value: str) -> bool:
        """Answer the look-up and return True, or return False having sent nothing."""
        if PROXY_RE.fullmatch(proxy_value) is None:
            return False
        state = scope["app"].state
        if not api.token_matches(state.settings.token, Headers(scope=scope).get("authorization")):
            return False
        out = await api.lookup(proxy_value, state.ledger, state.faults)
        await json_response(_PROXY_OUT.dump_json(out, by_alias=True))(scope, receive, send)
        return True


def json_response(content: bytes) -> Response:
    """The response FastAPI makes of a route's model (its `dump_json` path): the same headers."""
    return Response(content=content, media_type=JSON)


def install(app: FastAPI) -> None:
    """Put the fast lane in front of the app's router (after every route is included).

    Not when FastAPI's own body limit (`max_body_size`) is configured: the route enforces it, this
    lane would not.
    """
    if app.max_body_size is None:
        app.router.middleware_stack = FastLane(app.router.middleware_stack)

"""POST /v1/payments without FastAPI's per-request machinery, answering exactly as its route does.

Under load (benchmarks/throughput.py, 256 connections, 2 workers) FastAPI's routing through the
included routers, dependency solving and body handling made POST /v1/payments cost about 0.25 ms of
gateway CPU more than the payment itself needed (in process: 400 us per request outside `submit`,
150 us here). This ASGI layer sits in front of the router, inside the exception handlers and
RequestIdMiddleware, and serves the one hot request itself when it is well formed: a JSON body that
`PaymentCreate` accepts, a bank's valid Bearer key and a valid Idempotency-Key. It then calls
`routes.submit_payment`, the route's own tail, so the answer, headers and metrics are the route's.

Anything else (another content type, a body that does not validate, no or an unknown key, the
operator's key, no or a malformed Idempotency-Key) goes to the ordinary route with the body
replayed, so every such error answer is FastAPI's own. An error raised while submitting is not
retried through the route (that would submit twice): it propagates, as from the route, to the same
exception handlers. tests/integration/test_gw_fast_payments.py compares both paths answer by answer.

The bank's quota is applied before either path, by `rate_limits.RateLimits`, which also identified
the key: `deps.principal_of` takes the caller from there.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpslink.api import routes
from fpslink.api.deps import bearer, principal_of
from fpslink.api.schemas import PaymentCreate
from fpslink.context import Gateway
from fpslink.errors import FpslinkError
from fpslink.idempotency import service as idempotency
from fpslink.participants import service as participants_service
from ibps_wire.asgi import is_json, read_body, replay

PATH = "/v1/payments"


class FastPayments:
    """Serves a well-formed, authenticated POST /v1/payments; hands every other request to `app`."""

    def __init__(self, app: ASGIApp, route: APIRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")  # the router would match on the path less the root path
        ):
            await self.app(scope, receive, send)
            return
        # the router sets this before anything can fail: RequestIdMiddleware counts by its path
        scope["route"] = self.route
        received: list[Message] = []
        if not await self._serve(scope, receive, send, received):
            await self.app(scope, replay(received, receive), send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, received: list[Message]) -> bool:
        """Answer the request and return True, or return False having sent nothing."""
        request = Request(scope)
        if not is_json(request.headers.get("content-type")):
            return False
        raw = await read_body(receive, received)
        gw: Gateway | None = getattr(scope["app"].state, "gateway", None)
        if raw is None or gw is None:
            return False
        try:
            body = PaymentCreate.model_validate_json(raw)
        except ValueError:  # pydantic's ValidationError, invalid JSON included
            return False
        credentials = await bearer(request)
        if credentials is None:
            return False
        try:
            principal = await principal_of(scope, gw.participants, credentials.credentials)
            participants_service.require_participant(principal)
            key = idempotency.parse_key(request.headers.get("idempotency-key"), required=True)
        except FpslinkError:
            return False
        assert key is not None
        response = await routes.submit_payment(gw.payments, principal, key, body)
        await response(scope, receive, send)
        return True


def install(app: FastAPI) -> None:
    """Put the fast path in front of the app's router (after every route is included).

    Not when FastAPI's own body limit (`max_body_size`) is configured: the route enforces it, this
    path would not. The gateway's limits (`request_limits`) sit in front of this layer instead, so
    the fast path reads a body already counted against them.
    """
    route = next(
        r for r in routes.router.routes if isinstance(r, APIRoute) and r.endpoint is routes.create_payment
    )
    if app.max_body_size is None and route.max_body_size is None:
        app.router.middleware_stack = FastPayments(app.router.middleware_stack, route)

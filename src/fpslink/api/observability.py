"""Request ids, the sandbox's time, per-route counts and idempotent replays, as a plain ASGI
middleware (no buffering) around the whole application.

It wraps Starlette's error middleware too (`ObservedApp`), so that the answer to an unexpected
error, and the 503 of a database out of reach, carry the request id and the sandbox's time as every
other answer does.
"""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpslink import logs, metrics
from fpslink.context import Gateway
from ibps_wire.sandbox_clock import HEADER as SANDBOX_TIME

HEADER = "x-request-id"
SANDBOX_TIME_HEADER = SANDBOX_TIME.lower().encode()
VALID = re.compile(r"[\x21-\x7e]{1,128}")


def sandbox_time(scope: Scope) -> bytes | None:
    """The sandbox's time for the response's header (formatted once per second); None before the
    gateway has started."""
    gw: Gateway | None = getattr(scope["app"].state, "gateway", None) if "app" in scope else None
    if gw is None:
        return None
    return gw.sandbox_offset.header(gw.now())


class RequestIdMiddleware:
    """Takes X-Request-Id (or makes one), puts it in the log context, echoes it in the response, and
    adds `Fpslink-Sandbox-Time`: the time the answer was made at, in the sandbox."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(HEADER.encode(), b"").decode("latin-1")
        request_id = sent if VALID.fullmatch(sent) else uuid.uuid4().hex
        token = logs.request_id_var.set(request_id)
        payment_token = logs.payment_id_var.set(None)
        status = 500
        replayed = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                replayed = (b"idempotent-replayed", b"true") in headers
                headers.append((b"x-request-id", request_id.encode()))
                now = sandbox_time(scope)
                if now is not None:
                    headers.append((SANDBOX_TIME_HEADER, now))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_REQUESTS.labels(route=template, status=str(status)).inc()
            if replayed:
                metrics.IDEMPOTENT_REPLAYS.labels(endpoint=f"{scope['method']} {template}").inc()
            logs.payment_id_var.reset(payment_token)
            logs.request_id_var.reset(token)


class ObservedApp(FastAPI):
    """The gateway's FastAPI, with `RequestIdMiddleware` outside everything else."""

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIdMiddleware(super().build_middleware_stack())

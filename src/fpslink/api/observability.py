"""Request ids, per-route counts and idempotent replays, as a plain ASGI middleware (no buffering)."""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpslink import logs, metrics

HEADER = "x-request-id"
VALID = re.compile(r"[\x21-\x7e]{1,128}")


class RequestIdMiddleware:
    """Takes X-Request-Id (or makes one), puts it in the log context, echoes it in the response."""

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


def install(app: FastAPI) -> None:
    app.add_middleware(RequestIdMiddleware)

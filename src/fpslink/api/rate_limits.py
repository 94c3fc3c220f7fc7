"""Each bank's quota, applied before any route runs: 429 problem+json over it, RateLimit fields always.

An ASGI middleware inside RequestIdMiddleware, in front of the router and of `fast_payments` (so
POST /v1/payments is limited on both of its paths). A request with a bank's valid
Bearer key spends one token of the bank's quota (`fpslink.ratelimit`), whichever key of the bank it
carries and whatever it asks (a pacs.008 then spends one more for each transaction after its first,
once its route has read them: `iso20022_routes`); over the quota it is answered 429 before its
body is read, with `Retry-After` and the RateLimit-Policy and RateLimit fields
(draft-ietf-httpapi-ratelimit-headers), which every answer to a bank carries. Exempt: the
operator's key, `/healthz` and `/metrics`, and requests with no or an unknown key (their route
answers 401; the console's pages use a session, not a key).

The key is identified here, once: the route takes the caller from the scope (`deps.principal_of`).
When the database cannot be reached for the look-up or a lease, the request goes on unlimited and
its route answers 503 DATABASE_UNAVAILABLE as it would have.
"""

from __future__ import annotations

import functools

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpslink.api import problems
from fpslink.api.deps import IDENTIFIED, QUOTA, SPENT, bearer_key
from fpslink.context import Gateway
from fpslink.db import database_unavailable
from fpslink.errors import TooManyRequests, Unauthorized
from fpslink.ratelimit.policy import POLICY, Decision

EXEMPT_PATHS = frozenset({"/healthz", "/metrics"})


class RateLimits:
    """Spends a token of the caller's bank per request, or answers 429."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        api_key = bearer_key(scope)
        gw: Gateway | None = getattr(scope["app"].state, "gateway", None)
        if api_key is None or gw is None:
            await self.app(scope, receive, send)
            return
        try:
            caller = await gw.participants.identify(api_key)
        except Unauthorized as exc:
            scope[IDENTIFIED] = (api_key, exc)
            await self.app(scope, receive, send)
            return
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # the route looks the key up again and answers 503 where it always has (its metrics too)
            await self.app(scope, receive, send)
            return
        scope[IDENTIFIED] = (api_key, caller.principal)
        bank = caller.principal.participant_id
        if bank is None or caller.quota is None:  # the operator
            await self.app(scope, receive, send)
            return
        try:
            decision = await gw.rate_limiter.admit(bank, caller.quota)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # the limiter protects the database; it does not refuse for it: the route finds out
            await self.app(scope, receive, send)
            return
        scope[QUOTA] = caller.quota
        if not decision.admitted:
            head, body = refusal(decision, bank, scope["path"])
            await send({"type": "http.response.start", "status": TooManyRequests.status, "headers": head})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields = scope.get(SPENT, decision).headers()  # after what the route spent, if it did
                message = {**message, "headers": [*message.get("headers", ()), *fields]}
            await send(message)

        await self.app(scope, receive, send_with_fields)


Head = tuple[tuple[bytes, bytes], ...]

REFUSALS_KEPT = 256
KEPT_PATH_CHARS = 200
"""A worker keeps this many rendered 429s, for paths up to this long (at most about 100 KB): a bank
over its quota is refused with the same few answers again and again (its bank, quota, wait and
path), and sending kept bytes costs a tenth of rendering the problem each time."""


def refusal(decision: Decision, bank: str, path: str) -> tuple[Head, bytes]:
    """The 429's header fields (the RateLimit fields and Retry-After included) and body."""
    if len(path) <= KEPT_PATH_CHARS:
        return _kept_refusal(decision, bank, path)
    return _render_refusal(decision, bank, path)


def _render_refusal(decision: Decision, bank: str, path: str) -> tuple[Head, bytes]:
    quota = decision.quota
    error = TooManyRequests(
        f"{bank} may send {quota.quota} requests per {quota.window_s} s and has sent them; retry "
        f"after {decision.reset_s} s (the operator can raise a bank's quota)",
        policy=POLICY,
        participant_id=bank,
    )
    response = problems.error_response(error, path)
    return (*response.raw_headers, *decision.headers()), bytes(response.body)


_kept_refusal = functools.lru_cache(maxsize=REFUSALS_KEPT)(_render_refusal)


def install(app: FastAPI) -> None:
    """In front of the router and the payment fast path; an error raised here (the database out of
    reach during a look-up or a lease) reaches the app's handlers like a route's."""
    app.add_middleware(RateLimits)

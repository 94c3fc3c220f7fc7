"""The API edge of certification runs: where the sandbox sees, and perturbs on purpose, the requests
of a bank that is certifying its client (docs/certification.md).

An ASGI layer in front of the payment fast path and the router (inside the exception handlers and
behind the rate limits, which identified the caller). When no bank is certifying, a request costs
one check, that the runs in progress are none, and goes on untouched. While some bank is, its
requests that carry one of its run's tags are the run's:

    POST /v1/payments       from the run's debtor account, for one of the run's amounts, in its
                            currency: decided by `domain.decide` (pass, drop the reply, answer 409
                            or 429, expire the quote first, reject, hold as PENDING) and recorded
    GET /v1/payments/{id}   a payment of the run: recorded as a poll, shown PENDING while held
    POST /v1/quotes         for one of the run's amounts: recorded

Every other request, another bank's included, passes as if the edge were not there. A request whose
body is not a valid payment passes too, with its body replayed, so that its route answers it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fpslink import logs
from fpslink.api import routes
from fpslink.api.deps import IDENTIFIED
from fpslink.api.fast_payments import PATH
from fpslink.api.problems import error_response
from fpslink.api.schemas import PaymentCreate, QuoteCreate
from fpslink.certification.domain import REJECTIONS, Action, Answer, Scenario, pending_view
from fpslink.certification.service import ActiveRun, ActiveRuns
from fpslink.context import Gateway, Principal
from fpslink.errors import FpslinkError, TooManyRequests
from fpslink.fx.domain import AmountType
from fpslink.idempotency import service as idempotency
from fpslink.money import Currency, InvalidAmount, to_minor
from fpslink.payments.acceptance import Rejection
from ibps_wire.asgi import is_json, read_body, replay

log = logging.getLogger("fpslink.certification")

QUOTES = "/v1/quotes"
PAYMENT_PREFIX = "/v1/payments/"
POLICY = "certification"
"""The RateLimit policy of RATE_LIMITED's 429: not the bank's own quota, which it leaves alone."""


@dataclass
class Captured:
    """A response held back from the client until the run has seen it."""

    messages: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"]) if self.messages else 500

    def header(self, name: bytes) -> str | None:
        for key, value in self.messages[0].get("headers", ()) if self.messages else ():
            if key.lower() == name:
                return str(value.decode("latin-1"))
        return None

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    def json(self) -> dict[str, Any]:
        try:
            found = json.loads(self.body)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    async def forward(self, send: Send) -> None:
        for message in self.messages:
            await send(message)

    async def forward_as(self, send: Send, status: int, body: dict[str, Any]) -> None:
        """The response with another status and JSON body (its other headers kept)."""
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        start = self.messages[0]
        headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def drop(self, send: Send) -> None:
        """Send the head and no body: the server closes the connection, and the client has no answer."""
        await send(self.messages[0])


def answer_of(captured: Captured, *, shown: str | None = None) -> Answer:
    """What a payment or quote response said, read from it."""
    body = captured.json()
    status = body.get("status") if isinstance(body.get("status"), str) else None
    problem = body.get("code") if captured.status >= 400 and isinstance(body.get("code"), str) else None
    return Answer(
        status_code=captured.status,
        problem_code=problem,
        payment_id=body.get("payment_id") if captured.status < 400 else None,
        payment_status=shown or status,
        actual_status=status,
        reason_code=body.get("reason_code"),
        replayed=captured.header(b"idempotent-replayed") == "true",
        quote_id=body.get("quote_id"),
    )


class CertificationEdge:
    """Looks at a certifying bank's tagged requests; passes every other one untouched."""

    def __init__(self, app: ASGIApp, active: ActiveRuns, route: APIRoute) -> None:
        self.app = app
        self.active = active
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.active.by_bank:  # no bank is certifying: the one check every request pays
            await self.app(scope, receive, send)
            return
        run, principal, gw = self._run_of(scope)
        if run is None or principal is None or gw is None:
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == PATH:
            await self._payment(scope, receive, send, run, principal, gw)
        elif method == "GET" and path.startswith(PAYMENT_PREFIX):
            await self._poll(scope, receive, send, run, gw)
        elif method == "POST" and path == QUOTES:
            await self._quote(scope, receive, send, run, gw)
        else:
            await self.app(scope, receive, send)

    def _run_of(self, scope: Scope) -> tuple[ActiveRun | None, Principal | None, Gateway | None]:
        """The caller's run in progress, if its bank is certifying now."""
        if scope["type"] != "http" or scope.get("root_path"):
            return None, None, None
        identified = scope.get(IDENTIFIED)
        if identified is None or not isinstance(identified[1], Principal):
            return None, None, None
        principal: Principal = identified[1]
        run = self.active.by_bank.get(principal.participant_id or "")
        if run is None:  # another bank is certifying, not this one
            return None, None, None
        gw: Gateway | None = getattr(scope["app"].state, "gateway", None)
        if gw is None or not run.live(gw.now()):
            return None, None, None
        return run, principal, gw

    async def _payment(
        self, scope: Scope, receive: Receive, send: Send, run: ActiveRun, principal: Principal, gw: Gateway
    ) -> None:
        received: list[Message] = []
        headers = dict(scope["headers"])
        raw = (
            await read_body(receive, received)
            if is_json(headers.get(b"content-type", b"").decode("latin-1"))
            else None
        )
        body = _parsed(PaymentCreate, raw)
        scenario = None
        if (
            body is not None
            and body.debtor_account_id == run.debtor_account_id
            and body.currency is run.currency
        ):
            scenario = _tag(run, body.amount, body.currency)
        key: str | None = None
        if scenario is not None:
            try:
                key = idempotency.parse_key(
                    headers.get(b"idempotency-key", b"").decode("latin-1") or None, required=True
                )
            except FpslinkError:
                key = None
        if body is None or scenario is None or key is None:
            await self.app(scope, replay(received, receive), send)
            return
        quote_id = body.quote_id.lower() if body.quote_id else None
        fingerprint = idempotency.fingerprint("POST", PATH, body.model_dump(mode="json"))
        request_id = logs.request_id_var.get()
        seq, decision = await gw.certification.begin_payment(
            run, scenario, key=key, fingerprint=fingerprint, quote_id=quote_id, request_id=request_id
        )
        scope["route"] = self.route  # counted under the route's path, as the fast path does
        captured = Captured()
        try:
            if decision.action is Action.ANSWER_IN_PROGRESS:
                await _in_progress(decision.retry_after_s or 1)(scope, receive, captured.send)
            elif decision.action is Action.ANSWER_RATE_LIMITED:
                await _rate_limited(principal, decision.retry_after_s or 1)(scope, receive, captured.send)
            elif decision.action is Action.REJECT:
                code, words = REJECTIONS[scenario]
                rejection = Rejection(
                    code, f"{words} (certification run {run.certification_id}, scenario {scenario.value})"
                )
                response = await routes.submit_payment(gw.payments, principal, key, body, reject=rejection)
                await response(scope, receive, captured.send)
            else:
                await self.app(scope, replay(received, receive), captured.send)
        except FpslinkError as exc:
            await gw.certification.answered(
                run, scenario, seq, Answer(status_code=exc.status, problem_code=exc.code)
            )
            raise
        held = decision.action is Action.HOLD_PENDING and 200 <= captured.status < 300
        answer = answer_of(captured, shown="PENDING" if held else None)
        await gw.certification.answered(run, scenario, seq, answer)
        if decision.action is Action.DROP_REPLY:
            await captured.drop(send)
        elif held:
            await captured.forward_as(send, 202, pending_view(captured.json()))
        else:
            await captured.forward(send)

    async def _poll(self, scope: Scope, receive: Receive, send: Send, run: ActiveRun, gw: Gateway) -> None:
        captured = Captured()
        await self.app(scope, receive, captured.send)
        body = captured.json()
        scenario = None
        if captured.status == 200 and body.get("debtor_account_id") == run.debtor_account_id:
            amount, currency = body.get("quoted_source_amount"), body.get("source_currency")
            if isinstance(amount, str) and currency == run.currency.value:
                scenario = _tag(run, amount, run.currency)
        if scenario is None:
            await captured.forward(send)
            return
        held = await gw.certification.polled(
            run, scenario, answer_of(captured), request_id=logs.request_id_var.get()
        )
        if held:
            await captured.forward_as(send, 200, pending_view(body))
        else:
            await captured.forward(send)

    async def _quote(self, scope: Scope, receive: Receive, send: Send, run: ActiveRun, gw: Gateway) -> None:
        received: list[Message] = []
        raw = await read_body(receive, received)
        body = _parsed(QuoteCreate, raw)
        scenario = None
        if body is not None and body.amount_type is AmountType.SEND and body.source_currency is run.currency:
            scenario = _tag(run, body.amount, run.currency)
        if scenario is None:
            await self.app(scope, replay(received, receive), send)
            return
        captured = Captured()
        await self.app(scope, replay(received, receive), captured.send)
        await gw.certification.quoted(
            run, scenario, answer_of(captured), request_id=logs.request_id_var.get()
        )
        await captured.forward(send)


def _parsed(model: type[PaymentCreate] | type[QuoteCreate], raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return model.model_validate_json(raw)
    except ValueError:  # pydantic's ValidationError, invalid JSON included
        return None


def _tag(run: ActiveRun, amount: str, currency: Currency) -> Scenario | None:
    """The run's scenario whose amount this is, if any."""
    try:
        return run.tags.get(to_minor(Decimal(amount), currency))
    except (InvalidOperation, InvalidAmount):
        return None


def _in_progress(retry_after_s: int) -> JSONResponse:
    return error_response(idempotency.in_progress(), PATH, {"Retry-After": str(retry_after_s)})


def _rate_limited(principal: Principal, retry_after_s: int) -> JSONResponse:
    error = TooManyRequests(
        f"certification run: {principal.participant_id} is told to wait {retry_after_s} s before it "
        "sends this payment again (RATE_LIMITED scenario)",
        policy=POLICY,
        participant_id=principal.participant_id,
    )
    return error_response(
        error,
        PATH,
        {
            "Retry-After": str(retry_after_s),
            "RateLimit-Policy": f'"{POLICY}";q=1;w={retry_after_s}',
            "RateLimit": f'"{POLICY}";r=0;t={retry_after_s}',
        },
    )


def install(app: FastAPI, active: ActiveRuns) -> None:
    """In front of the payment fast path (install it after `fast_payments.install`)."""
    route = next(
        r for r in routes.router.routes if isinstance(r, APIRoute) and r.endpoint is routes.create_payment
    )
    app.router.middleware_stack = CertificationEdge(app.router.middleware_stack, active, route)

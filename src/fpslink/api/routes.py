"""The v1 routes: parse, call one service, serialise. No business rule lives here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from fpslink import metrics, paging
from fpslink.api import schemas as s
from fpslink.api.deps import (
    DirectoryDep,
    FxDep,
    HealthDep,
    IdempotencyDep,
    IdempotencyKeyHeader,
    LimitsDep,
    ParticipantsDep,
    PaymentsDep,
    PrincipalDep,
)
from fpslink.context import Principal
from fpslink.directory.service import ResolvedProxy
from fpslink.idempotency import service as idempotency
from fpslink.idempotency.service import IdempotencyService
from fpslink.iso20022.details import Details
from fpslink.money import Currency
from fpslink.participants import service as participants_service
from fpslink.payments.acceptance import Rejection
from fpslink.payments.domain import Payment, TimelineEntry, decimal_text
from fpslink.payments.service import PaymentCommand, PaymentsService
from fpslink.settlement.states import status_of
from fpslink.vocabulary import Direction, Status

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.Problem, "content": {"application/problem+json": {}}}
    for code in (401, 403, 404, 409, 422, 429, 503)
}
PROBLEMS[429] |= {
    "description": "The bank has sent its quota of requests (`RATE_LIMITED`); the operator's key is exempt",
    "headers": {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
        "RateLimit-Policy": {
            "description": 'The bank\'s quota: `"bank";q=<requests>;w=<seconds>`',
            "schema": {"type": "string"},
        },
        "RateLimit": {
            "description": 'Requests left and seconds until they refill: `"bank";r=0;t=<seconds>`',
            "schema": {"type": "string"},
        },
    },
}
router = APIRouter(prefix="/v1", responses=PROBLEMS)
health_router = APIRouter()


def replayable(
    stored: idempotency.StoredResponse,
) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
    return JSONResponse(stored.body, status_code=stored.status, headers=headers)


def shown_once(field: str, notice: str) -> idempotency.Redact:
    """The stored form of a response that shows a secret in `field`: the secret blanked, and a
    `notice` that says so (what a replay answers)."""

    def redact(body: Any) -> Any:
        return {**body, field: None, "notice": notice}

    return redact


async def _idempotent(
    idempotent: IdempotencyService,
    principal: Principal,
    request: Request,
    raw_key: str | None,
    body: s.Request,
    action: Any,
    redact: idempotency.Redact | None = None,
) -> JSONResponse:
    key = idempotency.parse_key(raw_key, required=False)
    stored = await idempotent.run_idempotent(
        principal,
        key=key,
        endpoint=f"POST {request.url.path}",
        request_fingerprint=idempotency.fingerprint("POST", request.url.path, body.model_dump(mode="json")),
        action=action,
        redact=redact,
    )
    return replayable(stored)


# participants and accounts -------------------------------------------------------------------


@router.post(
    "/participants",
    status_code=201,
    response_model=s.ParticipantOut,
    tags=["operator"],
    summary="Create a bank (operator); its API key is returned once (a replay answers without it)",
)
async def create_participant(
    body: s.ParticipantCreate,
    request: Request,
    participants: ParticipantsDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    participants_service.require_operator(principal)

    async def action() -> tuple[int, Any]:
        created = await participants.create_participant(
            participant_id=body.participant_id, name=body.name, system=body.system, bic=body.bic
        )
        out = s.ParticipantOut(
            participant_id=created.participant.participant_id,
            name=created.participant.name,
            system=created.participant.system,
            bic=created.participant.bic,
            api_key=created.api_key,
        )
        return 201, s.dump(out)

    redact = shown_once("api_key", s.API_KEY_SHOWN_ONCE)
    return await _idempotent(idempotent, principal, request, idempotency_key, body, action, redact)


def _account_out(view: participants_service.AccountView) -> s.AccountOut:
    r = view.record
    return s.AccountOut(
        account_id=r.account_id,
        participant_id=r.participant_id,
        system=r.system,
        currency=r.currency,
        holder_name=r.holder_name,
        balance=view.balance,
        available_balance=view.available_balance,
        held=view.held,
    )


@router.post(
    "/accounts",
    status_code=201,
    response_model=s.AccountOut,
    tags=["operator"],
    summary="Open an account in the bank's own system (IBPS accounts open in mock_ibps)",
)
async def open_account(
    body: s.AccountCreate,
    request: Request,
    participants: ParticipantsDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    participants_service.require_operator(principal)

    async def action() -> tuple[int, Any]:
        view = await participants.open_account(
            participant_id=body.participant_id,
            holder_name=body.holder_name,
            currency=body.currency,
            opening_balance=body.opening,
        )
        return 201, s.dump(_account_out(view))

    return await _idempotent(idempotent, principal, request, idempotency_key, body, action)


@router.get("/accounts/{account_id}", response_model=s.AccountOut, tags=["accounts"])
async def get_account(
    account_id: str, participants: ParticipantsDep, principal: PrincipalDep
) -> s.AccountOut:
    return _account_out(await participants.account_view(principal, account_id))


@router.get("/accounts/{account_id}/limits", response_model=s.LimitsOut, tags=["accounts"])
async def get_limits(account_id: str, limits: LimitsDep, principal: PrincipalDep) -> s.LimitsOut:
    found = await limits.account_limits(principal, account_id)
    cur = found.currency

    def text_or_none(value: Any) -> str | None:
        return None if value is None else f"{value.quantize(cur.quantum):f}"

    return s.LimitsOut(
        account_id=found.account_id,
        direction=found.direction,
        currency=cur,
        per_transaction=f"{found.per_transaction.quantize(cur.quantum):f}",
        business_date=found.business_date,
        usage=[
            s.LimitLine(
                period=line.period,
                period_key=line.period_key,
                limit=text_or_none(line.limit),
                used=f"{line.used.quantize(cur.quantum):f}",
                remaining=text_or_none(line.remaining),
            )
            for line in found.lines
        ],
    )


# proxies --------------------------------------------------------------------------------------


def _proxy_out(found: ResolvedProxy, *, with_account: bool) -> s.ProxyOut:
    return s.ProxyOut(
        proxy_value=found.proxy_value,
        participant_id=found.participant_id,
        system=found.system,
        masked_name=found.masked_name,
        currency=found.currency,
        account_id=found.account_id if with_account else None,
    )


@router.post(
    "/proxies",
    status_code=201,
    response_model=s.ProxyOut,
    tags=["proxies"],
    summary="Register a mobile number for an account (+852 for FPS, +86 for IBPS accounts)",
)
async def register_proxy(
    body: s.ProxyCreate,
    request: Request,
    directory: DirectoryDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    async def action() -> tuple[int, Any]:
        found = await directory.register(
            principal,
            proxy_type=body.proxy_type,
            proxy_value=body.proxy_value,
            account_id=body.account_id,
        )
        return 201, s.dump(_proxy_out(found, with_account=True))

    return await _idempotent(idempotent, principal, request, idempotency_key, body, action)


@router.get(
    "/proxies/{proxy_type}/{proxy_value}",
    response_model=s.ProxyOut,
    response_model_exclude_none=True,
    tags=["proxies"],
    summary="Resolve a proxy to its bank and masked name (E.164; + raw or %2B)",
)
async def lookup_proxy(
    proxy_type: str, proxy_value: str, directory: DirectoryDep, principal: PrincipalDep
) -> s.ProxyOut:
    found = await directory.lookup(proxy_type=proxy_type, proxy_value=proxy_value)
    return _proxy_out(found, with_account=False)


# FX ------------------------------------------------------------------------------------------


@router.get("/fx/rates", response_model=s.RatesOut, tags=["fx"], summary="Indicative rates")
async def rates(fx: FxDep, principal: PrincipalDep) -> s.RatesOut:
    as_of, sheet = fx.indicative()
    pairs = [(Currency.HKD, Currency.CNY), (Currency.CNY, Currency.HKD)]
    return s.RatesOut(
        as_of=as_of,
        rates=[
            s.RateOut(
                source_currency=a,
                target_currency=b,
                mid_rate=str(sheet.mid(a, b)),
                rate=str(sheet.applied(a, b)),
                spread_bps=str(sheet.spread_for(a, b)),
            )
            for a, b in pairs
        ],
    )


@router.post(
    "/quotes",
    status_code=201,
    response_model=s.QuoteOut,
    tags=["fx"],
    summary="A firm quote for this bank, valid until expires_at and for one payment",
)
async def create_quote(
    body: s.QuoteCreate,
    request: Request,
    fx: FxDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    participant_id = participants_service.require_participant(principal)

    async def action() -> tuple[int, Any]:
        quote = await fx.create_quote(
            participant_id=participant_id,
            source=body.source_currency,
            target=body.target_currency,
            amount=body.value,
            amount_type=body.amount_type,
        )
        c = quote.conversion
        out = s.QuoteOut(
            quote_id=quote.quote_id,
            source_currency=c.source.currency,
            target_currency=c.target.currency,
            amount_type=c.amount_type,
            mid_rate=str(c.mid_rate),
            rate=str(c.rate),
            spread_bps=str(c.spread_bps),
            source_amount=f"{c.source.amount:f}",
            target_amount=f"{c.target.amount:f}",
            created_at=quote.created_at,
            expires_at=quote.expires_at,
        )
        return 201, s.dump(out)

    return await _idempotent(idempotent, principal, request, idempotency_key, body, action)


# payments -------------------------------------------------------------------------------------


def payment_out(
    payment: Payment, events: Sequence[TimelineEntry] = (), details: Details | None = None
) -> s.PaymentOut:
    timeline = [s.PaymentEvent(at=e.at, event=e.event, detail=e.detail) for e in events]
    source, target = payment.source_text(), payment.target_text()
    return s.PaymentOut(
        payment_id=payment.payment_id,
        end_to_end_id=payment.end_to_end_id,
        status=status_of(payment.state),
        direction=payment.direction,
        debtor_account_id=payment.debtor_account_id,
        creditor_account_id=payment.creditor_account_id,
        creditor_masked_name=payment.creditor_masked_name,
        source_amount=source if payment.moved else None,
        source_currency=payment.source_currency,
        target_amount=target if payment.moved else None,
        target_currency=payment.target_currency,
        quoted_source_amount=source,
        quoted_target_amount=target,
        rate=decimal_text(payment.rate),
        mid_rate=decimal_text(payment.mid_rate),
        spread_bps=decimal_text(payment.spread_bps),
        quote_id=payment.quote_id,
        purpose=payment.purpose,
        remittance_info=payment.remittance_info,
        reason_code=payment.reason_code,
        reason=payment.reason,
        created_at=payment.created_at,
        settled_at=payment.settled_at,
        events=timeline,
        last_event=timeline[-1] if timeline else None,
        iso20022=None if details is None else s.Iso20022Out.model_validate(details.public()),
    )


@router.post(
    "/payments",
    status_code=201,
    response_model=s.PaymentOut,
    tags=["payments"],
    summary="Send a cross-border payment (Idempotency-Key required)",
    responses={
        202: {"model": s.PaymentOut, "description": "Accepted; the outcome is not final yet"},
    },
)
async def create_payment(
    body: s.PaymentCreate,
    payments: PaymentsDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    participants_service.require_participant(principal)
    key = idempotency.parse_key(idempotency_key, required=True)
    assert key is not None
    return await submit_payment(payments, principal, key, body)


async def submit_payment(
    payments: PaymentsService,
    principal: Principal,
    key: str,
    body: s.PaymentCreate,
    reject: Rejection | None = None,
) -> Response:
    """Submit a checked request and answer it: shared by the route, `fast_payments` and a
    certification run's rejections (`reject`), so all count the same metrics and send the same bytes
    and headers."""
    started = time.perf_counter()
    result = await payments.submit(
        principal,
        key=key,
        reject=reject,
        command=PaymentCommand(
            debtor_account_id=body.debtor_account_id,
            creditor_proxy=body.creditor.proxy_value,
            creditor_account_id=body.creditor.account_id,
            amount=body.value,
            currency=body.currency,
            quote_id=body.quote_id.lower() if body.quote_id else None,
            purpose=body.purpose,
            remittance_info=body.remittance_info,
            end_to_end_id=body.end_to_end_id,
        ),
    )
    out = payment_out(result.payment, result.events)
    if not result.replayed:
        metrics.payment_answered(
            status=out.status.value,
            direction=out.direction.value,
            reason_code=result.payment.reason_code,
            elapsed_s=time.perf_counter() - started,
        )
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    headers["Location"] = f"/v1/payments/{result.payment.payment_id}"
    # serialised by pydantic in one pass (same JSON as JSONResponse(s.dump(out)), a third of the cost)
    return Response(
        out.model_dump_json(), status_code=result.http_status, headers=headers, media_type="application/json"
    )


@router.get("/payments/{payment_id}", response_model=s.PaymentOut, tags=["payments"])
async def get_payment(payment_id: str, payments: PaymentsDep, principal: PrincipalDep) -> s.PaymentOut:
    result = await payments.get_payment(principal, payment_id)
    return payment_out(result.payment, result.events, result.details)


@router.get(
    "/payments",
    response_model=s.PaymentPage,
    tags=["payments"],
    summary="Your payments (as debtor or creditor bank), newest first; the operator sees all",
)
async def list_payments(
    payments: PaymentsDep,
    principal: PrincipalDep,
    status: Status | None = None,
    direction: Direction | None = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> s.PaymentPage:
    rows = await payments.list_payments(
        principal,
        status=status,
        direction=direction,
        created_from=paging.time_bound(created_from, "from"),
        created_to=paging.time_bound(created_to, "to"),
        after=paging.decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return s.PaymentPage(
        items=[payment_out(r) for r in rows],
        next_cursor=paging.encode_cursor(last.created_at, last.payment_id) if last else None,
    )


# health ---------------------------------------------------------------------------------------


@health_router.get("/healthz", response_model=s.Health, tags=["health"])
async def healthz(health: HealthDep, response: Response) -> s.Health:
    found = await health.check()
    if not found.ok:
        response.status_code = 503
    return s.Health(status="ok" if found.ok else "degraded", database=found.database, ibps=found.ibps)

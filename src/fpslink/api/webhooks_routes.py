"""Webhook routes: register, list, remove, and the delivery log (participants only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from fpslink.api import schemas as s
from fpslink.api.deps import IdempotencyDep, IdempotencyKeyHeader, PrincipalDep, WebhooksDep
from fpslink.api.routes import PROBLEMS, _idempotent, shown_once
from fpslink.webhooks import schemas as ws

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=PROBLEMS)


def _delivery(row: dict[str, Any]) -> ws.DeliveryOut:
    return ws.DeliveryOut(
        delivery_id=row["delivery_id"],
        webhook_id=row["webhook_id"],
        url=row["url"],
        event=row["event"],
        payment_id=row["payment_id"],
        certification_id=row["certification_id"],
        probe=row["probe"],
        status=row["status"],
        attempts=row["attempts"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"] if row["status"] == "PENDING" else None,
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
    )


@router.post(
    "",
    status_code=201,
    response_model=ws.WebhookOut,
    summary="Register a URL for payment outcome events; the signing secret is returned once (a replay "
    "answers without it)",
)
async def create_webhook(
    body: ws.WebhookCreate,
    request: Request,
    webhooks: WebhooksDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    async def action() -> tuple[int, Any]:
        created = await webhooks.register(principal, url=body.url)
        out = ws.WebhookOut(
            webhook_id=created.webhook_id,
            url=created.url,
            created_at=created.created_at,
            secret=created.secret,
        )
        return 201, s.dump(out)

    redact = shown_once("secret", ws.SECRET_SHOWN_ONCE)
    return await _idempotent(idempotent, principal, request, idempotency_key, body, action, redact)


@router.get("", response_model=ws.WebhookList, summary="This bank's webhooks (secrets are not shown again)")
async def list_webhooks(webhooks: WebhooksDep, principal: PrincipalDep) -> ws.WebhookList:
    rows = await webhooks.list_webhooks(principal)
    return ws.WebhookList(
        items=[
            ws.WebhookOut(webhook_id=r["webhook_id"], url=r["url"], created_at=r["created_at"]) for r in rows
        ]
    )


@router.get(
    "/deliveries",
    response_model=ws.DeliveryPage,
    summary="This bank's delivery log, newest first: attempts, last status code, next attempt",
)
async def list_deliveries(
    webhooks: WebhooksDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ws.DeliveryPage:
    rows, next_cursor = await webhooks.deliveries(principal, cursor=cursor, limit=limit)
    return ws.DeliveryPage(items=[_delivery(r) for r in rows], next_cursor=next_cursor)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a webhook; its undelivered events are cancelled",
)
async def delete_webhook(webhook_id: str, webhooks: WebhooksDep, principal: PrincipalDep) -> Response:
    await webhooks.remove(principal, webhook_id)
    return Response(status_code=204)

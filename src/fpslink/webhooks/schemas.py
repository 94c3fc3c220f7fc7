"""API models of webhooks and the delivery log, with the examples shown in /docs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fpslink.api.schemas import Request, SafeText


class WebhookCreate(Request):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=500), SafeText] = (
        Field(
            description="http(s) URL to a host:port in FPSLINK_WEBHOOK_ALLOW or a public host in "
            "FPSLINK_WEBHOOK_ALLOW_HOSTS"
        )
    )
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"url": "http://127.0.0.1:9000/fpslink-events"}]}
    )


SECRET_SHOWN_ONCE = (
    "secret was shown once, in the answer that registered this webhook, and this replay does not "
    "repeat it. If it was lost, delete the webhook and register the URL again (with a new "
    "Idempotency-Key) for a new secret."
)
"""What a replay of `POST /v1/webhooks` says in place of the secret."""


class WebhookOut(BaseModel):
    webhook_id: str
    url: str
    created_at: datetime
    secret: str | None = Field(
        default=None, description="Signs every delivery (HMAC-SHA256); shown once, when registered"
    )
    notice: str | None = Field(
        default=None,
        description="Set on a replay (Idempotent-Replayed: true): secret is not repeated, and why",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "webhook_id": "6f1d2c0e-8a4b-4f57-9c3e-2b1a0d9e8f7c",
                    "url": "http://127.0.0.1:9000/fpslink-events",
                    "created_at": "2026-06-22T04:00:00Z",
                    "secret": "whsec_4f7a0c2e9b1d8e3f6a5c7b9d0e2f4a6c8b1d3e5f7a9c0b2d",
                }
            ]
        }
    )


class WebhookList(BaseModel):
    items: list[WebhookOut]
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "webhook_id": "6f1d2c0e-8a4b-4f57-9c3e-2b1a0d9e8f7c",
                            "url": "http://127.0.0.1:9000/fpslink-events",
                            "created_at": "2026-06-22T04:00:00Z",
                        }
                    ]
                }
            ]
        }
    )


class DeliveryOut(BaseModel):
    delivery_id: str = Field(
        description="The event id (`Fpslink-Event-Id`): `<payment_id>:<webhook_id>`; a certification "
        "run's event `<certification_id>:<webhook_id>:start|end`; a probe's, its real delivery's id with "
        "`:dup`, `:sig` or `:old` (a duplicate is sent under the real event id)"
    )
    webhook_id: str
    url: str
    event: Literal["payment.settled", "payment.rejected", "certification.started", "certification.completed"]
    payment_id: str | None = Field(description="The payment the event is about; null for a run's event")
    certification_id: str | None = Field(
        default=None, description="The certification run the event is about (certification.*)"
    )
    probe: Literal["DUPLICATE", "BAD_SIGNATURE", "STALE_TIMESTAMP"] | None = Field(
        default=None,
        description="Set on a certification run's probe of your receiver, sent once (docs/certification.md)",
    )
    status: Literal["PENDING", "DELIVERED", "FAILED", "CANCELLED"]
    attempts: int
    last_status_code: int | None
    last_error: str | None = Field(
        description="`HTTP <status>` for an answer outside 2xx, `unreachable` for no answer at all"
    )
    next_attempt_at: datetime | None = Field(description="When the next attempt is due; null once done")
    created_at: datetime
    delivered_at: datetime | None


_DELIVERY_EXAMPLE: dict[str, Any] = {
    "delivery_id": "0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11:6f1d2c0e-8a4b-4f57-9c3e-2b1a0d9e8f7c",
    "webhook_id": "6f1d2c0e-8a4b-4f57-9c3e-2b1a0d9e8f7c",
    "url": "http://127.0.0.1:9000/fpslink-events",
    "event": "payment.settled",
    "payment_id": "0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11",
    "certification_id": None,
    "probe": None,
    "status": "DELIVERED",
    "attempts": 2,
    "last_status_code": 200,
    "last_error": None,
    "next_attempt_at": None,
    "created_at": "2026-06-22T04:00:00Z",
    "delivered_at": "2026-06-22T04:00:03Z",
}


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end")
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_DELIVERY_EXAMPLE], "next_cursor": None}]}
    )

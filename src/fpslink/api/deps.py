"""FastAPI dependencies: the services the composition root built (`fpslink.context.Gateway`), the
settings, and the caller. A route names the services it uses.

Every getter is async on purpose: FastAPI runs a sync dependency in its thread pool, a hop per
request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fpslink.config import Settings
from fpslink.context import Gateway, Principal
from fpslink.directory.service import DirectoryService
from fpslink.fx.service import FxService
from fpslink.health import HealthService
from fpslink.ibps_client import IbpsClient
from fpslink.idempotency.service import IdempotencyService
from fpslink.limits.service import LimitsService
from fpslink.participants.service import ParticipantsService
from fpslink.payments.service import PaymentsService
from fpslink.reconciliation.service import ReconciliationService
from fpslink.webhooks.service import WebhooksService

bearer = HTTPBearer(auto_error=False, description="A bank's API key, or the operator key")


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def get_settings(request: Request) -> Settings:
    return gateway_of(request).settings


async def get_ibps(request: Request) -> IbpsClient:
    return gateway_of(request).ibps


async def get_participants(request: Request) -> ParticipantsService:
    return gateway_of(request).participants


async def get_fx(request: Request) -> FxService:
    return gateway_of(request).fx


async def get_directory(request: Request) -> DirectoryService:
    return gateway_of(request).directory


async def get_limits(request: Request) -> LimitsService:
    return gateway_of(request).limits


async def get_idempotency(request: Request) -> IdempotencyService:
    return gateway_of(request).idempotency


async def get_webhooks(request: Request) -> WebhooksService:
    return gateway_of(request).webhooks


async def get_reconciliation(request: Request) -> ReconciliationService:
    return gateway_of(request).reconciliation


async def get_health(request: Request) -> HealthService:
    return gateway_of(request).health


async def get_payments(request: Request) -> PaymentsService:
    return gateway_of(request).payments


SettingsDep = Annotated[Settings, Depends(get_settings)]
IbpsDep = Annotated[IbpsClient, Depends(get_ibps)]
ParticipantsDep = Annotated[ParticipantsService, Depends(get_participants)]
FxDep = Annotated[FxService, Depends(get_fx)]
DirectoryDep = Annotated[DirectoryService, Depends(get_directory)]
LimitsDep = Annotated[LimitsService, Depends(get_limits)]
IdempotencyDep = Annotated[IdempotencyService, Depends(get_idempotency)]
WebhooksDep = Annotated[WebhooksService, Depends(get_webhooks)]
ReconciliationDep = Annotated[ReconciliationService, Depends(get_reconciliation)]
HealthDep = Annotated[HealthService, Depends(get_health)]
PaymentsDep = Annotated[PaymentsService, Depends(get_payments)]


async def get_principal(
    participants: ParticipantsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return await participants.authenticate(credentials.credentials if credentials else None)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1-255 visible ASCII characters; reuse it when you retry the same request",
    ),
]

"""FastAPI dependencies: the services the composition root built, the settings, and the caller.

Every getter is async on purpose: FastAPI runs a sync dependency in its thread pool, a hop per
request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fpslink.config import Settings
from fpslink.context import Gateway, Principal
from fpslink.participants.service import ParticipantsService

bearer = HTTPBearer(auto_error=False, description="A bank's API key, or the operator key")


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def get_gateway(request: Request) -> Gateway:
    """The whole runtime: for the payment routes only, whose path still takes it."""
    return gateway_of(request)


async def get_settings(request: Request) -> Settings:
    return gateway_of(request).settings


async def get_participants(request: Request) -> ParticipantsService:
    return gateway_of(request).participants


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ParticipantsDep = Annotated[ParticipantsService, Depends(get_participants)]


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

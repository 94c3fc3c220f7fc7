"""FastAPI dependencies: the runtime and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fpslink.context import Gateway, Principal
from fpslink.participants import service as participants_service

bearer = HTTPBearer(auto_error=False, description="A bank's API key, or the operator key")


async def get_gateway(request: Request) -> Gateway:
    """Async on purpose: FastAPI runs a sync dependency in its thread pool, a hop per request."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def get_principal(
    gw: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return await participants_service.authenticate(gw, credentials.credentials if credentials else None)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1-255 visible ASCII characters; reuse it when you retry the same request",
    ),
]

"""FastAPI dependencies: the services the composition root built (`fpslink.context.Gateway`), the
settings, and the caller. A route names the services it uses.

Every getter is async on purpose: FastAPI runs a sync dependency in its thread pool, a hop per
request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from fpslink import circuit
from fpslink.certification.service import CertificationService
from fpslink.clock.service import ClockService
from fpslink.config import Settings
from fpslink.context import Gateway, Principal
from fpslink.directory.service import DirectoryService
from fpslink.errors import FpslinkError
from fpslink.fx.service import FxService
from fpslink.health import HealthService
from fpslink.ibps_client import IbpsClient
from fpslink.idempotency.service import IdempotencyService
from fpslink.iso20022.exchange import Iso20022Service
from fpslink.limits.service import LimitsService
from fpslink.participants.service import ParticipantsService
from fpslink.payments.service import PaymentsService
from fpslink.reconciliation.service import ReconciliationService
from fpslink.webhooks.service import WebhooksService

T = TypeVar("T")

bearer = HTTPBearer(auto_error=False, description="A bank's API key, or the operator key")


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _part(get: Callable[[Gateway], T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency that hands a route one part of the gateway (async: see the module's note)."""

    async def dependency(request: Request) -> T:
        return get(gateway_of(request))

    return dependency


SettingsDep = Annotated[Settings, Depends(_part(lambda gw: gw.settings))]
IbpsDep = Annotated[IbpsClient, Depends(_part(lambda gw: gw.ibps))]
ParticipantsDep = Annotated[ParticipantsService, Depends(_part(lambda gw: gw.participants))]
FxDep = Annotated[FxService, Depends(_part(lambda gw: gw.fx))]
DirectoryDep = Annotated[DirectoryService, Depends(_part(lambda gw: gw.directory))]
LimitsDep = Annotated[LimitsService, Depends(_part(lambda gw: gw.limits))]
IdempotencyDep = Annotated[IdempotencyService, Depends(_part(lambda gw: gw.idempotency))]
WebhooksDep = Annotated[WebhooksService, Depends(_part(lambda gw: gw.webhooks))]
ReconciliationDep = Annotated[ReconciliationService, Depends(_part(lambda gw: gw.reconciliation))]
HealthDep = Annotated[HealthService, Depends(_part(lambda gw: gw.health))]
PaymentsDep = Annotated[PaymentsService, Depends(_part(lambda gw: gw.payments))]
Iso20022Dep = Annotated[Iso20022Service, Depends(_part(lambda gw: gw.iso20022))]
SandboxClockDep = Annotated[ClockService, Depends(_part(lambda gw: gw.sandbox_clock))]
CertificationDep = Annotated[CertificationService, Depends(_part(lambda gw: gw.certification))]


IDENTIFIED = "fpslink.identified"
"""Scope key under which `fpslink.api.rate_limits` leaves (API key, Principal or the 401 it raised),
so that the route does not look the same key up again."""
QUOTA = "fpslink.quota"
"""Scope key under which `fpslink.api.rate_limits` leaves the bank's quota it spent a token of, for
a route whose request costs more than one (a pacs.008 of several transactions)."""
SPENT = "fpslink.spent"
"""Scope key under which such a route leaves the decision of its further spending: the answer's
RateLimit fields then say what is left after it."""


def bearer_key(scope: Scope) -> str | None:
    """The Bearer credentials of the request, read exactly as `bearer` (FastAPI's HTTPBearer) reads
    them: the first Authorization header, scheme and credentials split at the first space."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            credentials = credentials.strip()
            return credentials if scheme.lower() == "bearer" and credentials else None
    return None


async def principal_of(scope: Scope, participants: ParticipantsService, api_key: str | None) -> Principal:
    """The caller with this key: as the rate-limit layer identified it, or looked up now."""
    identified = scope.get(IDENTIFIED)
    if identified is not None and identified[0] == api_key:
        outcome: Principal | FpslinkError = identified[1]
        if isinstance(outcome, FpslinkError):
            raise outcome
        return outcome
    return await participants.authenticate(api_key)


async def get_principal(
    request: Request,
    participants: ParticipantsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller; the IBPS calls made for the rest of the request count towards its circuit."""
    api_key = credentials.credentials if credentials else None
    principal = await principal_of(request.scope, participants, api_key)
    circuit.act_for(principal.participant_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1-255 visible ASCII characters; reuse it when you retry the same request",
    ),
]

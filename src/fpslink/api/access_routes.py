"""A bank's API keys (add, list, revoke) and its rate limit: the bank itself or the operator."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from fpslink.api import schemas as s
from fpslink.api.deps import IdempotencyDep, IdempotencyKeyHeader, ParticipantsDep, PrincipalDep, gateway_of
from fpslink.api.routes import PROBLEMS, _idempotent, shown_once
from fpslink.participants import service as participants_service
from fpslink.participants.keys import ApiKeyRecord
from fpslink.ratelimit.policy import Quota

router = APIRouter(prefix="/v1/participants/{participant_id}", responses=PROBLEMS)

ParticipantId = Annotated[str, Path(pattern=r"^[A-Z0-9_]{2,40}$", description="The bank's code")]
Prefix = Annotated[str, Path(min_length=1, max_length=60, description="The key's prefix, as listed")]


def _key_out(record: ApiKeyRecord, now: datetime) -> s.KeyOut:
    return s.KeyOut(
        participant_id=record.participant_id,
        prefix=record.prefix,
        status=record.status(now),
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


def _now(request: Request) -> datetime:
    return gateway_of(request).now()


@router.post(
    "/keys",
    status_code=201,
    response_model=s.KeyCreated,
    tags=["keys"],
    summary="Add an API key for the bank (the bank or the operator); the key is returned once (a "
    "replay answers without it)",
)
async def create_key(
    participant_id: ParticipantId,
    body: s.KeyCreate,
    request: Request,
    participants: ParticipantsDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """A bank holds up to FPSLINK_KEYS_PER_PARTICIPANT active keys (5), so it can roll a key over:
    add one, move its clients to it, revoke the old one."""

    async def action() -> tuple[int, Any]:
        created = await participants.create_key(principal, participant_id, expires_at=body.expires_at)
        out = s.KeyCreated(**_key_out(created.record, _now(request)).model_dump(), api_key=created.api_key)
        return 201, s.dump(out)

    redact = shown_once("api_key", s.KEY_SHOWN_ONCE)
    return await _idempotent(idempotent, principal, request, idempotency_key, body, action, redact)


@router.get(
    "/keys",
    response_model=s.KeyList,
    tags=["keys"],
    summary="The bank's keys by prefix, with when each was created, last used, expires or was revoked",
)
async def list_keys(
    participant_id: ParticipantId,
    request: Request,
    participants: ParticipantsDep,
    principal: PrincipalDep,
) -> s.KeyList:
    records = await participants.list_keys(principal, participant_id)
    now = _now(request)
    return s.KeyList(items=[_key_out(r, now) for r in records])


@router.delete(
    "/keys/{prefix}",
    response_model=s.KeyOut,
    tags=["keys"],
    summary="Revoke a key: refused at once by the worker that revokes it, by every worker within seconds",
)
async def revoke_key(
    participant_id: ParticipantId,
    prefix: Prefix,
    request: Request,
    participants: ParticipantsDep,
    principal: PrincipalDep,
) -> s.KeyOut:
    """Every worker refuses the key within FPSLINK_KEY_CACHE_TTL_S (2 s by default). Revoking a
    revoked key answers it again. A bank cannot revoke its last active key (`409 KEY_IS_LAST`)."""
    record = await participants.revoke_key(principal, participant_id, prefix)
    return _key_out(record, _now(request))


def _rate_limit_out(view: participants_service.RateLimitView) -> s.RateLimitOut:
    return s.RateLimitOut(
        participant_id=view.participant_id,
        quota=view.quota.quota,
        window_s=view.quota.window_s,
        default=not view.own,
    )


@router.get(
    "/rate-limit",
    response_model=s.RateLimitOut,
    tags=["keys"],
    summary="The bank's quota of requests (the bank or the operator)",
)
async def get_rate_limit(
    participant_id: ParticipantId, participants: ParticipantsDep, principal: PrincipalDep
) -> s.RateLimitOut:
    return _rate_limit_out(await participants.rate_limit(principal, participant_id))


@router.put(
    "/rate-limit",
    response_model=s.RateLimitOut,
    tags=["operator"],
    summary="Set a bank's quota, e.g. raise it for a load test (operator); nulls restore the default",
)
async def set_rate_limit(
    participant_id: ParticipantId,
    body: s.RateLimitSet,
    participants: ParticipantsDep,
    principal: PrincipalDep,
) -> s.RateLimitOut:
    """Every worker applies the new quota within FPSLINK_KEY_CACHE_TTL_S."""
    participants_service.require_operator(principal)
    quota = None if body.quota is None or body.window_s is None else Quota(body.quota, body.window_s)
    return _rate_limit_out(await participants.set_rate_limit(participant_id, quota))

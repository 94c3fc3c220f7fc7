"""Operator control of mock_ibps's fault injection: what goes wrong, how often, with which seed."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from fpslink.api.deps import IbpsDep, IdempotencyKeyHeader, PrincipalDep
from fpslink.api.schemas import Problem
from fpslink.errors import InvalidRequest, UpstreamUnavailable
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable
from fpslink.participants import service as participants_service
from ibps_wire import schemas as wire
from ibps_wire.enums import FaultCall, FaultKind

T = TypeVar("T")

router = APIRouter(
    prefix="/v1/sandbox/faults",
    tags=["sandbox"],
    responses={
        code: {"model": Problem, "content": {"application/problem+json": {}}} for code in (401, 403, 422, 503)
    },
)


class FaultCreate(BaseModel):
    call: FaultCall = Field(description="The IBPS call that misbehaves")
    kind: FaultKind = Field(
        description="error: 503 at once; timeout: no answer, nothing applied; lost_reply: applied, "
        "answer never arrives; duplicate: delivered twice; latency: added delay"
    )
    probability: Annotated[float, Field(ge=0.0, le=1.0)]
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    hang_ms: Annotated[int, Field(ge=0, le=120_000)] = 30_000
    only_attempts: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=0, description="Fire only on the first N attempts of each payment (0: every attempt)"
    )
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"call": "commit", "kind": "lost_reply", "probability": 0.1, "seed": 42}]
        },
    )


class FaultOut(FaultCreate):
    rule_id: str
    model_config = ConfigDict(extra="ignore")


class FaultsOut(BaseModel):
    rules: list[FaultOut]
    injected: dict[str, dict[str, int]] = Field(description="Faults injected so far, by call and kind")
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {
                            "rule_id": "3f2a9c1d0b7e",
                            "call": "commit",
                            "kind": "lost_reply",
                            "probability": 0.1,
                            "seed": 42,
                            "latency_ms": 0,
                            "hang_ms": 30000,
                            "only_attempts": 0,
                        }
                    ],
                    "injected": {"commit": {"lost_reply": 7}},
                }
            ]
        }
    )


async def _ibps(call: Awaitable[T]) -> T:
    try:
        return await call
    except IbpsUnavailable as exc:
        raise UpstreamUnavailable(f"mock_ibps did not answer: {exc}") from exc
    except IbpsRefused as exc:
        raise InvalidRequest(f"mock_ibps refused: {exc.detail}", code=exc.code) from exc


@router.post("", status_code=201, response_model=FaultOut, summary="Inject a fault rule (operator)")
async def add_fault(
    body: FaultCreate,
    ibps: IbpsDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> FaultOut:
    participants_service.require_operator(principal)
    added = await _ibps(ibps.add_fault(wire.FaultIn.model_validate(body.model_dump())))
    return FaultOut.model_validate(added.model_dump())


@router.get("", response_model=FaultsOut, summary="The fault rules in force and what they did (operator)")
async def list_faults(ibps: IbpsDep, principal: PrincipalDep) -> FaultsOut:
    participants_service.require_operator(principal)
    return FaultsOut.model_validate((await _ibps(ibps.list_faults())).model_dump())


@router.delete("", status_code=204, summary="Remove every fault rule (operator)")
async def clear_faults(ibps: IbpsDep, principal: PrincipalDep) -> Response:
    participants_service.require_operator(principal)
    await _ibps(ibps.clear_faults())
    return Response(status_code=204)

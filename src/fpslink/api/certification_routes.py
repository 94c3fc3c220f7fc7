"""Certification runs: a bank starts one with its own key, follows it, uploads its record, completes
it, and reads its certificate (docs/certification.md). The operator may read every bank's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from fpslink.api.deps import CertificationDep, IdempotencyDep, IdempotencyKeyHeader, PrincipalDep
from fpslink.api.page_security import report_csp, secure_headers
from fpslink.api.problems import error_response
from fpslink.api.routes import PROBLEMS, _idempotent
from fpslink.api.schemas import dump
from fpslink.certification import render
from fpslink.certification.schemas import (
    CertificationCreate,
    CertificationList,
    CertificationOut,
    run_out,
    summary_out,
)
from fpslink.certification.service import Busy
from fpslink.participants import service as participants_service

router = APIRouter(prefix="/v1/certifications", responses=PROBLEMS, tags=["certification"])

RECORD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"payments": {"type": "array", "items": {"type": "object"}}},
                },
                "example": {
                    "payments": [
                        {
                            "payment_id": "0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11",
                            "status": "SETTLED",
                            "source_amount": "101.37",
                            "source_currency": "HKD",
                            "reason_code": None,
                        }
                    ]
                },
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": "payment_id,status,source_amount,source_currency,reason_code\r\n"
                "0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11,SETTLED,101.37,HKD,\r\n",
            },
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=CertificationOut,
    summary="Start a certification run for your bank: its scenarios, what to do and what the sandbox does",
)
async def start_certification(
    body: CertificationCreate,
    request: Request,
    certification: CertificationDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    participants_service.require_participant(principal)

    async def action() -> tuple[int, Any]:
        view = await certification.start(
            principal,
            suite=body.suite,
            debtor_account_id=body.debtor_account_id,
            creditor_proxy=body.creditor.proxy_value,
            creditor_account_id=body.creditor.account_id,
        )
        return 201, dump(run_out(view))

    return await _idempotent(idempotent, principal, request, idempotency_key, body, action)


@router.get(
    "", response_model=CertificationList, summary="Your runs, newest first (the operator: every bank's)"
)
async def list_certifications(
    certification: CertificationDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CertificationList:
    runs = await certification.list_runs(principal, limit=limit)
    return CertificationList(items=[summary_out(run) for run in runs])


@router.get(
    "/{certification_id}",
    response_model=CertificationOut,
    summary="A run and every scenario's verdict with its evidence (live while it goes on)",
)
async def get_certification(
    certification_id: str, certification: CertificationDep, principal: PrincipalDep
) -> CertificationOut:
    return run_out(await certification.view(principal, certification_id))


@router.put(
    "/{certification_id}/record",
    response_model=CertificationOut,
    summary="Upload your own record of the run's payments (JSON or text/csv); the last upload counts",
    openapi_extra=RECORD_BODY,
)
async def upload_record(
    certification_id: str, request: Request, certification: CertificationDep, principal: PrincipalDep
) -> CertificationOut:
    raw = await request.body()
    view = await certification.upload_record(
        principal, certification_id, raw, request.headers.get("content-type")
    )
    return run_out(view)


@router.post(
    "/{certification_id}/complete",
    response_model=CertificationOut,
    summary="End the run and judge it for good (409 CERTIFICATION_BUSY with Retry-After while the "
    "sandbox still delivers or holds for a scenario)",
)
async def complete_certification(
    certification_id: str, certification: CertificationDep, principal: PrincipalDep
) -> JSONResponse:
    try:
        view = await certification.complete(principal, certification_id)
    except Busy as exc:
        return error_response(
            exc,
            f"/v1/certifications/{certification_id}/complete",
            {"Retry-After": str(exc.retry_after_s)},
        )
    return JSONResponse(dump(run_out(view)))


@router.get(
    "/{certification_id}/certificate",
    response_class=HTMLResponse,
    summary="The run's certificate: one self-contained HTML page (once the run has ended)",
)
async def certificate(
    certification_id: str, certification: CertificationDep, principal: PrincipalDep
) -> Response:
    view = await certification.certificate(principal, certification_id)
    html = render.certificate(view)
    return secure_headers(HTMLResponse(html), csp=report_csp(html))

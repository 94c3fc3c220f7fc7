"""Reconciliation endpoints (operator only): run a business date, read a stored report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from fpslink.api.deps import IdempotencyDep, IdempotencyKeyHeader, PrincipalDep, ReconciliationDep
from fpslink.api.page_security import report_csp, secure_headers
from fpslink.api.routes import PROBLEMS, _idempotent
from fpslink.participants import service as participants_service
from fpslink.reconciliation import render
from fpslink.reconciliation.schemas import ReconciliationCreate, ReconciliationOut

router = APIRouter(prefix="/v1", responses=PROBLEMS, tags=["reconciliation"])


@router.post(
    "/reconciliations",
    status_code=201,
    response_model=ReconciliationOut,
    summary="Reconcile a business date: gateway payments x FPS ledger x IBPS statement (operator)",
)
async def create_reconciliation(
    body: ReconciliationCreate,
    request: Request,
    reconciliation: ReconciliationDep,
    idempotent: IdempotencyDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    participants_service.require_operator(principal)

    async def action() -> tuple[int, Any]:
        run_id = await reconciliation.reconcile(business_date=body.business_date)
        run = await reconciliation.get_run(run_id)
        return 201, run.as_json()

    return await _idempotent(idempotent, principal, request, idempotency_key, body, action)


@router.get(
    "/reconciliations/{reconciliation_id}",
    response_model=ReconciliationOut,
    summary="A stored reconciliation report: JSON (default), CSV of the breaks, or one HTML page",
    responses={
        200: {
            "content": {"text/csv": {}, "text/html": {}},
            "description": "The report in the requested format",
        }
    },
)
async def get_reconciliation(
    reconciliation_id: str,
    reconciliation: ReconciliationDep,
    principal: PrincipalDep,
    format: Annotated[Literal["json", "csv", "html"], Query(description="json, csv or html")] = "json",
) -> Response:
    participants_service.require_operator(principal)
    run = await reconciliation.get_run(reconciliation_id)
    name = f"reconciliation-{run.business_date}-{run.run_id[:8]}"
    if format == "html":
        breaks = reconciliation.iter_breaks(run.run_id, limit=render.HTML_MAX_BREAKS)
        html = await render.html(run, breaks)
        # the console's policy for the same page: opened in a browser it runs no script, loads nothing
        return secure_headers(HTMLResponse(html), csp=report_csp(html))
    breaks = reconciliation.iter_breaks(run.run_id)
    if format == "csv":
        return StreamingResponse(
            _encoded(render.csv_chunks(run, breaks)),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return StreamingResponse(_encoded(render.json_chunks(run, breaks)), media_type="application/json")


async def _encoded(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.encode()

"""ISO 20022 at the front door: POST a pacs.008, get a pacs.002 (application/xml)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from fpslink import metrics
from fpslink.api import schemas as s
from fpslink.api.deps import IdempotencyKeyHeader, PaymentsDep, PrincipalDep
from fpslink.errors import FpslinkError, InvalidRequest
from fpslink.idempotency import service as idempotency
from fpslink.iso20022 import examples, pacs002, pacs008, schema
from fpslink.participants import service as participants_service
from fpslink.settlement.states import status_of

XML = "application/xml"
XML_TYPES = ("application/xml", "text/xml")


class UnsupportedMediaType(FpslinkError):
    status = 415
    title = "Unsupported media type"
    default_code = "UNSUPPORTED_MEDIA_TYPE"


class MessageRejected(FpslinkError):
    """Well-formed XML that its schema does not accept, with every finding (422)."""

    status = 422
    title = "Invalid request"
    default_code = "ISO20022_SCHEMA_VIOLATION"

    def __init__(self, detail: str, *, errors: list[str], code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.errors = errors

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().problem(instance)
        body["errors"] = [{"field": "body", "message": e} for e in self.errors]
        return body


class MalformedMessage(MessageRejected):
    """Not well-formed XML, too large, or carrying a DTD (400)."""

    status = 400
    title = "Malformed message"
    default_code = "ISO20022_MALFORMED"


router = APIRouter(prefix="/v1/iso20022", tags=["iso20022"])

PACS002_RESPONSE = {"content": {XML: {"schema": {"type": "string"}, "example": examples.PACS002_ACSC}}}


@router.post(
    "/pacs.008",
    status_code=201,
    response_class=Response,
    summary="Send a payment as an ISO 20022 pacs.008.001.08; the answer is a pacs.002.001.10",
    description=(
        "The body is one FIToFICstmrCdtTrf with one transaction (`Content-Type: application/xml`). "
        "Unknown or missing elements and facet violations answer `422 ISO20022_SCHEMA_VIOLATION`, "
        "XML that is not well-formed `400 ISO20022_MALFORMED`. `Idempotency-Key` is optional here: "
        "without it the key is `pacs.008/<GrpHdr/MsgId>`, so resending a message replays its report. "
        "The report's TxSts is ACSC (settled), RJCT (with the ISO reason code) or PDNG (pending, "
        "answered 202); `ClrSysRef` is the payment id without hyphens and the `Location` header points "
        "to the JSON resource."
    ),
    responses={
        201: {"description": "pacs.002 with TxSts ACSC or RJCT", **PACS002_RESPONSE},
        202: {"description": "pacs.002 with TxSts PDNG: settlement is not final yet", **PACS002_RESPONSE},
        400: {"model": s.Problem, "content": {"application/problem+json": {}}},
        401: {"model": s.Problem, "content": {"application/problem+json": {}}},
        403: {"model": s.Problem, "content": {"application/problem+json": {}}},
        404: {"model": s.Problem, "content": {"application/problem+json": {}}},
        409: {"model": s.Problem, "content": {"application/problem+json": {}}},
        415: {"model": s.Problem, "content": {"application/problem+json": {}}},
        422: {"model": s.Problem, "content": {"application/problem+json": {}}},
        503: {"model": s.Problem, "content": {"application/problem+json": {}}},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                XML: {
                    "schema": {"type": "string", "maxLength": schema.MAX_MESSAGE_BYTES},
                    "example": examples.PACS008_NORTHBOUND,
                }
            },
        }
    },
)
async def post_pacs008(
    request: Request,
    payments: PaymentsDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    participants_service.require_participant(principal)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in XML_TYPES:
        raise UnsupportedMediaType(f"send the pacs.008 as {XML} (got {media or 'no Content-Type'})")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > schema.MAX_MESSAGE_BYTES:
        raise MalformedMessage("the message exceeds 64 KiB", errors=["over 64 KiB"])
    body = await request.body()
    try:
        message = pacs008.parse(body)
    except schema.MalformedMessage as exc:
        raise MalformedMessage(
            f"the body is not a well-formed XML message: {exc}", errors=[str(exc)]
        ) from exc
    except schema.SchemaViolation as exc:
        raise MessageRejected(
            f"the message does not conform to {pacs008.MESSAGE_NAME}: {exc.errors[0]}",
            errors=exc.errors,
        ) from exc
    except pacs008.Unsupported as exc:
        raise InvalidRequest(str(exc), code=exc.code) from exc
    key = idempotency.parse_key(idempotency_key or f"pacs.008/{message.msg_id}", required=True)
    assert key is not None
    started = time.perf_counter()
    result = await payments.submit(principal, key=key, command=message.command)
    payment = result.payment
    if not result.replayed:
        status = status_of(payment.state).value
        metrics.PAYMENTS.labels(status=status, direction=payment.direction.value).inc()
        metrics.SETTLEMENT_SECONDS.observe(time.perf_counter() - started)
    headers = {"Location": f"/v1/payments/{payment.payment_id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        pacs002.render(message, payment),
        status_code=result.http_status,
        media_type=XML,
        headers=headers,
    )

"""ISO 20022 at the front door: POST a pacs.008, get a pacs.002 (application/xml)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from fpslink import metrics
from fpslink.api import schemas as s
from fpslink.api.deps import ClockDep, IdempotencyKeyHeader, PaymentsDep, PrincipalDep, SettingsDep
from fpslink.errors import FpslinkError
from fpslink.idempotency import service as idempotency
from fpslink.iso20022 import examples, xmltree
from fpslink.iso20022.exchange import exchange
from fpslink.iso20022.inbound import ENVELOPE_NAMES, SUPPORTED_DOCUMENTS, SUPPORTED_HEADERS
from fpslink.participants import service as participants_service
from fpslink.settlement.states import status_of

XML = "application/xml"
XML_TYPES = ("application/xml", "text/xml")


class UnsupportedMediaType(FpslinkError):
    status = 415
    title = "Unsupported media type"
    default_code = "UNSUPPORTED_MEDIA_TYPE"


class MalformedMessage(FpslinkError):
    """Not well-formed XML, too large, or carrying a DTD (400): not a message at all."""

    status = 400
    title = "Malformed message"
    default_code = "ISO20022_MALFORMED"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().problem(instance)
        body["errors"] = [{"field": "body", "message": self.detail}]
        return body


router = APIRouter(prefix="/v1/iso20022", tags=["iso20022"])

PACS002_RESPONSE = {"content": {XML: {"schema": {"type": "string"}, "example": examples.PACS002_ACSC}}}
PROBLEM: dict[int | str, dict[str, Any]] = {
    status: {"model": s.Problem, "content": {"application/problem+json": {}}}
    for status in (400, 401, 403, 409, 413, 415, 503)
}


@router.post(
    "/pacs.008",
    status_code=201,
    response_class=Response,
    summary="Send a payment as an ISO 20022 pacs.008 (.08 to .13); the answer is a pacs.002.001.10",
    description=(
        f"The body is one FIToFICstmrCdtTrf ({SUPPORTED_DOCUMENTS}, chosen by the Document's "
        "namespace) with one transaction, as `Content-Type: application/xml`: a bare Document, or "
        f"an envelope ({', '.join(ENVELOPE_NAMES)}) holding a business application header "
        f"({SUPPORTED_HEADERS}) and then the Document, whose answer comes in the same envelope "
        "with its own AppHdr. Every refusal of a well-formed message is a pacs.002 with GrpSts "
        "RJCT and an ISO 20022 reason code (FF01 for what the schema refuses, AC02, AM03, ...), "
        "answered 422 (404 for a debtor account that is not yours). XML that is not well-formed "
        "or carries a DTD answers `400 ISO20022_MALFORMED`, and a body over 64 KiB "
        "(`FPSLINK_MAX_ISO20022_BODY_BYTES`) `413 PAYLOAD_TOO_LARGE` as soon as that much has "
        "arrived (problem+json). "
        "`Idempotency-Key` is optional: without it the key is `pacs.008/<GrpHdr/MsgId>`, so resending "
        "a message replays its report. A payment's report has TxSts ACSC (settled), RJCT (with the "
        "ISO reason code) or PDNG (pending, answered 202); `ClrSysRef` is the payment id without "
        "hyphens and the `Location` header points to the JSON resource."
    ),
    responses={
        201: {"description": "pacs.002 with TxSts ACSC or RJCT", **PACS002_RESPONSE},
        202: {"description": "pacs.002 with TxSts PDNG: settlement is not final yet", **PACS002_RESPONSE},
        404: {"description": "pacs.002 RJCT AC02: the debtor account is not yours", **PACS002_RESPONSE},
        422: {
            "description": "pacs.002 RJCT: the message was refused, no payment made (problem+json for an "
            "invalid Idempotency-Key header)",
            "model": s.Problem,
            "content": {**PACS002_RESPONSE["content"], "application/problem+json": {}},
        },
        **PROBLEM,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                XML: {
                    "schema": {"type": "string", "maxLength": xmltree.MAX_MESSAGE_BYTES},
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
    settings: SettingsDep,
    clock: ClockDep,
    idempotency_key: IdempotencyKeyHeader = None,
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    participants_service.require_participant(principal)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in XML_TYPES:
        raise UnsupportedMediaType(f"send the pacs.008 as {XML} (got {media or 'no Content-Type'})")
    # the body's size was bounded as it arrived, before authentication (api/request_limits.py)
    explicit_key = idempotency.parse_key(idempotency_key, required=False)
    body = await request.body()
    started = time.perf_counter()
    try:
        answer = await exchange(
            body,
            principal=principal,
            explicit_key=explicit_key,
            payments=payments,
            settings=settings,
            now=clock(),
        )
    except xmltree.MalformedMessage as exc:
        raise MalformedMessage(f"the body is not a well-formed XML message: {exc}") from exc
    result = answer.result
    if result is not None and not result.replayed:
        payment = result.payment
        status = status_of(payment.state).value
        metrics.PAYMENTS.labels(status=status, direction=payment.direction.value).inc()
        metrics.SETTLEMENT_SECONDS.observe(time.perf_counter() - started)
    return Response(answer.content, status_code=answer.status, media_type=XML, headers=answer.headers)

"""ISO 20022 at the front door: POST a pacs.008, or a pacs.028 about one; get a pacs.002 (XML)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from fpslink import metrics
from fpslink.api import problems
from fpslink.api import schemas as s
from fpslink.api.deps import QUOTA, SPENT, IdempotencyKeyHeader, Iso20022Dep, PrincipalDep
from fpslink.errors import FpslinkError, TooManyRequests
from fpslink.idempotency import service as idempotency
from fpslink.iso20022 import examples, xmltree
from fpslink.iso20022.exchange import Answer
from fpslink.iso20022.inbound import (
    ENVELOPE_NAMES,
    PACS028,
    SUPPORTED_DOCUMENTS,
    SUPPORTED_HEADERS,
    supported,
)
from fpslink.participants import service as participants_service
from fpslink.principal import Principal
from fpslink.ratelimit.policy import POLICY, Decision
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


def _xml_body(example: str) -> dict[str, Any]:
    """The request body of an ISO 20022 endpoint in the OpenAPI schema: XML, bounded, with an example."""
    schema = {"type": "string", "maxLength": xmltree.MAX_MESSAGE_BYTES}
    return {"requestBody": {"required": True, "content": {XML: {"schema": schema, "example": example}}}}


@router.post(
    "/pacs.008",
    status_code=201,
    response_class=Response,
    summary="Send payments as an ISO 20022 pacs.008 (.08 to .13); the answer is a pacs.002.001.10",
    description=(
        f"The body is one FIToFICstmrCdtTrf ({SUPPORTED_DOCUMENTS}, chosen by the Document's "
        "namespace) with one or more transactions (at most 100, `FPSLINK_ISO20022_MAX_TRANSACTIONS`), "
        "each settled as a payment of its own, as `Content-Type: application/xml`: a bare Document, or "
        f"an envelope ({', '.join(ENVELOPE_NAMES)}) holding a business application header "
        f"({SUPPORTED_HEADERS}) and then the Document, whose answer comes in the same envelope "
        "with its own AppHdr. Every refusal of a well-formed message is a pacs.002 with GrpSts "
        "RJCT and an ISO 20022 reason code (FF01 for what the schema refuses, AC02, AM03, ...), "
        "answered 422 (404 for a debtor account that is not yours). XML that is not well-formed "
        "or carries a DTD answers `400 ISO20022_MALFORMED`, and a body over 512 KiB "
        "(`FPSLINK_MAX_ISO20022_BODY_BYTES`) `413 PAYLOAD_TOO_LARGE` as soon as that much has "
        "arrived (problem+json). "
        "The link's consistency rules also refuse it: sums (AM16), the charging rule (AM09), the "
        "debtor agent (RC06, RC09, RC03), a settlement date other than today's (DT01): the example "
        "is dated 2026-06-22, so write the sandbox's `business_date` (`GET /v1/sandbox/clock`) in its "
        "IntrBkSttlmDt before trying it. "
        "`Idempotency-Key` is optional: without it the key is `pacs.008/<GrpHdr/MsgId>`, so resending "
        "a message replays its report. A UETR names one payment of your bank for good: the same "
        "message again replays its report, another message with it is refused DUPL. A payment's "
        "report has TxSts ACSC (settled), RJCT (with the "
        "ISO reason code) or PDNG (pending, answered 202); `ClrSysRef` is the payment id without "
        "hyphens and the `Location` header points to the JSON resource. A message of several "
        "transactions is answered by one report: GrpSts ACSC (all settled), PDNG (none rejected, "
        "some pending; 202), PART (some rejected) or RJCT (all), then each transaction's status in "
        "the message's order; a transaction the link's rules refuse is RJCT on its own and the "
        "others are paid. Its transactions' keys are `<key>/<n>`, n from 1."
    ),
    responses={
        201: {"description": "pacs.002 with TxSts ACSC or RJCT (each final)", **PACS002_RESPONSE},
        202: {"description": "pacs.002 with a TxSts PDNG: settlement is not final yet", **PACS002_RESPONSE},
        404: {"description": "pacs.002 RJCT AC02: the debtor account is not yours", **PACS002_RESPONSE},
        422: {
            "description": "pacs.002 RJCT: the message was refused, no payment made (problem+json for an "
            "invalid Idempotency-Key header)",
            "model": s.Problem,
            "content": {**PACS002_RESPONSE["content"], "application/problem+json": {}},
        },
        **PROBLEM,
    },
    openapi_extra=_xml_body(examples.PACS008_NORTHBOUND),
)
async def post_pacs008(
    request: Request,
    iso20022: Iso20022Dep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKeyHeader = None,
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    body = await _message(request, principal, content_type, "pacs.008")
    explicit_key = idempotency.parse_key(idempotency_key, required=False)
    started = time.perf_counter()
    spend = _transactions_spender(request, principal)
    try:
        answer = await _answering(
            iso20022.credit_transfer(body, principal=principal, explicit_key=explicit_key, spend=spend)
        )
    except _OverQuota as over:
        quota = over.decision.quota
        error = TooManyRequests(
            f"a pacs.008 spends one of {over.bank}'s {quota.quota} requests per {quota.window_s} s for "
            f"each transaction, and fewer are left than this message's {over.transactions}; retry "
            f"after {over.decision.reset_s} s, or send its transactions in smaller messages",
            policy=POLICY,
            participant_id=over.bank,
        )
        # the rate-limit layer adds the decision's fields (RateLimit, Retry-After) to every answer
        return problems.error_response(error, request.url.path)
    elapsed_s = time.perf_counter() - started
    for result in answer.results:
        if not result.replayed:
            payment = result.payment
            metrics.payment_answered(
                status=status_of(payment.state).value,
                direction=payment.direction.value,
                reason_code=payment.reason_code,
                elapsed_s=elapsed_s,
            )
    return _response(answer)


@router.post(
    "/pacs.028",
    status_code=200,
    response_class=Response,
    summary="Ask for a payment's status with an ISO 20022 pacs.028; the answer is its pacs.002.001.10",
    description=(
        f"The body is one FIToFIPmtStsReq ({supported(PACS028)}), bare or in an envelope with its "
        "AppHdr like a pacs.008, naming one payment your bank sent as a pacs.008: one TxInf with "
        "ClrSysRef (the link's reference from the payment's pacs.002), OrgnlUETR, or OrgnlGrpInf/"
        "OrgnlMsgId (or one OrgnlGrpInf without TxInf). Every other reference given must be the "
        "payment's too. The answer is the payment's pacs.002 as it stands now (TxSts ACSC, PDNG or "
        "RJCT with its reason; StsId is your StsReqId), answered 200. A request that matches none of "
        "your payments answers 404 with a pacs.002 RJCT AG09 (never received), alike for a payment "
        "that does not exist and for another bank's; a refused request a pacs.002 RJCT (422)."
    ),
    responses={
        200: {"description": "the payment's pacs.002", **PACS002_RESPONSE},
        404: {"description": "pacs.002 RJCT AG09: no payment of yours matches", **PACS002_RESPONSE},
        422: {"description": "pacs.002 RJCT: the request was refused", **PACS002_RESPONSE},
        **PROBLEM,
    },
    openapi_extra=_xml_body(examples.PACS028_BY_UETR),
)
async def post_pacs028(
    request: Request,
    iso20022: Iso20022Dep,
    principal: PrincipalDep,
    content_type: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    body = await _message(request, principal, content_type, "pacs.028")
    return _response(await _answering(iso20022.status_request(body, principal=principal)))


class _OverQuota(Exception):
    """A message whose transactions the bank's quota cannot pay for now."""

    def __init__(self, decision: Decision, bank: str, transactions: int) -> None:
        super().__init__(bank)
        self.decision = decision
        self.bank = bank
        self.transactions = transactions


def _transactions_spender(request: Request, principal: Principal) -> Callable[[int], Awaitable[None]]:
    """The bank's quota counts payments, not messages: the request spent one token, and a message
    of n transactions spends n - 1 more once they are read, or is refused 429 as a request over the
    quota is (else a bank sending 100-transaction messages at its quota pays 100 times as many
    payments as one sending JSON, and takes the shared sandbox from the others)."""
    quota = request.scope.get(QUOTA)
    bank = principal.participant_id

    async def spend(transactions: int) -> None:
        if quota is None or bank is None or transactions <= 1:
            return
        decision = await request.app.state.gateway.rate_limiter.admit(bank, quota, cost=transactions - 1)
        request.scope[SPENT] = decision  # the answer's RateLimit fields (and Retry-After) say it
        if not decision.admitted:
            raise _OverQuota(decision, bank, transactions)

    return spend


async def _message(request: Request, principal: Principal, content_type: str | None, name: str) -> bytes:
    """The body of a bank's XML message; the body's size was bounded as it arrived, before
    authentication (api/request_limits.py)."""
    participants_service.require_participant(principal)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in XML_TYPES:
        raise UnsupportedMediaType(f"send the {name} as {XML} (got {media or 'no Content-Type'})")
    return await request.body()


async def _answering(answer: Awaitable[Answer]) -> Answer:
    try:
        return await answer
    except xmltree.MalformedMessage as exc:
        raise MalformedMessage(f"the body is not a well-formed XML message: {exc}") from exc


def _response(answer: Answer) -> Response:
    return Response(answer.content, status_code=answer.status, media_type=XML, headers=answer.headers)

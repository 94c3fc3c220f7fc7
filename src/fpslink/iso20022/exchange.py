"""One pacs.008 in, one pacs.002 out: read, check, pay, report.

Every refusal of a well-formed message is a pacs.002 RJCT with the ISO 20022 status reason that fits,
whether the message's structure, its header, the link's rules or the payments service refused it;
the HTTP status says only whether a payment was made (201/202) or not (422, or 404 where the JSON
API answers 404). What stays RFC 9457 problem+json is what is not about the message: authentication,
a body that is not XML the gateway reads (400), a wrong media type or Idempotency-Key header, a key
whose first request is still running (409), and an unavailable service (503).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from fpslink.config import Settings
from fpslink.errors import InvalidRequest, NotFound
from fpslink.idempotency import service as idempotency
from fpslink.iso20022 import apphdr, inbound, pacs002, pacs008
from fpslink.iso20022.inbound import Reason, Refused
from fpslink.payments.service import PaymentResult, PaymentsService
from fpslink.principal import Principal

KEY_PREFIX = "pacs.008/"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    result: PaymentResult | None = None
    """The payment, when one was made (or replayed)."""


def message_key(msg_id: str) -> str:
    """The default idempotency key of a message: `pacs.008/<MsgId>`.

    A MsgId is any 1-35 characters; one that an Idempotency-Key could not carry (a space, a non-ASCII
    letter) is keyed by its SHA-256 instead, so that every schema-valid message has a key.
    """
    key = KEY_PREFIX + msg_id
    if idempotency.KEY_PATTERN.fullmatch(key):
        return key
    return f"{KEY_PREFIX}sha256:{hashlib.sha256(msg_id.encode()).hexdigest()}"


def addressing(principal: Principal, settings: Settings) -> pacs002.Addressing:
    assert principal.participant_id is not None
    return pacs002.Addressing(
        caller=apphdr.Party(principal.participant_id, principal.bic),
        link=apphdr.Party(settings.iso20022_member_id, settings.iso20022_bic),
    )


def refusal(refused: Refused, *, at: datetime, to: pacs002.Addressing) -> Answer:
    return Answer(refused.status, pacs002.render_refusal(refused, at=at, addressing=to))


async def exchange(
    body: bytes,
    *,
    principal: Principal,
    explicit_key: str | None,
    payments: PaymentsService,
    settings: Settings,
    now: datetime,
) -> Answer:
    """The answer to one message; raises MalformedMessage, and the errors that stay problem+json."""
    to = addressing(principal, settings)
    try:
        message = inbound.read(body)
        apphdr.check(message, caller=to.caller, link=to.link)
        transfer = pacs008.credit_transfer(message, default_purpose=settings.iso20022_default_purpose)
    except Refused as refused_early:
        return refusal(refused_early, at=now, to=to)
    key = explicit_key or message_key(transfer.msg_id)
    try:
        result = await payments.submit(principal, key=key, command=transfer.command)
    except (InvalidRequest, NotFound) as exc:
        reason = Reason(pacs002.iso_reason(exc.code), f"{exc.code}: {exc.detail}")
        if exc.code == "IDEMPOTENCY_KEY_REUSED" and explicit_key is None:
            # DU01 DuplicateMessageID: the key was the MsgId, which another message came with
            text = f"GrpHdr/MsgId {transfer.msg_id} came with another message: give each its own MsgId"
            reason = Reason("DU01", text)
        refused = Refused(
            [reason],
            original=transfer.original or inbound.Original(transfer.msg_id, transfer.message_name),
            transaction=transfer.transaction,
            status=exc.status,
        )
        return refusal(refused, at=now, to=to)
    payment = result.payment
    headers = {"Location": f"/v1/payments/{payment.payment_id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    content = pacs002.render(transfer, payment, addressing=to)
    return Answer(result.http_status, content, headers, result)

"""ISO 20022 in, pacs.002 out: a pacs.008 is read, checked, paid and reported; a pacs.028 is answered
with the report of the payment it asks about.

Every refusal of a well-formed message is a pacs.002 RJCT with the ISO 20022 status reason that fits,
whether the message's structure, its header, the link's rules or the payments service refused it;
the HTTP status says only whether a payment was made (201/202) or found (200), or not (422, or 404
where the JSON API answers 404). What stays RFC 9457 problem+json is what is not about the message:
authentication, a body that is not XML the gateway reads (400), a wrong media type or
Idempotency-Key header, a key whose first request is still running (409), and an unavailable
service (503).

Each transaction of a pacs.008 is a payment of its own, made through the payments service as a
JSON payment is, under its own idempotency key (`transaction_key`); a message's transactions are
paid at once, so that they join the worker's batches together. A transaction the link's rules
refuse is refused alone, in the report's TxInfAndSts, and the others go ahead; what is wrong with
the group (the schema, the header, NbOfTxs, the sums) refuses the whole message.

A transaction with a UETR claims it for the sending bank before its payment is made (`uetr` decides
what a second message with it gets); one without a UETR is recorded once its payment exists. Those
records are what a pacs.028 finds payments by. A transaction whose settlement date is not today goes
ahead only as a replay of one taken before (its UETR's payment, or its idempotency key's), so that a
resend after midnight answers the payment rather than DT01.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pyiso20022.pacs.pacs_002_001_10 import PaymentTransaction110

from fpslink.config import Settings
from fpslink.errors import InvalidRequest, NotFound
from fpslink.idempotency import service as idempotency
from fpslink.iso20022 import apphdr, consistency, inbound, pacs002, pacs008, pacs028, uetr
from fpslink.iso20022.inbound import Reason, Refused
from fpslink.iso20022.pacs008 import CreditTransfer
from fpslink.iso20022.repository import SentTransaction
from fpslink.iso20022.uetr import Action, Decision
from fpslink.limits.policy import business_date
from fpslink.payments.domain import Payment
from fpslink.payments.service import PaymentResult, PaymentsService
from fpslink.principal import Principal
from fpslink.uow import UnitsOfWork

KEY_PREFIX = "pacs.008/"
CLAIM_ATTEMPTS = 3
"""Reads of a UETR's claim before giving up (a claim released between the insert and the read)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    results: tuple[PaymentResult, ...] = ()
    """The payments made (or replayed), one per transaction paid, in the message's order."""


def message_key(msg_id: str) -> str:
    """The default idempotency key of a message: `pacs.008/<MsgId>`.

    A MsgId is any 1-35 characters; one that an Idempotency-Key could not carry (a space, a non-ASCII
    letter) is keyed by its SHA-256 instead, so that every schema-valid message has a key.
    """
    key = KEY_PREFIX + msg_id
    if idempotency.KEY_PATTERN.fullmatch(key):
        return key
    return f"{KEY_PREFIX}sha256:{hashlib.sha256(msg_id.encode()).hexdigest()}"


def transaction_key(key: str, number: int, count: int) -> str:
    """The idempotency key of transaction `number` (from 1) of a message of `count`: the message's
    key when it carries one transaction, else `<key>/<number>` (by its SHA-256, prefixed
    `sha256:`, when that would be longer than a key may be)."""
    if count == 1:
        return key
    own = f"{key}/{number}"
    if idempotency.KEY_PATTERN.fullmatch(own):
        return own
    return f"sha256:{hashlib.sha256(own.encode()).hexdigest()}"


def message_fingerprint(transfer: CreditTransfer) -> str:
    """What makes two pacs.008 the same message: its references and the payment it asks for (not its
    header, which a resend may mark as a possible duplicate, nor its layout)."""
    command = transfer.command
    return idempotency.fingerprint(
        "POST",
        "/v1/iso20022/pacs.008",
        {
            "msg_id": transfer.msg_id,
            "message_name": transfer.message_name,
            "instr_id": transfer.instr_id,
            "end_to_end_id": transfer.end_to_end_id,
            "tx_id": transfer.tx_id,
            "uetr": transfer.uetr,
            "debtor_account_id": command.debtor_account_id,
            "creditor_proxy": command.creditor_proxy,
            "creditor_account_id": command.creditor_account_id,
            "amount": f"{command.amount:f}",
            "currency": command.currency.value,
            "purpose": command.purpose.value,
            "remittance_info": command.remittance_info,
        },
    )


def addressing(principal: Principal, settings: Settings) -> pacs002.Addressing:
    assert principal.participant_id is not None
    return pacs002.Addressing(
        caller=apphdr.Party(principal.participant_id, principal.bic),
        link=apphdr.Party(settings.iso20022_member_id, settings.iso20022_bic),
    )


def refusal(refused: Refused, *, at: datetime, to: pacs002.Addressing) -> Answer:
    return Answer(refused.status, pacs002.render_refusal(refused, at=at, addressing=to))


def duplicate(transfer: CreditTransfer, claim: SentTransaction) -> Refused:
    """DUPL: the bank has paid (or is paying) another message under this UETR."""
    text = (
        f"PmtId/UETR {transfer.uetr} came with another message of yours (GrpHdr/MsgId {claim.msg_id}): "
        "a UETR names one payment for good; give this payment its own, or ask about that one (pacs.028)"
    )
    return Refused(
        [Reason("DUPL", text)],
        original=transfer.original or inbound.Original(transfer.msg_id, transfer.message_name),
        transaction=transfer.transaction,
    )


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What became of one transaction of a message: its payment, or its refusal."""

    transfer: CreditTransfer | None
    """The transaction as read; None when the link's rules refused it before it could be."""
    result: PaymentResult | None = None
    refused: Refused | None = None

    def status(self) -> PaymentTransaction110:
        """Its TxInfAndSts in a report of several transactions."""
        if self.result is not None:
            assert self.transfer is not None
            return pacs002.payment_status(self.transfer, self.result.payment)
        assert self.refused is not None
        refused = self.refused
        if refused.transaction is None and self.transfer is not None:
            # the group's settlement date, which refused this transaction alone (others replayed)
            ids = self.transfer.transaction
            refused = Refused(refused.reasons, original=refused.original, transaction=ids)
        return pacs002.refused_status(refused)


@dataclass(frozen=True, slots=True)
class _Claim:
    decision: Decision
    record: SentTransaction
    mine: bool
    """This request inserted the claim (or took it over), so a refusal releases it."""


class Iso20022Service:
    """The ISO 20022 endpoints: payments through the payments service, references in
    `iso20022_transactions`. Built once per process (`fpslink.context.Gateway`)."""

    def __init__(
        self,
        uow: UnitsOfWork,
        payments: PaymentsService,
        *,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self._uow = uow
        self._payments = payments
        self._settings = settings
        self._clock = clock

    # pacs.008 --------------------------------------------------------------------------------------

    async def credit_transfer(
        self,
        body: bytes,
        *,
        principal: Principal,
        explicit_key: str | None,
        spend: Callable[[int], Awaitable[None]] | None = None,
    ) -> Answer:
        """The answer to a pacs.008; raises MalformedMessage, and the errors that stay problem+json.

        Each transaction is paid on its own (`_pay`), all of them at once: their payments join this
        worker's batches like any others, each with its own limits and two-phase settlement.
        `spend(n)` is told the message's n transactions before any is paid, and raises to refuse
        the message (the bank's quota counts transactions: `fpslink.api.iso20022_routes`)."""
        now = self._clock()
        to = addressing(principal, self._settings)
        try:
            message = inbound.read(body)
            apphdr.check(message, caller=to.caller, link=to.link)
            transfers = pacs008.credit_transfers(
                message,
                default_purpose=self._settings.iso20022_default_purpose,
                max_transactions=self._settings.iso20022_max_transactions,
            )
            inconsistent = consistency.check(message, caller=to.caller, link=to.link)
        except Refused as refused_early:
            return refusal(refused_early, at=now, to=to)
        dates = consistency.settlement_dates(message, today=business_date(now))
        key = explicit_key or message_key(message.msg_id)
        count = len(transfers)
        if spend is not None:
            await spend(count)

        async def one(number: int, transfer: CreditTransfer | Refused) -> _Outcome:
            refused = transfer if isinstance(transfer, Refused) else inconsistent[number - 1]
            if refused is not None:
                return _Outcome(None, refused=refused)
            assert isinstance(transfer, CreditTransfer)
            late = dates.transactions[number - 1] or dates.group
            own_key = transaction_key(key, number, count)
            return await self._pay(
                principal, transfer, number, key=own_key, explicit_key=explicit_key, late=late, now=now
            )

        done = await asyncio.gather(
            *(one(n, t) for n, t in enumerate(transfers, start=1)), return_exceptions=True
        )
        # every transaction has finished before an error (a key still in use: 409) answers for the
        # message, so that none goes on after its request; a resend answers from the payments made
        outcomes: list[_Outcome] = []
        for found in done:
            if isinstance(found, BaseException):
                raise found
            outcomes.append(found)
        return self._answer(message.original, outcomes, dates.group, to=to, now=now)

    async def _pay(
        self,
        principal: Principal,
        transfer: CreditTransfer,
        position: int,
        *,
        key: str,
        explicit_key: str | None,
        late: Refused | None,
        now: datetime,
    ) -> _Outcome:
        """One transaction: claim its UETR, pay it under its key, tie its references to the payment.
        A transaction `late` (not dated today) goes ahead only as a replay of one taken before."""
        assert principal.participant_id is not None
        row = SentTransaction(
            record_id=str(uuid.uuid4()),
            participant_id=principal.participant_id,
            uetr=transfer.uetr,
            msg_id=transfer.msg_id,
            message_name=transfer.message_name,
            instr_id=transfer.instr_id,
            end_to_end_id=transfer.end_to_end_id,
            tx_id=transfer.tx_id,
            fingerprint=message_fingerprint(transfer),
            idempotency_key=key,
            payment_id=None,
            created_at=now,
            position=position,
        )
        claim = await self._claim(row, now, new=late is None) if row.uetr is not None else None
        if claim is not None:
            decision = claim.decision
            if decision.action is Action.DUPLICATE:
                return _Outcome(transfer, refused=duplicate(transfer, claim.record))
            if decision.action is Action.REPLAY:
                assert decision.payment_id is not None
                result = await self._payments.get_payment(principal, decision.payment_id)
                return _Outcome(transfer, result=replace(result, replayed=True))
            key = decision.key or key
        if late is not None and not await self._taken(row, key, now):
            # a new transaction not dated today (a late one claims nothing: `new` was False)
            return _Outcome(transfer, refused=late)
        try:
            result = await self._payments.submit(principal, key=key, command=transfer.command)
        except (InvalidRequest, NotFound) as exc:
            if claim is not None and claim.mine:
                await self._release(claim.record)
            return _Outcome(transfer, refused=self._refused_by_payments(exc, transfer, explicit_key))
        await self._record(row, claim, result)
        return _Outcome(transfer, result=result)

    async def _claim(self, row: SentTransaction, now: datetime, *, new: bool) -> _Claim | None:
        """Claim the message's UETR for its bank (unless not `new`: then None when it has no claim),
        or decide what the claim already there means."""
        assert row.uetr is not None
        lease = timedelta(seconds=self._settings.request_lease_s)
        for _ in range(CLAIM_ATTEMPTS):
            async with self._uow() as tx:
                if new and await tx.iso20022.claim(row):
                    await tx.commit()
                    return _Claim(Decision(Action.RESUME, key=row.idempotency_key), row, mine=True)
                found = await tx.iso20022.by_uetr(row.participant_id, row.uetr)
                if found is None:
                    if not new:
                        return None
                    continue  # released between the two statements: claim again
                key = None
                if found.payment_id is None:
                    scope, claimed_key = row.participant_id, found.idempotency_key
                    key = await tx.idempotency.find(scope=scope, key=claimed_key, now=now)
                decision = uetr.decide(found, row.fingerprint, key=key, now=now, lease=lease)
                if decision.action is not Action.TAKE_OVER:
                    return _Claim(decision, found, mine=False)
                if await tx.iso20022.take_over(found, row):
                    await tx.commit()
                    taken = replace(row, record_id=found.record_id)
                    return _Claim(Decision(Action.RESUME, key=row.idempotency_key), taken, mine=True)
        raise idempotency.in_progress()

    async def _taken(self, row: SentTransaction, key: str, now: datetime) -> bool:
        """Whether the idempotency key is bound (a payment was, or is being, made under it)."""
        async with self._uow() as tx:
            return await tx.idempotency.find(scope=row.participant_id, key=key, now=now) is not None

    async def _release(self, claim: SentTransaction) -> None:
        async with self._uow() as tx:
            await tx.iso20022.release(claim.record_id)
            await tx.commit()

    async def _record(self, row: SentTransaction, claim: _Claim | None, result: PaymentResult) -> None:
        """Tie the message's references to its payment."""
        payment_id = result.payment.payment_id
        async with self._uow() as tx:
            if claim is not None:
                await tx.iso20022.paid(claim.record.record_id, payment_id)
            elif not result.replayed or not await tx.iso20022.find(row.participant_id, payment_id=payment_id):
                # a UETR already claimed (a late message that replayed another's payment) keeps its row
                await tx.iso20022.claim(replace(row, payment_id=payment_id))
            await tx.commit()

    @staticmethod
    def _answer(
        original: inbound.Original,
        outcomes: Sequence[_Outcome],
        late: Refused | None,
        *,
        to: pacs002.Addressing,
        now: datetime,
    ) -> Answer:
        """The pacs.002 of a message: of its one payment, or of its one refusal, as before batches;
        of several transactions, one report with the group's status and each transaction's."""
        results = tuple(o.result for o in outcomes if o.result is not None)
        if not results and late is not None and any(o.refused is late for o in outcomes):
            return refusal(late, at=now, to=to)  # the message is not today's: refused whole
        if len(outcomes) == 1:
            (only,) = outcomes
            if only.refused is not None:
                return refusal(only.refused, at=now, to=to)
            assert only.transfer is not None and only.result is not None
            result = only.result
            payment = result.payment
            headers = {"Location": f"/v1/payments/{payment.payment_id}"}
            if result.replayed:
                headers["Idempotent-Replayed"] = "true"
            content = pacs002.render(only.transfer, payment, addressing=to)
            return Answer(result.http_status, content, headers, results)
        statuses = [o.status() for o in outcomes]
        if not results:
            refused = [o.refused for o in outcomes if o.refused is not None]
            codes = {r.status for r in refused}
            message_id = pacs002.new_report_id()
            content = pacs002.render_batch(original, statuses, message_id=message_id, at=now, addressing=to)
            return Answer(codes.pop() if len(codes) == 1 else 422, content)
        payments = [r.payment for r in results]
        message_id = pacs002.batch_report_id([p.payment_id for p in payments])
        at = max(pacs002.reported_at(p) for p in payments)
        content = pacs002.render_batch(original, statuses, message_id=message_id, at=at, addressing=to)
        headers = {"Idempotent-Replayed": "true"} if all(r.replayed for r in results) else {}
        return Answer(max(r.http_status for r in results), content, headers, results)

    @staticmethod
    def _refused_by_payments(
        exc: InvalidRequest | NotFound, transfer: CreditTransfer, explicit_key: str | None
    ) -> Refused:
        reason = Reason(pacs002.iso_reason(exc.code), f"{exc.code}: {exc.detail}")
        if exc.code == "IDEMPOTENCY_KEY_REUSED" and explicit_key is None:
            # DU01 DuplicateMessageID: the key was the MsgId, which another message came with
            text = f"GrpHdr/MsgId {transfer.msg_id} came with another message: give each its own MsgId"
            reason = Reason("DU01", text)
        return Refused(
            [reason],
            original=transfer.original or inbound.Original(transfer.msg_id, transfer.message_name),
            transaction=transfer.transaction,
            status=exc.status,
        )

    # pacs.028 --------------------------------------------------------------------------------------

    async def status_request(self, body: bytes, *, principal: Principal) -> Answer:
        """The answer to a pacs.028: the report of the caller's payment it names (200), or "never
        received" (404) when the caller has none such; raises MalformedMessage."""
        now = self._clock()
        to = addressing(principal, self._settings)
        try:
            message = inbound.read(body, inbound.PACS028)
            apphdr.check(message, caller=to.caller, link=to.link)
            asked = pacs028.query(message, caller=to.caller, link=to.link)
        except Refused as refused:
            return refusal(refused, at=now, to=to)
        assert principal.participant_id is not None
        found = await self._find(principal.participant_id, asked, now)
        if not found:
            return refusal(pacs028.not_found(asked), at=now, to=to)
        status_id = asked.status_request_id
        envelope = message.original.envelope
        payments = [await self._paid(principal, sent) for sent in found]
        if len(found) == 1:
            (sent,), (payment,) = found, payments
            content = pacs002.render_status(
                sent, payment, status_id=status_id, envelope=envelope, at=now, addressing=to
            )
            return Answer(200, content, {"Location": f"/v1/payments/{payment.payment_id}"})
        statuses = [
            pacs002.payment_status(sent, payment, status_id=status_id)
            for sent, payment in zip(found, payments, strict=True)
        ]
        original = inbound.Original(found[0].msg_id, found[0].message_name, envelope)
        message_id = pacs002.new_report_id()
        content = pacs002.render_batch(original, statuses, message_id=message_id, at=now, addressing=to)
        return Answer(200, content)

    async def _paid(self, principal: Principal, sent: SentTransaction) -> Payment:
        assert sent.payment_id is not None  # pacs028.pick takes only transactions paid
        return (await self._payments.get_payment(principal, sent.payment_id)).payment

    async def _find(
        self, participant_id: str, asked: pacs028.StatusQuery, now: datetime
    ) -> list[SentTransaction]:
        """The caller's transactions the request names (`pacs028.pick`), looked up by its strongest
        reference. A claim whose request stopped before tying it to its payment (a crash, a
        time-out) is tied here, from its idempotency key."""
        async with self._uow() as tx:
            sent = tx.iso20022
            found: list[SentTransaction] = []
            if asked.clr_sys_ref is not None:
                # a ClrSysRef that is not a payment id without hyphens is none the link gave
                if asked.payment_id is not None:
                    found = await sent.find(participant_id, payment_id=asked.payment_id)
            elif asked.uetr is not None:
                claim = await sent.by_uetr(participant_id, asked.uetr)
                found = [] if claim is None else [claim]
            else:
                assert asked.msg_id is not None  # pacs028.query refuses a request naming none of the three
                found = await sent.find(
                    participant_id,
                    msg_id=asked.msg_id,
                    instr_id=asked.instr_id,
                    end_to_end_id=asked.end_to_end_id,
                    tx_id=asked.tx_id,
                    limit=inbound.MAX_TRANSACTIONS,
                )
            tied: list[SentTransaction] = []
            for candidate in found:
                if candidate.payment_id is None:
                    key = await tx.idempotency.find(
                        scope=participant_id, key=candidate.idempotency_key, now=now
                    )
                    if key is not None and key.payment_id is not None:
                        await sent.paid(candidate.record_id, key.payment_id)
                        candidate = replace(candidate, payment_id=key.payment_id)
                tied.append(candidate)
            if tied != found:
                await tx.commit()
        return pacs028.pick(asked, tied)

"""Accepting a payment (docs/architecture.md#two-phase-settlement, step 1) and answering for it afterwards.

A request checks what needs no lock (debtor, creditor, FX, hours, per-transaction limit), then joins
its worker's batch (`fpslink.settlement.batcher`): acceptance (`fpslink.payments.acceptance`) binds
the keys, uses the quotes, reserves limit usage and prepares the FPS side of the whole batch in one
transaction, and the coordinator settles it. Malformed requests and foreign resources raise before
anything is bound; a key already bound answers as a replay of its payment.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fpslink import logs, metrics
from fpslink.context import Gateway, Principal
from fpslink.directory import service as directory
from fpslink.directory.phones import InvalidProxy, normalize_mobile
from fpslink.errors import InvalidRequest, NotFound
from fpslink.fx.domain import AmountType, Conversion
from fpslink.ibps_client import deadline as ibps_deadline
from fpslink.idempotency import repository as idem_repo
from fpslink.idempotency import service as idempotency
from fpslink.idempotency.repository import KeyRecord
from fpslink.limits import service as limits_service
from fpslink.limits.policy import business_date, check_per_transaction, in_service_hours
from fpslink.money import Currency, Money, round_up, to_minor
from fpslink.participants import repository as participants_repo
from fpslink.participants import service as participants_service
from fpslink.participants.repository import AccountRecord
from fpslink.payments import repository as payments_repo
from fpslink.payments.acceptance import ENDPOINT, Admission, Rejection, accept_many, as_rejected
from fpslink.payments.domain import Payment, TimelineEntry
from fpslink.settlement import coordinator
from fpslink.settlement.batcher import Batcher
from fpslink.settlement.states import FINAL
from fpslink.settlement.wiring import acceptance, settlement
from fpslink.vocabulary import Direction, State, Status, System
from fpslink.webhooks import outbox as webhook_outbox


@dataclass(frozen=True, slots=True)
class PaymentCommand:
    debtor_account_id: str
    creditor_proxy: str | None
    creditor_account_id: str | None
    amount: Decimal
    currency: Currency
    quote_id: str | None
    purpose: str
    remittance_info: str | None
    end_to_end_id: str | None


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment: Payment
    events: Sequence[TimelineEntry]
    http_status: int
    replayed: bool


class _KeyTaken(Exception):
    pass


@dataclass(slots=True)
class _Binding:
    """What binding fixed before the transaction (creditor, FX, limit usage), as far as it got: a
    payment rejected on the way is recorded with the creditor and FX it had already bound."""

    creditor: directory.ResolvedProxy | None = None
    conversion: Conversion | None = None
    limit_minor: int = 0


def _counterparty_region(debtor_system: System) -> str:
    return "CN" if debtor_system is System.FPS else "HK"


async def submit(gw: Gateway, principal: Principal, *, key: str, command: PaymentCommand) -> PaymentResult:
    """Accept and settle a payment, answering within the payment deadline (PENDING if need be)."""
    with ibps_deadline(gw.settings.payment_deadline_s):
        return await _submit(gw, principal, key=key, command=command)


async def _submit(gw: Gateway, principal: Principal, *, key: str, command: PaymentCommand) -> PaymentResult:
    participant_id = participants_service.require_participant(principal)
    now = gw.clock()
    debtor = await _account(gw, command.debtor_account_id)
    if debtor is None or debtor.participant_id != participant_id:
        raise NotFound(f"debtor account {command.debtor_account_id} not found", code="ACCOUNT_NOT_FOUND")
    proxy = _normalise_proxy(command.creditor_proxy, debtor.system)
    fp = _fingerprint(command, proxy)
    # No look-up of the key first: the batch binds it, and a taken key answers as a replay below.
    payment_id = str(uuid.uuid4())
    logs.bind_payment(payment_id)
    direction = limits_service.direction_of(debtor.system)
    amount_type = AmountType.SEND if command.currency is debtor.currency else AmountType.RECEIVE
    binding = _Binding()
    rejection: Rejection | None = None
    try:
        await _bind(gw, participant_id, debtor, direction, command, proxy, binding, now)
    except Rejection as refused:
        rejection = refused
    payment = _payment(
        gw,
        payment_id=payment_id,
        participant_id=participant_id,
        debtor=debtor,
        direction=direction,
        amount_type=amount_type,
        command=command,
        proxy=proxy,
        binding=binding,
        now=now,
    )
    if rejection is not None:
        return await _record_rejection(gw, principal, key, fp, payment, rejection, now)
    assert binding.conversion is not None  # bound without a rejection
    admission = Admission(
        scope=principal.scope, key=key, fingerprint=fp, payment=payment, conversion=binding.conversion
    )
    answered = await pipeline(gw).run(admission, wait_s=gw.settings.payment_deadline_s + ANSWER_GRACE_S)
    if admission.key_taken:
        return await _replay_race(gw, principal, key, fp)
    tracked = admission.tracked
    if not answered or tracked is None or tracked.stale:
        return await _result(gw, payment_id, replayed=False)
    return PaymentResult(tracked.payment, tracked.events, 201 if tracked.state in FINAL else 202, False)


def _payment(
    gw: Gateway,
    *,
    payment_id: str,
    participant_id: str,
    debtor: AccountRecord,
    direction: Direction,
    amount_type: AmountType,
    command: PaymentCommand,
    proxy: str | None,
    binding: _Binding,
    now: datetime,
) -> Payment:
    """The payment as far as it is bound, in state ACCEPTED: built once, whatever comes of it."""
    creditor, conv = binding.creditor, binding.conversion
    if conv is not None:
        source_minor: int | None = conv.source.minor
    else:
        sent = amount_type is AmountType.SEND
        source_minor = to_minor(command.amount, command.currency) if sent else None
    return Payment(
        payment_id=payment_id,
        participant_id=participant_id,
        creditor_participant_id=None if creditor is None else creditor.participant_id,
        direction=direction,
        state=State.ACCEPTED,
        debtor_account_id=debtor.account_id,
        creditor_account_id=command.creditor_account_id if creditor is None else creditor.account_id,
        creditor_proxy=proxy,
        creditor_masked_name=None if creditor is None else creditor.masked_name,
        source_minor=source_minor,
        source_currency=debtor.currency,
        target_minor=None if conv is None else conv.target.minor,
        target_currency=None if creditor is None else creditor.currency,
        amount_type=amount_type,
        mid_rate=None if conv is None else conv.mid_rate,
        rate=None if conv is None else conv.rate,
        spread_bps=None if conv is None else conv.spread_bps,
        quote_id=command.quote_id,
        purpose=command.purpose,
        remittance_info=command.remittance_info,
        end_to_end_id=command.end_to_end_id,
        reason_code=None,
        reason=None,
        business_date=business_date(now),
        limit_minor=binding.limit_minor,
        limit_currency=limits_service.limits_for(gw.settings, direction).currency,
        attempts=0,
        created_at=now,
        updated_at=now,
        decided_at=None,
        settled_at=None,
    )


ANSWER_GRACE_S = 1.0
"""How long past the payment deadline a request waits for its batch's database work."""


def pipeline(gw: Gateway) -> Batcher[Admission]:
    """This process's batcher of payments, made on first use inside the running loop."""
    if gw.batcher is None:
        gw.batcher = Batcher[Admission](
            functools.partial(_settle_batch, gw),
            max_size=gw.settings.batch_max_size,
            max_inflight=gw.settings.batch_max_inflight,
        )
    batcher: Batcher[Admission] = gw.batcher
    return batcher


async def _settle_batch(gw: Gateway, batch: list[Admission]) -> None:
    """Accept, prepare at IBPS, decide, finish: each step once for the whole batch."""
    metrics.BATCH_SIZE.observe(len(batch))
    with metrics.BATCH_SECONDS.time(), ibps_deadline(gw.settings.payment_deadline_s):
        with metrics.BATCH_STEP_SECONDS.labels(step="accept").time():
            accepted = await accept_many(acceptance(gw), batch)
        gw.crash_hook("accepted")
        if accepted:
            await coordinator.drive_many(settlement(gw), accepted)
    unfinished = [
        (a.scope, a.key)
        for a in batch
        if a.tracked is not None and not a.tracked.stale and a.tracked.state not in FINAL
    ]
    if unfinished:
        # replays of a payment left pending answer 202 from now on, not "in progress"
        async with gw.engine.begin() as conn:
            await idem_repo.complete_many(conn, unfinished, now=gw.clock())


ACCOUNT_CACHE_MAX = 100_000


async def _account(gw: Gateway, account_id: str) -> AccountRecord | None:
    """The account, from this process's cache when seen before (its fields never change)."""
    found: AccountRecord | None = gw.accounts.get(account_id)
    if found is None:
        async with gw.engine.connect() as conn:
            found = await participants_repo.account(conn, account_id)
        if found is not None:
            if len(gw.accounts) >= ACCOUNT_CACHE_MAX:
                gw.accounts.clear()
            gw.accounts[account_id] = found
    return found


def _normalise_proxy(raw: str | None, debtor_system: System) -> str | None:
    if raw is None:
        return None
    try:
        return normalize_mobile(raw, _counterparty_region(debtor_system))
    except InvalidProxy as exc:
        raise InvalidRequest(str(exc), code="INVALID_PROXY") from exc


def _fingerprint(command: PaymentCommand, proxy: str | None) -> str:
    body = {
        "debtor_account_id": command.debtor_account_id,
        "creditor": {"proxy_value": proxy} if proxy else {"account_id": command.creditor_account_id},
        "amount": f"{command.amount:f}",
        "currency": command.currency.value,
        "quote_id": command.quote_id,
        "purpose": command.purpose,
        "remittance_info": command.remittance_info,
        "end_to_end_id": command.end_to_end_id,
    }
    return idempotency.fingerprint("POST", "/v1/payments", body)


async def _bind(
    gw: Gateway,
    participant_id: str,
    debtor: AccountRecord,
    direction: Direction,
    command: PaymentCommand,
    proxy: str | None,
    binding: _Binding,
    now: datetime,
) -> None:
    """Every check that needs no lock: hours, creditor, currency, quote, per-transaction limit.

    Fills `binding` as it goes, so that a `Rejection` leaves in it what was bound before.
    """
    if gw.ibps.circuit_open:
        # nothing is held for a payment that cannot reach IBPS now
        raise Rejection("AB06", "IBPS is not answering (circuit open); retry in a few seconds")
    if direction is Direction.SOUTHBOUND and not in_service_hours(now, gw.settings.southbound_window):
        raise Rejection(
            "OUTSIDE_SERVICE_HOURS",
            f"southbound payments run {gw.settings.southbound_hours} (UTC+8)",
        )
    creditor = await _resolve_creditor(gw, proxy, command.creditor_account_id)
    binding.creditor = creditor
    if creditor.system is debtor.system:
        raise Rejection(
            "NOT_CROSS_BORDER",
            f"the creditor is in {creditor.system.value} like the debtor; "
            "this link carries only FPS <-> IBPS payments",
        )
    if command.currency is debtor.currency:
        amount_type = AmountType.SEND
    elif command.currency is creditor.currency:
        amount_type = AmountType.RECEIVE
    else:
        raise InvalidRequest(
            f"currency {command.currency.value} is neither the debtor account's "
            f"({debtor.currency.value}) nor the creditor account's ({creditor.currency.value})",
            code="CURRENCY_MISMATCH",
        )
    conversion = await _conversion(gw, participant_id, debtor, creditor, command, amount_type, now)
    binding.conversion = conversion
    limits = limits_service.limits_for(gw.settings, direction)
    usage = _limit_usage(gw, conversion, limits.currency)
    if check_per_transaction(limits, usage.amount) is not None:
        raise Rejection(
            "AM02",
            f"{usage} exceeds the per-transaction limit of {limits.per_transaction} {limits.currency.value}",
        )
    binding.limit_minor = usage.minor


async def _resolve_creditor(
    gw: Gateway, proxy: str | None, account_id: str | None
) -> directory.ResolvedProxy:
    if proxy is not None:
        try:
            found = await gw.directory.resolve(proxy)
        except directory.ProxyLookupUnavailable as exc:
            raise Rejection("AB06", f"IBPS did not answer the proxy look-up ({exc})") from exc
        if found is None:
            raise Rejection("BE23", f"no account is registered for {proxy}")
        return found
    assert account_id is not None  # the request schema requires one of the two
    account = await _account(gw, account_id)
    if account is None:
        raise Rejection("AC01", f"creditor account {account_id} does not exist")
    return directory.ResolvedProxy(
        proxy_value="",
        account_id=account.account_id,
        participant_id=account.participant_id,
        system=account.system,
        currency=account.currency,
        holder_name=account.holder_name,
    )


async def _conversion(
    gw: Gateway,
    participant_id: str,
    debtor: AccountRecord,
    creditor: directory.ResolvedProxy,
    command: PaymentCommand,
    amount_type: AmountType,
    now: datetime,
) -> Conversion:
    if command.quote_id is None:
        return gw.fx.fresh_conversion(
            source=debtor.currency,
            target=creditor.currency,
            amount=command.amount,
            amount_type=amount_type,
        )
    quote = await gw.fx.get_quote(participant_id=participant_id, quote_id=command.quote_id)
    conv = quote.conversion
    fixed = conv.source if conv.amount_type is AmountType.SEND else conv.target
    if (
        conv.source.currency is not debtor.currency
        or conv.target.currency is not creditor.currency
        or conv.amount_type is not amount_type
        or fixed.amount != command.amount
    ):
        raise Rejection(
            "QUOTE_MISMATCH",
            f"quote {quote.quote_id} is for {conv.amount_type.value} {fixed} "
            f"({conv.source.currency.value}->{conv.target.currency.value}); the payment is for "
            f"{amount_type.value} {command.amount} {command.currency.value} "
            f"({debtor.currency.value}->{creditor.currency.value})",
        )
    if quote.payment_id is not None:
        raise Rejection("QUOTE_USED", f"quote {quote.quote_id} was already used by a payment")
    if quote.expires_at <= now:
        raise Rejection("QUOTE_EXPIRED", f"quote {quote.quote_id} expired at {quote.expires_at}")
    return conv


def _limit_usage(gw: Gateway, conversion: Conversion, currency: Currency) -> Money:
    """The payment's amount in the limit's currency, at the payment's bound rates
    (docs/architecture.md#rulings, R5)."""
    if conversion.source.currency is currency:
        return conversion.source
    if conversion.target.currency is currency:
        return conversion.target
    mid = gw.rates.mid(conversion.source.currency, currency)
    return Money(round_up(conversion.source.amount * mid, currency), currency)


async def _record_rejection(
    gw: Gateway,
    principal: Principal,
    key: str,
    fp: str,
    payment: Payment,
    rejection: Rejection,
    now: datetime,
) -> PaymentResult:
    payment_id = payment.payment_id
    async with gw.engine.begin() as conn:
        if not await idem_repo.bind(
            conn,
            scope=principal.scope,
            key=key,
            endpoint=ENDPOINT,
            fingerprint=fp,
            payment_id=payment_id,
            now=now,
            lease_until=now,
            expires_at=now + timedelta(hours=gw.settings.idempotency_ttl_h),
            completed=True,
        ):
            await conn.rollback()
            return await _replay_race(gw, principal, key, fp)
        await payments_repo.insert_payment(conn, as_rejected(payment, rejection, now))
        await payments_repo.add_events(
            conn, payment_id, now, [("REJECTED", f"{rejection.code}: {rejection.reason}")]
        )
        await webhook_outbox.payment_changed(conn, payment_id, now)
    return await _result(gw, payment_id, replayed=False)


async def _replay_race(gw: Gateway, principal: Principal, key: str, fp: str) -> PaymentResult:
    """Another request bound the key while this one was working: answer as a replay of it."""
    now = gw.clock()
    async with gw.engine.connect() as conn:
        existing = await idem_repo.find(conn, scope=principal.scope, key=key, now=now)
    if existing is None:
        raise idempotency.in_progress()
    return await _replay(gw, existing, fp, now)


async def _replay(gw: Gateway, existing: KeyRecord, fp: str, now: datetime) -> PaymentResult:
    if existing.endpoint != ENDPOINT or existing.fingerprint != fp:
        raise idempotency.reused()
    if existing.payment_id is None:
        raise idempotency.in_progress()
    async with gw.engine.connect() as conn:
        payment = await payments_repo.get(conn, existing.payment_id)
    if payment is None:
        raise idempotency.in_progress()
    final = payment.state in FINAL
    if not final and existing.completed_at is None and existing.lease_until > now:
        raise idempotency.in_progress()
    return await _result(gw, existing.payment_id, replayed=True)


async def _result(gw: Gateway, payment_id: str, *, replayed: bool) -> PaymentResult:
    async with gw.engine.connect() as conn:
        payment = await payments_repo.get(conn, payment_id)
        events = await payments_repo.events_of(conn, payment_id)
    if payment is None:
        raise NotFound(f"payment {payment_id} not found", code="PAYMENT_NOT_FOUND")
    status = 201 if payment.state in FINAL else 202
    return PaymentResult(payment, events, status, replayed)


async def get_payment(gw: Gateway, principal: Principal, payment_id: str) -> PaymentResult:
    result = await _result(gw, payment_id, replayed=False)
    if not visible_to(principal, result.payment):
        raise NotFound(f"payment {payment_id} not found", code="PAYMENT_NOT_FOUND")
    return result


def visible_to(principal: Principal, payment: Payment) -> bool:
    return principal.is_operator or principal.participant_id in (
        payment.participant_id,
        payment.creditor_participant_id,
    )


STATES_OF_STATUS = {
    Status.PENDING: [State.ACCEPTED, State.COMMITTING, State.ABORTING],
    Status.SETTLED: [State.SETTLED],
    Status.REJECTED: [State.REJECTED],
}


async def list_payments(
    gw: Gateway,
    principal: Principal,
    *,
    status: Status | None,
    direction: Direction | None,
    created_from: datetime | None,
    created_to: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Payment]:
    async with gw.engine.connect() as conn:
        return await payments_repo.page(
            conn,
            participant_id=principal.participant_id,
            states=STATES_OF_STATUS[status] if status else None,
            direction=direction.value if direction else None,
            created_from=created_from,
            created_to=created_to,
            after=after,
            limit=limit,
        )

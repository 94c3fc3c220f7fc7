"""Accepting a payment (docs/architecture.md#two-phase-settlement, step 1) and answering for it afterwards.

A request checks what needs no lock (debtor, creditor, FX, hours, per-transaction limit), then joins
its worker's batch (`fpslink.settlement.batcher`): acceptance (`fpslink.payments.acceptance`) binds
the keys, uses the quotes, reserves limit usage and prepares the FPS side of the whole batch in one
transaction, and the coordinator settles it. Malformed requests and foreign resources raise before
anything is bound; a key already bound answers as a replay of its payment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from fpslink import logs, metrics
from fpslink.circuit import acting_for
from fpslink.config import Settings
from fpslink.db import database_unavailable
from fpslink.directory import service as directory
from fpslink.directory.phones import InvalidProxy, normalize_mobile
from fpslink.errors import InvalidRequest, NotFound
from fpslink.fx.domain import AmountType, Conversion, RateSheet
from fpslink.fx.repository import Quote
from fpslink.ibps_client import deadline as ibps_deadline
from fpslink.idempotency import service as idempotency
from fpslink.idempotency.repository import KeyRecord
from fpslink.iso20022.details import Details
from fpslink.limits import service as limits_service
from fpslink.limits.policy import business_date, check_per_transaction, in_service_hours
from fpslink.money import Currency, Money, round_up, to_minor
from fpslink.participants import service as participants_service
from fpslink.participants.repository import AccountRecord
from fpslink.payments.acceptance import ENDPOINT, Acceptance, Admission, Rejection, accept_many, as_rejected
from fpslink.payments.domain import Payment, TimelineEntry
from fpslink.payments.store import KeyClaim, PaymentPage, PaymentsStore
from fpslink.principal import Principal
from fpslink.settlement import coordinator
from fpslink.settlement.batcher import Batcher
from fpslink.settlement.coordinator import Settlement
from fpslink.settlement.states import FINAL
from fpslink.vocabulary import Direction, Purpose, State, Status


@dataclass(frozen=True, slots=True)
class PaymentCommand:
    debtor_account_id: str
    creditor_proxy: str | None
    creditor_account_id: str | None
    amount: Decimal
    currency: Currency
    quote_id: str | None
    purpose: Purpose
    remittance_info: str | None
    end_to_end_id: str | None
    details: Details | None = None
    """What a pacs.008 transaction was sent with beyond the payment: written with the payment, given
    to IBPS with its prepare (None for a JSON payment)."""


@dataclass(frozen=True, slots=True)
class PaymentResult:
    payment: Payment
    events: Sequence[TimelineEntry]
    http_status: int
    replayed: bool
    details: Details | None = None
    """What it was sent with as a pacs.008, when read back (`get_payment`)."""


@dataclass(slots=True)
class _Binding:
    """What binding fixed before the transaction (creditor, FX, limit usage), as far as it got: a
    payment rejected on the way is recorded with the creditor and FX it had already bound."""

    creditor: directory.ResolvedProxy | None = None
    conversion: Conversion | None = None
    limit_minor: int = 0


class Directory(Protocol):
    """The proxy directory as the payment path asks it (`directory.service.DirectoryService`)."""

    async def resolve(self, e164: str) -> directory.ResolvedProxy | None: ...


class Fx(Protocol):
    """FX as the payment path uses it (`fx.service.FxService`)."""

    @property
    def rates(self) -> RateSheet: ...

    def fresh_conversion(
        self, *, source: Currency, target: Currency, amount: Decimal, amount_type: AmountType
    ) -> Conversion: ...

    async def get_quote(self, *, participant_id: str, quote_id: str) -> Quote: ...


class Circuit(Protocol):
    """Whether IBPS is answering a bank's calls (`ibps_client.IbpsClient`)."""

    def circuit_open_for(self, participant_id: str | None) -> bool: ...


ANSWER_GRACE_S = 1.0
"""How long past the payment deadline a request waits for its batch's database work."""

ACCOUNT_CACHE_MAX = 100_000


class PaymentsService:
    """Submitting a payment, and answering for it afterwards.

    Built once per process with what it uses: its store, the directory, FX, whether IBPS answers,
    acceptance and settlement (each with its own store), the settings, the clock and the crash hook.
    It owns the process's batcher (made on first use, inside the running loop) and its cache of
    accounts, whose owner, system and currency never change.
    """

    def __init__(
        self,
        store: PaymentsStore,
        *,
        directory: Directory,
        fx: Fx,
        ibps: Circuit,
        acceptance: Acceptance,
        settlement: Settlement,
        settings: Settings,
        clock: Callable[[], datetime],
        crash_hook: Callable[[str], None],
    ) -> None:
        self._store = store
        self._directory = directory
        self._fx = fx
        self._ibps = ibps
        self._acceptance = acceptance
        self._settlement = settlement
        self._settings = settings
        self._clock = clock
        self._crash_hook = crash_hook
        self._accounts: dict[str, AccountRecord] = {}
        self.batcher: Batcher[Admission] | None = None
        """The process's batcher of payments, once the first payment made it."""

    # submitting ----------------------------------------------------------------------------------

    async def submit(
        self, principal: Principal, *, key: str, command: PaymentCommand, reject: Rejection | None = None
    ) -> PaymentResult:
        """Accept and settle a payment, answering within the payment deadline (PENDING if need be).

        Its IBPS calls (the creditor's look-up) count towards the bank's own circuit. `reject`, which
        only a certification run passes, records the payment REJECTED with that code once it is bound,
        as a rejection of its own would be (fpslink.certification).
        """
        with ibps_deadline(self._settings.payment_deadline_s), acting_for(principal.participant_id):
            return await self._submit(principal, key=key, command=command, reject=reject)

    async def _submit(
        self, principal: Principal, *, key: str, command: PaymentCommand, reject: Rejection | None
    ) -> PaymentResult:
        participant_id = participants_service.require_participant(principal)
        now = self._clock()
        debtor = await self.account(command.debtor_account_id)
        if debtor is None or debtor.participant_id != participant_id:
            raise NotFound(f"debtor account {command.debtor_account_id} not found", code="ACCOUNT_NOT_FOUND")
        proxy = _normalise_proxy(command.creditor_proxy)
        fp = _fingerprint(command, proxy)
        # No look-up of the key first: the batch binds it, and a taken key answers as a replay below.
        payment_id = str(uuid.uuid4())
        logs.bind_payment(payment_id)
        direction = limits_service.direction_of(debtor.system)
        amount_type = AmountType.SEND if command.currency is debtor.currency else AmountType.RECEIVE
        binding = _Binding()
        rejection: Rejection | None = None
        try:
            await self._bind(participant_id, debtor, direction, command, proxy, binding, now)
        except Rejection as refused:
            rejection = refused
        else:
            rejection = reject
        payment = _payment(
            self._settings,
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
            return await self._record_rejection(principal, key, fp, payment, rejection, command.details, now)
        assert binding.conversion is not None  # bound without a rejection
        admission = Admission(
            scope=principal.scope,
            key=key,
            fingerprint=fp,
            payment=payment,
            conversion=binding.conversion,
            details=command.details,
        )
        wait_s = self._settings.payment_deadline_s + ANSWER_GRACE_S
        answered = await self.pipeline().run(admission, wait_s=wait_s)
        if admission.key_taken:
            return await self._replay_race(principal, key, fp)
        tracked = admission.tracked
        if not answered or tracked is None or tracked.stale:
            return await self._result(payment_id, replayed=False)
        return PaymentResult(tracked.payment, tracked.events, 201 if tracked.state in FINAL else 202, False)

    def pipeline(self) -> Batcher[Admission]:
        """This process's batcher of payments, made on first use inside the running loop."""
        if self.batcher is None:
            self.batcher = Batcher[Admission](
                self._settle_batch,
                max_size=self._settings.batch_max_size,
                max_inflight=self._settings.batch_max_inflight,
                outage=database_unavailable,
            )
        return self.batcher

    async def _settle_batch(self, batch: list[Admission]) -> None:
        """Accept, prepare at IBPS, decide, finish: each step once for the whole batch."""
        metrics.BATCH_SIZE.observe(len(batch))
        with metrics.BATCH_SECONDS.time(), ibps_deadline(self._settings.payment_deadline_s):
            with metrics.BATCH_STEP_SECONDS.labels(step="accept").time():
                accepted = await accept_many(self._acceptance, batch)
            self._crash_hook("accepted")
            if accepted:
                await coordinator.drive_many(self._settlement, accepted)
        unfinished = [
            (a.scope, a.key)
            for a in batch
            if a.tracked is not None and not a.tracked.stale and a.tracked.state not in FINAL
        ]
        if unfinished:
            # replays of a payment left pending answer 202 from now on, not "in progress"
            await self._store.complete_keys(unfinished, self._clock())

    async def account(self, account_id: str) -> AccountRecord | None:
        """The account, from this process's cache when seen before (its fields never change)."""
        found = self._accounts.get(account_id)
        if found is None:
            found = await self._store.account(account_id)
            if found is not None:
                if len(self._accounts) >= ACCOUNT_CACHE_MAX:
                    self._accounts.clear()
                self._accounts[account_id] = found
        return found

    async def _bind(
        self,
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
        settings = self._settings
        if self._ibps.circuit_open_for(participant_id):
            # nothing is held for a payment that cannot reach IBPS now
            raise Rejection("AB06", "IBPS is not answering (circuit open); retry in a few seconds")
        if direction is Direction.SOUTHBOUND and not in_service_hours(now, settings.southbound_window):
            raise Rejection(
                "OUTSIDE_SERVICE_HOURS",
                f"southbound payments run {settings.southbound_hours} (UTC+8)",
            )
        creditor = await self._resolve_creditor(proxy, command.creditor_account_id)
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
        conversion = await self._conversion(participant_id, debtor, creditor, command, amount_type, now)
        binding.conversion = conversion
        limits = limits_service.limits_for(settings, direction)
        usage = _limit_usage(self._fx.rates, conversion, limits.currency)
        if check_per_transaction(limits, usage.amount) is not None:
            raise Rejection(
                "AM02",
                f"{usage} exceeds the per-transaction limit of {limits.per_transaction} "
                f"{limits.currency.value}",
            )
        binding.limit_minor = usage.minor

    async def _resolve_creditor(self, proxy: str | None, account_id: str | None) -> directory.ResolvedProxy:
        if proxy is not None:
            try:
                found = await self._directory.resolve(proxy)
            except directory.ProxyLookupUnavailable as exc:
                raise Rejection("AB06", f"IBPS did not answer the proxy look-up ({exc})") from exc
            if found is None:
                raise Rejection("BE23", f"no account is registered for {proxy}")
            return found
        assert account_id is not None  # the request schema requires one of the two
        account = await self.account(account_id)
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
        self,
        participant_id: str,
        debtor: AccountRecord,
        creditor: directory.ResolvedProxy,
        command: PaymentCommand,
        amount_type: AmountType,
        now: datetime,
    ) -> Conversion:
        if command.quote_id is None:
            return self._fx.fresh_conversion(
                source=debtor.currency,
                target=creditor.currency,
                amount=command.amount,
                amount_type=amount_type,
            )
        quote = await self._fx.get_quote(participant_id=participant_id, quote_id=command.quote_id)
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

    async def _record_rejection(
        self,
        principal: Principal,
        key: str,
        fp: str,
        payment: Payment,
        rejection: Rejection,
        details: Details | None,
        now: datetime,
    ) -> PaymentResult:
        claim = KeyClaim(
            scope=principal.scope,
            key=key,
            endpoint=ENDPOINT,
            fingerprint=fp,
            payment_id=payment.payment_id,
            lease_until=now,
            expires_at=now + timedelta(hours=self._settings.idempotency_ttl_h),
        )
        rejected = as_rejected(payment, rejection, now)
        event = TimelineEntry(now, "REJECTED", f"{rejection.code}: {rejection.reason}")
        if not await self._store.record_rejected(claim, rejected, event, details):
            return await self._replay_race(principal, key, fp)
        return await self._result(payment.payment_id, replayed=False)

    # answering -----------------------------------------------------------------------------------

    async def _replay_race(self, principal: Principal, key: str, fp: str) -> PaymentResult:
        """Another request bound the key while this one was working: answer as a replay of it."""
        now = self._clock()
        existing = await self._store.find_key(principal.scope, key, now)
        if existing is None:
            raise idempotency.in_progress()
        return await self._replay(existing, fp, now)

    async def _replay(self, existing: KeyRecord, fp: str, now: datetime) -> PaymentResult:
        if existing.endpoint != ENDPOINT or existing.fingerprint != fp:
            raise idempotency.reused()
        if existing.payment_id is None:
            raise idempotency.in_progress()
        payment = await self._store.payment(existing.payment_id)
        if payment is None:
            raise idempotency.in_progress()
        final = payment.state in FINAL
        if not final and existing.completed_at is None and existing.lease_until > now:
            raise idempotency.in_progress()
        return await self._result(existing.payment_id, replayed=True)

    async def _result(self, payment_id: str, *, replayed: bool) -> PaymentResult:
        found = await self._store.payment_with_timeline(payment_id)
        if found is None:
            raise NotFound(f"payment {payment_id} not found", code="PAYMENT_NOT_FOUND")
        payment, events, details = found
        return PaymentResult(payment, events, 201 if payment.state in FINAL else 202, replayed, details)

    async def get_payment(self, principal: Principal, payment_id: str) -> PaymentResult:
        result = await self._result(payment_id, replayed=False)
        if not visible_to(principal, result.payment):
            raise NotFound(f"payment {payment_id} not found", code="PAYMENT_NOT_FOUND")
        return result

    async def list_payments(
        self,
        principal: Principal,
        *,
        status: Status | None,
        direction: Direction | None,
        created_from: datetime | None,
        created_to: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Payment]:
        return await self._store.page(
            PaymentPage(
                participant_id=principal.participant_id,
                states=STATES_OF_STATUS[status] if status else None,
                direction=direction.value if direction else None,
                created_from=created_from,
                created_to=created_to,
                after=after,
                limit=limit,
            )
        )


def _payment(
    settings: Settings,
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
        limit_currency=limits_service.limits_for(settings, direction).currency,
        attempts=0,
        created_at=now,
        updated_at=now,
        decided_at=None,
        settled_at=None,
    )


def _normalise_proxy(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return normalize_mobile(raw)
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


def _limit_usage(rates: RateSheet, conversion: Conversion, currency: Currency) -> Money:
    """The payment's amount in the limit's currency, at the payment's bound rates
    (docs/architecture.md#rulings, R5)."""
    if conversion.source.currency is currency:
        return conversion.source
    if conversion.target.currency is currency:
        return conversion.target
    mid = rates.mid(conversion.source.currency, currency)
    return Money(round_up(conversion.source.amount * mid, currency), currency)


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

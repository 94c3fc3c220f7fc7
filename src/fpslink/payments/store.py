"""What submitting and reading payments needs of the database, outside the batch.

The batch's own transactions are acceptance's (`payments.acceptance.AcceptanceStore`) and
settlement's (`settlement.store.SettlementStore`); this store is the rest of the payment service:
accounts, a payment rejected before it reached a batch, idempotency keys, and reads. Each method is
one atomic step; `PgPaymentsStore` is the one on PostgreSQL, and the service's unit tests use an
in-memory one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fpslink.idempotency import repository as idem_repo
from fpslink.idempotency.repository import KeyRecord
from fpslink.iso20022.details import Details
from fpslink.participants.repository import AccountRecord
from fpslink.payments import repository as payments_repo
from fpslink.payments.domain import Payment, TimelineEntry
from fpslink.uow import UnitsOfWork
from fpslink.vocabulary import State
from fpslink.webhooks import outbox as webhook_outbox


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """An idempotency key claimed for a payment until `lease_until` (or for good, `completed`)."""

    scope: str
    key: str
    endpoint: str
    fingerprint: str
    payment_id: str
    lease_until: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentPage:
    """What a page of payments is filtered on: whose, which states, direction and creation time,
    after which (created_at, payment_id), newest first."""

    participant_id: str | None
    states: Sequence[State] | None
    direction: str | None
    created_from: datetime | None
    created_to: datetime | None
    after: tuple[datetime, str] | None
    limit: int


class PaymentsStore(Protocol):
    async def account(self, account_id: str) -> AccountRecord | None:
        """The account as the directory holds it, or None."""
        ...

    async def record_rejected(
        self, claim: KeyClaim, payment: Payment, event: TimelineEntry, details: Details | None
    ) -> bool:
        """Bind the key (completed) to a payment rejected before its batch, write the payment, its
        timeline entry and what it was sent with, and queue its webhooks, all or nothing; False
        (nothing written) if the key is taken."""
        ...

    async def find_key(self, scope: str, key: str, now: datetime) -> KeyRecord | None:
        """The key's record, unless it has expired."""
        ...

    async def complete_keys(self, idents: Sequence[tuple[str, str]], now: datetime) -> None:
        """Mark keys completed: their payments are decided and replays answer from the payment."""
        ...

    async def payment(self, payment_id: str) -> Payment | None: ...

    async def payment_with_timeline(
        self, payment_id: str
    ) -> tuple[Payment, list[TimelineEntry], Details | None] | None:
        """The payment, its timeline and what it was sent with as a pacs.008, read together."""
        ...

    async def page(self, page: PaymentPage) -> list[Payment]: ...


class PgPaymentsStore:
    """The payment service's store on PostgreSQL, each method on a unit of work of its own."""

    def __init__(self, uow: UnitsOfWork) -> None:
        self._uow = uow

    async def account(self, account_id: str) -> AccountRecord | None:
        async with self._uow() as tx:
            return await tx.participants.account(account_id)

    async def record_rejected(
        self, claim: KeyClaim, payment: Payment, event: TimelineEntry, details: Details | None
    ) -> bool:
        async with self._uow() as tx:
            if not await tx.idempotency.bind(
                scope=claim.scope,
                key=claim.key,
                endpoint=claim.endpoint,
                fingerprint=claim.fingerprint,
                payment_id=claim.payment_id,
                now=event.at,
                lease_until=claim.lease_until,
                expires_at=claim.expires_at,
                completed=True,
            ):
                return False  # nothing written: the unit of work rolls back
            await payments_repo.insert_payment(tx.conn, payment)
            await payments_repo.add_events(
                tx.conn, payment.payment_id, event.at, [(event.event, event.detail)]
            )
            if details is not None:
                await tx.iso20022.add_details([(payment.payment_id, details)])
            await webhook_outbox.payment_changed(tx.conn, payment.payment_id, event.at)
            await tx.commit()
        return True

    async def find_key(self, scope: str, key: str, now: datetime) -> KeyRecord | None:
        async with self._uow() as tx:
            return await tx.idempotency.find(scope=scope, key=key, now=now)

    async def complete_keys(self, idents: Sequence[tuple[str, str]], now: datetime) -> None:
        async with self._uow() as tx:
            await idem_repo.complete_many(tx.conn, idents, now=now)
            await tx.commit()

    async def payment(self, payment_id: str) -> Payment | None:
        async with self._uow() as tx:
            return await payments_repo.get(tx.conn, payment_id)

    async def payment_with_timeline(
        self, payment_id: str
    ) -> tuple[Payment, list[TimelineEntry], Details | None] | None:
        async with self._uow() as tx:
            payment = await payments_repo.get(tx.conn, payment_id)
            if payment is None:
                return None
            events = await payments_repo.events_of(tx.conn, payment_id)
            return payment, events, await tx.iso20022.details(payment_id)

    async def page(self, page: PaymentPage) -> list[Payment]:
        async with self._uow() as tx:
            return await payments_repo.page(
                tx.conn,
                participant_id=page.participant_id,
                states=page.states,
                direction=page.direction,
                created_from=page.created_from,
                created_to=page.created_to,
                after=page.after,
                limit=page.limit,
            )

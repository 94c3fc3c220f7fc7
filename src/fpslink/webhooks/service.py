"""Use cases: register, list and remove webhooks; read the delivery log; deliver due events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from fpslink import metrics, paging
from fpslink.config import Settings
from fpslink.db import Clock, database_unavailable, one_line
from fpslink.errors import Conflict, InvalidRequest, NotFound
from fpslink.iso20022.details import Details
from fpslink.participants.service import require_participant
from fpslink.payments import repository as payments_repo
from fpslink.payments.domain import Payment, decimal_text
from fpslink.principal import Principal
from fpslink.settlement.states import status_of
from fpslink.uow import UnitsOfWork
from fpslink.webhooks import policy, probes, signing, targets

log = logging.getLogger("fpslink.webhooks")
USER_AGENT = "fpslink-webhooks/1"
STATUS_OF_OUTCOME = {"delivered": "DELIVERED", "failed": "FAILED", "cancelled": "CANCELLED"}


@dataclass(frozen=True, slots=True)
class Registered:
    webhook_id: str
    url: str
    secret: str
    created_at: datetime


class WebhooksService:
    """A bank's webhooks and its delivery log; built once per process (`fpslink.context.Gateway`)."""

    def __init__(
        self, uow: UnitsOfWork, *, clock: Clock, settings: Settings, resolve: targets.Resolver
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings
        self._resolve = resolve

    async def register(self, principal: Principal, *, url: str) -> Registered:
        """A new webhook, once its URL is allowed and its host resolves to addresses it may reach
        (`webhooks.policy`); each delivery checks again."""
        participant_id = require_participant(principal)
        settings = self._settings
        try:
            await targets.pin(url, rules(settings), self._resolve)
        except (policy.UrlNotAllowed, targets.Unresolvable) as exc:
            raise InvalidRequest(str(exc), code="WEBHOOK_URL_NOT_ALLOWED") from exc
        now = self._clock()
        registered = Registered(
            webhook_id=str(uuid.uuid4()), url=url, secret="whsec_" + secrets.token_hex(24), created_at=now
        )
        async with self._uow() as tx:
            if await tx.webhooks.count_active(participant_id) >= settings.webhooks_per_participant:
                raise Conflict(
                    f"a bank may register at most {settings.webhooks_per_participant} webhooks; "
                    "delete one first",
                    code="WEBHOOK_LIMIT_REACHED",
                )
            await tx.webhooks.insert_webhook(
                {
                    "webhook_id": registered.webhook_id,
                    "participant_id": participant_id,
                    "url": url,
                    "secret": registered.secret,
                    "active": True,
                    "created_at": now,
                }
            )
            await tx.commit()
        return registered

    async def list_webhooks(self, principal: Principal) -> Sequence[dict[str, Any]]:
        participant_id = require_participant(principal)
        async with self._uow() as tx:
            return await tx.webhooks.active_webhooks(participant_id)

    async def remove(self, principal: Principal, webhook_id: str) -> None:
        participant_id = require_participant(principal)
        async with self._uow() as tx:
            if not await tx.webhooks.deactivate(participant_id=participant_id, webhook_id=webhook_id):
                raise NotFound(f"webhook {webhook_id} not found", code="WEBHOOK_NOT_FOUND")
            await tx.commit()

    async def deliveries(
        self, principal: Principal, *, cursor: str | None, limit: int
    ) -> tuple[Sequence[dict[str, Any]], str | None]:
        """A page of this bank's delivery log, newest first, and the cursor of the next page."""
        participant_id = require_participant(principal)
        after = paging.decode_cursor(cursor) if cursor else None
        async with self._uow() as tx:
            rows = await tx.webhooks.deliveries_page(
                participant_id=participant_id, after=after, limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more and rows else None
        return rows, paging.encode_cursor(last["created_at"], last["delivery_id"]) if last else None


def payload(
    delivery: dict[str, Any], payment: Payment, event_id: str | None = None, details: Details | None = None
) -> bytes:
    """The event body: stable across attempts, because a final payment no longer changes (nor what
    it was sent with, written with it). A payment sent as a pacs.008 carries `iso20022`."""

    target_currency = payment.target_currency
    about: dict[str, Any] = {
        "payment_id": payment.payment_id,
        "end_to_end_id": payment.end_to_end_id,
        "status": status_of(payment.state).value,
        "direction": payment.direction.value,
        "debtor_account_id": payment.debtor_account_id,
        "creditor_account_id": payment.creditor_account_id,
        "source_amount": payment.source_text() if payment.moved else None,
        "source_currency": payment.source_currency.value,
        "target_amount": payment.target_text() if payment.moved else None,
        "target_currency": None if target_currency is None else target_currency.value,
        "quoted_source_amount": payment.source_text(),
        "quoted_target_amount": payment.target_text(),
        "rate": decimal_text(payment.rate),
        "reason_code": payment.reason_code,
        "reason": payment.reason,
        "created_at": payment.created_at.isoformat(),
        "settled_at": payment.settled_at.isoformat() if payment.settled_at else None,
    }
    if details is not None:
        about["iso20022"] = details.public()
    body = {
        "event_id": event_id or delivery["delivery_id"],
        "event": delivery["event"],
        "created_at": delivery["created_at"].isoformat(),
        "payment": about,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def run_payload(delivery: dict[str, Any], event_id: str) -> bytes:
    """A certification run's event: its summary as queued (`outbox.queue_run_event`)."""
    body = {
        "event_id": event_id,
        "event": delivery["event"],
        "created_at": delivery["created_at"].isoformat(),
        "certification": json.loads(delivery["payload"]),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def rules(settings: Settings) -> policy.Rules:
    """The targets the settings allow, read at each use (FPSLINK_WEBHOOK_ALLOW_HOSTS and _ALLOW)."""
    return policy.rules_of(settings.webhook_allow_hosts, settings.webhook_allow)


class WebhookDispatcher:
    """Delivers the outbox at least once, signed, with back-off: each gateway worker runs one.

    Deliveries fall due on the sandbox's time (`clock`), so moving the test clock brings a retry
    forward as waiting would; the signature's `t=` is the wall clock's (`wall`), which a receiver
    checks against its own.
    """

    def __init__(
        self, uow: UnitsOfWork, *, clock: Clock, wall: Clock, settings: Settings, resolve: targets.Resolver
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._wall = wall
        self._settings = settings
        self._resolve = resolve

    async def dispatch_once(self, client: httpx.AsyncClient) -> Counter[str]:
        """Claim the due deliveries (compare-and-set) and attempt each once; returns outcomes."""
        settings = self._settings
        now = self._clock()
        outcomes: Counter[str] = Counter()
        async with self._uow() as tx:
            candidates = await tx.webhooks.due(now=now, limit=settings.webhook_batch_size)
        lease = timedelta(seconds=settings.webhook_timeout_s * 2 + 5)
        claimed: list[tuple[str, int]] = []
        for row in candidates:
            async with self._uow() as tx:
                if await tx.webhooks.claim(
                    delivery_id=row["delivery_id"],
                    seen_next_attempt_at=row["next_attempt_at"],
                    attempts=row["attempts"],
                    lease_until=now + lease,
                ):
                    await tx.commit()
                    claimed.append((row["delivery_id"], row["attempts"] + 1))
        results = await asyncio.gather(*(self._attempt(client, d_id, n) for d_id, n in claimed))
        outcomes.update(results)
        return outcomes

    async def _attempt(self, client: httpx.AsyncClient, delivery_id: str, attempts: int) -> str:
        settings = self._settings
        async with self._uow() as tx:
            target = await tx.webhooks.attempt_target(delivery_id)
            payment = None
            details = None
            if target is not None and target["payment_id"] is not None:
                payment = await payments_repo.get(tx.conn, target["payment_id"])
                details = await tx.iso20022.details(target["payment_id"])
        if target is None or (payment is None and target["payload"] is None):
            return "missing"
        probe = None if target["probe"] is None else probes.Probe(target["probe"])
        status_code: int | None
        error: str | None
        if not target["active"]:
            outcome, status_code, error = "cancelled", None, "the webhook was deleted"
        else:
            event_id = probes.event_id(delivery_id, probe)
            body = (
                payload(target, payment, event_id, details)
                if payment is not None
                else run_payload(target, event_id)
            )
            timestamp = int(self._wall().timestamp())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                signing.HEADER: probes.signature(probe, target["secret"], timestamp, body),
                signing.EVENT_ID_HEADER: event_id,
            }
            attempt = await targets.deliver(
                client,
                url=target["url"],
                rules=rules(settings),
                resolve=self._resolve,
                body=body,
                headers=headers,
            )
            delivered, status_code, error = attempt.delivered, attempt.status_code, attempt.error
            if attempt.reason is not None:
                log.info(
                    "webhook delivery %s attempt %d: %s",
                    delivery_id,
                    attempts,
                    attempt.reason,
                    extra={"payment_id": target["payment_id"]},
                )
            if delivered:
                outcome = "delivered"
            elif attempts >= settings.webhook_max_attempts or probe is not None:
                # a probe is sent once: what the receiver answers to it is what a run judges
                outcome = "failed"
            else:
                outcome = "retry"
        now = self._clock()
        next_at = now
        if outcome == "retry":
            delay = policy.backoff_s(
                attempts, base_s=settings.webhook_backoff_s, max_s=settings.webhook_backoff_max_s
            )
            next_at = now + timedelta(seconds=delay)
        status = STATUS_OF_OUTCOME.get(outcome, "PENDING")
        async with self._uow() as tx:
            await tx.webhooks.record_attempt(
                delivery_id=delivery_id,
                attempts=attempts,
                status=status,
                next_attempt_at=next_at,
                status_code=status_code,
                error=error,
                delivered_at=now if outcome == "delivered" else None,
            )
            await tx.commit()
        metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
        log.info(
            "webhook delivery %s attempt %d: %s",
            delivery_id,
            attempts,
            outcome,
            extra={"payment_id": target["payment_id"]},
        )
        return outcome

    async def run_forever(self) -> None:
        """The background loop of a gateway worker; errors are logged and the loop goes on."""
        interval = self._settings.webhook_interval_s
        async with targets.client(self._settings.webhook_timeout_s) as client:
            while True:
                try:
                    await self.dispatch_once(client)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if database_unavailable(exc):  # an outage, not a bug: one line each time
                        log.warning(
                            "webhook dispatch failed (%s); retrying in %.1f s", one_line(exc), interval
                        )
                    else:
                        log.exception("webhook dispatch failed; retrying in %.1f s", interval)
                await asyncio.sleep(interval)

    def start(self) -> asyncio.Task[None] | None:
        """The dispatcher task for this process, unless FPSLINK_WEBHOOKS_ENABLED is false."""
        if not self._settings.webhooks_enabled:
            return None
        return asyncio.create_task(self.run_forever(), name="fpslink-webhooks")


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

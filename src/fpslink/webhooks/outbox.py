"""The webhook queue: one statement queues the deliveries of payments that became final.

`queue_deliveries` is that statement's only text. `payments_changed` runs it on its own; the
settlement coordinator's final step runs it inside its single statement (as a CTE over the payments
that statement moved), so the rule of who is told what exists once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.vocabulary import State

EVENTS = {State.SETTLED: "payment.settled", State.REJECTED: "payment.rejected"}
PENDING = "PENDING"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def queue_deliveries(final: str, now: str) -> str:
    """The INSERT that queues a delivery to every active webhook of the debtor's and the creditor's
    bank of each payment in `final`, a relation of final payments (payment_id, state,
    participant_id, creditor_participant_id); `now` is the SQL of the time to stamp.

    A delivery's id is payment and webhook, so a payment is announced to a webhook at most once.
    """
    return (
        "INSERT INTO webhook_deliveries (delivery_id, webhook_id, participant_id, event, payment_id,"
        " status, attempts, next_attempt_at, created_at)"
        " SELECT p.payment_id || ':' || w.webhook_id, w.webhook_id, w.participant_id,"
        f" CASE WHEN p.state = {_text(State.SETTLED.value)} THEN {_text(EVENTS[State.SETTLED])}"
        f" ELSE {_text(EVENTS[State.REJECTED])} END, p.payment_id, {_text(PENDING)}, 0, {now}, {now}"
        f" FROM {final} AS p JOIN webhooks AS w ON w.active"
        " AND (w.participant_id = p.participant_id OR w.participant_id = p.creditor_participant_id)"
    )


_QUEUE = queue_deliveries(
    "(SELECT payment_id, state, participant_id, creditor_participant_id FROM payments"
    f" WHERE payment_id = ANY($1::varchar[])"
    f" AND state IN ({_text(State.SETTLED.value)}, {_text(State.REJECTED.value)}))",
    "$2",
)


async def payment_changed(conn: AsyncConnection, payment_id: str, now: datetime) -> None:
    await payments_changed(conn, [payment_id], now)


async def payments_changed(conn: AsyncConnection, payment_ids: Sequence[str], now: datetime) -> None:
    """Queue the deliveries of those of the payments that are final, in the caller's transaction, so
    the outcome and its deliveries commit together (or not at all); a payment that is not final, or
    whose banks have no webhook, adds none."""
    if payment_ids:
        await (await pg.raw(conn)).execute(_QUEUE, list(payment_ids), now)

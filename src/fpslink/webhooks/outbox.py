"""The webhook queue: one statement queues the deliveries of payments that became final.

`queue_deliveries` is that statement's only text. `payments_changed` runs it on its own; the
settlement coordinator's final step runs it inside its single statement (as a CTE over the payments
that statement moved), so the rule of who is told what exists once.

A certification run's rows (its events, the probes of a payment's event, the hold of a payment's
deliveries) concern its own bank's webhooks only; their statements are at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.db import UtcDateTime
from fpslink.vocabulary import State
from fpslink.webhooks.models import webhook_deliveries, webhooks
from fpslink.webhooks.probes import SUFFIX, Probe

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


# a certification run's rows: its bank's webhooks only ----------------------------------------------

RUN_STARTED, RUN_COMPLETED = "certification.started", "certification.completed"
_RUN_SUFFIX = {RUN_STARTED: ":start", RUN_COMPLETED: ":end"}


async def _queue(
    conn: AsyncConnection, values: dict[str, Any], *where: Any, due: datetime, now: datetime
) -> None:
    """Insert a pending delivery for each row the columns `values` select `where`, skipping a
    delivery id already queued (so queuing again adds nothing)."""
    values = {
        **values,
        "status": literal(PENDING),
        "attempts": literal(0),
        "next_attempt_at": literal(due, UtcDateTime()),
        "created_at": literal(now, UtcDateTime()),
    }
    rows = select(*values.values()).where(*where)
    await conn.execute(
        pg_insert(webhook_deliveries)
        .from_select(list(values), rows)
        .on_conflict_do_nothing(index_elements=["delivery_id"])
    )


async def queue_run_event(
    conn: AsyncConnection,
    *,
    participant_id: str,
    certification_id: str,
    event: str,
    payload: str,
    now: datetime,
) -> None:
    """Queue a run's event (`payload`: its summary as JSON) to every active webhook of its bank,
    once per webhook: `<certification_id>:<webhook_id>:start|end` is the event's id."""
    w = webhooks.c
    values = {
        "delivery_id": literal(certification_id + ":")
        .concat(w.webhook_id)
        .concat(literal(_RUN_SUFFIX[event])),
        "webhook_id": w.webhook_id,
        "participant_id": w.participant_id,
        "event": literal(event),
        "certification_id": literal(certification_id),
        "payload": literal(payload),
    }
    await _queue(conn, values, w.participant_id == participant_id, w.active.is_(True), due=now, now=now)


async def queue_probe(
    conn: AsyncConnection, *, payment_id: str, participant_id: str, probe: Probe, due: datetime, now: datetime
) -> None:
    """Queue a probe of the payment's event to each of the bank's own webhooks that was told of it
    (never the other party's), due at `due`."""
    d = webhook_deliveries.c
    values = {
        "delivery_id": d.delivery_id.concat(literal(SUFFIX[probe])),
        "webhook_id": d.webhook_id,
        "participant_id": d.participant_id,
        "event": d.event,
        "payment_id": d.payment_id,
        "probe": literal(probe.value),
    }
    where = (d.payment_id == payment_id, d.participant_id == participant_id, d.probe.is_(None))
    await _queue(conn, values, *where, due=due, now=now)


async def postpone(conn: AsyncConnection, *, payment_id: str, participant_id: str, until: datetime) -> None:
    """Hold the bank's not yet attempted deliveries of a payment until `until` (its other party's are
    left alone)."""
    d = webhook_deliveries.c
    await conn.execute(
        update(webhook_deliveries)
        .where(
            d.payment_id == payment_id,
            d.participant_id == participant_id,
            d.status == PENDING,
            d.attempts == 0,
            d.probe.is_(None),
        )
        .values(next_attempt_at=until)
    )


async def deliveries_of(
    conn: AsyncConnection, *, participant_id: str, payment_ids: Sequence[str], since: datetime
) -> list[dict[str, Any]]:
    """The bank's deliveries, real and probes, of these payments, queued since `since`."""
    d = webhook_deliveries.c
    if not payment_ids:
        return []
    query = (
        select(
            d.delivery_id,
            d.payment_id,
            d.probe,
            d.status,
            d.attempts,
            d.last_status_code,
            d.delivered_at,
        )
        .where(d.participant_id == participant_id, d.created_at >= since, d.payment_id.in_(list(payment_ids)))
        .order_by(d.created_at, d.delivery_id)
    )
    return [dict(row) for row in (await conn.execute(query)).mappings()]

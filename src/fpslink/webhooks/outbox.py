"""The one call the settlement code makes when a payment may have become final."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, case, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink import pg
from fpslink.payments.models import payments
from fpslink.settlement.states import State
from fpslink.webhooks.models import webhook_deliveries as d
from fpslink.webhooks.models import webhooks as w

EVENTS = {State.SETTLED: "payment.settled", State.REJECTED: "payment.rejected"}
PENDING = "PENDING"


_PG_QUEUE = (
    "INSERT INTO webhook_deliveries (delivery_id, webhook_id, participant_id, event, payment_id, status,"
    " attempts, next_attempt_at, created_at)"
    " SELECT p.payment_id || ':' || w.webhook_id, w.webhook_id, w.participant_id,"
    " CASE WHEN p.state = $6 THEN $3 ELSE $4 END, p.payment_id, $5, 0, $2, $2"
    " FROM payments AS p JOIN webhooks AS w ON w.active"
    " AND (w.participant_id = p.participant_id OR w.participant_id = p.creditor_participant_id)"
    " WHERE p.payment_id = ANY($1::varchar[]) AND p.state = ANY($7::varchar[])"
)
"""`payments_changed` on PostgreSQL, the ids as one array: the same SQL for any batch."""


async def payment_changed(conn: AsyncConnection, payment_id: str, now: datetime) -> None:
    await payments_changed(conn, [payment_id], now)


async def payments_changed(conn: AsyncConnection, payment_ids: Sequence[str], now: datetime) -> None:
    """Queue a delivery to every active webhook of the debtor's and creditor's banks of each final one.

    One INSERT ... SELECT in the caller's transaction, so the outcome and its deliveries commit
    together (or not at all); a payment that is not final, or whose banks have no webhook, adds none.
    """
    if not payment_ids:
        return
    if (raw := await pg.driver(conn)) is not None:
        await raw.execute(
            _PG_QUEUE,
            list(payment_ids),
            now,
            EVENTS[State.SETTLED],
            EVENTS[State.REJECTED],
            PENDING,
            State.SETTLED.value,
            [State.SETTLED.value, State.REJECTED.value],
        )
        return
    source = (
        select(
            (payments.c.payment_id + literal(":") + w.c.webhook_id).label("delivery_id"),
            w.c.webhook_id,
            w.c.participant_id,
            case(
                (payments.c.state == State.SETTLED.value, literal(EVENTS[State.SETTLED])),
                else_=literal(EVENTS[State.REJECTED]),
            ).label("event"),
            payments.c.payment_id,
            literal(PENDING).label("status"),
            literal(0).label("attempts"),
            literal(now, type_=d.c.next_attempt_at.type).label("next_attempt_at"),
            literal(now, type_=d.c.created_at.type).label("created_at"),
        )
        .select_from(payments)
        .join(
            w,
            and_(
                w.c.active.is_(True),
                or_(
                    w.c.participant_id == payments.c.participant_id,
                    w.c.participant_id == payments.c.creditor_participant_id,
                ),
            ),
        )
        .where(
            payments.c.payment_id.in_(payment_ids),
            payments.c.state.in_([State.SETTLED.value, State.REJECTED.value]),
        )
    )
    await conn.execute(
        insert(d).from_select(
            [
                "delivery_id",
                "webhook_id",
                "participant_id",
                "event",
                "payment_id",
                "status",
                "attempts",
                "next_attempt_at",
                "created_at",
            ],
            source,
        )
    )

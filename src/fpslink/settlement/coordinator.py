"""The two-phase settlement coordinator (DESIGN section 3).

One payment costs, on the happy path: the acceptance transaction (which also prepares the FPS side),
one IBPS prepare, the decision transaction (which also posts the FPS side), one IBPS commit and the
final transaction. Each transaction is a few statements on plain Core; the decision is durable before
IBPS hears about it, and every state change is a compare-and-set so that a live request and the
recovery sweep never both act on one payment.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from fpslink.context import Gateway
from fpslink.ibps_client import IbpsRefused, IbpsUnavailable, TransferKind
from fpslink.ledger import repository as ledger
from fpslink.limits import repository as limits_repo
from fpslink.limits.policy import Direction, Period
from fpslink.money import Currency, from_minor
from fpslink.payments import repository as payments_repo
from fpslink.payments.repository import PaymentRow
from fpslink.settlement.states import State
from fpslink.webhooks import outbox as webhook_outbox

log = logging.getLogger("fpslink.settlement")


def ibps_leg(payment: PaymentRow) -> tuple[TransferKind, str, Decimal]:
    """Northbound IBPS credits the payee the target amount; southbound it debits the payer."""
    if payment["direction"] == Direction.NORTHBOUND.value:
        return (
            "CREDIT",
            payment["creditor_account_id"],
            from_minor(payment["target_minor"], Currency(payment["target_currency"])),
        )
    return (
        "DEBIT",
        payment["debtor_account_id"],
        from_minor(payment["source_minor"], Currency(payment["source_currency"])),
    )


async def _state_of(gw: Gateway, payment_id: str) -> State:
    async with gw.engine.connect() as conn:
        row = await payments_repo.get(conn, payment_id)
    if row is None:
        raise LookupError(f"payment {payment_id} vanished")
    return State(row["state"])


async def _note(gw: Gateway, payment_id: str, event: str, detail: str | None) -> None:
    """An event outside any step, for failed attempts that change no state."""
    async with gw.writer.begin() as conn:
        await payments_repo.add_events(conn, payment_id, gw.clock(), [(event, detail)])


async def drive(gw: Gateway, payment: PaymentRow) -> State:
    """Take an ACCEPTED payment (FPS side prepared) through IBPS prepare, the decision and phase two."""
    payment_id = payment["payment_id"]
    kind, account_id, amount = ibps_leg(payment)
    try:
        outcome = await gw.ibps.prepare(
            payment_id=payment_id, kind=kind, account_id=account_id, amount=amount
        )
    except IbpsUnavailable as exc:
        gw.crash_hook("ibps_prepared")
        state = await decide_abort(
            gw, payment, reason_code="AB06", reason=f"IBPS did not answer the prepare ({exc})"
        )
    except IbpsRefused as exc:
        gw.crash_hook("ibps_prepared")
        state = await decide_abort(
            gw, payment, reason_code=exc.code, reason=f"IBPS refused the prepare: {exc.detail}"
        )
    else:
        gw.crash_hook("ibps_prepared")
        if outcome.prepared:
            state = await decide_commit(gw, payment)
        else:
            state = await decide_abort(
                gw,
                payment,
                reason_code=outcome.reason_code or "IBPS_REFUSED",
                reason=outcome.reason or "IBPS refused the payment",
                ibps_void=True,
            )
    gw.crash_hook("decided")
    return await finish(gw, payment_id, state)


async def decide_commit(gw: Gateway, payment: PaymentRow) -> State:
    payment_id = payment["payment_id"]
    now = gw.clock()
    async with gw.writer.begin() as conn:
        if not await payments_repo.transition(
            conn,
            payment_id=payment_id,
            current=State.ACCEPTED,
            target=State.COMMITTING,
            now=now,
            decided_at=now,
        ):
            await conn.rollback()
            return await _state_of(gw, payment_id)
        await ledger.post(conn, payment_id=payment_id, now=now)
        await payments_repo.add_events(
            conn,
            payment_id,
            now,
            [
                ("PREPARED_AT_IBPS", None),
                ("DECIDED_COMMIT", "both ledgers prepared"),
                ("POSTED_AT_FPS", None),
            ],
        )
    return State.COMMITTING


async def decide_abort(
    gw: Gateway,
    payment: PaymentRow,
    *,
    reason_code: str,
    reason: str,
    ibps_void: bool = False,
) -> State:
    """Record ABORT, void the FPS side and release the limit usage, in one transaction.

    `ibps_void`: IBPS already answered with a refusal, which it records as void, so nothing is left
    to undo there and the payment is REJECTED at once.
    """
    payment_id = payment["payment_id"]
    now = gw.clock()
    target = State.REJECTED if ibps_void else State.ABORTING
    async with gw.writer.begin() as conn:
        if not await payments_repo.transition(
            conn,
            payment_id=payment_id,
            current=State.ACCEPTED,
            target=target,
            now=now,
            decided_at=now,
            reason_code=reason_code[:40],
            reason=reason[:300],
        ):
            await conn.rollback()
            return await _state_of(gw, payment_id)
        await ledger.void(conn, payment_id=payment_id, now=now)
        await release_limits(conn, payment)
        events: list[tuple[str, str | None]] = [
            ("REFUSED_AT_IBPS" if ibps_void else "IBPS_PREPARE_FAILED", f"{reason_code}: {reason}"),
            ("DECIDED_ABORT", reason_code),
            ("VOIDED_AT_FPS", None),
            ("LIMITS_RELEASED", None),
        ]
        if ibps_void:
            events.append(("REJECTED", reason_code))
        await payments_repo.add_events(conn, payment_id, now, events)
        await webhook_outbox.payment_changed(conn, payment_id, now)
    return target


async def release_limits(conn: AsyncConnection, payment: PaymentRow) -> None:
    day = payment["business_date"]
    for period, key in ((Period.DAY, day), (Period.YEAR, day[:4])):
        await limits_repo.release(
            conn,
            account_id=payment["debtor_account_id"],
            direction=Direction(payment["direction"]),
            period=period,
            period_key=key,
            amount_minor=payment["limit_minor"],
        )


async def finish(gw: Gateway, payment_id: str, state: State) -> State:
    """Phase two at IBPS, then the final state. On no answer the payment stays decided (PENDING)."""
    if state is State.COMMITTING:
        try:
            await gw.ibps.commit(payment_id)
        except (IbpsUnavailable, IbpsRefused) as exc:
            log.warning("IBPS commit of %s failed: %s", payment_id, exc)
            await _note(gw, payment_id, "IBPS_COMMIT_FAILED", str(exc)[:500])
            return state
        gw.crash_hook("ibps_finished")
        return await _complete(gw, payment_id, State.COMMITTING, State.SETTLED, "COMMITTED_AT_IBPS")
    if state is State.ABORTING:
        try:
            await gw.ibps.abort(payment_id)
        except (IbpsUnavailable, IbpsRefused) as exc:
            log.warning("IBPS abort of %s failed: %s", payment_id, exc)
            await _note(gw, payment_id, "IBPS_ABORT_FAILED", str(exc)[:500])
            return state
        gw.crash_hook("ibps_finished")
        return await _complete(gw, payment_id, State.ABORTING, State.REJECTED, "ABORTED_AT_IBPS")
    return state


async def _complete(gw: Gateway, payment_id: str, current: State, target: State, ibps_event: str) -> State:
    now = gw.clock()
    extra = {"settled_at": now} if target is State.SETTLED else {}
    async with gw.writer.begin() as conn:
        if not await payments_repo.transition(
            conn, payment_id=payment_id, current=current, target=target, now=now, **extra
        ):
            await conn.rollback()
            return await _state_of(gw, payment_id)
        await payments_repo.add_events(conn, payment_id, now, [(ibps_event, None), (target.value, None)])
        await webhook_outbox.payment_changed(conn, payment_id, now)
    return target

"""The recovery sweep: every non-final payment older than its time-out is driven to an end.

Undecided (ACCEPTED) payments are aborted; decided ones finish their decision. Each payment is first
claimed with a compare-and-set on its state and age, so any number of gateway workers can sweep at
once without acting twice on one payment.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta

from fpslink import metrics
from fpslink.context import Gateway
from fpslink.db import database_unavailable, one_line
from fpslink.payments import repository as payments_repo
from fpslink.settlement import coordinator
from fpslink.settlement.states import recovery_action
from fpslink.vocabulary import State

log = logging.getLogger("fpslink.recovery")


async def sweep(gw: Gateway, *, now: datetime | None = None) -> Counter[str]:
    """One pass; returns how many payments ended in each state (or stayed, for retries)."""
    now = now or gw.now()
    cutoff = min(now - timedelta(seconds=gw.settings.settlement_timeout_s), _live_since(gw, now))
    outcomes: Counter[str] = Counter()
    async with gw.engine.connect() as conn:
        candidates = await payments_repo.stale(conn, cutoff=cutoff, limit=gw.settings.recovery_batch_size)
    for payment_id, state in candidates:
        async with gw.engine.begin() as conn:
            claimed = await payments_repo.claim(
                conn, payment_id=payment_id, state=state, cutoff=cutoff, now=gw.now()
            )
            payment = await payments_repo.get(conn, payment_id) if claimed else None
            if claimed:
                await payments_repo.add_events(
                    conn, payment_id, gw.now(), [("RECOVERY", f"found {state.value}")]
                )
        action = recovery_action(state)
        if payment is None or action is None:
            continue
        if action is State.ABORTING:
            state = await coordinator.decide_abort(
                gw.settlement,
                payment,
                reason_code="AB05",
                reason="settlement timed out before both ledgers were prepared",
            )
        final = await coordinator.finish(gw.settlement, payment, state)
        outcomes[final.value] += 1
        metrics.RECOVERY.labels(state=final.value).inc()
    return outcomes


BATCH_WORK_S = 2.0
"""What a batch may take beyond the payment deadline, which bounds its IBPS calls: its database work."""


def _live_since(gw: Gateway, now: datetime) -> datetime:
    """The sandbox time after which a payment may still be in the hands of its batch: touched within
    the payment deadline (and the batch's database work) of real time. A move of the test clock ages
    every payment by its size: a stuck payment as if that time had passed, but one whose batch is
    still settling it must be left to it, as the time-out (longer than the deadline) leaves it
    without a move."""
    live_s = gw.settings.payment_deadline_s + BATCH_WORK_S
    return now - timedelta(seconds=live_s) - gw.sandbox_offset.moved_within(live_s)


PENDING_COUNT_MAX = 100_000
"""Where the count of pending payments stops: an outage may leave millions, and a scrape must stay
cheap."""


async def pending_counts(gw: Gateway) -> dict[str, int]:
    """The payments not yet final, by state, for `fpslink_payments_pending`: the ones recovery will
    drive once they are old enough, and the ones being settled now."""
    async with gw.engine.connect() as conn:
        counts = await payments_repo.count_unfinished(conn, limit=PENDING_COUNT_MAX)
    return {state.value: count for state, count in counts.items()}


async def run_forever(gw: Gateway) -> None:
    """The background loop each gateway worker runs; errors are logged and the loop goes on."""
    interval = gw.settings.recovery_interval_s
    while True:
        try:
            outcomes = await sweep(gw)
            if outcomes:
                log.info("recovery sweep: %s", dict(outcomes))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if database_unavailable(exc):  # an outage, not a bug: one line each time
                log.warning("recovery sweep failed (%s); retrying in %.1f s", one_line(exc), interval)
            else:
                log.exception("recovery sweep failed; retrying in %.1f s", interval)
        await asyncio.sleep(interval)

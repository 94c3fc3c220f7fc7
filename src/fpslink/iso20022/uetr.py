"""A UETR names one payment of the sending bank, for good: what to do when a message comes with one
the bank has used before. Pure: the caller reads the claim (and its idempotency key), this decides.

- The same message again (same fingerprint) with its payment made: answer that payment's report,
  as a replay, whatever key the resend came with and however long after.
- The same message whose payment is not tied to the claim yet: submit again under the claim's
  idempotency key, which replays the payment, says the first request is still running, or makes
  the payment if the first request died before making it.
- Another message: refused DUPL, unless the claim is stale (its request died before binding its
  key, longer than a request's lease ago, and made nothing), when this message takes it over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from fpslink.idempotency.repository import KeyRecord
from fpslink.iso20022.repository import SentTransaction


class Action(Enum):
    REPLAY = "replay"
    """Answer the claim's payment (`payment_id`)."""
    RESUME = "resume"
    """Submit under the claim's key (`key`)."""
    DUPLICATE = "duplicate"
    """Refuse the message DUPL."""
    TAKE_OVER = "take over"
    """Give the stale claim to this message, then submit under this message's key."""


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    key: str | None = None
    payment_id: str | None = None


def decide(
    claim: SentTransaction,
    fingerprint: str,
    *,
    key: KeyRecord | None,
    now: datetime,
    lease: timedelta,
) -> Decision:
    """What a message with `fingerprint` does about the bank's `claim` on its UETR. `key` is the
    claim's idempotency key as stored now (None when unbound or expired)."""
    if claim.fingerprint == fingerprint:
        if claim.payment_id is not None:
            return Decision(Action.REPLAY, payment_id=claim.payment_id)
        return Decision(Action.RESUME, key=claim.idempotency_key)
    if claim.payment_id is not None or key is not None or claim.created_at + lease > now:
        return Decision(Action.DUPLICATE, payment_id=claim.payment_id)
    return Decision(Action.TAKE_OVER)

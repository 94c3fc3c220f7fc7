"""What the console says for codes and timeline events: the words of README.md and docs/errors.md."""

from __future__ import annotations

from typing import Final

REASONS: Final[dict[str, str]] = {
    "AB05": "Settlement timed out before both ledgers prepared; recovery aborted it.",
    "AB06": "IBPS did not answer (proxy look-up or prepare), or its circuit was open.",
    "AC01": "The creditor account does not exist.",
    "AM02": "The amount is over the per-transaction limit.",
    "AM03": "IBPS refused the currency.",
    "AM04": "Insufficient funds (at FPS for northbound, refused by IBPS for southbound).",
    "AM14": "The amount is over the daily or yearly limit.",
    "BE23": "No account is registered for the proxy.",
    "RR04": "IBPS refused the payment for regulatory reasons (a sandbox magic value).",
    "NOT_CROSS_BORDER": "The creditor is in the debtor's own system; this link only carries cross-border "
    "payments.",
    "OUTSIDE_SERVICE_HOURS": "Southbound payments run only inside the service window (07:00-23:00 UTC+8 "
    "by default).",
    "QUOTE_EXPIRED": "The quote expired before the payment was accepted.",
    "QUOTE_USED": "The quote already fixed another payment.",
    "QUOTE_MISMATCH": "The quote's currencies, amount or amount type differ from the payment's.",
    "IBPS_REFUSED": "IBPS refused the prepare without a code.",
    "TRANSFER_VOIDED": "IBPS had already voided this payment (a late prepare after an abort).",
}

EVENTS: Final[dict[str, str]] = {
    "ACCEPTED": "Accepted",
    "FX_FIXED": "Quote fixed",
    "LIMITS_RESERVED": "Limits reserved",
    "PREPARED_AT_FPS": "Prepared at FPS",
    "PREPARED_AT_IBPS": "Prepared at IBPS",
    "REFUSED_AT_IBPS": "Refused by IBPS",
    "IBPS_PREPARE_FAILED": "IBPS prepare failed",
    "DECIDED_COMMIT": "Decision: commit",
    "DECIDED_ABORT": "Decision: abort",
    "POSTED_AT_FPS": "Posted at FPS",
    "VOIDED_AT_FPS": "Voided at FPS",
    "LIMITS_RELEASED": "Limits released",
    "COMMITTED_AT_IBPS": "Committed at IBPS",
    "ABORTED_AT_IBPS": "Aborted at IBPS",
    "IBPS_COMMIT_FAILED": "IBPS commit failed (will retry)",
    "IBPS_ABORT_FAILED": "IBPS abort failed (will retry)",
    "RECOVERY": "Recovery action",
    "SETTLED": "Settled",
    "REJECTED": "Rejected",
}

EVENT_KINDS: Final[dict[str, str]] = {
    "REFUSED_AT_IBPS": "bad",
    "IBPS_PREPARE_FAILED": "bad",
    "DECIDED_ABORT": "bad",
    "VOIDED_AT_FPS": "bad",
    "ABORTED_AT_IBPS": "bad",
    "REJECTED": "bad",
    "IBPS_COMMIT_FAILED": "warn",
    "IBPS_ABORT_FAILED": "warn",
    "RECOVERY": "warn",
    "SETTLED": "good",
    "COMMITTED_AT_IBPS": "good",
    "DECIDED_COMMIT": "good",
}


def reason_in_words(code: str | None, reason: str | None) -> str | None:
    """The documented meaning of a reason code, else the payment's own reason text."""
    if code is None:
        return None
    return REASONS.get(code, reason or code)


def event_label(event: str) -> str:
    return EVENTS.get(event, event.replace("_", " ").capitalize())


def event_kind(event: str) -> str:
    """good, bad, warn or step: how the timeline colours an event."""
    return EVENT_KINDS.get(event, "step")

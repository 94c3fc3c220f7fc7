"""Certification runs in pure code: the suites and their scenarios, what the sandbox does to each
attempt of a scenario's payment (`decide`), and the judge that decides each scenario from what the
sandbox observed (`judge`). No I/O and no clock: the service reads, these decide, the service writes.

A run hands out one amount per scenario (its tag): a payment from the run's debtor account for that
amount, in that account's currency, is the scenario's. The sandbox perturbs only such payments of the
run's bank, and the bank's own webhook deliveries of them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from fpslink.money import Currency, format_minor
from fpslink.vocabulary import Status
from fpslink.webhooks.probes import Probe


class Scenario(StrEnum):
    LOST_REPLY = "LOST_REPLY"
    IN_PROGRESS = "IN_PROGRESS"
    SLOW_IBPS = "SLOW_IBPS"
    REJECTED_AM02 = "REJECTED_AM02"
    REJECTED_AM14 = "REJECTED_AM14"
    REJECTED_BE23 = "REJECTED_BE23"
    REJECTED_AB06 = "REJECTED_AB06"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    RATE_LIMITED = "RATE_LIMITED"
    WEBHOOK_DUPLICATE = "WEBHOOK_DUPLICATE"
    WEBHOOK_BAD_SIGNATURE = "WEBHOOK_BAD_SIGNATURE"
    WEBHOOK_STALE_TIMESTAMP = "WEBHOOK_STALE_TIMESTAMP"
    RECONCILIATION = "RECONCILIATION"


class Suite(StrEnum):
    FULL = "FULL"
    PAYMENTS = "PAYMENTS"
    WEBHOOKS = "WEBHOOKS"


WEBHOOK_SCENARIOS = (
    Scenario.WEBHOOK_DUPLICATE,
    Scenario.WEBHOOK_BAD_SIGNATURE,
    Scenario.WEBHOOK_STALE_TIMESTAMP,
)
SUITES: Mapping[Suite, tuple[Scenario, ...]] = {
    Suite.FULL: tuple(Scenario),
    Suite.PAYMENTS: tuple(s for s in Scenario if s not in WEBHOOK_SCENARIOS),
    Suite.WEBHOOKS: WEBHOOK_SCENARIOS,
}

REJECTIONS: Mapping[Scenario, tuple[str, str]] = {
    Scenario.REJECTED_AM02: ("AM02", "over the per-transaction limit"),
    Scenario.REJECTED_AM14: ("AM14", "over the daily or yearly limit"),
    Scenario.REJECTED_BE23: ("BE23", "no account is registered for the proxy"),
    Scenario.REJECTED_AB06: ("AB06", "IBPS did not answer"),
}
"""The business rejections the run makes, each with the words of docs/errors.md."""

PROBES: Mapping[Scenario, Probe] = {
    Scenario.WEBHOOK_DUPLICATE: Probe.DUPLICATE,
    Scenario.WEBHOOK_BAD_SIGNATURE: Probe.BAD_SIGNATURE,
    Scenario.WEBHOOK_STALE_TIMESTAMP: Probe.STALE_TIMESTAMP,
}
"""The extra delivery each webhook scenario sends (`fpslink.webhooks.probes`)."""


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    PASSED = "PASSED"
    FAILED = "FAILED"


class Outcome(StrEnum):
    WAITING = "WAITING"
    PASSED = "PASSED"
    FAILED = "FAILED"


class Kind(StrEnum):
    """What a bank's request of a run was."""

    PAYMENT = "PAYMENT"
    POLL = "POLL"
    QUOTE = "QUOTE"


class Action(StrEnum):
    """What the sandbox did to a request."""

    FORWARD = "FORWARD"
    DROP_REPLY = "DROP_REPLY"
    ANSWER_IN_PROGRESS = "ANSWER_IN_PROGRESS"
    ANSWER_RATE_LIMITED = "ANSWER_RATE_LIMITED"
    HOLD_PENDING = "HOLD_PENDING"
    EXPIRE_QUOTE = "EXPIRE_QUOTE"
    REJECT = "REJECT"


ACTION_WORDS: Mapping[Action, str] = {
    Action.FORWARD: "passed through",
    Action.DROP_REPLY: "settled, then the reply was dropped on purpose (connection closed before the body)",
    Action.ANSWER_IN_PROGRESS: "answered 409 IDEMPOTENCY_IN_PROGRESS on purpose",
    Action.ANSWER_RATE_LIMITED: "answered 429 RATE_LIMITED on purpose",
    Action.HOLD_PENDING: "shown PENDING on purpose while the outcome is held",
    Action.EXPIRE_QUOTE: "its quote was expired on purpose before the payment used it",
    Action.REJECT: "rejected on purpose",
}

FINAL_STATUSES = frozenset({Status.SETTLED.value, Status.REJECTED.value})


@dataclass(frozen=True, slots=True)
class Timing:
    """The waits a run imposes and checks (settings FPSLINK_CERTIFICATION_*)."""

    hold_s: float
    """How long SLOW_IBPS shows a payment PENDING and holds its webhook."""
    retry_after_s: int
    """RATE_LIMITED's Retry-After."""
    in_progress_retry_s: int
    """IN_PROGRESS's Retry-After on its 409."""
    min_poll_s: float
    """The documented polling interval of GET /v1/payments/{id}."""
    tolerance_s: float = 0.1
    """Slack on every measured wait: times are taken when a request reaches the gateway."""


@dataclass(frozen=True, slots=True)
class Step:
    """One scenario of a run: its tag (the amount a payment of it carries) and its position."""

    scenario: Scenario
    position: int
    amount_minor: int | None
    """None for RECONCILIATION, which has no payment of its own."""
    currency: Currency

    @property
    def amount(self) -> str | None:
        return None if self.amount_minor is None else format_minor(self.amount_minor, self.currency)


def plan(suite: Suite, currency: Currency, cents: Sequence[int]) -> tuple[Step, ...]:
    """The run's scenarios with their amounts: 1xx.cc in the debtor account's currency, the units
    telling the scenarios apart and `cents` (one per scenario, 1-99, drawn by the caller) making
    two runs' amounts differ. Far below every limit, and never one of mock_ibps's magic values."""
    steps = []
    for position, scenario in enumerate(SUITES[suite]):
        minor = None
        if scenario is not Scenario.RECONCILIATION:
            minor = (101 + position) * 100 + cents[position] % 99 + 1
        steps.append(Step(scenario, position, minor, currency))
    return tuple(steps)


def tags(steps: Iterable[Step]) -> dict[int, Scenario]:
    """Amount in minor units -> the scenario whose payments carry it."""
    return {s.amount_minor: s.scenario for s in steps if s.amount_minor is not None}


@dataclass(frozen=True, slots=True)
class Brief:
    """What a scenario asks of the bank's client, what the sandbox does, and what passes."""

    client_does: str
    sandbox_does: str
    passes_if: str


def brief(step: Step, *, debtor: str, creditor: str, creditor_currency: Currency, timing: Timing) -> Brief:
    """The words of a scenario in a run's answer and certificate."""
    pay = f"Pay {step.amount} {step.currency.value} from {debtor} to {creditor}"
    s = step.scenario
    if s is Scenario.LOST_REPLY:
        return Brief(
            f"{pay}.",
            "Settles the payment, then closes the connection before the answer's body arrives.",
            "The client retries with the same Idempotency-Key and the same body, takes the replay "
            "(Idempotent-Replayed: true) as the answer, and pays nothing twice.",
        )
    if s is Scenario.IN_PROGRESS:
        return Brief(
            f"{pay}.",
            "Settles the payment and closes the connection before the answer; the first retry with "
            "that key is answered 409 IDEMPOTENCY_IN_PROGRESS with Retry-After: "
            f"{timing.in_progress_retry_s}.",
            "After the 409 the client waits at least Retry-After and retries with the same key and "
            "body, and takes the replay; it never pays under a new key.",
        )
    if s is Scenario.SLOW_IBPS:
        return Brief(
            f"{pay}.",
            f"Answers 202 PENDING and shows the payment PENDING for {timing.hold_s:g} s (GET and "
            "replays), and holds your webhook of it until then.",
            f"The client polls GET /v1/payments/{{id}} no more often than every {timing.min_poll_s:g} s "
            "(or waits for the webhook) until the final status, and never pays it again.",
        )
    if s in REJECTIONS:
        code, words = REJECTIONS[s]
        return Brief(
            f"{pay}.",
            f"Rejects the payment with {code} ({words}): 201 REJECTED.",
            f"The client takes {code} as final: it does not send the payment again under a new key.",
        )
    if s is Scenario.QUOTE_EXPIRED:
        return Brief(
            f"Get a firm quote (POST /v1/quotes, {step.currency.value}->{creditor_currency.value}, "
            f"SEND {step.amount}), then {pay[0].lower()}{pay[1:]} with its quote_id.",
            "Expires the first quote the payment uses just before the payment: 201 REJECTED QUOTE_EXPIRED.",
            "The client gets a new quote and pays with it under a new key; it never pays without a "
            "quote nor with the expired one.",
        )
    if s is Scenario.RATE_LIMITED:
        return Brief(
            f"{pay}.",
            f"Answers 429 RATE_LIMITED with Retry-After: {timing.retry_after_s} (policy "
            '"certification") to every attempt until that wait has passed.',
            "The client waits as told before it tries again, then pays once.",
        )
    if s in PROBES:
        sends = {
            Scenario.WEBHOOK_DUPLICATE: "sends the payment's event a second time, same event id and "
            "a valid signature",
            Scenario.WEBHOOK_BAD_SIGNATURE: "sends an extra event for it whose signature does not verify",
            Scenario.WEBHOOK_STALE_TIMESTAMP: "sends an extra event for it, correctly signed but with a "
            "timestamp ten minutes old",
        }[s]
        passes = (
            "Your receiver answers 2xx to both deliveries (it drops the second by its event id)."
            if s is Scenario.WEBHOOK_DUPLICATE
            else "Your receiver refuses it (any 4xx or 5xx) and acknowledges the real one."
        )
        return Brief(
            f"{pay}, with a webhook of yours registered before the run.",
            f"Once the payment is final, {sends}, to each of your webhooks.",
            passes,
        )
    return Brief(
        "Once every payment of the run is final, upload your own record of them (PUT "
        "/v1/certifications/{id}/record, CSV or JSON: payment_id, status, source_amount, "
        "source_currency, reason_code).",
        "Compares your record with its own payments of the run.",
        "Every payment of the run is in the record once, with the sandbox's status, amount and "
        "reason, and the record holds nothing else.",
    )


# what the sandbox observes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One request of the bank that belonged to a scenario, and what came of it."""

    seq: int
    scenario: Scenario
    kind: Kind
    at: datetime
    """When it reached the gateway, on the real clock (shared by every worker)."""
    action: Action
    request_id: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    """Hash of the request's body after validation (amounts and numbers normalised)."""
    quote_id: str | None = None
    status_code: int | None = None
    problem_code: str | None = None
    payment_id: str | None = None
    payment_status: str | None = None
    """The status the answer showed the client (PENDING while held)."""
    reason_code: str | None = None
    replayed: bool = False
    retry_after_s: int | None = None

    @property
    def answered_2xx(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Answer:
    """What a request of a run was answered, as the API edge read it from the response."""

    status_code: int
    problem_code: str | None = None
    payment_id: str | None = None
    payment_status: str | None = None
    """The status the client was shown (PENDING while SLOW_IBPS holds it)."""
    actual_status: str | None = None
    """The payment's status at the sandbox."""
    reason_code: str | None = None
    replayed: bool = False
    quote_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One of the bank's webhook deliveries of a run's payment, real or probe."""

    delivery_id: str
    payment_id: str
    probe: str | None
    status: str
    attempts: int
    last_status_code: int | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class PaymentView:
    """A payment of the run as the sandbox has it now, in the record's terms."""

    payment_id: str
    status: Status
    source_amount: str | None
    source_currency: str
    reason_code: str | None


@dataclass(frozen=True, slots=True)
class RecordRow:
    """A line of the bank's own record of the run's payments."""

    payment_id: str
    status: Status
    source_amount: Decimal | None
    source_currency: str | None
    reason_code: str | None


@dataclass(frozen=True, slots=True)
class Evidence:
    at: datetime | None
    request_id: str | None
    what: str


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Outcome
    reason: str
    evidence: tuple[Evidence, ...] = ()
    sandbox_owes: bool = False
    """The sandbox still has something to do for it (a held outcome, a probe not yet sent)."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What the judge reads for one scenario."""

    observations: Sequence[Observation]
    """The scenario's requests, in the order they reached the gateway."""
    deliveries: Sequence[Delivery] = ()
    """The bank's deliveries of the scenario's payments."""
    hold_until: datetime | None = None
    record: Sequence[RecordRow] | None = None
    payments: Sequence[PaymentView] = ()
    """Every payment of the run as the sandbox has it (RECONCILIATION, and a payment's finality)."""


# what the sandbox does ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    retry_after_s: int | None = None
    reject_code: str | None = None
    hold_until: datetime | None = None


def decide(
    scenario: Scenario,
    prior: Sequence[Observation],
    *,
    key: str,
    quote_id: str | None,
    now: datetime,
    hold_until: datetime | None,
    timing: Timing,
) -> Decision:
    """What the sandbox does to this attempt of the scenario's payment, given the attempts before it
    (`prior`, payments only, in order) and the scenario's hold."""
    if scenario is Scenario.LOST_REPLY:
        return Decision(Action.DROP_REPLY if not prior else Action.FORWARD)
    if scenario is Scenario.IN_PROGRESS:
        if not prior:
            return Decision(Action.DROP_REPLY)
        answered = any(p.action is Action.ANSWER_IN_PROGRESS for p in prior)
        if key == prior[0].idempotency_key and not answered:
            return Decision(Action.ANSWER_IN_PROGRESS, retry_after_s=timing.in_progress_retry_s)
        return Decision(Action.FORWARD)
    if scenario is Scenario.SLOW_IBPS:
        if hold_until is None:
            return Decision(Action.HOLD_PENDING, hold_until=now + timedelta(seconds=timing.hold_s))
        return Decision(Action.HOLD_PENDING if now < hold_until else Action.FORWARD, hold_until=hold_until)
    if scenario in REJECTIONS:
        return Decision(Action.REJECT, reject_code=REJECTIONS[scenario][0])
    if scenario is Scenario.QUOTE_EXPIRED:
        expired = any(p.action is Action.EXPIRE_QUOTE for p in prior)
        return Decision(Action.EXPIRE_QUOTE if quote_id is not None and not expired else Action.FORWARD)
    if scenario is Scenario.RATE_LIMITED:
        first = next((p for p in prior if p.action is Action.ANSWER_RATE_LIMITED), None)
        if first is None:
            return Decision(Action.ANSWER_RATE_LIMITED, retry_after_s=timing.retry_after_s)
        until = first.at + timedelta(seconds=first.retry_after_s or timing.retry_after_s)
        if now < until:
            left = max(1, math.ceil((until - now).total_seconds()))
            return Decision(Action.ANSWER_RATE_LIMITED, retry_after_s=left)
    return Decision(Action.FORWARD)


def held(hold_until: datetime | None, now: datetime) -> bool:
    """Whether a SLOW_IBPS payment is still shown PENDING."""
    return hold_until is not None and now < hold_until


PENDING_FROM = ("PREPARED_AT_IBPS", "DECIDED_COMMIT", "DECIDED_ABORT", "SETTLED", "REJECTED")
"""The timeline of a payment shown PENDING stops before the first of these: what it waits on is IBPS."""


def pending_view(payment: Mapping[str, Any]) -> dict[str, Any]:
    """A payment answer (PaymentOut's JSON) as it reads while its outcome is held: PENDING, no
    settlement time, the timeline up to the FPS side's preparation. Amounts stay: they are held."""
    events = list(payment.get("events") or [])
    cut = next((i for i, e in enumerate(events) if e.get("event") in PENDING_FROM), len(events))
    events = events[:cut]
    return {
        **payment,
        "status": Status.PENDING.value,
        "settled_at": None,
        "reason_code": None,
        "reason": None,
        "events": events,
        "last_event": events[-1] if events else None,
    }


# the judge ------------------------------------------------------------------------------------------


def describe(o: Observation) -> Evidence:
    """One observation as a line of evidence."""
    answer = f"answered {o.status_code}" if o.status_code is not None else "no answer recorded"
    if o.problem_code:
        answer += f" {o.problem_code}"
    if o.replayed:
        answer += " (replay)"
    if o.payment_id:
        answer += f", payment {o.payment_id} {o.payment_status or ''}".rstrip()
        if o.reason_code:
            answer += f" {o.reason_code}"
    if o.kind is Kind.PAYMENT:
        body = f" body {o.fingerprint[:12]}" if o.fingerprint else ""
        quote = f" quote {o.quote_id}" if o.quote_id else ""
        what = (
            f"POST /v1/payments, Idempotency-Key {o.idempotency_key}{body}{quote}: {ACTION_WORDS[o.action]}"
        )
    elif o.kind is Kind.POLL:
        held_note = f" ({ACTION_WORDS[o.action]})" if o.action is Action.HOLD_PENDING else ""
        what = f"GET /v1/payments/{o.payment_id}{held_note}"
        answer = f"answered {o.status_code} {o.payment_status or ''}".rstrip()
    else:
        what = "POST /v1/quotes"
        answer = f"answered {o.status_code}" + (f", quote {o.quote_id}" if o.quote_id else "")
    return Evidence(o.at, o.request_id, f"{what}; {answer}")


def describe_delivery(d: Delivery) -> Evidence:
    code = f"HTTP {d.last_status_code}" if d.last_status_code is not None else "no answer"
    kind = f" ({d.probe})" if d.probe else ""
    attempts = f"{d.attempts} attempt" + ("" if d.attempts == 1 else "s")
    last = f", last answer {code}" if d.attempts else ""
    return Evidence(
        d.delivered_at, None, f"webhook delivery {d.delivery_id}{kind}: {d.status}, {attempts}{last}"
    )


@dataclass(frozen=True, slots=True)
class _Case:
    """The facts of one scenario, with what every judgement of a payment scenario needs."""

    facts: Facts
    timing: Timing
    now: datetime
    evidence: tuple[Evidence, ...] = field(default=())

    @property
    def attempts(self) -> list[Observation]:
        return [o for o in self.facts.observations if o.kind is Kind.PAYMENT]

    def verdict(self, status: Outcome, reason: str, *, owes: bool = False) -> Verdict:
        return Verdict(status, reason, self.evidence, owes)

    def waiting(self, reason: str, *, owes: bool = False) -> Verdict:
        return self.verdict(Outcome.WAITING, reason, owes=owes)

    def passed(self, reason: str) -> Verdict:
        return self.verdict(Outcome.PASSED, reason)

    def failed(self, reason: str) -> Verdict:
        return self.verdict(Outcome.FAILED, reason)


def _second_payment(attempts: Sequence[Observation]) -> Observation | None:
    """The first attempt that made a payment other than the scenario's first one."""
    first = next((a.payment_id for a in attempts if a.payment_id), None)
    return next((a for a in attempts if a.payment_id and a.payment_id != first), None)


def _paid_twice(second: Observation) -> str:
    return (
        f"paid twice: Idempotency-Key {second.idempotency_key} made a second payment "
        f"({second.payment_id}); a retry must reuse the first attempt's key"
    )


def _reused_body(attempts: Sequence[Observation]) -> Observation | None:
    return next((a for a in attempts if a.problem_code == "IDEMPOTENCY_KEY_REUSED"), None)


def _replay_of(first: Observation, later: Iterable[Observation]) -> Observation | None:
    return next(
        (
            a
            for a in later
            if a.idempotency_key == first.idempotency_key
            and a.replayed
            and a.answered_2xx
            and a.payment_id == first.payment_id
        ),
        None,
    )


def _unsafe_retry(case: _Case) -> Verdict | None:
    """What fails a scenario whose first reply is lost, before anything else is looked at: nothing
    paid yet (waiting), a second payment, or the key retried with another body."""
    attempts = case.attempts
    if not attempts:
        return case.waiting("no payment of this scenario yet: pay as instructed")
    if (second := _second_payment(attempts)) is not None:
        return case.failed(_paid_twice(second))
    if (reused := _reused_body(attempts)) is not None:
        return case.failed(
            f"retried Idempotency-Key {reused.idempotency_key} with another body (422 "
            "IDEMPOTENCY_KEY_REUSED): a retry must send the same body"
        )
    return None


def _lost_reply(case: _Case) -> Verdict:
    if (early := _unsafe_retry(case)) is not None:
        return early
    first, *later = case.attempts
    if (replay := _replay_of(first, later)) is not None:
        return case.passed(
            f"retried with the same Idempotency-Key and body and took the replay of payment "
            f"{replay.payment_id} ({replay.payment_status})"
        )
    return case.waiting(
        "the reply to the first attempt was lost and it has not been retried: retry with the same "
        "Idempotency-Key and body"
    )


def _in_progress(case: _Case) -> Verdict:
    if (early := _unsafe_retry(case)) is not None:
        return early
    attempts = case.attempts
    first = attempts[0]
    conflict = next((a for a in attempts if a.action is Action.ANSWER_IN_PROGRESS), None)
    if conflict is None:
        return case.waiting("the first attempt's reply was lost: retry with the same Idempotency-Key")
    after = [a for a in attempts if a.seq > conflict.seq]
    if not after:
        return case.waiting(
            "answered 409 IDEMPOTENCY_IN_PROGRESS: wait Retry-After, then retry with the same key"
        )
    waited = (after[0].at - conflict.at).total_seconds()
    told = conflict.retry_after_s or case.timing.in_progress_retry_s
    if waited < told - case.timing.tolerance_s:
        return case.failed(f"retried {waited:.2f} s after the 409; its Retry-After said {told} s")
    if (replay := _replay_of(first, after)) is not None:
        return case.passed(
            f"waited {waited:.2f} s after the 409, retried with the same key and took the replay of "
            f"payment {replay.payment_id}"
        )
    return case.waiting("after the 409, retry with the same Idempotency-Key and body")


def _slow(case: _Case) -> Verdict:
    attempts = case.attempts
    facts = case.facts
    if not attempts:
        return case.waiting("no payment of this scenario yet: pay as instructed")
    first = attempts[0]
    if (second := _second_payment(attempts)) is not None:
        return case.failed(
            f"sent the pending payment again as a new one (Idempotency-Key {second.idempotency_key}, "
            f"payment {second.payment_id}): a PENDING payment is still on its way"
        )
    polls = [
        o
        for o in facts.observations
        if o.seq > first.seq
        and (
            (o.kind is Kind.POLL and o.payment_id == first.payment_id)
            or (o.kind is Kind.PAYMENT and o.idempotency_key == first.idempotency_key)
        )
    ]
    times = [first.at, *(p.at for p in polls)]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    interval = case.timing.min_poll_s
    if gaps and min(gaps) < interval - case.timing.tolerance_s:
        return case.failed(
            f"polled {min(gaps):.2f} s after the previous request; poll no more often than every "
            f"{interval:g} s, or wait for the webhook"
        )
    seen = next((p for p in polls if p.payment_status in FINAL_STATUSES), None)
    if seen is not None:
        return case.passed(
            f"polled no more often than every {interval:g} s and saw the final status {seen.payment_status}"
        )
    own = [d for d in facts.deliveries if d.probe is None]
    told = next((d for d in own if d.status == "DELIVERED"), None)
    if told is not None and not held(facts.hold_until, case.now):
        return case.passed(f"took the outcome from the webhook (delivery {told.delivery_id} acknowledged)")
    owes = held(facts.hold_until, case.now) or any(d.status == "PENDING" for d in own)
    return case.waiting(
        f"the payment was answered PENDING: poll GET /v1/payments/{first.payment_id} (at most every "
        f"{interval:g} s) or wait for the webhook until it is final",
        owes=owes,
    )


def _rejected(case: _Case, code: str) -> Verdict:
    attempts = case.attempts
    rejected = next((a for a in attempts if a.reason_code == code), None)
    if rejected is None:
        return case.waiting("no payment of this scenario yet: pay as instructed")
    again = next(
        (
            a
            for a in attempts
            if a.seq > rejected.seq and a.idempotency_key != rejected.idempotency_key and a.payment_id
        ),
        None,
    )
    if again is not None:
        return case.failed(
            f"sent the payment again under a new Idempotency-Key ({again.idempotency_key}) after "
            f"{code}: a business rejection is final, not a transient error"
        )
    return case.passed(f"took {code} as final and sent nothing more")


def _quote_expired(case: _Case) -> Verdict:
    attempts = case.attempts
    if not attempts:
        return case.waiting("no payment of this scenario yet: get a quote and pay with it")
    unquoted = next((a for a in attempts if a.quote_id is None), None)
    if unquoted is not None:
        return case.failed(
            f"paid without a firm quote (Idempotency-Key {unquoted.idempotency_key}): the customer "
            "never confirmed that rate"
        )
    expired = next((a for a in attempts if a.action is Action.EXPIRE_QUOTE), None)
    if expired is None:
        return case.waiting("pay with the quote's quote_id")
    after = [a for a in attempts if a.seq > expired.seq]
    reuse = next(
        (a for a in after if a.quote_id == expired.quote_id and a.idempotency_key != expired.idempotency_key),
        None,
    )
    if reuse is not None:
        return case.failed(
            f"paid again with the expired quote {expired.quote_id} (Idempotency-Key "
            f"{reuse.idempotency_key}): an expired quote needs a new one"
        )
    settled = [a for a in after if a.payment_status == Status.SETTLED.value and not a.replayed]
    if len(settled) > 1:
        return case.failed(_paid_twice(settled[1]))
    fresh = {
        q.quote_id
        for q in case.facts.observations
        if q.kind is Kind.QUOTE and q.seq > expired.seq and q.quote_id
    }
    done = next((a for a in settled if a.quote_id in fresh), None)
    if done is not None:
        return case.passed(
            f"got a new quote ({done.quote_id}) after QUOTE_EXPIRED and paid with it "
            f"(payment {done.payment_id})"
        )
    return case.waiting("the quote expired: get a new quote and pay with it under a new Idempotency-Key")


def _rate_limited(case: _Case) -> Verdict:
    attempts = case.attempts
    refused = next((a for a in attempts if a.action is Action.ANSWER_RATE_LIMITED), None)
    if refused is None:
        return case.waiting("no payment of this scenario yet: pay as instructed")
    after = [a for a in attempts if a.seq > refused.seq]
    if not after:
        return case.waiting("answered 429: wait Retry-After seconds, then send the payment")
    waited = (after[0].at - refused.at).total_seconds()
    told = refused.retry_after_s or case.timing.retry_after_s
    if waited < told - case.timing.tolerance_s:
        return case.failed(f"tried again {waited:.2f} s after the 429; its Retry-After said {told} s")
    if (second := _second_payment(after)) is not None:
        return case.failed(_paid_twice(second))
    done = next((a for a in after if a.payment_id and a.payment_status in FINAL_STATUSES), None)
    if done is not None:
        return case.passed(f"waited {waited:.2f} s as Retry-After told, then paid once ({done.payment_id})")
    return case.waiting("send the payment again now that Retry-After has passed")


def _webhook(case: _Case, scenario: Scenario) -> Verdict:
    facts = case.facts
    payment_id = next((a.payment_id for a in case.attempts if a.payment_id), None)
    if payment_id is None:
        return case.waiting("no payment of this scenario yet: pay as instructed")
    view = next((p for p in facts.payments if p.payment_id == payment_id), None)
    final = view is not None and view.status is not Status.PENDING
    own = [d for d in facts.deliveries if d.probe is None]
    probes = [d for d in facts.deliveries if d.probe == PROBES[scenario]]
    if not final:
        return case.waiting(f"payment {payment_id} is not final yet", owes=True)
    if not own:
        return case.failed(
            f"no webhook of the bank was registered when payment {payment_id} became final: register "
            "one (POST /v1/webhooks) before starting the run"
        )
    if not probes or any(d.status == "PENDING" for d in (*own, *probes)):
        return case.waiting("the sandbox is delivering this scenario's events", owes=True)
    if scenario is Scenario.WEBHOOK_DUPLICATE:
        missed = next((d for d in own if d.status != "DELIVERED"), None)
        if missed is not None:
            return case.failed(f"your receiver never acknowledged delivery {missed.delivery_id} with a 2xx")
        refused = next((d for d in probes if not _ok(d.last_status_code)), None)
        if refused is not None:
            answer = f"HTTP {refused.last_status_code}" if refused.last_status_code else "no answer"
            return case.failed(
                f"your receiver gave {answer} to the second delivery of an event it had acknowledged: "
                "answer 2xx and drop the duplicate by its event id"
            )
        return case.passed("your receiver answered 2xx to both deliveries of the same event")
    words = "bad signature" if scenario is Scenario.WEBHOOK_BAD_SIGNATURE else "stale timestamp"
    for probe in probes:
        if probe.last_status_code is None:
            return case.failed(f"your receiver did not answer the event with a {words}")
        if _ok(probe.last_status_code):
            return case.failed(
                f"your receiver accepted an event with a {words} (HTTP {probe.last_status_code}): check "
                "the signature over the raw body and refuse a t more than 5 minutes from your clock"
            )
    return case.passed(f"your receiver refused the event with a {words} (HTTP {probes[0].last_status_code})")


def _ok(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


@dataclass(frozen=True, slots=True)
class Break:
    kind: str
    payment_id: str
    yours: str
    sandbox: str

    def evidence(self) -> Evidence:
        return Evidence(
            None, None, f"{self.kind} {self.payment_id}: yours {self.yours}, sandbox's {self.sandbox}"
        )


def _row_text(row: RecordRow) -> str:
    amount = f" {row.source_amount} {row.source_currency}" if row.source_amount is not None else ""
    return f"{row.status.value}{amount}" + (f" {row.reason_code}" if row.reason_code else "")


def _view_text(view: PaymentView) -> str:
    amount = f" {view.source_amount} {view.source_currency}" if view.source_amount is not None else ""
    return f"{view.status.value}{amount}" + (f" {view.reason_code}" if view.reason_code else "")


def compare(record: Sequence[RecordRow], payments: Sequence[PaymentView]) -> list[Break]:
    """Where the bank's record and the sandbox's payments of the run disagree."""
    ours = {p.payment_id: p for p in payments}
    breaks: list[Break] = []
    seen: set[str] = set()
    for row in record:
        view = ours.get(row.payment_id)
        if row.payment_id in seen:
            breaks.append(Break("DUPLICATE_IN_RECORD", row.payment_id, _row_text(row), "one payment"))
            continue
        seen.add(row.payment_id)
        if view is None:
            breaks.append(
                Break("NOT_A_RUN_PAYMENT", row.payment_id, _row_text(row), "no such payment in the run")
            )
        elif row.status is not view.status:
            breaks.append(Break("STATUS_DIFFERS", row.payment_id, _row_text(row), _view_text(view)))
        elif view.status is Status.SETTLED and (
            row.source_amount is None
            or view.source_amount is None
            or row.source_amount != Decimal(view.source_amount)
            or row.source_currency != view.source_currency
        ):
            breaks.append(Break("AMOUNT_DIFFERS", row.payment_id, _row_text(row), _view_text(view)))
        elif view.status is Status.REJECTED and row.reason_code != view.reason_code:
            breaks.append(Break("REASON_DIFFERS", row.payment_id, _row_text(row), _view_text(view)))
    for view in payments:
        if view.payment_id not in seen:
            breaks.append(Break("MISSING_FROM_RECORD", view.payment_id, "nothing", _view_text(view)))
    return breaks


def _reconciliation(case: _Case) -> Verdict:
    facts = case.facts
    if facts.record is None:
        return case.waiting("no record uploaded yet: PUT /v1/certifications/{id}/record")
    if any(p.status is Status.PENDING for p in facts.payments):
        return case.waiting("a payment of the run is still PENDING at the sandbox", owes=True)
    breaks = compare(facts.record, facts.payments)
    case = replace(case, evidence=tuple(b.evidence() for b in breaks))
    if breaks:
        kinds = sorted({b.kind for b in breaks})
        return case.failed(
            f"{len(breaks)} difference(s) between your record and the sandbox: {', '.join(kinds)}"
        )
    return case.passed(
        f"your record agrees with the sandbox on all {len(facts.payments)} payments of the run"
    )


def judge(scenario: Scenario, facts: Facts, *, now: datetime, timing: Timing, final: bool = False) -> Verdict:
    """Decide one scenario from what the sandbox observed. While the run goes on a scenario may be
    WAITING (for the client, or for the sandbox when `sandbox_owes`); once `final`, WAITING is FAILED."""
    evidence = tuple(describe(o) for o in facts.observations) + tuple(
        describe_delivery(d) for d in facts.deliveries
    )
    case = _Case(facts, timing, now, evidence)
    if scenario is Scenario.LOST_REPLY:
        verdict = _lost_reply(case)
    elif scenario is Scenario.IN_PROGRESS:
        verdict = _in_progress(case)
    elif scenario is Scenario.SLOW_IBPS:
        verdict = _slow(case)
    elif scenario in REJECTIONS:
        verdict = _rejected(case, REJECTIONS[scenario][0])
    elif scenario is Scenario.QUOTE_EXPIRED:
        verdict = _quote_expired(case)
    elif scenario is Scenario.RATE_LIMITED:
        verdict = _rate_limited(case)
    elif scenario in PROBES:
        verdict = _webhook(case, scenario)
    else:
        verdict = _reconciliation(case)
    if final and verdict.status is Outcome.WAITING:
        return replace(
            verdict, status=Outcome.FAILED, reason=f"not done when the run ended: {verdict.reason}"
        )
    return verdict


def run_status(verdicts: Iterable[Verdict]) -> RunStatus:
    return RunStatus.PASSED if all(v.status is Outcome.PASSED for v in verdicts) else RunStatus.FAILED

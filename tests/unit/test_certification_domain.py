"""The certification kit's pure parts: the plan of a run, what the sandbox does to each attempt, the
judge of every scenario, the pending view, the record and the webhook probes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fpslink.certification import record
from fpslink.certification.domain import (
    SUITES,
    Action,
    Delivery,
    Facts,
    Kind,
    Observation,
    Outcome,
    PaymentView,
    RecordRow,
    RunStatus,
    Scenario,
    Suite,
    Timing,
    compare,
    decide,
    judge,
    pending_view,
    plan,
    run_status,
    tags,
)
from fpslink.money import Currency
from fpslink.vocabulary import Status
from fpslink.webhooks import probes, signing

T0 = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)
TIMING = Timing(hold_s=3.0, retry_after_s=2, in_progress_retry_s=1, min_poll_s=1.0)
P1, P2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pay(
    seq: int,
    scenario: Scenario,
    seconds: float,
    action: Action = Action.FORWARD,
    *,
    key: str = "k1",
    status_code: int = 201,
    payment_id: str | None = P1,
    status: str | None = "SETTLED",
    replayed: bool = False,
    **more: object,
) -> Observation:
    return Observation(
        seq=seq,
        scenario=scenario,
        kind=Kind.PAYMENT,
        at=at(seconds),
        action=action,
        request_id=f"r{seq}",
        idempotency_key=key,
        fingerprint="f" * 64,
        status_code=status_code,
        payment_id=payment_id,
        payment_status=status,
        replayed=replayed,
        **more,  # type: ignore[arg-type]
    )


def verdict(
    scenario: Scenario, *seen: Observation, final: bool = False, now: float = 100, **facts: object
) -> Outcome:
    found = judge(scenario, Facts(observations=seen, **facts), now=at(now), timing=TIMING, final=final)  # type: ignore[arg-type]
    return found.status


# the plan ---------------------------------------------------------------------------------------


def test_a_full_run_tags_each_payment_scenario_with_its_own_amount() -> None:
    steps = plan(Suite.FULL, Currency.HKD, [0] * 13)
    assert [s.scenario for s in steps] == list(Scenario)
    amounts = [s.amount_minor for s in steps if s.amount_minor is not None]
    assert len(amounts) == len(set(amounts)) == 12
    assert all(10_000 < a < 20_000 for a in amounts)  # far below every limit
    assert not {40404, 40808, 50202, 50303} & set(amounts)  # never a magic value
    assert next(s for s in steps if s.scenario is Scenario.RECONCILIATION).amount_minor is None
    assert tags(steps) == {s.amount_minor: s.scenario for s in steps if s.amount_minor is not None}


def test_the_cents_make_two_runs_differ() -> None:
    one, other = plan(Suite.PAYMENTS, Currency.CNY, [5] * 10), plan(Suite.PAYMENTS, Currency.CNY, [40] * 10)
    assert [s.amount for s in one][:2] == ["101.06", "102.06"]
    assert {s.amount_minor for s in one}.isdisjoint({s.amount_minor for s in other} - {None})


def test_the_suites() -> None:
    assert Scenario.WEBHOOK_DUPLICATE not in SUITES[Suite.PAYMENTS]
    assert set(SUITES[Suite.WEBHOOKS]) == {
        Scenario.WEBHOOK_DUPLICATE,
        Scenario.WEBHOOK_BAD_SIGNATURE,
        Scenario.WEBHOOK_STALE_TIMESTAMP,
    }


# what the sandbox does --------------------------------------------------------------------------


def test_lost_reply_drops_the_first_answer_only() -> None:
    first = decide(Scenario.LOST_REPLY, [], key="k", quote_id=None, now=T0, hold_until=None, timing=TIMING)
    assert first.action is Action.DROP_REPLY
    again = decide(
        Scenario.LOST_REPLY,
        [pay(1, Scenario.LOST_REPLY, 0, Action.DROP_REPLY)],
        key="k",
        quote_id=None,
        now=T0,
        hold_until=None,
        timing=TIMING,
    )
    assert again.action is Action.FORWARD


def test_in_progress_answers_409_to_the_first_retry_with_the_same_key() -> None:
    s = Scenario.IN_PROGRESS
    dropped = pay(1, s, 0, Action.DROP_REPLY, key="k")
    assert (
        decide(s, [], key="k", quote_id=None, now=T0, hold_until=None, timing=TIMING).action
        is Action.DROP_REPLY
    )
    conflict = decide(s, [dropped], key="k", quote_id=None, now=T0, hold_until=None, timing=TIMING)
    assert (conflict.action, conflict.retry_after_s) == (Action.ANSWER_IN_PROGRESS, 1)
    other_key = decide(s, [dropped], key="other", quote_id=None, now=T0, hold_until=None, timing=TIMING)
    assert other_key.action is Action.FORWARD
    answered = pay(2, s, 1, Action.ANSWER_IN_PROGRESS, key="k", status_code=409, payment_id=None)
    after = decide(s, [dropped, answered], key="k", quote_id=None, now=T0, hold_until=None, timing=TIMING)
    assert after.action is Action.FORWARD


def test_slow_ibps_holds_until_its_time_then_lets_go() -> None:
    s = Scenario.SLOW_IBPS
    first = decide(s, [], key="k", quote_id=None, now=T0, hold_until=None, timing=TIMING)
    assert (first.action, first.hold_until) == (Action.HOLD_PENDING, at(3))
    during = decide(s, [], key="k", quote_id=None, now=at(2.9), hold_until=at(3), timing=TIMING)
    assert during.action is Action.HOLD_PENDING
    assert (
        decide(s, [], key="k", quote_id=None, now=at(3), hold_until=at(3), timing=TIMING).action
        is Action.FORWARD
    )


def test_rejections_reject_every_attempt_with_their_code() -> None:
    for scenario, code in (
        (Scenario.REJECTED_AM02, "AM02"),
        (Scenario.REJECTED_AM14, "AM14"),
        (Scenario.REJECTED_BE23, "BE23"),
        (Scenario.REJECTED_AB06, "AB06"),
    ):
        d = decide(
            scenario, [pay(1, scenario, 0)], key="k2", quote_id=None, now=T0, hold_until=None, timing=TIMING
        )
        assert (d.action, d.reject_code) == (Action.REJECT, code)


def test_quote_expired_expires_the_first_quote_used_only() -> None:
    s = Scenario.QUOTE_EXPIRED
    assert (
        decide(s, [], key="k", quote_id=None, now=T0, hold_until=None, timing=TIMING).action is Action.FORWARD
    )
    assert (
        decide(s, [], key="k", quote_id="q1", now=T0, hold_until=None, timing=TIMING).action
        is Action.EXPIRE_QUOTE
    )
    expired = pay(1, s, 0, Action.EXPIRE_QUOTE, quote_id="q1", status="REJECTED")
    assert (
        decide(s, [expired], key="k2", quote_id="q2", now=T0, hold_until=None, timing=TIMING).action
        is Action.FORWARD
    )


def test_rate_limited_refuses_until_retry_after_has_passed() -> None:
    s = Scenario.RATE_LIMITED
    first = decide(s, [], key="k", quote_id=None, now=T0, hold_until=None, timing=TIMING)
    assert (first.action, first.retry_after_s) == (Action.ANSWER_RATE_LIMITED, 2)
    refused = pay(1, s, 0, Action.ANSWER_RATE_LIMITED, status_code=429, payment_id=None, retry_after_s=2)
    early = decide(s, [refused], key="k", quote_id=None, now=at(0.5), hold_until=None, timing=TIMING)
    assert (early.action, early.retry_after_s) == (Action.ANSWER_RATE_LIMITED, 2)
    later = decide(s, [refused], key="k", quote_id=None, now=at(1.2), hold_until=None, timing=TIMING)
    assert (later.action, later.retry_after_s) == (Action.ANSWER_RATE_LIMITED, 1)
    assert (
        decide(s, [refused], key="k", quote_id=None, now=at(2), hold_until=None, timing=TIMING).action
        is Action.FORWARD
    )


# the judge --------------------------------------------------------------------------------------


def test_lost_reply_passes_on_the_replay_and_fails_on_a_second_payment() -> None:
    s = Scenario.LOST_REPLY
    dropped = pay(1, s, 0, Action.DROP_REPLY)
    assert verdict(s) is Outcome.WAITING
    assert verdict(s, dropped) is Outcome.WAITING
    assert verdict(s, dropped, final=True) is Outcome.FAILED
    assert verdict(s, dropped, pay(2, s, 1, replayed=True)) is Outcome.PASSED
    assert verdict(s, dropped, pay(2, s, 1, key="k2", payment_id=P2)) is Outcome.FAILED
    reused = pay(
        2, s, 1, status_code=422, payment_id=None, status=None, problem_code="IDEMPOTENCY_KEY_REUSED"
    )
    assert verdict(s, dropped, reused) is Outcome.FAILED


def test_in_progress_passes_only_after_waiting_and_retrying_with_the_same_key() -> None:
    s = Scenario.IN_PROGRESS
    dropped = pay(1, s, 0, Action.DROP_REPLY)
    conflict = pay(
        2, s, 0.2, Action.ANSWER_IN_PROGRESS, status_code=409, payment_id=None, status=None, retry_after_s=1
    )
    assert verdict(s, dropped, conflict) is Outcome.WAITING
    assert verdict(s, dropped, conflict, final=True) is Outcome.FAILED
    assert verdict(s, dropped, conflict, pay(3, s, 1.25, replayed=True)) is Outcome.PASSED
    assert verdict(s, dropped, conflict, pay(3, s, 0.5, replayed=True)) is Outcome.FAILED  # did not wait
    assert (
        verdict(s, dropped, pay(2, s, 0.1, key="k2", payment_id=P2)) is Outcome.FAILED
    )  # a new key paid twice


def test_slow_ibps_judges_the_polling_interval_and_the_final_status() -> None:
    s = Scenario.SLOW_IBPS
    first = pay(1, s, 0, Action.HOLD_PENDING, status_code=202, status="PENDING")

    def poll(seq: int, seconds: float, status: str, action: Action = Action.FORWARD) -> Observation:
        return Observation(
            seq, s, Kind.POLL, at(seconds), action, payment_id=P1, status_code=200, payment_status=status
        )

    held = at(3)
    polls = [poll(2, 1.05, "PENDING", Action.HOLD_PENDING), poll(3, 2.1, "PENDING", Action.HOLD_PENDING)]
    assert verdict(s, first, *polls, hold_until=held, now=2.5) is Outcome.WAITING
    assert verdict(s, first, *polls, poll(4, 3.2, "SETTLED"), hold_until=held) is Outcome.PASSED
    too_fast = [poll(2, 0.2, "PENDING", Action.HOLD_PENDING), poll(3, 3.2, "SETTLED")]
    assert verdict(s, first, *too_fast, hold_until=held) is Outcome.FAILED
    resubmitted = pay(2, s, 1.5, Action.HOLD_PENDING, key="k2", payment_id=P2, status="PENDING")
    assert verdict(s, first, resubmitted, hold_until=held) is Outcome.FAILED
    hook = Delivery(f"{P1}:w", P1, None, "DELIVERED", 1, 204, at(3.1))
    assert verdict(s, first, deliveries=[hook], hold_until=held) is Outcome.PASSED
    owed = judge(s, Facts([first], hold_until=held), now=at(1), timing=TIMING)
    assert owed.sandbox_owes and owed.status is Outcome.WAITING


@pytest.mark.parametrize("scenario", [Scenario.REJECTED_AM02, Scenario.REJECTED_AB06])
def test_a_business_rejection_must_not_be_sent_again(scenario: Scenario) -> None:
    code = scenario.value.removeprefix("REJECTED_")
    rejected = pay(1, scenario, 0, Action.REJECT, status="REJECTED", reason_code=code)
    assert verdict(scenario, rejected) is Outcome.PASSED
    assert verdict(
        scenario, rejected, pay(2, scenario, 1, Action.REJECT, replayed=True, status="REJECTED")
    ) is (Outcome.PASSED)  # the same key: a replay, nothing sent again
    again = pay(2, scenario, 1, Action.REJECT, key="k2", payment_id=P2, status="REJECTED", reason_code=code)
    assert verdict(scenario, rejected, again) is Outcome.FAILED


def test_quote_expired_needs_a_new_quote_and_a_new_key() -> None:
    s = Scenario.QUOTE_EXPIRED
    expired = pay(1, s, 0, Action.EXPIRE_QUOTE, quote_id="q1", status="REJECTED", reason_code="QUOTE_EXPIRED")
    quote = Observation(2, s, Kind.QUOTE, at(1), Action.FORWARD, status_code=201, quote_id="q2")
    paid = pay(3, s, 2, key="k2", payment_id=P2, quote_id="q2")
    assert verdict(s, expired, quote, paid) is Outcome.PASSED
    assert verdict(s, expired) is Outcome.WAITING
    assert verdict(s, expired, pay(2, s, 1, key="k2", payment_id=P2, quote_id="q1")) is Outcome.FAILED
    assert verdict(s, pay(1, s, 0)) is Outcome.FAILED  # no quote at all
    stale_quote = replace(quote, seq=0)  # asked for before the expiry: not a new one
    assert verdict(s, stale_quote, expired, paid) is Outcome.WAITING


def test_rate_limited_judges_the_wait() -> None:
    s = Scenario.RATE_LIMITED
    refused = pay(
        1, s, 0, Action.ANSWER_RATE_LIMITED, status_code=429, payment_id=None, status=None, retry_after_s=2
    )
    assert verdict(s, refused, pay(2, s, 2.05)) is Outcome.PASSED
    early = pay(2, s, 0.5, Action.ANSWER_RATE_LIMITED, status_code=429, payment_id=None, status=None)
    assert verdict(s, refused, early, pay(3, s, 2.1)) is Outcome.FAILED
    assert verdict(s, refused) is Outcome.WAITING


def _deliveries(probe: probes.Probe, code: int | None, status: str = "FAILED") -> list[Delivery]:
    return [
        Delivery(f"{P1}:w", P1, None, "DELIVERED", 1, 204, at(1)),
        Delivery(f"{P1}:w{probes.SUFFIX[probe]}", P1, probe.value, status, 1, code, None),
    ]


SETTLED = [PaymentView(P1, Status.SETTLED, "101.00", "HKD", None)]


def test_webhook_duplicate_wants_2xx_twice() -> None:
    s = Scenario.WEBHOOK_DUPLICATE
    paid = pay(1, s, 0)
    dup = probes.Probe.DUPLICATE
    assert verdict(s, paid, deliveries=_deliveries(dup, 200, "DELIVERED"), payments=SETTLED) is Outcome.PASSED
    assert verdict(s, paid, deliveries=_deliveries(dup, 409), payments=SETTLED) is Outcome.FAILED
    assert verdict(s, paid, deliveries=[], payments=SETTLED) is Outcome.FAILED  # no webhook registered
    owed = judge(
        s,
        Facts([paid], deliveries=_deliveries(dup, None, "PENDING"), payments=SETTLED),
        now=T0,
        timing=TIMING,
    )
    assert owed.sandbox_owes


@pytest.mark.parametrize("probe", [probes.Probe.BAD_SIGNATURE, probes.Probe.STALE_TIMESTAMP])
def test_a_webhook_that_does_not_verify_must_be_refused(probe: probes.Probe) -> None:
    s = (
        Scenario.WEBHOOK_BAD_SIGNATURE
        if probe is probes.Probe.BAD_SIGNATURE
        else Scenario.WEBHOOK_STALE_TIMESTAMP
    )
    paid = pay(1, s, 0)
    assert verdict(s, paid, deliveries=_deliveries(probe, 401), payments=SETTLED) is Outcome.PASSED
    assert (
        verdict(s, paid, deliveries=_deliveries(probe, 200, "DELIVERED"), payments=SETTLED) is Outcome.FAILED
    )
    assert verdict(s, paid, deliveries=_deliveries(probe, None), payments=SETTLED) is Outcome.FAILED


def test_reconciliation_compares_the_banks_record_with_the_sandbox() -> None:
    s = Scenario.RECONCILIATION
    views = [
        PaymentView(P1, Status.SETTLED, "101.00", "HKD", None),
        PaymentView(P2, Status.REJECTED, None, "HKD", "AM02"),
    ]
    good = [
        RecordRow(P1, Status.SETTLED, Decimal("101.0"), "HKD", None),
        RecordRow(P2, Status.REJECTED, None, None, "AM02"),
    ]
    assert verdict(s, payments=views) is Outcome.WAITING
    assert verdict(s, record=good, payments=views) is Outcome.PASSED
    assert compare(good[:1], views)[0].kind == "MISSING_FROM_RECORD"
    assert compare([replace(good[0], status=Status.PENDING), good[1]], views)[0].kind == "STATUS_DIFFERS"
    assert (
        compare([replace(good[0], source_amount=Decimal("100")), good[1]], views)[0].kind == "AMOUNT_DIFFERS"
    )
    assert compare([good[0], replace(good[1], reason_code="AM14")], views)[0].kind == "REASON_DIFFERS"
    assert {b.kind for b in compare([*good, good[0]], views)} == {"DUPLICATE_IN_RECORD"}
    assert compare([*good, replace(good[0], payment_id="x")], views)[0].kind == "NOT_A_RUN_PAYMENT"
    assert verdict(s, record=good[:1], payments=views) is Outcome.FAILED


def test_a_run_passes_only_if_every_scenario_passed() -> None:
    passed = judge(Scenario.RECONCILIATION, Facts([], record=[], payments=[]), now=T0, timing=TIMING)
    failed = judge(Scenario.LOST_REPLY, Facts([]), now=T0, timing=TIMING, final=True)
    assert run_status([passed]) is RunStatus.PASSED
    assert run_status([passed, failed]) is RunStatus.FAILED
    assert failed.reason.startswith("not done when the run ended")


# the pending view, the record, the probes ---------------------------------------------------------


def test_the_pending_view_hides_the_outcome_and_keeps_the_amounts() -> None:
    events = [
        {"event": e, "at": "t", "detail": None}
        for e in ("ACCEPTED", "PREPARED_AT_FPS", "PREPARED_AT_IBPS", "SETTLED")
    ]
    body = {
        "status": "SETTLED",
        "settled_at": "t",
        "source_amount": "101.00",
        "events": events,
        "last_event": events[-1],
    }
    view = pending_view(body)
    assert view["status"] == "PENDING" and view["settled_at"] is None and view["source_amount"] == "101.00"
    assert [e["event"] for e in view["events"]] == ["ACCEPTED", "PREPARED_AT_FPS"]
    assert view["last_event"]["event"] == "PREPARED_AT_FPS"


def test_the_record_reads_csv_and_json_alike() -> None:
    as_csv = (
        "payment_id,status,source_amount,source_currency,reason_code\r\n"
        f"{P1},SETTLED,101.00,HKD,\r\n{P2},REJECTED,,,AM02\r\n"
    ).encode()
    as_json = json.dumps(
        {
            "payments": [
                {"payment_id": P1, "status": "SETTLED", "source_amount": "101.00", "source_currency": "HKD"},
                {"payment_id": P2, "status": "REJECTED", "reason_code": "AM02"},
            ]
        }
    ).encode()
    assert record.parse(as_csv, "text/csv") == record.parse(as_json, "application/json")
    rows = record.parse(as_csv, "text/csv; charset=utf-8")
    assert rows[0].source_amount == Decimal("101.00") and rows[1].reason_code == "AM02"


@pytest.mark.parametrize(
    ("raw", "content_type", "words"),
    [
        (b"not json", "application/json", "not valid JSON"),
        (b'{"payments": [{"status": "SETTLED"}]}', None, "payment_id is missing"),
        (b'[{"payment_id": "x", "status": "DONE"}]', None, "status must be"),
        (b'[{"payment_id": "x", "status": "SETTLED", "source_amount": "1e3"}]', None, "not a decimal"),
        (b"id,state\r\nx,SETTLED\r\n", "text/csv", "header must name"),
        (b"\xff\xfe", "text/csv", "UTF-8"),
    ],
)
def test_an_unreadable_record_says_why(raw: bytes, content_type: str | None, words: str) -> None:
    with pytest.raises(record.RecordInvalid, match=words):
        record.parse(raw, content_type)


def test_the_probes_sign_as_they_should() -> None:
    body, secret, now = b'{"event_id":"e"}', "whsec_x", 1_800_000_000
    real = probes.signature(None, secret, now, body)
    assert signing.verify(secret, real, body, now=now)
    assert signing.verify(secret, probes.signature(probes.Probe.DUPLICATE, secret, now, body), body, now=now)
    assert not signing.verify(
        secret, probes.signature(probes.Probe.BAD_SIGNATURE, secret, now, body), body, now=now
    )
    stale = probes.signature(probes.Probe.STALE_TIMESTAMP, secret, now, body)
    assert not signing.verify(secret, stale, body, now=now)
    assert signing.verify(secret, stale, body, now=now - probes.STALE_BY_S)  # well signed, only old
    delivery = f"{P1}:{P2}"
    assert (
        probes.event_id(delivery + probes.SUFFIX[probes.Probe.DUPLICATE], probes.Probe.DUPLICATE) == delivery
    )
    assert len(delivery + probes.SUFFIX[probes.Probe.BAD_SIGNATURE]) <= 80

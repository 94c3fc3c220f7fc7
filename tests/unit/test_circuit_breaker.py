"""The IBPS circuits on a fake clock: one breaker alone, a worker's circuits (per bank and the link's),
and both inside the client over a fake transport.

No network and no sleeping on the fake clock: time moves only when a test moves it, and IBPS is an
`httpx.MockTransport` that answers from a script and counts the calls that reached it. Calls that
wait behind a circuit's trials wait on the event loop's own clock, bounded by the client's time-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from fpslink.circuit import (
    GATEWAY,
    LINK,
    Admission,
    CircuitBreaker,
    Circuits,
    LinkCircuit,
    Ticket,
    acting_for,
    current_parties,
    parties_of,
)
from fpslink.config import Settings
from fpslink.ibps_client import IbpsClient, IbpsUnavailable
from ibps_wire.schemas import TransferOut

RESET = 5.0
T0 = 1000.0
GOES = (Admission.PASS, Admission.TRIAL)


class FakeClock:
    """Monotonic seconds that move only when told (values chosen to stay exact in binary)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def turns(n: int = 20) -> None:
    """Run every callback and task step that is ready, a few rounds deep, without moving time."""
    for _ in range(n):
        await asyncio.sleep(0)


def opened(threshold: int = 3, trials: int = 1) -> tuple[CircuitBreaker, FakeClock]:
    """A breaker that has just opened at T0."""
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=threshold, reset_s=RESET, trials=trials, clock=clock)
    for _ in range(threshold):
        breaker.failure()
    assert breaker.is_open and breaker.admit() is Admission.REFUSE
    return breaker, clock


# --- one breaker -----------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_it_opens_on_the_thresholdth_consecutive_failure(threshold: int) -> None:
    breaker = CircuitBreaker(threshold=threshold, reset_s=RESET, clock=FakeClock())
    for _ in range(threshold - 1):
        breaker.failure()
        assert breaker.admit() is Admission.PASS
        assert not breaker.is_open
    breaker.failure()
    assert breaker.admit() is Admission.REFUSE
    assert breaker.is_open


def test_a_success_starts_the_count_of_consecutive_failures_again() -> None:
    breaker = CircuitBreaker(threshold=3, reset_s=RESET, clock=FakeClock())
    for _ in range(4):
        breaker.failure()
        breaker.failure()
        breaker.success()
    assert breaker.admit() is Admission.PASS and not breaker.is_open
    breaker.failure()
    breaker.failure()
    assert breaker.admit() is Admission.PASS
    breaker.failure()
    assert breaker.admit() is Admission.REFUSE


def test_it_refuses_while_open_until_the_reset_time_has_passed() -> None:
    breaker, clock = opened()
    clock.advance(RESET - 0.5)
    for _ in range(3):
        assert breaker.admit() is Admission.REFUSE
        assert breaker.is_open
    clock.advance(0.5)  # exactly the reset time
    assert breaker.admit() is Admission.TRIAL


def test_half_open_is_not_open_even_while_trials_are_out() -> None:
    """The payment path rejects at once while `is_open`: with a trial out, every new payment on the
    worker used to be rejected AB06 until the trial's time-out and a whole reset time after it."""
    breaker, clock = opened(trials=2)
    clock.advance(RESET)
    assert not breaker.is_open
    assert breaker.admit() is Admission.TRIAL
    assert not breaker.is_open, "a trial is out: calls wait for it or go out beside it"
    assert breaker.admit() is Admission.TRIAL
    assert not breaker.is_open
    clock.advance(3600)
    assert not breaker.is_open


@pytest.mark.parametrize("trials", [1, 2, 3])
def test_half_open_lets_trials_out_at_once_and_the_next_calls_wait(trials: int) -> None:
    breaker, clock = opened(trials=trials)
    assert (breaker.round, breaker.in_flight) == (0, 0)
    clock.advance(RESET)
    assert [breaker.admit() for _ in range(trials)] == [Admission.TRIAL] * trials
    assert (breaker.round, breaker.in_flight) == (1, trials), "the first round, every slot taken"
    for _ in range(3):
        clock.advance(RESET)
        assert breaker.admit() is Admission.WAIT, "beyond the trials: wait for their verdict"


def test_a_successful_trial_closes_it_and_a_full_threshold_is_needed_again() -> None:
    breaker, clock = opened(threshold=3)
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    breaker.success()
    assert not breaker.is_open
    assert all(breaker.admit() is Admission.PASS for _ in range(5))
    breaker.failure()
    breaker.failure()
    assert breaker.admit() is Admission.PASS, "the failures before the trial no longer count"
    breaker.failure()
    assert breaker.admit() is Admission.REFUSE


def test_a_failed_trial_reopens_it_as_from_the_start_of_its_round() -> None:
    """The trial went out at T0 + 5 and timed out at T0 + 7: open again until T0 + 10, not T0 + 12."""
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    round_ = breaker.round
    clock.advance(2.0)  # the trial's time-out
    breaker.failure(trial=round_)
    assert breaker.is_open and breaker.admit() is Admission.REFUSE
    clock.advance(RESET - 2.0 - 0.5)
    assert breaker.is_open and breaker.admit() is Admission.REFUSE
    clock.advance(0.5)  # one reset time after the round began: 3 s of refusals after the failure
    assert not breaker.is_open
    assert breaker.admit() is Admission.TRIAL, "the next round"
    breaker.success()
    assert not breaker.is_open


def test_a_round_starts_with_its_first_trial_not_when_the_reset_time_passed() -> None:
    """Calls are sparse: the trial went out long after the reset time; its failure reopens it for a
    full reset time from when it went out, so a dead IBPS is not called at every sparse call."""
    breaker, clock = opened()
    clock.advance(60.0)
    assert breaker.admit() is Admission.TRIAL
    round_ = breaker.round
    clock.advance(1.0)
    breaker.failure(trial=round_)
    clock.advance(RESET - 1.0 - 0.5)
    assert breaker.admit() is Admission.REFUSE
    clock.advance(0.5)
    assert breaker.admit() is Admission.TRIAL


def test_a_trial_slower_than_the_reset_time_leaves_it_half_open() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    round_ = breaker.round
    clock.advance(RESET + 1.0)
    breaker.failure(trial=round_)
    assert not breaker.is_open, "its round began more than a reset time ago"
    assert breaker.admit() is Admission.TRIAL
    assert breaker.round == round_ + 1


def test_only_a_trial_of_the_current_round_reopens_it() -> None:
    breaker, clock = opened(trials=2)
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    assert breaker.admit() is Admission.TRIAL
    first_round = breaker.round
    breaker.failure(trial=first_round)  # one of the two failed: open again
    assert breaker.is_open
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    breaker.failure(trial=first_round)  # the other trial of the first round, late
    assert not breaker.is_open, "a late failure of an earlier round says nothing of this one"
    assert breaker.admit() is Admission.TRIAL


def test_a_late_failure_of_a_call_from_before_the_opening_does_not_extend_it() -> None:
    breaker, clock = opened()
    clock.advance(3.0)
    breaker.failure()  # a call that went out while the circuit was closed
    clock.advance(RESET - 3.0)
    assert not breaker.is_open, "open for one reset time from the opening"
    assert breaker.admit() is Admission.TRIAL


def test_any_answer_closes_it() -> None:
    """A refusal or a success is IBPS answering, whichever call it answered."""
    breaker, clock = opened()
    clock.advance(1.0)
    breaker.success()  # a call from before the opening, answered late
    assert not breaker.is_open and breaker.admit() is Admission.PASS


def test_an_abandoned_trial_frees_its_slot_at_once() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    breaker.abandon(trial=breaker.round)
    assert not breaker.is_open
    assert breaker.admit() is Admission.TRIAL, "the next trial, with no further wait"
    assert breaker.admit() is Admission.WAIT, "still one at a time"
    breaker.failure(trial=breaker.round)
    assert breaker.admit() is Admission.REFUSE


def test_a_trial_abandoned_twice_frees_one_slot() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    breaker.abandon(trial=breaker.round)
    breaker.abandon(trial=breaker.round)
    assert breaker.in_flight == 0
    assert breaker.admit() is Admission.TRIAL
    assert breaker.admit() is Admission.WAIT


def test_abandoning_a_trial_of_an_earlier_round_frees_nothing() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    stale = breaker.round
    breaker.failure(trial=stale)
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    breaker.abandon(trial=stale)
    assert breaker.in_flight == 1
    assert breaker.admit() is Admission.WAIT


async def test_a_verdict_or_a_freed_slot_wakes_the_calls_waiting() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    first = asyncio.ensure_future(breaker.changed().wait())
    await turns()
    assert not first.done()
    breaker.abandon(trial=breaker.round)
    await turns()
    assert first.done()
    assert breaker.admit() is Admission.TRIAL
    second = asyncio.ensure_future(breaker.changed().wait())
    breaker.success()
    await turns()
    assert second.done()


def test_the_default_clock_is_the_monotonic_one() -> None:
    """The wall clock can jump; a breaker timed by it could stay open for hours or never open."""
    assert CircuitBreaker(threshold=1, reset_s=60.0).clock is time.monotonic
    assert Circuits(threshold=1, reset_s=60.0).clock is time.monotonic


def test_nonsense_parameters_are_refused() -> None:
    for bad in ({"threshold": 0}, {"trials": 0}, {"reset_s": 0.0}, {"reset_s": -1.0}):
        with pytest.raises(ValueError, match=r"^threshold and trials must be at least 1, reset_s positive$"):
            CircuitBreaker(**{"threshold": 1, "reset_s": RESET, **bad})  # type: ignore[arg-type]
    assert CircuitBreaker(threshold=1, reset_s=0.5, trials=1).reset_s == 0.5
    with pytest.raises(ValueError, match=r"^the link's quorum is at least 2: no single bank may open it$"):
        LinkCircuit(quorum=1, reset_s=RESET)
    assert LinkCircuit(quorum=2, reset_s=RESET).quorum == 2


def test_the_defaults_are_three_trials_and_a_quorum_of_three() -> None:
    c = Circuits(threshold=5, reset_s=RESET)
    assert (c.trials, c.link.quorum, c.breaker("HKA").trials) == (3, 3, 3)


def test_the_whole_cycle_closed_open_half_open_closed_and_round_again() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, reset_s=RESET, clock=clock)
    for _round in range(3):
        # closed: failures short of the threshold change nothing a caller sees
        breaker.failure()
        breaker.failure()
        assert breaker.admit() is Admission.PASS and not breaker.is_open
        # open: the threshold-th consecutive failure
        breaker.failure()
        assert breaker.is_open and breaker.admit() is Admission.REFUSE
        clock.advance(RESET - 1)
        assert breaker.is_open and breaker.admit() is Admission.REFUSE
        # half-open: the reset time has passed, one trial at a time
        clock.advance(1)
        assert not breaker.is_open
        assert breaker.admit() is Admission.TRIAL
        assert not breaker.is_open and breaker.admit() is Admission.WAIT
        # closed again: the trial succeeded
        breaker.success()
        assert not breaker.is_open
        assert all(breaker.admit() is Admission.PASS for _ in range(10)), "every call, no trial"
        for _ in range(10):
            breaker.success()
            assert not breaker.is_open and breaker.admit() is Admission.PASS
        clock.advance(3600)
        assert not breaker.is_open and breaker.admit() is Admission.PASS


def test_after_a_recovery_one_failure_does_not_reopen_it() -> None:
    breaker, clock = opened(threshold=3)
    clock.advance(RESET)
    assert breaker.admit() is Admission.TRIAL
    breaker.success()
    breaker.failure()
    assert not breaker.is_open and breaker.admit() is Admission.PASS
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert not breaker.is_open and breaker.admit() is Admission.PASS, "two failures: short of three"


# --- a worker's circuits: one per bank, and the link's ---------------------------------------------


def circuits(*, threshold: int = 2, quorum: int = 3, trials: int = 1) -> tuple[Circuits, FakeClock]:
    clock = FakeClock()
    return Circuits(threshold=threshold, reset_s=RESET, trials=trials, quorum=quorum, clock=clock), clock


async def fail(c: Circuits, bank: str | None, times: int = 1) -> int:
    """`times` calls on behalf of `bank`: each let through gets no answer; returns how many were."""
    through = 0
    for _ in range(times):
        with acting_for(bank):
            ticket = await asyncio.wait_for(c.enter(wait_s=0), 1.0)  # wait_s=0: no waiting at all
        if ticket is not None:
            through += 1
            c.failed(ticket)
    return through


async def goes_out(c: Circuits, *banks: str | None) -> Ticket | None:
    with acting_for(*banks):
        return await asyncio.wait_for(c.enter(wait_s=0), 1.0)  # wait_s=0: no waiting at all


def test_calls_are_the_gateways_unless_made_for_a_bank() -> None:
    assert current_parties() == (GATEWAY,)
    with acting_for("HKB"):
        assert current_parties() == ("HKB",)
        with acting_for("CNB", "HKB", "CNB"):
            assert current_parties() == ("CNB", "HKB")
        with acting_for(None):
            assert current_parties() == (GATEWAY,)
    assert current_parties() == (GATEWAY,)
    assert parties_of([]) == (GATEWAY,)


async def test_one_banks_failures_open_its_own_circuit_only() -> None:
    """Six look-ups of the magic time-out number by one bank used to refuse every bank's payments."""
    c, _ = circuits(threshold=5)
    assert await fail(c, "HKA", 6 * 3) == 5  # six look-ups, three attempts each; the rest refused
    assert c.is_open("HKA")
    assert await goes_out(c, "HKA") is None
    for other in ("HKB", "CNB", None):
        assert not c.is_open(other)
        assert await goes_out(c, other) == Ticket(parties_of([other]))
    assert not c.link.is_open


async def test_the_link_opens_when_a_quorum_of_banks_fail_and_then_refuses_everyone() -> None:
    c, clock = circuits(threshold=2, quorum=3)
    await fail(c, "HKA", 2)
    await fail(c, "HKB", 2)
    assert not c.link.is_open and not c.is_open("FRESH"), "two banks are short of the quorum"
    await fail(c, None, 2)  # the gateway's own calls count as a party
    assert c.link.is_open
    assert c.is_open("FRESH"), "a bank that never failed is refused at once"
    assert await goes_out(c, "FRESH") is None
    assert await goes_out(c, "HKA", "FRESH") is None, "a batch too"
    clock.advance(RESET - 0.5)
    assert await goes_out(c, "FRESH") is None
    clock.advance(0.5)
    assert not c.link.is_open
    assert await goes_out(c, "FRESH") == Ticket(("FRESH",))


async def test_a_bank_whose_circuit_opened_long_ago_does_not_count_towards_the_quorum() -> None:
    c, clock = circuits(threshold=1, quorum=2)
    await fail(c, "HKA")
    clock.advance(RESET)  # HKA's circuit is half-open now, and nobody calls for it
    await fail(c, "HKB")
    assert not c.link.is_open, "only HKB's circuit is open"
    assert not c.is_open("CNC")


async def test_a_half_open_link_reopens_only_on_failures_of_a_quorum_of_banks() -> None:
    c, clock = circuits(threshold=1, quorum=2)
    await fail(c, "HKA")
    await fail(c, "HKB")
    assert c.link.is_open
    clock.advance(RESET)
    assert await goes_out(c, "HKA") is not None, "the link is half-open: HKA's trial"
    started = clock.now
    clock.advance(1.0)
    c.failed(Ticket(("HKA",), c.breaker("HKA").round))
    assert not c.link.is_open, "one bank's failed trial does not close the link to the others"
    assert await goes_out(c, "CNC") is not None
    c.failed(Ticket(("CNC",)))
    assert c.link.is_open, "a second bank failed in the round"
    assert c.link.opened_at == started, "as from the round's start"
    clock.advance(RESET - 1.0)
    assert not c.link.is_open
    ticket = await goes_out(c, "FRESH")
    assert ticket is not None
    c.answered(ticket)
    assert not c.link.is_open and c.link.opened_at is None


async def test_an_answer_to_any_bank_closes_the_link() -> None:
    c, clock = circuits(threshold=1, quorum=2)
    await fail(c, "HKA")
    await fail(c, "HKB")
    clock.advance(RESET)
    ticket = await goes_out(c, "FRESH")
    assert ticket is not None
    c.answered(ticket)
    assert not c.link.is_open
    assert c.is_open("HKA") is False, "HKA is half-open: its next call is a trial"
    assert c.breaker("HKA").opened_at is not None, "and HKA's circuit waits for its own answer"


async def test_a_batch_counts_for_every_bank_in_it_and_asks_only_the_link() -> None:
    c, _ = circuits(threshold=2, quorum=3)
    await fail(c, "HKA", 2)
    assert c.is_open("HKA")
    ticket = await goes_out(c, "HKA", "HKB", "CNC")
    assert ticket == Ticket(("CNC", "HKA", "HKB")), "items were each let through on their own"
    c.failed(ticket)
    assert not c.link.is_open and not c.is_open("HKB")
    ticket = await goes_out(c, "HKB", "CNC")
    assert ticket is not None
    c.failed(ticket)
    assert c.is_open("HKB") and c.is_open("CNC")
    assert c.link.is_open, "a batch with no answer is evidence for every bank in it"
    assert c._tripped == {"HKA", "HKB", "CNC"}
    c.answered(Ticket(("HKA", "HKB", "CNC")))
    assert not any(c.is_open(bank) for bank in ("HKA", "HKB", "CNC", "FRESH"))
    assert c._tripped == set(), "closed circuits are no longer counted"


async def test_no_single_bank_can_open_the_link_whatever_it_sends() -> None:
    c, clock = circuits(threshold=1, quorum=2, trials=3)
    await fail(c, "HKA")
    for _ in range(50):
        clock.advance(RESET)
        tickets = [await goes_out(c, "HKA") for _ in range(5)]
        out = [t for t in tickets if t is not None]
        assert len(out) == 3, "the round's three trials at once; the others found no slot"
        for ticket in out:
            c.failed(ticket)
        assert c.is_open("HKA")
    assert not c.link.is_open and not c.is_open("HKB")


def test_the_circuits_kept_are_bounded() -> None:
    c = Circuits(threshold=1, reset_s=RESET, clock=FakeClock(), max_parties=3)
    for bank in ("A", "B", "C", "D"):
        c.breaker(bank).failure()
        c.failed(Ticket((bank,)))
    assert len(c._parties) == 3 and "A" not in c._parties
    assert c.open_parties() == 3


def test_the_settings_keep_the_quorum_at_two_or_more() -> None:
    assert Settings().ibps_breaker_quorum == 3 and Settings().ibps_breaker_trials == 3
    with pytest.raises(ValueError):
        Settings(ibps_breaker_quorum=1)


# --- inside the client -----------------------------------------------------------------------------


TRANSFER: dict[str, Any] = {
    "seq": 1,
    "payment_id": "P1",
    "kind": "CREDIT",
    "account_id": "CN1",
    "debit_account_id": "IBPS-LINK-CNY",
    "credit_account_id": "CN1",
    "amount": "917.70",
    "currency": "CNY",
    "status": "PENDING",
    "reason_code": None,
    "created_at": "2026-06-22T04:00:00Z",
    "resolved_at": None,
}
"""A transfer as mock_ibps answers it (ibps_wire.schemas.TransferOut)."""
LEDGER_OK: dict[str, Any] = {"ok": True, "violations": [], "balances": {"CNY": "0.00"}, "accounts": 2}


def answered(transfer: Any) -> tuple[str | None, str] | None:
    """The payment id and status of a transfer the client returned, for comparison."""
    return None if transfer is None else (transfer.payment_id, transfer.status.value)


class TimesOut:
    """A scripted call that hangs for `seconds` of the fake clock, then times out."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class FakeIbps:
    """A MockTransport handler: answers from `script` (then `default`), holds every call on `hold`."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.script: list[int | Exception | asyncio.Event | TimesOut] = []
        """Answers in the order calls arrive; an event holds that call, then answers `default`."""
        self.default = 200
        self.paths: list[str] = []
        self.hold: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        answer = self.script.pop(0) if self.script else self.default
        if self.hold is not None:
            await self.hold.wait()
        if isinstance(answer, asyncio.Event):
            await answer.wait()
            answer = self.default
        if isinstance(answer, TimesOut):
            self.clock.advance(answer.seconds)
            answer = httpx.ReadTimeout("no answer")
        if isinstance(answer, Exception):
            raise answer
        if answer >= 400:
            return httpx.Response(answer, json={"code": "TEST", "detail": "scripted"})
        if request.url.path.endswith("/ledger/check"):
            return httpx.Response(answer, json=LEDGER_OK)
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(answer, json=TRANSFER)


class Rig:
    def __init__(self, *, threshold: int, retries: int, trials: int, timeout_s: float) -> None:
        self.clock = FakeClock()
        self.ibps = FakeIbps(self.clock)
        self.client = IbpsClient(
            base_url="http://ibps.test",
            token="t",
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=0.0,  # retries pause asyncio.sleep(0)
            transport=httpx.MockTransport(self.ibps),
        )
        self.client.circuits = Circuits(
            threshold=threshold, reset_s=RESET, trials=trials, quorum=2, clock=self.clock
        )
        self.tasks: list[asyncio.Task[TransferOut | None]] = []

    @property
    def breaker(self) -> CircuitBreaker:
        return self.client.circuits.breaker(GATEWAY)

    def spawn(self, bank: str | None = None) -> asyncio.Task[TransferOut | None]:
        """A guarded call in a task of its own, cancelled at the end of the test if still out."""
        self.tasks.append(asyncio.create_task(self.guarded(bank)))
        return self.tasks[-1]

    @property
    def calls(self) -> int:
        return len(self.ibps.paths)

    async def guarded(self, bank: str | None = None) -> TransferOut | None:
        with acting_for(bank):
            return await self.client.get_transfer("P1")

    async def refused_at_once(self, bank: str | None = None) -> bool:
        """Whether a guarded call is turned away as "circuit open" without waiting on IBPS."""
        call = self.spawn(bank)
        await turns()
        if not call.done():  # it went out (IBPS holds it) or waits behind a trial
            call.cancel()
            return False
        error = call.exception()
        return isinstance(error, IbpsUnavailable) and "circuit open" in str(error)

    async def open_circuit(self, bank: str | None = None) -> None:
        self.ibps.script = [503] * self.client.circuits.threshold
        while self.ibps.script:
            with contextlib.suppress(IbpsUnavailable):
                await self.guarded(bank)
        assert self.client.circuit_open_for(bank)


@pytest.fixture
async def rig() -> AsyncIterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(*, threshold: int = 3, retries: int = 0, trials: int = 1, timeout_s: float = 1.0) -> Rig:
        made.append(Rig(threshold=threshold, retries=retries, trials=trials, timeout_s=timeout_s))
        return made[-1]

    yield make
    for one in made:
        for task in one.tasks:
            task.cancel()
        await asyncio.gather(*one.tasks, return_exceptions=True)
        await one.client.aclose()


async def test_every_failed_attempt_counts_and_an_open_circuit_answers_without_calling_ibps(
    rig: Callable[..., Rig],
) -> None:
    r = rig(threshold=3, retries=2)
    r.ibps.script = [503, 503, 503]
    with pytest.raises(IbpsUnavailable, match="HTTP 503 after 3 attempt"):
        await r.guarded()
    assert r.calls == 3
    assert r.client.circuit_open_for(None)
    with pytest.raises(IbpsUnavailable, match="circuit open"):
        await r.guarded()
    assert r.calls == 3, "refused without reaching IBPS"


@pytest.mark.parametrize(
    "failure",
    [503, 500, httpx.ConnectError("refused"), httpx.ReadTimeout("no answer")],
    ids=["503", "500", "connect-error", "read-timeout"],
)
async def test_no_answer_counts_as_a_failure_and_a_refusal_as_an_answer(
    rig: Callable[..., Rig], failure: int | Exception
) -> None:
    r = rig(threshold=2, retries=0)
    r.ibps.script = [failure, 404, failure]  # a 404 is IBPS answering: it breaks the run
    with pytest.raises(IbpsUnavailable):
        await r.guarded()
    assert await r.guarded() is None
    with pytest.raises(IbpsUnavailable):
        await r.guarded()
    assert not r.client.circuit_open_for(None)
    r.ibps.script = [failure]
    with pytest.raises(IbpsUnavailable):
        await r.guarded()
    assert r.client.circuit_open_for(None)


async def test_unguarded_calls_bypass_the_circuit_and_do_not_count(rig: Callable[..., Rig]) -> None:
    """Operator and check calls must work while the circuit is open, to clear the fault."""
    r = rig(threshold=1, retries=0)
    r.ibps.script = [503, 503, 503]
    for _ in range(3):
        with pytest.raises(IbpsUnavailable):
            await r.client.ledger_check()
    assert not r.client.circuit_open_for(None)
    assert r.breaker.failures == 0
    await r.open_circuit()
    before = r.calls
    assert (await r.client.ledger_check()).ok
    await r.client.clear_faults()
    assert r.calls == before + 2
    assert r.client.circuit_open_for(None), "an unguarded success does not close the circuit"


async def test_a_banks_failures_refuse_its_own_calls_and_no_one_elses(rig: Callable[..., Rig]) -> None:
    r = rig(threshold=5, retries=2)
    r.ibps.default = 504
    for _ in range(6):  # six look-ups of the magic time-out number, three attempts each
        with pytest.raises(IbpsUnavailable):
            await r.guarded("HKA")
    assert r.calls == 5, "the fifth failure opened HKA's circuit; the rest were refused"
    r.ibps.default = 200
    assert r.client.circuit_open_for("HKA")
    assert await r.refused_at_once("HKA")
    calls = r.calls
    assert not r.client.circuit_open_for("HKB")
    assert answered(await r.guarded("HKB")) == ("P1", "PENDING")
    assert answered(await r.guarded()) == ("P1", "PENDING")
    assert r.calls == calls + 2


async def test_after_the_reset_time_a_trial_reaches_ibps_and_its_success_closes(
    rig: Callable[..., Rig],
) -> None:
    r = rig(threshold=2, retries=2)
    await r.open_circuit()
    r.clock.advance(RESET)
    assert not r.client.circuit_open_for(None)
    r.ibps.hold = asyncio.Event()
    calls = r.calls
    trial = r.spawn()
    await turns()
    assert r.calls == calls + 1, "the trial is at IBPS"
    behind = r.spawn()
    await turns()
    assert r.calls == calls + 1 and not behind.done(), "the next call waits for the trial's verdict"
    assert not r.client.circuit_open_for(None), "payments are not rejected while the trial is out"
    r.ibps.hold.set()
    assert answered(await trial) == ("P1", "PENDING")
    assert answered(await behind) == ("P1", "PENDING"), "it went out once the trial closed the circuit"
    assert not r.client.circuit_open_for(None)
    assert r.calls == calls + 2


async def test_a_healthy_trial_beside_a_slow_one_closes_the_circuit(rig: Callable[..., Rig]) -> None:
    """A slow payment was the trial: it no longer decides alone, and refuses no one while it hangs."""
    r = rig(threshold=2, trials=2)
    await r.open_circuit("HKA")
    r.clock.advance(RESET)
    slow = asyncio.Event()
    r.ibps.script = [slow]
    calls = r.calls
    hanging = r.spawn("HKA")
    await turns()
    assert r.calls == calls + 1 and not hanging.done()
    assert answered(await r.guarded("HKA")) == ("P1", "PENDING"), "the second trial, answered"
    assert not r.client.circuit_open_for("HKA")
    r.clock.advance(2.0)
    slow.set()
    await hanging
    assert answered(await r.guarded("HKA")) is not None


async def test_a_failed_trial_refuses_the_calls_waiting_behind_it_at_once(rig: Callable[..., Rig]) -> None:
    r = rig(threshold=2, retries=0)
    await r.open_circuit()
    r.clock.advance(RESET)
    verdict = asyncio.Event()
    r.ibps.script = [verdict]
    r.ibps.default = 503
    trial = r.spawn()
    await turns()
    behind = [r.spawn() for _ in range(3)]
    await turns()
    assert not any(call.done() for call in behind)
    verdict.set()
    with pytest.raises(IbpsUnavailable, match="HTTP 503"):
        await trial
    await turns()
    for call in behind:
        assert call.done()
        with pytest.raises(IbpsUnavailable, match="circuit open"):
            await call
    assert r.client.circuit_open_for(None)


async def test_a_call_behind_a_hanging_trial_waits_no_longer_than_the_time_out(
    rig: Callable[..., Rig],
) -> None:
    r = rig(threshold=1, retries=0, timeout_s=0.05)
    await r.open_circuit()
    r.clock.advance(RESET)
    r.ibps.hold = asyncio.Event()
    r.spawn()
    await turns()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(IbpsUnavailable, match="circuit open"):
        await asyncio.wait_for(r.guarded(), 0.3)  # a call waiting for good would fail here
    assert 0.04 <= loop.time() - started < 0.3


async def test_a_failed_trial_reopens_the_circuit_and_its_retries_are_refused(
    rig: Callable[..., Rig],
) -> None:
    r = rig(threshold=2, retries=2)
    await r.open_circuit()
    r.clock.advance(RESET)
    calls = r.calls
    r.ibps.script = [503]
    with pytest.raises(IbpsUnavailable, match="circuit open"):
        await r.guarded()
    assert r.calls == calls + 1, "one attempt: the reopened circuit refuses the retries"
    assert r.client.circuit_open_for(None)
    r.clock.advance(RESET - 0.5)
    with pytest.raises(IbpsUnavailable, match="circuit open"):
        await r.guarded()
    r.clock.advance(0.5)
    assert await r.guarded() is not None
    assert not r.client.circuit_open_for(None)


async def test_a_trial_cut_short_does_not_keep_the_circuit_open(rig: Callable[..., Rig]) -> None:
    """A cancelled trial says nothing about IBPS: the next call must be let through as the trial.

    Reconciliation cancels a statement page it prefetched when it stops early; if that page was the
    trial, the circuit stayed open for good and every payment was turned away (AB06).
    """
    r = rig(threshold=1, retries=0)
    await r.open_circuit()
    r.clock.advance(RESET)
    r.ibps.hold = asyncio.Event()
    calls = r.calls
    trial = r.spawn()
    await turns()
    assert r.calls == calls + 1, "the trial is at IBPS"
    trial.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await trial
    r.ibps.hold = None
    assert not r.client.circuit_open_for(None), "payments may be accepted again, one of them the trial"
    assert await r.guarded() is not None
    assert r.calls == calls + 2
    assert not r.client.circuit_open_for(None)


async def test_only_the_trial_cut_short_frees_the_trial(rig: Callable[..., Rig]) -> None:
    """A call that went out before the circuit opened, cancelled, must not let a second trial out."""
    r = rig(threshold=1, retries=0)
    early, trial_answer = asyncio.Event(), asyncio.Event()
    r.ibps.script = [early, 503, trial_answer]
    before_opening = r.spawn()
    await turns()
    with pytest.raises(IbpsUnavailable, match="HTTP 503"):
        await r.guarded()
    r.clock.advance(RESET)
    trial = r.spawn()
    await turns()
    assert r.calls == 3, "the trial is at IBPS"
    before_opening.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await before_opening
    behind = r.spawn()
    await turns()
    assert r.calls == 3 and not behind.done(), "still one trial out; the next call waits"
    trial_answer.set()
    assert await trial is not None
    assert await behind is not None
    assert not r.client.circuit_open_for(None)


async def test_concurrent_calls_after_a_recovery_all_reach_ibps(rig: Callable[..., Rig]) -> None:
    """After a successful trial the circuit is closed: several payments at once all go out, and none
    is turned away AB06 while the others are still waiting for IBPS."""
    r = rig(threshold=2, retries=1)
    await r.open_circuit()
    r.clock.advance(RESET)
    assert await r.guarded() is not None, "the trial"
    assert not r.client.circuit_open_for(None)
    r.ibps.hold = asyncio.Event()
    calls = r.calls
    concurrent = [r.spawn() for _ in range(5)]
    await turns()
    assert r.calls == calls + 5, "every call is at IBPS at once"
    assert not any(call.done() for call in concurrent), "none was refused"
    r.ibps.hold.set()
    assert [answered(t) for t in await asyncio.gather(*concurrent)] == [("P1", "PENDING")] * 5
    assert not r.client.circuit_open_for(None)
    assert r.breaker.failures == 0


async def test_a_trial_that_times_out_reopens_the_circuit_for_the_rest_of_a_reset_time(
    rig: Callable[..., Rig],
) -> None:
    r = rig(threshold=2, retries=2)
    await r.open_circuit()
    r.clock.advance(RESET)
    calls = r.calls
    r.ibps.script = [TimesOut(2.0)]
    with pytest.raises(IbpsUnavailable, match="circuit open"):
        await r.guarded()
    assert r.calls == calls + 1, "the trial timed out; its retries met the reopened circuit"
    assert r.client.circuit_open_for(None)
    assert await r.refused_at_once()
    r.clock.advance(RESET - 2.0 - 0.5)
    assert await r.refused_at_once()
    r.clock.advance(0.5)  # one reset time after the trial went out, 3 s after its time-out
    assert await r.guarded() is not None, "the next trial"
    assert not r.client.circuit_open_for(None)


# --- what /metrics is told --------------------------------------------------------------------------


def watched(
    *, threshold: int = 2, quorum: int = 2, max_parties: int = 100
) -> tuple[Circuits, FakeClock, list[tuple[str, bool]]]:
    """Circuits that record each change they report, as `fpslink_ibps_circuit_open` follows them."""
    clock = FakeClock()
    changes: list[tuple[str, bool]] = []
    c = Circuits(
        threshold=threshold,
        reset_s=RESET,
        quorum=quorum,
        clock=clock,
        max_parties=max_parties,
        on_change=lambda circuit, tripped: changes.append((circuit, tripped)),
    )
    return c, clock, changes


async def test_a_circuit_reports_when_it_opens_and_when_it_closes_and_nothing_in_between() -> None:
    c, clock, changes = watched(threshold=2)
    await fail(c, "HKA")
    assert changes == [], "one failure short of the threshold"
    await fail(c, "HKA", 5)
    assert changes == [("HKA", True)], "once, however many calls it refuses or fail after"
    clock.advance(RESET)
    trial = await goes_out(c, "HKA")
    assert trial is not None and changes == [("HKA", True)], "half-open is still tripped"
    c.failed(trial)
    assert changes == [("HKA", True)], "a failed trial re-opens it: no change to report"
    clock.advance(RESET)
    trial = await goes_out(c, "HKA")
    assert trial is not None
    c.answered(trial)
    assert changes == [("HKA", True), ("HKA", False)]
    c.answered(Ticket(("HKA",)))
    assert changes == [("HKA", True), ("HKA", False)], "answers to a closed circuit report nothing"


async def test_the_link_and_the_gateway_report_under_their_own_names() -> None:
    c, _, changes = watched(threshold=1, quorum=2)
    await fail(c, None)
    await fail(c, "HKA")
    assert changes == [(GATEWAY, True), ("HKA", True), (LINK, True)]
    c.answered(Ticket(("CNB",)))
    assert changes[3:] == [(LINK, False)], "an answer to any bank closes the link; the others wait"
    ticket = Ticket((GATEWAY, "HKA"))
    c.answered(ticket)
    assert changes[4:] == [(GATEWAY, False), ("HKA", False)]


def test_a_tripped_circuit_forgotten_to_keep_the_bound_reports_closed() -> None:
    c, _, changes = watched(threshold=1, quorum=10, max_parties=2)
    for bank in ("A", "B", "C"):
        c.failed(Ticket((bank,)))
    assert changes == [("A", True), ("B", True), ("A", False), ("C", True)]


async def test_the_clients_circuits_drive_the_gauge() -> None:
    """The gauge /metrics shows, through a real client: the link's series from the start, a bank's
    from its circuit's first opening."""
    ibps = FakeIbps(FakeClock())
    ibps.default = 503
    client = IbpsClient(
        base_url="http://ibps.test",
        token="t",
        timeout_s=1.0,
        retries=0,
        breaker_threshold=2,
        breaker_quorum=5,
        transport=httpx.MockTransport(ibps),
    )
    try:
        assert REGISTRY.get_sample_value("fpslink_ibps_circuit_open", {"circuit": "link"}) == 0
        for _ in range(2):
            with acting_for("GAUGEBANK"), pytest.raises(IbpsUnavailable):
                await client.get_transfer("P1")
        assert REGISTRY.get_sample_value("fpslink_ibps_circuit_open", {"circuit": "GAUGEBANK"}) == 1
        with pytest.raises(IbpsUnavailable):
            await client.get_transfer("P1")
        with pytest.raises(IbpsUnavailable):
            await client.get_transfer("P1")
        assert REGISTRY.get_sample_value("fpslink_ibps_circuit_open", {"circuit": "gateway"}) == 1
        client.circuits.answered(Ticket(("GAUGEBANK", GATEWAY)))
        for circuit in ("GAUGEBANK", "gateway", "link"):
            assert REGISTRY.get_sample_value("fpslink_ibps_circuit_open", {"circuit": circuit}) == 0
    finally:
        await client.aclose()

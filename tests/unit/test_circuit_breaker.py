"""The IBPS circuit breaker on a fake clock, alone and inside the client over a fake transport.

No network and no sleeping: time moves only when a test moves the clock, and IBPS is an
`httpx.MockTransport` that answers from a script and counts the calls that reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from fpslink.ibps_client import CircuitBreaker, IbpsClient, IbpsUnavailable
from ibps_wire.schemas import TransferOut

RESET = 5.0
T0 = 1000.0


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


def opened(threshold: int = 3) -> tuple[CircuitBreaker, FakeClock]:
    """A breaker that has just opened at T0."""
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=threshold, reset_s=RESET, clock=clock)
    for _ in range(threshold):
        breaker.failure()
    assert breaker.is_open and not breaker.allow()
    return breaker, clock


# --- the breaker alone -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_it_opens_on_the_thresholdth_consecutive_failure(threshold: int) -> None:
    breaker = CircuitBreaker(threshold=threshold, reset_s=RESET, clock=FakeClock())
    for _ in range(threshold - 1):
        breaker.failure()
        assert breaker.allow()
        assert not breaker.is_open
    breaker.failure()
    assert not breaker.allow()
    assert breaker.is_open


def test_a_success_starts_the_count_of_consecutive_failures_again() -> None:
    breaker = CircuitBreaker(threshold=3, reset_s=RESET, clock=FakeClock())
    for _ in range(4):
        breaker.failure()
        breaker.failure()
        breaker.success()
    assert breaker.allow() and not breaker.is_open
    breaker.failure()
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow()


def test_it_refuses_while_open_until_the_reset_time_has_passed() -> None:
    breaker, clock = opened()
    clock.advance(RESET - 0.5)
    for _ in range(3):
        assert not breaker.allow()
        assert breaker.is_open
    clock.advance(0.5)  # exactly the reset time
    assert breaker.allow()


def test_once_the_reset_time_has_passed_it_no_longer_reads_as_open() -> None:
    """Acceptance rejects payments while `is_open`; one must get through to be the trial call."""
    breaker, clock = opened()
    clock.advance(RESET)
    assert not breaker.is_open
    clock.advance(3600)
    assert not breaker.is_open


def test_half_open_lets_one_trial_through_at_a_time() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.allow()
    assert breaker.is_open, "while the trial runs, payments are still turned away"
    for _ in range(3):
        clock.advance(RESET)
        assert not breaker.allow(), "a second call while the trial is out"
        assert breaker.is_open


def test_a_successful_trial_closes_it_and_a_full_threshold_is_needed_again() -> None:
    breaker, clock = opened(threshold=3)
    clock.advance(RESET)
    assert breaker.allow()
    breaker.success()
    assert not breaker.is_open
    assert all(breaker.allow() for _ in range(5))
    breaker.failure()
    breaker.failure()
    assert breaker.allow(), "the failures before the trial no longer count"
    breaker.failure()
    assert not breaker.allow()


def test_a_failed_trial_reopens_it_for_a_full_reset_time_from_the_failure() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.allow()
    clock.advance(1.0)
    breaker.failure()  # the trial failed at T0 + 6
    assert breaker.is_open
    clock.advance(RESET - 0.5)  # past T0 + reset, short of the failure + reset
    assert not breaker.allow()
    clock.advance(0.5)
    assert breaker.allow(), "the next trial"
    breaker.success()
    assert not breaker.is_open


def test_an_abandoned_trial_lets_the_next_call_try_at_once() -> None:
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.allow()
    breaker.abandon()
    assert not breaker.is_open
    assert breaker.allow(), "the next trial, with no further wait"
    assert not breaker.allow(), "still one at a time"
    breaker.failure()
    assert not breaker.allow()


def test_the_default_clock_is_the_monotonic_one() -> None:
    """The wall clock can jump; a breaker timed by it could stay open for hours or never open."""
    assert CircuitBreaker(threshold=1, reset_s=60.0).clock is time.monotonic


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


class FakeIbps:
    """A MockTransport handler: answers from `script` (then `default`), holds every call on `hold`."""

    def __init__(self) -> None:
        self.script: list[int | Exception | asyncio.Event] = []
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
    def __init__(self, *, threshold: int, retries: int) -> None:
        self.ibps = FakeIbps()
        self.clock = FakeClock()
        self.client = IbpsClient(
            base_url="http://ibps.test",
            token="t",
            timeout_s=1.0,
            retries=retries,
            backoff_s=0.0,  # retries pause asyncio.sleep(0)
            transport=httpx.MockTransport(self.ibps),
        )
        self.client.breaker = CircuitBreaker(threshold=threshold, reset_s=RESET, clock=self.clock)
        self.tasks: list[asyncio.Task[TransferOut | None]] = []

    def spawn(self) -> asyncio.Task[TransferOut | None]:
        """A guarded call in a task of its own, cancelled at the end of the test if still out."""
        self.tasks.append(asyncio.create_task(self.guarded()))
        return self.tasks[-1]

    @property
    def calls(self) -> int:
        return len(self.ibps.paths)

    async def guarded(self) -> TransferOut | None:
        return await self.client.get_transfer("P1")

    async def refused_at_once(self) -> bool:
        """Whether a guarded call is turned away as "circuit open" without waiting on IBPS."""
        call = self.spawn()
        await turns()
        if not call.done():  # it went out and IBPS holds it
            call.cancel()
            return False
        error = call.exception()
        return isinstance(error, IbpsUnavailable) and "circuit open" in str(error)

    async def open_circuit(self) -> None:
        self.ibps.script = [503] * self.client.breaker.threshold
        with contextlib.suppress(IbpsUnavailable):
            while self.ibps.script:
                await self.guarded()
        assert self.client.circuit_open


@pytest.fixture
async def rig() -> AsyncIterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(*, threshold: int = 3, retries: int = 0) -> Rig:
        made.append(Rig(threshold=threshold, retries=retries))
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
    assert r.client.circuit_open
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
    assert not r.client.circuit_open
    r.ibps.script = [failure]
    with pytest.raises(IbpsUnavailable):
        await r.guarded()
    assert r.client.circuit_open


async def test_unguarded_calls_bypass_the_circuit_and_do_not_count(rig: Callable[..., Rig]) -> None:
    """Operator and check calls must work while the circuit is open, to clear the fault."""
    r = rig(threshold=1, retries=0)
    r.ibps.script = [503, 503, 503]
    for _ in range(3):
        with pytest.raises(IbpsUnavailable):
            await r.client.ledger_check()
    assert not r.client.circuit_open
    assert r.client.breaker.failures == 0
    await r.open_circuit()
    before = r.calls
    assert (await r.client.ledger_check()).ok
    await r.client.clear_faults()
    assert r.calls == before + 2
    assert r.client.circuit_open, "an unguarded success does not close the circuit"


async def test_after_the_reset_time_one_trial_reaches_ibps_and_its_success_closes(
    rig: Callable[..., Rig],
) -> None:
    r = rig(threshold=2, retries=2)
    await r.open_circuit()
    r.clock.advance(RESET)
    assert not r.client.circuit_open
    r.ibps.hold = asyncio.Event()
    calls = r.calls
    trial = r.spawn()
    await turns()
    assert r.calls == calls + 1, "the trial is at IBPS"
    assert await r.refused_at_once()
    assert r.calls == calls + 1, "only the trial reaches IBPS"
    assert r.client.circuit_open
    r.ibps.hold.set()
    assert answered(await trial) == ("P1", "PENDING")
    assert not r.client.circuit_open
    r.ibps.hold = None
    assert await r.guarded() is not None
    assert r.calls == calls + 2


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
    assert r.client.circuit_open
    r.clock.advance(RESET - 0.5)
    with pytest.raises(IbpsUnavailable, match="circuit open"):
        await r.guarded()
    r.clock.advance(0.5)
    assert await r.guarded() is not None
    assert not r.client.circuit_open


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
    assert r.client.circuit_open
    trial.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await trial
    r.ibps.hold = None
    assert not r.client.circuit_open, "payments may be accepted again, one of them the trial"
    assert await r.guarded() is not None
    assert r.calls == calls + 2
    assert not r.client.circuit_open


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
    assert await r.refused_at_once()
    assert r.calls == 3
    trial_answer.set()
    assert await trial is not None
    assert not r.client.circuit_open


# --- the whole state machine, and the calls after a recovery ---------------------------------------


def test_the_whole_cycle_closed_open_half_open_closed_and_round_again() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, reset_s=RESET, clock=clock)
    for _round in range(3):
        # closed: failures short of the threshold change nothing a caller sees
        breaker.failure()
        breaker.failure()
        assert breaker.allow() and breaker.allow() and not breaker.is_open
        # open: the threshold-th consecutive failure
        breaker.failure()
        assert breaker.is_open and not breaker.allow()
        clock.advance(RESET - 1)
        assert breaker.is_open and not breaker.allow()
        # half-open: the reset time has passed, one trial at a time
        clock.advance(1)
        assert not breaker.is_open
        assert breaker.allow(), "the trial"
        assert breaker.is_open and not breaker.allow(), "a second call while the trial is out"
        # closed again: the trial succeeded
        breaker.success()
        assert not breaker.is_open
        assert all(breaker.allow() for _ in range(10)), "every call, at once, with no trial"
        assert not breaker.is_open
        for _ in range(10):
            breaker.success()
            assert not breaker.is_open and breaker.allow()
        clock.advance(3600)
        assert not breaker.is_open and breaker.allow()


def test_after_a_recovery_calls_in_flight_never_make_it_read_open() -> None:
    """A closed breaker has no trial: concurrent calls each ask allow() before any of them answers."""
    breaker, clock = opened(threshold=2)
    clock.advance(RESET)
    assert breaker.allow()
    breaker.success()
    for _ in range(5):
        assert breaker.allow()
        assert not breaker.is_open
    for _ in range(5):
        breaker.success()
    assert not breaker.is_open and breaker.allow()


def test_after_a_recovery_one_failure_does_not_reopen_it() -> None:
    breaker, clock = opened(threshold=3)
    clock.advance(RESET)
    assert breaker.allow()
    breaker.success()
    breaker.failure()
    assert not breaker.is_open and breaker.allow()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert not breaker.is_open and breaker.allow(), "two failures after a success: still short of three"


def test_a_trial_that_times_out_is_a_failed_trial() -> None:
    """The client reports a time-out as a failure: the circuit opens for a full reset time from it."""
    breaker, clock = opened()
    clock.advance(RESET)
    assert breaker.allow()
    clock.advance(2.0)  # the trial's time-out
    breaker.failure()
    assert breaker.is_open and not breaker.allow()
    clock.advance(RESET - 0.5)
    assert breaker.is_open and not breaker.allow()
    clock.advance(0.5)
    assert not breaker.is_open and breaker.allow()


async def test_concurrent_calls_after_a_recovery_all_reach_ibps(rig: Callable[..., Rig]) -> None:
    """After a successful trial the circuit is closed: several payments at once all go out, and none
    is turned away AB06 while the others are still waiting for IBPS."""
    r = rig(threshold=2, retries=1)
    await r.open_circuit()
    r.clock.advance(RESET)
    assert await r.guarded() is not None, "the trial"
    assert not r.client.circuit_open
    r.ibps.hold = asyncio.Event()
    calls = r.calls
    concurrent = [r.spawn() for _ in range(5)]
    await turns()
    assert r.calls == calls + 5, "every call is at IBPS at once"
    assert not any(call.done() for call in concurrent), "none was refused"
    assert not r.client.circuit_open, "calls in flight after a recovery are not trials"
    r.ibps.hold.set()
    assert [answered(t) for t in await asyncio.gather(*concurrent)] == [("P1", "PENDING")] * 5
    assert not r.client.circuit_open
    assert r.client.breaker.failures == 0


async def test_a_trial_that_times_out_reopens_the_circuit(rig: Callable[..., Rig]) -> None:
    r = rig(threshold=2, retries=2)
    await r.open_circuit()
    r.clock.advance(RESET)
    calls = r.calls
    r.ibps.script = [httpx.ReadTimeout("no answer")]
    with pytest.raises(IbpsUnavailable, match="circuit open"):
        await r.guarded()
    assert r.calls == calls + 1, "the trial timed out; its retries met the reopened circuit"
    assert r.client.circuit_open
    assert await r.refused_at_once()
    r.clock.advance(RESET - 0.5)
    assert await r.refused_at_once()
    r.clock.advance(0.5)
    assert await r.guarded() is not None, "the next trial, a full reset time after the time-out"
    assert not r.client.circuit_open
    r.ibps.hold = asyncio.Event()
    concurrent = [r.spawn() for _ in range(3)]
    await turns()
    assert r.calls == calls + 5 and not r.client.circuit_open
    r.ibps.hold.set()
    await asyncio.gather(*concurrent)

"""The IBPS circuits of one gateway worker: one per bank, and the link's, which refuses everyone.

**Per bank.** A bank can make IBPS fail its own calls on purpose (the sandbox's magic values: a
look-up of +86 139 0000 0408 hangs every time, a CNY 408.08 prepare times out) or by sending slow
payments. With one circuit for the worker, six look-ups of the magic number by one bank opened it,
and every other bank's payments were rejected AB06 "circuit open" for the reset time. A failed call
tells something about IBPS only for the caller whose request failed, so each bank has a circuit of
its own, fed by the calls made on its behalf (`acting_for`): one bank's failures refuse only its own
calls. Calls made for no bank (reconciliation, the operator) share the gateway's circuit, `GATEWAY`.

**The link.** When IBPS is down for everyone, each bank would pay `threshold` time-outs before its
own circuit opened. Failures of several banks at once are what an outage looks like: when the
circuits of `quorum` parties are open at the same time, the link's circuit opens and every call is
refused at once, banks that have not failed yet included. `quorum` is at least 2, so that no single
bank can open it; its default, 3, leaves room for a developer who holds an FPS and an IBPS bank.

**Half-open.** Once `reset_s` has passed, a circuit lets up to `trials` calls out at once, and a
call beyond those waits for their verdict (one attempt's time-out at most) instead of being refused:
a worker with a trial in flight goes on taking payments, and a slow trial does not keep a healthy
call beside it from closing the circuit. Any answer from IBPS closes it. A failed trial re-opens it
as from the moment its round of trials began, not from the failure: a trial that hung until its
time-out (2 s) used to add that wait to the next reset period, and under chaos with 5 s resets
healthy calls were refused for 7 s and more. Now no stretch of refusals after a half-open round is
longer than `reset_s`. The link re-opens when failures of `quorum` parties end its round, for the
same reason it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

GATEWAY = ""
"""The party of calls made for no bank: reconciliation, invariants, the operator's requests."""

LINK = "link"
"""The link's circuit, as `Circuits.on_change` names it (a participant id is upper case)."""

MAX_PARTIES = 10_000
"""Circuits kept per worker; the least recently used is forgotten first, so memory stays bounded."""

Parties = tuple[str, ...]

_PARTIES: ContextVar[Parties] = ContextVar("ibps_parties", default=(GATEWAY,))


def parties_of(participant_ids: Iterable[str | None]) -> Parties:
    """The parties of a call: each bank once, in order; none (or the operator) is the gateway."""
    found = sorted({p or GATEWAY for p in participant_ids})
    return tuple(found) or (GATEWAY,)


@contextlib.contextmanager
def acting_for(*participant_ids: str | None) -> Iterator[None]:
    """Count the IBPS calls made inside the block towards these banks' circuits."""
    token = _PARTIES.set(parties_of(participant_ids))
    try:
        yield
    finally:
        _PARTIES.reset(token)


def act_for(participant_id: str | None) -> None:
    """Count the IBPS calls of the rest of the running task (one request) towards this bank."""
    _PARTIES.set(parties_of([participant_id]))


def current_parties() -> Parties:
    return _PARTIES.get()


class Admission(enum.Enum):
    PASS = "pass"
    """Closed: the call goes out."""
    TRIAL = "trial"
    """Half-open: the call goes out as one of the round's trials."""
    WAIT = "wait"
    """Half-open with every trial slot taken: wait for the round's verdict."""
    REFUSE = "refuse"
    """Open: refused without calling IBPS."""


class CircuitBreaker:
    """One party's circuit: closed -> open after `threshold` consecutive failures -> half-open after
    `reset_s`, `trials` calls at a time -> closed on an answer, or open again as from the round's start.
    """

    def __init__(
        self,
        *,
        threshold: int,
        reset_s: float,
        trials: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or trials < 1 or reset_s <= 0:
            raise ValueError("threshold and trials must be at least 1, reset_s positive")
        self.threshold = threshold
        self.reset_s = reset_s
        self.trials = trials
        self.clock = clock
        """Seconds on a monotonic scale; tests pass a fake one to move time without sleeping."""
        self.failures = 0
        self.opened_at: float | None = None
        self.round = 0
        """Counts the half-open rounds; a trial's outcome counts only in its own round."""
        self.round_started: float | None = None
        self.in_flight = 0
        """Trials of the current round still out."""
        self._changed: asyncio.Event | None = None

    @property
    def is_open(self) -> bool:
        """Refusing every call: open, and the reset time not yet passed (half-open is not open)."""
        return self.opened_at is not None and self.clock() - self.opened_at < self.reset_s

    def admit(self) -> Admission:
        """Whether a call may go out now; a TRIAL holds a slot until its outcome is reported."""
        if self.opened_at is None:
            return Admission.PASS
        now = self.clock()
        if now - self.opened_at < self.reset_s:
            return Admission.REFUSE
        if self.round_started is None:  # no trial is out: the last round ended with in_flight 0
            self.round += 1
            self.round_started = now
        if self.in_flight < self.trials:
            self.in_flight += 1
            return Admission.TRIAL
        return Admission.WAIT

    def success(self) -> None:
        """IBPS answered (a refusal is an answer too): closed, and the failures start again from 0."""
        self.failures, self.opened_at = 0, None
        self._end_round()

    def failure(self, *, trial: int | None = None) -> None:
        """A call got no answer; `trial` is the round of the trial it was, if it was one."""
        self.failures += 1
        if self.opened_at is None:
            if self.failures >= self.threshold:
                self.opened_at = self.clock()
            return
        if trial is not None and trial == self.round and self.round_started is not None:
            self.opened_at = self.round_started
            self._end_round()
        # else: a call that went out before the circuit opened, or a trial of an earlier round

    def abandon(self, *, trial: int) -> None:
        """A trial ended without an outcome (cancelled): it proves nothing, so its slot is free."""
        if trial == self.round and self.round_started is not None and self.in_flight > 0:
            self.in_flight -= 1
            self._notify()

    def changed(self) -> asyncio.Event:
        """Set at the next verdict or freed trial slot: what a waiting call waits on."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def _end_round(self) -> None:
        self.round_started, self.in_flight = None, 0
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


class LinkCircuit:
    """The link's circuit: opens when `quorum` parties' circuits are open at once; half-open after
    `reset_s`, when the parties' own circuits decide; closed on an answer; open again, as from the
    round's start, once calls of `quorum` parties have failed in the round."""

    def __init__(self, *, quorum: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if quorum < 2:
            raise ValueError("the link's quorum is at least 2: no single bank may open it")
        self.quorum = quorum
        self.reset_s = reset_s
        self.clock = clock
        self.opened_at: float | None = None
        self.round_started: float | None = None
        self.failed: set[str] = set()
        """Parties whose calls failed in the current half-open round."""

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and self.clock() - self.opened_at < self.reset_s

    def refuses(self) -> bool:
        """Whether a call is refused now; the first call after the reset time starts a round."""
        if self.opened_at is None:
            return False
        now = self.clock()
        if now - self.opened_at < self.reset_s:
            return True
        if self.round_started is None:
            self.round_started = now
            self.failed.clear()
        return False

    def success(self) -> None:
        self.opened_at, self.round_started = None, None
        self.failed.clear()

    def failure(self, parties: Parties, *, open_parties: Callable[[], int]) -> None:
        """A call of `parties` failed; `open_parties` counts the parties whose circuits are open."""
        if self.opened_at is None:
            if open_parties() >= self.quorum:
                self.opened_at = self.clock()
            return
        if self.round_started is None:
            return  # open and not yet due: a call that went out before it opened
        self.failed.update(parties)
        if len(self.failed) >= self.quorum:
            self.opened_at, self.round_started = self.round_started, None
            self.failed.clear()


@dataclass(frozen=True, slots=True)
class Ticket:
    """A call let through: its parties, and the round of the trial it is (a single party's only)."""

    parties: Parties
    trial: int | None = None


class Circuits:
    """Every circuit of one worker: what the IBPS client asks before a call and tells after it."""

    def __init__(
        self,
        *,
        threshold: int,
        reset_s: float,
        trials: int = 3,
        quorum: int = 3,
        clock: Callable[[], float] = time.monotonic,
        max_parties: int = MAX_PARTIES,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self.trials = trials
        self.clock = clock
        self.max_parties = max_parties
        self.link = LinkCircuit(quorum=quorum, reset_s=reset_s, clock=clock)
        self._parties: OrderedDict[str, CircuitBreaker] = OrderedDict()
        self._tripped: set[str] = set()
        """Parties whose circuits are open or half-open: the link counts the open ones among them."""
        self.on_change = on_change
        """Told (party or LINK, tripped) when a circuit opens and when it closes again (half-open
        stays tripped): what /metrics shows. Called on those changes only, never per call."""

    def _changed(self, circuit: str, tripped: bool) -> None:
        if self.on_change is not None:
            self.on_change(circuit, tripped)

    def breaker(self, party: str) -> CircuitBreaker:
        """The party's circuit, made on first use."""
        found = self._parties.get(party)
        if found is None:
            found = CircuitBreaker(
                threshold=self.threshold, reset_s=self.reset_s, trials=self.trials, clock=self.clock
            )
            self._parties[party] = found
            while len(self._parties) > self.max_parties:
                forgotten, _ = self._parties.popitem(last=False)
                if forgotten in self._tripped:  # made afresh, closed, if the party calls again
                    self._tripped.discard(forgotten)
                    self._changed(forgotten, False)
        else:
            self._parties.move_to_end(party)
        return found

    def is_open(self, participant_id: str | None) -> bool:
        """Whether this bank's calls are refused now (its own circuit, or the link's, is open)."""
        if self.link.is_open:
            return True
        found = self._parties.get(participant_id or GATEWAY)
        return found is not None and found.is_open

    def open_parties(self) -> int:
        return sum(1 for party in self._tripped if self._parties[party].is_open)

    async def enter(self, *, wait_s: float) -> Ticket | None:
        """Let the call of the current parties through, or None to refuse it.

        A call of several parties (a batch) asks the link only: its items were each let through
        on their own. A call that finds every trial slot taken waits up to `wait_s` for the verdict.
        """
        parties = current_parties()
        if self.link.refuses():
            return None
        if len(parties) != 1:
            return Ticket(parties)
        breaker = self.breaker(parties[0])
        loop = asyncio.get_running_loop()
        until = loop.time() + wait_s
        while True:
            admission = breaker.admit()
            if admission is Admission.PASS:
                return Ticket(parties)
            if admission is Admission.TRIAL:
                return Ticket(parties, breaker.round)
            if admission is Admission.REFUSE:
                return None
            remaining = until - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(breaker.changed().wait(), remaining)
            except TimeoutError:
                return None
            if self.link.refuses():
                return None

    def answered(self, ticket: Ticket) -> None:
        """IBPS answered: each party's circuit and the link's close."""
        for party in ticket.parties:
            self.breaker(party).success()
            if party in self._tripped:
                self._tripped.discard(party)
                self._changed(party, False)
        if self.link.opened_at is not None:
            self._changed(LINK, False)
        self.link.success()

    def failed(self, ticket: Ticket) -> None:
        """No answer: it counts against each of the call's parties, and may open the link."""
        for party in ticket.parties:
            breaker = self.breaker(party)
            breaker.failure(trial=ticket.trial)
            if breaker.opened_at is not None and party not in self._tripped:
                self._tripped.add(party)
                self._changed(party, True)
        link_was_open = self.link.opened_at is not None
        self.link.failure(ticket.parties, open_parties=self.open_parties)
        if not link_was_open and self.link.opened_at is not None:
            self._changed(LINK, True)

    def abandoned(self, ticket: Ticket) -> None:
        """The call was cut short (cancelled): no outcome; a trial gives its slot back."""
        if ticket.trial is not None:
            self.breaker(ticket.parties[0]).abandon(trial=ticket.trial)

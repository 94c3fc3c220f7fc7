"""Fault injection: make IBPS misbehave on purpose, reproducibly.

A rule names a call (prepare, commit, abort, lookup, statement), a kind and a probability, with a
seed. Whether a rule fires is a pure function of (seed, call, key, attempt), where the key is the
payment id (or the proxy, or the business date) and the attempt counts the calls this process has
seen for that key while a rule was in force: the same seed gives the same faults for the same
calls, so a run replays exactly. With no rule, only the keys of magic values are counted, so a
sandbox without faults keeps nothing per payment (it kept up to 400,000 entries, about 90 MiB that
a soak saw grow for its first eleven minutes at 300 payments/s).

Kinds:
    error       answer 503 at once; nothing is applied
    timeout     apply nothing and answer nothing until the caller has given up (`hang_ms`)
    lost_reply  apply the call, then hold the answer until the caller has given up
    duplicate   deliver the call twice (the second delivery's answer is returned)
    latency     add `latency_ms` before the call; combines with the others

In a batch (``run_batch``) each item draws its fault as a single call would and counts as one
attempt for its key, but nothing hangs: an item that would time out, or whose reply would be lost,
answers 504 TIMEOUT at once, and the batch waits once for the largest latency of its items.

Magic values work without any rule, for any bank (the first attempt only, except refusals, so
retries and recovery converge):
    lookup of +86 139 0000 0408          the look-up times out, every time
    an IBPS leg of CNY 404.04            the prepare is refused with RR04
    an IBPS leg of CNY 408.08            the prepare times out (not applied)
    an IBPS leg of CNY 502.02            the commit is applied but its reply is lost
    an IBPS leg of CNY 503.03            the prepare is applied but its reply is lost
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from ibps_wire.enums import FaultCall, FaultKind
from mock_ibps.errors import IbpsError, InjectedFault, InjectedTimeout, TimedOut

T = TypeVar("T")
R = TypeVar("R")

MAX_RULES = 100
MAX_TRACKED_KEYS = 200_000
"""Attempt counters kept per (call, key); the oldest are forgotten first, so memory stays bounded."""
MAX_HANG_MS = 120_000
DEFAULT_HANG_MS = 30_000


Call = FaultCall
Kind = FaultKind


MAGIC_TIMEOUT_PROXY = "+8613900000408"
MAGIC_REFUSED_MINOR = 40404
MAGIC_PREPARE_TIMEOUT_MINOR = 40808
MAGIC_COMMIT_LOST_MINOR = 50202
MAGIC_PREPARE_LOST_MINOR = 50303
_MAGIC_LEGS = frozenset({MAGIC_PREPARE_TIMEOUT_MINOR, MAGIC_COMMIT_LOST_MINOR, MAGIC_PREPARE_LOST_MINOR})
"""The amounts whose faults depend on the attempt (a refusal, RR04, does not)."""


@dataclass(frozen=True, slots=True)
class FaultRule:
    call: Call
    kind: Kind
    probability: float
    seed: int
    latency_ms: int = 0
    hang_ms: int = DEFAULT_HANG_MS
    only_attempts: int = 0
    """Fire only on the first N attempts for a key (0: any attempt), so retries can get through."""
    rule_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def fires(self, key: str, attempt: int) -> bool:
        if self.only_attempts and attempt > self.only_attempts:
            return False
        if self.probability <= 0:
            return False
        if self.probability >= 1:
            return True
        digest = hashlib.blake2b(
            f"{self.seed}|{self.call}|{self.kind}|{key}|{attempt}".encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.probability

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BatchCall:
    """One item of a batch, as the single call it stands for."""

    call: Call
    key: str
    amount_minor: int | None = None


class FaultInjector:
    """The rules in force in this process and what they have done."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._attempts: OrderedDict[tuple[Call, str], int] = OrderedDict()
        self._amounts: OrderedDict[str, int] = OrderedDict()
        self.injected: Counter[tuple[str, str]] = Counter()

    def add(self, rule: FaultRule) -> FaultRule:
        if len(self.rules) >= MAX_RULES:
            raise ValueError(f"at most {MAX_RULES} fault rules")
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule and forget attempts and counts: the next run starts afresh."""
        self.rules.clear()
        self._attempts.clear()
        self.injected.clear()

    def _attempt(self, call: Call, key: str) -> int:
        ident = (call, key)
        attempt = self._attempts.pop(ident, 0) + 1
        self._attempts[ident] = attempt
        while len(self._attempts) > MAX_TRACKED_KEYS:
            self._attempts.popitem(last=False)
        return attempt

    def decide(
        self, call: Call, key: str, *, amount_minor: int | None = None
    ) -> tuple[Kind | None, int, int]:
        """(the fault to inject or None, added latency ms, hang ms) for this attempt."""
        if call is Call.PREPARE and amount_minor is not None:
            if amount_minor in _MAGIC_LEGS:  # its commit is told apart by the amount remembered here
                self._amounts[key] = amount_minor
                while len(self._amounts) > MAX_TRACKED_KEYS:
                    self._amounts.popitem(last=False)
        elif amount_minor is None:
            amount_minor = self._amounts.get(key)
        counted = bool(self.rules) or amount_minor in _MAGIC_LEGS
        attempt = self._attempt(call, key) if counted else 1
        magic = _magic(call, key, amount_minor, attempt)
        if magic is not None:
            self.injected[(call.value, f"magic_{magic.value}")] += 1
            return magic, 0, DEFAULT_HANG_MS
        latency, chosen, hang = 0, None, DEFAULT_HANG_MS
        for rule in self.rules:
            if rule.call is not call or not rule.fires(key, attempt):
                continue
            if rule.kind is Kind.LATENCY:
                latency += rule.latency_ms
                self.injected[(call.value, rule.kind.value)] += 1
            elif chosen is None:
                chosen, hang = rule.kind, rule.hang_ms
                self.injected[(call.value, rule.kind.value)] += 1
        return chosen, latency, hang

    async def run(
        self,
        call: Call,
        key: str,
        action: Callable[[], Awaitable[T]],
        *,
        amount_minor: int | None = None,
    ) -> T:
        """Run `action` (one IBPS use case) with whatever fault this attempt draws."""
        kind, latency_ms, hang_ms = self.decide(call, key, amount_minor=amount_minor)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        if kind is Kind.ERROR:
            raise InjectedFault(f"injected error on {call.value}", key=key)
        if kind is Kind.TIMEOUT:
            await asyncio.sleep(hang_ms / 1000)
            raise InjectedTimeout(f"injected time-out on {call.value}", key=key)
        result = await action()
        if kind is Kind.DUPLICATE:
            result = await action()
        elif kind is Kind.LOST_REPLY:
            await asyncio.sleep(hang_ms / 1000)
        return result

    async def run_batch(
        self,
        calls: Sequence[BatchCall],
        action: Callable[[list[int]], Awaitable[Sequence[R]]],
    ) -> list[R | IbpsError]:
        """Run a batch (one ledger transaction) with whatever fault each item's attempt draws.

        ``action`` gets the indexes of the items that reach the ledger, in order, a duplicated
        item twice in a row, and answers each; an item's last answer is its result. An error
        answers 503 and a time-out 504 without applying the item; a lost reply applies it and
        answers 504 too, so the caller cannot tell the two apart, as with a single call.
        """
        decisions = [self.decide(c.call, c.key, amount_minor=c.amount_minor) for c in calls]
        latency_ms = max((latency for _, latency, _ in decisions), default=0)
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        delivered: list[int] = []
        for index, (kind, _, _) in enumerate(decisions):
            if kind is Kind.ERROR or kind is Kind.TIMEOUT:
                continue
            delivered += [index, index] if kind is Kind.DUPLICATE else [index]
        answers = await action(delivered) if delivered else []
        if len(answers) != len(delivered):
            raise RuntimeError(f"{len(answers)} answers for {len(delivered)} delivered items")
        last = dict(zip(delivered, answers, strict=True))
        results: list[R | IbpsError] = []
        for index, (call, (kind, _, _)) in enumerate(zip(calls, decisions, strict=True)):
            if kind is Kind.ERROR:
                results.append(InjectedFault(f"injected error on {call.call.value}", key=call.key))
            elif kind is Kind.TIMEOUT or kind is Kind.LOST_REPLY:
                results.append(
                    TimedOut(f"no answer to {call.call.value}; its outcome is unknown", key=call.key)
                )
            else:
                results.append(last[index])
        return results


def _magic(call: Call, key: str, amount_minor: int | None, attempt: int) -> Kind | None:
    if call is Call.LOOKUP and key == MAGIC_TIMEOUT_PROXY:
        return Kind.TIMEOUT
    if attempt != 1 or amount_minor is None:
        return None
    if call is Call.PREPARE and amount_minor == MAGIC_PREPARE_TIMEOUT_MINOR:
        return Kind.TIMEOUT
    if call is Call.PREPARE and amount_minor == MAGIC_PREPARE_LOST_MINOR:
        return Kind.LOST_REPLY
    if call is Call.COMMIT and amount_minor == MAGIC_COMMIT_LOST_MINOR:
        return Kind.LOST_REPLY
    return None

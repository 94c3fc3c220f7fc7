"""The settlement state machine, free of I/O.

    ACCEPTED ──(both prepared)──> COMMITTING ──(IBPS committed)──> SETTLED
        │
        ├──(timed out / no answer)──> ABORTING ──(IBPS voided)──> REJECTED
        └──(IBPS refused: its side is already void)─────────────> REJECTED

ACCEPTED means the payment is bound, its limits reserved and the FPS side prepared. COMMITTING and
ABORTING are the durable decision (the point of no return); the FPS side is posted or voided in the
same transaction that records it. A payment rejected at acceptance goes straight to REJECTED.
"""

from __future__ import annotations

from fpslink.vocabulary import State, Status

TRANSITIONS: dict[State, frozenset[State]] = {
    State.ACCEPTED: frozenset({State.COMMITTING, State.ABORTING, State.REJECTED}),
    State.COMMITTING: frozenset({State.SETTLED}),
    State.ABORTING: frozenset({State.REJECTED}),
    State.SETTLED: frozenset(),
    State.REJECTED: frozenset(),
}

FINAL = frozenset({State.SETTLED, State.REJECTED})


class IllegalTransition(RuntimeError):
    pass


def check_transition(current: State, target: State) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"{current} -> {target} is not a settlement step")


def status_of(state: State) -> Status:
    if state is State.SETTLED:
        return Status.SETTLED
    if state is State.REJECTED:
        return Status.REJECTED
    return Status.PENDING


OUTCOMES = {State.COMMITTING: State.SETTLED, State.ABORTING: State.REJECTED}
"""The final state each durable decision ends in, once IBPS has done its part."""


def outcome(decision: State) -> State:
    """Where phase two takes a decided payment; anything else has no phase two."""
    try:
        return OUTCOMES[decision]
    except KeyError:
        raise IllegalTransition(f"{decision} is not a decision") from None


def recovery_action(state: State) -> State | None:
    """What recovery drives a stale payment to: undecided aborts, decided finishes its decision,
    final is left alone. The recovery sweep calls this to choose."""
    if state is State.ACCEPTED:
        return State.ABORTING
    return OUTCOMES.get(state)

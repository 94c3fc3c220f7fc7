from __future__ import annotations

import itertools

import pytest

from fpslink.settlement.states import (
    FINAL,
    TRANSITIONS,
    IllegalTransition,
    check_transition,
    outcome,
    recovery_action,
    status_of,
)
from fpslink.vocabulary import State, Status

LEGAL = {
    (State.ACCEPTED, State.COMMITTING),
    (State.ACCEPTED, State.ABORTING),
    (State.ACCEPTED, State.REJECTED),
    (State.COMMITTING, State.SETTLED),
    (State.ABORTING, State.REJECTED),
}
ALL_PAIRS = list(itertools.product(State, State))
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


def test_all_states() -> None:
    assert {s.value for s in State} == {"ACCEPTED", "COMMITTING", "ABORTING", "SETTLED", "REJECTED"}
    assert set(TRANSITIONS) == set(State)
    assert len(ALL_PAIRS) == 25 and len(ILLEGAL) == 20


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions_are_accepted(current: State, target: State) -> None:
    assert check_transition(current, target) is None


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transitions_raise(current: State, target: State) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


def test_transition_table_is_exactly_the_legal_set() -> None:
    table = {(src, dst) for src, dsts in TRANSITIONS.items() for dst in dsts}
    assert table == LEGAL


def test_final_states() -> None:
    assert frozenset({State.SETTLED, State.REJECTED}) == FINAL
    for state in FINAL:
        assert TRANSITIONS[state] == frozenset()
    for state in set(State) - FINAL:
        assert TRANSITIONS[state], f"{state} must lead somewhere"


def test_every_non_final_state_reaches_a_final_one() -> None:
    for start in State:
        seen = {start}
        frontier = [start]
        while frontier:
            nxt = [t for s in frontier for t in TRANSITIONS[s] if t not in seen]
            seen.update(nxt)
            frontier = nxt
        assert seen & FINAL


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (State.ACCEPTED, Status.PENDING),
        (State.COMMITTING, Status.PENDING),
        (State.ABORTING, Status.PENDING),
        (State.SETTLED, Status.SETTLED),
        (State.REJECTED, Status.REJECTED),
    ],
)
def test_status_of(state: State, status: Status) -> None:
    assert status_of(state) is status
    assert (status is not Status.PENDING) == (state in FINAL)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (State.ACCEPTED, State.ABORTING),
        (State.COMMITTING, State.SETTLED),
        (State.ABORTING, State.REJECTED),
        (State.SETTLED, None),
        (State.REJECTED, None),
    ],
)
def test_recovery_action(state: State, action: State | None) -> None:
    assert recovery_action(state) is action


@pytest.mark.parametrize("state", list(State))
def test_recovery_action_is_a_legal_step(state: State) -> None:
    action = recovery_action(state)
    if state in FINAL:
        assert action is None
    else:
        assert action is not None
        check_transition(state, action)


def test_recovery_never_commits_an_undecided_payment() -> None:
    assert recovery_action(State.ACCEPTED) is not State.COMMITTING
    assert recovery_action(State.ACCEPTED) is not State.SETTLED


def test_status_values() -> None:
    assert {s.value for s in Status} == {"PENDING", "SETTLED", "REJECTED"}


@pytest.mark.parametrize(
    ("decision", "final"), [(State.COMMITTING, State.SETTLED), (State.ABORTING, State.REJECTED)]
)
def test_a_decision_has_one_outcome_and_it_is_a_legal_step(decision: State, final: State) -> None:
    assert outcome(decision) is final
    check_transition(decision, final)
    assert recovery_action(decision) is final  # recovery finishes a decision the way phase two does


@pytest.mark.parametrize("state", [State.ACCEPTED, State.SETTLED, State.REJECTED])
def test_only_a_decision_has_an_outcome(state: State) -> None:
    with pytest.raises(IllegalTransition):
        outcome(state)


def test_an_illegal_step_names_both_states() -> None:
    with pytest.raises(IllegalTransition, match=r"^SETTLED -> ABORTING is not a settlement step$"):
        check_transition(State.SETTLED, State.ABORTING)


def test_asking_an_undecided_payment_for_its_outcome_names_its_state() -> None:
    with pytest.raises(IllegalTransition, match=r"^ACCEPTED is not a decision$"):
        outcome(State.ACCEPTED)

"""The pure planner of a batch (``plan_batch``), without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mock_ibps.domain import (
    AbortRequest,
    Account,
    CommitRequest,
    LedgerStateError,
    Outcome,
    PrepareRequest,
    PrepareResult,
    Transfer,
    TransferKind,
    TransferStatus,
    accounts_to_lock,
    first_writers,
    plan_batch,
)
from mock_ibps.errors import TransferNotFound, TransferVoided

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ACCOUNT = Account("CN1", "BK1", "x", "CNY", balance_minor=10_000, held_minor=0)


def pending(payment_id: str, kind: TransferKind, amount_minor: int, seq: int = 1) -> Transfer:
    debit, credit = ("CN1", "LINK") if kind is TransferKind.DEBIT else ("LINK", "CN1")
    return Transfer(
        seq, f"t{seq}", payment_id, kind, "CN1", debit, credit, "CNY", amount_minor,
        TransferStatus.PENDING, None, NOW, None,
    )  # fmt: skip


def tombstone(payment_id: str) -> Transfer:
    return Transfer(
        9, "t9", payment_id, None, None, None, None, None, None,
        TransferStatus.VOIDED, "ALREADY_ABORTED", NOW, NOW,
    )  # fmt: skip


def test_debits_hold_in_order_and_a_later_one_is_refused_am04() -> None:
    requests = [
        PrepareRequest("a", TransferKind.DEBIT, "CN1", 6_000, "CNY"),
        PrepareRequest("b", TransferKind.DEBIT, "CN1", 6_000, "CNY"),
        PrepareRequest("c", TransferKind.DEBIT, "CN1", 4_000, "CNY"),
    ]
    inserted = {
        r.payment_id: pending(r.payment_id, r.kind, r.amount_minor, i) for i, r in enumerate(requests)
    }
    plan = plan_batch(requests, recorded={}, inserted=inserted, accounts={"CN1": ACCOUNT}, now=NOW)
    outcomes = [a.outcome if isinstance(a, PrepareResult) else a for a in plan.answers]
    assert outcomes == [Outcome.PREPARED, Outcome.REFUSED, Outcome.PREPARED]
    assert plan.resolved["b"].reason_code == "AM04"
    assert plan.resolved["b"].resolved_at == NOW
    assert plan.accounts == {"CN1": Account("CN1", "BK1", "x", "CNY", 10_000, 10_000)}


def test_a_commit_before_the_prepare_that_records_it_finds_nothing() -> None:
    requests = [
        CommitRequest("p"),
        PrepareRequest("p", TransferKind.CREDIT, "CN1", 500, "CNY"),
        CommitRequest("p"),
    ]
    assert set(first_writers(requests)) == {"p"}
    inserted = {"p": pending("p", TransferKind.CREDIT, 500)}
    assert accounts_to_lock(requests, inserted.values()) == {"CN1"}
    plan = plan_batch(requests, recorded={}, inserted=inserted, accounts={"CN1": ACCOUNT}, now=NOW)
    assert isinstance(plan.answers[0], TransferNotFound)
    assert isinstance(plan.answers[2], Transfer)
    assert plan.answers[2].status is TransferStatus.POSTED
    assert plan.accounts["CN1"].balance_minor == 10_500


def test_a_tombstone_refuses_the_prepare_after_it_and_blocks_the_commit() -> None:
    requests = [
        AbortRequest("p"),
        PrepareRequest("p", TransferKind.DEBIT, "CN1", 500, "CNY"),
        CommitRequest("p"),
    ]
    assert first_writers(requests) == {"p": AbortRequest("p")}
    plan = plan_batch(requests, recorded={}, inserted={"p": tombstone("p")}, accounts={}, now=NOW)
    assert plan.answers[0] == tombstone("p")
    assert isinstance(plan.answers[1], PrepareResult)
    assert plan.answers[1].reason_code == "ALREADY_ABORTED"
    assert isinstance(plan.answers[2], TransferVoided)
    assert plan.resolved == {}
    assert plan.accounts == {}


def test_credits_that_stay_pending_lock_no_account() -> None:
    requests = [PrepareRequest("p", TransferKind.CREDIT, "CN1", 500, "CNY")]
    assert accounts_to_lock(requests, [pending("p", TransferKind.CREDIT, 500)]) == set()


def test_moving_an_account_that_was_not_locked_fails_the_batch() -> None:
    with pytest.raises(LedgerStateError):
        plan_batch(
            [CommitRequest("p")],
            recorded={"p": pending("p", TransferKind.DEBIT, 500)},
            inserted={},
            accounts={},
            now=NOW,
        )

"""The idempotency of POST endpoints, on fake units of work: run once, replay, refuse a reuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fpslink.config import Settings
from fpslink.errors import Conflict, InvalidRequest, NotFound
from fpslink.idempotency.service import IdempotencyService
from fpslink.principal import Principal
from unit.fakes import FakeDatabase

BANK = Principal("HKBANK")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 22, 4, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Action:
    """An endpoint's work: counts its runs, answers 201, or raises what it is told to."""

    def __init__(self) -> None:
        self.runs = 0
        self.fail_with: Exception | None = None

    async def __call__(self) -> tuple[int, Any]:
        self.runs += 1
        if self.fail_with is not None:
            raise self.fail_with
        return 201, {"run": self.runs}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def service(db: FakeDatabase, clock: Clock) -> IdempotencyService:
    return IdempotencyService(
        db.uow, clock=clock, settings=Settings(request_lease_s=30, idempotency_ttl_h=24)
    )


async def run(service: IdempotencyService, action: Action, *, fingerprint: str = "fp-1") -> Any:
    return await service.run_idempotent(
        BANK, key="key-1", endpoint="POST /v1/quotes", request_fingerprint=fingerprint, action=action
    )


async def test_the_same_request_runs_once_and_is_replayed(service: IdempotencyService) -> None:
    action = Action()
    first = await run(service, action)
    again = await run(service, action)
    assert (first.status, first.body, first.replayed) == (201, {"run": 1}, False)
    assert (again.status, again.body, again.replayed) == (201, {"run": 1}, True)
    assert action.runs == 1


async def test_without_a_key_every_request_runs(service: IdempotencyService, db: FakeDatabase) -> None:
    action = Action()
    for _ in range(2):
        await service.run_idempotent(
            BANK, key=None, endpoint="POST /v1/quotes", request_fingerprint="fp", action=action
        )
    assert action.runs == 2 and db.opened == 0


async def test_another_request_with_the_key_is_refused(service: IdempotencyService) -> None:
    action = Action()
    await run(service, action)
    with pytest.raises(InvalidRequest) as refused:
        await run(service, action, fingerprint="fp-2")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"


async def test_a_refused_request_frees_its_key_for_a_retry(service: IdempotencyService) -> None:
    action = Action()
    action.fail_with = NotFound("not yet")
    with pytest.raises(NotFound):
        await run(service, action)
    action.fail_with = None
    assert (await run(service, action)).replayed is False
    assert action.runs == 2


async def test_a_request_still_running_answers_in_progress_until_its_lease_ends(
    service: IdempotencyService, db: FakeDatabase, clock: Clock
) -> None:
    action = Action()
    action.fail_with = RuntimeError("the worker died mid-request")  # not a refusal: the key stays bound
    with pytest.raises(RuntimeError):
        await run(service, action)
    action.fail_with = None
    with pytest.raises(Conflict) as busy:
        await run(service, action)
    assert busy.value.code == "IDEMPOTENCY_IN_PROGRESS"
    clock.now += timedelta(seconds=31)
    taken_over = await run(service, action)
    assert (taken_over.body, taken_over.replayed) == ({"run": 2}, False)  # the busy answer ran nothing
    ((record, _),) = db.rows.idempotency_keys.values()
    assert record.completed_at == clock.now and record.response_status == 201

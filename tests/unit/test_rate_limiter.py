"""The token-bucket policy and the limiter's leases, on a fake database and a fake wall clock."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from fpslink.ratelimit import policy
from fpslink.ratelimit.policy import Quota
from fpslink.ratelimit.repository import Lease
from fpslink.ratelimit.service import RateLimiter
from unit.fakes import FakeDatabase, FakeRateLimitsRepository


class Wall:
    """A wall clock that moves only when told, or when the limiter sleeps on it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Sleepers that start together wake together: the clock moves to the end of the sleep."""
        self.slept.append(seconds)
        until = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, until)


def limiter(db: FakeDatabase, wall: Wall, max_wait_s: float = 0.0) -> RateLimiter:
    return RateLimiter(db.uow, max_wait_s=max_wait_s, now=wall, sleep=wall.sleep)


@pytest.mark.parametrize(
    ("quota", "lease"),
    [
        (Quota(100, 2), 13),
        (Quota(1, 60), 1),
        (Quota(4, 1), 1),
        (Quota(1_000_000, 1), 250_000),
        (Quota(3, 1), 1),
    ],
)
def test_a_lease_is_a_quarter_second_of_refill_within_one_and_the_quota(quota: Quota, lease: int) -> None:
    assert quota.lease == lease


def test_the_bucket_refills_at_quota_per_window_up_to_the_quota() -> None:
    quota = Quota(100, 2)
    assert quota.refilled(0, 1.0) == 50
    assert quota.refilled(90, 1.0) == 100
    assert quota.refilled(10, -5.0) == 10  # a clock that went back adds nothing
    assert quota.seconds_until(0.5, 13) == pytest.approx(0.25)
    assert quota.seconds_until(20, 13) == 0


def test_the_fields_follow_the_draft() -> None:
    quota = Quota(100, 2)
    assert policy.admitted(quota, 57.9).headers() == [
        (b"ratelimit-policy", b'"bank";q=100;w=2'),
        (b"ratelimit", b'"bank";r=57;t=1'),
    ]
    refused = policy.refused(quota, 0.02)
    assert refused.headers() == [
        (b"ratelimit-policy", b'"bank";q=100;w=2'),
        (b"ratelimit", b'"bank";r=0;t=1'),
        (b"retry-after", b"1"),
    ]
    assert policy.refused(Quota(5, 60), 11.2).reset_s == 12


async def test_a_bank_gets_its_quota_then_refusals_that_cost_no_lease_until_a_lease_has_refilled() -> None:
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall)
    quota = Quota(10, 10)  # a lease is one token
    decisions = [await limits.admit("HKBANK", quota) for _ in range(12)]
    assert [d.admitted for d in decisions] == [True] * 10 + [False] * 2
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    leases = db.commits
    assert leases == 11  # ten tokens one at a time, then one that found the bucket empty
    for _ in range(50):
        assert not (await limits.admit("HKBANK", quota)).admitted
    assert db.commits == leases
    wall.now += 1.0  # one token refilled
    assert (await limits.admit("HKBANK", quota)).admitted
    assert not (await limits.admit("HKBANK", quota)).admitted


async def test_workers_share_one_bucket() -> None:
    db, wall = FakeDatabase(), Wall()
    workers = [limiter(db, wall) for _ in range(3)]
    quota = Quota(100, 60)  # a lease is one token
    admitted = 0
    for i in range(300):
        admitted += (await workers[i % 3].admit("HKBANK", quota)).admitted
    assert admitted == 100


async def test_a_bank_within_a_slow_quota_gets_all_of_it_however_its_requests_are_spread() -> None:
    """A one-token lease taken ahead would sit in the worker the bank left, and the other worker
    would refuse the bank's last request of its quota for the 3 s that token takes to refill."""
    db, wall = FakeDatabase(), Wall()
    first, second = limiter(db, wall), limiter(db, wall)
    quota = Quota(20, 60)
    assert not quota.leases_ahead
    decisions = [await first.admit("HKBANK", quota)]
    decisions += [await second.admit("HKBANK", quota) for _ in range(19)]
    assert all(d.admitted for d in decisions)
    assert not (await second.admit("HKBANK", quota)).admitted
    assert Quota(16, 1).leases_ahead and Quota(4, 1).leases_ahead and not Quota(3, 1).leases_ahead


async def test_a_request_that_costs_several_tokens_spends_them_all_or_none() -> None:
    db, wall = FakeDatabase(), Wall()
    first, second = limiter(db, wall), limiter(db, wall)
    quota = Quota(10, 10)
    assert (await first.admit("HKBANK", quota, cost=4)).admitted
    assert (await second.admit("HKBANK", quota, cost=4)).admitted
    refused = await first.admit("HKBANK", quota, cost=3)  # 2 left in the bucket
    assert not refused.admitted and refused.reset_s >= 1
    assert (await first.admit("HKBANK", quota, cost=2)).admitted
    assert not (await second.admit("HKBANK", quota)).admitted
    wall.now += 10.0  # the bucket is full again
    # more than the quota could never be granted: it costs the whole quota, not a refusal forever
    assert (await second.admit("HKBANK", quota, cost=500)).admitted
    assert not (await first.admit("HKBANK", quota)).admitted


async def test_concurrent_requests_on_one_worker_share_a_lease() -> None:
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall)
    quota = Quota(1000, 1)
    decisions = await asyncio.gather(*(limits.admit("HKBANK", quota) for _ in range(400)))
    assert all(d.admitted for d in decisions)
    # one lease for all 400 (the requests waiting when it starts size it), then one taken ahead
    assert db.commits == 2
    assert db.rows.rate_buckets["HKBANK"][0] == 350


async def test_the_next_lease_is_taken_before_the_tokens_run_out() -> None:
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall)
    quota = Quota(16, 1)  # leases of 4
    assert (await limits.admit("HKBANK", quota)).admitted
    assert db.commits == 1
    assert (await limits.admit("HKBANK", quota)).admitted  # 2 left of 4: half, not yet below
    assert (await limits.admit("HKBANK", quota)).admitted  # 1 left: the next lease starts
    assert db.commits == 1
    await asyncio.sleep(0)
    assert db.commits == 2
    for _ in range(4):  # 5 in hand: none of these waits for the database
        assert (await limits.admit("HKBANK", quota)).admitted
    assert db.commits == 2


async def test_a_changed_quota_starts_afresh_and_other_banks_are_untouched() -> None:
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall)
    big = Quota(1_000_000, 1)
    assert (await limits.admit("HKBANK", big)).admitted  # holds a lease of 250,000 now
    small = Quota(2, 60)
    assert [(await limits.admit("HKBANK", small)).admitted for _ in range(3)] == [True, True, False]
    assert (await limits.admit("CNBANK", small)).admitted


async def test_a_request_just_over_the_quota_waits_for_the_next_token_instead_of_a_429() -> None:
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall, max_wait_s=1.0)
    quota = Quota(4, 1)  # a token every 0.25 s, a lease of one
    decisions = [await limits.admit("HKBANK", quota) for _ in range(12)]
    assert all(d.admitted for d in decisions)  # one at a time, each waits for the next token
    assert wall.slept == [pytest.approx(0.25)] * 8
    assert wall.now == pytest.approx(1_800_000_002.0)


async def test_requests_that_waited_go_on_one_per_token_not_together() -> None:
    """Together they would run at once, a burst that other banks' requests on the worker wait
    behind; one per 1/rate seconds, they go on at the bank's rate."""
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall, max_wait_s=1.0)
    quota = Quota(8, 1)  # a token every 0.125 s, a lease of 2
    started = wall.now
    went_on: list[float] = []

    async def request() -> None:
        assert (await limits.admit("HKBANK", quota)).admitted
        went_on.append(wall.now - started)

    await asyncio.gather(*(request() for _ in range(12)))
    # the bucket's 8 at once; the 4 that waited for a lease's refill, a token apart
    assert sorted(went_on) == pytest.approx([0.0] * 8 + [0.25, 0.375, 0.5, 0.625])


async def test_no_wait_for_a_token_further_off_than_the_longest_wait() -> None:
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall, max_wait_s=1.0)
    quota = Quota(5, 60)  # a token every 12 s
    decisions = [await limits.admit("HKBANK", quota) for _ in range(6)]
    assert [d.admitted for d in decisions] == [True] * 5 + [False]
    assert wall.slept == []
    assert decisions[-1].reset_s == 12


async def test_only_as_many_wait_as_the_wait_refills_the_rest_are_refused_at_once() -> None:
    db, wall = FakeDatabase(), Wall()
    limits = limiter(db, wall, max_wait_s=1.0)
    quota = Quota(4, 1)
    burst = await asyncio.gather(*(limits.admit("HKBANK", quota) for _ in range(20)))
    admitted = sum(d.admitted for d in burst)
    assert 8 <= admitted <= 9  # the bucket's 4, then the second's refill for the 4 that wait
    assert all(d.reset_s >= 1 for d in burst if not d.admitted)


@pytest.mark.parametrize("seed", range(0, 600, 100))
async def test_a_burst_within_the_quota_is_never_refused_however_its_requests_meet_the_leases(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Requests that arrive while leases are in flight, each lease sized before the latest of them
    joined it, and the statement taking a few turns of the loop: none may be refused while the
    shared bucket holds tokens for it. Two workers of a gateway refused one of 20 concurrent
    requests of a bank about one run in fifteen."""
    lease = FakeRateLimitsRepository.lease
    round_trip = [1]

    async def slow_lease(self: FakeRateLimitsRepository, **kwargs: Any) -> Lease:
        for _ in range(round_trip[0]):
            await asyncio.sleep(0)
        return await lease(self, **kwargs)

    monkeypatch.setattr(FakeRateLimitsRepository, "lease", slow_lease)
    quota = Quota(100, 5)  # leases of 5; the wall stands still, so the bucket's 100 is all there is
    refused: dict[int, int] = {}
    for case in range(seed, seed + 100):
        draw = random.Random(case)
        round_trip[0] = 1 + case % 12
        limits = limiter(FakeDatabase(), Wall(), max_wait_s=1.0)

        async def request(arrives_after: int, limits: RateLimiter = limits) -> bool:
            for _ in range(arrives_after):
                await asyncio.sleep(0)
            return (await limits.admit("HKBANK", quota)).admitted

        decisions = await asyncio.gather(*(request(draw.randrange(40)) for _ in range(20 + case % 40)))
        if not all(decisions):
            refused[case] = decisions.count(False)
    assert refused == {}

"""The payment batcher driven by a fake step: no database, no IBPS, no timers.

The fake step records every batch it is given and holds it on an event until the test lets it go,
so a test decides exactly which batches are running when the next items arrive. Nothing sleeps: the
loop is only turned (`asyncio.sleep(0)`), and outcomes are checked with `done()` first, so a broken
batcher fails a test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fpslink.settlement import batcher
from fpslink.settlement.batcher import Batcher


class Boom(Exception):
    pass


class Crash(BaseException):
    """Like a crash hook's exception: not an Exception, yet every waiter must see it."""


async def turns(n: int = 20) -> None:
    """Run every callback and task step that is ready, a few rounds deep, without moving time."""
    for _ in range(n):
        await asyncio.sleep(0)


class Step:
    """A fake `process`: records each batch, holds it until released, detaches or fails on demand.

    Batch `n` waits on `gates[n]`; if `n` is in `detaching` it then calls `batcher.detach()` and
    waits on `tails[n]` (as settlement detaches once its decisions are durable, then finishes);
    if `n` is in `fail` it finally raises that exception.
    """

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gates: list[asyncio.Event] = []
        self.tails: list[asyncio.Event] = []
        self.detaching: set[int] = set()
        self.fail: dict[int, BaseException] = {}
        self.finished: set[int] = set()
        self.running = 0
        self.peak = 0

    async def __call__(self, items: list[str]) -> None:
        n = len(self.batches)
        self.batches.append(list(items))
        self.gates.append(asyncio.Event())
        self.tails.append(asyncio.Event())
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.gates[n].wait()
            if n in self.detaching:
                batcher.detach()
                await self.tails[n].wait()
            if n in self.fail:
                raise self.fail[n]
            self.finished.add(n)
        finally:
            self.running -= 1

    def release_all(self) -> None:
        for event in (*self.gates, *self.tails):
            event.set()


class Rig:
    """A batcher over a fake step, and the requests made to it, by item."""

    def __init__(self, *, max_size: int = 256, max_inflight: int = 1) -> None:
        self.step = Step()
        self.batcher: Batcher[str] = Batcher(self.step, max_size=max_size, max_inflight=max_inflight)
        self.requests: dict[str, asyncio.Task[bool]] = {}

    def submit(self, *items: str, wait_s: float | None = None) -> None:
        """Submit `items` in this turn of the loop, each from a request task of its own."""
        for item in items:
            self.requests[item] = asyncio.create_task(self.batcher.run(item, wait_s=wait_s))

    async def arrive(self, *items: str) -> None:
        """Submit `items` one turn apart, as requests arriving one after another."""
        for item in items:
            self.submit(item)
            await turns()

    def answered(self, item: str) -> bool:
        return self.requests[item].done()

    def result(self, item: str) -> bool:
        request = self.requests[item]
        assert request.done(), f"request {item} is still waiting"
        return request.result()

    def error(self, item: str) -> BaseException | None:
        request = self.requests[item]
        assert request.done(), f"request {item} is still waiting"
        assert not request.cancelled(), f"request {item} was cancelled"
        return request.exception()

    async def close(self) -> None:
        self.step.release_all()
        await self.batcher.aclose(grace_s=0)
        for request in self.requests.values():
            request.cancel()
        await asyncio.gather(*self.requests.values(), return_exceptions=True)


@pytest.fixture
async def rig() -> AsyncIterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**limits: int) -> Rig:
        made.append(Rig(**limits))
        return made[-1]

    yield make
    for one in made:
        await one.close()


# --- forming batches -------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_size", "max_inflight"), [(0, 1), (1, 0), (-1, 1)])
def test_limits_below_one_are_refused(max_size: int, max_inflight: int) -> None:
    async def process(items: list[str]) -> None:
        return None

    with pytest.raises(ValueError, match="at least 1"):
        Batcher(process, max_size=max_size, max_inflight=max_inflight)


async def test_an_item_alone_starts_a_batch_of_one_without_waiting_for_others(
    rig: Callable[..., Rig],
) -> None:
    r = rig(max_size=256)
    r.submit("a")
    await turns()
    assert r.step.batches == [["a"]]
    r.step.gates[0].set()
    await turns()
    assert r.result("a") is True
    assert (r.batcher.batches, r.batcher.items) == (1, 1)


async def test_items_submitted_in_the_same_turn_leave_together(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.submit("a", "b", "c")
    await turns()
    assert r.step.batches == [["a", "b", "c"]]


async def test_items_arriving_while_a_batch_settles_form_the_next_batch(rig: Callable[..., Rig]) -> None:
    r = rig()
    await r.arrive("a")
    await r.arrive("b", "c", "d")
    assert r.step.batches == [["a"]], "a newcomer must wait for the busy slot"
    r.step.gates[0].set()
    await turns()
    assert r.result("a") is True
    assert r.step.batches == [["a"], ["b", "c", "d"]]
    assert not r.answered("b")
    r.step.gates[1].set()
    await turns()
    assert [r.result(item) for item in "bcd"] == [True, True, True]
    assert (r.batcher.batches, r.batcher.items) == (2, 4)


@pytest.mark.parametrize("max_size", [1, 3, 4])
async def test_batches_never_exceed_max_size_and_keep_arrival_order(
    rig: Callable[..., Rig], max_size: int
) -> None:
    r = rig(max_size=max_size)
    items = [f"p{i}" for i in range(10)]
    r.submit(*items[:7])  # more than a batch in one turn
    await r.arrive(*items[7:])  # and more while the first batch runs
    for n in range(10):
        if n < len(r.step.batches):
            r.step.gates[n].set()
            await turns()
    expected = [items[i : i + max_size] for i in range(0, len(items), max_size)]
    assert r.step.batches == expected
    assert all(r.result(item) for item in items)


async def test_no_more_than_max_inflight_batches_run_at_once(rig: Callable[..., Rig]) -> None:
    r = rig(max_inflight=2)
    await r.arrive("a", "b")
    assert r.step.batches == [["a"], ["b"]], "a free slot starts a batch at once"
    await r.arrive("c", "d")
    assert r.step.batches == [["a"], ["b"]]
    assert r.step.running == 2
    r.step.gates[1].set()  # the second slot frees first
    await turns()
    assert r.result("b") is True
    assert r.step.batches == [["a"], ["b"], ["c", "d"]]
    await r.arrive("e")
    assert r.step.running == 2
    r.step.gates[0].set()
    await turns()
    assert r.step.batches[3:] == [["e"]]
    r.step.release_all()
    await turns()
    assert all(r.result(item) for item in "abcde")
    assert r.step.peak == 2


async def test_slots_freed_together_start_as_many_batches_as_the_queue_fills(
    rig: Callable[..., Rig],
) -> None:
    r = rig(max_size=2, max_inflight=2)
    await r.arrive("a", "b")
    await r.arrive("c", "d", "e", "f", "g")
    r.step.gates[0].set()
    r.step.gates[1].set()
    await turns()
    assert r.step.batches == [["a"], ["b"], ["c", "d"], ["e", "f"]]
    assert not r.answered("g")
    r.step.gates[2].set()
    await turns()
    assert r.step.batches[4:] == [["g"]]


# --- failures --------------------------------------------------------------------------------------


async def test_a_failed_batch_fails_only_its_own_items_and_the_batcher_goes_on(
    rig: Callable[..., Rig],
) -> None:
    r = rig(max_inflight=2)
    await r.arrive("a", "b")
    await r.arrive("c", "d", "e")
    first, second = Boom("batch 1"), Boom("batch 2")
    r.step.fail[1] = first
    r.step.gates[1].set()
    await turns()
    assert r.error("b") is first
    assert not r.answered("a"), "another running batch is not touched"
    assert r.step.batches[2] == ["c", "d", "e"], "the freed slot takes the queue"
    r.step.fail[2] = second
    r.step.gates[2].set()
    await turns()
    assert [r.error(item) for item in "cde"] == [second, second, second]
    r.step.gates[0].set()
    await r.arrive("f")
    r.step.gates[3].set()
    await turns()
    assert r.result("a") is True
    assert r.step.batches[3] == ["f"]
    assert r.result("f") is True


async def test_a_batch_stopped_by_a_base_exception_answers_every_waiter(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.submit("a", "b")
    await turns()
    crash = Crash("killed at a settlement step")
    r.step.fail[0] = crash
    r.step.gates[0].set()
    await turns()
    assert r.error("a") is crash
    assert r.error("b") is crash
    await r.arrive("c")
    r.step.gates[1].set()
    await turns()
    assert r.result("c") is True


# --- requests that stop waiting --------------------------------------------------------------------


async def test_a_request_that_stops_waiting_returns_false_and_its_batch_goes_on(
    rig: Callable[..., Rig],
) -> None:
    r = rig()
    r.submit("late", wait_s=0)
    r.submit("patient", wait_s=60)
    await turns()
    assert r.result("late") is False
    assert r.step.batches == [["late", "patient"]]
    r.step.gates[0].set()
    await turns()
    assert r.step.finished == {0}
    assert r.result("patient") is True


async def test_cancelling_a_waiting_request_cancels_neither_its_item_nor_its_batch(
    rig: Callable[..., Rig],
) -> None:
    r = rig()
    await r.arrive("a")
    await r.arrive("b", "c")
    r.requests["b"].cancel()
    await turns()
    assert r.requests["b"].cancelled()
    assert not r.answered("c")
    r.step.gates[0].set()
    await turns()
    # a request that stops waiting does not take its item back (as with `wait_s`, the batch goes
    # on): it settles with the next batch, and its neighbour with it
    assert r.step.batches == [["a"], ["b", "c"]]
    r.step.gates[1].set()
    await turns()
    assert r.step.finished == {0, 1}
    assert r.result("c") is True


async def test_a_failure_nobody_waits_for_is_not_reported_as_never_retrieved(
    rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a logged failure keeps its traceback, and with it the batch's futures, alive: log nothing
    monkeypatch.setattr(batcher.log, "disabled", True)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        r = rig()
        await r.arrive("held")
        r.submit("gone", wait_s=0)  # leaves while queued, before its batch fails
        await turns()
        assert r.result("gone") is False
        r.step.gates[0].set()
        await turns()
        r.step.fail[1] = Boom("nobody hears this")
        r.step.gates[1].set()
        await turns()
        del r.requests["gone"]
        r.step.fail.clear()  # the exception's traceback holds the batch's futures
        gc.collect()
        await turns()
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in reported] == []


# --- the batch's own context -----------------------------------------------------------------------

REQUEST_FIELD: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_field", default=None)


async def test_a_batch_does_not_inherit_the_context_of_the_request_that_started_it() -> None:
    seen: list[str | None] = []

    async def process(items: list[str]) -> None:
        seen.append(REQUEST_FIELD.get())

    b: Batcher[str] = Batcher(process, max_size=8, max_inflight=1)

    async def request(item: str) -> bool:
        REQUEST_FIELD.set(f"deadline of {item}")
        return await b.run(item)

    requests = [asyncio.create_task(request("a")), asyncio.create_task(request("b"))]
    await turns()
    assert all(r.done() and r.result() for r in requests)
    assert seen == [None]


# --- detach ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail_fails", [False, True])
async def test_detach_gives_the_slot_to_the_next_batch_and_the_batch_goes_on(
    rig: Callable[..., Rig], tail_fails: bool
) -> None:
    r = rig(max_inflight=1)
    await r.arrive("a")
    await r.arrive("b", "c")
    r.step.detaching.add(0)
    if tail_fails:
        r.step.fail[0] = Boom("phase two failed")
    r.step.gates[0].set()  # batch 0's decisions are durable: it detaches
    await turns()
    assert r.step.batches == [["a"], ["b", "c"]], "the queue leaves as soon as the slot is given up"
    assert r.step.running == 2
    assert not r.answered("a")
    await r.arrive("d")
    assert len(r.step.batches) == 2, "the next batch holds the one slot now"
    r.step.gates[1].set()
    await turns()
    assert r.result("b") is True
    assert r.step.batches[2] == ["d"]
    assert not r.answered("a"), "the detached batch still runs"
    r.step.tails[0].set()
    await turns()
    if tail_fails:
        assert isinstance(r.error("a"), Boom)
    else:
        assert r.result("a") is True


async def test_a_detached_batch_leaving_takes_no_slot_from_the_next(rig: Callable[..., Rig]) -> None:
    r = rig(max_inflight=1)
    await r.arrive("a")
    r.step.detaching.add(0)
    r.step.gates[0].set()
    await r.arrive("b")  # takes the slot batch 0 gave up
    await r.arrive("c")
    r.step.tails[0].set()  # batch 0 finishes while batch 1 runs
    await turns()
    assert r.result("a") is True
    assert r.step.batches == [["a"], ["b"]], "c waits for batch 1, not for batch 0"
    r.step.gates[1].set()
    await turns()
    assert r.step.batches[2] == ["c"]


async def test_detach_a_second_time_does_nothing(rig: Callable[..., Rig]) -> None:
    again = asyncio.Event()
    then = asyncio.Event()
    holds: list[asyncio.Event] = []

    async def process(items: list[str]) -> None:
        if items == ["a"]:
            batcher.detach()
            await again.wait()
            batcher.detach()
            await then.wait()
        else:
            holds.append(asyncio.Event())
            await holds[-1].wait()

    b: Batcher[str] = Batcher(process, max_size=8, max_inflight=1)
    requests = {"a": asyncio.create_task(b.run("a"))}
    await turns()
    requests["b"] = asyncio.create_task(b.run("b"))
    await turns()
    assert len(holds) == 1, "batch a gave up its slot to batch b"
    requests["c"] = asyncio.create_task(b.run("c"))
    await turns()
    again.set()  # batch a detaches again while b holds the slot
    await turns()
    assert len(holds) == 1, "c must wait for b, the slot's holder"
    then.set()
    holds[0].set()
    await turns()
    assert len(holds) == 2
    holds[1].set()
    await turns()
    assert all(request.done() and request.result() for request in requests.values())


async def test_detach_outside_a_batch_does_nothing(rig: Callable[..., Rig]) -> None:
    batcher.detach()  # no batch at all
    r = rig(max_inflight=1)
    await r.arrive("a")
    await r.arrive("b")
    batcher.detach()  # the context of a request, not of the batch that holds the slot

    async def from_a_request() -> None:
        batcher.detach()

    await asyncio.create_task(from_a_request())
    await turns()
    assert r.step.batches == [["a"]]
    assert not r.answered("b")


# --- shutting down ---------------------------------------------------------------------------------


async def test_aclose_cancels_what_is_queued_and_refuses_new_items(rig: Callable[..., Rig]) -> None:
    r = rig()
    await r.arrive("a")
    await r.arrive("b")
    closing = asyncio.create_task(r.batcher.aclose(grace_s=60))
    await turns()
    assert r.requests["b"].cancelled()
    r.submit("z")
    await turns()
    assert isinstance(r.error("z"), RuntimeError)
    assert "shutting down" in str(r.error("z"))
    assert not closing.done(), "the running batch has its grace"
    r.step.gates[0].set()
    await turns()
    assert closing.done()
    assert r.result("a") is True
    assert r.step.batches == [["a"]]


async def test_aclose_waits_for_every_running_batch_detached_ones_included(
    rig: Callable[..., Rig],
) -> None:
    r = rig(max_inflight=1)
    await r.arrive("a")
    await r.arrive("b")
    r.step.detaching.add(0)
    r.step.gates[0].set()
    await turns()
    assert r.step.batches == [["a"], ["b"]]
    closing = asyncio.create_task(r.batcher.aclose(grace_s=60))
    r.step.gates[1].set()
    await turns()
    assert r.result("b") is True
    assert not closing.done(), "the detached batch is still running"
    r.step.tails[0].set()
    await turns()
    assert closing.done()
    assert r.result("a") is True


async def test_aclose_cancels_batches_still_running_after_the_grace(rig: Callable[..., Rig]) -> None:
    r = rig(max_inflight=2)
    await r.arrive("a")
    r.step.detaching.add(0)
    r.step.gates[0].set()
    await r.arrive("b", "c")
    assert r.step.running == 3
    closing = asyncio.create_task(r.batcher.aclose(grace_s=0))
    await turns()
    assert closing.done()
    assert r.step.running == 0
    assert all(r.requests[item].cancelled() for item in "abc")

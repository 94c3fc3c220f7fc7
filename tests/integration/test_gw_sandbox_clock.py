"""The test clock: the operator moves the sandbox's time forward, for the gateway and mock_ibps together.

The module has its own databases and its own mock_ibps (the offset is stored in both databases and
lives in mock_ibps's memory, so it would move every other test's time too). Each test first moves
the sandbox to noon of the next business day, so that it runs away from midnight and on a day no
other test used. The gateway's wall clock stands at the real time the test began; mock_ibps's runs
on, seconds apart at most. Every scenario ends with the invariant check (I1-I6).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pgtest
import pytest
from clock_support import (
    DAY_S,
    advance,
    clock_of,
    gateway,
    hkt,
    ibps_statement,
    move_to,
    next_noon,
    northbound,
    rejected,
    southbound,
    world,
)
from gateway_stack import Stack, stack_on
from gw_support import (
    OPERATOR_KEY,
    Harness,
    free_port,
    problem,
    start_process,
    stop_process,
    unreachable_database_settings,
)
from webhook_support import Receiver, until, webhook_receiver

from fpslink.app import create_app
from fpslink.invariants import check_invariants
from fpslink.limits.policy import HK_TZ, business_date
from fpslink.settlement import recovery
from fpslink.webhooks import signing
from ibps_wire.sandbox_clock import HEADER, header_value

CLOCK_DB = f"fpslink_t_gw_clock_{pgtest.RUN}"
CLOCK_IBPS_DB = f"fpslink_t_gw_clock_ibps_{pgtest.RUN}"


@pytest.fixture(scope="module")
async def clock_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with stack_on(tmp_path_factory.mktemp("clock"), CLOCK_DB, CLOCK_IBPS_DB) as made:
        yield made


@pytest.fixture
async def clocked(request: pytest.FixtureRequest, clock_stack: Stack) -> AsyncIterator[Harness]:
    """`@pytest.mark.settings(name=value, ...)` overrides settings for one test."""
    marker = request.node.get_closest_marker("settings")
    async with gateway(clock_stack, **(dict(marker.kwargs) if marker else {})) as h:
        yield h
        report = await check_invariants(h.gw)
        assert report.ok, "\n".join(report.violations)


# the day rolls ------------------------------------------------------------------------------------


async def test_a_day_later_the_daily_limit_is_fresh_and_both_sides_date_by_the_new_day(
    clocked: Harness,
) -> None:
    h = clocked
    day = await next_noon(h)
    tomorrow = day + timedelta(days=1)
    w = await world(h)
    first = await northbound(h, w, "10000.00")
    assert first["status"] == "SETTLED", first
    rejected(await northbound(h, w, "1.00"), "AM14")
    not_yet = await h.http.post(
        "/v1/reconciliations", json={"business_date": tomorrow.isoformat()}, headers=h.operator
    )
    problem(not_yet, 422, "VALIDATION_ERROR")

    moved = await advance(h, DAY_S)
    assert business_date(datetime.fromisoformat(moved["now"])) == tomorrow
    assert moved["business_date"] == tomorrow.isoformat()  # what a pacs.008's IntrBkSttlmDt must be
    limits = (await h.http.get(f"/v1/accounts/{w['hk_acc']}/limits", headers=w["hk"].headers)).json()
    assert limits["business_date"] == tomorrow.isoformat()
    assert [(u["period"], u["used"]) for u in limits["usage"]] == [("DAY", "0.00"), ("YEAR", "10000.00")]
    second = await northbound(h, w, "10000.00")
    assert second["status"] == "SETTLED", second
    assert business_date(datetime.fromisoformat(second["created_at"])) == tomorrow

    # mock_ibps moved with the gateway: each payment is on its own day's statement, and only there
    on_day, on_tomorrow = await ibps_statement(h, day), await ibps_statement(h, tomorrow)
    assert first["payment_id"] in on_day and first["payment_id"] not in on_tomorrow
    assert second["payment_id"] in on_tomorrow and second["payment_id"] not in on_day
    for reconciled in (day, tomorrow):
        run = await h.http.post(
            "/v1/reconciliations", json={"business_date": reconciled.isoformat()}, headers=h.operator
        )
        assert run.status_code == 201, run.text
        assert (run.json()["status"], run.json()["break_count"]) == ("COMPLETED", 0), run.json()


async def test_a_quote_expires_once_the_clock_passes_its_lifetime(clocked: Harness) -> None:
    h = clocked
    await next_noon(h)
    w = await world(h)
    ttl = h.gw.settings.quote_ttl_s

    async def quote() -> str:
        response = await h.http.post(
            "/v1/quotes",
            json={
                "source_currency": "HKD",
                "target_currency": "CNY",
                "amount": "100.00",
                "amount_type": "SEND",
            },
            headers=w["hk"].headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["quote_id"])

    expiring, lasting = await quote(), await quote()
    await advance(h, ttl - 1)
    assert (await northbound(h, w, "100.00", quote_id=lasting))["status"] == "SETTLED"
    await advance(h, 2)
    rejected(await northbound(h, w, "100.00", quote_id=expiring), "QUOTE_EXPIRED")


async def test_southbound_service_hours_close_and_open_as_the_clock_moves(clocked: Harness) -> None:
    h = clocked
    day = business_date(h.gw.now()) + timedelta(days=1)
    await move_to(h, hkt(day, 22, 59))
    w = await world(h)
    assert (await southbound(h, w, "10.00"))["status"] == "SETTLED"
    await advance(h, 60)  # 23:00: closed
    rejected(await southbound(h, w, "10.00"), "OUTSIDE_SERVICE_HOURS")
    await move_to(h, hkt(day + timedelta(days=1), 7))  # 07:00 the next day: open
    assert (await southbound(h, w, "10.00"))["status"] == "SETTLED"


class Crash(BaseException):
    """Stands for the process dying at a settlement step."""


@pytest.mark.settings(recovery_enabled=True, recovery_interval_s=0.2, payment_deadline_s=2.0)
async def test_a_payment_left_pending_is_recovered_once_the_clock_passes_the_settlement_timeout(
    clocked: Harness,
) -> None:
    h = clocked
    await next_noon(h)
    w = await world(h)

    def crash(reached: str) -> None:
        if reached == "decided":
            raise Crash(reached)

    h.gw.crash_hook = crash
    with pytest.raises(Crash):
        await northbound(h, w, "100.00")
    h.gw.crash_hook = lambda reached: None
    (listed,) = (await h.http.get("/v1/payments", headers=w["hk"].headers)).json()["items"]
    url = f"/v1/payments/{listed['payment_id']}"

    # its batch has given up once the payment deadline and the batch's work have passed in real time
    # (a move does not take a payment from a batch that may still be settling it); none of the
    # sweeps meanwhile takes it, since the sandbox's time has not moved
    await asyncio.sleep(h.gw.settings.payment_deadline_s + recovery.BATCH_WORK_S + 0.5)
    assert (await h.http.get(url, headers=w["hk"].headers)).json()["status"] == "PENDING"
    await advance(h, int(h.gw.settings.settlement_timeout_s) + 1)
    for _ in range(100):
        payment = (await h.http.get(url, headers=w["hk"].headers)).json()
        if payment["status"] != "PENDING":
            break
        await asyncio.sleep(0.1)
    assert payment["status"] == "SETTLED", payment
    assert "RECOVERY" in [event["event"] for event in payment["events"]], payment["events"]


# the header ---------------------------------------------------------------------------------------


async def test_every_answer_carries_the_sandbox_time_errors_included(clocked: Harness) -> None:
    h = clocked
    await next_noon(h)

    async def answers() -> list[httpx.Response]:
        return [
            await h.http.get("/healthz"),
            await h.http.get("/v1/sandbox/clock", headers=h.operator),
            await h.http.get("/v1/payments"),  # 401
            await h.http.get("/v1/nowhere", headers=h.operator),  # 404
            await h.http.post("/v1/payments", json={}, headers=h.operator),  # 422
            await h.http.get("/console/login"),
        ]

    for answer in await answers():
        assert answer.headers[HEADER] == header_value(h.gw.now()), (answer.request.url, answer.status_code)
    before = h.gw.now()
    await advance(h, 3600)
    for answer in await answers():
        assert answer.headers[HEADER] == header_value(before + timedelta(hours=1)), answer.request.url

    # an answer made by the catch-all (the database is out of reach): still there
    down = create_app(unreachable_database_settings())
    async with down.router.lifespan_context(down):
        transport = httpx.ASGITransport(app=down, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            answer = await http.get("/v1/payments", headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    problem(answer, 503, "DATABASE_UNAVAILABLE")
    assert abs(datetime.fromisoformat(answer.headers[HEADER]) - datetime.now(UTC)) < timedelta(seconds=5)
    assert answer.headers["x-request-id"]


# refusals -----------------------------------------------------------------------------------------


async def test_the_clock_is_refused_unless_the_deployment_enables_it(harness: Harness) -> None:
    h = harness  # the suite's gateway: FPSLINK_SANDBOX_CLOCK left at its default
    bank = await h.bank("FPS")
    problem(
        await h.http.post("/v1/sandbox/clock/advance", json={"seconds": 60}, headers=bank.headers),
        403,
        "OPERATOR_ONLY",
    )
    for refused in (
        await h.http.post("/v1/sandbox/clock/advance", json={"seconds": 60}, headers=h.operator),
        await h.http.put("/v1/sandbox/clock", json={"now": "2099-01-01T00:00:00Z"}, headers=h.operator),
    ):
        body = problem(refused, 409, "SANDBOX_CLOCK_DISABLED")
        assert "FPSLINK_SANDBOX_CLOCK=true" in body["detail"]
    seen = (await h.http.get("/v1/sandbox/clock", headers=bank.headers)).json()
    assert (seen["enabled"], seen["offset_seconds"], seen["ibps_offset_seconds"]) == (False, 0.0, 0.0), seen
    assert datetime.fromisoformat(seen["now"]) == h.clock.now
    assert seen["business_date"] == business_date(h.clock.now).isoformat()
    transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as client:
        await client.post("/console/login", data={"api_key": OPERATOR_KEY, "next": "/console/sandbox"})
        page = await client.get("/console/sandbox")
    assert 'id="clock-disabled"' in page.text and 'id="clock-form"' not in page.text
    assert 'id="sandbox-time"' in page.text and 'id="clock-moved"' not in page.text


async def test_time_only_moves_forward_and_by_bounded_steps(clocked: Harness) -> None:
    h = clocked
    await next_noon(h)
    before = await clock_of(h)
    now = h.gw.now()
    for refused in (
        await h.http.put(
            "/v1/sandbox/clock", json={"now": (now - timedelta(hours=1)).isoformat()}, headers=h.operator
        ),
        await h.http.put("/v1/sandbox/clock", json={"now": now.isoformat()}, headers=h.operator),
        await h.http.post("/v1/sandbox/clock/advance", json={"seconds": 0}, headers=h.operator),
        await h.http.post("/v1/sandbox/clock/advance", json={"seconds": -60}, headers=h.operator),
    ):
        assert "only moves forward" in problem(refused, 409, "SANDBOX_CLOCK_BACKWARDS")["detail"]
    problem(
        await h.http.post("/v1/sandbox/clock/advance", json={"seconds": 366 * DAY_S + 1}, headers=h.operator),
        422,
        "SANDBOX_CLOCK_TOO_FAR",
    )
    problem(
        await h.http.put("/v1/sandbox/clock", json={"now": "2099-01-01T00:00:00"}, headers=h.operator),
        422,
        "VALIDATION_ERROR",
    )
    problem(
        await h.http.post("/v1/sandbox/clock/advance", json={"seconds": "soon"}, headers=h.operator),
        422,
        "VALIDATION_ERROR",
    )
    after = await clock_of(h)
    assert (after["offset_seconds"], after["ibps_offset_seconds"]) == (before["offset_seconds"],) * 2


async def test_an_advance_with_an_idempotency_key_moves_once(clocked: Harness) -> None:
    h = clocked
    await next_noon(h)
    start = h.gw.sandbox_offset.value
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await h.http.post(
        "/v1/sandbox/clock/advance", json={"seconds": 600}, headers={**h.operator, **key}
    )
    again = await h.http.post(
        "/v1/sandbox/clock/advance", json={"seconds": 600}, headers={**h.operator, **key}
    )
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert h.gw.sandbox_offset.value == start + timedelta(seconds=600)


# every worker, and mock_ibps, at one time -----------------------------------------------------------


async def test_another_worker_runs_at_the_new_time_within_a_second(
    clocked: Harness, clock_stack: Stack
) -> None:
    h = clocked
    await next_noon(h)
    async with gateway(clock_stack) as other:
        assert other.gw.sandbox_offset.value == h.gw.sandbox_offset.value, "read at start-up"
        other.clock.now = h.clock.now  # one wall clock, as two workers on one host have
        started = time.monotonic()
        moved = await advance(h, 2 * 3600)
        for _ in range(500):
            if other.gw.sandbox_offset.value == h.gw.sandbox_offset.value:
                break
            await asyncio.sleep(0.01)
        seen_after = time.monotonic() - started
        assert seen_after < 1.0, f"the other worker saw the move after {seen_after:.2f} s"
        answer = await other.http.get("/healthz")
        assert answer.headers[HEADER] == header_value(datetime.fromisoformat(moved["now"]))


async def test_a_restarted_mock_ibps_runs_at_the_time_it_was_left_at(
    clocked: Harness, clock_stack: Stack
) -> None:
    h = clocked
    await next_noon(h)
    port = free_port()
    process = await asyncio.to_thread(
        start_process,
        ["-m", "mock_ibps.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
        env={"MOCK_IBPS_DATABASE_URL": clock_stack.ibps_db, "MOCK_IBPS_TOKEN": h.gw.settings.ibps_token},
        health_url=f"http://127.0.0.1:{port}/healthz",
        log=clock_stack.logs / "mock_ibps_again.log",
    )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {h.gw.settings.ibps_token}"},
        ) as http:
            seen = (await http.get("/ibps/v1/sandbox/clock")).json()
            assert seen["offset_us"] == round(h.gw.sandbox_offset.value / timedelta(microseconds=1)), seen
            await advance(h, 60)  # through the first mock_ibps: the second hears of it by NOTIFY
            for _ in range(100):
                seen = (await http.get("/ibps/v1/sandbox/clock")).json()
                if seen["offset_us"] == round(h.gw.sandbox_offset.value / timedelta(microseconds=1)):
                    break
                await asyncio.sleep(0.01)
            assert seen["offset_us"] == round(h.gw.sandbox_offset.value / timedelta(microseconds=1)), seen
    finally:
        await asyncio.to_thread(stop_process, process)


async def test_when_mock_ibps_cannot_be_reached_nothing_moves(clocked: Harness, clock_stack: Stack) -> None:
    h = clocked
    await next_noon(h)
    before = await clock_of(h)
    async with gateway(
        clock_stack, ibps_url=f"http://127.0.0.1:{free_port()}", ibps_timeout_s=0.5, ibps_retries=0
    ) as cut_off:
        refused = await cut_off.http.post(
            "/v1/sandbox/clock/advance", json={"seconds": DAY_S}, headers=h.operator
        )
        assert "did not move" in problem(refused, 503, "IBPS_UNAVAILABLE")["detail"]
        assert cut_off.gw.sandbox_offset.value == h.gw.sandbox_offset.value
    async with h.gw.uow() as tx:
        stored = await tx.clock.read()
    assert stored.offset == h.gw.sandbox_offset.value
    after = await clock_of(h)
    assert (after["offset_seconds"], after["ibps_offset_seconds"]) == (before["offset_seconds"],) * 2


# webhooks -------------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as got:
        yield got


@pytest.mark.settings(webhook_interval_s=0.05, webhook_backoff_s=3600.0, webhook_timeout_s=2.0)
async def test_a_webhook_retry_falls_due_on_the_sandbox_time_but_is_signed_with_real_time(
    clocked: Harness, receiver: Receiver
) -> None:
    h = clocked
    h.allow_webhooks(receiver.base.removeprefix("http://"))
    await next_noon(h)
    w = await world(h)
    made = await h.http.post("/v1/webhooks", json={"url": receiver.base + "/hook"}, headers=w["hk"].headers)
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert (await northbound(h, w, "100.00"))["status"] == "SETTLED"
    await until(lambda: receiver.count() == 1)
    await asyncio.sleep(0.5)
    assert receiver.count() == 1, "the retry waits an hour of the sandbox's time"
    await advance(h, 3601)
    await until(lambda: receiver.count() == 2)
    second = receiver.received[1]
    headers, body = second.headers, second.body
    signature = headers[signing.HEADER.lower()]
    assert signing.verify(secret, signature, body, now=int(time.time())), (
        "a receiver checks t= on its own clock"
    )
    assert not signing.verify(secret, signature, body, now=int(h.gw.now().timestamp()))
    assert business_date(datetime.fromisoformat(json.loads(body)["created_at"])) == business_date(h.gw.now())


# the console ----------------------------------------------------------------------------------------


async def test_the_console_shows_the_sandbox_time_and_moves_it(clocked: Harness) -> None:
    h = clocked
    await next_noon(h)
    transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as client:
        login = await client.post(
            "/console/login", data={"api_key": OPERATOR_KEY, "next": "/console/sandbox"}
        )
        assert login.status_code == 303, login.text
        page = await client.get("/console/sandbox")
        assert page.status_code == 200, page.text
        shown = h.gw.now().astimezone(HK_TZ).strftime("%Y-%m-%d %H:%M") + " HKT"
        assert 'id="sandbox-time"' in page.text and shown in page.text, page.text[:3000]
        assert 'id="clock-moved"' in page.text and 'id="clock-form"' in page.text
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        before = h.gw.now()
        moved = await client.post(
            "/console/sandbox/clock", data={"csrf_token": csrf, "days": "1", "hours": "2"}
        )
        assert moved.status_code == 200, moved.text
        assert h.gw.now() == before + timedelta(days=1, hours=2)
        shown = h.gw.now().astimezone(HK_TZ).strftime("%Y-%m-%d %H:%M") + " HKT"
        assert shown in moved.text and 'id="notice"' in moved.text

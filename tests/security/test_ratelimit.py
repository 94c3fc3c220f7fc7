"""Each bank has a quota of requests: 429 problem+json with Retry-After and the IETF RateLimit fields
over it, raised per bank by the operator; the operator and health checks are exempt.

Before: no limit anywhere; one bank's burst moved another bank's p99 from 36 ms to 1,298 ms.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter

import httpx
import pytest
from gw_support import Bank, Harness, problem

QUOTA = pytest.mark.settings(rate_limit_quota=5, rate_limit_window_s=60)
"""5 requests, refilled over a minute: nothing refills while a test runs (a token per 12 s)."""
FIELD = re.compile(r'"bank";r=(\d+);t=(\d+)')


def left(response: httpx.Response) -> int:
    found = FIELD.fullmatch(response.headers["RateLimit"])
    assert found, response.headers["RateLimit"]
    return int(found.group(1))


async def spend(h: Harness, bank: Bank, count: int) -> list[httpx.Response]:
    return [await h.http.get("/v1/payments?limit=1", headers=bank.headers) for _ in range(count)]


@QUOTA
async def test_a_bank_over_its_quota_is_answered_429_with_retry_after_and_ratelimit_fields(
    harness: Harness,
) -> None:
    h = harness
    bank = await h.bank("FPS")
    answers = await spend(h, bank, 7)
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    for answer in answers:
        assert answer.headers["RateLimit-Policy"] == '"bank";q=5;w=60'
    assert [left(a) for a in answers[:5]] == [4, 3, 2, 1, 0]
    refused = problem(answers[5], 429, "RATE_LIMITED")
    assert refused["violated-policies"] == ["bank"]
    assert refused["participant_id"] == bank.participant_id
    retry_after = int(answers[5].headers["Retry-After"])
    assert 1 <= retry_after <= 60
    found = FIELD.fullmatch(answers[5].headers["RateLimit"])
    assert found and found.groups() == ("0", str(retry_after))  # Retry-After is the end of the window


@QUOTA
async def test_each_refusal_names_its_own_bank_path_and_wait(harness: Harness) -> None:
    """A worker keeps the 429s it renders (a bank over its quota is refused alike again and again):
    a kept answer never goes to another bank or path, nor outlives the wait it states."""
    h = harness
    first, second = await h.bank("FPS"), await h.bank("FPS")
    for bank in (first, second):
        await spend(h, bank, 5)
    for bank in (first, second, first):
        for path in ("/v1/payments?limit=1", "/v1/accounts/HK0000000000000000", "/v1/payments?limit=2"):
            refused = await h.http.get(path, headers=bank.headers)
            body = problem(refused, 429, "RATE_LIMITED")
            assert body["participant_id"] == bank.participant_id
            assert body["instance"] == path.partition("?")[0]
            assert body["violated-policies"] == ["bank"]
            wait = refused.headers["Retry-After"]
            assert f"retry after {wait} s" in body["detail"]
            assert refused.headers["RateLimit"] == f'"bank";r=0;t={wait}'
            assert refused.headers["Content-Type"] == "application/problem+json"
            assert int(refused.headers["Content-Length"]) == len(refused.content)


@QUOTA
async def test_the_operator_health_checks_and_unknown_keys_are_not_counted(harness: Harness) -> None:
    h = harness
    bank = await h.bank("IBPS")
    for _ in range(12):
        operator = await h.http.get("/v1/payments?limit=1", headers=h.operator)
        assert operator.status_code == 200 and "RateLimit" not in operator.headers
        health = await h.http.get("/healthz", headers=bank.headers)
        assert health.status_code == 200 and "RateLimit" not in health.headers
        problem(
            await h.http.get("/v1/payments", headers={"Authorization": "Bearer fpsl_x_y"}),
            401,
            "UNAUTHORIZED",
        )
    assert [a.status_code for a in await spend(h, bank, 6)] == [200] * 5 + [429]


@QUOTA
async def test_payments_are_limited_on_the_fast_path_and_a_refused_one_creates_nothing(
    harness: Harness,
) -> None:
    h = harness
    hk, cn = await h.bank("FPS"), await h.bank("IBPS")
    debtor, creditor = await h.account(hk), await h.account(cn)
    before = await h.payment_count()
    answers = [
        await h.pay(hk, debtor=debtor, creditor_account=creditor, amount="10.00", currency="HKD")
        for _ in range(7)
    ]
    assert [a.status_code for a in answers] == [201] * 5 + [429] * 2, [a.text for a in answers]
    assert all(a.json()["status"] == "SETTLED" for a in answers[:5])
    assert [left(a) for a in answers[:5]] == [4, 3, 2, 1, 0]
    problem(answers[5], 429, "RATE_LIMITED")
    assert await h.payment_count() == before + 5
    # a malformed payment, which the route answers rather than the fast path, is refused alike
    malformed = await h.http.post(
        "/v1/payments", content=b"{", headers={**hk.headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    problem(malformed, 429, "RATE_LIMITED")


@QUOTA
async def test_a_second_key_draws_on_the_same_quota(harness: Harness) -> None:
    h = harness
    bank = await h.bank("FPS")
    added = await h.http.post(f"/v1/participants/{bank.participant_id}/keys", json={}, headers=bank.headers)
    assert added.status_code == 201
    second = Bank(bank.participant_id, bank.system, added.json()["api_key"])
    assert [a.status_code for a in await spend(h, bank, 3)] == [200] * 3  # and one to add the key
    assert [a.status_code for a in await spend(h, second, 2)] == [200, 429]
    assert (await spend(h, bank, 1))[0].status_code == 429


@QUOTA
async def test_the_operator_raises_a_banks_quota_and_gives_the_default_back(harness: Harness) -> None:
    h = harness
    bank, other = await h.bank("FPS"), await h.bank("FPS")
    path = f"/v1/participants/{bank.participant_id}/rate-limit"
    refused = await h.http.put(path, json={"quota": 1000, "window_s": 1}, headers=bank.headers)
    problem(refused, 403, "OPERATOR_ONLY")  # and spent one of the five
    assert [a.status_code for a in await spend(h, bank, 5)] == [200] * 4 + [429]

    raised = await h.http.put(path, json={"quota": 1000, "window_s": 1}, headers=h.operator)
    assert raised.status_code == 200, raised.text
    assert raised.json() == {
        "participant_id": bank.participant_id,
        "quota": 1000,
        "window_s": 1,
        "default": False,
    }
    answers = await spend(h, bank, 20)
    assert [a.status_code for a in answers] == [200] * 20
    assert answers[-1].headers["RateLimit-Policy"] == '"bank";q=1000;w=1'
    # the bank reads its own quota; another bank's is not found
    own = await h.http.get(path, headers=bank.headers)
    assert own.status_code == 200 and own.json()["quota"] == 1000
    problem(await h.http.get(path, headers=other.headers), 404, "PARTICIPANT_NOT_FOUND")
    assert (
        await h.http.get(f"/v1/participants/{other.participant_id}/rate-limit", headers=other.headers)
    ).json() == {
        "participant_id": other.participant_id,
        "quota": 5,
        "window_s": 60,
        "default": True,
    }

    problem(await h.http.put(path, json={"quota": 1000}, headers=h.operator), 422, "VALIDATION_ERROR")
    problem(
        await h.http.put(path, json={"quota": 0, "window_s": 1}, headers=h.operator), 422, "VALIDATION_ERROR"
    )
    problem(
        await h.http.put("/v1/participants/NOBANKHERE/rate-limit", json={}, headers=h.operator),
        404,
        "PARTICIPANT_NOT_FOUND",
    )
    back = await h.http.put(path, json={"quota": None, "window_s": None}, headers=h.operator)
    assert back.json()["default"] is True and back.json()["quota"] == 5
    assert (await spend(h, bank, 1))[0].headers["RateLimit-Policy"] == '"bank";q=5;w=60'


async def test_the_openapi_document_describes_the_429(harness: Harness) -> None:
    document = (await harness.http.get("/openapi.json")).json()
    answer = document["paths"]["/v1/payments"]["post"]["responses"]["429"]
    assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(answer["headers"])
    keys = document["paths"]["/v1/participants/{participant_id}/keys"]
    assert {"get", "post"} <= set(keys)
    assert "delete" in document["paths"]["/v1/participants/{participant_id}/keys/{prefix}"]
    assert "put" in document["paths"]["/v1/participants/{participant_id}/rate-limit"]


@pytest.mark.settings(rate_limit_quota=4, rate_limit_window_s=1)
async def test_a_burst_just_over_the_quota_is_slowed_and_a_flood_refused_at_once(harness: Harness) -> None:
    """4 a second: 6 at once are all served, the last two a token's wait later; of 40 at once, the
    bucket's 4 and the 4 that a second's wait refills are served, the rest answered 429 at once."""
    h = harness
    bank = await h.bank("FPS")

    async def burst(count: int) -> tuple[Counter[int], float]:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(h.http.get("/v1/payments?limit=1", headers=bank.headers) for _ in range(count))
        )
        return Counter(a.status_code for a in answers), time.monotonic() - started

    served, took = await burst(6)
    assert served == {200: 6} and took >= 0.4, (served, took)
    await asyncio.sleep(1.5)  # the bucket refills
    flood, _ = await burst(40)
    assert set(flood) == {200, 429} and 6 <= flood[200] <= 8, flood

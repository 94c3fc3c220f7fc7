"""Crafted cursors, out-of-range dates and characters the database cannot store answer 422, never 500.

Before: a cursor holding a naive timestamp, or `from=0001-01-01T00:00:00+14:00` (before year 1 in
UTC), reached the database driver and answered 500 on /v1/payments and /v1/webhooks/deliveries;
so did a NUL in a path.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

import httpx
import pytest
from gw_support import Bank, Harness, problem

LISTINGS = ("/v1/payments", "/v1/webhooks/deliveries")


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


CRAFTED = [
    cursor("2026-06-22T04:00:00|0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11"),  # naive
    cursor("0001-01-01T00:00:00+14:00|0b7f7c3e-3c0a-4f5e-8a53-5b7d7d5a9c11"),  # before year 1 in UTC
    cursor("9999-12-31T23:59:59-14:00|x"),  # after year 9999 in UTC
    cursor("2026-06-22T04:00:00+00:00|a\x00b"),  # NUL in the id
    cursor("2026-06-22T04:00:00+00:00|"),  # no id
    cursor("2026-06-22T04:00:00+00:00"),  # no separator
    cursor("not a time|x"),
    "!!",
    "%%%",
]


def random_cursors(count: int) -> Iterator[str]:
    """Cursors of random text around the separator: anything a client could send."""
    rng = random.Random(15)
    alphabet = "0123456789-:+T.|Zz \x00\u202e\ud7ff"
    for _ in range(count):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        yield cursor(text)


async def _bank(h: Harness) -> Bank:
    return await h.bank("FPS")


@pytest.mark.parametrize("path", LISTINGS)
@pytest.mark.parametrize("crafted", CRAFTED)
async def test_a_crafted_cursor_is_422(harness: Harness, path: str, crafted: str) -> None:
    bank = await _bank(harness)
    answer = await harness.http.get(path, params={"cursor": crafted}, headers=bank.headers)
    problem(answer, 422, "INVALID_CURSOR")


async def test_no_random_cursor_answers_500(harness: Harness) -> None:
    bank = await _bank(harness)
    for crafted in random_cursors(300):
        for path in LISTINGS:
            answer = await harness.http.get(path, params={"cursor": crafted[:200]}, headers=bank.headers)
            assert answer.status_code in (200, 422), (crafted, answer.text)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("from", "0001-01-01T00:00:00+14:00"),
        ("to", "0001-01-01T00:00:00+00:01"),
        ("from", "9999-12-31T23:59:59-14:00"),
        ("to", "9999-12-31T23:59:59.999999-00:01"),
        ("from", "2026-06-22T00:00:00"),
    ],
)
async def test_an_out_of_range_or_zoneless_bound_is_422_naming_it(
    harness: Harness, name: str, value: str
) -> None:
    bank = await _bank(harness)
    answer = await harness.http.get("/v1/payments", params={name: value}, headers=bank.headers)
    body = problem(answer, 422, "VALIDATION_ERROR")
    assert body["detail"].startswith(f"{name}:"), body
    assert body["field"] == name


async def test_the_widest_real_bounds_still_work(harness: Harness) -> None:
    bank = await _bank(harness)
    params = {"from": "0001-01-01T00:00:00+00:00", "to": "9999-12-31T23:59:59+00:00"}
    answer = await harness.http.get("/v1/payments", params=params, headers=bank.headers)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    "path",
    ["/v1/accounts/HK%00X", "/v1/payments/ab%00cd", "/v1/accounts/HK%00X/limits"],
)
async def test_a_nul_in_a_path_is_422(harness: Harness, path: str) -> None:
    bank = await _bank(harness)
    answer = await harness.http.get(httpx.URL(path), headers=bank.headers)
    problem(answer, 422, "INVALID_CHARACTERS")

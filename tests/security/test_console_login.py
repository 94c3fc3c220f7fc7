"""Console log-in throttling: per client address and per key prefix, counted in the database so
that every worker shares the counts, and counted before the key is checked so a burst cannot
outrun the limit. A throttled log-in answers 429 with Retry-After, whatever the key."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from console_support import COOKIE, browser
from gw_support import OPERATOR_KEY, Harness

WINDOW_S = 60


async def _try(http: httpx.AsyncClient, api_key: str) -> httpx.Response:
    return await http.post("/console/login", data={"api_key": api_key, "next": "/console/payments"})


def _throttled(response: httpx.Response) -> int:
    """The answer is the 429 login page; its Retry-After in seconds."""
    assert response.status_code == 429, response.text[:500]
    assert 'id="login-throttled"' in response.text
    assert COOKIE not in response.headers.get("set-cookie", "")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_S
    return retry_after


@pytest.mark.settings(console_login_failures_per_address=3, console_login_window_s=WINDOW_S)
async def test_failures_from_one_address_throttle_that_address_until_the_window_ends(
    harness: Harness,
) -> None:
    h = harness
    bank = await h.bank("FPS")
    async with browser(h, client=("192.0.2.7", 4000)) as attacker:
        for n in range(3):
            assert (await _try(attacker, f"fpsl_guess{n}_{'x' * 30}")).status_code == 401
        _throttled(await _try(attacker, "fpsl_guess3_" + "x" * 30))
        _throttled(await _try(attacker, bank.api_key))  # the right key too: a 429 tells nothing
        async with browser(h, client=("192.0.2.8", 4000)) as neighbour:
            assert (await _try(neighbour, bank.api_key)).status_code == 303, "another address logs in"
        h.clock.advance(WINDOW_S)
        assert (await _try(attacker, bank.api_key)).status_code == 303, "the next window starts afresh"


@pytest.mark.settings(
    console_login_failures_per_address=100, console_login_failures_per_key_prefix=4, console_login_window_s=60
)
async def test_guesses_at_one_banks_key_from_many_addresses_throttle_that_prefix(harness: Harness) -> None:
    h = harness
    bank, other = await h.bank("IBPS"), await h.bank("IBPS")
    prefix = bank.api_key[: bank.api_key.index("_", 5) + 1]
    for n in range(4):
        async with browser(h, client=(f"198.51.100.{n + 1}", 5000)) as attacker:
            assert (await _try(attacker, prefix + f"wrong{n}" + "y" * 26)).status_code == 401
    async with browser(h, client=("198.51.100.99", 5000)) as fresh:
        _throttled(await _try(fresh, bank.api_key))
        assert (await _try(fresh, other.api_key)).status_code == 303, "another bank's keys are not held up"


@pytest.mark.settings(console_login_failures_per_address=5, console_login_window_s=WINDOW_S)
async def test_a_burst_of_simultaneous_guesses_gets_no_more_than_the_limit(harness: Harness) -> None:
    async with browser(harness, client=("203.0.113.5", 6000)) as attacker:
        answers = await asyncio.gather(*(_try(attacker, f"fpsl_burst{n}_{'z' * 30}") for n in range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * 5 + [429] * 15, statuses


@pytest.mark.settings(console_login_failures_per_address=2, console_login_window_s=WINDOW_S)
async def test_logging_in_is_not_a_failure(harness: Harness) -> None:
    async with browser(harness, client=("203.0.113.9", 7000)) as operator:
        for _ in range(6):
            assert (await _try(operator, OPERATOR_KEY)).status_code == 303
        assert (await _try(operator, "not-the-operator-key-at-all")).status_code == 401
        assert (await _try(operator, OPERATOR_KEY)).status_code == 303


@pytest.mark.settings(console_login_failures_per_address=2, console_login_window_s=WINDOW_S)
async def test_an_untrusted_peer_cannot_pose_as_other_addresses(harness: Harness) -> None:
    """X-Forwarded-For is ignored unless FPSLINK_TRUSTED_PROXIES names the peer."""
    async with browser(harness, client=("192.0.2.50", 8000)) as attacker:
        for n in range(2):
            spoofed = await attacker.post(
                "/console/login",
                data={"api_key": f"fpsl_spoof{n}_{'q' * 30}"},
                headers={"X-Forwarded-For": f"10.9.8.{n}"},
            )
            assert spoofed.status_code == 401
        _throttled(
            await attacker.post(
                "/console/login",
                data={"api_key": "fpsl_spoof9_" + "q" * 30},
                headers={"X-Forwarded-For": "10.9.8.9"},
            )
        )


@pytest.mark.settings(
    trusted_proxies="192.0.2.60", console_login_failures_per_address=2, console_login_window_s=WINDOW_S
)
async def test_behind_a_trusted_proxy_each_client_address_counts_apart(harness: Harness) -> None:
    async with browser(harness, client=("192.0.2.60", 8000)) as proxy:
        for client in ("10.9.8.1", "10.9.8.2", "10.9.8.3"):
            for n in range(2):
                answer = await proxy.post(
                    "/console/login",
                    data={"api_key": f"fpsl_p{n}{client[-1]}_{'q' * 30}"},
                    headers={"X-Forwarded-For": client},
                )
                assert answer.status_code == 401, client
        _throttled(
            await proxy.post(
                "/console/login",
                data={"api_key": "fpsl_p9_" + "q" * 30},
                headers={"X-Forwarded-For": "10.9.8.1"},
            )
        )

"""Console sessions: logging out ends the session on the server (a copied cookie stops working,
in every worker), so does revoking or the expiry of the key that logged it in, and the cookie is
Secure exactly when the browser is on https, which a proxy may say only when
FPSLINK_TRUSTED_PROXIES names it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from console_support import COOKIE, browser, csrf_of, login
from gateway_stack import Stack, served_gateway, settings_for
from gw_support import OPERATOR_KEY, Harness

from fpslink.app import create_app


def _with_cookie(http: httpx.AsyncClient, token: str) -> None:
    http.cookies.set(COOKIE, token, domain="gateway.test", path="/console")


async def test_a_copied_cookie_stops_working_when_its_session_logs_out(
    harness: Harness, stack: Stack
) -> None:
    h = harness
    bank = await h.bank("FPS")
    second_worker = create_app(settings_for(stack), clock=h.clock)
    async with second_worker.router.lifespan_context(second_worker):
        transport = httpx.ASGITransport(app=second_worker)
        async with (
            browser(h, bank.api_key) as victim,
            browser(h) as thief,
            httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as thief_elsewhere,
        ):
            token = victim.cookies[COOKIE]
            _with_cookie(thief, token)
            _with_cookie(thief_elsewhere, token)
            assert (await thief.get("/console/payments")).status_code == 200, (
                "a copied cookie works, until..."
            )
            assert (await thief_elsewhere.get("/console/payments")).status_code == 200

            out = await victim.post("/console/logout", data={"csrf_token": await csrf_of(victim)})
            assert out.status_code == 303 and out.headers["location"] == "/console/login"

            for http in (thief, thief_elsewhere):
                page = await http.get("/console/payments")
                assert page.status_code == 303 and page.headers["location"].startswith("/console/login")
                data = await http.get("/console/api/dashboard")
                assert data.status_code == 401
                refused = await http.post("/console/logout", data={"csrf_token": "0" * 64})
                assert refused.status_code == 303, "a logged-out session cannot act either"

            again = await login(victim, bank.api_key)
            assert again.status_code == 303
            assert (await victim.get("/console/payments")).status_code == 200, "a new session works"


async def test_a_session_ends_when_the_key_that_logged_it_in_is_revoked_or_expires(
    harness: Harness,
) -> None:
    """Before: a session named only its bank, so a leaked key, once revoked, still kept the
    console it had logged into for the session's eight hours."""
    h = harness
    bank = await h.bank("FPS")
    keys = f"/v1/participants/{bank.participant_id}/keys"
    leaked = (await h.http.post(keys, json={}, headers=bank.headers)).json()
    until = h.clock.now + timedelta(hours=1)
    temporary = (await h.http.post(keys, json={"expires_at": until.isoformat()}, headers=bank.headers)).json()
    async with (
        browser(h, bank.api_key) as kept,
        browser(h, leaked["api_key"]) as thief,
        browser(h, temporary["api_key"]) as visitor,
    ):
        for http in (kept, thief, visitor):
            assert (await http.get("/console/payments")).status_code == 200

        revoked = await h.http.delete(f"{keys}/{leaked['prefix']}", headers=bank.headers)
        assert revoked.status_code == 200, revoked.text
        page = await thief.get("/console/payments")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/login")
        assert (await thief.get("/console/api/dashboard")).status_code == 401
        assert (await visitor.get("/console/payments")).status_code == 200, "other keys' sessions go on"

        h.clock.advance(3600)
        page = await visitor.get("/console/payments")
        assert page.status_code == 303, "the session of a key that expired ends with it"
        assert (await kept.get("/console/payments")).status_code == 200


def _cookie_flags(response: httpx.Response) -> list[str]:
    header = response.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}="), header
    return [part.strip().lower() for part in header.split(";")[1:]]


async def test_without_trusted_proxies_forwarded_https_is_not_believed(harness: Harness) -> None:
    bank = await harness.bank("FPS")
    async with browser(harness) as http:
        answer = await login(http, bank.api_key, **{"X-Forwarded-Proto": "https"})
    assert "secure" not in _cookie_flags(answer)


@pytest.mark.settings(trusted_proxies="127.0.0.1, 192.0.2.0/24")
async def test_behind_a_trusted_proxy_the_cookie_follows_the_browsers_scheme(harness: Harness) -> None:
    h = harness
    bank = await h.bank("IBPS")
    async with browser(h) as via_proxy:
        tls = await login(
            via_proxy, bank.api_key, **{"X-Forwarded-Proto": "https", "Origin": "https://gateway.test"}
        )
        assert "secure" in _cookie_flags(tls)
        assert "httponly" in _cookie_flags(tls) and "samesite=strict" in _cookie_flags(tls)
    async with browser(h, client=("192.0.2.10", 443)) as via_proxy:
        plain = await login(via_proxy, bank.api_key)
        assert "secure" not in _cookie_flags(plain), "a plain-http browser behind the proxy"
    async with browser(h, client=("198.51.100.1", 443)) as not_a_proxy:
        posing = await login(not_a_proxy, bank.api_key, **{"X-Forwarded-Proto": "https"})
        assert "secure" not in _cookie_flags(posing)


@pytest.fixture(scope="module")
async def served(stack: Stack) -> AsyncIterator[str]:
    """`fpslink serve` as deployed, with no FPSLINK_TRUSTED_PROXIES."""
    async with served_gateway(stack, "session-gateway") as url:
        yield url


async def test_the_server_believes_no_forwarded_header_by_default(served: str) -> None:
    """uvicorn on its own believes X-Forwarded-* from 127.0.0.1, so any local process could claim
    https (or another client address); `fpslink serve` leaves that to FPSLINK_TRUSTED_PROXIES."""
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        answer = await http.post(
            "/console/login",
            data={"api_key": OPERATOR_KEY},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.77"},
        )
    assert answer.status_code == 303, answer.text
    assert "secure" not in _cookie_flags(answer)

"""The web console, server side: login, explorer, payment pages, access rules, CSRF, controls."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import httpx
from gw_support import OPERATOR_KEY, Bank, Harness

from fpslink.directory.masking import mask_name

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
LATIN_PAYEE = "WONG Siu Ming"
LATIN_PAYER = "CHAN Tai Man"


@asynccontextmanager
async def browser(h: Harness, api_key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, logged in with `api_key` when one is given."""
    transport = httpx.ASGITransport(app=h.app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=60) as client:
        if api_key is not None:
            await login(client, api_key)
        yield client


async def login(client: httpx.AsyncClient, api_key: str) -> httpx.Response:
    response = await client.post("/console/login", data={"api_key": api_key, "next": "/console/payments"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/payments"
    return response


async def csrf_of(client: httpx.AsyncClient, path: str = "/console/payments") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found, page.text[:2000]
    return found.group(1)


async def northbound_world(h: Harness) -> tuple[Bank, str, Bank, str, str]:
    """An FPS payer and an IBPS payee (with a Latin name, so masking is visible) and its proxy."""
    fps = await h.bank("FPS")
    debtor = await h.account(fps, holder=LATIN_PAYER)
    ibps = await h.bank("IBPS")
    creditor = await h.account(ibps, holder=LATIN_PAYEE)
    proxy = await h.proxy(ibps, creditor)
    return fps, debtor, ibps, creditor, proxy


async def test_login_issues_a_signed_session_and_logout_ends_it(harness: Harness) -> None:
    h = harness
    bank = await h.bank("FPS")
    async with browser(h) as client:
        anonymous = await client.get("/console/payments?status=SETTLED")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/console/login?next=" + quote(
            "/console/payments?status=SETTLED", safe=""
        )
        page = await client.get("/console/login")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]

        refused = await client.post("/console/login", data={"api_key": "fpsl_nobody_x" * 3})
        assert refused.status_code == 401
        assert "login-failed" in refused.text
        assert "fpslink_console" not in client.cookies

        answer = await login(client, bank.api_key)
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Path=/console" in cookie
        token = client.cookies["fpslink_console"]
        assert bank.api_key not in token and bank.api_key not in cookie
        home = await client.get("/console/payments")
        assert home.status_code == 200
        assert bank.participant_id in home.text
        assert "default-src 'self'" in home.headers["content-security-policy"]

        forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
        client.cookies.set("fpslink_console", forged, domain="gateway.test", path="/console")
        assert (await client.get("/console/payments")).status_code == 303
        client.cookies.set("fpslink_console", token, domain="gateway.test", path="/console")

        h.clock.advance(8 * 3600 + 1)
        assert (await client.get("/console/payments")).status_code == 303, "sessions expire"
        h.clock.advance(-(8 * 3600 + 1))

        csrf = await csrf_of(client)
        out = await client.post("/console/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/console/login"
        assert "fpslink_console" not in client.cookies
        assert (await client.get("/console/payments")).status_code == 303


async def test_login_never_redirects_off_the_console(harness: Harness) -> None:
    h = harness
    bank = await h.bank("IBPS")
    async with browser(h) as client:
        for target in ("https://evil.example/", "//evil.example/console/", "/v1/payments", "/console/\\x"):
            answer = await client.post("/console/login", data={"api_key": bank.api_key, "next": target})
            assert answer.status_code == 303 and answer.headers["location"] == "/console/payments", target
        elsewhere = await client.post(
            "/console/login", data={"api_key": bank.api_key}, headers={"Origin": "http://evil.example"}
        )
        assert elsewhere.status_code == 403


async def test_explorer_finds_a_payment_and_shows_its_lifecycle(harness: Harness) -> None:
    h = harness
    fps, debtor, ibps, _creditor, proxy = await northbound_world(h)
    key = f"console-{uuid.uuid4()}"
    paid = await h.pay(fps, debtor=debtor, proxy=proxy, amount="1000.00", currency="HKD", key=key)
    assert paid.status_code == 201 and paid.json()["status"] == "SETTLED", paid.text
    payment_id = paid.json()["payment_id"]
    spaced = f"{proxy[:3]} {proxy[3:6]} {proxy[6:10]} {proxy[10:]}"

    async with browser(h, fps.api_key) as client:
        listed = await client.get("/console/payments")
        assert f"/console/payments/{payment_id}" in listed.text
        for query, reading in (
            (payment_id, "payment id"),
            (payment_id.upper(), "payment id"),
            (key, "Idempotency-Key"),
            (debtor, f"account {debtor}"),
            (spaced, f"proxy {proxy}"),
        ):
            found = await client.get("/console/payments", params={"q": query})
            assert found.status_code == 200
            assert f"/console/payments/{payment_id}" in found.text, query
            assert reading in found.text, (query, found.text[:3000])

        page = await client.get(f"/console/payments/{payment_id}")
        assert page.status_code == 200, page.text
        text = page.text
        steps = [
            "Accepted",
            "Quote fixed",
            "Limits reserved",
            "Prepared at FPS",
            "Prepared at IBPS",
            "Decision: commit",
            "Posted at FPS",
            "Committed at IBPS",
            "Settled",
        ]
        positions = [text.index(f"<strong>{step}</strong>") for step in steps]
        assert positions == sorted(positions)
        assert "1000.00 HKD" in text and "917.70 CNY" in text and "0.917700" in text
        assert key in text
        assert "ACSC" in text and "pacs.002.001.10" in text
        assert 'id="fps-side"' in text and 'id="ibps-side"' in text
        assert text.count("POSTED") >= 2

    async with browser(h, ibps.api_key) as client:
        page = await client.get(f"/console/payments/{payment_id}")
        assert page.status_code == 200
        assert key not in page.text, "the creditor bank does not see the debtor bank's key"
        found = await client.get("/console/payments", params={"q": key})
        assert f"/console/payments/{payment_id}" not in found.text


async def test_a_rejection_is_explained_in_words(harness: Harness) -> None:
    h = harness
    fps = await h.bank("FPS")
    debtor = await h.account(fps)
    paid = await h.pay(fps, debtor=debtor, proxy="+8613900000001", amount="10.00", currency="HKD")
    assert paid.json()["reason_code"] == "BE23", paid.text
    async with browser(h, fps.api_key) as client:
        page = await client.get(f"/console/payments/{paid.json()['payment_id']}")
    assert page.status_code == 200
    assert "No account is registered for the proxy." in page.text
    assert "never reached IBPS" in page.text
    assert "RJCT" in page.text


async def test_a_rejected_payment_shows_nothing_as_credited(harness: Harness) -> None:
    """Its bound amounts appear once, as what it would have sent and received, never as paid."""
    h = harness
    fps = await h.bank("FPS")
    debtor = await h.account(fps, opening="5.00")
    ibps = await h.bank("IBPS")
    creditor = await h.account(ibps)
    paid = await h.pay(fps, debtor=debtor, creditor_account=creditor, amount="100.00", currency="HKD")
    assert paid.json()["reason_code"] == "AM04", paid.text
    async with browser(h, fps.api_key) as client:
        page = await client.get(f"/console/payments/{paid.json()['payment_id']}")
        listed = await client.get("/console/payments")
    assert page.status_code == 200 and listed.status_code == 200
    assert re.search(r'id="target-amount">—<', page.text) and re.search(r'id="source-amount">—<', page.text)
    assert re.search(r'id="would-send">100.00 HKD<', page.text)
    assert re.search(r'id="would-receive">91.77 CNY<', page.text)
    assert "91.77" not in listed.text and "100.00 HKD" not in listed.text


async def test_a_receive_payment_rejected_before_its_creditor_was_known_has_a_page(harness: Harness) -> None:
    """Such a payment has no target currency, the currency its pacs.002 would state: the page
    shows the payment without a pacs.002."""
    h = harness
    fps = await h.bank("FPS")
    debtor = await h.account(fps)
    paid = await h.pay(fps, debtor=debtor, proxy="+8613900000001", amount="10.00", currency="CNY")
    assert paid.json()["reason_code"] == "BE23", paid.text
    assert paid.json()["target_currency"] is None
    async with browser(h, fps.api_key) as client:
        page = await client.get(f"/console/payments/{paid.json()['payment_id']}")
    assert page.status_code == 200
    assert "No account is registered for the proxy." in page.text
    assert "RJCT" not in page.text


async def test_banks_see_only_their_own_payments_and_accounts(harness: Harness) -> None:
    h = harness
    fps, debtor, _ibps, creditor, proxy = await northbound_world(h)
    key = f"mine-{uuid.uuid4()}"
    paid = await h.pay(fps, debtor=debtor, proxy=proxy, amount="50.00", currency="HKD", key=key)
    payment_id = paid.json()["payment_id"]
    stranger = await h.bank("FPS")
    stranger_account = await h.account(stranger)

    async with browser(h, stranger.api_key) as client:
        page = await client.get(f"/console/payments/{payment_id}")
        assert page.status_code == 404
        assert payment_id not in (await client.get("/console/payments")).text
        for query in (payment_id, key, debtor, creditor, proxy):
            found = await client.get("/console/payments", params={"q": query})
            assert f"/console/payments/{payment_id}" not in found.text, query
        accounts = await client.get("/console/accounts")
        assert stranger_account in accounts.text and debtor not in accounts.text
        assert (await client.get(f"/console/accounts/{debtor}")).status_code == 404
        assert (await client.get(f"/console/accounts/{stranger_account}")).status_code == 200
        assert (await client.get("/console/payments/not-a-uuid")).status_code == 404
        for operator_page in ("/console/sandbox", "/console/reconciliations"):
            refused = await client.get(operator_page)
            assert refused.status_code == 403
            assert "OPERATOR_ONLY" in refused.text
        data = (await client.get("/console/api/dashboard")).json()
        assert "ibps_calls" not in data
        assert all(row["participant_id"] == stranger.participant_id for row in data["busiest"])

    async with browser(h, OPERATOR_KEY) as client:
        assert (await client.get(f"/console/payments/{payment_id}")).status_code == 200
        found = await client.get("/console/payments", params={"q": key})
        assert f"/console/payments/{payment_id}" in found.text
        accounts = await client.get("/console/accounts")
        assert debtor in accounts.text and creditor in accounts.text and stranger_account in accounts.text


async def test_no_page_shows_a_full_payee_name_to_another_bank(harness: Harness) -> None:
    h = harness
    fps, debtor, ibps, creditor, proxy = await northbound_world(h)
    paid = await h.pay(fps, debtor=debtor, proxy=proxy, amount="20.00", currency="HKD")
    payment_id = paid.json()["payment_id"]
    masked_payee, masked_payer = mask_name(LATIN_PAYEE), mask_name(LATIN_PAYER)

    async with browser(h, fps.api_key) as client:
        pages = [
            await client.get(f"/console/payments/{payment_id}"),
            await client.get("/console/payments"),
            await client.get("/console/payments", params={"q": proxy}),
            await client.get(f"/console/accounts/{debtor}"),
            await client.get("/console/dashboard"),
            await client.get("/console/api/dashboard"),
        ]
        for page in pages:
            assert page.status_code == 200, page.url
            assert LATIN_PAYEE not in page.text, page.url
        assert masked_payee in pages[0].text and LATIN_PAYER in pages[0].text

    async with browser(h, ibps.api_key) as client:
        page = await client.get(f"/console/payments/{payment_id}")
        assert LATIN_PAYEE in page.text, "the payee's own bank sees its customer"
        assert LATIN_PAYER not in page.text and masked_payer in page.text
        assert (await client.get(f"/console/accounts/{creditor}")).status_code == 200

    async with browser(h, OPERATOR_KEY) as client:
        page = await client.get(f"/console/payments/{payment_id}")
        assert LATIN_PAYEE in page.text and LATIN_PAYER in page.text


async def test_posts_without_the_csrf_token_or_from_another_site_are_refused(harness: Harness) -> None:
    h = harness
    async with browser(h, OPERATOR_KEY) as client:
        csrf = await csrf_of(client, "/console/sandbox")
        rule = {"call": "commit", "kind": "latency", "probability": "0.5", "seed": "7", "latency_ms": "1"}
        missing = await client.post("/console/sandbox/faults", data=rule)
        assert missing.status_code == 403
        wrong = await client.post("/console/sandbox/faults", data={**rule, "csrf_token": "0" * 64})
        assert wrong.status_code == 403
        foreign = await client.post(
            "/console/sandbox/faults",
            data={**rule, "csrf_token": csrf},
            headers={"Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        assert (await h.http.get("/v1/sandbox/faults", headers=h.operator)).json()["rules"] == []
        assert (await client.post("/console/logout")).status_code == 403
        assert (await client.get("/console/sandbox")).status_code == 200, "still logged in"

        async with browser(h, OPERATOR_KEY) as other:
            stolen_elsewhere = await csrf_of(other, "/console/sandbox")
        assert stolen_elsewhere != csrf
        crossed = await client.post("/console/sandbox/faults", data={**rule, "csrf_token": stolen_elsewhere})
        assert crossed.status_code == 403

        added = await client.post(
            "/console/sandbox/faults",
            data={**rule, "csrf_token": csrf},
            headers={"Origin": "http://gateway.test"},
        )
        assert added.status_code == 200, added.text
        assert 'id="notice"' in added.text and "fault-rules" in added.text
        rules = (await h.http.get("/v1/sandbox/faults", headers=h.operator)).json()["rules"]
        assert [(r["call"], r["kind"], r["latency_ms"]) for r in rules] == [("commit", "latency", 1)]
        bad = await client.post(
            "/console/sandbox/faults", data={**rule, "probability": "2", "csrf_token": csrf}
        )
        assert bad.status_code == 422 and 'id="failure"' in bad.text
        cleared = await client.post("/console/sandbox/faults/clear", data={"csrf_token": csrf})
        assert cleared.status_code == 200 and "no-faults" in cleared.text
    assert (await h.http.get("/v1/sandbox/faults", headers=h.operator)).json()["rules"] == []


async def test_the_operator_creates_a_bank_an_account_and_a_proxy(harness: Harness) -> None:
    h = harness
    code = f"CONSOLEHK{uuid.uuid4().hex[:6].upper()}"
    async with browser(h, OPERATOR_KEY) as client:
        csrf = await csrf_of(client, "/console/sandbox")
        made = await client.post(
            "/console/sandbox/participants",
            data={"participant_id": code, "name": "Console <Bank>", "system": "FPS", "csrf_token": csrf},
        )
        assert made.status_code == 200, made.text
        api_key = re.search(r'id="created-key">([^<]+)<', made.text)
        assert api_key, made.text
        again = await client.post(
            "/console/sandbox/participants",
            data={"participant_id": code, "name": "x", "system": "FPS", "csrf_token": csrf},
        )
        assert again.status_code == 409 and "PARTICIPANT_EXISTS" in again.text
        opened = await client.post(
            "/console/sandbox/accounts",
            data={
                "participant_id": code,
                "holder_name": "LEE <b>Ka</b> Yan",
                "currency": "HKD",
                "opening_balance": "500.00",
                "csrf_token": csrf,
            },
        )
        assert opened.status_code == 200, opened.text
        account_id = re.search(r"account (HK[0-9A-F]{16}) opened", opened.text)
        assert account_id, opened.text
        number = f"+85296{uuid.uuid4().int % 10**6:06d}"
        registered = await client.post(
            "/console/sandbox/proxies",
            data={"proxy_value": number, "account_id": account_id.group(1), "csrf_token": csrf},
        )
        assert registered.status_code == 200 and f"{number} now points to" in registered.text
        invalid = await client.post(
            "/console/sandbox/proxies",
            data={"proxy_value": "hello", "account_id": account_id.group(1), "csrf_token": csrf},
        )
        assert invalid.status_code == 422 and "INVALID_PROXY" in invalid.text

    async with browser(h, api_key.group(1)) as client:
        page = await client.get(f"/console/accounts/{account_id.group(1)}")
        assert page.status_code == 200
        assert "LEE &lt;b&gt;Ka&lt;/b&gt; Yan" in page.text and "<b>Ka</b>" not in page.text
        assert "500.00 HKD" in page.text


async def test_reconciliation_runs_and_its_report_opens(harness: Harness) -> None:
    h = harness
    async with browser(h, OPERATOR_KEY) as client:
        runs = await client.get("/console/reconciliations")
        assert runs.status_code == 200 and 'value="2026-06-22"' in runs.text
        csrf = CSRF.search(runs.text)
        assert csrf
        started = await client.post(
            "/console/reconciliations", data={"business_date": "2026-06-22", "csrf_token": csrf.group(1)}
        )
        assert started.status_code == 303, started.text
        run_page = await client.get(started.headers["location"])
        assert run_page.status_code == 200 and "COMPLETED" in run_page.text
        run_id = started.headers["location"].rsplit("/", 1)[1]
        assert run_id in (await client.get("/console/reconciliations")).text
        report = await client.get(f"/console/reconciliations/{run_id}/report")
        assert report.status_code == 200
        assert report.headers["content-type"].startswith("text/html")
        policy = report.headers["content-security-policy"]
        assert "'sha256-" in policy and "script-src" not in policy and "default-src 'none'" in policy
        future = await client.post(
            "/console/reconciliations", data={"business_date": "2030-01-01", "csrf_token": csrf.group(1)}
        )
        assert future.status_code == 422
        assert (await client.get("/console/reconciliations/nope")).status_code == 404


async def test_dashboard_counts_what_happened(harness: Harness) -> None:
    h = harness
    fps, debtor, _ibps, _creditor, proxy = await northbound_world(h)
    await h.pay(fps, debtor=debtor, proxy=proxy, amount="300.00", currency="HKD")
    await h.pay(fps, debtor=debtor, proxy="+8613900000002", amount="1.00", currency="HKD")
    async with browser(h) as anonymous:
        assert (await anonymous.get("/console/api/dashboard")).status_code == 401
    async with browser(h, OPERATOR_KEY) as client:
        page = await client.get("/console/dashboard")
        assert page.status_code == 200 and "/console/static/dashboard.js" in page.text
        # Hong Kong time, as the layout's clock beside it, not UTC
        assert re.search(r'id="as-of">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d HKT<', page.text), page.text
        data = (await client.get("/console/api/dashboard", params={"window": 60})).json()
        assert data["window_s"] == 60 and len(data["series"]) == 60
        assert data["totals"]["settled"] >= 1 and data["totals"]["rejected"] >= 1
        assert data["latency_ms"]["count"] >= 1 and data["latency_ms"]["p50"] is not None
        assert any(row["account_id"] == debtor for row in data["busiest"])
        assert "ibps_calls" in data and "recovery" in data
        assert data["pending"]["count"] >= 0
    async with browser(h, fps.api_key) as client:
        data = (await client.get("/console/api/dashboard")).json()
        assert data["totals"]["settled"] == 1 and data["totals"]["rejected"] == 1
        [row] = data["busiest"]
        assert row["account_id"] == debtor and row["used"] == "300.00 HKD" and row["cap"] == "10000.00 HKD"


async def test_static_files_and_escaping(harness: Harness) -> None:
    h = harness
    bank = await h.bank("FPS")
    async with browser(h) as client:
        css = await client.get("/console/static/console.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        js = await client.get("/console/static/dashboard.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert (await client.get("/console/static/..%2Fservice.py")).status_code == 404
        assert (await client.get("/console/static/routes.py")).status_code == 404
        await login(client, bank.api_key)
        found = await client.get("/console/payments", params={"q": "<script>alert(1)</script>"})
        assert found.status_code == 200
        assert "<script>alert(1)" not in found.text and "&lt;script&gt;alert(1)" in found.text

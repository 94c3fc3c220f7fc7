"""The console in headless Chromium (Debian's, driven by Playwright) against a real gateway server.

Logs in, sends a payment through the API, finds it in the explorer, reads its timeline, runs and
opens a reconciliation report, and watches the dashboard update in place. Any console error, page
error, failed request or HTTP error answer fails the test.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import CHROMIUM, need_browser
from gateway_stack import Stack, served_gateway
from gw_support import OPERATOR_KEY, bank_code

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
HK = timezone(timedelta(hours=8))
STEP_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
async def server(stack: Stack) -> AsyncIterator[str]:
    need_browser()
    async with served_gateway(stack, "console-gateway", FPSLINK_SOUTHBOUND_HOURS="00:00-24:00") as url:
        yield url


async def _world(http: httpx.AsyncClient) -> dict[str, str]:
    """An FPS payer and an IBPS payee with a +86 proxy, made through the API."""
    found: dict[str, str] = {}
    for system, holder in (("FPS", "CHAN Tai Man"), ("IBPS", "WONG Siu Ming")):
        code = bank_code(system[:2])
        bank = await http.post(
            "/v1/participants",
            json={"participant_id": code, "name": code, "system": system},
            headers=OPERATOR,
        )
        assert bank.status_code == 201, bank.text
        account = await http.post(
            "/v1/accounts",
            json={
                "participant_id": code,
                "holder_name": holder,
                "currency": "HKD" if system == "FPS" else "CNY",
                "opening_balance": "100000.00",
            },
            headers=OPERATOR,
        )
        assert account.status_code == 201, account.text
        found[f"{system}_key"] = bank.json()["api_key"]
        found[f"{system}_account"] = account.json()["account_id"]
    proxy = f"+86138{uuid.uuid4().int % 10**8:08d}"
    registered = await http.post(
        "/v1/proxies",
        json={"proxy_type": "MOBILE", "proxy_value": proxy, "account_id": found["IBPS_account"]},
        headers={"Authorization": f"Bearer {found['IBPS_key']}"},
    )
    assert registered.status_code == 201, registered.text
    found["proxy"] = proxy
    return found


async def _pay(http: httpx.AsyncClient, world: dict[str, str], amount: str) -> dict[str, Any]:
    paid = await http.post(
        "/v1/payments",
        json={
            "debtor_account_id": world["FPS_account"],
            "creditor": {"proxy_type": "MOBILE", "proxy_value": world["proxy"]},
            "amount": amount,
            "currency": "HKD",
            "purpose": "FAMILY_SUPPORT",
        },
        headers={"Authorization": f"Bearer {world['FPS_key']}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201 and paid.json()["status"] == "SETTLED", paid.text
    body: dict[str, Any] = paid.json()
    return body


async def wait_until(page: Any, expression: str, *, timeout_s: float = STEP_TIMEOUT_MS / 1000) -> None:
    """Poll a JavaScript expression until true, boundedly (`wait_for_function` needs eval: CSP)."""
    for _ in range(int(timeout_s / 0.1)):
        if await page.evaluate(expression):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true within {timeout_s} s: {expression}")


class Problems:
    """Everything the browser reports that should not happen on a console page."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.found.append(f"page error: {error}"))
        page.on("requestfailed", lambda r: self.found.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.found.append(f"console {message.type}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.found.append(f"HTTP {response.status}: {response.url}")


async def test_console_in_chromium(server: str, tmp_path: Path) -> None:
    async_api = need_browser()
    started = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        world = await _world(http)
        first = await _pay(http, world, "1000.00")
        payment_id = first["payment_id"]

        problems = Problems()
        async with async_api.async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 800},
            )
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page: Any = None
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                problems.watch(page)

                # a bank logs in and finds its payment
                await page.goto(f"{server}/console/payments")
                assert page.url.startswith(f"{server}/console/login")
                await page.fill("#api_key", world["FPS_key"])
                await page.click("#login")
                await page.wait_for_url(f"{server}/console/payments")
                assert world["FPS_key"] not in str(await context.cookies())
                await page.fill("#q", payment_id)
                await page.click("#search")
                await page.wait_for_selector("#matched")
                assert "payment id" in await page.inner_text("#matched")
                await page.click(f'a[href="/console/payments/{payment_id}"]')
                await page.wait_for_url(f"{server}/console/payments/{payment_id}")
                events = await page.eval_on_selector_all(
                    "#timeline li", "items => items.map(i => i.dataset.event)"
                )
                assert events[0] == "ACCEPTED" and events[-1] == "SETTLED", events
                assert {"PREPARED_AT_FPS", "PREPARED_AT_IBPS", "DECIDED_COMMIT", "COMMITTED_AT_IBPS"} <= set(
                    events
                )
                assert (await page.inner_text("#status")).strip() == "SETTLED"
                assert "917.70 CNY" in await page.inner_text("#target-amount")
                assert "WONG Siu Ming" not in await page.content()

                # readable on a phone: nothing wider than the screen
                await page.set_viewport_size({"width": 390, "height": 844})
                await page.reload()
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, f"the payment page is {overflow}px wider than a phone"
                await page.set_viewport_size({"width": 1280, "height": 800})

                await page.click("form.who button")
                await page.wait_for_url(f"{server}/console/login")

                # the operator runs a reconciliation and opens its report
                await page.fill("#api_key", OPERATOR_KEY)
                await page.click("#login")
                await page.wait_for_url(f"{server}/console/payments")
                await page.click('nav a[href="/console/reconciliations"]')
                await page.wait_for_url(f"{server}/console/reconciliations")
                today = started.astimezone(HK).date().isoformat()
                await page.fill("#business_date", today)
                await page.click("#run")
                await page.wait_for_selector("#run-status")
                assert (await page.inner_text("#run-status")).strip() == "COMPLETED"
                await page.click("#open-report")
                await page.wait_for_url("**/report")
                report = await page.content()
                assert today in report and "NORTHBOUND" in report
                assert await page.locator("svg.chart").count() == 3

                # the dashboard updates in place as payments settle
                await page.goto(f"{server}/console/dashboard")
                await page.select_option("#window", "300")
                await wait_until(
                    page,
                    "Number(document.getElementById('live').dataset.updates) >= 1"
                    " && Number(document.getElementById('settled-total').textContent) >= 1",
                )
                before = int(await page.inner_text("#settled-total"))
                updates = int(await page.get_attribute("#live", "data-updates") or "0")
                await _pay(http, world, "12.34")
                await wait_until(
                    page, f"Number(document.getElementById('settled-total').textContent) > {before}"
                )
                assert int(await page.get_attribute("#live", "data-updates") or "0") > updates
                assert await page.locator("#throughput rect.settled").count() >= 1
                assert world["FPS_account"] in await page.inner_text("#busiest")
                assert "prepare" in await page.inner_text("#ibps-calls")
                assert page.url == f"{server}/console/dashboard", "updated without reloading"
                assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d HKT", await page.inner_text("#as-of"))
                seen = list(problems.found)
            except Exception as exc:
                raise AssertionError(
                    f"{exc}\nat {getattr(page, 'url', '')}; the browser saw: {problems.found}"
                ) from exc
            finally:
                await context.close()
        assert not seen, seen


WIDTHS = {"phone": 390, "desktop": 1400}
LAYOUT_CHECK = """() => {
  const root = document.documentElement;
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    // one word (ids and code may break: they are marked so)
    if (!text || /\\s/.test(text) || !parent) continue;
    if (parent.closest(".break, code, .mono, pre, svg, script, style")) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = [...range.getClientRects()].filter(r => r.width > 0).sort((a, b) => a.top - b.top);
    if (rects.some((r, i) => i > 0 && r.top >= rects[i - 1].bottom - 1)) broken.push(text);
  }
  const overlapping = [];
  for (const svg of document.querySelectorAll("svg")) {
    const boxes = [...svg.querySelectorAll("text")].filter(t => t.textContent.trim())
      .map(t => [t.textContent.trim(), t.getBoundingClientRect()]);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, ra] = boxes[i], [b, rb] = boxes[j];
      const apart = ra.right <= rb.left + 1 || rb.right <= ra.left + 1
        || ra.bottom <= rb.top + 1 || rb.bottom <= ra.top + 1;
      if (!apart) overlapping.push(`${a} / ${b}`);
    }
  }
  return {overflow: root.scrollWidth - root.clientWidth, broken, overlapping};
}"""


async def test_every_console_page_fits_a_phone_and_a_desktop(server: str, tmp_path: Path) -> None:
    """Screenshots of each page at a phone's and a desktop's width (kept in the test's directory): no
    page wider than the screen, no word broken inside itself ("NORTHBO UND"), no chart label on
    another."""
    async_api = need_browser()
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        world = await _world(http)
        settled = (await _pay(http, world, "1000.00"))["payment_id"]
        refused = await http.post(
            "/v1/payments",
            json={
                "debtor_account_id": world["FPS_account"],
                "creditor": {"proxy_type": "MOBILE", "proxy_value": world["proxy"]},
                "amount": "20000.00",
                "currency": "HKD",
                "purpose": "FAMILY_SUPPORT",
            },
            headers={"Authorization": f"Bearer {world['FPS_key']}", "Idempotency-Key": str(uuid.uuid4())},
        )
        assert refused.json()["status"] == "REJECTED", refused.text
        run = await http.post(
            "/v1/reconciliations",
            json={"business_date": datetime.now(HK).date().isoformat()},
            headers=OPERATOR,
        )
        assert run.status_code in (200, 201), run.text
        run_id = run.json()["reconciliation_id"]
    pages = {
        world["FPS_key"]: [
            "/console/payments",
            f"/console/payments/{settled}",
            f"/console/payments/{refused.json()['payment_id']}",
            "/console/accounts",
            f"/console/accounts/{world['FPS_account']}",
            "/console/dashboard",
        ],
        OPERATOR_KEY: [
            "/console/payments",
            "/console/reconciliations",
            f"/console/reconciliations/{run_id}",
            f"/console/reconciliations/{run_id}/report",
            "/console/sandbox",
            "/console/dashboard",
        ],
    }
    faults: list[str] = []
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for key, paths in pages.items():
                context = await browser.new_context(viewport={"width": WIDTHS["desktop"], "height": 900})
                page = await context.new_page()
                await page.goto(f"{server}/console/login")
                await page.fill("#api_key", key)
                await page.click("#login")
                await page.wait_for_url(f"{server}/console/payments")
                for path in paths:
                    for name, width in WIDTHS.items():
                        await page.set_viewport_size({"width": width, "height": 900})
                        await page.goto(f"{server}{path}")
                        if path.endswith("/dashboard"):
                            await wait_until(
                                page, "Number(document.getElementById('live').dataset.updates) >= 1"
                            )
                        shot = tmp_path / f"{path.strip('/').replace('/', '_')}-{name}.png"
                        await page.screenshot(path=str(shot), full_page=True)
                        found = await page.evaluate(LAYOUT_CHECK)
                        where = f"{path} at {width}px ({shot.name})"
                        if found["overflow"] > 0:
                            faults.append(f"{where}: {found['overflow']}px wider than the screen")
                        if found["broken"]:
                            faults.append(f"{where}: words broken inside: {found['broken']}")
                        if found["overlapping"]:
                            faults.append(f"{where}: chart labels overlap: {found['overlapping'][:5]}")
                await context.close()
        finally:
            await browser.close()
    assert not faults, "\n".join(faults)

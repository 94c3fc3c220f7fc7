"""/docs serves Swagger UI from the gateway itself: no CDN, no third-party favicon, and a policy
that lets nothing else run or load. Rendered in Debian's Chromium (Playwright) to prove the page
still works under that policy; any request to another origin is stopped and fails the test."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import CHROMIUM, need_browser
from gateway_stack import Stack, served_gateway
from gw_support import Harness

import fpslink

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VENDORED = Path(fpslink.__file__).parent / "api" / "swagger_ui"
REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


async def test_docs_reference_only_files_of_this_server(harness: Harness) -> None:
    page = await harness.http.get("/docs")
    assert page.status_code == 200
    references = REFERENCES.findall(page.text)
    assert references, page.text
    outside = [r for r in references if not r.startswith("/") or r.startswith("//")]
    assert not outside, f"/docs loads from elsewhere: {outside}"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"

    for reference in references:
        asset = await harness.http.get(reference)
        assert asset.status_code == 200, reference
        assert asset.headers["x-content-type-options"] == "nosniff"
        name = reference.rsplit("/", 1)[-1]
        assert asset.content == (VENDORED / name).read_bytes()
    folder = references[0].rsplit("/", 1)[0]
    for outside_the_list in ("README.md", "LICENSE", "..%2F..%2Fdocs_routes.py", "swagger-ui.js"):
        missing = await harness.http.get(f"{folder}/{outside_the_list}")
        assert missing.status_code == 404, outside_the_list

    redoc = await harness.http.get("/redoc")
    assert redoc.status_code == 307 and redoc.headers["location"] == "/docs"


@pytest.fixture(scope="module")
async def server(stack: Stack) -> AsyncIterator[str]:
    need_browser()
    async with served_gateway(stack, "docs-gateway") as url:
        yield url


async def test_docs_render_in_chromium_from_this_server_alone(server: str, tmp_path: Path) -> None:
    async_api = need_browser()
    elsewhere: list[str] = []
    problems: list[str] = []

    async def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server + "/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    async with async_api.async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context.set_default_timeout(15_000)
        try:
            await context.route("**/*", only_this_server)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            await page.goto(f"{server}/docs")
            await page.wait_for_selector(".opblock-summary-path", timeout=15_000)
            paths = await page.eval_on_selector_all(
                ".opblock-summary-path", "items => items.map(i => i.dataset.path)"
            )
            assert "/v1/payments" in paths, paths
            assert "fpslink" in await page.inner_text(".info .title")
            # "Try it out" reaches this server under the page's connect-src
            health = page.locator('.opblock:has(.opblock-summary-path[data-path="/healthz"])')
            await health.locator(".opblock-summary").click()
            await health.locator("button.try-out__btn").click()
            await health.locator("button.execute").click()
            status = health.locator(".live-responses-table tbody .response-col_status").first
            await status.wait_for()
            assert (await status.inner_text()).strip() == "200"
        finally:
            await context.close()
    assert not elsewhere, f"/docs asked another origin: {elsewhere}"
    assert not problems, problems

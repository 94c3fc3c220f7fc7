"""The HTML report in headless Chromium: totals and charts are on the page, the console stays clean."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser_support import CHROMIUM
from gw_support import Harness
from recon_support import ReconStack, a_day, real_time, recon_stack

pytestmark = pytest.mark.settings(southbound_hours="00:00-24:00")


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but Debian's chromium is not installed (apt-get install -y chromium)")
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); CI installs it")


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ReconStack]:
    _need_chromium()
    async with recon_stack("recon_web", tmp_path_factory.mktemp("recon-web")) as made:
        yield made


class Page(HTMLParser):
    """What the rendered DOM holds: element ids with their text, svg charts and their bars."""

    def __init__(self) -> None:
        super().__init__()
        self.text_of: dict[str, str] = {}
        self.svgs = 0
        self.rects = 0
        self.tables: set[str] = set()
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg" and "chart" in (found.get("class") or ""):
            self.svgs += 1
        if tag == "rect":
            self.rects += 1
        if tag == "table" and found.get("id"):
            self.tables.add(found["id"] or "")
        if found.get("id"):
            self._open.append(found["id"] or "")
            self.text_of[found["id"] or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("div", "span", "td") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for name in self._open:
            self.text_of[name] += data


async def test_html_report_renders_in_chromium(harness: Harness, tmp_path: Path) -> None:
    h = harness
    today = await real_time(h)
    await a_day(h)
    created = await h.http.post(
        "/v1/reconciliations", json={"business_date": today.isoformat()}, headers=h.operator
    )
    run_id = created.json()["reconciliation_id"]
    html = (await h.http.get(f"/v1/reconciliations/{run_id}?format=html", headers=h.operator)).text
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")

    done = await asyncio.to_thread(
        subprocess.run,
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1366,768",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    page = Page()
    page.feed(done.stdout)
    assert page.svgs == 3
    assert page.rects >= 3
    assert {"totals-gateway", "positions", "fx", "breaks"} <= page.tables
    assert page.text_of["break-count"].strip() == "0"
    assert page.text_of["net-cny"].strip() == "748.25"
    assert page.text_of["payment-count"].strip() == "7"
    assert "NORTHBOUND" in done.stdout and "SOUTHBOUND" in done.stdout

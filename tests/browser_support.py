"""Debian's Chromium driven by Playwright, for the tests that render the gateway's pages."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def need_browser() -> Any:
    """Playwright's async API, or a skip (a failure when CI is set) when Chromium or Playwright is missing."""
    missing = None
    if not Path(CHROMIUM).exists():
        missing = "Debian's chromium is not installed (apt-get install -y chromium)"
    try:
        from playwright import async_api
    except ImportError:
        missing = "playwright is not installed (.venv/bin/pip install -e '.[dev]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {missing}", pytrace=False)
        pytest.skip(missing)
    return async_api

"""Unit tests: pure functions only, no database, no network, no wall clock."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings and sandbox helpers read FPSLINK_* and MOCK_IBPS_* variables: start each test without them."""
    for name in list(os.environ):
        if name.startswith(("FPSLINK_", "MOCK_IBPS_")):
            monkeypatch.delenv(name, raising=False)

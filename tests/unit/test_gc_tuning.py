"""Serving processes tune the garbage collector; apps built elsewhere (tests, tools) do not."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json, os
os.environ.setdefault("FPSLINK_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/unused")
os.environ["FPSLINK_OPERATOR_KEY"] = "probe_operator_" + os.urandom(24).hex()
os.environ["FPSLINK_IBPS_TOKEN"] = os.environ["MOCK_IBPS_TOKEN"] = "probe_ibps_" + os.urandom(24).hex()
before = gc.get_threshold()
from {module} import {factory}
{factory}()
print(json.dumps({{"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}}))
"""


def _probe(module: str, factory: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, factory=factory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_gateway_serving_factory_freezes_start_up_and_collects_less_often() -> None:
    found = _probe("fpslink.app", "app_from_env")
    assert found["after"] == [50_000, 50, 100] != found["before"]
    assert isinstance(found["frozen"], int) and found["frozen"] > 1000


def test_mock_ibps_serving_factory_does_the_same() -> None:
    found = _probe("mock_ibps.app", "serve_app")
    assert found["after"] == [50_000, 50, 100]
    assert isinstance(found["frozen"], int) and found["frozen"] > 1000


def test_building_an_app_for_a_test_leaves_the_collector_alone() -> None:
    found = _probe("fpslink.app", "create_app")
    assert found["after"] == found["before"] and found["frozen"] == 0

"""The soak's judgement: which minutes are compared, the thresholds, and what it keeps in memory."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
STEADY_RSS = {"gateway workers": 240.0, "mock_ibps": 110.0, "postgres backend": 15.0}


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fpslink_bench_soak_drift", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(
    p99s: Sequence[float], rss: Sequence[dict[str, float]] | None = None
) -> tuple[list[list[float]], list]:
    """Minutes whose every latency is their p99, and their RSS (steady unless given)."""
    return [[p99] * 50 for p99 in p99s], list(rss) if rss is not None else [STEADY_RSS] * len(p99s)


def test_windows_are_ten_minutes_or_a_third_of_a_short_run(soak: ModuleType) -> None:
    assert [soak.window_minutes(n) for n in (3, 5, 9, 19, 20, 60, 600)] == [1, 1, 3, 6, 10, 10, 10]


def test_a_steady_hour_does_not_drift(soak: ModuleType) -> None:
    drift = soak.judge(*run([40.0] * 60))
    assert drift.drifted == [] and drift.window == 10 and not drift.short
    assert drift.p99_ms == (40.0, 40.0)
    assert drift.rss_mib["mock_ibps"] == (110.0, 110.0)


def test_p99_may_grow_by_twenty_percent_and_no_more(soak: ModuleType) -> None:
    assert soak.judge(*run([40.0] * 50 + [47.9] * 10)).drifted == []
    drifted = soak.judge(*run([40.0] * 50 + [48.5] * 10)).drifted
    assert len(drifted) == 1 and drifted[0].startswith("p99 40.0 -> 48.5 ms")


def test_only_the_first_and_last_windows_count(soak: ModuleType) -> None:
    middle_burst = [40.0] * 10 + [900.0] * 40 + [40.0] * 10  # minutes 11-50: not compared
    assert soak.judge(*run(middle_burst)).drifted == []
    late = [40.0] * 50 + [40.0] * 9 + [900.0]  # one bad minute in the last ten lifts the pooled p99
    assert soak.judge(*run(late)).drifted != []
    faster = [80.0] * 10 + [40.0] * 50  # a tail that falls is no drift
    assert soak.judge(*run(faster)).drifted == []


def test_a_short_run_compares_its_thirds_and_says_so(soak: ModuleType) -> None:
    drift = soak.judge(*run([40.0] * 3 + [900.0] * 3 + [40.0] * 3))  # 9 minutes: thirds of 3
    assert drift.window == 3 and drift.short and drift.drifted == []
    assert "the last third (3 min)" in drift.lines()[0]
    assert soak.judge(*run([40.0] * 6 + [60.0] * 3)).drifted[0].startswith("p99 40.0 -> 60.0")


def test_rss_may_grow_by_ten_percent_in_any_group(soak: ModuleType) -> None:
    grown = [STEADY_RSS] * 50 + [{**STEADY_RSS, "postgres backend": 16.4}] * 10
    assert soak.judge(*run([40.0] * 60, grown)).drifted == []
    leaking = [STEADY_RSS] * 50 + [{**STEADY_RSS, "gateway workers": 265.0}] * 10
    assert soak.judge(*run([40.0] * 60, leaking)).drifted == [
        "RSS of gateway workers 240.0 -> 265.0 MiB (+10.4%)"
    ]
    shrunk = [STEADY_RSS] * 50 + [{**STEADY_RSS, "mock_ibps": 50.0}] * 10
    assert soak.judge(*run([40.0] * 60, shrunk)).drifted == []


def test_a_window_without_answers_or_memory_fails(soak: ModuleType) -> None:
    latencies, rss = run([40.0] * 9)
    latencies[-3:] = [[], [], []]
    assert soak.judge(latencies, rss).drifted == ["p99: a window has no answers"]
    no_backends = [STEADY_RSS] * 6 + [{"gateway workers": 240.0, "mock_ibps": 110.0}] * 3
    assert soak.judge(*run([40.0] * 9, no_backends)).drifted == [
        "RSS of postgres backend: not measured in a window"
    ]


def test_memory_keeps_the_windows_and_the_ten_minutes_being_summed(soak: ModuleType) -> None:
    def kept(done: int, planned: int = 60) -> list[int]:
        return [m for m in range(done) if soak.still_needed(m, done, planned)]

    assert kept(10) == list(range(10))  # the first window, summed as minute 10 ends
    assert kept(15) == list(range(15))  # the first window and the last ten so far
    assert kept(35) == [*range(10), *range(25, 35)]
    assert kept(60) == [*range(10), *range(50, 60)]  # what the judgement pools at the end
    assert kept(9, planned=9) == list(range(9))  # the block not summed yet
    assert kept(24, planned=24) == [*range(10), *range(14, 24)]


def test_the_groups_judged_from_a_sample(soak: ModuleType) -> None:
    sample = soak.Sample([120.0, 124.0], 110.0, [14.0, 16.0], {}, {})
    assert sample.rss() == {"gateway workers": 244.0, "mock_ibps": 110.0, "postgres backend": 15.0}
    assert "postgres backend" not in soak.Sample([120.0], 110.0, [], {}, {}).rss()


def test_cpu_per_group_counts_each_process_and_never_goes_negative(soak: ModuleType) -> None:
    """Before: the group's totals were subtracted, and a soak's last minute read -40.97 ms of CPU a
    payment when PostgreSQL backends that had served for the hour ended between the two probes."""
    cpu_used = sys.modules["benchmarks.throughput"].cpu_used
    before = {10: 5.0, 11: 700.0}  # 11: a backend that served the whole run
    after = {10: 6.5, 12: 0.25}  # 11 ended; 12 started in between
    assert cpu_used(before, after) == 1.75
    assert cpu_used({}, {7: 2.0}) == 2.0
    assert cpu_used({7: 2.0}, {}) == 0.0

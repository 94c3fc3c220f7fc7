"""`fpslink loadtest`: duration parsing, the run's bounds and verdict, reading locust's CSV files.

The end-to-end run on PostgreSQL is in tests/integration/test_gw_loadtest.py.
"""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fpslink import cli
from fpslink_tools import loadtest as load


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60),
        ("2m", 120),
        ("90", 90),
        ("1.5", 1.5),
        (" 45S ", 45),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2m30s", 150),
        ("24h", 86_400),
    ],
)
def test_durations_read_like_locusts(text: str, seconds: float) -> None:
    assert load.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "0", "0s", "-5", "25h", "1d", "60 s", "2m1h", "nan", "inf", "1e9"])
def test_durations_outside_the_bounds_or_misspelt_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        load.parse_duration(text)


def test_accounts_grow_with_the_load_within_bounds() -> None:
    assert load.auto_accounts_per_bank(5, 8) == 5
    assert load.auto_accounts_per_bank(50, 30) == 15
    assert load.auto_accounts_per_bank(1000, 3600) == 50


def test_the_default_spawn_rate_starts_everyone_within_five_seconds() -> None:
    assert load.auto_spawn_rate(1) == 1
    assert load.auto_spawn_rate(50) == 10
    assert load.auto_spawn_rate(51) == 11


def test_the_config_refuses_another_database_a_short_day_and_a_public_address(tmp_path: Path) -> None:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("")
    load.LoadtestConfig(locustfile=locustfile).check()
    with pytest.raises(load.LoadtestError, match="PostgreSQL"):
        load.LoadtestConfig(database_url="mysql+aiomysql://root@127.0.0.1/x", locustfile=locustfile).check()
    with pytest.raises(load.LoadtestError, match="24s"):
        load.LoadtestConfig(shape=True, duration_s=20, locustfile=locustfile).check()
    with pytest.raises(load.LoadtestError, match=r"127\.0\.0\.1"):
        load.LoadtestConfig(host="0.0.0.0", locustfile=locustfile).check()
    with pytest.raises(load.LoadtestError, match="no locustfile"):
        load.LoadtestConfig(locustfile=tmp_path / "missing.py").check()


def test_the_locust_command_is_headless_bounded_and_local(tmp_path: Path) -> None:
    cfg = load.LoadtestConfig(users=50, duration_s=30, output=tmp_path, locustfile=tmp_path / "l.py")
    command = load.locust_command(cfg, "http://127.0.0.1:18720")
    text = " ".join(command)
    assert command[1:3] == ["-m", "locust"]
    for part in ("--headless", "-u 50", "-r 10", "-t 30s", "--host http://127.0.0.1:18720", "--only-summary"):
        assert part in text
    assert f"--csv {tmp_path / 'locust'}" in text and f"--html {tmp_path / 'locust.html'}" in text


def test_more_locust_processes_run_a_master_and_workers_on_loopback(tmp_path: Path) -> None:
    single = load.LoadtestConfig(output=tmp_path, locustfile=tmp_path / "l.py")
    assert "--processes" not in load.locust_command(single, "http://127.0.0.1:18720")
    cfg = load.LoadtestConfig(output=tmp_path, locustfile=tmp_path / "l.py", locust_processes=3)
    command = load.locust_command(cfg, "http://127.0.0.1:18720")
    options = dict(itertools.pairwise(command))
    assert options["--processes"] == "3"
    assert options["--master-bind-host"] == options["--master-host"] == "127.0.0.1"
    assert options["--master-bind-port"] == options["--master-port"]
    assert "--csv-full-history" in command


HISTORY_CSV = """\
Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
1800000000,5,POST,/v1/payments,4.0,0.0,50,55,60,61,70,75,78,80,80,80,80
1800000000,5,,Aggregated,5.0,0.0,10,12,22,28,54,70,80,900,900,900,900
1800000030,5,POST,/v1/payments,4.0,0.0,50,55,60,61,70,75,78,120,130,130,130
1800000059,5,POST,/v1/payments,4.0,0.0,50,55,60,61,70,75,78,90,90,90,90
1800000061,5,POST,/v1/payments,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
1800000185,5,POST,/v1/payments,4.0,0.0,50,55,60,61,70,75,78,60,60,60,60
"""


def test_each_minutes_p99_is_the_worst_ten_second_p99_of_that_minute(tmp_path: Path) -> None:
    history = tmp_path / "locust_stats_history.csv"
    history.write_text(HISTORY_CSV)
    assert load.p99_by_minute(history, "POST /v1/payments") == [120, None, None, 60]
    assert load.p99_by_minute(history, "GET /nothing") == []
    assert load.p99_by_minute(tmp_path / "missing.csv", "POST /v1/payments") == []


SENDING_CSV = """\
Timestamp,User Count,Type,Name,Requests/s,Failures/s,99%,Total Request Count
1800000000,5,POST,/v1/payments,0.0,0.0,N/A,0
1800000004,5,POST,/v1/payments,2.0,0.0,80,3
1800000004,5,,Aggregated,9.0,0.0,80,40
1800000030,5,POST,/v1/payments,4.0,0.0,120,90
1800000050,5,POST,/v1/payments,4.0,0.0,90,150
1800000070,5,POST,/v1/payments,0.0,0.0,90,150
"""


def test_the_sending_window_runs_from_the_first_payment_sent_to_the_last(tmp_path: Path) -> None:
    # with the clock moved the payments' own times jumped: locust's history gives the window
    history = tmp_path / "locust_stats_history.csv"
    history.write_text(SENDING_CSV)
    assert load.sending_window_s(history, "POST /v1/payments") == 46
    assert load.sending_window_s(history, "GET /nothing") == 0
    assert load.sending_window_s(tmp_path / "missing.csv", "POST /v1/payments") == 0


def _metrics(counts: dict[str, float]) -> str:
    """A /metrics answer with fpslink_payment_seconds at these cumulative bucket counts."""
    lines = ["# TYPE fpslink_payment_seconds histogram"]
    lines += [f'fpslink_payment_seconds_bucket{{le="{le}"}} {n}' for le, n in counts.items()]
    lines += [f"fpslink_payment_seconds_count {counts['+Inf']}", "fpslink_payment_seconds_sum 1.0"]
    return "\n".join(["# TYPE fpslink_payments_total counter", "fpslink_payments_total 3.0", *lines]) + "\n"


def test_the_gateways_p99_of_each_minute_is_the_bucket_that_holds_99_percent() -> None:
    start = load.latency_scrape(_metrics({"0.05": 0, "0.1": 0, "0.25": 0, "1.0": 0, "+Inf": 0}))
    quick = load.latency_scrape(_metrics({"0.05": 900, "0.1": 995, "0.25": 1000, "1.0": 1000, "+Inf": 1000}))
    slow = load.latency_scrape(_metrics({"0.05": 950, "0.1": 1050, "0.25": 1060, "1.0": 1090, "+Inf": 1100}))
    assert start is not None and quick is not None and slow is not None
    assert quick == ({0.05: 900, 0.1: 995, 0.25: 1000, 1.0: 1000, float("inf"): 1000}, 1000)
    # 99% of the first minute's 1,000 answers within 100 ms; of the next 100, 90 within 1 s, the
    # largest finite bound, which then reads "at least"
    assert load.p99_bounds([start, quick, slow, None, slow]) == [100.0, 1000.0, None, None]
    assert load.p99_bounds([quick, quick]) == [None]  # nothing answered in between
    assert load.latency_scrape("# TYPE other counter\nother 1.0\n") is None


def test_accounts_per_bank_set_by_the_caller_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADTEST_ACCOUNTS_PER_BANK", "120")
    assert (
        load.locust_env(load.LoadtestConfig(users=5, duration_s=8), "k" * 20)["LOADTEST_ACCOUNTS_PER_BANK"]
        == "120"
    )
    chosen = load.LoadtestConfig(users=5, duration_s=8, accounts_per_bank=7)
    assert load.locust_env(chosen, "k" * 20)["LOADTEST_ACCOUNTS_PER_BANK"] == "7"


def test_the_shape_gets_the_day_and_the_peak_from_the_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOADTEST_ACCOUNTS_PER_BANK", raising=False)
    steady = load.locust_env(load.LoadtestConfig(users=50, duration_s=30, output=tmp_path), "k" * 20)
    assert steady["LOADTEST_SHAPE"] == "" and steady["LOADTEST_ACCOUNTS_PER_BANK"] == "15"
    day = load.locust_env(load.LoadtestConfig(users=80, duration_s=120, shape=True), "k" * 20)
    shape = (day["LOADTEST_SHAPE"], day["LOADTEST_DAY_SECONDS"], day["LOADTEST_PEAK_USERS"])
    assert shape == ("day", "120", "80")


STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/v1/payments/[id],10,0,6,7.0,2.0,21.0,885.0,1.0,0.0,6,6,22,22,22,22,22,22,22,22,22
POST,/v1/payments,40,2,54,37.7,5.0,79.6,1167.2,4.0,0.2,54,54,60,61,70,75,78,80,80,80,80
POST,/v1/quotes,0,0,0,0.0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
,Aggregated,50,2,10,18.9,2.0,79.6,557.8,5.0,0.2,10,12,22,28,54,70,80,80,80,80,80
"""
FAILURES_CSV = """\
Method,Name,Error,Occurrences
POST,/v1/payments,ordinary payment REJECTED AM04,1
POST,/v1/payments,expected 201/202 got 500 no-json,3
"""
EXCEPTIONS_CSV = """\
Count,Message,Traceback,Nodes
2,KeyError('x'),Traceback ...,local
"""


def test_locusts_csv_files_give_latencies_failures_and_exceptions(tmp_path: Path) -> None:
    (tmp_path / "locust_stats.csv").write_text(STATS_CSV)
    (tmp_path / "locust_failures.csv").write_text(FAILURES_CSV)
    (tmp_path / "locust_exceptions.csv").write_text(EXCEPTIONS_CSV)
    rows, failures, exceptions = load.read_locust_stats(tmp_path / "locust")
    post = rows["POST /v1/payments"]
    assert (post.requests, post.failures, post.p50_ms, post.p95_ms, post.p99_ms) == (40, 2, 54, 75, 80)
    assert rows["POST /v1/quotes"].p99_ms is None
    assert rows["Aggregated"].requests == 50
    assert [f["Occurrences"] for f in failures] == ["3", "1"]  # most frequent first
    assert exceptions == 2


def test_missing_csv_files_read_as_nothing(tmp_path: Path) -> None:
    assert load.read_locust_stats(tmp_path / "locust") == ({}, [], 0)


def passing_report() -> load.LoadtestReport:
    report = load.LoadtestReport(workers=1, users=5, shape=False, duration_s=8, output="out")
    report.locust_exit_code = 0
    report.settled = 3
    report.payments_endpoint = load.EndpointStats("POST /v1/payments", 4, 0, 10, 20, 30, 0.5)
    report.reconciliations = [load.ReconResult("2026-06-22", "r1", 0, {}, "a.json", "a.html")]
    return report


def test_a_clean_run_passes_and_every_finding_fails_it() -> None:
    assert passing_report().ok
    findings = {
        "failures": {"failures": 1},
        "exceptions": {"exceptions": 1},
        "invariant violations": {"invariant_violations": ["I1 broken"]},
        "still not final": {"still_pending": 2},
        "no payment settled": {"settled": 0},
        "exited with 1": {"locust_exit_code": 1},
        "killed": {"locust_killed": True},
        "no POST": {"payments_endpoint": None},
    }
    for words, change in findings.items():
        report = passing_report()
        for name, value in change.items():
            setattr(report, name, value)
        assert not report.ok
        assert any(words in problem for problem in report.problems), (words, report.problems)
    broken = passing_report()
    broken.reconciliations.append(load.ReconResult("2026-06-23", "r2", 2, {"STUCK_PENDING": 2}, "b", "b"))
    assert broken.breaks == 2 and "2 reconciliation breaks" in broken.problems


def test_the_summary_json_carries_the_verdict() -> None:
    document = passing_report().as_json()
    assert document["ok"] is True and document["problems"] == [] and document["breaks"] == 0
    assert document["payments_endpoint"]["p95_ms"] == 20


def test_a_run_across_midnight_in_hong_kong_reconciles_both_dates() -> None:
    start = datetime(2026, 6, 22, 15, 59, 30, tzinfo=UTC)  # 23:59:30 in Hong Kong
    end = datetime(2026, 6, 22, 16, 0, 30, tzinfo=UTC)
    assert load.business_dates(start, end) == [date(2026, 6, 22), date(2026, 6, 23)]
    assert load.business_dates(end, end) == [date(2026, 6, 23)]


def test_the_summary_table_names_the_headline_numbers() -> None:
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(load.summary_table(passing_report()))
    text = console.export_text()
    for words in ("settled payments per second", "p50 / p95 / p99", "invariant violations", "breaks"):
        assert words in text


def test_without_locust_the_command_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "locust_missing", lambda: True)
    result = CliRunner().invoke(cli.app, ["loadtest", "--duration", "5s"])
    assert result.exit_code == 2  # could not run
    assert result.output.strip() == load.install_hint()
    # this interpreter's pip (the .venv's), not whichever pip is on PATH
    python, _, rest = result.output.strip().split(": ", 1)[1].partition(" -m pip ")
    assert rest == "install -e '.[load]'"
    assert (Path.cwd() / python).absolute() == Path(sys.executable).absolute()


def test_a_bad_duration_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "locust_missing", lambda: False)
    result = CliRunner().invoke(cli.app, ["loadtest", "--duration", "soon"])
    assert result.exit_code == 2
    assert "duration" in result.output


def test_the_worker_count_is_bounded() -> None:
    result = CliRunner().invoke(cli.app, ["loadtest", "--workers", "17"])
    assert result.exit_code == 2

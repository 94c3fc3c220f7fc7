"""The benchmark scripts compile, parse their arguments, read a profile and read PostgreSQL's wire protocol,
without starting anything."""

from __future__ import annotations

import importlib.util
import re
import struct
import sys
from fnmatch import fnmatch
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def throughput() -> ModuleType:
    return _load(BENCHMARKS / "throughput.py", "fpslink_bench_throughput")


@pytest.mark.parametrize(
    "script", sorted(p.relative_to(BENCHMARKS).as_posix() for p in BENCHMARKS.rglob("*.py")), ids=str
)
def test_every_benchmark_script_compiles(script: str) -> None:
    path = BENCHMARKS / script
    compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_throughput_defaults(throughput: ModuleType) -> None:
    args = throughput.parse_args([])
    assert (args.duration, args.concurrency, args.workers, args.warmup) == (60.0, 64, 2, 5.0)
    assert args.only == "both" and not args.keep and not args.locust and args.profile is None
    assert args.rate is None  # closed loop unless asked


def test_throughput_open_loop_rate(throughput: ModuleType) -> None:
    assert throughput.parse_args(["--rate", "1000", "--concurrency", "512"]).rate == 1000.0


def test_throughput_options(throughput: ModuleType) -> None:
    args = throughput.parse_args(
        [
            "--duration",
            "30",
            "--concurrency",
            "8",
            "--workers",
            "1",
            "--warmup",
            "0",
            "--only",
            "skeleton",
            "--locust",
        ]
    )
    assert (args.duration, args.concurrency, args.workers, args.warmup, args.only) == (
        30.0,
        8,
        1,
        0.0,
        "skeleton",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--duration", "0"],
        ["--concurrency", "0"],
        ["--workers", "99"],
        ["--only", "neither"],
        ["--rate", "0"],
        ["--rounds", "0"],
        ["--rounds", "11"],
    ],
)
def test_throughput_refuses_unbounded_runs(throughput: ModuleType, argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        throughput.parse_args(argv)


def test_answers_are_classified(throughput: ModuleType) -> None:
    assert throughput.classify(201, b'{"status": "SETTLED"}') == "SETTLED"
    assert throughput.classify(202, b'{"status": "PENDING"}') == "PENDING"
    assert throughput.classify(201, b'{"status": "REJECTED", "reason_code": "AM04"}') == "REJECTED AM04"
    assert throughput.classify(409, b"{}") == "HTTP 409"


def test_profile_table_counts_self_and_inclusive_samples(throughput: ModuleType) -> None:
    lines = throughput.top_functions(["main;a;b 3", "main;a 1", "garbage"])
    assert lines[0].startswith("profile: 4 samples")
    assert "75.0 %" in lines[1] and lines[1].endswith("b")


def test_latency_percentiles(throughput: ModuleType) -> None:
    result = throughput.Result(name="x", duration_s=2.0, latencies_ms=[float(i) for i in range(1, 101)])
    assert result.percentile(0.5) == pytest.approx(50.5, abs=0.5)
    assert result.percentile(0.99) == pytest.approx(99.0, abs=1.0)
    assert result.per_s(10) == 5.0


def test_skeleton_imports_nothing_from_fpslink() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(fpslink|mock_ibps)\b", re.MULTILINE)
    for path in (BENCHMARKS / "skeleton").glob("*.py"):
        assert not pattern.search(path.read_text()), path.name


def test_throughput_ratio_per_round(throughput: ModuleType) -> None:
    def result(name: str, settled: int) -> object:
        return throughput.Result(name=name, duration_s=10.0, settled=settled)

    one = [result("fpslink", 900), result("skeleton", 1000)]
    assert throughput.round_ratios(one) == [0.9]
    rounds = [result("fpslink #1", 900), result("skeleton #1", 1000), result("fpslink #2", 1100)]
    rounds.append(result("skeleton #2", 1000))
    rounds.append(result("fpslink #3", 500))  # a round without its skeleton has no ratio
    assert throughput.round_ratios(rounds) == [0.9, 1.1]
    assert throughput.parse_args(["--rounds", "3"]).rounds == 3


def test_batch_summary_reads_the_workers_metrics(throughput: ModuleType) -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    registry = CollectorRegistry()
    size = Histogram("fpslink_batch_size", "size", registry=registry)
    step = Histogram("fpslink_batch_step_seconds", "step", ["step"], registry=registry)
    for n in (10, 30):
        size.observe(n)
    for name, seconds in (("accept", 0.020), ("prepare", 0.010), ("decide", 0.004), ("finish", 0.006)):
        step.labels(step=name).observe(seconds)
        step.labels(step=name).observe(seconds * 3)
    line = throughput.batch_summary(generate_latest(registry).decode())
    assert line == (
        "the workers' 2 batches: 20 payments each on average; "
        "mean ms per step: accept 40, prepare 20, decide 8, finish 12"
    )
    assert "no batch" in throughput.batch_summary("")


def test_p99_of_each_window_finds_a_burst(throughput: ModuleType) -> None:
    result = throughput.Result(name="x", duration_s=30)
    for i in range(3000):
        sent = i / 100  # 100 requests a second for 30 s
        result.sent_s.append(sent)
        result.latencies_ms.append(900.0 if 12 <= sent < 13 else 100.0)
    assert result.windows_p99(10) == [100.0, 900.0, 100.0]


@pytest.fixture(scope="module")
def roundtrips() -> ModuleType:
    return _load(BENCHMARKS / "roundtrips.py", "fpslink_bench_roundtrips")


def _msg(kind: bytes, *fields: bytes) -> bytes:
    body = b"".join(fields)
    return kind + struct.pack("!i", len(body) + 4) + body


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def _payment_wire() -> tuple[bytes, list[bytes]]:
    """What a driver sends on one connection, and what the server answers between its waits."""
    sa, lane = "fpslink_sa_1", "__asyncpg_stmt_1__"
    ssl = struct.pack("!ii", 8, 80877103)
    startup = b"".join([struct.pack("!i", 196608), _cstr("user"), _cstr("postgres"), b"\0"])
    startup = struct.pack("!i", len(startup) + 4) + startup
    bind = _cstr("") + b"\0\0\0\0\0\0"
    client = b"".join(
        [
            ssl,
            startup,
            _msg(b"Q", _cstr("BEGIN ISOLATION LEVEL READ COMMITTED;")),
            _msg(b"P", _cstr(sa), _cstr("SELECT accounts.id FROM accounts"), b"\0\0"),
            _msg(b"D", b"S", _cstr(sa)),
            _msg(b"H"),
            _msg(b"B", _cstr(""), _cstr(sa), bind),
            _msg(b"E", _cstr(""), b"\0\0\0\0"),
            _msg(b"S"),
            _msg(
                b"P",
                _cstr(lane),
                _cstr("  -- the decision\nWITH d AS (UPDATE p SET s = 1) SELECT 1"),
                b"\0\0",
            ),
            _msg(b"D", b"S", _cstr(lane)),
            _msg(b"H"),
            _msg(b"B", _cstr(""), _cstr(lane), bind),
            _msg(b"E", _cstr(""), b"\0\0\0\0"),
            _msg(b"S"),
            _msg(b"Q", _cstr('COPY "events"(a) FROM STDIN (FORMAT binary)')),
            _msg(b"d", b"PGCOPY"),
            _msg(b"c"),
            _msg(b"Q", _cstr("COMMIT;")),
            _msg(b"B", _cstr(""), _cstr(lane), bind),
            _msg(b"E", _cstr(""), b"\0\0\0\0"),
            _msg(b"S"),
            _msg(b"X"),
        ]
    )
    idle, in_block = _msg(b"Z", b"I"), _msg(b"Z", b"T")
    return client, [idle, in_block, idle]


def test_roundtrips_reads_the_wire(roundtrips: ModuleType) -> None:
    client, (idle, in_block, _) = _payment_wire()
    trips: list[object] = []
    tally = roundtrips.WireTally(1, trips.append)
    forward, answer = tally.client(client[:8])  # the SSL request is refused here, never forwarded
    assert (forward, answer) == (b"", b"N")
    begin_at = client.index(b"Q")
    forward, answer = tally.client(client[8:begin_at])
    assert forward == client[8:begin_at] and answer == b""
    tally.server(idle)
    commit_at = client.index(b"Q\0\0\0\x0cCOMMIT;")
    begin_end = begin_at + 1 + struct.unpack("!i", client[begin_at + 1 : begin_at + 5])[0]
    tally.client(client[begin_at:begin_end])
    tally.server(in_block[:3])  # ReadyForQuery in two pieces
    tally.server(in_block[3:])
    tally.client(client[begin_end:commit_at])
    tally.client(client[commit_at : commit_at + 13])
    tally.server(idle)
    tally.client(client[commit_at + 13 :])
    got = [(t.source, t.kind, t.statements, t.transactions) for t in trips]
    assert got == [
        ("connect", "connect", 0, 0),
        ("connect", "connect", 0, 0),
        ("transaction", "BEGIN", 1, 1),
        ("SQLAlchemy", "prepare", 0, 0),
        ("SQLAlchemy", "SELECT", 1, 0),
        ("lane", "prepare", 0, 0),
        ("lane", "WITH", 1, 0),
        ("lane", "COPY", 1, 0),
        ("lane", "COPY rows", 0, 0),
        ("transaction", "COMMIT", 1, 0),
        ("lane", "WITH", 1, 1),  # outside a transaction block: a transaction of its own
    ]


def test_roundtrips_wire_in_any_pieces(roundtrips: ModuleType) -> None:
    client, _ = _payment_wire()
    whole: list[object] = []
    roundtrips.WireTally(1, whole.append).client(client)
    bytewise: list[object] = []
    tally = roundtrips.WireTally(1, bytewise.append)
    forwarded = b"".join(tally.client(client[i : i + 1])[0] for i in range(len(client)))
    assert bytewise == whole and len(whole) == 11
    assert forwarded == client[8:]


def test_roundtrips_options(roundtrips: ModuleType) -> None:
    args = roundtrips.parse_args([])
    assert (args.warmup, args.verbose, args.database_url) == (3, False, "")
    with pytest.raises(SystemExit):
        roundtrips.parse_args(["--warmup", "21"])
    assert roundtrips.verb("/* x */ with a as (select 1) select 1") == "WITH"


@pytest.fixture(scope="module")
def mutation() -> ModuleType:
    return _load(BENCHMARKS / "mutation.py", "fpslink_bench_mutation")


def test_mutation_runs_one_worker_over_every_module_by_default(mutation: ModuleType) -> None:
    args = mutation.parse_args([])
    assert (args.max_children, args.module, args.keep) == (1, None, False)
    assert mutation.parse_args(["--module", "money", "--module", "breaker"]).module == ["money", "breaker"]
    with pytest.raises(SystemExit):
        mutation.parse_args(["--module", "nowhere"])


def test_mutation_targets_and_tests_exist(mutation: ModuleType) -> None:
    for target in mutation.TARGETS:
        assert (ROOT / target.path).is_file(), target
    for name in (*mutation.TESTS, *mutation.SUPPORT):
        assert (ROOT / name).is_file(), name
    config = mutation.mutmut_config(mutation.TARGETS, mutation.TESTS)
    assert '"src/fpslink/money.py"' in config and '"tests/unit/test_money.py"' in config


def test_every_equivalent_mutant_listed_is_of_a_mutated_function(mutation: ModuleType) -> None:
    """docs/mutation.md names each equivalent mutant; a name no target matches is a stale line."""
    listed = mutation.explained()
    assert listed, "docs/mutation.md lists its equivalent mutants as '- `name`: reason'"
    globs = [glob for target in mutation.TARGETS for glob in target.globs()]
    assert [name for name in listed if not any(fnmatch(name, glob) for glob in globs)] == []


def test_a_database_beside_the_server_by_tcp_or_socket(throughput: ModuleType) -> None:
    tcp = "postgresql://postgres@127.0.0.1:5432/postgres"
    assert throughput.on_server(tcp, "gw") == "postgresql://postgres@127.0.0.1:5432/gw"
    assert throughput.on_server(tcp, "gw", "asyncpg") == "postgresql+asyncpg://postgres@127.0.0.1:5432/gw"
    from sqlalchemy.engine import make_url

    socket = make_url(
        throughput.on_server("postgresql://postgres@/postgres?host=/tmp/pg/socket&port=5432", "gw")
    )
    assert (socket.database, socket.query["host"], socket.port or socket.query["port"]) == (
        "gw",
        "/tmp/pg/socket",
        "5432",
    )


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    return _load(BENCHMARKS / "soak.py", "fpslink_bench_soak")


def test_soak_defaults_and_hours(soak: ModuleType) -> None:
    args = soak.parse_args([])
    assert (args.hours, args.minutes, args.rate, args.workers, args.keep) == (1.0, 60, 300.0, 2, False)
    assert soak.parse_args(["--hours", "0.25"]).minutes == 15
    assert soak.parse_args(["--hours", "2.5", "--rate", "500"]).minutes == 150


@pytest.mark.parametrize(
    "argv",
    [
        ["--hours", "0"],
        ["--hours", "0.01"],
        ["--hours", "25"],
        ["--rate", "0"],
        ["--rate", "6000"],
        ["--workers", "0"],
    ],
)
def test_soak_refuses_unbounded_runs(soak: ModuleType, argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        soak.parse_args(argv)


def test_soak_rows_keep_their_width(soak: ModuleType) -> None:
    widths = sum(width for _, width in soak.COLUMNS)
    assert len(soak.table_line(["9" * 40] * len(soak.COLUMNS))) == widths  # cut, never pushing columns
    assert len(soak.table_line(["1"] * len(soak.COLUMNS))) == widths - soak.COLUMNS[-1][1] + 3


def test_soak_judges_the_tail_on_every_10_s_window(soak: ModuleType) -> None:
    result = soak.Result(name="minute 7", duration_s=60.0)
    for window, (answers, slow_ms) in enumerate([(200, 80.0), (200, 251.0), (200, 250.0), (50, 900.0)]):
        # windows 0-3 of the minute; window 4 has no answers at all and is left out, not shifted into
        for k in range(answers):
            result.sent_s.append(window * 10 + k * 9.9 / answers)
            result.latencies_ms.append(slow_ms if k >= answers - 3 else 20.0)
    result.sent_s.append(55.0)
    result.latencies_ms.append(260.0)
    windows = soak.windows_of(7, result)
    assert [(w.start_s, w.answers) for w in windows] == [(0, 200), (10, 200), (20, 200), (30, 50), (50, 1)]
    assert soak.worst_p99(windows) == pytest.approx(251.0)  # the windows of few answers are not judged
    tail = soak.judge_tail(windows, 250.0)
    assert [w.label() for w in tail.over] == ["minute 7, 10-20 s"]  # a window at the bound passes
    lines = tail.lines()
    assert "(3 windows)" in lines[0] and "above 250 ms: 1" in lines[0]
    assert "2 with fewer than 100 answers not judged" in lines[0]
    assert lines[1] == "  minute 7, 10-20 s: p99 251.0 ms over 200 answers"
    assert soak.judge_tail(windows, 0.0).over == ()  # 0 reports without judging
    assert "no bound set" in soak.judge_tail(windows, 0.0).lines()[0]
    assert soak.judge_tail([], 250.0).lines() == ["steady tail: no 10 s window to judge"]

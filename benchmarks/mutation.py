"""Mutation testing of the pure, money-critical modules: which small bugs would their unit tests miss?

    .venv/bin/python benchmarks/mutation.py [--module NAME ...] [--max-children 1] [--keep]

Runs mutmut over the modules in `TARGETS` (money, FX, limit policy, settlement states, the
reservation plan, the reconciliation rules, webhook signing and the IBPS circuit breaker) with the
unit tests in `TESTS`, none of which needs a database or the network. mutmut makes each mutant (an
operator swapped, a constant changed, an argument dropped, ...) and runs the unit tests that reach
the mutated function; a mutant is killed when one of them fails. It prints per module: mutants,
killed, survived, the score (killed / mutants) and each survivor's diff. docs/mutation.md explains
every survivor that is left: an equivalent mutant, with the reason it cannot be told apart.

The work happens in a temporary copy of `src/` and `tests/` (nothing in the work tree changes),
removed at the end unless `--keep`. By default one worker runs the mutants (`--max-children`): the
machines this runs on are shared. It exits 1 when a mutant survives that docs/mutation.md does not
list as equivalent, so it can be run as a check. It is not part of the test suite: a run takes a
few minutes.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "docs" / "mutation.md"


@dataclass(frozen=True)
class Target:
    """One module, and the functions of it that are mutated (mutmut's mutant-name globs)."""

    name: str
    path: str
    functions: tuple[str, ...] = ("*",)

    @property
    def module(self) -> str:
        return self.path.removeprefix("src/").removesuffix(".py").replace("/", ".")

    def globs(self) -> list[str]:
        return [f"{self.module}.{function}" for function in self.functions]


TARGETS: tuple[Target, ...] = (
    Target("money", "src/fpslink/money.py"),
    Target("fx", "src/fpslink/fx/domain.py"),
    Target("limits", "src/fpslink/limits/policy.py"),
    Target("states", "src/fpslink/settlement/states.py"),
    Target("reservation", "src/fpslink/payments/reservation.py"),
    Target("recon-domain", "src/fpslink/reconciliation/domain.py"),
    # the break rules and the expressions they read; the rest of matching.py is statements to run
    Target(
        "recon-rules",
        "src/fpslink/reconciliation/matching.py",
        (
            "x_break_rules__*",
            "x_break_mask__*",
            "x__fx_broken__*",
            "x__micro__*",
            "x__derived__*",
            "x_needs_lookup__*",
            "x_near_cut_off__*",
        ),
    ),
    Target("signing", "src/fpslink/webhooks/signing.py"),
    Target("breaker", "src/fpslink/circuit.py", ("xǁCircuitBreakerǁ*", "xǁLinkCircuitǁ*", "xǁCircuitsǁ*")),
)

TESTS: tuple[str, ...] = (
    "tests/unit/test_money.py",
    "tests/unit/test_fx.py",
    "tests/unit/test_limits_policy.py",
    "tests/unit/test_settlement_states.py",
    "tests/unit/test_reservation.py",
    "tests/unit/test_recon_domain.py",
    "tests/unit/test_recon_rules.py",
    "tests/unit/test_recon_describe.py",
    "tests/unit/test_dx_units.py",
    "tests/unit/test_webhook_signature.py",
    "tests/unit/test_circuit_breaker.py",
)
"""The unit tests that may kill a mutant; mutmut runs, for each mutant, those that reach its function."""

SUPPORT: tuple[str, ...] = (
    "tests/conftest.py",
    "tests/pgtest.py",
    "tests/recon_rules_cases.py",
    "tests/unit/__init__.py",
    "tests/unit/conftest.py",
)
"""What the tests import besides the code under test."""

STATUS_LINE = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")


@dataclass
class Tally:
    target: Target
    statuses: dict[str, str] = field(default_factory=dict)

    def count(self, *statuses: str) -> int:
        return sum(1 for status in self.statuses.values() if status in statuses)

    @property
    def survivors(self) -> list[str]:
        return sorted(name for name, status in self.statuses.items() if status != "killed")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--module",
        action="append",
        choices=[t.name for t in TARGETS],
        help="only this module (repeatable); all of them by default",
    )
    parser.add_argument("--max-children", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and print its path")
    return parser.parse_args(argv)


def mutmut_config(targets: Sequence[Target], tests: Sequence[str]) -> str:
    """The [tool.mutmut] table appended to the copy's pyproject.toml."""

    def toml_list(items: Sequence[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {toml_list([t.path for t in targets])}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        "use_git_change_detection = false\n"
    )


def prepare(work: Path, targets: Sequence[Target], tests: Sequence[str]) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    (work / "tests" / "unit").mkdir(parents=True)
    for name in SUPPORT:
        shutil.copy2(ROOT / name, work / name)
    # the unit tests use none of the gateway fixtures, whose plugin needs mock_ibps and the app
    conftest = work / "tests" / "conftest.py"
    text = conftest.read_text(encoding="utf-8")
    conftest.write_text(re.sub(r"(?m)^pytest_plugins = .*$", "", text), encoding="utf-8")
    for name in tests:
        shutil.copy2(ROOT / name, work / name)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (work / "pyproject.toml").write_text(pyproject + mutmut_config(targets, tests), encoding="utf-8")


def mutmut(work: Path, *args: str, log: Path | None = None) -> str:
    """Run mutmut in the work directory; its output goes to `log` when given, else is returned."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    # unit tests need no PostgreSQL: a DSN set keeps tests/conftest.py from looking for one
    env["FPSLINK_TEST_POSTGRES_DSN"] = "postgresql://unused/{database}"
    command = [str(Path(sys.executable).with_name("mutmut")), *args]
    if log is not None:
        with log.open("w", encoding="utf-8") as out:
            code = subprocess.run(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        output = log.read_text(encoding="utf-8", errors="replace")
    else:
        done = subprocess.run(command, cwd=work, env=env, text=True, capture_output=True)
        code, output = done.returncode, done.stdout + done.stderr
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited {code}:\n{output[-3000:]}")
    return output


def tally(work: Path, targets: Sequence[Target]) -> list[Tally]:
    tallies = [Tally(t) for t in targets]
    for line in mutmut(work, "results", "--all", "true").splitlines():
        found = STATUS_LINE.match(line)
        if not found:
            continue
        for t in tallies:
            if any(fnmatch(found["name"], g) for g in t.target.globs()):
                t.statuses[found["name"]] = found["status"]
    return tallies


@functools.cache
def mutated_functions(mutated: Path) -> dict[str, list[str]]:
    """Every function of mutmut's copy of a module (one per mutant, and the original): its body's lines."""
    source = mutated.read_text(encoding="utf-8")
    lines = source.splitlines()
    return {
        node.name: lines[node.lineno : node.end_lineno]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
    }


def diff_of(work: Path, target: Target, name: str) -> list[str]:
    """The lines a mutant changes: its function in mutmut's copy of the module, against the original."""
    functions = mutated_functions(work / "mutants" / target.path)
    function = name.rsplit(".", 1)[1]
    original = function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    if function not in functions or original not in functions:
        return ["(not found in mutmut's copy of the module)"]
    changed = difflib.unified_diff(functions[original], functions[function], lineterm="", n=0)
    return [line for line in changed if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def explained() -> set[str]:
    """Mutant names docs/mutation.md gives a reason for (a line that starts with the name in backquotes)."""
    if not EQUIVALENTS.exists():
        return set()
    return set(re.findall(r"^- `([^`]+__mutmut_\d+)`", EQUIVALENTS.read_text(encoding="utf-8"), re.MULTILINE))


def report(work: Path, tallies: Sequence[Tally]) -> int:
    known = explained()
    unexplained = 0
    print()
    print(f"{'module':<14} {'mutants':>8} {'killed':>7} {'survived':>9} {'equivalent':>11} {'score':>7}")
    for t in tallies:
        total, killed = len(t.statuses), t.count("killed")
        equivalent = sum(1 for name in t.survivors if name in known)
        score = f"{100 * killed / total:.1f}%" if total else "-"
        print(f"{t.target.name:<14} {total:>8} {killed:>7} {total - killed:>9} {equivalent:>11} {score:>7}")
    all_total = sum(len(t.statuses) for t in tallies)
    all_killed = sum(t.count("killed") for t in tallies)
    if all_total:
        print(f"{'all':<14} {all_total:>8} {all_killed:>7} {all_total - all_killed:>9}", end="")
        print(f" {'':>11} {100 * all_killed / all_total:>6.1f}%")
    for t in tallies:
        for name in t.survivors:
            mark = "equivalent" if name in known else "SURVIVED"
            unexplained += name not in known
            print(f"\n{mark} ({t.statuses[name]}): {name}")
            for line in diff_of(work, t.target, name):
                print(f"    {line}")
    print()
    if unexplained:
        print(f"{unexplained} survivor(s) neither killed nor explained in {EQUIVALENTS.relative_to(ROOT)}")
    return 1 if unexplained else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    targets = [t for t in TARGETS if not args.module or t.name in args.module]
    tests = [name for name in TESTS if (ROOT / name).exists()]
    work = Path(tempfile.mkdtemp(prefix="fpslink-mutation-"))
    started = time.monotonic()
    try:
        prepare(work, targets, tests)
        globs = [g for t in targets for g in t.globs()]
        log = work / "mutmut-run.log"
        print(f"mutmut run over {len(targets)} module(s), {args.max_children} worker(s) ...", flush=True)
        mutmut(work, "run", "--max-children", str(args.max_children), *globs, log=log)
        tallies = tally(work, targets)
        code = report(work, tallies)
        print(f"{time.monotonic() - started:.0f} s, {args.max_children} worker(s), tests: {' '.join(tests)}")
        return code
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Developer entry point: `python3 tasks.py sandbox` runs the sandbox, `python3 tasks.py test` the tests.

Both create `.venv` and install the project into it the first time (and again whenever
pyproject.toml changes), so a machine needs nothing but Python 3.11 or newer.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".fpslink-installed"


def bootstrap() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file may run under an older python3
        sys.exit(f"fpslink needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "fpslink").exists():
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing fpslink and its dependencies into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def postgres_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def run(*args: str, env: dict[str, str] | None = None) -> int:
    print("$", " ".join(args), flush=True)
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def test(extra: list[str]) -> int:
    env = dict(os.environ)
    if "FPSLINK_TEST_DATABASES" not in env:
        if postgres_reachable():
            env["FPSLINK_TEST_DATABASES"] = "sqlite,postgresql"
        elif env.get("CI"):
            print("FATAL: PostgreSQL is not reachable on 127.0.0.1:5432", file=sys.stderr)
            return 1
        else:
            env["FPSLINK_TEST_DATABASES"] = "sqlite"
            print(
                "\n*** PostgreSQL is not reachable on 127.0.0.1:5432: running on SQLite ONLY. ***\n"
                "*** The concurrency guarantees are proven only by the PostgreSQL run.     ***\n",
                file=sys.stderr,
                flush=True,
            )
    print(f"databases under test: {env['FPSLINK_TEST_DATABASES']}", flush=True)
    py = str(BIN / "python")
    for step in (
        [py, "-m", "ruff", "check", "."],
        [py, "-m", "ruff", "format", "--check", "."],
        [py, "-m", "mypy"],
    ):
        if code := run(*step, env=env):
            return code
    # pytest's exit code 5 (no tests collected) is a failure here like any other non-zero code.
    return run(py, "-m", "pytest", *extra, env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"sandbox", "test"}:
        print(__doc__)
        return 2
    bootstrap()
    command, extra = argv[0], argv[1:]
    if command == "sandbox":
        return run(str(BIN / "fpslink"), "sandbox", *extra)
    return test(extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

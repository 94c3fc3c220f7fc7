#!/usr/bin/env python3
"""Developer entry point: `python3 tasks.py sandbox` runs the sandbox, `python3 tasks.py test` the tests.

Both create `.venv` and install the project into it the first time (and again whenever
pyproject.toml or requirements.lock changes), at the versions requirements.lock pins, so a machine
needs nothing but Python 3.11 or newer. The sandbox installs the runtime only; the tests add the
development extras (browser driver, Locust, schemathesis, ...). Installs go through uv when it can be
installed (measured on a fresh machine with an empty cache: runtime 2.8 s against pip's 16 s, with
the development extras 2.9 s against 40 s), else through pip.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".fpslink-installed"
LOCK = ROOT / "requirements.lock"
COMMANDS = ("sandbox", "test")
"""What `python3 tasks.py COMMAND` accepts (the docs' commands are checked against it)."""


def bootstrap(*, dev: bool) -> None:
    """Install the project (with its development extras if `dev`) unless what is there suffices."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file may run under an older python3
        sys.exit(f"fpslink needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()
    installed = STAMP.read_text().split() if STAMP.exists() else []
    if installed[:1] == [wanted] and (BIN / "fpslink").exists() and (not dev or "dev" in installed):
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f"{ROOT}[dev]" if dev else str(ROOT)
    print(f"installing fpslink{' with its development extras' if dev else ''} into .venv ...", flush=True)
    python = str(BIN / "python")
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    uv = BIN / ("uv.exe" if os.name == "nt" else "uv")
    if not uv.exists():
        # uv at the version the lock pins; a machine where it cannot be had installs with pip
        subprocess.run([*pip, "--constraint", str(LOCK), "uv"], check=False)
    if uv.exists():
        command = [str(uv), "pip", "install", "-q", "--python", python]
        if subprocess.run([*command, "--constraint", str(LOCK), "-e", target]).returncode == 0:
            STAMP.write_text(f"{wanted} dev" if dev else wanted)
            return
        print("uv could not install; trying pip", flush=True)
    subprocess.run([*pip, "--constraint", str(LOCK), "-e", target], check=True)
    STAMP.write_text(f"{wanted} dev" if dev else wanted)


def run(*args: str, env: dict[str, str] | None = None) -> int:
    print("$", " ".join(args), flush=True)
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def run_to_its_end(*args: str) -> int:
    """Run a command that Ctrl-C stops: the terminal sends SIGINT to it as well as to us, and we
    wait while it shuts down (the sandbox and the tests stop their PostgreSQL), instead of killing
    it at once."""
    print("$", " ".join(args), flush=True)
    process = subprocess.Popen(args, cwd=ROOT)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def test(extra: list[str]) -> int:
    """ruff, mypy, then pytest on PostgreSQL: the server at 127.0.0.1:5432 when it answers, else an
    embedded one that the test session starts (tests/pgtest.py)."""
    env = dict(os.environ)
    py = str(BIN / "python")
    for step in (
        [py, "-m", "ruff", "check", "."],
        [py, "-m", "ruff", "format", "--check", "."],
        [py, "-m", "mypy"],
    ):
        if code := run(*step, env=env):
            return code
    # pytest's exit code 5 (no tests collected) is a failure here like any other non-zero code. On
    # Ctrl-C pytest is let finish its clean-up, which stops the embedded PostgreSQL it may have started.
    return run_to_its_end(py, "-m", "pytest", *extra)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    bootstrap(dev=command == "test")
    if command == "sandbox":
        return run_to_its_end(str(BIN / "fpslink"), "sandbox", *extra)
    return test(extra)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The commands of the README, the quickstart and the ISO 20022 guide, taken from the Markdown and run
against a fresh sandbox as a reader pastes them (the convention: README.md, "Tested docs"; the runner:
tests/doc_commands.py).

One sandbox serves the module, started as `python3 tasks.py sandbox` starts it once it has installed
the project (`fpslink sandbox`), in a directory that stands for the reader's clone: its `.fpslink/` is
the sandbox's, its `.venv` the virtualenv these tests run in, its `tests/` the repository's (the ISO
20022 guide sends the example messages there, dated by the sandbox's business date).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
from doc_commands import Page, PageRun, Sandbox, judge, read_page, run_page
from gw_support import sandbox_in_tmp, user_environment

from fpslink.cli import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("README.md", "docs/quickstart.md", "docs/iso20022.md")
PAGE_TIMEOUT_S = 120.0


def _tasks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sandbox_command() -> Any:
    """`fpslink sandbox` as its command-line parser (typer's own click)."""
    return typer.main.get_command(app).commands["sandbox"]  # type: ignore[attr-defined]


def tasks_call_problems(calls: list[list[str]]) -> list[str]:
    """What is wrong with the page's `python3 tasks.py ...` commands, which are checked, not run:
    each names a command tasks.py has, and the sandbox's options are `fpslink sandbox`'s."""
    commands = _tasks().COMMANDS
    problems = []
    for call in calls:
        if not call or call[0] not in commands:
            problems.append(f"`python3 tasks.py {' '.join(call)}`: tasks.py has only {commands}")
        elif call[0] == "sandbox":
            try:
                _sandbox_command().make_context("sandbox", call[1:])
            except Exception as exc:  # typer's click's UsageError, which typer does not export
                problems.append(f"`python3 tasks.py {' '.join(call)}`: {exc}")
    return problems


def documented_addresses(state: dict[str, str]) -> dict[str, str]:
    """The sandbox's default addresses (what the docs show) -> the running sandbox's."""
    defaults = _sandbox_command().make_context("sandbox", []).params
    return {
        f"{defaults['host']}:{defaults['port']}": urlsplit(state["gateway_url"]).netloc,
        f"{defaults['ibps_host']}:{defaults['ibps_port']}": urlsplit(state["ibps_url"]).netloc,
    }


@pytest.fixture(scope="module")
def docs_sandbox() -> Iterator[tuple[Path, Sandbox]]:
    if shutil.which("curl") is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but curl, which the docs' commands use, is not installed", pytrace=False)
        pytest.skip("curl, which the docs' commands use, is not installed")
    venv = Path(sys.prefix)
    if not (venv / "bin" / "fpslink").exists():
        pytest.fail(f"the tests run outside a virtualenv with fpslink installed ({venv})", pytrace=False)
    with sandbox_in_tmp("fpslink-docs-") as (workdir, running, _):
        (workdir / ".venv").symlink_to(venv)
        (workdir / "tests").symlink_to(ROOT / "tests")
        state = json.loads((workdir / ".fpslink" / "sandbox.json").read_text())
        yield (
            workdir,
            Sandbox(addresses=documented_addresses(state), keys=Sandbox.keys_in_banner(running.output)),
        )


def run(page: Page, docs_sandbox: tuple[Path, Sandbox]) -> PageRun:
    workdir, sandbox = docs_sandbox
    return run_page(page, sandbox, cwd=workdir, env=user_environment(), timeout_s=PAGE_TIMEOUT_S)


@pytest.mark.parametrize("name", PAGES)
def test_the_pages_commands_run_as_written_and_give_what_the_page_says(
    name: str, docs_sandbox: tuple[Path, Sandbox]
) -> None:
    page = read_page(name, (ROOT / name).read_text())
    assert page.runnable, f"{name} has no shell block to run"
    done = run(page, docs_sandbox)
    problems = judge(page, done) + tasks_call_problems(done.tasks_calls)
    if not any(call[:1] == ["sandbox"] for call in done.tasks_calls):
        problems.append(f"{name} never says how to start the sandbox (`python3 tasks.py sandbox`)")
    assert not problems, "\n".join(problems)


BROKEN = """\
# A page with one good command and one of each kind of mistake

```bash
export GW=http://127.0.0.1:8000 KEY="<HARBOURHK key>"
curl -s $GW/v1/proxies/MOBILE/%2B8613800138000 -H "Authorization: Bearer $KEY"
```

It answers `200` with `"masked_name": "张*明"`.

```bash
curl -s $GW/v1/proxy/MOBILE/%2B8613800138000 -H "Authorization: Bearer $KEY"
curl -s $GW/v1/fx/rates -H "Authorisation: Bearer $KEY"
curl -s -X POST $GW/v1/quotes -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
  -d '{"source_currency": "HKD", "target_currency": "CNY", "amount": "1000.00", "amount_kind": "SEND"}'
```

```bash
curl -s -X POST $GW/v1/quotes -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
  -d '{"source_currency": "HKD", "target_currency": "CNY", "amount": "1000.00", "amount_type": "SEND"}'
python3 tasks.py sandbox --prot 8000
python3 tasks.py deploy
```

It answers `201` with `"target_amount": "917.71"`.

```bash
.venv/bin/fpslink check
```

It prints `all invariants held`.
"""


def test_a_broken_path_header_field_option_or_claim_fails_the_page_at_its_line(
    docs_sandbox: tuple[Path, Sandbox],
) -> None:
    """The runner has teeth: each kind of doc mistake is reported at its own line, the good
    commands and claims pass."""
    page = read_page("broken.md", BROKEN)
    done = run(page, docs_sandbox)
    problems = judge(page, done) + tasks_call_problems(done.tasks_calls)
    text = "\n".join(problems)
    expected = [
        "broken.md:11: `curl -s $GW/v1/proxy/",  # wrong path: 404
        "broken.md:12: `curl -s $GW/v1/fx/rates",  # wrong header: 401
        "broken.md:13: `curl -s -X POST $GW/v1/quotes",  # wrong field name: 422
        'broken.md:24: the page shows {"target_amount": "917.71"}',  # wrong documented value
        "`python3 tasks.py sandbox --prot 8000`: No such option: --prot",
        "`python3 tasks.py deploy`: tasks.py has only",
        "broken.md:30: the page says the block at line 26 prints 'all invariants held'",
    ]
    for wanted in expected:
        assert wanted in text, f"{wanted!r} not reported:\n{text}"
    assert len(problems) == len(expected), text
    assert done.outputs[10].statuses == (404, 401, 422), done.outputs[10]

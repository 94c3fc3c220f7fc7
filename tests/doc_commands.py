"""The shell commands of a Markdown page, run as its reader runs them, and what the page says they give.

The convention (README.md, "Tested docs"): every fenced block whose language is `bash`, `sh` or
`shell` runs, in the page's order, in one bash, as if pasted into one terminal. Each command must exit
0, and a `curl` must answer 2xx (it runs with `--fail-with-body`). A block preceded by
`<!-- docs-test skip: why -->` is not run. The paragraph right after a block is checked against the
block's output: a `"field": value` or a `{...}` in inline code must be in one of its JSON answers
(top level, or an item of a list answer), a three-digit code such as `201` must be a status one of its
curls answered, and inline code right after the word "prints" (each code of a list it starts:
"prints `a`, `b` and `c`") must appear in its output.

`python3 tasks.py ...` is never run: the caller checks what was asked (`PageRun.tasks_calls`), since
the sandbox the commands run against is `tasks.py sandbox`'s effect and `tasks.py test` would run the
test suite within itself. The addresses and keys a sandbox prints replace those a page shows
(`Sandbox.substitute`).

Reading the page, building the script and judging the run are pure; `run_page` alone runs bash.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

RUN_LANGUAGES = frozenset({"bash", "sh", "shell"})
MARKER = "docs-test"
SKIP = re.compile(r"<!--\s*docs-test skip:\s*(?P<why>\S[^\n]*?)\s*-->")
STATUS = re.compile(r"[1-5]\d\d")
KEY_PREFIX = re.compile(r"\bfpsl_[a-z0-9]+_\.\.\.")
"""A key shown by its prefix, e.g. `fpsl_harbourhk_...`: the banner's key that starts so."""
NAMED_KEY = re.compile(r"<(?P<who>[A-Za-z0-9]+) key>")
"""A key shown by its owner, e.g. `<HARBOURHK key>`."""
PLACEHOLDER = re.compile(r"<[A-Za-z][\w-]*(?: [\w-]+)*>")
"""What is left after substitution and reads as a placeholder, which the sandbox cannot fill."""
LIST_GLUE = re.compile(r",?\s*(?:and\s*)?")
"""What joins the codes of one claim: "prints `a`, `b` and `c`" claims all three."""
BANNER_KEY = re.compile(r"^\s+(?P<who>\S+)(?:\s+(?:FPS|IBPS))?\s+key\s+(?P<key>fpsl_\S+)\s*$", re.M)
EVENT = re.compile(r"@@docs-test (?P<what>[^@\n]*)@@")
BLOCK_EVENT = re.compile(r"\n?@@docs-test block (?P<line>\d+)@@\n")

PRELUDE = r"""
set -o pipefail
__docs_event() { printf '\n@@docs-test %s@@\n' "$*" >&2; }
__docs_block() { printf '\n@@docs-test block %s@@\n' "$1"; printf '\n@@docs-test block %s@@\n' "$1" >&2; }
trap '__docs_event failed $? $LINENO' ERR
curl() { command curl -q --fail-with-body --write-out '%{stderr}\n@@docs-test status %{http_code}@@\n' "$@"; }
python3() {
  case "${1-}" in
    *tasks.py) local arg call=tasks.py; shift
               for arg in "$@"; do call+=" $(printf %q "$arg")"; done
               __docs_event "$call"; return 0 ;;
  esac
  command python3 "$@"
}
unset BASH_ENV
"""
"""Sourced before the page's commands (as BASH_ENV): curl that fails on a 4xx or 5xx and reports its
status (and reads no ~/.curlrc: -q), tasks.py recorded instead of run, and every failing command
reported with its line."""


class PageError(ValueError):
    """The page breaks the convention (a marker that is not one, a skip with no block to skip)."""


@dataclass(frozen=True)
class Claims:
    """What the paragraph after a block says its commands give."""

    line: int = 0
    json: tuple[dict[str, Any], ...] = ()
    statuses: tuple[int, ...] = ()
    prints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    fence_line: int
    """1-based line of the opening fence; the commands start on the next line."""
    lines: tuple[str, ...]
    skipped: str | None = None
    claims: Claims = Claims()

    @property
    def last_line(self) -> int:
        return self.fence_line + len(self.lines)

    def holds(self, line: int) -> bool:
        return self.fence_line < line <= self.last_line


@dataclass(frozen=True)
class Page:
    name: str
    lines: tuple[str, ...]
    blocks: tuple[Block, ...]

    @property
    def runnable(self) -> tuple[Block, ...]:
        return tuple(b for b in self.blocks if b.skipped is None)


def read_page(name: str, markdown: str) -> Page:
    """The page's shell blocks, each with its skip reason and its claims."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    lines = tuple(markdown.splitlines())
    blocks: list[Block] = []
    pending_skip: tuple[int, str] | None = None
    for i, token in enumerate(tokens):
        if token.type == "html_block" and MARKER in token.content:
            found = SKIP.search(token.content)
            line = _line(token)
            if found is None:
                raise PageError(f"{name}:{line}: not a docs-test marker (`<!-- docs-test skip: why -->`)")
            if pending_skip is not None:
                raise PageError(f"{name}:{pending_skip[0]}: a skip marker with no shell block after it")
            pending_skip = (line, found["why"])
            continue
        if token.type != "fence":
            if pending_skip is not None:
                raise PageError(f"{name}:{pending_skip[0]}: a skip marker with no shell block after it")
            continue
        language = token.info.split()[0] if token.info.strip() else ""
        if language == "console":
            raise PageError(f"{name}:{_line(token)}: a console block: write commands in a bash block")
        if language not in RUN_LANGUAGES:
            if pending_skip is not None:
                raise PageError(f"{name}:{pending_skip[0]}: a skip marker before a block that never runs")
            continue
        blocks.append(
            Block(
                fence_line=_line(token),
                lines=tuple(token.content.splitlines()),
                skipped=pending_skip[1] if pending_skip else None,
                claims=_claims_after(tokens, i),
            )
        )
        pending_skip = None
    if pending_skip is not None:
        raise PageError(f"{name}:{pending_skip[0]}: a skip marker with no shell block after it")
    return Page(name=name, lines=lines, blocks=tuple(blocks))


def _line(token: Token) -> int:
    assert token.map is not None
    return token.map[0] + 1


def _claims_after(tokens: list[Token], fence: int) -> Claims:
    if fence + 2 >= len(tokens) or tokens[fence + 1].type != "paragraph_open":
        return Claims()
    children = tokens[fence + 2].children or []
    found_json: list[dict[str, Any]] = []
    statuses: list[int] = []
    prints: list[str] = []
    listing = False
    for j, child in enumerate(children):
        if child.type != "code_inline":
            continue
        text = child.content
        before = children[j - 1].content if j and children[j - 1].type == "text" else ""
        listing = before.rstrip().endswith("prints") or (listing and bool(LIST_GLUE.fullmatch(before)))
        if listing:
            prints.append(text)
        elif STATUS.fullmatch(text):
            statuses.append(int(text))
        elif (value := _json_claim(text)) is not None:
            found_json.append(value)
    return Claims(
        line=_line(tokens[fence + 1]),
        json=tuple(found_json),
        statuses=tuple(statuses),
        prints=tuple(prints),
    )


def _json_claim(text: str) -> dict[str, Any] | None:
    """`{...}` or `"field": value` as the fields it names; None for any other code."""
    source = text if text.startswith("{") else "{" + text + "}" if text.startswith('"') else None
    if source is None:
        return None
    try:
        value = json.loads(source)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value else None


@dataclass(frozen=True)
class Sandbox:
    """What a running sandbox printed and recorded, in place of what the docs show."""

    addresses: dict[str, str]
    """An address as the docs show it (the sandbox's default `127.0.0.1:8000`) -> the running one's."""
    keys: dict[str, str]
    """Who (a bank's id, or `operator`) -> the key the banner printed."""

    @staticmethod
    def keys_in_banner(banner: str) -> dict[str, str]:
        return {m["who"]: m["key"] for m in BANNER_KEY.finditer(banner)}

    def substitute(self, line: str) -> tuple[str, list[str]]:
        """`line` with the sandbox's addresses and keys, and the placeholders it could not fill."""
        unknown: list[str] = []

        def by_owner(match: re.Match[str]) -> str:
            key = self.keys.get(match["who"])
            if key is None:
                unknown.append(match[0])
                return match[0]
            return key

        def by_prefix(match: re.Match[str]) -> str:
            prefix = match[0].removesuffix("...")
            keys = [k for k in self.keys.values() if k.startswith(prefix)]
            if len(keys) != 1:
                unknown.append(match[0])
                return match[0]
            return keys[0]

        for shown, real in self.addresses.items():
            line = re.sub(re.escape(shown) + r"(?!\d)", real, line)
        line = KEY_PREFIX.sub(by_prefix, NAMED_KEY.sub(by_owner, line))
        unknown += [m[0] for m in PLACEHOLDER.finditer(line) if m[0] not in unknown]
        return line, unknown


@dataclass(frozen=True)
class Script:
    text: str
    unfilled: list[str]
    """`page:line: placeholder` for each placeholder the sandbox has no value for."""


def script(page: Page, sandbox: Sandbox) -> Script:
    """The page's runnable lines as one bash script, each on its own line number (so that bash's
    $LINENO is the page's), a marker on each opening fence's line and one after the end."""
    out = [""] * len(page.lines)
    unfilled: list[str] = []
    for block in page.runnable:
        out[block.fence_line - 1] = f"__docs_block {block.fence_line}"
        for offset, line in enumerate(block.lines, start=1):
            filled, unknown = sandbox.substitute(line)
            out[block.fence_line - 1 + offset] = filled
            unfilled += [f"{page.name}:{block.fence_line + offset}: {u}" for u in unknown]
    out.append("__docs_event end")
    return Script(text="\n".join(out) + "\n", unfilled=unfilled)


@dataclass(frozen=True)
class BlockOutput:
    stdout: str = ""
    stderr: str = ""
    answers: tuple[Any, ...] = ()
    statuses: tuple[int, ...] = ()
    failed: tuple[tuple[int, int], ...] = ()
    """(line, exit code) of each command that failed."""


@dataclass
class PageRun:
    """What bash did with the page: the output of each block (by fence line) and what it asked of
    tasks.py, and whether it ran to the page's end."""

    outputs: dict[int, BlockOutput] = field(default_factory=dict)
    tasks_calls: list[list[str]] = field(default_factory=list)
    reached_end: bool = False
    stderr_tail: str = ""


def parse_run(stdout: str, stderr: str) -> PageRun:
    """Split bash's two streams at the block markers and read each block's answers and events."""
    run = PageRun(reached_end=bool(re.search(r"@@docs-test end@@", stderr)), stderr_tail=stderr[-2000:])
    out_parts = _by_block(stdout)
    err_parts = _by_block(stderr)
    for line in sorted(set(out_parts) | set(err_parts)):
        out, err = out_parts.get(line, ""), err_parts.get(line, "")
        statuses: list[int] = []
        failed: list[tuple[int, int]] = []
        for event in EVENT.finditer(err):
            what = event["what"].split(" ", 1)
            if what[0] == "status":
                statuses.append(int(what[1]))
            elif what[0] == "failed":
                code, at = what[1].split()
                failed.append((int(at), int(code)))
            elif what[0] == "tasks.py":
                run.tasks_calls.append(shlex.split(what[1]) if len(what) > 1 else [])
        run.outputs[line] = BlockOutput(
            stdout=out,
            stderr=EVENT.sub("", err).strip(),
            answers=tuple(json_values(out)),
            statuses=tuple(statuses),
            failed=tuple(failed),
        )
    return run


def _by_block(stream: str) -> dict[int, str]:
    parts = BLOCK_EVENT.split(stream)
    # parts: [before any block, line, text, line, text, ...]
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def json_values(text: str) -> list[Any]:
    """Every JSON object or array in `text` that starts a line or follows another one (curl's
    answers, back to back), skipping lines that are not JSON."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        if text[i] in "{[":
            try:
                value, i = decoder.raw_decode(text, i)
            except ValueError:
                pass
            else:
                values.append(value)
                continue
        newline = text.find("\n", i)
        i = len(text) if newline < 0 else newline + 1
    return values


def judge(page: Page, run: PageRun) -> list[str]:
    """Every way the run contradicts the page, each naming the page's line."""
    problems: list[str] = []
    for block in page.runnable:
        output = run.outputs.get(block.fence_line)
        if output is None:
            continue  # not reached: the end check below says why
        for line, code in output.failed:
            text = page.lines[line - 1].strip() if 0 < line <= len(page.lines) else "?"
            problems.append(
                f"{page.name}:{line}: `{text}` exited {code} (HTTP statuses {list(output.statuses)}); "
                f"output: {output.stdout.strip()[:400]!r} {output.stderr[:400]!r}"
            )
        problems += _judge_claims(page.name, block, output)
    if not run.reached_end:
        problems.append(f"{page.name}: the commands stopped before the page's end: {run.stderr_tail!r}")
    return problems


def _judge_claims(name: str, block: Block, output: BlockOutput) -> list[str]:
    claims, problems = block.claims, []
    objects = [
        item
        for answer in output.answers
        for item in (answer if isinstance(answer, list) else [answer])
        if isinstance(item, dict)
    ]
    for wanted in claims.json:
        if not any(all(k in o and o[k] == v for k, v in wanted.items()) for o in objects):
            shown = json.dumps(wanted, ensure_ascii=False)
            problems.append(
                f"{name}:{claims.line}: the page shows {shown}, which no answer of the block at line "
                f"{block.fence_line} has; answers: {json.dumps(objects, ensure_ascii=False)[:600]}"
            )
    if output.statuses:  # a status is claimed of curls only
        for status in claims.statuses:
            if status not in output.statuses:
                problems.append(
                    f"{name}:{claims.line}: the page says {status}; the block at line "
                    f"{block.fence_line} answered {list(output.statuses)}"
                )
    for text in claims.prints:
        if text not in output.stdout:
            problems.append(
                f"{name}:{claims.line}: the page says the block at line {block.fence_line} prints "
                f"{text!r}; it printed {output.stdout.strip()[:400]!r}"
            )
    return problems


def run_page(page: Page, sandbox: Sandbox, *, cwd: Path, env: dict[str, str], timeout_s: float) -> PageRun:
    """Run the page's commands in one bash in `cwd`; stopped (its whole process group) after
    `timeout_s`, which the run then reports as not reaching the end."""
    built = script(page, sandbox)
    if built.unfilled:
        raise PageError("placeholders the sandbox has no value for: " + "; ".join(built.unfilled))
    with tempfile.TemporaryDirectory(prefix="fpslink-docs-") as scratch:
        prelude, body = Path(scratch) / "prelude.sh", Path(scratch) / "page.sh"
        prelude.write_text(PRELUDE)
        body.write_text(built.text)
        process = subprocess.Popen(
            ["bash", str(body)],
            cwd=cwd,
            env={**env, "BASH_ENV": str(prelude)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            stderr += f"\n(stopped after {timeout_s:.0f} s)"
    return parse_run(stdout, stderr)

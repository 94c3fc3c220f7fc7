"""The docs runner's pure parts: what it reads from a page, what it fills in, how it judges a run."""

from __future__ import annotations

import pytest
from doc_commands import (
    BlockOutput,
    PageError,
    PageRun,
    Sandbox,
    json_values,
    judge,
    parse_run,
    read_page,
    script,
)

from fpslink.demo import DEMO_BANKS, demo_key
from fpslink_tools.sandbox import banner

OPERATOR = "fpsl_operator_" + "0" * 40
SANDBOX = Sandbox(
    addresses={"127.0.0.1:8000": "127.0.0.1:51234"},
    keys={"operator": OPERATOR, "HARBOURHK": "fpsl_harbourhk_abc", "PEARLCN": "fpsl_pearlcn_def"},
)

PAGE = """\
# Title

```bash
curl -s http://127.0.0.1:8000/v1/fx/rates -H "Authorization: Bearer <HARBOURHK key>" \\
  -H 'Accept: application/json'
```

It answers `200` with `"base": "HKD"` and `{"quote": "CNY", "n": 2}`; `GET /x` is not a claim.

```python
print("never run")
```

<!-- docs-test skip: takes minutes -->
```sh
make everything
```

```shell
fpslink check
```

It prints `all invariants hold` and exits `0`.
"""


def test_shell_blocks_are_read_with_their_line_skip_reason_and_claims() -> None:
    page = read_page("p.md", PAGE)
    assert [(b.fence_line, b.skipped) for b in page.blocks] == [(3, None), (15, "takes minutes"), (19, None)]
    first = page.blocks[0]
    assert first.lines[0].startswith("curl -s") and len(first.lines) == 2
    assert first.claims.line == 8
    assert first.claims.statuses == (200,)
    assert first.claims.json == ({"base": "HKD"}, {"quote": "CNY", "n": 2})
    assert page.blocks[2].claims.prints == ("all invariants hold",)
    assert page.blocks[2].claims.statuses == ()  # `0` is no HTTP status
    assert [b.fence_line for b in page.runnable] == [3, 19]


def test_prints_claims_each_code_of_the_list_it_starts() -> None:
    """`prints `a`, `b` and `c`` claims all three lines of a loop's output; a list ends at other words."""
    page = read_page(
        "p.md",
        "```bash\nfor x in a b c; do echo $x ok; done\n```\n\n"
        "It prints `a ok`, `b ok` and `c ok`, then `201` is a status and `d` is no claim.\n",
    )
    assert page.blocks[0].claims.prints == ("a ok", "b ok", "c ok")
    assert page.blocks[0].claims.statuses == (201,)


@pytest.mark.parametrize(
    ("markdown", "complaint"),
    [
        ("<!-- docs-test skip -->\n```bash\nls\n```\n", "not a docs-test marker"),
        ("<!-- docs-test skip: why -->\n\ntext\n", "no shell block after it"),
        ("<!-- docs-test skip: why -->\n```python\nx\n```\n", "never runs"),
        ("<!-- docs-test skip: why -->\n", "no shell block after it"),
        ("```console\n$ ls\n```\n", "console block"),
    ],
)
def test_a_page_that_breaks_the_convention_is_refused(markdown: str, complaint: str) -> None:
    with pytest.raises(PageError, match=complaint):
        read_page("p.md", markdown)


def test_the_sandbox_fills_in_its_address_and_keys_and_names_what_it_cannot() -> None:
    line, unknown = SANDBOX.substitute(
        'curl http://127.0.0.1:8000/x http://127.0.0.1:80001/y -H "A: <HARBOURHK key>" -H "B: <operator key>"'
    )
    assert line == (
        'curl http://127.0.0.1:51234/x http://127.0.0.1:80001/y -H "A: fpsl_harbourhk_abc" '
        f'-H "B: {OPERATOR}"'
    )
    assert unknown == []
    assert SANDBOX.substitute("export KEY=fpsl_pearlcn_...  # the banner") == (
        "export KEY=fpsl_pearlcn_def  # the banner",
        [],
    )
    assert SANDBOX.substitute("git clone <this repository> x; echo <NOBANK key> fpsl_nobank_...")[1] == [
        "<NOBANK key>",
        "fpsl_nobank_...",
        "<this repository>",
    ]


def test_the_keys_are_read_from_the_banner_the_sandbox_prints() -> None:
    text = banner(
        host="127.0.0.1", port=8000, ibps_host="127.0.0.1", ibps_port=8001, op_key=OPERATOR, warnings=[]
    )
    expected = {bank.participant_id: demo_key(OPERATOR, bank.participant_id) for bank in DEMO_BANKS}
    assert Sandbox.keys_in_banner(text) == {"operator": OPERATOR, **expected}


def test_the_script_keeps_each_command_on_its_page_line() -> None:
    page = read_page("p.md", PAGE)
    built = script(page, SANDBOX)
    lines = built.text.splitlines()
    assert lines[2] == "__docs_block 3"
    assert (
        lines[3].startswith("curl -s http://127.0.0.1:51234/v1/fx/rates") and "fpsl_harbourhk_abc" in lines[3]
    )
    assert lines[4] == "  -H 'Accept: application/json'"
    assert lines[15] == ""  # the skipped block
    assert lines[18:20] == ["__docs_block 19", "fpslink check"]
    assert lines[-1] == "__docs_event end" and len(lines) == len(page.lines) + 1
    assert built.unfilled == []
    assert script(read_page("q.md", "```bash\necho <this>\n```\n"), SANDBOX).unfilled == ["q.md:2: <this>"]


def test_back_to_back_answers_and_other_lines_are_told_apart() -> None:
    assert json_values('{"a": 1}{"b": [2]}\nall invariants hold\n[{"c": 3}] {oops\n') == [
        {"a": 1},
        {"b": [2]},
        [{"c": 3}],
    ]


def _run(stdout: str, stderr: str) -> PageRun:
    return parse_run(
        "\n@@docs-test block 3@@\n" + stdout + "\n@@docs-test block 19@@\nall invariants hold\n",
        "\n@@docs-test block 3@@\n" + stderr + "\n@@docs-test block 19@@\n@@docs-test tasks.py sandbox "
        "--port 9000@@\n@@docs-test end@@\n",
    )


def test_a_run_that_gives_what_the_page_says_passes() -> None:
    done = _run('{"base": "HKD", "quote": "CNY", "n": 2}', "\n@@docs-test status 200@@\n")
    assert done.outputs[3] == BlockOutput(
        stdout='{"base": "HKD", "quote": "CNY", "n": 2}',
        stderr="",
        answers=({"base": "HKD", "quote": "CNY", "n": 2},),
        statuses=(200,),
        failed=(),
    )
    assert done.tasks_calls == [["sandbox", "--port", "9000"]]
    assert judge(read_page("p.md", PAGE), done) == []


def test_each_contradiction_is_reported_at_its_line() -> None:
    done = _run(
        '{"base": "HKD", "quote": "USD", "n": 2}',
        "\n@@docs-test status 404@@\n\n@@docs-test failed 22 4@@\n",
    )
    problems = judge(read_page("p.md", PAGE.replace("all invariants hold", "all is well")), done)
    assert len(problems) == 4, problems
    assert problems[0].startswith('p.md:4: `curl -s http://127.0.0.1:8000/v1/fx/rates -H "Authorization:')
    assert "exited 22 (HTTP statuses [404])" in problems[0]
    assert problems[1].startswith('p.md:8: the page shows {"quote": "CNY", "n": 2}')
    assert problems[2] == "p.md:8: the page says 200; the block at line 3 answered [404]"
    assert problems[3].startswith("p.md:23: the page says the block at line 19 prints 'all is well'")


def test_a_run_that_stops_before_the_end_of_the_page_fails() -> None:
    page = read_page("p.md", "# T\n\n```bash\necho 'unterminated\n```\n")
    done = parse_run("\n@@docs-test block 3@@\n", "\n@@docs-test block 3@@\np.sh: line 4: syntax error\n")
    problems = judge(page, done)
    assert (
        len(problems) == 1
        and "stopped before the page's end" in problems[0]
        and "syntax error" in problems[0]
    )

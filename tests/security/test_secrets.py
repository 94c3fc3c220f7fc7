"""No published secrets: the rule, the commands that serve, and the insecure local mode.

A secret shown anywhere in the repository (a compose default, an example, a test value) or short
enough to guess must not guard a shared sandbox: `fpslink serve`, `mock-ibps serve` and both app
factories refuse it before they listen, and say how to set a good one. The insecure local mode is
asked for by name and listens on loopback addresses only. The servers started here bind 127.0.0.1;
the refusals of a wider address use 192.0.2.1 (TEST-NET-1, on no interface of this machine), so
nothing can listen there even when a refusal is missing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from gw_support import free_port

from ibps_wire.credentials import MIN_LENGTH, PUBLISHED, new_secret, weakness

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE_HOST = "192.0.2.1"
"""TEST-NET-1: not loopback, and on no interface here, so binding it fails if a refusal is missing."""
WAIT_S = 25.0
"""How long a refused start may take; a server that starts instead is still running after it."""
NOT_A_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/never"
"""A database the refused commands never reach (`--no-migrate`: nothing is read before serving)."""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any fpslink or mock_ibps setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FPSLINK_", "MOCK_IBPS_"))}
    return {**env, **extra}


def run_until_exit(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int | None, str]:
    """Run `python -m <args>`; its exit code and output, or None if it was still running (serving)
    after WAIT_S, when it is stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=WAIT_S)
        return process.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
        return None, out


def exported(output: str, variable: str) -> str:
    """The value of the `export VARIABLE=...` example the refusal printed."""
    found = re.search(rf"export {variable}=(\S+)", output)
    assert found is not None, f"no generated example for {variable}:\n{output}"
    return found.group(1)


# the rule ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "ibps-sandbox-token",
        "fpsl_operator_compose_sandbox_key",
        "FPSL_OPERATOR_COMPOSE_SANDBOX_KEY",
        "sandbox-operator-key-0001",
        "test-operator-key-0123456789",
        "x" * (MIN_LENGTH - 1),
        "ab" * MIN_LENGTH,
        " " + new_secret(),
    ],
)
def test_missing_short_published_or_trivial_secrets_are_weak(value: str | None) -> None:
    assert weakness(value) is not None


def test_generated_and_ordinary_strong_secrets_pass() -> None:
    import secrets
    import uuid

    for value in (new_secret(), new_secret("fpsl_operator_"), secrets.token_hex(16), str(uuid.uuid4())):
        assert weakness(value) is None, value


SECRET_IN_TEXT = [
    re.compile(r"Bearer\s+([^\s'\"\\]+)"),
    re.compile(r"\b[A-Z][A-Z0-9_]*(?:KEY|TOKEN|PASSWORD)\b\s*[=:]\s*[\"']?([^\s\"'\\]+)"),
    re.compile(r"\$\{\w*(?:KEY|TOKEN|PASSWORD)\w*:?-([^}]+)\}"),
]


def secrets_in(text: str) -> set[str]:
    """Literal values that a document or example passes as a key, token or password: placeholders
    (`<...>`, `$VAR`, `${...}`, `...`), names and code are left out."""
    found: set[str] = set()
    for pattern in SECRET_IN_TEXT:
        for match in pattern.finditer(text):
            value = match.group(1).strip().rstrip(",;)`")
            placeholder = any(mark in value for mark in ("<", "$", "{", "...", "(", "["))
            if value and not placeholder and re.fullmatch(r"[\w\-.~+/=]+", value) and len(value) >= 6:
                found.add(value)
    return found


def test_the_scan_finds_secrets_as_the_documents_write_them() -> None:
    sample = """
    curl -H 'Authorization: Bearer ibps-sandbox-token' http://127.0.0.1:8001/
    export FPSLINK_OPERATOR_KEY=sandbox-operator-key-0001
      FPSLINK_OPERATOR_KEY: ${FPSLINK_OPERATOR_KEY:-fpsl_operator_compose_sandbox_key}
    curl -H "Authorization: Bearer $KEY" -H "Authorization: Bearer <HARBOURHK key>"
    """
    assert secrets_in(sample) == {
        "ibps-sandbox-token",
        "sandbox-operator-key-0001",
        "fpsl_operator_compose_sandbox_key",
    }


def documents() -> list[Path]:
    """What a reader copies from: the README, docs, the load tests' and benchmarks' guides, the
    deployment files."""
    found = [ROOT / "README.md", ROOT / "docker-compose.yml", ROOT / "Dockerfile"]
    for folder, pattern in (("docs", "**/*.md"), ("loadtests", "**/*.md"), ("benchmarks", "**/*.md")):
        found += sorted((ROOT / folder).glob(pattern))
    found += sorted(p for p in (ROOT / "docker").iterdir() if p.is_file())
    return found


def test_no_document_or_example_holds_a_secret_a_server_would_accept() -> None:
    """Any key or token the repository shows is refused (published or weak), so nobody can deploy
    with a value copied from these files."""
    accepted = {
        f"{path.relative_to(ROOT)}: {value}"
        for path in documents()
        for value in secrets_in(path.read_text(encoding="utf-8"))
        if weakness(value) is None
    }
    assert not accepted, f"published values a server would accept: {sorted(accepted)}"


def test_the_published_set_names_the_values_the_repository_has_shown() -> None:
    """The values that earlier versions printed stay refused by name even if someone lengthens the
    minimum: the compose default, the IBPS token default, the load-testing example."""
    for value in ("ibps-sandbox-token", "fpsl_operator_compose_sandbox_key", "sandbox-operator-key-0001"):
        assert value in PUBLISHED


# the commands that serve --------------------------------------------------------------------------


GOOD_KEY, GOOD_TOKEN = new_secret("fpsl_operator_"), new_secret("ibps_")


@pytest.mark.parametrize(
    ("secrets_env", "named"),
    [
        ({"FPSLINK_IBPS_TOKEN": GOOD_TOKEN}, "FPSLINK_OPERATOR_KEY"),
        (
            {"FPSLINK_OPERATOR_KEY": "fpsl_operator_compose_sandbox_key", "FPSLINK_IBPS_TOKEN": GOOD_TOKEN},
            "FPSLINK_OPERATOR_KEY",
        ),
        (
            {"FPSLINK_OPERATOR_KEY": "o-short-key-0123456", "FPSLINK_IBPS_TOKEN": GOOD_TOKEN},
            "FPSLINK_OPERATOR_KEY",
        ),
        ({"FPSLINK_OPERATOR_KEY": GOOD_KEY}, "FPSLINK_IBPS_TOKEN"),
        (
            {"FPSLINK_OPERATOR_KEY": GOOD_KEY, "FPSLINK_IBPS_TOKEN": "ibps-sandbox-token"},
            "FPSLINK_IBPS_TOKEN",
        ),
    ],
    ids=["no-operator-key", "compose-default-key", "short-key", "no-ibps-token", "default-ibps-token"],
)
def test_fpslink_serve_refuses_a_missing_short_or_published_secret(
    tmp_path: Path, secrets_env: dict[str, str], named: str
) -> None:
    """Before: it served (until stopped here) with any of these. After: exit 2 before listening,
    naming the variable, with a freshly generated value to export and the insecure switch."""
    env = clean_env(FPSLINK_DATABASE_URL=NOT_A_DATABASE, **secrets_env)
    code, out = run_until_exit(
        ["fpslink.cli", "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--no-migrate"],
        env,
        tmp_path,
    )
    assert code == 2, f"fpslink serve did not refuse (exit {code}):\n{out[-2000:]}"
    assert re.search(rf"^\s+{named} ", out, re.MULTILINE), out
    suggestion = exported(out, named)
    assert weakness(suggestion) is None and suggestion not in (GOOD_KEY, GOOD_TOKEN)
    assert "FPSLINK_INSECURE_LOCAL=1" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "token",
    [None, "ibps-sandbox-token", "a-token-of-27-characters-xy"],
    ids=["no-token", "default-token", "short-token"],
)
def test_mock_ibps_serve_refuses_a_missing_short_or_published_token(
    tmp_path: Path, token: str | None
) -> None:
    """Before: with no MOCK_IBPS_TOKEN it served with `ibps-sandbox-token`, so anyone who reached it
    could credit any account. After: exit 2 before migrating or listening."""
    env = clean_env(MOCK_IBPS_DATABASE_URL=NOT_A_DATABASE, **({"MOCK_IBPS_TOKEN": token} if token else {}))
    code, out = run_until_exit(
        ["mock_ibps.cli", "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--no-migrate"],
        env,
        tmp_path,
    )
    assert code == 2, f"mock-ibps serve did not refuse (exit {code}):\n{out[-2000:]}"
    assert weakness(exported(out, "MOCK_IBPS_TOKEN")) is None
    assert "MOCK_IBPS_INSECURE_LOCAL=1" in out and "Traceback" not in out


FACTORY_PROBE = """
import os, sys
from ibps_wire.credentials import WeakSecrets
module, factory = sys.argv[1].split(":")
try:
    getattr(__import__(module, fromlist=[factory]), factory)()
except WeakSecrets as exc:
    print("REFUSED", exc)
else:
    print("BUILT")
"""


@pytest.mark.parametrize("factory", ["fpslink.app:app_from_env", "mock_ibps.app:serve_app"])
def test_the_serving_factories_refuse_on_their_own(tmp_path: Path, factory: str) -> None:
    """`uvicorn --factory` skips the command line, so the factories check too."""
    env = clean_env(FPSLINK_DATABASE_URL=NOT_A_DATABASE, MOCK_IBPS_DATABASE_URL=NOT_A_DATABASE)
    done = subprocess.run(
        [sys.executable, "-c", FACTORY_PROBE, factory],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "REFUSED" in done.stdout, done.stdout + done.stderr


def test_the_gateway_refuses_one_value_for_both_secrets(tmp_path: Path) -> None:
    """mock_ibps holds its token in its environment; it must not hold the operator key with it."""
    same = new_secret()
    env = clean_env(FPSLINK_DATABASE_URL=NOT_A_DATABASE, FPSLINK_OPERATOR_KEY=same, FPSLINK_IBPS_TOKEN=same)
    code, out = run_until_exit(
        ["fpslink.cli", "serve", "--port", str(free_port()), "--no-migrate"], env, tmp_path
    )
    assert code == 2 and "the same value" in out, out[-2000:]


# the insecure local mode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["fpslink.cli", "serve", "--no-migrate"], {"FPSLINK_INSECURE_LOCAL": "1"}),
        (["mock_ibps.cli", "serve", "--no-migrate"], {"MOCK_IBPS_INSECURE_LOCAL": "1"}),
    ],
    ids=["gateway", "mock_ibps"],
)
def test_the_insecure_local_mode_refuses_an_address_beyond_loopback(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    environment = clean_env(FPSLINK_DATABASE_URL=NOT_A_DATABASE, MOCK_IBPS_DATABASE_URL=NOT_A_DATABASE, **env)
    code, out = run_until_exit(
        [*args, "--host", UNREACHABLE_HOST, "--port", str(free_port())], environment, tmp_path
    )
    assert code == 2, out[-2000:]
    assert "loopback addresses only" in out and UNREACHABLE_HOST in out, out


def test_the_insecure_local_mode_serves_on_loopback_with_a_warning(tmp_path: Path) -> None:
    """Asked for by name, on 127.0.0.1: mock_ibps serves with the published token and says so."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_ibps.cli",
            "serve",
            "--insecure-local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-migrate",
        ],
        env=clean_env(MOCK_IBPS_DATABASE_URL=NOT_A_DATABASE),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        healthy = False
        while time.monotonic() < deadline and process.poll() is None and not healthy:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.1)
        assert healthy, f"mock-ibps --insecure-local did not serve (exit {process.poll()})"
        published = {"Authorization": "Bearer ibps-sandbox-token"}
        # the token is the published one here: a wrong one is still refused, the published one is not
        wrong = httpx.get(f"http://127.0.0.1:{port}/ibps/v1/sandbox/faults", timeout=5)
        right = httpx.get(f"http://127.0.0.1:{port}/ibps/v1/sandbox/faults", headers=published, timeout=5)
        assert (wrong.status_code, right.status_code) == (401, 200), (wrong.text, right.text)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    assert "INSECURE local mode" in out and "MOCK_IBPS_TOKEN" in out, out


def test_a_refused_mock_ibps_start_migrates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token is judged before the migrations run: a refused start leaves the database as it was."""
    from typer.testing import CliRunner

    from mock_ibps import cli

    migrated: list[str] = []
    served: list[str] = []
    monkeypatch.setattr("mock_ibps.migrate.upgrade", migrated.append)
    monkeypatch.setattr("uvicorn.run", lambda app, **_: served.append(app))
    monkeypatch.setenv("MOCK_IBPS_DATABASE_URL", NOT_A_DATABASE)
    monkeypatch.setenv("MOCK_IBPS_TOKEN", "ibps-sandbox-token")
    result = CliRunner().invoke(cli.app, ["serve"])
    assert result.exit_code == 2, result.output
    assert migrated == [] and served == []

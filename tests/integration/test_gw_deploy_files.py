"""The deployment files: docker-compose.yml, Dockerfile, .dockerignore, the lock file, the .env
generator and the locust load mix.

None of these tests needs a database or a Docker engine. Where `docker compose` is installed the
compose file also goes through `docker compose config -q`; the structural checks run everywhere.
The locustfile and the other scenario files are imported in a child process, because importing
locust monkey-patches the standard library with gevent.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import py_compile
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from fpslink import cli as gateway_cli
from fpslink.config import Settings, ready_to_serve
from ibps_wire.credentials import PUBLISHED, weakness
from mock_ibps import cli as ibps_cli
from mock_ibps.config import Settings as IbpsSettings
from mock_ibps.config import ready_to_serve as ibps_ready_to_serve

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
LOCK = ROOT / "requirements.lock"
GENERATE_ENV = ROOT / "docker" / "generate_env.py"
COMPOSE_SECRETS = ("FPSLINK_OPERATOR_KEY", "FPSLINK_IBPS_TOKEN", "POSTGRES_PASSWORD")
LOADTESTS = ROOT / "loadtests"
# scenario file -> the users it runs; the shared parts are in loadtests/fpsload
SCENARIOS = {
    "locustfile.py": ["HongKongBank", "MainlandBank"],
    "scenarios/northbound.py": ["HongKongBank"],
    "scenarios/southbound.py": ["MainlandBank"],
}
SERVICES = ("postgres", "mock_ibps", "gateway", "locust")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found = compose["services"][name]
    assert isinstance(found, dict)
    return found


def environment(svc: dict[str, Any]) -> dict[str, str | None]:
    """The service's environment as a mapping, from either the mapping or the list form."""
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {k: v for k, v in pairs}
    return {k: None if v is None else str(v) for k, v in env.items()}


def command_text(svc: dict[str, Any]) -> str:
    command = svc.get("command", "")
    return " ".join(str(part) for part in command) if isinstance(command, list) else str(command)


def interpolated(value: str, env: Mapping[str, str] | None = None) -> str:
    """As compose interpolates with `env` as the environment: ${NAME:-default} and ${NAME-default}
    give the default when NAME is unset, ${NAME} an empty string, and ${NAME:?message} (required)
    fails the way `docker compose` does when NAME is unset or empty."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        name, how, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if how.endswith("?"):
            assert env.get(name), f"compose stops here: {name} {rest}"
            return env[name]
        if how.endswith("-"):
            return env.get(name) or rest
        return env.get(name, "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}", one, value)


@pytest.fixture(scope="module")
def dotenv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The variables a deployment's .env holds, as docker/generate_env.py writes them."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    done = subprocess.run(
        [sys.executable, str(GENERATE_ENV), "--output", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def docker_compose() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False, cwd=ROOT
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [docker, "compose"] if probe.returncode == 0 else None


# compose -----------------------------------------------------------------------------------------


def test_docker_compose_config_accepts_the_file() -> None:
    command = docker_compose()
    if command is None:
        pytest.skip("`docker compose` is not installed; the structural checks stand in for it")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "--profile", "load", "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_compose_has_the_four_services(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])
    assert service(compose, "postgres")["image"].startswith("postgres:15")
    assert service(compose, "locust").get("profiles") == ["load"]
    for name in ("postgres", "mock_ibps", "gateway"):
        assert "profiles" not in service(compose, name), f"{name} must start with a plain `up`"


@pytest.mark.parametrize("name", ["postgres", "mock_ibps", "gateway"])
def test_health_checks(compose: dict[str, Any], name: str) -> None:
    check = service(compose, name).get("healthcheck")
    assert isinstance(check, dict) and not check.get("disable"), f"{name} has no health check"
    test = check["test"]
    text = " ".join(test) if isinstance(test, list) else test
    if isinstance(test, list):
        assert test[0] in ("CMD", "CMD-SHELL"), test
    if name == "postgres":
        assert "pg_isready" in text
    else:
        port = "8001" if name == "mock_ibps" else "8000"
        assert f"127.0.0.1:{port}/healthz" in text


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("mock_ibps", {"postgres"}),
        ("gateway", {"mock_ibps"}),
        ("locust", {"gateway"}),
    ],
)
def test_depends_on_healthy_services(compose: dict[str, Any], name: str, needs: set[str]) -> None:
    depends = service(compose, name).get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must use the long form with conditions"
    assert needs <= set(depends)
    for other, how in depends.items():
        assert how.get("condition") == "service_healthy", f"{name} -> {other}"
        assert "healthcheck" in service(compose, other), f"{other} is waited for but has no health check"


def published_ports(svc: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, container port) of each published port."""
    out: list[tuple[str, str]] = []
    for port in svc.get("ports", []):
        if isinstance(port, dict):
            out.append((str(port.get("host_ip", "")), str(port.get("target"))))
            continue
        parts = interpolated(str(port)).split(":")
        assert len(parts) == 3, f"{port}: name the host address, e.g. 127.0.0.1:8000:8000"
        out.append((parts[0], parts[2].split("/")[0]))
    return out


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    seen = {}
    for name, svc in compose["services"].items():
        assert "network_mode" not in svc or svc["network_mode"] != "host", name
        for host_ip, target in published_ports(svc):
            assert host_ip == "127.0.0.1", f"{name} publishes {target} on {host_ip or 'every address'}"
            seen[name] = target
    assert seen.get("gateway") == "8000"
    assert seen.get("locust") == "8089"
    assert "mock_ibps" not in seen, "only the gateway calls mock_ibps: it publishes no port"


def networks_of(svc: dict[str, Any]) -> set[str]:
    """The compose networks a service joins (`default` when it names none)."""
    networks = svc.get("networks")
    if networks is None:
        return {"default"}
    return set(networks) if isinstance(networks, (list, dict)) else {str(networks)}


def test_mock_ibps_is_reachable_by_the_gateway_only(compose: dict[str, Any]) -> None:
    """Its token can credit any mainland account: only the gateway (and its own database) share a
    network with it, that network has no way out, and the load generators cannot reach it."""
    ibps = service(compose, "mock_ibps")
    assert not ibps.get("ports") and "network_mode" not in ibps
    shared = networks_of(ibps)
    assert "default" not in shared, "mock_ibps must not sit on the network every service joins"
    assert shared & networks_of(service(compose, "gateway")), "the gateway cannot reach mock_ibps"
    for network in shared:
        members = {name for name, svc in compose["services"].items() if network in networks_of(svc)}
        assert members <= {"mock_ibps", "gateway", "postgres"}, f"{network} also reaches {members}"
        assert (compose.get("networks") or {}).get(network, {}).get("internal") is True, network


def test_compose_takes_every_secret_from_the_environment(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    """No secret is written in the file: each is ${NAME:?...}, so compose stops when .env lacks it,
    and the services refuse a weak one; no published value appears anywhere in the file."""
    text = COMPOSE.read_text(encoding="utf-8")
    for value in PUBLISHED:
        assert not re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text, re.IGNORECASE), value
    for name in COMPOSE_SECRETS:
        uses = re.findall(rf"\$\{{{name}(?![A-Z0-9_])(:?[-?]?)[^}}]*\}}", text)
        assert uses and set(uses) == {":?"}, f"{name} must be required (${{{name}:?...}}), not {uses}"
    for svc_name, svc in compose["services"].items():
        for variable, raw in environment(svc).items():
            if re.search(r"KEY|TOKEN|PASSWORD", variable):
                assert raw and raw.startswith("${") and raw.endswith("}"), f"{svc_name}: {variable}={raw}"
            assert "INSECURE_LOCAL" not in variable, f"{svc_name} serves beyond loopback: no insecure mode"
    assert set(COMPOSE_SECRETS) <= set(dotenv)


def test_the_generated_env_serves(compose: dict[str, Any], dotenv: dict[str, str]) -> None:
    """With the secrets docker/generate_env.py wrote, both services accept what compose gives them."""
    gateway = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "gateway")).items()}
    ibps = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "mock_ibps")).items()}
    settings = Settings(
        operator_key=gateway["FPSLINK_OPERATOR_KEY"], ibps_token=gateway["FPSLINK_IBPS_TOKEN"]
    )
    assert ready_to_serve(settings) == (settings, [])
    assert ibps_ready_to_serve(IbpsSettings(token=ibps["MOCK_IBPS_TOKEN"]))[1] == []


def test_generate_env_writes_private_strong_secrets_once(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GATEWAY_PORT=18000\nFPSLINK_OPERATOR_KEY=\n")
    env_file.chmod(0o644)
    run = [sys.executable, str(GENERATE_ENV), "--output", str(env_file)]
    assert subprocess.run(run, capture_output=True, timeout=60, check=False).returncode == 0
    first = env_file.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in first.splitlines() if line and not line.endswith("="))
    assert values["GATEWAY_PORT"] == "18000"
    generated = [values[name] for name in COMPOSE_SECRETS]
    assert len(set(generated)) == 3 and all(weakness(v) is None for v in generated), generated
    assert subprocess.run(run, capture_output=True, timeout=60, check=False).returncode == 0
    assert env_file.read_text() == first, "a second run must keep the deployment's secrets"


def test_gateway_serves_with_fpslink_serve(compose: dict[str, Any]) -> None:
    text = command_text(service(compose, "gateway"))
    assert text.startswith("fpslink serve"), text
    assert "--host 0.0.0.0" in text
    assert "--port 8000" in text
    assert "--workers ${GATEWAY_WORKERS:-2}" in text
    assert "--no-migrate" not in text


def test_mock_ibps_serves_on_8001(compose: dict[str, Any]) -> None:
    text = command_text(service(compose, "mock_ibps"))
    assert re.match(r"(mock-ibps|python -m mock_ibps\.cli) serve\b", text), text
    assert "--host 0.0.0.0" in text and "--port 8001" in text
    assert "--no-migrate" not in text


def test_gateway_environment_names_are_settings(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    cli_source = inspect.getsource(gateway_cli)
    env = environment(service(compose, "gateway"))
    for name in env:
        assert name.startswith("FPSLINK_"), f"the gateway reads FPSLINK_* only, not {name}"
        field = name.removeprefix("FPSLINK_").lower()
        assert field in fields or f'"{name}"' in cli_source, f"{name} is not a gateway setting"
    for required in (
        "FPSLINK_DATABASE_URL",
        "FPSLINK_IBPS_URL",
        "FPSLINK_IBPS_TOKEN",
        "FPSLINK_OPERATOR_KEY",
    ):
        assert env.get(required), f"the gateway needs {required}"


def test_mock_ibps_environment_names_are_settings(compose: dict[str, Any]) -> None:
    fields = set(IbpsSettings.model_fields)
    cli_source = inspect.getsource(ibps_cli)
    for name in environment(service(compose, "mock_ibps")):
        assert name.startswith("MOCK_IBPS_"), name
        field = name.removeprefix("MOCK_IBPS_").lower()
        assert field in fields or f'"{name}"' in cli_source, f"{name} is not a mock_ibps setting"


def test_services_agree_on_databases_tokens_and_keys(compose: dict[str, Any], dotenv: dict[str, str]) -> None:
    gateway = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "gateway")).items()}
    ibps = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "mock_ibps")).items()}
    load = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "locust")).items()}
    pg = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "postgres")).items()}

    assert gateway["FPSLINK_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert gateway["FPSLINK_DATABASE_URL"].endswith("@postgres:5432/fpslink")
    assert ibps["MOCK_IBPS_DATABASE_URL"].endswith("@postgres:5432/fpslink_ibps")
    assert pg["POSTGRES_DB"] == "fpslink"
    password = pg["POSTGRES_PASSWORD"]
    assert password == dotenv["POSTGRES_PASSWORD"]
    assert f":{password}@" in gateway["FPSLINK_DATABASE_URL"]
    assert f":{password}@" in ibps["MOCK_IBPS_DATABASE_URL"]

    assert gateway["FPSLINK_IBPS_URL"] == "http://mock_ibps:8001"
    assert gateway["FPSLINK_IBPS_TOKEN"] == ibps["MOCK_IBPS_TOKEN"] == dotenv["FPSLINK_IBPS_TOKEN"]
    assert gateway["FPSLINK_OPERATOR_KEY"] == dotenv["FPSLINK_OPERATOR_KEY"]
    assert load["FPSLINK_OPERATOR_KEY"] == gateway["FPSLINK_OPERATOR_KEY"]
    assert load["LOCUST_HOST"] == "http://gateway:8000"
    assert load["LOCUST_LOCUSTFILE"].endswith("loadtests/locustfile.py")
    assert load.get("LOCUST_RUN_TIME"), "a headless run of the compose locust must be bounded"


def test_the_second_database_is_created_on_init(compose: dict[str, Any]) -> None:
    mounts = [str(v) for v in service(compose, "postgres").get("volumes", [])]
    init = [m for m in mounts if "/docker-entrypoint-initdb.d/" in m]
    assert init, "postgres needs an init script for fpslink_ibps"
    source = init[0].split(":", 1)[0]
    script = (ROOT / source).resolve()
    assert script.is_file(), f"{source} is missing"
    assert re.search(r"CREATE DATABASE\s+\"?fpslink_ibps\"?", script.read_text(), re.IGNORECASE)


@pytest.mark.parametrize("name", ["locust", "locust-worker"])
def test_locust_environment_names_are_read_by_the_locustfile(compose: dict[str, Any], name: str) -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(LOADTESTS.rglob("*.py")))
    for variable in environment(service(compose, name)):
        if variable.startswith("LOCUST_"):
            continue  # locust's own options
        assert f'"{variable}"' in source, f"{name} sets {variable} but the locustfile never reads it"


def test_the_locust_service_is_a_master_that_can_run_the_day_shape(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    env = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "locust")).items()}
    # --processes N makes locust a master with N local workers; locust refuses --master beside it
    assert int(env["LOCUST_PROCESSES"]) >= 1
    assert "LOCUST_MODE_MASTER" not in env and "LOCUST_MODE_WORKER" not in env
    for name in ("LOADTEST_SHAPE", "LOADTEST_DAY_SECONDS", "LOADTEST_PEAK_USERS", "LOADTEST_DAYS"):
        assert name in env, f"the master passes {name} through for the 24-hour shape"
    assert "FPSLINK_SOUTHBOUND_HOURS" in env, "the shape closes southbound on the gateway's hours"


def test_locust_workers_join_the_master(compose: dict[str, Any], dotenv: dict[str, str]) -> None:
    worker = service(compose, "locust-worker")
    master = service(compose, "locust")
    assert worker.get("profiles") == ["load"]
    assert worker.get("build") == master.get("build") and worker.get("image") == master.get("image")
    env = {k: interpolated(v or "", dotenv) for k, v in environment(worker).items()}
    master_env = {k: interpolated(v or "", dotenv) for k, v in environment(master).items()}
    assert env["LOCUST_MODE_WORKER"].lower() == "true"
    assert env["LOCUST_MASTER_NODE_HOST"] == "locust"
    assert "LOCUST_PROCESSES" not in env, "a worker container is one worker; scale the service instead"
    assert "LOCUST_RUN_TIME" not in env, "locust refuses --run-time on a worker"
    for shared in ("LOCUST_LOCUSTFILE", "FPSLINK_OPERATOR_KEY"):
        assert env[shared] == master_env[shared], shared
    assert "locust" in (worker.get("depends_on") or {})
    assert not worker.get("ports"), "workers talk to the master on the compose network only"
    assert worker.get("volumes") == master.get("volumes"), "workers run the same mounted locustfile"


LOCUST_ENV_VARS = """
import locust, json
from locust.argument_parser import get_parser

parser = get_parser()
print(json.dumps(sorted({a.env_var for a in parser._actions if getattr(a, "env_var", None)})))
"""


def test_the_locust_variables_are_locust_options(compose: dict[str, Any]) -> None:
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (pip install '.[load]')")
    result = subprocess.run(
        [sys.executable, "-c", LOCUST_ENV_VARS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    known = set(json.loads(result.stdout.strip().splitlines()[-1]))
    for name in ("locust", "locust-worker"):
        for variable in environment(service(compose, name)):
            if variable.startswith("LOCUST_"):
                assert variable in known, f"{name}: {variable} is not an option locust reads"


# Dockerfile --------------------------------------------------------------------------------------


def dockerfile_stages() -> list[tuple[str, list[str]]]:
    """(FROM line, instructions) per stage; continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def test_dockerfile_runtime_stage() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "python:3.11-slim" in text
    stages = dockerfile_stages()
    last_from, last = stages[-1]
    assert last_from.endswith("AS runtime"), "the default (last) stage serves the gateway and mock_ibps"
    users = [line.split(None, 1)[1] for line in last if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime must not run as root"
    assert any("pip install" in line and "fpslink" in line for line in last)
    assert any(line.startswith("CMD") and "fpslink" in line for line in last)


def test_dockerfile_builds_the_project_with_pip() -> None:
    stages = dockerfile_stages()
    assert any(
        re.search(r"pip (install|wheel)\b.*\s\"?\.(\[[a-z,]+\])?\"?(\s|$)", line)
        for _, ins in stages
        for line in ins
    )


def test_compose_build_targets_exist(compose: dict[str, Any]) -> None:
    names = {line.split()[-1] for line, _ in dockerfile_stages() if " AS " in line.upper()}
    for name in ("mock_ibps", "gateway", "locust", "locust-worker"):
        build = service(compose, name).get("build")
        assert isinstance(build, dict), f"{name} builds from the Dockerfile"
        assert build.get("target") in names, f"{name}: no stage {build.get('target')}"
    assert service(compose, "gateway")["image"] == service(compose, "mock_ibps")["image"]


def test_the_deployment_secrets_stay_out_of_git_and_the_image() -> None:
    """.env holds the deployment's secrets: never committed, never copied into a build context."""
    for ignore_file in (ROOT / ".gitignore", DOCKERIGNORE):
        lines = {line.strip() for line in ignore_file.read_text(encoding="utf-8").splitlines()}
        assert ".env" in lines, f"{ignore_file.name} lets .env through"


def test_dockerfile_installs_the_locked_versions() -> None:
    """Every pip that installs or builds in the image is held to requirements.lock, which the build
    copies in: the image runs what CI tested, not whatever PyPI has that day."""
    stages = dockerfile_stages()
    pips = [line for _, ins in stages for line in ins if re.search(r"\bpip (install|wheel)\b", line)]
    assert pips, "the Dockerfile installs nothing with pip"
    for line in pips:
        assert re.search(r"(--constraint|-c)[ =]\S*requirements\.lock\b", line), line
    copies = [line for _, ins in stages for line in ins if line.upper().startswith("COPY ")]
    assert any("requirements.lock" in line for line in copies), "the lock is never copied into the build"


def test_the_lock_pins_every_declared_dependency() -> None:
    """One exact pin per package, for every dependency and extra pyproject.toml declares."""

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line.strip())
        assert match, f"requirements.lock: {line!r} is not an exact pin"
        assert norm(match.group(1)) not in pins, f"{match.group(1)} is pinned twice"
        pins[norm(match.group(1))] = match.group(2)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        declared += extra
    for requirement in declared:
        name = norm(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0])
        assert name in pins, f"{requirement} is declared but requirements.lock does not pin it"


def test_ci_installs_from_the_lock() -> None:
    """.ci/run runs `python3 tasks.py test`, whose bootstrap installs under the lock's constraint."""
    assert "python3 tasks.py test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    tasks = (ROOT / "tasks.py").read_text(encoding="utf-8")
    assert re.search(r'LOCK = ROOT / "requirements\.lock"', tasks)
    assert re.search(r'"--constraint", str\(LOCK\)', tasks)


def test_dockerignore_keeps_what_the_build_needs() -> None:
    ignored = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (
        "pyproject.toml",
        "README.md",
        "requirements.lock",
        "src",
        "mock_ibps",
        "migrations",
        "loadtests",
    ):
        assert needed not in ignored, f".dockerignore drops {needed}"
    for dropped in (".git", ".venv", ".fpslink"):
        assert dropped in ignored, f".dockerignore should drop {dropped}"


# the load mix -----------------------------------------------------------------------------------


def test_the_load_tests_compile(tmp_path: Path) -> None:
    for source in sorted(LOADTESTS.rglob("*.py")):
        cfile = tmp_path / source.relative_to(LOADTESTS).with_suffix(".pyc")
        py_compile.compile(str(source), cfile=str(cfile), doraise=True)


def test_every_scenario_file_is_inspected() -> None:
    found = [*LOADTESTS.glob("*.py"), *(LOADTESTS / "scenarios").glob("*.py")]
    assert sorted(p.relative_to(LOADTESTS).as_posix() for p in found) == sorted(SCENARIOS)


INSPECT_USERS = """
import json, sys
from locust.util.load_locustfile import load_locustfile

users, shapes = load_locustfile(sys.argv[1])  # as locust -f does
found = {
    name: {
        "tasks": sorted({getattr(t, "__name__", type(t).__name__) for t in cls.tasks}),
        "weight": cls.weight,
    }
    for name, cls in users.items()
}
print(json.dumps({"users": found, "shapes": [type(s).__name__ for s in shapes]}))
"""


@pytest.mark.parametrize(("scenario", "expected"), list(SCENARIOS.items()))
@pytest.mark.parametrize("shape", ["", "day"])
def test_scenario_files_define_users_with_tasks_from_any_directory(
    scenario: str, expected: list[str], shape: str, tmp_path: Path
) -> None:
    if importlib.util.find_spec("locust") is None:
        pytest.skip("locust is not installed (pip install '.[load]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADTEST_", "LOCUST_"))}
    result = subprocess.run(
        [sys.executable, "-c", INSPECT_USERS, str(LOADTESTS / scenario)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**env, "LOADTEST_SHAPE": shape},
        cwd=tmp_path,  # not the repository: the scenario finds loadtests/fpsload by itself
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    users = found["users"]
    assert sorted(users) == expected, f"{scenario} runs {sorted(users)}"
    for name, user in users.items():
        assert user["tasks"], f"{name} has no tasks"
        assert user["weight"] >= 1
    assert found["shapes"] == (["DayShape"] if shape == "day" else []), "the 24-hour day is opt-in"

"""The deployment files: docker-compose.yml, Dockerfile, .dockerignore, the lock file, the .env
generator, the locust load mix, and the profile `observe` (Prometheus and Grafana, docker/).

None of these tests needs a database or a Docker engine. Where `docker compose` is installed the
compose file also goes through `docker compose config -q`; the structural checks run everywhere
(the images cannot be pulled here, so nothing starts them). That every metric the dashboard and the
rules read is one a real gateway serves is test_gw_metrics.py's, which needs the database.
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
from observe_support import (
    DASHBOARD,
    DASHBOARD_PROVIDERS,
    DATASOURCES,
    GRAFANA_DIR,
    PROMETHEUS_CONFIG,
    PROMETHEUS_DIR,
    PROMETHEUS_RULES,
    dashboard,
    expressions,
    rules,
    selectors,
)

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
COMPOSE_SECRETS = (
    "FPSLINK_OPERATOR_KEY",
    "FPSLINK_IBPS_TOKEN",
    "POSTGRES_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)
LOADTESTS = ROOT / "loadtests"
# scenario file -> the users it runs; the shared parts are in loadtests/fpsload
SCENARIOS = {
    "locustfile.py": ["HongKongBank", "MainlandBank"],
    "scenarios/northbound.py": ["HongKongBank"],
    "scenarios/southbound.py": ["MainlandBank"],
}
SERVICES = ("postgres", "migrate", "mock_ibps", "gateway", "locust", "prometheus", "grafana")
STACK = ("postgres", "migrate", "mock_ibps", "gateway")
"""What a plain `docker compose up` starts: no profile."""


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
        pytest.skip(
            "`docker compose` (the docker CLI's compose plugin) is not installed; `config` needs no "
            "daemon, but without the plugin the structural checks below stand in for it"
        )
    # the secrets compose requires, as docker/generate_env.py would write them (values are not read)
    env = {**os.environ, **{name: "x" * 43 for name in COMPOSE_SECRETS}}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "--profile", "load", "--profile", "observe", "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr


def test_compose_has_the_stack_and_its_profiles(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])
    assert service(compose, "postgres")["image"].startswith("postgres:15.")
    assert service(compose, "locust").get("profiles") == ["load"]
    for name in STACK:
        assert "profiles" not in service(compose, name), f"{name} must start with a plain `up`"
    for name in ("prometheus", "grafana"):
        assert service(compose, name).get("profiles") == ["observe"], name


PINNED = re.compile(r"[a-z0-9][a-z0-9._/-]*:v?\d+\.\d+(\.\d+)?")
"""An exact release: major.minor at least (PostgreSQL's releases have two parts), no `latest`, no
bare major, no suffix such as `-alpine` that the registry moves to a new release."""


def test_every_image_pulled_is_pinned_to_a_release(compose: dict[str, Any]) -> None:
    pulled = {name: svc["image"] for name, svc in compose["services"].items() if "build" not in svc}
    assert set(pulled) >= {"postgres", "prometheus", "grafana"}, pulled
    for name, image in pulled.items():
        assert PINNED.fullmatch(image), f"{name}: {image} is not pinned to a release"
    for name, svc in compose["services"].items():
        if "build" in svc:
            assert str(svc["image"]).endswith(":local"), f"{name} builds an image of its own, named local"


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
        ("migrate", {"postgres"}),
        ("mock_ibps", {"postgres", "migrate"}),
        ("gateway", {"mock_ibps", "migrate"}),
        ("locust", {"gateway"}),
        ("prometheus", {"gateway"}),
        ("grafana", {"prometheus"}),
    ],
)
def test_depends_on_healthy_services(compose: dict[str, Any], name: str, needs: set[str]) -> None:
    """Each service waits for what it needs to be healthy, and for the migrations to have run."""
    depends = service(compose, name).get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must use the long form with conditions"
    assert needs <= set(depends)
    for other, how in depends.items():
        if other == "migrate":
            assert how.get("condition") == "service_completed_successfully", f"{name} -> migrate"
            continue
        assert how.get("condition") == "service_healthy", f"{name} -> {other}"
        assert "healthcheck" in service(compose, other), f"{other} is waited for but has no health check"


def test_migrations_run_once_as_a_job_before_the_services(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    """The `migrate` job applies both schemas and exits; the services never migrate themselves, so
    a restarted container or several gateway workers cannot race a schema change."""
    job = service(compose, "migrate")
    text = command_text(job)
    assert "fpslink migrate" in text and "mock-ibps migrate" in text, text
    assert "&&" in text, "mock_ibps's migrations must not hide a failure of the gateway's"
    assert job.get("restart", "no") == "no", "a job that exits must not be restarted"
    assert "healthcheck" not in job and not job.get("ports")
    assert job.get("build") == service(compose, "gateway").get("build")
    assert job.get("image") == service(compose, "gateway").get("image")
    assert networks_of(job) == {"default"}, "the job reaches PostgreSQL; it has no business on `ibps`"
    env = {k: interpolated(v or "", dotenv) for k, v in environment(job).items()}
    gateway = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "gateway")).items()}
    ibps = {k: interpolated(v or "", dotenv) for k, v in environment(service(compose, "mock_ibps")).items()}
    assert env["FPSLINK_DATABASE_URL"] == gateway["FPSLINK_DATABASE_URL"]
    assert env["MOCK_IBPS_DATABASE_URL"] == ibps["MOCK_IBPS_DATABASE_URL"]
    fields, ibps_fields = set(Settings.model_fields), set(IbpsSettings.model_fields)
    for variable in env:
        if variable.startswith("FPSLINK_"):
            assert variable.removeprefix("FPSLINK_").lower() in fields, variable
        else:
            assert variable.removeprefix("MOCK_IBPS_").lower() in ibps_fields, variable


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
    assert seen.get("prometheus") == "9090"
    assert seen.get("grafana") == "3000"
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
    assert len(set(generated)) == len(COMPOSE_SECRETS), generated
    assert all(weakness(v) is None for v in generated), generated
    assert subprocess.run(run, capture_output=True, timeout=60, check=False).returncode == 0
    assert env_file.read_text() == first, "a second run must keep the deployment's secrets"


def test_gateway_serves_with_fpslink_serve(compose: dict[str, Any]) -> None:
    text = command_text(service(compose, "gateway"))
    assert text.startswith("fpslink serve"), text
    assert "--host 0.0.0.0" in text
    assert "--port 8000" in text
    assert "--workers ${GATEWAY_WORKERS:-2}" in text
    assert "--no-migrate" in text, "the `migrate` job migrates; `fpslink serve` would by default"


def test_mock_ibps_serves_on_8001(compose: dict[str, Any]) -> None:
    text = command_text(service(compose, "mock_ibps"))
    assert re.match(r"(mock-ibps|python -m mock_ibps\.cli) serve\b", text), text
    assert "--host 0.0.0.0" in text and "--port 8001" in text
    assert "--no-migrate" in text, "the `migrate` job migrates; `mock-ibps serve` would by default"


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
    for name in (
        "LOADTEST_SHAPE",
        "LOADTEST_DAY_SECONDS",
        "LOADTEST_PEAK_USERS",
        "LOADTEST_DAYS",
        "LOADTEST_SANDBOX_CLOCK",
    ):
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


# the profile `observe`: Prometheus and Grafana -----------------------------------------------------


def mounts(svc: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository path bound there, for the service's bind mounts."""
    found: dict[str, Path] = {}
    for volume in svc.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            found[target] = (ROOT / source).resolve()
    return found


def in_container(svc: dict[str, Any], path: str) -> Path:
    """The repository file a container path of `svc` reads, through its bind mounts."""
    for target, source in sorted(mounts(svc).items(), key=lambda item: -len(item[0])):
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return source / path[len(target) :].lstrip("/")
    raise AssertionError(f"{path} is in no bind mount of the service")


def test_prometheus_reads_its_files_from_the_repository(compose: dict[str, Any]) -> None:
    prometheus = service(compose, "prometheus")
    flags = dict(part.split("=", 1) for part in prometheus["command"] if "=" in part)
    assert in_container(prometheus, flags["--config.file"]) == PROMETHEUS_CONFIG
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    for rule_file in config["rule_files"]:
        assert in_container(prometheus, rule_file).is_file(), rule_file
    assert in_container(prometheus, config["rule_files"][0]) == PROMETHEUS_RULES
    assert mounts(prometheus)["/etc/prometheus"] == PROMETHEUS_DIR
    assert any(str(v).startswith("prometheus-data:") for v in prometheus["volumes"]), "a long run's data"
    assert "prometheus-data" in compose["volumes"]


def test_prometheus_scrapes_the_gateway_where_compose_serves_it(compose: dict[str, Any]) -> None:
    """The target is the compose service's name and the port `fpslink serve` listens on, on a
    network both share; mock_ibps has no /metrics and sits on a network Prometheus is not on."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    assert static["targets"] == ["gateway:8000"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert "--port 8000" in command_text(service(compose, "gateway"))
    assert networks_of(service(compose, "prometheus")) & networks_of(service(compose, "gateway"))
    assert not networks_of(service(compose, "prometheus")) & networks_of(service(compose, "mock_ibps"))
    # the rules name the scrape job as configured
    assert all(
        job["job_name"] in str(rule["expr"])
        for group in rules()["groups"]
        for rule in group["rules"]
        if "up{" in str(rule["expr"])
    )


def test_grafana_is_provisioned_from_the_repository(compose: dict[str, Any], dotenv: dict[str, str]) -> None:
    grafana = service(compose, "grafana")
    assert in_container(grafana, "/etc/grafana/provisioning/datasources/prometheus.yml") == DATASOURCES
    assert in_container(grafana, "/etc/grafana/provisioning/dashboards/fpslink.yml") == DASHBOARD_PROVIDERS
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text(encoding="utf-8"))["providers"]
    assert in_container(grafana, provider["options"]["path"]) == DASHBOARD.parent
    env = {k: interpolated(v or "", dotenv) for k, v in environment(grafana).items()}
    assert in_container(grafana, env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]) == DASHBOARD
    (source,) = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    port = service(compose, "prometheus")["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{port}" and source["type"] == "prometheus"
    assert networks_of(grafana) & networks_of(service(compose, "prometheus"))
    # the dashboard names the provisioned data source, in every panel and query
    uids = {
        ds["uid"]
        for panel in dashboard()["panels"]
        for ds in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
    }
    assert uids == {source["uid"]}
    for path in GRAFANA_DIR.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o004, f"{path}: Grafana's user must be able to read it"


def test_grafana_has_no_password_of_its_own_and_lets_anonymous_viewers_only(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    env = environment(service(compose, "grafana"))
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == (
        "${GRAFANA_ADMIN_PASSWORD:?is not set: run python3 docker/generate_env.py}"
    )
    assert interpolated(env["GF_SECURITY_ADMIN_PASSWORD"] or "", dotenv) == dotenv["GRAFANA_ADMIN_PASSWORD"]
    if (env.get("GF_AUTH_ANONYMOUS_ENABLED") or "").lower() == "true":
        assert env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer"
    assert (env.get("GF_USERS_ALLOW_SIGN_UP") or "").lower() == "false"


FIVE = {
    "throughput": "fpslink_payments_total",
    "latency": "fpslink_payment_seconds_bucket",
    "pending": "fpslink_payments_pending",
    "breakers": "fpslink_ibps_circuit_open",
    "limits": "fpslink_payment_rejections_total",
}


def test_the_dashboard_shows_the_five_things_a_long_run_is_watched_for() -> None:
    board = dashboard()
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
    read = {name for expr in expressions() for name, _ in selectors(expr.text)}
    for what, metric in FIVE.items():
        assert metric in read, f"no panel shows {what} ({metric})"
    limits = 'fpslink_payment_rejections_total{code=~"AM02|AM14"}'
    assert any(limits in expr.text for expr in expressions()), "the limits' own codes, AM02 and AM14"
    assert board["uid"] and board.get("editable") is False


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
    for name in ("migrate", "mock_ibps", "gateway", "locust", "locust-worker"):
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

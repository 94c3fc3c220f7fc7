"""The sandbox's secrets are its install's own, private, and kept; its mock_ibps answers the gateway only.

Before, every sandbox's mock_ibps took `ibps-sandbox-token`, so anyone who reached it could prepare
and commit a 50,000.00 CNY credit with no payment behind it, or open an account with any balance; and
the embedded PostgreSQL's files and socket directory were readable by every local user.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from gw_support import free_port

from fpslink.config import Settings
from fpslink_tools import sandbox as sandbox_module
from fpslink_tools.embedded_pg import EmbeddedPostgres
from fpslink_tools.sandbox import SandboxProcess
from ibps_wire.credentials import WeakSecrets, weakness

START_TIMEOUT_S = 180.0


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Where the sandbox runs; whatever happens, no embedded PostgreSQL is left running there.

    A directory of its own under the system's temporary one rather than pytest's: run as root, the
    server's user must traverse every parent for as long as it runs, and each new pytest session
    of the same user resets pytest's base directory to 0700.
    """
    path = Path(tempfile.mkdtemp(prefix="fpslink-secrets-"))
    try:
        yield path
    finally:
        server = EmbeddedPostgres(path / ".fpslink" / "pg")
        if server.running() is not None:
            server.stop()
        shutil.rmtree(path, ignore_errors=True)


def start(workdir: Path, port: int, ibps_port: int) -> tuple[SandboxProcess, str]:
    sandbox = SandboxProcess(workdir, ["--port", str(port), "--ibps-port", str(ibps_port), "--workers", "1"])
    try:
        banner = sandbox.wait_ready(START_TIMEOUT_S)
    except BaseException:
        sandbox.interrupt()
        raise
    assert "fpslink sandbox is running" in banner, banner[-3000:]
    return sandbox, banner


def banner_value(banner: str, pattern: str) -> str:
    found = re.search(pattern, banner)
    assert found is not None, f"{pattern} not in the banner:\n{banner[-3000:]}"
    return found.group(1)


def mint_attempts(ibps_url: str) -> dict[str, int]:
    """What mock_ibps answers to money from nothing, with the published token and with none."""
    credit = {
        "payment_id": str(uuid.uuid4()),
        "kind": "CREDIT",
        "account_id": "CNDEMO0001",
        "amount": "50000.00",
        "currency": "CNY",
    }
    account = {
        "account_id": "CNFREE0001",
        "participant_id": "PEARLCN",
        "holder_name": "Free Money",
        "currency": "CNY",
        "opening_balance": "1000000.00",
    }
    answers: dict[str, int] = {}
    for label, headers in (("published", {"Authorization": "Bearer ibps-sandbox-token"}), ("none", {})):
        prepared = httpx.post(
            f"{ibps_url}/ibps/v1/transfers/prepare", json=credit, headers=headers, timeout=10
        )
        answers[f"prepare ({label} token)"] = prepared.status_code
        committed = httpx.post(
            f"{ibps_url}/ibps/v1/transfers/{credit['payment_id']}/commit", headers=headers, timeout=10
        )
        answers[f"commit ({label} token)"] = committed.status_code
        opened = httpx.post(f"{ibps_url}/ibps/v1/accounts", json=account, headers=headers, timeout=10)
        answers[f"open account ({label} token)"] = opened.status_code
    return answers


def listening_addresses(port: int) -> set[str]:
    return {
        conn.laddr.ip
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
    }


def loose_modes(root: Path) -> list[str]:
    """Entries under `root` that anyone but their owner may read or write (directories may keep a
    traverse bit: as root the server's user must pass through `.fpslink`)."""
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink() or path.is_socket():
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & (0o066 if path.is_dir() else 0o077):
            found.append(f"{oct(mode)} {path.relative_to(root.parent)}")
    return found


def test_the_sandbox_makes_keeps_and_guards_its_own_secrets(workdir: Path) -> None:
    port, ibps_port = free_port(), free_port()
    first, banner = start(workdir, port, ibps_port)
    try:
        ibps_url = banner_value(banner, r"mock_ibps (http://\S+)")
        assert ibps_url == f"http://127.0.0.1:{ibps_port}"
        assert listening_addresses(ibps_port) == {"127.0.0.1"}

        # no money from nothing without this install's token
        answers = mint_attempts(ibps_url)
        assert set(answers.values()) == {401}, f"mock_ibps answered without its token: {answers}"

        operator_key = banner_value(banner, r"operator key\s+(\S+)")
        key_file, token_file = workdir / ".fpslink" / "operator_key", workdir / ".fpslink" / "ibps_token"
        token = token_file.read_text().strip()
        assert key_file.read_text().strip() == operator_key
        for path in (key_file, token_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert weakness(operator_key) is None and weakness(token) is None and operator_key != token

        # the token is what opens mock_ibps, and the balance is what the demo world funded
        own = httpx.get(
            f"{ibps_url}/ibps/v1/accounts/CNDEMO0001",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert own.status_code == 200 and own.json()["balance"] == "100000.00", own.text

        # the banner's curl and `fpslink check` work as printed, beside the running sandbox
        harbour = banner_value(banner, r"-H 'Authorization: Bearer (\S+)'")
        paid = httpx.post(
            f"http://127.0.0.1:{port}/v1/payments",
            headers={"Authorization": f"Bearer {harbour}", "Idempotency-Key": str(uuid.uuid4())},
            json={
                "debtor_account_id": "HKDEMO0001",
                "creditor": {"proxy_type": "MOBILE", "proxy_value": "+8613800138000"},
                "amount": "1000.00",
                "currency": "HKD",
                "purpose": "FAMILY_SUPPORT",
            },
            timeout=30,
        )
        assert paid.status_code == 201 and paid.json()["status"] == "SETTLED", paid.text
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FPSLINK_", "MOCK_IBPS_"))}
        check = subprocess.run(
            [sys.executable, "-m", "fpslink.cli", "check"],
            cwd=workdir,
            env={**env, "FPSLINK_IBPS_URL": ibps_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0 and "all invariants hold" in check.stdout, check.stdout + check.stderr
    finally:
        assert first.interrupt() == 0, first.output[-3000:]

    # everything it wrote is its user's alone: keys, the database's files, its log, its socket
    assert loose_modes(workdir / ".fpslink") == []

    again, banner = start(workdir, port, ibps_port)
    try:
        assert banner_value(banner, r"operator key\s+(\S+)") == operator_key, "a new operator key"
        assert token_file.read_text().strip() == token, "a new IBPS token"
        reused = httpx.get(
            f"{ibps_url}/ibps/v1/accounts/CNDEMO0001",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert reused.status_code == 200, reused.text
    finally:
        assert again.interrupt() == 0, again.output[-3000:]


def test_the_sandbox_keeps_mock_ibps_on_loopback_when_the_gateway_binds_wider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: mock_ibps bound whatever address the gateway did (`--host 0.0.0.0` published it to
    the network). After: 127.0.0.1 unless `--ibps-host` says otherwise. Nothing is started here: the
    sandbox's plan is read where it hands over to the servers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sandbox_module.signal, "signal", lambda *_: None)
    monkeypatch.setattr(
        sandbox_module.embedded_pg, "database_url", lambda *_: nullcontext("postgresql://unused")
    )
    planned: list[dict[str, Any]] = []
    monkeypatch.setattr(
        sandbox_module, "_run", lambda *args, **kwargs: planned.append({"args": args, **kwargs})
    )

    sandbox_module.run_sandbox(Settings(), host="0.0.0.0", port=8000, ibps_port=8001)
    assert planned and planned[0].get("ibps_host") == "127.0.0.1", planned
    assert planned[0]["host"] == "0.0.0.0"

    with pytest.raises(WeakSecrets, match=r"mock_ibps would listen on 0\.0\.0\.0"):
        sandbox_module.run_sandbox(
            Settings(insecure_local=True), host="127.0.0.1", port=8000, ibps_port=8001, ibps_host="0.0.0.0"
        )

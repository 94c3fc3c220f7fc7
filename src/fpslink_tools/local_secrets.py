"""An install's own secrets, kept in its data directory (`.fpslink/`) where only its user can read them.

The sandbox generates the operator key and mock_ibps's token on its first start and reuses them on
every later one, so the demo banks' keys (derived from the operator key) and a running mock_ibps stay
valid across restarts, and no two installs share a secret. The other commands run in the same
directory (`fpslink serve`, `check`, `recon`) read them from here when the environment names none:
FPSLINK_OPERATOR_KEY and FPSLINK_IBPS_TOKEN always win.

Files are created 0600 in a 0700 directory (PostgreSQL's data beside them is the server user's
alone too): a key readable by another local user is a key that user holds.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from fpslink.config import Settings
from ibps_wire.credentials import new_secret

OPERATOR_KEY_FILE = "operator_key"
IBPS_TOKEN_FILE = "ibps_token"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a directory that only its owner may list or enter; made if missing.

    Only the group and other permission bits are taken away, so a traverse bit the embedded
    PostgreSQL's server user needs (as root, `embedded_pg` grants it) is kept until it is asked for
    again at the server's next start.
    """
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o066:
        path.chmod(mode & ~0o066)
    return path


def read_secret(path: Path) -> str | None:
    """The secret stored at `path` (made private if an older version left it readable), or None."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(PRIVATE_FILE)
    return value or None


def stored_secret(path: Path, prefix: str) -> str:
    """The secret at `path`, generated there first if there is none: created 0600 and exclusive,
    so it is never readable by others for an instant, and two starts racing keep one value."""
    found = read_secret(path)
    if found is not None:
        return found
    private_dir(path.parent)
    value = new_secret(prefix)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return read_secret(path) or value
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def with_local_secrets(settings: Settings, data_dir: Path, *, generate: bool = False) -> Settings:
    """`settings` with the operator key and IBPS token that the environment leaves unset taken from
    `data_dir` (generated there first when `generate`, which only the sandbox asks for)."""
    operator_path, token_path = data_dir / OPERATOR_KEY_FILE, data_dir / IBPS_TOKEN_FILE
    update: dict[str, str] = {}
    if not settings.operator_key:
        found = stored_secret(operator_path, "fpsl_operator_") if generate else read_secret(operator_path)
        if found:
            update["operator_key"] = found
    if not settings.ibps_token:
        found = stored_secret(token_path, "ibps_") if generate else read_secret(token_path)
        if found:
            update["ibps_token"] = found
    return settings.model_copy(update=update) if update else settings


SANDBOX_FILE = "sandbox.json"
"""Where a running sandbox says how to reach it: the gateway's and mock_ibps's URLs and its database,
and where its key files are (never a key itself), so that `fpslink check`, `recon` and the other
commands run in the same directory follow the sandbox's ports with no variable to set."""


def write_sandbox(data_dir: Path, *, gateway_url: str, ibps_url: str, database_url: str) -> Path:
    """Record the running sandbox (0600: a database URL may hold a password)."""
    path = private_dir(data_dir) / SANDBOX_FILE
    state = {
        "pid": os.getpid(),
        "gateway_url": gateway_url,
        "ibps_url": ibps_url,
        "database_url": database_url,
        "operator_key_file": str((data_dir / OPERATOR_KEY_FILE).resolve()),
        "ibps_token_file": str((data_dir / IBPS_TOKEN_FILE).resolve()),
    }
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2)
    partial.replace(path)
    return path


def forget_sandbox(data_dir: Path) -> None:
    """This process's sandbox stopped: commands no longer follow it. A record another process wrote
    is left alone: a second start that failed must not orphan the sandbox still running."""
    path = data_dir / SANDBOX_FILE
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (FileNotFoundError, ValueError, AttributeError):
        pid = None
    if not isinstance(pid, int) or pid == os.getpid() or not _alive(pid):
        path.unlink(missing_ok=True)


def running_sandbox(data_dir: Path) -> dict[str, str] | None:
    """What the sandbox running from `data_dir` recorded, or None (none recorded, or its process is
    gone: a sandbox killed without its clean-up leaves a file that no longer speaks for anything)."""
    try:
        state = json.loads((data_dir / SANDBOX_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = state.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return None
    return {k: v for k, v in state.items() if isinstance(v, str)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that number: not ours, but it exists
        return True
    return True


def with_local_sandbox(settings: Settings, data_dir: Path) -> Settings:
    """`settings` pointed at the sandbox running from `data_dir` (its mock_ibps and its database)
    where the environment names none (FPSLINK_IBPS_URL and FPSLINK_DATABASE_URL always win)."""
    state = running_sandbox(data_dir)
    if state is None:
        return settings
    update: dict[str, str] = {}
    if "FPSLINK_IBPS_URL" not in os.environ and state.get("ibps_url"):
        update["ibps_url"] = state["ibps_url"]
    if "FPSLINK_DATABASE_URL" not in os.environ and state.get("database_url"):
        update["database_url"] = state["database_url"]
    return settings.model_copy(update=update) if update else settings

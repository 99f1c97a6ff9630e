"""A real, throwaway PostgreSQL cluster for tests: ``initdb`` in a temp dir, ``pg_ctl start`` on
127.0.0.1 with a free port, stopped (and deleted) at the end.

Usage (a session fixture in tests/conftest.py does this once per run)::

    with PostgresServer() as server:
        url = server.create_database()      # postgresql://warroom_admin@127.0.0.1:PORT/t_1
        env = server.env                    # {"PGPASSWORD": ...}: never in the URL

The binaries are Debian's (``/usr/lib/postgresql/<version>/bin``; ``scripts/ensure-postgresql``
installs the package). They refuse to run as root, so when the tests run as root (CI does) the
cluster belongs to an unprivileged account — the package's ``postgres`` user, or a ``warroompg``
user created here — and every server command runs through ``runuser``. When the binaries are
missing, :func:`require_postgresql` skips the test, or fails it under ``CI=true``, as the
Prometheus tests do.

Host connections authenticate with a password (scram-sha-256), so the tests go through the same
"password from the environment" road as a real deployment.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.watchdog import Watchdog, write_owner

MISSING_MESSAGE = ("PostgreSQL server not installed: run scripts/ensure-postgresql (needs root), "
                   "or install Debian's postgresql package")
ADMIN = "warroom_admin"
#: The account that owns the cluster when the tests run as root (created when missing).
FALLBACK_USER = "warroompg"
START_TIMEOUT_S = 60


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb, pg_ctl and postgres (or
    the directory of ``pg_ctl`` on PATH)."""
    candidates: list[Path] = []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates += [p / "bin" for p in versions]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def require_postgresql() -> Path:
    """The server's bin directory; otherwise skip the test (or fail it when ``CI=true``)."""
    import pytest

    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{MISSING_MESSAGE} — CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(MISSING_MESSAGE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_user() -> str | None:
    """None when we are not root; else an unprivileged account to run the server as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    FALLBACK_USER], check=True, capture_output=True)
    return FALLBACK_USER


class PostgresError(RuntimeError):
    """The test cluster could not be made or started."""


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, listening on 127.0.0.1:<free port>.

    ``fsync`` is off by default (a throwaway cluster; the benchmarks start one with it on).
    """

    def __init__(self, *, bindir: Path | None = None, fsync: bool = False) -> None:
        self.bindir = bindir
        self.fsync = fsync
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.user: str | None = None
        self.workdir: Path | None = None
        self._databases = 0
        self._watchdog: Watchdog | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def _run(self, *argv: str,
             timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd="/")

    def start(self) -> PostgresServer:
        bindir = self.bindir = self.bindir or require_postgresql()
        self.user = _server_user()
        workdir = self.workdir = Path(tempfile.mkdtemp(prefix="warroom-pg-"))
        # The cluster dies with this process, however it ends (tests/support/watchdog.py):
        # SIGQUIT is PostgreSQL's immediate shutdown.
        write_owner(workdir)
        self._watchdog = Watchdog({"marks": [[str(workdir), "SIGQUIT"]],
                                   "remove": [str(workdir)]})
        pwfile = workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (workdir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        data = workdir / "data"
        made = self._run(str(bindir / "initdb"), "-D", str(data), "-U", ADMIN,
                         f"--pwfile={pwfile}", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        if made.returncode != 0:
            self._cleanup()
            raise PostgresError(f"initdb failed: {made.stderr.strip()[-800:]}")
        last = ""
        for _attempt in range(3):  # the free port may be taken before the server binds it
            self.port = free_port()
            options = (f"-h 127.0.0.1 -p {self.port} -k {workdir} -c fsync="
                       f"{'on' if self.fsync else 'off'} -c max_connections=200")
            started = self._run(str(bindir / "pg_ctl"), "-D", str(data), "-l",
                                str(workdir / "server.log"), "-w", "-t", str(START_TIMEOUT_S),
                                "-o", options, "start", timeout=START_TIMEOUT_S + 10)
            if started.returncode == 0:
                return self
            last = started.stderr.strip() + " " + self.log_tail()
            if "already in use" not in last:
                break
        self.stop()
        raise PostgresError(f"pg_ctl start failed: {last[-800:]}")

    def log_tail(self, lines: int = 10) -> str:
        if self.workdir is None:
            return ""
        try:
            text = (self.workdir / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def pid(self) -> int | None:
        """The postmaster's pid (the first line of postmaster.pid), while it runs."""
        if self.workdir is None:
            return None
        try:
            return int((self.workdir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop the server (fast shutdown, then by its pid) and delete the cluster."""
        if self.workdir is None:
            return
        pid = self.pid
        if pid is not None and self.bindir is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.workdir / "data"),
                          "-m", "fast", "-w", "-t", "20", "stop", timeout=30)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 0)
                os.kill(pid, signal.SIGQUIT)  # still there: immediate shutdown
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    time.sleep(0.05)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self._watchdog is not None:
            self._watchdog.release()
            self._watchdog = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- using it ------------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """What a client needs in its environment to authenticate (the password)."""
        return {"PGPASSWORD": self.password}

    def url(self, database: str = "postgres", user: str = ADMIN) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> Any:
        """A psycopg connection (autocommit) as the cluster's superuser."""
        import psycopg

        return psycopg.connect(self.url(database), password=self.password, autocommit=True)

    def ensure_role(self, name: str, password: str) -> str:
        """A login role with this password (made, or its password set: roles are the cluster's,
        shared by every test's database); returns ``name``."""
        from psycopg import sql

        with self.admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)))
        return name

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL (without the password)."""
        self._databases += 1
        name = name or f"t_{os.getpid()}_{self._databases}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

"""Shared fixtures: temp databases and configs, and the real `warroom` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.postgres_server import PostgresServer, require_postgresql
from tests.support.watchdog import Watchdog, reap_leftovers

REPO = Path(__file__).resolve().parent.parent
WARROOM = [sys.executable, "-m", "console.cli"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop the PostgreSQL clusters and Prometheus servers of earlier test runs that died
    without stopping them (and whose watchdog died too; tests/support/watchdog.py). Those of a
    test run still going — another checkout's, on this machine — are left alone.

    And the private tmux servers this run starts (their sockets are named ``warroom-e2e-PID-…``
    and ``warroom-sec-PID-…`` after this process) are stopped if it dies without stopping them:
    a warroom left running in one would go on forever."""
    reap_leftovers()
    pid = os.getpid()
    session.config.stash[_TMUX_WATCHDOG] = Watchdog({"marks": [
        [f"warroom-e2e-{pid}-", "SIGTERM"], [f"warroom-sec-{pid}-", "SIGTERM"]]})


def pytest_sessionfinish(session: pytest.Session) -> None:
    watchdog = session.config.stash.get(_TMUX_WATCHDOG, None)
    if watchdog is not None:
        watchdog.release()


_TMUX_WATCHDOG = pytest.StashKey[Watchdog]()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                   ) -> None:
    """No test reads or writes the real user dirs or picks up a stray ./warroom.toml."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("WARROOM_DB", raising=False)
    monkeypatch.delenv("WARROOM_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def _registered_secrets_restored() -> Iterator[None]:
    """Secrets a test registers for scrubbing are forgotten after it: the registry lives for the
    process, and one test's token must not scrub another test's output."""
    from adapters import secrets

    before = secrets.registered()
    yield
    secrets.forget_all()
    secrets.register(before)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run_warroom(tmp_path: Path) -> Callable[..., Result]:
    """Run the real `warroom` command in a subprocess, in tmp_path, with a 60 s bound."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        proc = subprocess.run(
            [*WARROOM, *args], capture_output=True, text=True, timeout=60,
            cwd=cwd or tmp_path, env=full_env,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


# --- the record's two engines --------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL cluster for the run, started on first use (skipped when the
    server is not installed; a failure under ``CI=true``)."""
    require_postgresql()
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty database of its own; its password is in ``PGPASSWORD`` (as a deployment
    would have it), never in the URL."""
    for name, value in postgres_server.env.items():
        monkeypatch.setenv(name, value)
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's record lives: an SQLite file, then (the same test again) a PostgreSQL
    database. Open it with ``console.store.open_store``."""
    if request.param == "sqlite":
        return tmp_path / "w.db"
    return str(request.getfixturevalue("pg_url"))

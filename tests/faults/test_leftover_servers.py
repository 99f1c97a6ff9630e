"""A test run killed with SIGKILL leaves no server behind (tests/support/watchdog.py).

The report: a SIGKILLed pytest left its PostgreSQL cluster running (``pg_ctl`` gives the
postmaster a session of its own, so it outlives the run, and the next run's cluster piles on top).
Here a process that starts servers as the tests do — the throwaway PostgreSQL cluster, a real
Prometheus, any process with a mark — is killed with SIGKILL; each server must be gone, and its
temp dir deleted, within a deadline. Then the second guard: with the watchdogs off (as when they
were killed too), the next run's start reaps what a dead run left, and leaves alone what a live
run owns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.postgres_server import find_bindir
from tests.support.prometheus_server import find_prometheus
from tests.support.watchdog import process_start, processes_marked, reap_leftovers, write_owner

#: How long a server may take to go once its test process is dead (a loaded 2-core machine).
GONE_WITHIN_S = 30.0

#: A test process: starts what ``argv[1]`` names, prints where it is, then waits to be killed.
STARTER = r"""
import json, sys, time
from pathlib import Path
from tests.support.watchdog import Watchdog

started = {}
if "postgres" in sys.argv[1]:
    from tests.support.postgres_server import PostgresServer
    pg = PostgresServer().start()
    started["postgres"] = {"pid": pg.pid, "dir": str(pg.workdir)}
if "prometheus" in sys.argv[1]:
    from tests.support.prometheus_server import PrometheusServer
    prom = PrometheusServer().start()
    started["prometheus"] = {"pid": prom.pid, "dir": str(prom.workdir)}
if "marked" in sys.argv[1]:
    import subprocess
    mark = sys.argv[2]
    dog = Watchdog({"marks": [[mark, "SIGTERM"]]})
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", mark],
                             start_new_session=True)
    started["marked"] = {"pid": child.pid, "dir": None}
print(json.dumps(started), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pid: int, directory: str | None) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while _alive(pid) or (directory is not None and Path(directory).exists()):
        assert time.monotonic() < deadline, (
            f"pid {pid} alive: {_alive(pid)}, {directory} exists: "
            f"{directory is not None and Path(directory).exists()}")
        time.sleep(0.1)


@pytest.fixture
def start_test_process() -> Iterator[Any]:
    """Run STARTER as a separate test process; yield a function returning (process, started)."""
    processes: list[subprocess.Popen[str]] = []

    def start(what: str, *args: str, watchdog: bool = True) -> tuple[subprocess.Popen[str],
                                                                     dict[str, Any]]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if not watchdog:
            env["WARROOM_TEST_NO_WATCHDOG"] = "1"
        proc = subprocess.Popen([sys.executable, "-c", STARTER, what, *args], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # bounded: the starters' own start deadlines (≤ 70 s)
        assert line, proc.stderr.read() if proc.stderr else ""
        return proc, json.loads(line)

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _servers() -> str:
    found = [name for name, there in (("postgres", find_bindir() is not None),
                                      ("prometheus", find_prometheus() is not None)) if there]
    if not found:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("neither PostgreSQL nor Prometheus is installed and CI=true",
                        pytrace=False)
        pytest.skip("neither PostgreSQL nor Prometheus is installed: no server to leave behind")
    return ",".join(found)


def test_the_servers_of_a_sigkilled_test_process_are_stopped_and_deleted(
    start_test_process: Any,
) -> None:
    what = _servers()
    mark = f"warroom-watchdog-test-{uuid.uuid4().hex}"
    proc, started = start_test_process(f"{what},marked", mark)
    assert set(started) == {*what.split(","), "marked"}, started
    for server in started.values():
        assert _alive(server["pid"]), started
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for server in started.values():
        _wait_gone(server["pid"], server["dir"])
    assert not processes_marked(mark)


def test_a_run_whose_watchdog_died_too_is_reaped_at_the_next_start(
    start_test_process: Any, tmp_path: Path
) -> None:
    what = _servers()
    proc, started = start_test_process(what, watchdog=False)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for server in started.values():  # nothing stopped them
        assert _alive(server["pid"]) and Path(server["dir"]).is_dir(), started
    # a server dir of a live test run (this one) is not touched
    mine = tmp_path / "warroom-prometheus-alive"
    mine.mkdir()
    write_owner(mine)
    assert (mine / "owner").read_text().split() == [str(os.getpid()),
                                                    str(process_start(os.getpid()))]
    reap_leftovers(tmp_path)
    assert mine.is_dir()
    reaped = reap_leftovers()  # what the next run's session start does
    for server in started.values():
        assert Path(server["dir"]) in reaped, (reaped, started)
        _wait_gone(server["pid"], server["dir"])

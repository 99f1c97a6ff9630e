"""The real ``warroom serve`` in a subprocess, for tests: started on a free port, its link read
from what it prints, stopped with SIGTERM (as Ctrl+C or a service manager would).

A watchdog stops it if the test process dies (tests/support/watchdog.py): its command line
names the test's own temp dir (``--db`` or ``--config`` there), which is the mark.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO, WARROOM
from tests.support.watchdog import Watchdog

LINK = re.compile(r"^  Link: (http://\S+/)$")
START_TIMEOUT_S = 60.0


class ServeProcess:
    """``warroom serve ID`` running; :attr:`link` is the URL it printed (with the token)."""

    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None = None
                 ) -> None:
        self.workdir = workdir
        self.stderr_path = workdir / f"serve-{time.monotonic_ns()}.err"
        self._stderr = self.stderr_path.open("wb")
        self._watchdog = Watchdog({"marks": [[str(workdir), "SIGTERM"]]})
        self.process = subprocess.Popen(
            [*WARROOM, "serve", *args], cwd=workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.printed: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.link = self._wait_for_link()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _wait_for_link(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self.process.wait(timeout=10)
                raise AssertionError(f"warroom serve exited ({self.process.returncode}): "
                                     f"{self.stderr()}")
            self.printed.append(line)
            match = LINK.match(line)
            if match:
                return match.group(1)
        raise AssertionError(f"warroom serve printed no link in time: {self.printed}")

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """The pids of the `warroom watch` processes this server runs now."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[-1].split()[1])
            if parent == self.process.pid and b"watch" in cmdline:
                found.append(int(entry.name))
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
        self._watchdog.release()
        return self.process.returncode


def alive(pid: int) -> bool:
    """``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@contextmanager
def serving(args: list[str], workdir: Path, env: dict[str, str] | None = None
            ) -> Iterator[ServeProcess]:
    server = ServeProcess(args, workdir, env)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def held_open(location: Path | str) -> Iterator[None]:
    """An SQLite record held open by a connection of this process, as a commander's console
    holds its incident: its -wal and -shm exist, which a watcher needs (it never creates them).
    Nothing is written. A PostgreSQL location needs nothing."""
    if not isinstance(location, Path):
        yield
        return
    connection = sqlite3.connect(location)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield
    finally:
        connection.close()

"""Servers a test run starts die with it, even when the run itself is SIGKILLed.

A test's PostgreSQL cluster (``pg_ctl`` puts the postmaster in a session of its own), its
Prometheus (started in a new session, so a Ctrl-C reaches the test first) and its private tmux
server outlive a pytest that is killed with SIGKILL: nothing in the dead process runs its
``finally``. Two guards, each enough on its own:

- **A watchdog per server** (:class:`Watchdog`): a small process in a session of its own that
  holds the read end of a pipe whose write end only the test process has. When the test process
  ends in any way, the kernel closes the write end; the watchdog reads end-of-file and stops every
  process whose command line names the server's unique mark (its temp dir, or its tmux socket),
  then deletes the server's directories. A server stopped normally tells its watchdog
  (:meth:`Watchdog.release`), which then exits without touching anything.
- **Leftovers reaped at session start** (:func:`reap_leftovers`), for a watchdog that was killed
  too (``kill -9`` of every process): each server's temp dir carries an ``owner`` file (the test
  process's pid and start time); a dir whose owner no longer runs is stopped and deleted the same
  way. Dirs of a live owner — another engineer's test run on the same machine — are left alone.

This module is also the watchdog's program (``python -I watchdog.py``: the standard library only,
no project import, so it starts in a few milliseconds).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

#: The file in a server's temp dir that names the test process owning it.
OWNER_FILE = "owner"
#: Temp dirs of test servers that :func:`reap_leftovers` may stop and delete.
REAPED_PREFIXES = ("warroom-pg-", "warroom-prometheus-", "warroom-chromium-")
#: How long a stopped server may take to go before it is SIGKILLed.
GRACE_S = 10.0
#: A mark must be this long (a temp dir path, a tmux socket with a random part): a short one
#: could match someone else's process.
MIN_MARK = 16


# --- which processes, and who owns a server ---------------------------------------------------


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, /proc/PID/stat field 22), or None when
    it does not run. A pid and its start time name one process, even once pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def write_owner(directory: Path) -> None:
    """Mark ``directory`` as this process's (read back by :func:`reap_leftovers`)."""
    pid = os.getpid()
    (directory / OWNER_FILE).write_text(f"{pid} {process_start(pid)}\n")


def owner_alive(directory: Path) -> bool | None:
    """Whether the test process that made ``directory`` still runs; None when unknown (no owner
    file: made by older code, or the directory is being made right now)."""
    try:
        pid_text, start = (directory / OWNER_FILE).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return process_start(pid) == start


def processes_marked(mark: str) -> list[int]:
    """Pids (not this process) whose command line contains ``mark``."""
    if len(mark) < MIN_MARK:
        raise ValueError(f"mark {mark!r} is too short to name a test server")
    needle = mark.encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def stop_marked(mark: str, signum: int = signal.SIGTERM, grace_s: float = GRACE_S) -> list[int]:
    """Send ``signum`` to every process marked ``mark``; SIGKILL those still there after
    ``grace_s``. Returns the pids signalled."""
    pids = processes_marked(mark)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    deadline = time.monotonic() + grace_s
    remaining = pids
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = [pid for pid in remaining if _running(pid)]
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie of ours is gone for every purpose here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def undo(spec: dict[str, object]) -> None:
    """Do what a watchdog does when its test process is gone: stop the marked processes, then
    delete the directories. ``spec``: ``{"marks": [[mark, signal name], ...], "remove": [...]}``.
    """
    for mark, signame in spec.get("marks", []):  # type: ignore[attr-defined]
        with contextlib.suppress(ValueError, AttributeError):  # one bad mark spares the rest
            stop_marked(str(mark), getattr(signal, str(signame)))
    for path in spec.get("remove", []):  # type: ignore[attr-defined]
        shutil.rmtree(str(path), ignore_errors=True)


# --- the watchdog, from the test process's side -------------------------------------------------


class Watchdog:
    """A process that undoes ``spec`` (see :func:`undo`) when this process ends without
    :meth:`release`. ``update`` replaces the spec (a server whose mark is known later)."""

    def __init__(self, spec: dict[str, object]) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        if os.environ.get("WARROOM_TEST_NO_WATCHDOG") == "1":  # the test of the reaper
            return
        self._process = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", start_new_session=True,  # a signal to the test's process group spares it
        )
        self.update(spec)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def update(self, spec: dict[str, object]) -> None:
        self._send(json.dumps(spec))

    def release(self) -> None:
        """The server was stopped here: the watchdog exits without acting."""
        process = self._process
        if process is None:
            return
        self._send("release")
        self._process = None
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def _send(self, line: str) -> None:
        if self._process is None or self._process.stdin is None:
            return
        with contextlib.suppress(OSError):
            self._process.stdin.write(line.encode() + b"\n")
            self._process.stdin.flush()


def reap_leftovers(tmp: Path | None = None, prefixes: Iterable[str] = REAPED_PREFIXES
                   ) -> list[Path]:
    """Stop and delete the test servers of test processes that no longer run (their watchdog
    died with them). Returns the directories reaped."""
    root = tmp or Path(tempfile.gettempdir())
    reaped: list[Path] = []
    for directory in root.iterdir():
        if not directory.name.startswith(tuple(prefixes)) or not directory.is_dir():
            continue
        if owner_alive(directory) is not False:
            continue
        signum = signal.SIGQUIT if directory.name.startswith("warroom-pg-") else signal.SIGTERM
        stop_marked(str(directory), signum)
        shutil.rmtree(directory, ignore_errors=True)
        reaped.append(directory)
    return reaped


# --- the watchdog's own program -------------------------------------------------------------------


def _watch() -> int:
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # only the pipe's end ends it
    spec: dict[str, object] = {}
    for raw in sys.stdin.buffer:
        line = raw.decode().strip()
        if line == "release":
            return 0
        with contextlib.suppress(ValueError):
            spec = json.loads(line)
    undo(spec)  # end of file without "release": the test process is gone
    return 0


if __name__ == "__main__":
    sys.exit(_watch())

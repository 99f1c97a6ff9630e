"""Two commanders racing: `warroom open` twice at once on one incident; exactly one commands.

Each run declares a fresh incident, then starts two real ``warroom open`` processes at the same
moment, each on its own pseudo-terminal (the console is a full-screen app). Exactly one must take
command: it records ``console_opened`` and holds the lease. The other must exit 2, before it takes
its terminal, with one line saying who holds the incident (user and the winner's pid) and how to
take over or watch. Then the winner is told to quit (``q``), and lets go of the lease.

``make test`` runs 3 races, ``make faults`` 30.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.cli import os_user
from console.config import Config
from console.model import Kind
from console.policy import declaration
from console.store import Store
from tests.conftest import REPO
from tests.faults.conftest import LONG, Tally

RUNS = 30 if LONG else 3
START_DEADLINE_S = 60.0


@dataclass
class Console:
    """One `warroom open` on its own pseudo-terminal."""

    proc: subprocess.Popen[bytes]
    master: int
    drain: threading.Thread

    def quit(self) -> int:
        """Press q; if it has not exited within the deadline, stop it (it is our process)."""
        with contextlib.suppress(OSError):
            os.write(self.master, b"q")
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            os.close(self.master)
        self.drain.join(timeout=5)


def start_console(db: Path, incident: int, cwd: Path) -> Console:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color",
           "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "open", str(incident), "--db", str(db)],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE, cwd=cwd, env=env,
        start_new_session=True,
    )
    os.close(slave)

    def drain() -> None:  # the console's output must go somewhere, or it blocks on a full pty
        while True:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return Console(proc, master, thread)


def _opened(db: Path, incident: int) -> list[dict[str, object]]:
    with Store(db, readonly=True) as store:
        return [e.payload for e in store.events(incident) if e.kind == Kind.CONSOLE_OPENED]


@pytest.mark.parametrize("run", range(RUNS))
def test_exactly_one_of_two_racing_commanders_takes_command(tmp_path: Path, run: int,
                                                            tally: Tally) -> None:
    db = tmp_path / "w.db"
    user = os_user()
    payload = declaration(Config(), title="race", priority="P1", category="incident",
                          service="svc", from_version="v1", to_version="v2", bypass_specs=[],
                          affects=[], commander=user)
    with Store(db) as store:
        incident = store.create_incident(user, payload)[0].incident_id
    consoles = [start_console(db, incident, tmp_path) for _ in range(2)]
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            finished = [c for c in consoles if c.proc.poll() is not None]
            if finished and _opened(db, incident):
                break
            time.sleep(0.05)
        finished = [c for c in consoles if c.proc.poll() is not None]
        running = [c for c in consoles if c.proc.poll() is None]
        opened = _opened(db, incident)
        tally.add("commander races run")
        doubled = len(opened) != 1 or len(running) != 1
        tally.bad_outcome("races where not exactly one commanded", int(doubled))
        assert len(finished) == 1 and len(running) == 1, \
            [c.proc.returncode for c in consoles]
        assert len(opened) == 1, opened
        winner, loser = running[0], finished[0]
        assert opened[0]["pid"] == winner.proc.pid
        assert loser.proc.returncode == 2
        assert loser.proc.stderr is not None
        err = loser.proc.stderr.read().decode()
        lines = err.strip().splitlines()
        told = (len(lines) == 1 and f"is commanded by {user} (pid {winner.proc.pid}" in lines[0]
                and "--take-over" in lines[0])
        tally.bad_outcome("races where the loser was not told who holds it", int(not told))
        assert told, err
        assert winner.quit() == 0
        with Store(db, readonly=True) as store:
            assert store.verify(incident)[1] is None
    finally:
        for console in consoles:
            console.close()

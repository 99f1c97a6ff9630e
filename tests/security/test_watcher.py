"""A watcher cannot write (issue 12, Deliver 3), read from the kernel's own list of the real
``warroom watch`` process's open files (/proc/PID/fd, the access mode in /proc/PID/fdinfo).

The watcher runs as root here — the account that may write anything — so only the way the
record is opened can keep its handles read-only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.sandbox import landlock_abi

from .support import REPO

pytestmark = pytest.mark.skipif(not Path("/proc/self/fdinfo").exists(),
                                reason="needs /proc/PID/fdinfo (Linux) to list open files")

WARROOM = [sys.executable, "-m", "console.cli"]


def open_files(pid: int) -> dict[str, str]:
    """Every regular file the process holds open → its access mode (RDONLY / WRONLY / RDWR)."""
    files: dict[str, str] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as info:
                flags = int(info.read().split(b"flags:")[1].split()[0], 8)
        except (OSError, IndexError):
            continue  # closed meanwhile
        if not target.startswith("/") or target.startswith(("/dev/", "/proc/")):
            continue  # pipes, sockets, the terminal, anon inodes
        mode = {os.O_RDONLY: "RDONLY", os.O_WRONLY: "WRONLY"}.get(flags & os.O_ACCMODE, "RDWR")
        files[f"{target} (fd {fd})"] = mode
    return files


def descendant(pid: int, needle: str) -> int | None:
    """The process under ``pid`` whose command line contains ``needle``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    todo = list(children.get(pid, []))
    while todo:
        candidate = todo.pop()
        try:
            cmdline = Path(f"/proc/{candidate}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmdline:
            return candidate
        todo += children.get(candidate, [])
    return None


class Session:
    def __init__(self, socket: str, cwd: Path, env: dict[str, str]) -> None:
        self.socket, self.cwd, self.env = socket, cwd, env
        self.name = f"sec-{uuid.uuid4().hex[:8]}"

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=10).stdout

    def start(self, argv: list[str]) -> None:
        import shlex

        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s",
                        self.name, "-x", "100", "-y", "30", "-c", str(self.cwd),
                        f"env {assigns} {shlex.join(argv)}; echo \"exited with $?\"; sleep 60"],
                       check=True, timeout=10, capture_output=True)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.tmux("capture-pane", "-p", "-t", self.name)
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"still waiting for {text!r}:\n{screen}")
            time.sleep(0.1)

    def pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", self.name, "#{pane_pid}").strip())


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[tuple[list[Session], dict[str, str]]]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("tmux is missing and CI=true", pytrace=False)
        pytest.skip("tmux is not installed: this case runs the real warroom watch")
    env = {"PYTHONPATH": str(REPO), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "TERM": "screen-256color",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    made: list[Session] = []
    try:
        yield made, env
    finally:
        for session in made:
            session.tmux("kill-session", "-t", session.name)


@pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock: a watcher that "
                    "may write the directory is refused instead (tested below)")
def test_every_file_a_real_watcher_holds_open_is_read_only(
        tmp_path: Path, sessions: tuple[list[Session], dict[str, str]]) -> None:
    made, env = sessions
    socket = f"warroom-sec-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    db = tmp_path / "w.db"
    commander = Session(socket, tmp_path, env)
    made.append(commander)
    commander.start([*WARROOM, "demo", "--fast", "--db", str(db)])
    commander.wait_for("COMMANDER", 30)
    watcher = Session(socket, tmp_path, env)
    made.append(watcher)
    watcher.start([*WARROOM, "watch", "1", "--db", str(db)])
    watcher.wait_for("WATCHING", 30)
    watcher.wait_for("Console opened by", 20)  # it has read the record
    pid = descendant(watcher.pid(), "watch")
    assert pid is not None
    files = open_files(pid)
    record = {name: mode for name, mode in files.items() if name.startswith(str(db))}
    names = {name.split(" (fd")[0] for name in record}
    assert names == {str(db), f"{db}-wal", f"{db}-shm"}, files
    assert set(files.values()) == {"RDONLY"}, files
    # ...while the commander, beside it, holds the same files read-write
    commander_pid = descendant(commander.pid(), "demo")
    assert commander_pid is not None
    assert "RDWR" in open_files(commander_pid).values()


def test_a_watcher_never_creates_the_wal_and_says_what_access_would(
        tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    declared = subprocess.run(
        [*WARROOM, "declare", "--db", str(db), "--title", "t", "--priority", "P1", "--category",
         "incident", "--service", "api", "--from-version", "v1", "--to-version", "v2"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert declared.returncode == 0, declared.stderr
    assert not Path(f"{db}-wal").exists()  # the declaring process closed: no console has it
    watched = subprocess.run([*WARROOM, "watch", "1", "--db", str(db)], capture_output=True,
                             text=True, env=env, timeout=60, cwd=tmp_path,
                             stdin=subprocess.DEVNULL)
    assert watched.returncode == 2
    assert "a watcher never creates them" in watched.stderr
    assert "write access to" in watched.stderr and "chmod 2770" in watched.stderr
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    # the one-shot readers still work as before (they may create them, as SQLite does)
    verified = subprocess.run([*WARROOM, "verify", "1", "--db", str(db)], capture_output=True,
                              text=True, env=env, timeout=60, cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr

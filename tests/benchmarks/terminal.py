"""A real program under a real pseudo-terminal, its screen read by a VT emulator (pyte).

This is how the benchmarks meet ``warroom`` as a user does: the process gets a pty of a fixed size
(and it as its controlling terminal), writes whatever escape sequences it likes, and a VT
emulator turns them into the character grid a person would see. Keys are bytes written to the
pty's master side.

Two threads per terminal, so that reading never throttles the program: a *reader* that only
copies bytes off the pty (stamping each chunk with ``time.monotonic()`` as it arrives) and a
*parser* that feeds them to pyte and checks the conditions someone waits for. A condition that
becomes true is stamped with the arrival time of the last chunk it needed, not with the time
the parser got round to it, so pyte's own speed does not count against the program.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyte

#: A test of the screen: its lines (``rows`` strings of ``cols`` cells each).
ScreenTest = Callable[[list[str]], bool]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEYS = {"enter": b"\r", "escape": b"\x1b", "tab": b"\t", "backspace": b"\x7f"}


class Capped(Exception):
    """A wait reached its deadline; ``elapsed_s`` is a lower bound of what was measured."""

    def __init__(self, what: str, elapsed_s: float, screen: list[str]) -> None:
        self.what = what
        self.elapsed_s = elapsed_s
        self.screen = screen
        super().__init__(f"{what}: not seen within {elapsed_s:.1f} s")


class ProcessGone(Exception):
    """The program exited while something was still awaited."""


@dataclass
class _Waiter:
    test: ScreenTest
    done: threading.Event = field(default_factory=threading.Event)
    seen_at: float | None = None


class Terminal:
    """One program on a pty of ``cols`` × ``rows``, read by pyte."""

    def __init__(self, argv: Sequence[str], *, cols: int = 120, rows: int = 36,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.cols = cols
        self.rows = rows
        self.env = dict(env if env is not None else os.environ)
        self.env.setdefault("TERM", "xterm-256color")
        self.env.setdefault("COLORTERM", "truecolor")
        self.cwd = cwd
        self.started_at = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._chunks: collections.deque[tuple[float, bytes]] = collections.deque()
        self._arrived = threading.Condition()
        self._lock = threading.Lock()  # guards the screen and the waiters
        self._waiters: list[_Waiter] = []
        self._closed = threading.Event()
        self._master = -1
        self._threads: list[threading.Thread] = []
        self.bytes_read = 0

    # --- life ------------------------------------------------------------------------------------

    def start(self) -> Terminal:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.cols, 0, 0))
        self._master = master

        def controlling_tty() -> None:  # runs in the child after setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.started_at = time.monotonic()
        try:
            self.process = subprocess.Popen(
                self.argv, stdin=slave, stdout=slave, stderr=slave, env=self.env,
                cwd=self.cwd, start_new_session=True, preexec_fn=controlling_tty,
                close_fds=True)
        finally:
            os.close(slave)
        for target, name in ((self._read_loop, "pty-reader"), (self._parse_loop, "pty-parser")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """End the program (SIGTERM, then SIGKILL to its process group) and the threads."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout)
        self._closed.set()
        with self._arrived:
            self._arrived.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        if self._master >= 0:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = -1

    def __enter__(self) -> Terminal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- reading ---------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        while not self._closed.is_set():
            try:
                data = os.read(self._master, 1 << 16)
            except OSError:  # EIO: the program closed its side
                data = b""
            now = time.monotonic()
            with self._arrived:
                if not data:
                    self._closed.set()
                else:
                    self._chunks.append((now, data))
                self._arrived.notify_all()
            if not data:
                return

    def _parse_loop(self) -> None:
        while True:
            with self._arrived:
                while not self._chunks and not self._closed.is_set():
                    self._arrived.wait(0.5)
                batch = list(self._chunks)
                self._chunks.clear()
                closed = self._closed.is_set()
            if batch:
                with self._lock:
                    for _, data in batch:
                        self._stream.feed(data)
                        self.bytes_read += len(data)
                    self._check(batch[-1][0])
            if closed and not batch:
                with self._lock:
                    for waiter in self._waiters:
                        waiter.done.set()
                return

    def _check(self, arrived_at: float) -> None:
        if not self._waiters:
            return
        lines = list(self._screen.display)
        for waiter in list(self._waiters):
            if waiter.test(lines):
                waiter.seen_at = arrived_at
                waiter.done.set()
                self._waiters.remove(waiter)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._screen.display)

    def text(self) -> str:
        return "\n".join(self.lines())

    def watch(self, test: ScreenTest) -> _Waiter:
        """Start watching for ``test`` now (before sending the keys that should cause it)."""
        waiter = _Waiter(test)
        with self._lock:
            if test(list(self._screen.display)):
                waiter.seen_at = time.monotonic()
                waiter.done.set()
            else:
                self._waiters.append(waiter)
        return waiter

    def wait(self, waiter: _Waiter, deadline: float, what: str, since: float | None = None
             ) -> float:
        """The monotonic time at which ``waiter``'s test first held; :class:`Capped` at
        ``deadline`` (a monotonic time) with the time elapsed ``since`` then (default: the
        program's start), :class:`ProcessGone` if the program ended first."""
        waiter.done.wait(max(0.0, deadline - time.monotonic()))
        if waiter.seen_at is not None:
            return waiter.seen_at
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if not self.alive() or self._closed.is_set():
            raise ProcessGone(f"{what}: {self.argv[0]} exited (status "
                              f"{self.process.poll() if self.process else '?'}); screen:\n"
                              + self.text())
        start = self.started_at if since is None else since
        raise Capped(what, time.monotonic() - start, self.lines())

    def wait_for(self, test: ScreenTest, timeout: float, what: str) -> float:
        return self.wait(self.watch(test), time.monotonic() + timeout, what)

    # --- keys ------------------------------------------------------------------------------------

    def send(self, data: str | bytes) -> float:
        """Write keys (``"n"``, ``KEYS["enter"]``, text) to the program; returns when, as
        ``time.monotonic()``."""
        raw = data.encode() if isinstance(data, str) else data
        os.write(self._master, raw)
        return time.monotonic()

    # --- /proc -----------------------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> tuple[float, float]:
        return rss_mb(self.pid)


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` so far, in seconds (from /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB (from /proc/PID/status)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


# --- screen tests --------------------------------------------------------------------------------

def shows(*texts: str) -> ScreenTest:
    """Every one of ``texts`` is somewhere on the screen."""
    return lambda lines: all(any(text in line for line in lines) for text in texts)


def titled(*titles: str) -> ScreenTest:
    """Every title appears in a pane's top border (``─ Title ─`` / ``━ Title ━``, or with more
    after it: ``─ Timeline · chain ✓ verified to #4 ─``)."""
    patterns = [re.compile(r"[─━╭┏]\s?" + re.escape(title) + r"(\s?[─━╮┓]|\s·\s)")
                for title in titles]
    return lambda lines: all(any(p.search(line) for line in lines) for p in patterns)


TIME_OF_DAY = re.compile(r"\b\d\d:\d\d:\d\d\b")


def pane_rows(lines: list[str], title: str) -> list[str]:
    """The inside lines of the pane whose top border carries ``title`` (empty if none)."""
    top = re.compile(r"[─━]\s?" + re.escape(title) + r"(\s?[─━]|\s·\s)")
    for index, line in enumerate(lines):
        match = top.search(line)
        if match is None:
            continue
        left = max(line.rfind(corner, 0, match.start() + 1) for corner in "╭┏")
        rows = []
        for inner in lines[index + 1:]:
            if left < 0 or len(inner) <= left or inner[left] not in "│┃":
                break
            rows.append(inner[left + 1:])
        return rows
    return []


def timeline_rows(title: str = "Timeline") -> ScreenTest:
    """The timeline pane shows at least one event row (one that starts with a time of day)."""
    return lambda lines: any(TIME_OF_DAY.search(row) for row in pane_rows(lines, title))


def in_pane(title: str, text: str) -> ScreenTest:
    """``text`` inside the pane titled ``title`` (not in a dialog elsewhere on the screen)."""
    return lambda lines: any(text in row for row in pane_rows(lines, title))


def hidden(text: str) -> ScreenTest:
    """``text`` is nowhere on the screen (a dialog has closed)."""
    return lambda lines: not any(text in line for line in lines)


def every(*tests: ScreenTest) -> ScreenTest:
    return lambda lines: all(test(lines) for test in tests)

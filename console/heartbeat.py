"""The commander's lease heartbeat, on its own thread and its own database connection.

A commander holds an incident's lease while its heartbeat is fresh (``console.launch``:
``LEASE_STALE_S``). The heartbeat must never wait for anything else the console does: not for an
adapter call that trickles its answer for the whole of its deadline, not for the guardrail poll,
not for the screen. So it is not part of the poll: :class:`Heartbeat` runs a daemon thread that
refreshes the lease every ``interval_s`` through a connection of its own (the console's other
connections may be inside a long read or waiting for a lock), and says so when the lease was
taken over (``on_lost``) or when the database cannot be written for a while (``on_trouble``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from console.store import Lease, RecordStore, open_store

#: How often the lease is refreshed; well inside launch.LEASE_STALE_S (30 s).
HEARTBEAT_S = 5.0


class Heartbeat:
    """Refreshes one lease every ``interval_s`` on its own thread until stopped or lost."""

    def __init__(self, db_path: Path | str, lease: Lease, *, interval_s: float | None = None,
                 on_lost: Callable[[], None] | None = None,
                 on_trouble: Callable[[Exception | None], None] | None = None,
                 group: str | None = None, password_env: str | None = None) -> None:
        self.db_path = db_path
        self.password_env = password_env
        self.lease = lease
        self.interval_s = HEARTBEAT_S if interval_s is None else interval_s
        self.on_lost = on_lost
        self.on_trouble = on_trouble
        self.group = group
        #: How many heartbeats landed (tests and the bench read it).
        self.beats = 0
        self.lost = False
        self._store: RecordStore | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trouble = False

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=15)
        self._close_store()

    def beat(self) -> bool:
        """One heartbeat now; False once the lease is gone (taken over). A database that
        cannot be written is retried at the next beat: only a take-over loses command."""
        try:
            if self._store is None:
                self._store = open_store(self.db_path, group=self.group,
                                         password_env=self.password_env)
            held = self._store.heartbeat(self.lease)
        except Exception as error:  # locked past the busy timeout, full disk, read-only file
            self._close_store()
            if not self._trouble:
                self._trouble = True
                if self.on_trouble is not None:
                    self.on_trouble(error)
            return True
        if self._trouble:
            self._trouble = False
            if self.on_trouble is not None:
                self.on_trouble(None)
        if held:
            self.beats += 1
            return True
        self.lost = True
        return False

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self.beat():
                if self.on_lost is not None:
                    self.on_lost()
                return

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

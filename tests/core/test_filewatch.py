"""An idle watcher sleeps: the SQLite change feed waits on the kernel's word that the record was
written (console/filewatch.py, inotify) instead of asking ``PRAGMA data_version`` ten times a
second, and is still woken by another connection's commit at once, and by ``close()``."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from console.filewatch import file_watch
from console.model import Kind
from console.store import Store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="inotify is Linux only (elsewhere the feed polls)")

#: Far longer than any wake-up should take, far shorter than the feed's patience.
WOKEN_WITHIN_S = 2.5


def _record(tmp_path: Path) -> tuple[Store, int]:
    writer = Store(tmp_path / "w.db")
    incident = writer.create_incident("alice", {"title": "t"})[0].incident_id
    return writer, incident


class _Waiter(threading.Thread):
    """One ``feed.wait(timeout)`` in a thread of its own: its answer and how long it took."""

    def __init__(self, wait: object, timeout: float) -> None:
        super().__init__(daemon=True)
        self._wait = wait
        self._timeout = timeout
        self.answer: bool | None = None
        self.took = 0.0
        self.started_waiting = threading.Event()

    def run(self) -> None:
        began = time.monotonic()
        self.started_waiting.set()
        self.answer = self._wait(self._timeout)  # type: ignore[operator]
        self.took = time.monotonic() - began


def test_an_idle_feed_does_not_ask_sqlite_over_and_over(tmp_path: Path) -> None:
    writer, incident = _record(tmp_path)
    with writer, Store(tmp_path / "w.db", readonly=True) as reader:
        feed = reader.change_feed(incident)
        try:
            assert feed.patience > 1.0  # the console's loop lets it sleep
            assert feed.wait(0.05)  # nothing read yet
            feed.mark()
            asked = 0
            real = reader.data_version

            def counted() -> int:
                nonlocal asked
                asked += 1
                return real()

            reader.data_version = counted  # type: ignore[method-assign]
            assert not feed.wait(1.0)
            assert asked <= 2  # once at the end (polling every 0.1 s asked ten times)
        finally:
            feed.close()


def test_a_commit_wakes_a_long_wait_at_once(tmp_path: Path) -> None:
    writer, incident = _record(tmp_path)
    with writer, Store(tmp_path / "w.db", readonly=True) as reader:
        feed = reader.change_feed(incident)
        try:
            assert feed.wait(0.05)
            feed.mark()
            waiter = _Waiter(feed.wait, 30.0)
            waiter.start()
            waiter.started_waiting.wait(5)
            writer.append(incident, Kind.NOTE, "bob", {"text": "news"})
            waiter.join(30.0)
            assert waiter.answer is True
            assert waiter.took < WOKEN_WITHIN_S
        finally:
            feed.close()


def test_close_wakes_a_waiter(tmp_path: Path) -> None:
    writer, incident = _record(tmp_path)
    with writer, Store(tmp_path / "w.db", readonly=True) as reader:
        feed = reader.change_feed(incident)
        assert feed.wait(0.05)
        feed.mark()
        waiter = _Waiter(feed.wait, 30.0)
        waiter.start()
        waiter.started_waiting.wait(5)
        feed.close()
        waiter.join(30.0)
        assert not waiter.is_alive()
        assert waiter.took < WOKEN_WITHIN_S


def test_only_the_named_files_count(tmp_path: Path) -> None:
    (tmp_path / "other.db-wal").write_bytes(b"x")  # another record in the same directory
    watch = file_watch(tmp_path, ("w.db", "w.db-wal"))
    assert watch is not None
    try:
        with (tmp_path / "other.db-wal").open("ab") as other:
            other.write(b"y")  # a commit to the other record
        # Not even woken: a wait that nothing wakes lasts its whole timeout.
        began = time.monotonic()
        assert not watch.wait(0.3)
        assert time.monotonic() - began >= 0.3
        (tmp_path / "w.db-wal").write_bytes(b"x")  # made anew: the directory is watched
        assert watch.wait(WOKEN_WITHIN_S)
        with (tmp_path / "w.db-wal").open("ab") as wal:
            wal.write(b"y")  # written to
        assert watch.wait(WOKEN_WITHIN_S)
    finally:
        watch.close()
    assert not watch.wait(0.01)  # closed: says nothing more


def test_a_file_deleted_and_made_again_is_still_watched(tmp_path: Path) -> None:
    wal = tmp_path / "w.db-wal"
    wal.write_bytes(b"x")
    watch = file_watch(tmp_path, ("w.db", "w.db-wal"))
    assert watch is not None
    try:
        with wal.open("ab") as file:
            file.write(b"y")
        assert watch.wait(WOKEN_WITHIN_S)
        wal.unlink()  # the last connection closed: SQLite removed its -wal
        assert not watch.wait(0.2)
        wal.write_bytes(b"x")  # a later commander made it again
        assert watch.wait(WOKEN_WITHIN_S)
        while watch.wait(0.05):
            pass  # what the creation itself reported
        with wal.open("ab") as file:
            file.write(b"z")  # written to: the new file is watched too
        assert watch.wait(WOKEN_WITHIN_S)
    finally:
        watch.close()

"""Storage faults: a full disk, a read-only filesystem, a database locked past the busy timeout,
a database without its ``-wal`` file. Each is a clear error, never a lost or half-written event.

The report: on a full filesystem ``warroom note`` and ``declare`` ended in an internal error
("cannot rollback - no transaction is active"); on a read-only database ``note`` and ``open``
ended in "attempt to write a readonly database"; with the database locked while the traffic API
applied an advance, the deploy system ended at 1 % with no outcome ever recorded.

Here, on a real filesystem made for the test (a 1 MiB tmpfs: root is needed to mount it, as CI
is; elsewhere these tests say why they are skipped):

- the real command exits 2 with one line naming the file, what happened and what to do, and
  writes nothing; once the fault is gone the same command works and the chain verifies;
- the real engine, whose database fails between an adapter call and the record of its outcome,
  refuses nothing silently: the action fails with that line, and the next poll that can write
  settles the request from what the deploy API reports, so the record's weight is the API's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console import store as store_module
from console.model import Kind
from console.store import Store, StoreError
from tests.conftest import REPO
from tests.faults.conftest import Tally
from tests.faults.fakes import FakeDeployApi
from tests.integration.engine_support import LiveIncident, make_config

#: The busy timeout of the engine tests here (the console's is 10 s).
BUSY_S = 0.3


def _mount(path: Path, *options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=1m", *options)), "tmpfs",
                    str(path)], check=True, capture_output=True)


def _remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True,
                   capture_output=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own (a disk that fills, a filesystem that goes read-only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a full disk, a read-only filesystem); "
                    "CI runs as root")
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    try:
        _mount(mount_point)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here ({error}): the storage faults need one")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, capture_output=True)


def _fill(directory: Path) -> Path:
    """Fill the filesystem to the last byte (unbuffered writes: nothing left to flush)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    assert shutil.disk_usage(directory).free < 4096
    return filler


def warroom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "console.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _declare(db: Path) -> int:
    done = warroom("declare", "--db", str(db), "--title", "storage drill", "--priority", "P1",
                   "--category", "incident", "--service", "payments", "--from-version", "v1",
                   "--to-version", "v2", cwd=db.parent.parent)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1].removeprefix("INC-"))


def _count(db: Path, incident: int) -> int:
    with Store(db, readonly=True) as store:
        return len(store.events(incident))


def _one_clear_line(done: subprocess.CompletedProcess[str], db: Path, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1, done.stderr
    assert str(db) in lines[0] and "internal error" not in lines[0], lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_a_full_disk_is_exit_2_naming_the_file_and_loses_nothing(small_fs: Path,
                                                                   tally: Tally) -> None:
    db = small_fs / "warroom.db"
    incident = _declare(db)
    warroom("note", "--db", str(db), str(incident), "before the disk filled", cwd=small_fs.parent)
    before = _count(db, incident)
    filler = _fill(small_fs)
    note = warroom("note", "--db", str(db), str(incident), "on a full disk", cwd=small_fs.parent)
    declare = warroom("declare", "--db", str(db), "--title", "t", "--priority", "P1",
                      "--category", "incident", "--service", "s", "--from-version", "v1",
                      "--to-version", "v2", cwd=small_fs.parent)
    for done in (note, declare):
        tally.add("CLI writes on a full disk")
        _one_clear_line(done, db, "disk is full", "free space")
    filler.unlink()
    assert _count(db, incident) == before  # nothing half-written
    again = warroom("note", "--db", str(db), str(incident), "after space was freed",
                    cwd=small_fs.parent)
    assert again.returncode == 0, again.stderr
    assert _count(db, incident) == before + 1
    assert warroom("verify", "--db", str(db), str(incident), cwd=small_fs.parent).returncode == 0


def test_a_read_only_filesystem_is_exit_2_and_reading_still_works(small_fs: Path,
                                                                   tally: Tally) -> None:
    db = small_fs / "warroom.db"
    incident = _declare(db)
    before = _count(db, incident)
    _remount(small_fs, "ro")
    try:
        for args in (["note", "--db", str(db), str(incident), "read-only"],
                     ["open", "--db", str(db), str(incident)]):
            done = warroom(*args, cwd=small_fs.parent)
            tally.add("CLI commands on a read-only filesystem")
            _one_clear_line(done, db, "writable")
        # what only reads still works: verify and export
        assert warroom("verify", "--db", str(db), str(incident),
                       cwd=small_fs.parent).returncode == 0
        export = warroom("export", "--db", str(db), str(incident), "--format", "json",
                         cwd=small_fs.parent)
        assert export.returncode == 0 or (export.returncode == 2 and
                                          len(export.stderr.strip().splitlines()) == 1)
    finally:
        _remount(small_fs, "rw")
    assert _count(db, incident) == before


def test_a_database_without_its_wal_on_a_read_only_filesystem(small_fs: Path) -> None:
    """After the last writer closed, SQLite removed -wal and -shm: a reader on a read-only
    filesystem cannot make them. It reads, or says what to do in one line."""
    db = small_fs / "warroom.db"
    incident = _declare(db)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    _remount(small_fs, "ro")
    try:
        for args in (["verify", "--db", str(db), str(incident)], ["list", "--db", str(db)]):
            done = warroom(*args, cwd=small_fs.parent)
            if done.returncode != 0:
                _one_clear_line(done, db)
    finally:
        _remount(small_fs, "rw")


def test_a_database_locked_past_the_busy_timeout_is_exit_2(tmp_path: Path,
                                                           tally: Tally) -> None:
    (tmp_path / "d").mkdir()
    db = tmp_path / "d" / "warroom.db"
    incident = _declare(db)
    before = _count(db, incident)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write
    try:
        done = warroom("note", "--db", str(db), str(incident), "while locked", cwd=tmp_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    tally.add("CLI writes on a database locked past the busy timeout")
    _one_clear_line(done, db, "locked", "try again")
    assert _count(db, incident) == before
    assert warroom("note", "--db", str(db), str(incident), "unlocked",
                   cwd=tmp_path).returncode == 0


# --- the engine: the database fails between an adapter call and the record of its outcome -------


def _during_the_put(api: FakeDeployApi, fault: Callable[[], None]) -> threading.Thread:
    """Apply ``fault`` as soon as the weight PUT reaches the API (which answers 1 s later)."""
    api.set_fault("slow", endpoint="set_weight", slow_s=1.0, times=1)

    def watch() -> None:
        api.wait_for(lambda: bool(api.requests_to("set_weight")), timeout=30)
        fault()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _engine_run(directory: Path, api: FakeDeployApi) -> LiveIncident:
    config = make_config(metrics={"kind": "sim"}, traffic=api.traffic(deadline_s=5.0),
                         deploy=api.deploy(), guardrails=[])
    run = LiveIncident(directory, config, "payments")
    run.prepare()
    return run


def _settled_after_the_fault(run: LiveIncident, api: FakeDeployApi, tally: Tally) -> None:
    run.poll()  # the next poll that can write settles the orphaned request
    state = run.store.state(run.id)
    outcomes = run.events(Kind.WEIGHT_SET) + run.events(Kind.WEIGHT_FAILED)
    tally.add("engine actions whose outcome met a storage fault")
    tally.bad_outcome("engine actions left without an outcome after a storage fault",
                      int(state.pending_weight is not None))
    tally.bad_outcome("console weights unequal to the deploy API's after a storage fault",
                      int(state.canary_percent != api.weight))
    assert state.pending_weight is None, run.describe()
    assert state.canary_percent == api.weight == 1, (state.canary_percent, api.weight)
    assert len(outcomes) == 1, [e.payload for e in outcomes]
    (reconciled,) = run.events(Kind.RECONCILED)
    assert reconciled.payload["outcome"] == "applied"
    assert run.store.verify(run.id)[1] is None
    # and the console goes on: the next action works
    assert run.engine.advance().kind == Kind.WEIGHT_SET and api.weight == 10


def test_a_lock_held_while_an_advance_lands_is_settled_by_the_next_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tally: Tally
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", int(BUSY_S * 1000))
    with FakeDeployApi() as api:
        run = _engine_run(tmp_path, api)
        holder = sqlite3.connect(run.store.path, isolation_level=None, check_same_thread=False)
        try:
            watcher = _during_the_put(api, lambda: holder.execute("BEGIN IMMEDIATE"))
            with pytest.raises(StoreError, match="locked") as raised:
                run.engine.advance()
            watcher.join(timeout=10)
            assert "try again" in str(raised.value) and str(run.store.path) in str(raised.value)
            assert api.weight == 1  # the deploy system moved; the record could not say so
        finally:
            with contextlib.suppress(sqlite3.Error):
                holder.execute("ROLLBACK")
            holder.close()
        try:
            _settled_after_the_fault(run, api, tally)
        finally:
            run.close()


def test_a_disk_that_fills_while_an_advance_lands_is_settled_by_the_next_poll(
    small_fs: Path, tally: Tally
) -> None:
    with FakeDeployApi() as api:
        run = _engine_run(small_fs, api)
        try:
            fillers: list[Path] = []
            watcher = _during_the_put(api, lambda: fillers.append(_fill(small_fs)))
            with pytest.raises(StoreError, match="disk is full"):
                run.engine.advance()
            watcher.join(timeout=10)
            assert api.weight == 1
            for filler in fillers:
                filler.unlink()
            _settled_after_the_fault(run, api, tally)
        finally:
            run.close()

"""The store: append-only, hash-chained, shared by processes, versioned, private by default."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from console.model import Kind, utcnow
from console.store import LeaseHeld, Store, StoreError, UnknownIncident

REPO = Path(__file__).resolve().parents[2]


def declare(store: Store, title: str = "t") -> int:
    return store.create_incident("alice", {"title": title})[0].incident_id


def tamper(path: Path, *statements: str) -> None:
    """What someone with the sqlite3 shell could do: drop the guards and edit."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_are_append_only_update")
    conn.execute("DROP TRIGGER events_are_append_only_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_incidents_are_numbered_and_chained(tmp_path: Path) -> None:
    with Store(tmp_path / "w.db") as store:
        first = declare(store)
        second = declare(store)
        assert (first, second) == (1, 2)
        a = store.append(first, Kind.NOTE, "bob", {"text": "one"})
        b = store.append(first, Kind.NOTE, "bob", {"text": "two"})
        assert b.prev_hash == a.hash
        assert store.verify(first) == (3, None)
        assert [e.kind for e in store.events(first)] == [Kind.DECLARED, Kind.NOTE, Kind.NOTE]
        assert store.events(first, after_id=a.id) == [b]


def test_events_cannot_be_updated_or_deleted(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with Store(path) as store:
        declare(store)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events")
    conn.close()


def test_verify_names_an_edited_event(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with Store(path) as store:
        incident = declare(store)
        note = store.append(incident, Kind.NOTE, "bob", {"text": "approved by phone"})
        store.append(incident, Kind.NOTE, "bob", {"text": "later"})
    tamper(path, f"UPDATE events SET payload = '{{\"text\":\"never happened\"}}' "
                 f"WHERE id = {note.id}")
    with Store(path) as store:
        _, problem = store.verify(incident)
    assert problem is not None and problem.event_id == note.id
    assert "edited" in problem.message


def test_verify_names_a_removed_event(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with Store(path) as store:
        incident = declare(store)
        removed = store.append(incident, Kind.NOTE, "bob", {"text": "x"})
        after = store.append(incident, Kind.NOTE, "bob", {"text": "y"})
    tamper(path, f"DELETE FROM events WHERE id = {removed.id}")
    with Store(path) as store:
        _, problem = store.verify(incident)
    assert problem is not None and problem.event_id == after.id
    assert "removed or inserted" in problem.message


def test_verify_names_an_inserted_event(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with Store(path) as store:
        incident = declare(store)
        before = store.append(incident, Kind.NOTE, "bob", {"text": "x"})
        store.append(incident, Kind.NOTE, "bob", {"text": "y"})
    tamper(path, f"INSERT INTO events VALUES (99, {incident}, '2026-01-01T00:00:00.000Z', "
                 f"'note_added', 'mallory', '{{}}', '{before.hash}', 'f00')")
    with Store(path) as store:
        _, problem = store.verify(incident)
    assert problem is not None
    assert problem.event_id in (99, before.id + 1)


def test_verify_notices_removed_triggers(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with Store(path) as store:
        incident = declare(store)
    tamper(path)
    with Store(path) as store:
        _, problem = store.verify(incident)
    assert problem is not None and "triggers" in problem.message


def test_file_is_private_by_default(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    old = os.umask(0o022)
    try:
        Store(path).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_file_is_group_writable_with_a_group(tmp_path: Path) -> None:
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    path = tmp_path / "w.db"
    old = os.umask(0o077)
    try:
        Store(path, group=group).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    assert path.stat().st_gid == os.getgid()


def test_unknown_group_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a group"):
        Store(tmp_path / "w.db", group="no-such-group-here")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99, newer"):
        Store(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not sqlite\n" * 100)
    with pytest.raises(StoreError, match="not a warroom database"):
        Store(path)


def test_someone_elses_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a warroom database"):
        Store(path)


def test_unknown_incident(tmp_path: Path) -> None:
    with Store(tmp_path / "w.db") as store, pytest.raises(UnknownIncident, match="INC-4"):
        store.append(4, Kind.NOTE, "bob", {"text": "x"})


def test_readonly_reader_sees_writes_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = Store(path)
    incident = declare(writer)
    reader = Store(path, readonly=True)
    version = reader.data_version()
    assert len(reader.events(incident)) == 1
    writer.append(incident, Kind.NOTE, "bob", {"text": "x"})
    assert reader.data_version() != version
    assert len(reader.events(incident)) == 2
    with pytest.raises(StoreError, match="read-only"):
        reader.append(incident, Kind.NOTE, "bob", {"text": "y"})
    raw = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        raw.execute("INSERT INTO incidents VALUES (5, 'x')")
    raw.close()
    reader.close()
    writer.close()


def test_readonly_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        Store(tmp_path / "absent.db", readonly=True)


WRITER = """
import sys
from console.store import Store
store = Store(sys.argv[1])
for n in range(int(sys.argv[3])):
    store.append(1, "note_added", sys.argv[2], {"text": f"{sys.argv[2]} {n}"})
store.close()
"""


def test_two_processes_writing_at_once_form_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    with Store(path) as store:
        declare(store)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"], env=env)
        for name in ("alpha", "beta")
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    with Store(path) as store:
        events = store.events(1)
        assert len(events) == 301
        assert {e.actor for e in events[1:]} == {"alpha", "beta"}
        assert store.verify(1) == (301, None)


def test_samples_round_trip_and_nan_becomes_null(tmp_path: Path) -> None:
    with Store(tmp_path / "w.db") as store:
        incident = declare(store)
        store.add_samples(incident, [("err/canary", 1.0, 0.5), ("err/canary", 2.0, float("nan")),
                                     ("err/baseline", 1.0, 0.1)])
        assert store.samples(incident, "err/canary") == [(1.0, 0.5), (2.0, None)]
        assert store.series_names(incident) == ["err/baseline", "err/canary"]


def test_payload_nan_is_stored_as_null(tmp_path: Path) -> None:
    with Store(tmp_path / "w.db") as store:
        incident = declare(store)
        event = store.append(incident, Kind.GUARDRAIL_CHANGED, "warroom",
                             {"name": "x", "canary": float("nan")})
        assert event.payload["canary"] is None
        assert store.verify(incident)[1] is None


def test_leases(tmp_path: Path) -> None:
    now = utcnow()
    with Store(tmp_path / "w.db") as store:
        incident = declare(store)
        mine, previous = store.acquire_lease(incident, "alice", now=now, pid=os.getpid())
        assert previous is None
        # a second live commander on this host is refused, with who holds it
        parent = os.getppid()
        with pytest.raises(LeaseHeld, match="commanded by alice"):
            store.acquire_lease(incident, "bob", now=now, pid=parent)
        # ...unless taking over, which reports whom it replaced
        theirs, replaced = store.acquire_lease(incident, "bob", now=now, pid=parent,
                                               take_over=True)
        assert replaced is not None and replaced.user == "alice"
        assert not store.heartbeat(mine)  # alice's console learns it lost command
        assert store.heartbeat(theirs)
        # a stale heartbeat frees the lease
        later = now + timedelta(seconds=120)
        _, replaced = store.acquire_lease(incident, "carol", now=later, pid=os.getpid(),
                                          stale_after_s=30)
        assert replaced is not None and replaced.user == "bob"


def test_lease_of_a_dead_process_is_free_at_once(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    with Store(tmp_path / "w.db") as store:
        incident = declare(store)
        store.acquire_lease(incident, "alice", pid=proc.pid)
        lease, replaced = store.acquire_lease(incident, "bob", pid=os.getpid())
        assert replaced is not None and replaced.pid == proc.pid
        assert store.lease(incident) == lease


@pytest.mark.parametrize("chunk", [4, 6, 50])
def test_chunks_up_to_an_event_are_every_row_in_order(tmp_path: Path, chunk: int) -> None:
    """The export's readers of a record up to an event (iter_content_chunks in this process,
    iter_chunks_up_to in its checking child) read windows of ids while the incident's rows
    are dense and its index once other incidents' events come between: every row, in order,
    none after ``up_to``, in the same chunks for both."""
    with Store(tmp_path / "w.db") as store:
        first = declare(store, "first")
        store.append_many(first, [(Kind.NOTE, "bob", {"text": f"dense {n}"}) for n in range(20)])
        second = declare(store, "second")
        for n in range(15):  # from here the two alternate: the second's rows are sparse
            store.append_many(first, [(Kind.NOTE, "bob", {"text": f"sparse {n}"})] * 2)
            store.append(second, Kind.NOTE, "ann", {"text": f"other {n}"})
        store.append_many(first, [(Kind.NOTE, "bob", {"text": f"late {n}"}) for n in range(9)])
        for incident in (first, second):
            every = list(store.iter_rows(incident))
            for up_to in (every[-1][0], every[len(every) // 2][0], every[0][0]):
                expected = [row for row in every if row[0] <= up_to]
                full = list(store.iter_chunks_up_to(incident, up_to, chunk))
                content = list(store.iter_content_chunks(incident, up_to, chunk))
                assert [row for rows in full for row in rows] == expected
                assert [len(rows) for rows in content] == [len(rows) for rows in full]
                assert all(rows and len(rows) <= chunk for rows in full)
                assert [row for rows in content for row in rows] == [
                    (i, ts, kind, actor, payload)
                    for i, _, ts, kind, actor, payload, _, _ in expected]
        assert list(store.iter_content_chunks(99, 10, chunk)) == []

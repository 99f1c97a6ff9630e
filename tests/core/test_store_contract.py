"""The store contract, on both engines: every test here runs against an SQLite file and against a
real PostgreSQL database (``store_location`` in tests/conftest.py).

What both must do: number incidents; chain every event (the same hashes for the same events);
refuse UPDATE and DELETE in the database itself; serialise writers of one incident, so that a rule
is checked against exactly the state its fact is appended to; keep samples and leases; read a
timeline window in one snapshot; refuse a newer schema; wake a watcher when another connection
commits; and copy a record from one engine to the other with every id and hash intact.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console import events as ev
from console.model import Kind, utcnow
from console.state import IncidentState, fold
from console.store import (
    LeaseHeld,
    RecordStore,
    StoreError,
    UnknownIncident,
    copy_incident,
    open_store,
)

#: A fixed instant, so two engines given the same events produce the same bytes.
T0 = datetime(2026, 3, 14, 22, 0, 0, tzinfo=UTC)
DEADLINE_S = 20.0


def declare(store: RecordStore, title: str = "t", ts: datetime | None = None) -> int:
    return store.create_incident("alice", {"title": title}, ts=ts)[0].incident_id


def raw(location: Path | str, *statements: str) -> None:
    """What someone with the database's own shell could do (as its owner / a superuser)."""
    if isinstance(location, Path):
        conn = sqlite3.connect(location)
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(location, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement)  # type: ignore[arg-type]  # the tests' own literal SQL


def drop_guards(location: Path | str) -> list[str]:
    """The statements that remove the append-only triggers on this engine."""
    if isinstance(location, Path):
        return ["DROP TRIGGER events_are_append_only_update",
                "DROP TRIGGER events_are_append_only_delete"]
    return ["ALTER TABLE events DISABLE TRIGGER USER"]


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")


def test_incidents_are_numbered_and_chained(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        first, second = declare(store), declare(store)
        assert (first, second) == (1, 2)
        a = store.append(first, Kind.NOTE, "bob", {"text": "one"})
        b = store.append(first, Kind.NOTE, "bob", {"text": "two"})
        assert b.prev_hash == a.hash
        assert store.verify(first) == (3, None)
        assert [e.kind for e in store.events(first)] == [Kind.DECLARED, Kind.NOTE, Kind.NOTE]
        assert store.events(first, after_id=a.id) == [b]
        assert store.events(first, limit=1)[0].kind == Kind.DECLARED
        assert store.incident_ids() == [1, 2]
        assert store.has_incident(2) and not store.has_incident(3)
        assert store.last_event_id(first) == b.id


def test_the_database_refuses_update_and_delete(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        declare(store)
    errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)
    if isinstance(store_location, str):
        import psycopg

        errors = (psycopg.Error,)
    for statement in ("UPDATE events SET actor = 'mallory'", "DELETE FROM events",
                      "UPDATE incidents SET created_ts = 'x'", "DELETE FROM incidents"):
        with pytest.raises(errors, match="append-only"):
            raw(store_location, statement)
    if isinstance(store_location, str):  # TRUNCATE skips row triggers: refused on its own
        with pytest.raises(errors, match="append-only"):
            raw(store_location, "TRUNCATE events CASCADE")
    with open_store(store_location, readonly=True) as store:
        assert store.verify(1) == (1, None)


def test_verify_names_an_edited_event_and_removed_guards(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        incident = declare(store)
        note = store.append(incident, Kind.NOTE, "bob", {"text": "approved by phone"})
        store.append(incident, Kind.NOTE, "bob", {"text": "later"})
    raw(store_location, *drop_guards(store_location))
    with open_store(store_location, readonly=True) as store:
        _, problem = store.verify(incident)
    assert problem is not None and "triggers were removed" in problem.message
    raw(store_location,
        f"UPDATE events SET payload = '{{\"text\":\"never happened\"}}' WHERE id = {note.id}")
    with open_store(store_location, readonly=True) as store:
        _, problem = store.verify(incident)
    assert problem is not None and problem.event_id == note.id
    assert "edited" in problem.message


def test_the_same_events_have_the_same_hashes_on_both_engines(tmp_path: Path,
                                                              pg_url: str) -> None:
    stores = [open_store(tmp_path / "w.db"), open_store(pg_url)]
    chains = []
    for store in stores:
        with store:
            incident = declare(store, "Payments 5xx — ünïcode, \"quotes\" [b]", ts=T0)
            store.append(incident, Kind.NOTE, "bob", {"text": "x", "n": 1.5, "nan": float("nan")},
                         ts=T0 + timedelta(seconds=1))
            store.append_many(incident, [(Kind.NOTE, "carol", {"text": "a"}),
                                         (Kind.NOTE, "carol", {"text": "b\u2028c"})],
                              ts=T0 + timedelta(seconds=2))
            chains.append([(e.id, e.ts, e.kind, e.actor, e.payload, e.prev_hash, e.hash)
                           for e in store.events(incident)])
            assert store.verify(incident) == (4, None)
    assert chains[0] == chains[1]


def test_racing_writers_of_one_incident_form_one_chain(store_location: Path | str) -> None:
    """Two connections append to one incident at once; each fact is decided on the state it is
    appended to (what the rules rely on), so no two see the same head."""
    with open_store(store_location) as store:
        incident = declare(store)
    per_writer = 25
    seen: list[tuple[str, int]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            with open_store(store_location) as mine:
                start.wait()
                for n in range(per_writer):
                    def decide(state: IncidentState, n: int = n) -> ev.Note:
                        seen.append((name, state.event_count))
                        return ev.Note(text=f"{name} {n}")

                    mine.record(incident, name, decide)
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    with open_store(store_location, readonly=True) as store:
        assert store.verify(incident) == (1 + 2 * per_writer, None)
        events = store.events(incident)
    # every decision saw a different head: 1 (the declaration) … 50
    assert sorted(count for _, count in seen) == list(range(1, 1 + 2 * per_writer))
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_a_refused_fact_appends_nothing_and_the_store_goes_on(store_location: Path | str
                                                              ) -> None:
    from console.policy import Refused

    with open_store(store_location) as store:
        incident = declare(store)

        def refuse(state: IncidentState) -> ev.Note:
            raise Refused(f"no: {state.event_count} events")

        with pytest.raises(Refused, match="no: 1 events"):
            store.record(incident, "bob", refuse)
        with pytest.raises(UnknownIncident):
            store.append(77, Kind.NOTE, "bob", {"text": "nowhere"})
        after = store.record(incident, "bob", ev.Note(text="after"))
        assert store.verify(incident) == (2, None)
        assert [e.id for e in store.events(incident)][-1] == after.id


def test_racing_declarations_get_distinct_numbers(store_location: Path | str) -> None:
    numbers: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(3)

    def declarer() -> None:
        try:
            with open_store(store_location) as mine:
                start.wait()
                numbers.extend(declare(mine) for _ in range(5))
        except BaseException as error:
            failures.append(error)

    with open_store(store_location):
        pass  # the schema exists before the race
    threads = [threading.Thread(target=declarer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert sorted(numbers) == list(range(1, 16))
    with open_store(store_location, readonly=True) as store:
        assert all(store.verify(n) == (1, None) for n in numbers)


def test_leases_one_commander_and_a_recorded_take_over(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        incident = declare(store)
        mine, previous = store.acquire_lease(incident, "alice", pid=1, host="bastion-a")
        assert previous is None
        with pytest.raises(LeaseHeld, match="alice"):
            store.acquire_lease(incident, "bob", pid=2, host="bastion-b")
        assert store.heartbeat(mine)
        theirs, replaced = store.acquire_lease(incident, "bob", take_over=True, pid=2,
                                               host="bastion-b")
        assert replaced == store.lease(incident) or replaced is not None
        assert replaced is not None and replaced.user == "alice"
        assert not store.heartbeat(mine)  # taken over: alice's console learns it
        assert store.lease(incident) == theirs
        # a lease whose heartbeat is stale is free, even from another host
        late = utcnow() + timedelta(seconds=120)
        again, stale = store.acquire_lease(incident, "carol", pid=3, host="bastion-c", now=late)
        assert stale is not None and stale.user == "bob"
        store.release_lease(again)
        assert store.lease(incident) is None
        with pytest.raises(UnknownIncident):
            store.acquire_lease(99, "alice")


def test_samples_keep_order_and_store_nan_as_null(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        incident = declare(store)
        store.add_samples(incident, [("err/canary", 2.0, 0.5), ("err/canary", 1.0, float("nan")),
                                     ("err/baseline", 1.0, 0.01), ("lat/canary", 1.5, None)])
        store.add_samples(incident, [])
        assert store.samples(incident, "err/canary") == [(1.0, None), (2.0, 0.5)]
        assert store.samples(incident, "err/canary", since_ts=1.5) == [(2.0, 0.5)]
        assert store.series_names(incident) == ["err/baseline", "err/canary", "lat/canary"]


def test_a_timeline_window_under_a_filter(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        incident = declare(store)
        for n in range(30):
            kind = Kind.NOTE if n % 3 else Kind.GUARDRAIL_CHANGED
            store.append(incident, kind, "bob", {"n": n})
        notes = frozenset({str(Kind.NOTE)})
        assert store.count_events(incident) == 31
        assert store.count_events(incident, notes) == 20
        page = store.events_page(incident, notes, offset=5, limit=3)
        assert [e.payload["n"] for e in page] == [8, 10, 11]
        tail = store.events_tail(incident, notes, 4)
        assert [e.payload["n"] for e in tail] == [25, 26, 28, 29]
        rows = store.timeline_rows(incident, notes, 4, anchor_id=page[0].id)
        assert (rows.row_total, rows.event_total, rows.tail) == (20, 31, tail)
        assert rows.up_to_id == store.last_event_id(incident)
        assert rows.anchor_row == 5
        assert [e.payload.get("n") for e in store.iter_events(incident, chunk=7)] == [
            None, *range(30)]


def test_state_comes_from_a_checkpoint_and_matches_the_fold(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        incident = declare(store)
        for n in range(300):  # past a checkpoint of the frequent kinds
            store.append(incident, Kind.NOTE, "bob", {"text": f"n{n}"})
        store.checkpoint(incident)
    with open_store(store_location, readonly=True) as fresh:
        assert fresh._load_checkpoint(incident) is not None
        state = fresh.state(incident)
        assert state == fold(fresh.events(incident))
        with pytest.raises(UnknownIncident):
            fresh.state(42)


def test_read_only_refuses_writes(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        incident = declare(store)
    with open_store(store_location, readonly=True) as reader:
        with pytest.raises(StoreError, match="read-only"):
            reader.append(incident, Kind.NOTE, "bob", {"text": "x"})
        assert reader.verify(incident) == (1, None)


def test_a_newer_schema_is_refused(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        declare(store)
    raw(store_location, "PRAGMA user_version = 99" if isinstance(store_location, Path)
        else "UPDATE warroom_schema SET version = 99")
    for readonly in (False, True):
        with pytest.raises(StoreError, match="newer than this warroom understands"):
            open_store(store_location, readonly=readonly)


def test_declarations_since_counts_the_window(store_location: Path | str) -> None:
    with open_store(store_location) as store:
        declare(store, ts=T0 - timedelta(days=40))
        declare(store, ts=T0 - timedelta(days=2))
        recent = store.declarations_since(T0 - timedelta(days=30))
        assert [e.incident_id for e in recent] == [2]


def test_a_watcher_is_woken_by_another_connections_commit(store_location: Path | str) -> None:
    with open_store(store_location) as writer:
        incident = declare(writer)
        other = declare(writer)
        with open_store(store_location, readonly=True) as reader:
            feed = reader.change_feed(incident)
            try:
                assert feed.wait(0.05)  # nothing read yet: read
                feed.mark()
                assert not feed.wait(0.2)  # idle: nothing to read
                if isinstance(store_location, str):
                    # LISTEN/NOTIFY says which incident: another one's commit does not wake it
                    writer.append(other, Kind.NOTE, "bob", {"text": "elsewhere"})
                    assert not feed.wait(0.3)
                started = time.monotonic()
                writer.append(incident, Kind.NOTE, "bob", {"text": "news"})
                woke = False
                while not woke and time.monotonic() - started < DEADLINE_S:
                    woke = feed.wait(0.2)
                assert woke
                feed.mark()
                assert reader.events(incident)[-1].payload == {"text": "news"}
                assert not feed.wait(0.2)
            finally:
                feed.close()


# --- copying a record between the engines --------------------------------------------------------


def _record(store: RecordStore, incident: int) -> list[tuple[Any, ...]]:
    return list(store.iter_rows(incident))


def test_copy_sqlite_to_postgresql_and_back_keeps_every_hash(tmp_path: Path, pg_url: str) -> None:
    from console.export import export

    with open_store(tmp_path / "a.db") as source:
        declare(source, "first")
        incident = declare(source, "second")
        for n in range(10):
            source.append(incident, Kind.NOTE, "bob", {"text": f"n{n}"})
        source.add_samples(incident, [("err/canary", 1.0, 0.1), ("err/canary", 2.0, None)])
        with open_store(pg_url) as server:
            assert copy_incident(source, server, incident) == 11
            assert server.verify(incident) == (11, None)
            assert _record(server, incident) == _record(source, incident)
            assert server.samples(incident, "err/canary") == [(1.0, 0.1), (2.0, None)]
            # new events on the server continue the chain with ids past the copied ones
            after = server.append(incident, Kind.NOTE, "carol", {"text": "on the server"})
            assert after.id > _record(source, incident)[-1][0]
            assert server.verify(incident) == (12, None)
            with pytest.raises(StoreError, match="already exists"):
                copy_incident(source, server, incident)
            with open_store(tmp_path / "b.db") as back:
                assert copy_incident(server, back, incident) == 12
                assert back.verify(incident) == (12, None)
                assert _record(back, incident) == _record(server, incident)
                outputs = []
                for store in (server, back):
                    out = io.StringIO()
                    export("json", store, incident, out, now=T0)
                    outputs.append(json.loads(out.getvalue())["events"])
                assert outputs[0] == outputs[1]


def test_copy_refuses_a_broken_source(tmp_path: Path, pg_url: str) -> None:
    path = tmp_path / "a.db"
    with open_store(path) as source:
        incident = declare(source)
        note = source.append(incident, Kind.NOTE, "bob", {"text": "x"})
    raw(path, *drop_guards(path), f"UPDATE events SET actor = 'mallory' WHERE id = {note.id}")
    with open_store(path, readonly=True) as source, open_store(pg_url) as server:
        with pytest.raises(StoreError, match="BROKEN"):
            copy_incident(source, server, incident)
        assert not server.has_incident(incident)


# --- the record as it was at any moment (replay, issue 16) --------------------------------------


def test_the_state_at_any_event_folds_from_the_nearest_kept_checkpoint(
        store_location: Path | str, monkeypatch: pytest.MonkeyPatch) -> None:
    import console.store as store_module

    monkeypatch.setattr(store_module, "HISTORY_EVERY", 40)
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", 16)
    start = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)
    with open_store(store_location) as store:
        incident = declare(store, ts=start)
        for n in range(300):
            kind = Kind.NOTE if n % 7 else Kind.PAUSED if n % 14 else Kind.RESUMED
            store.append(incident, kind, "bob", {"text": f"n{n}"},
                         ts=start + timedelta(seconds=n // 3))
    with open_store(store_location, readonly=True) as fresh:
        events = fresh.events(incident)
        kept = fresh._read("SELECT event_id FROM checkpoint_history WHERE incident_id = ? "
                           "ORDER BY event_id", (incident,))
        assert len(kept) >= 300 // (40 + 16)  # a checkpoint kept every 40-56 events
        folded = []
        real_apply = IncidentState.apply

        def counting(self: IncidentState, event: Any) -> None:
            folded.append(event.id)
            real_apply(self, event)

        monkeypatch.setattr(IncidentState, "apply", counting)
        for index in (0, 1, 39, 40, 41, 150, 299, 300):
            folded.clear()
            state = fresh.state_at(incident, events[index].id)
            assert len(folded) <= 40 + 16, (index, len(folded))  # never from event 1
            assert state == fold(events[:index + 1]), index
        # the moment a time stands for: the newest event stamped at or before it
        for seconds in (0, 1, 50, 99, 500):
            at = start + timedelta(seconds=seconds)
            assert fresh.event_at_time(incident, at) == max(e.id for e in events if e.ts <= at)
        assert fresh.event_at_time(incident, start - timedelta(seconds=1)) == 0
        # neighbours: of a kind, and by what the payload holds
        middle = events[150].id
        after = fresh.neighbour_event(incident, middle, forward=True,
                                      kinds=frozenset({Kind.RESUMED}))
        assert after == next(e for e in events if e.id > middle and e.kind == Kind.RESUMED)
        before = fresh.neighbour_event(incident, middle, forward=False,
                                       payload_has=['"text":"n1"'], payload_lacks=['"n10"'])
        assert before is not None and before.payload["text"] == "n1"


def test_a_record_without_kept_checkpoints_still_replays(store_location: Path | str) -> None:
    """An older record (no history, or one made by another fold) folds from what there is."""
    with open_store(store_location) as store:
        incident = declare(store)
        for n in range(50):
            store.append(incident, Kind.NOTE, "bob", {"text": f"n{n}"})
    raw(store_location, "DELETE FROM checkpoint_history", "DELETE FROM checkpoints")
    with open_store(store_location, readonly=True) as fresh:
        events = fresh.events(incident)
        assert fresh.state_at(incident, events[20].id) == fold(events[:21])

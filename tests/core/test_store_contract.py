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
import itertools
import json
import os
import sqlite3
import subprocess
import sys
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


#: Text the short road's server-side hash must hash as Python does (UTF-8 of every width, JSON
#: escapes, a line separator JSON leaves as it is).
TRICKY = "caf\u00e9 \u2028 \"q\" \\ \x01 \U0001f525"
#: A writer process of the race below: opens its own store, waits for the start (a file), then
#: appends its notes — most as plain appends (PostgreSQL's short road: one statement after the
#: head it knows), every fifth as a fact decided on the state (the serialised road) — and says
#: how many plain appends the short road took.
RACER = """
import sys, time
from pathlib import Path
from console import events as ev
from console.model import Kind
from console.store import open_store

location, incident, name, count, go, tricky = sys.argv[1:7]
location = location if location.startswith("postgresql") else Path(location)
with open_store(location) as store:
    store.state(int(incident))  # the head as this writer first knows it
    short = [0]
    original = store._append_at_head

    def counted(*args, **kwargs):
        event = original(*args, **kwargs)
        short[0] += event is not None
        return event

    store._append_at_head = counted
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            sys.exit("no start")
    for n in range(int(count)):
        text = f"{name} {n} {tricky}"
        if n % 5 == 4:
            store.record(int(incident), name, lambda state, text=text: ev.Note(text=text))
        else:
            store.append(int(incident), Kind.NOTE, name, {"text": text})
print(short[0])
"""


def test_appends_racing_from_several_processes_never_fork_nor_lose_an_event(
        store_location: Path | str, tmp_path: Path) -> None:
    """Four processes append to one incident at once, each after the head it last saw: every
    event is there exactly once, each follows the one before it (no fork, no gap: one chain),
    ids rise along the chain, and the head recorded with the last append is the newest event."""
    from tests.conftest import REPO

    with open_store(store_location) as store:
        incident = declare(store)
    writers, per_writer = 4, 40
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [subprocess.Popen(
        [sys.executable, "-c", RACER, str(store_location), str(incident), f"w{w}",
         str(per_writer), str(go), TRICKY], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env) for w in range(writers)]
    go.touch()
    outcomes = [racer.communicate(timeout=180) for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * writers, outcomes
    with open_store(store_location, readonly=True) as store:
        assert store.verify(incident) == (1 + writers * per_writer, None)
        events = store.events(incident)
        recorded = store._read("SELECT event_id, hash FROM chain_heads WHERE incident_id = ?",
                               (incident,))
    texts = sorted(e.payload["text"] for e in events[1:])
    assert texts == sorted(f"w{w} {n} {TRICKY}" for w in range(writers) for n in range(per_writer))
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash and after.id > before.id
    assert len({e.prev_hash for e in events}) == len(events)
    assert [tuple(row) for row in recorded] == [(events[-1].id, events[-1].hash)]
    if isinstance(store_location, str):  # the short road was raced, not only the lock
        assert sum(int(out.split()[-1]) for out, _ in outcomes) > 0, outcomes


def test_a_store_behind_the_chain_head_appends_after_the_newest_event(
        store_location: Path | str) -> None:
    """A store whose head is stale (another connection appended since) does not fork the
    chain: its append is refused at the head, caught up and appended after the newest event;
    and what the server hashed is what Python hashes, whatever the text."""
    with open_store(store_location) as mine, open_store(store_location) as other:
        incident = declare(mine)
        first = mine.append(incident, Kind.NOTE, "bob", {"text": "mine"})
        theirs = [other.append(incident, Kind.NOTE, "carol \u00e9", {"text": f"theirs {n}"})
                  for n in range(2)]
        after = mine.append(incident, Kind.NOTE, "bob \U0001f525",
                            {"text": TRICKY, "n": [1.5, None]})
        assert theirs[0].prev_hash == first.hash
        assert after.prev_hash == theirs[-1].hash and after.id > theirs[-1].id
        again = mine.append(incident, Kind.NOTE, "bob", {"text": "and again"})
        assert again.prev_hash == after.hash
        assert mine.verify(incident) == (6, None)
        assert mine.events(incident)[-2:] == [after, again]
        assert mine.state(incident).last_hash == again.hash
        assert fold(mine.events(incident)).last_hash == again.hash


def test_a_keyed_chain_appends_with_its_key_on_both_engines(store_location: Path | str) -> None:
    """A keyed chain's appends are hashed here, with the key (it never goes to a server)."""
    from console.store import use_chain_key

    use_chain_key(b"k" * 32)
    try:
        with open_store(store_location) as store:
            incident = declare(store)
            for n in range(3):
                store.append(incident, Kind.NOTE, "bob", {"text": f"keyed {n}"})
            walk = store.verify_walk(incident)
            assert (walk.checked, walk.problem) == (4, None)
    finally:
        use_chain_key(None)
    with open_store(store_location) as keyless, \
            pytest.raises(StoreError, match="needs the chain key"):
        keyless.append(incident, Kind.NOTE, "bob", {"text": "no key"})


def _fork_of(store: RecordStore, incident: int) -> str:
    """An INSERT of an event after the same hash as the incident's second event."""
    second = store.events(incident)[1]
    return ("INSERT INTO events (id, incident_id, ts, kind, actor, payload, prev_hash, hash) "
            f"VALUES (9999, {incident}, '{second.ts:%Y-%m-%dT%H:%M:%S}.000Z', 'note_added', "
            f"'mallory', '{{}}', '{second.prev_hash}', '{'f' * 64}')")


@pytest.mark.postgresql
def test_postgresql_refuses_a_fork_whoever_writes(pg_url: str) -> None:
    import psycopg

    with open_store(pg_url) as store:
        incident = declare(store)
        for n in range(2):
            store.append(incident, Kind.NOTE, "bob", {"text": f"{n}"})
        fork = _fork_of(store, incident)
    with pytest.raises(psycopg.errors.UniqueViolation, match="events_chain_never_forks"):
        raw(pg_url, fork)


@pytest.mark.postgresql
def test_a_schema_5_postgresql_record_is_migrated_and_a_forked_one_refused(pg_url: str) -> None:
    """Schema 6 adds the fork guard to a record made before it (same events, same hashes);
    a record whose chain already forked is refused with the incident named."""
    with open_store(pg_url) as store:
        incident = declare(store)
        store.append(incident, Kind.NOTE, "bob", {"text": "before"})
        before = _record(store, incident)
    as_schema_5 = ["DROP INDEX events_chain_never_forks", "UPDATE warroom_schema SET version = 5"]
    raw(pg_url, *as_schema_5)
    with open_store(pg_url) as store:
        assert store.schema_version == 6
        assert _record(store, incident) == before
        store.append(incident, Kind.NOTE, "bob", {"text": "after"})
        assert store.verify(incident) == (3, None)
        fork = _fork_of(store, incident)
    raw(pg_url, *as_schema_5, fork)
    with pytest.raises(StoreError, match=r"INC-1's chain forked \(events #2 and #9999"):
        open_store(pg_url)
    with open_store(pg_url, readonly=True) as reader:  # still readable, and says it is broken
        assert reader.verify(incident)[1] is not None


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

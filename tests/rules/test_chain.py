"""``Store.verify`` catches each way a record can be rewritten: an edit, a removal, an insertion, a
reorder, a chain that does not start with the declaration, and removed append-only triggers.

Each tamper is what someone with the sqlite3 shell could do: drop the guards, change the rows,
put the guards back (so each test shows one problem). What the plain chain cannot catch without a
published head (the newest events removed, or the newest rewritten and re-hashed) is stated as
``xfail(strict=True)`` for issue 12.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.model import Kind, format_ts
from console.store import (
    GENESIS_HASH,
    ChainChecker,
    ChainProblem,
    ChainWalk,
    Store,
    UnknownIncident,
    canonical_json,
    event_hash,
)

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)

TRIGGERS = {
    verb: f"CREATE TRIGGER events_are_append_only_{verb.lower()} BEFORE {verb} ON events "
          f"BEGIN SELECT RAISE(ABORT, 'events are append-only: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE")
}


def at(seconds: int) -> str:
    return format_ts(T0 + timedelta(seconds=seconds))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Incident 1: #1 declared, #2 note, #3 note, #5 note; incident 2: #4 declared."""
    path = tmp_path / "w.db"
    with Store(path) as store:
        store.create_incident("alice", {"title": "one"}, ts=T0)
        for n in (1, 2):
            store.append(1, Kind.NOTE, "bob", {"text": f"note {n}"}, ts=T0 + timedelta(seconds=n))
        store.create_incident("carol", {"title": "two"}, ts=T0 + timedelta(seconds=3))
        store.append(1, Kind.NOTE, "bob", {"text": "note 3"}, ts=T0 + timedelta(seconds=4))
    return path


def tamper(path: Path, *statements: str, restore: tuple[str, ...] = ("UPDATE", "DELETE")) -> None:
    conn = sqlite3.connect(path)
    for verb in TRIGGERS:
        conn.execute(f"DROP TRIGGER events_are_append_only_{verb.lower()}")
    for statement in statements:
        conn.execute(statement)
    for verb in restore:
        conn.execute(TRIGGERS[verb])
    conn.commit()
    conn.close()


def row(path: Path, event_id: int) -> tuple[int, int, str, str, str, str, str, str]:
    conn = sqlite3.connect(path)
    found = conn.execute("SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash "
                         "FROM events WHERE id = ?", (event_id,)).fetchone()
    conn.close()
    return found  # type: ignore[no-any-return]


def forge(path: Path, event_id: int, *, prev_hash: str | None = None, kind: str | None = None,
          payload: str | None = None) -> str:
    """Rewrite one event and give it a hash that matches its new content; returns that hash."""
    _, incident, ts, old_kind, actor, old_payload, old_prev, _ = row(path, event_id)
    prev = old_prev if prev_hash is None else prev_hash
    new_kind = old_kind if kind is None else kind
    body = old_payload if payload is None else payload
    digest = event_hash(prev, event_id, incident, ts, new_kind, actor, body)
    tamper(path, f"UPDATE events SET kind = '{new_kind}', payload = '{body}', "
                 f"prev_hash = '{prev}', hash = '{digest}' WHERE id = {event_id}")
    return digest


def verify(path: Path, incident: int = 1) -> tuple[int, ChainProblem | None]:
    with Store(path) as store:
        return store.verify(incident)


# --- an intact record ----------------------------------------------------------------------------


def test_an_intact_chain_verifies_every_event_of_its_incident_only(db: Path) -> None:
    assert verify(db, 1) == (4, None)
    assert verify(db, 2) == (1, None)


def test_the_chain_starts_at_the_genesis_hash(db: Path) -> None:
    assert row(db, 1)[6] == GENESIS_HASH == "0" * 64


def test_an_unknown_incident_is_not_a_broken_chain(db: Path) -> None:
    with pytest.raises(UnknownIncident, match=r"^no incident INC-9 in "):
        verify(db, 9)


# --- edits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [
    "payload = '{\"text\":\"never happened\"}'",
    "actor = 'mallory'",
    f"ts = '{at(90)}'",
    "kind = 'approval_given'",
    "hash = 'f00'",
    "incident_id = 2",
])
def test_an_edited_event_is_named(db: Path, change: str) -> None:
    tamper(db, f"UPDATE events SET {change} WHERE id = 3")
    _, _, ts, kind, *_ = row(db, 3)
    count, problem = verify(db)
    if change == "incident_id = 2":  # moved to another incident: a gap in this one
        assert (count, problem) == (2, ChainProblem(5, (
            f"event #5 (note_added at {at(4)}) does not follow the event before it: an event "
            "was removed or inserted just before it")))
        return
    assert (count, problem) == (2, ChainProblem(
        3, f"event #3 ({kind} at {ts}) was edited: its content no longer matches its hash"))


def test_an_edited_event_rehashed_breaks_the_link_to_the_next(db: Path) -> None:
    forge(db, 2, payload='{"text":"rewritten"}')
    assert verify(db) == (2, ChainProblem(3, (
        f"event #3 (note_added at {at(2)}) does not follow the event before it: an event was "
        "removed or inserted just before it")))


def test_an_edited_declaration_is_caught(db: Path) -> None:
    tamper(db, "UPDATE events SET payload = '{\"title\":\"other\"}' WHERE id = 1")
    count, problem = verify(db)
    assert count == 0 and problem is not None and problem.event_id == 1
    assert problem.message.endswith("was edited: its content no longer matches its hash")


@pytest.mark.parametrize("digest", ["", "f00"])
def test_an_event_that_is_not_json_is_caught_whatever_its_hash_says(db: Path,
                                                                    digest: str) -> None:
    """An unreadable payload is never a verified event, not even with an empty hash (the value
    verify once used for 'could not recompute')."""
    tamper(db, f"UPDATE events SET payload = '{{not json', hash = '{digest}' WHERE id = 5")
    assert verify(db) == (3, ChainProblem(
        5, f"event #5 (note_added at {at(4)}) was edited: its content no longer matches its hash"))


def test_the_newest_event_rewritten_and_rehashed_is_caught(db: Path) -> None:
    forge(db, 5, payload='{"text":"rewritten"}')
    assert verify(db)[1] is not None


# --- removals ------------------------------------------------------------------------------------


def test_a_removed_event_is_named_by_the_one_after_it(db: Path) -> None:
    tamper(db, "DELETE FROM events WHERE id = 2")
    assert verify(db) == (1, ChainProblem(3, (
        f"event #3 (note_added at {at(2)}) does not follow the event before it: an event was "
        "removed or inserted just before it")))


def test_a_removed_declaration_is_named(db: Path) -> None:
    tamper(db, "DELETE FROM events WHERE id = 1")
    assert verify(db) == (0, ChainProblem(2, (
        f"event #2 (note_added at {at(1)}) is first, but the chain must start with the "
        "declaration: events were removed")))


def test_every_event_removed_leaves_an_incident_without_its_declaration(db: Path) -> None:
    tamper(db, "DELETE FROM events WHERE incident_id = 1")
    assert verify(db) == (0, ChainProblem(
        None, "the incident has no events: its declaration was removed"))
    assert verify(db, 2) == (1, None)


def test_the_newest_event_removed_is_caught(db: Path) -> None:
    tamper(db, "DELETE FROM events WHERE id = 5")
    assert verify(db)[1] is not None


# --- insertions and reorders ---------------------------------------------------------------------


def test_an_inserted_event_that_chains_from_its_predecessor_breaks_the_next_link(db: Path) -> None:
    """A gap in incident 1's ids (incident 2's #4 removed) takes a forged event that links
    properly to #3: #5 then no longer follows."""
    _, _, _, _, _, _, _, hash3 = row(db, 3)
    payload = '{"text":"forged"}'
    digest = event_hash(hash3, 4, 1, at(3), "note_added", "mallory", payload)
    tamper(db, "DELETE FROM events WHERE id = 4",
           f"INSERT INTO events VALUES (4, 1, '{at(3)}', 'note_added', 'mallory', '{payload}', "
           f"'{hash3}', '{digest}')")
    assert verify(db) == (4, ChainProblem(5, (
        f"event #5 (note_added at {at(4)}) does not follow the event before it: an event was "
        "removed or inserted just before it")))


def test_an_inserted_event_with_a_made_up_hash_is_caught_where_it_stands(db: Path) -> None:
    _, _, _, _, _, _, _, hash5 = row(db, 5)
    tamper(db, f"INSERT INTO events VALUES (6, 1, '{at(5)}', 'note_added', 'mallory', '{{}}', "
               f"'{hash5}', 'f00')")
    assert verify(db) == (4, ChainProblem(
        6, f"event #6 (note_added at {at(5)}) was edited: its content no longer matches its hash"))


def test_two_events_swapped_are_caught_at_the_first(db: Path) -> None:
    tamper(db, "UPDATE events SET id = 100 WHERE id = 2",
           "UPDATE events SET id = 2 WHERE id = 3",
           "UPDATE events SET id = 3 WHERE id = 100")
    count, problem = verify(db)
    assert count == 1 and problem is not None and problem.event_id == 2
    assert "does not follow the event before it" in problem.message


def test_the_declaration_swapped_with_the_next_event_is_caught(db: Path) -> None:
    tamper(db, "UPDATE events SET id = 100 WHERE id = 1",
           "UPDATE events SET id = 1 WHERE id = 2",
           "UPDATE events SET id = 2 WHERE id = 100")
    assert verify(db) == (0, ChainProblem(1, (
        f"event #1 (note_added at {at(1)}) is first, but the chain must start with the "
        "declaration: events were removed")))


def test_an_event_moved_out_of_the_numbered_record_leaves_a_gap(db: Path) -> None:
    """Ids start at 1; a row moved to id 0 is outside the record that is read (and folded), and
    the place it left is a gap."""
    tamper(db, "UPDATE events SET id = 0 WHERE id = 3")
    assert verify(db) == (2, ChainProblem(5, (
        f"event #5 (note_added at {at(4)}) does not follow the event before it: an event was "
        "removed or inserted just before it")))


# --- the first event must be the declaration, at the genesis hash --------------------------------


def test_a_first_event_that_is_not_a_declaration_is_caught_even_rehashed(db: Path) -> None:
    forge(db, 1, kind="note_added")
    assert verify(db) == (0, ChainProblem(1, (
        f"event #1 (note_added at {at(0)}) is first, but the chain must start with the "
        "declaration: events were removed")))


def test_a_first_event_not_at_the_genesis_hash_is_caught_even_rehashed(db: Path) -> None:
    forge(db, 1, prev_hash="1" * 64)
    assert verify(db) == (0, ChainProblem(1, (
        f"event #1 (incident_declared at {at(0)}) does not follow the event before it: an event "
        "was removed or inserted just before it")))


# --- the append-only triggers --------------------------------------------------------------------


@pytest.mark.parametrize("restore", [(), ("UPDATE",), ("DELETE",)])
def test_removed_triggers_are_a_problem_after_an_intact_chain(db: Path,
                                                              restore: tuple[str, ...]) -> None:
    tamper(db, restore=restore)
    assert verify(db) == (4, ChainProblem(
        None, "the append-only triggers were removed from the database"))


def test_a_chain_problem_is_reported_before_missing_triggers(db: Path) -> None:
    tamper(db, "DELETE FROM events WHERE id = 2", restore=())
    count, problem = verify(db)
    assert (count, problem is not None and problem.event_id) == (1, 3)


# --- the hash: sha256(prev_hash + the canonical event), as DESIGN.md defines it ------------------


@pytest.mark.parametrize(("actor", "payload"), [
    ("bob", {"text": "note 1"}),
    ("zoë \"the\" \\ admin\n", {"text": "naïve ✓ \u0007 \u2028", "n": [1, 2.5, None, True]}),
    ("", {}),
])
def test_the_hash_is_sha256_of_the_previous_hash_and_the_canonical_event(
        actor: str, payload: dict[str, object]) -> None:
    stored = canonical_json(payload)
    expected = hashlib.sha256((GENESIS_HASH + canonical_json({
        "id": 7, "incident": 2, "ts": at(5), "kind": "note_added", "actor": actor,
        "payload": json.loads(stored)})).encode("utf-8")).hexdigest()
    assert event_hash(GENESIS_HASH, 7, 2, at(5), "note_added", actor, stored) == expected


def test_every_stored_event_carries_that_hash(db: Path) -> None:
    with Store(db) as store:
        previous = GENESIS_HASH
        for event in store.events(1):
            expected = hashlib.sha256((previous + canonical_json({
                "id": event.id, "incident": 1, "ts": format_ts(event.ts), "kind": event.kind,
                "actor": event.actor, "payload": event.payload})).encode("utf-8")).hexdigest()
            assert (event.prev_hash, event.hash) == (previous, expected)
            previous = event.hash


def test_a_payload_rewritten_into_another_spelling_of_the_same_json_is_an_edit(db: Path) -> None:
    tamper(db, "UPDATE events SET payload = '{ \"text\": \"note 1\" }' WHERE id = 2")
    count, problem = verify(db)
    assert (count, problem is not None and problem.event_id) == (1, 2)


# --- verifying a step at a time (the console's background walk) -----------------------------------


def test_a_walk_reaches_the_head_only_after_a_step_that_finds_fewer_rows_than_its_limit(
        db: Path) -> None:
    with Store(db) as store:
        walk = ChainWalk(store, 1)
        assert (walk.step(limit=2), walk.checked, walk.last_id) == (False, 2, 2)
        assert (walk.step(limit=2), walk.checked, walk.last_id) == (False, 4, 5)
        assert (walk.step(limit=2), walk.checked, walk.problem) == (True, 4, None)
        whole = ChainWalk(store, 1)
        assert (whole.step(limit=5), whole.checked, whole.last_id) == (True, 4, 5)


def test_a_walk_of_one_event_a_step_goes_on_from_each_event_it_checked(db: Path) -> None:
    with Store(db) as store:
        walk = ChainWalk(store, 1)
        seen = []
        while not walk.step(limit=1):
            seen.append(walk.last_id)
        assert seen == [1, 2, 3, 5]
        assert (walk.checked, walk.last_id, walk.problem) == (4, 5, None)


def test_a_walk_at_the_head_checks_each_new_event_as_it_arrives(db: Path) -> None:
    with Store(db) as store:
        walk = ChainWalk(store, 1)
        assert walk.step() is True
        store.append(1, Kind.NOTE, "bob", {"text": "later"}, ts=T0 + timedelta(seconds=9))
        assert (walk.step(), walk.checked, walk.last_id, walk.problem) == (True, 5, 6, None)


def test_a_walk_stops_at_the_first_problem_and_stays_there(db: Path) -> None:
    tamper(db, "UPDATE events SET actor = 'mallory' WHERE id = 3")
    with Store(db) as store:
        walk = ChainWalk(store, 1)
        assert (walk.step(limit=2), walk.problem) == (False, None)
        assert walk.step(limit=2) is True
        problem = walk.problem
        assert problem is not None and problem.event_id == 3 and walk.checked == 2
        assert walk.step() is True and walk.problem is problem and walk.checked == 2


def test_a_walk_at_the_head_reports_removed_triggers_and_unknown_incidents(db: Path) -> None:
    tamper(db, restore=("UPDATE",))
    with Store(db) as store:
        walk = ChainWalk(store, 1)
        assert walk.step() is True
        assert walk.problem == ChainProblem(
            None, "the append-only triggers were removed from the database")
        with pytest.raises(UnknownIncident):
            ChainWalk(store, 9).step()


def test_a_checker_keeps_its_first_problem() -> None:
    checker = ChainChecker()
    note = (1, 1, at(0), "note_added", "bob", "{}", GENESIS_HASH, "f00")
    assert checker.check(note) is False
    first = checker.problem
    assert first is not None and first.message.endswith("is first, but the chain must start "
                                                        "with the declaration: events were removed")
    declared_row = (2, 1, at(1), "incident_declared", "alice", "{}", GENESIS_HASH,
                    event_hash(GENESIS_HASH, 2, 1, at(1), "incident_declared", "alice", "{}"))
    assert checker.check(declared_row) is False
    assert checker.problem is first and (checker.checked, checker.last_id) == (0, 0)

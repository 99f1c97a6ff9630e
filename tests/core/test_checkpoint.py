"""Fold checkpoints: derived, never trusted blindly, and what makes opening cost the same at any
length (DESIGN.md, "Cost must not grow with the incident's length")."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import checkpoint, commands, policy
from console.config import Config
from console.demo import declare_demo, demo_config
from console.state import fold
from console.store import CHECKPOINT_EVERY, Store

T0 = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)
CONFIG = demo_config(Config(), "bad")


def busy_incident(path: Path, notes: int) -> int:
    """A demo incident with approvals and ``notes`` notes after them."""
    with Store(path) as store:
        incident = declare_demo(store, CONFIG, "alice", ts=T0)
        commands.simulated_approval(store, CONFIG, incident, user="priya", role="security-lead",
                                    ts=T0)
        store.append_many(incident, [("note_added", "bob", {"text": f"n{i}"})
                                     for i in range(notes)], ts=T0 + timedelta(seconds=1))
    return incident


def checkpoint_row(path: Path, incident: int) -> tuple[int, str]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT event_id, state FROM checkpoints WHERE incident_id = ?",
                           (incident,)).fetchone()
    finally:
        conn.close()
    assert row is not None, "no checkpoint was written"
    return int(row[0]), str(row[1])


def test_writers_keep_a_checkpoint_near_the_head(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    incident = busy_incident(path, 3 * CHECKPOINT_EVERY + 5)
    event_id, _ = checkpoint_row(path, incident)
    with Store(path, readonly=True) as store:
        head = store.last_event_id(incident)
        assert 0 <= head - event_id < CHECKPOINT_EVERY
        assert store.state(incident) == fold(store.events(incident))


def test_a_reader_folds_only_the_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.db"
    incident = busy_incident(path, 2 * CHECKPOINT_EVERY)
    applied: list[int] = []
    original = type(fold([])).apply

    def counting(self, event):  # type: ignore[no-untyped-def]
        applied.append(event.id)
        original(self, event)

    monkeypatch.setattr(type(fold([])), "apply", counting)
    with Store(path, readonly=True) as store:
        state = store.state(incident)
    assert state.notes == 2 * CHECKPOINT_EVERY
    assert len(applied) < CHECKPOINT_EVERY, "the reader re-read the history"


@pytest.mark.parametrize("tamper", [
    # The state itself rewritten to say something the events never said.
    "UPDATE checkpoints SET state = replace(state, '\"notes\":10', '\"notes\":99')",
    # A checkpoint claiming a later event than it was made at.
    "UPDATE checkpoints SET event_id = event_id + 1",
    # The digest recomputed by someone who does not know the format exactly.
    "UPDATE checkpoints SET digest = 'f' || substr(digest, 2)",
    # Made by another fold.
    "UPDATE checkpoints SET fold_version = 'older'",
])
def test_a_tampered_checkpoint_is_ignored_and_rebuilt(tmp_path: Path, tamper: str) -> None:
    path = tmp_path / "w.db"
    incident = busy_incident(path, 10)
    conn = sqlite3.connect(path)
    conn.execute(tamper)
    conn.commit()
    conn.close()
    with Store(path, readonly=True) as reader:
        assert reader.state(incident) == fold(reader.events(incident))
    with Store(path) as writer:
        writer.checkpoint(incident)  # what the next commander writes
    with Store(path, readonly=True) as reader:
        assert reader._load_checkpoint(incident) == fold(reader.events(incident))


def test_a_checkpoint_whose_event_changed_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    incident = busy_incident(path, 10)
    event_id, _ = checkpoint_row(path, incident)
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_are_append_only_update")
    conn.execute("UPDATE events SET hash = 'x' || substr(hash, 2) WHERE id = ?", (event_id,))
    conn.commit()
    conn.close()
    with Store(path, readonly=True) as reader:
        assert reader._load_checkpoint(incident) is None


def test_an_old_schema_reads_without_checkpoints(tmp_path: Path) -> None:
    """A version-1 file (round 1) opened read-only: no migration, no checkpoint, same state."""
    path = tmp_path / "w.db"
    incident = busy_incident(path, 5)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE checkpoints")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Store(path, readonly=True) as reader:
        assert reader.schema_version == 1
        assert reader.state(incident).notes == 5


# --- the codec and the fold: a checkpoint plus the rest is the whole ----------------------------

STEPS = st.lists(st.sampled_from(["note", "approve", "ack"]), max_size=12)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, cut=st.integers(min_value=1, max_value=20))
def test_checkpoint_then_tail_equals_the_whole_fold(tmp_path_factory: pytest.TempPathFactory,
                                                   steps: list[str], cut: int) -> None:
    path = tmp_path_factory.mktemp("prop") / "w.db"
    with Store(path) as store:
        incident = declare_demo(store, CONFIG, "alice", ts=T0)
        for step in steps:
            if step == "note":
                commands.note(store, incident, actor="bob", text="n", ts=T0)
            elif step == "approve":
                for role, user in (("security-lead", "priya"), ("platform-lead", "marco")):
                    with contextlib.suppress(policy.Refused):  # already approved
                        commands.simulated_approval(store, CONFIG, incident, user=user, role=role)
                        break
            else:
                with contextlib.suppress(policy.Refused):  # already acknowledged
                    commands.acknowledge_checklist(store, incident, actor="alice", ts=T0)
        events = store.events(incident)
    whole = fold(events)
    assert checkpoint.decode(checkpoint.encode(whole)) == whole
    cut = min(cut, len(events))
    resumed = fold(events[cut:], checkpoint.decode(checkpoint.encode(fold(events[:cut]))))
    assert resumed == whole

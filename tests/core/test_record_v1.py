"""A record written by round 1's code opens, folds, verifies and exports exactly as it did.

``tests/fixtures/record_v1/warroom.db`` was written by the engine, the CLI verbs and the demo of
commit 2242bd5 (see ``generate.py`` beside it): four incidents covering every event kind of that
time. The exports beside it are what that code rendered. Whatever the record's code becomes
(typed events, one write path, checkpoints), a database in the field must keep working: the
stored JSON is the contract.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.config import Config
from console.demo import demo_config
from console.export import render
from console.state import fold
from console.store import Store

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "record_v1"
EXPORT_NOW = datetime(2026, 3, 16, 9, 0, 0, tzinfo=UTC)
INCIDENTS = [1, 2, 3, 4]
FORMATS = ["pir", "comms", "json"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A private copy: opening it as a commander may migrate it."""
    copy = tmp_path / "warroom.db"
    shutil.copyfile(FIXTURE / "warroom.db", copy)
    copy.chmod(0o600)
    return copy


def _golden(incident_id: int, fmt: str) -> str:
    name = f"INC-{incident_id}.json" if fmt == "json" else f"INC-{incident_id}-{fmt}.md"
    return (FIXTURE / name).read_text(encoding="utf-8")


def _render(store: Store, incident_id: int, fmt: str) -> str:
    events = store.require_events(incident_id)
    samples = {name: store.samples(incident_id, name) for name in store.series_names(incident_id)}
    return render(fmt, events, config=demo_config(Config(), "bad"), samples=samples,
                  now=EXPORT_NOW)


@pytest.mark.parametrize("incident_id", INCIDENTS)
def test_old_record_verifies_and_folds(db: Path, incident_id: int) -> None:
    with Store(db) as store:
        events = store.require_events(incident_id)
        checked, problem = store.verify(incident_id)
        assert problem is None
        assert checked == len(events)
        state = fold(events)
        assert state.incident_id == incident_id
        assert state.last_event_id == events[-1].id


def test_old_record_folds_to_the_states_it_had(db: Path) -> None:
    with Store(db) as store:
        states = {i: fold(store.require_events(i)) for i in INCIDENTS}
    assert states[1].rollback_status == "verified" and states[1].closed
    assert states[2].canary_percent == 100 and states[2].to_version == "v1.4.4"
    assert states[2].immediate_used and states[2].missing_roles == []
    assert states[3].rollback_status == "not_verified" and states[3].commander == "carol"
    assert states[4].rollback_status == "failed" and states[4].warnings


@pytest.mark.parametrize("incident_id", INCIDENTS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_old_record_exports_exactly_as_before(db: Path, incident_id: int, fmt: str) -> None:
    golden = _golden(incident_id, fmt)
    # The JSON's layout changed on purpose (one event per line, written while it is read): its
    # contract is the names and the values, which must be exactly what they were (later
    # versions may add names; none may go or change).
    same = ((lambda text: _keeps(json.loads(text), json.loads(golden))) if fmt == "json"
            else (lambda text: text == golden))
    with Store(db) as store:  # opened as a commander would: migrated if the schema moved on
        assert same(_render(store, incident_id, fmt))
    with Store(db, readonly=True) as reader:  # and read-only after that, as a watcher
        assert same(_render(reader, incident_id, fmt))


def test_old_record_json_export_through_the_command(db: Path, run_warroom) -> None:  # type: ignore[no-untyped-def]
    with Store(db):
        pass  # migrate, as the first commander to open it would
    result = run_warroom("export", "INC-1", "--format", "json", "--db", str(db))
    assert result.code == 0, result.err
    golden = json.loads(_golden(1, "json"))
    assert _keeps(json.loads(result.out), golden)


def _keeps(actual: object, golden: object) -> bool:
    """Whether ``actual`` has every name and value of ``golden`` (and perhaps more names)."""
    if isinstance(golden, dict):
        return isinstance(actual, dict) and all(
            key in actual and _keeps(actual[key], value) for key, value in golden.items())
    if isinstance(golden, list):
        return (isinstance(actual, list) and len(actual) == len(golden)
                and all(_keeps(a, g) for a, g in zip(actual, golden, strict=True)))
    return actual == golden

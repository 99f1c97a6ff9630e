"""``stored_event`` (what the store and the exports build events with, at a third of the frozen
constructor's cost) makes exactly the Event the constructor makes: the same type, equal, frozen,
usable with ``dataclasses.replace`` and pickle."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime

import pytest

from console.model import Event, stored_event

WHEN = datetime(2026, 11, 22, 22, 4, 5, 123000, tzinfo=UTC)
FIELDS = (7, 1, WHEN, "note_added", "alice", {"text": "hi", "n": [1, 2]}, "0" * 64, "a" * 64)


def test_it_is_the_event_the_constructor_makes() -> None:
    built = stored_event(*FIELDS)
    assert type(built) is Event
    assert built == Event(*FIELDS)
    assert repr(built) == repr(Event(*FIELDS))
    assert dataclasses.astuple(built) == dataclasses.astuple(Event(*FIELDS))


def test_it_is_frozen_like_any_event() -> None:
    built = stored_event(*FIELDS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.kind = "edited"  # type: ignore[misc]
    assert built.kind == "note_added"


def test_replace_and_pickle_treat_it_as_an_event() -> None:
    built = stored_event(*FIELDS)
    changed = dataclasses.replace(built, payload={})
    assert type(changed) is Event and changed.payload == {} and changed.id == 7
    assert pickle.loads(pickle.dumps(built)) == built


def test_its_twin_has_the_fields_of_event_in_order() -> None:
    from console.model import _EventParts

    assert [f.name for f in dataclasses.fields(_EventParts)] == [
        f.name for f in dataclasses.fields(Event)]
    assert _EventParts.__slots__ == Event.__slots__

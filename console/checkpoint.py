"""Fold checkpoints: the state of an incident as of one event, so nobody re-reads its history.

A checkpoint is derived data (DESIGN.md): the fold of events 1..N, stored with N's id and hash.
A console or a command reads the newest checkpoint and folds only the events after it, so opening
a 1,000,000-event incident costs what opening a 1,000-event one does. It is never the source of
truth: it is ignored, and rebuilt from the events, when

- its event's hash no longer matches the chain (the record changed under it),
- it was made by a different fold (:data:`FOLD_VERSION` is a digest of the fold's own source, so
  any change to how state is derived retires every checkpoint made before it), or
- its own digest does not match (a truncated write, or an edit by hand).

``encode`` / ``decode`` turn an :class:`~console.state.IncidentState` into JSON and back, driven
by the dataclasses' type hints, so a new field of the state needs no code here.
"""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import fields, is_dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from console import events as events_module
from console import identity as identity_module
from console import model as model_module
from console import state as state_module
from console.state import IncidentState


def _fold_version() -> str:
    digest = hashlib.sha256()
    for module in (model_module, events_module, identity_module, state_module):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


#: Which fold made a checkpoint: a digest of the sources the state is derived by.
FOLD_VERSION = _fold_version()


def digest(event_hash: str, fold_version: str, state_json: str) -> str:
    """What a checkpoint row's ``digest`` column holds: its content, hashed."""
    return hashlib.sha256(f"{event_hash}\n{fold_version}\n{state_json}".encode()).hexdigest()


def encode(state: IncidentState) -> str:
    """The state as compact JSON (NaN kept as JSON's NaN token: it is ours to read back)."""
    return json.dumps(_plain(state), separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> IncidentState:
    """The inverse of :func:`encode`; raises ``ValueError`` on anything it cannot read."""
    try:
        raw = json.loads(text)
        state = _build(IncidentState, raw)
    except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as error:
        raise ValueError(f"unreadable checkpoint: {error}") from None
    if not isinstance(state, IncidentState):
        raise ValueError("unreadable checkpoint: not a state")
    return state


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    namespace = {**vars(events_module), **vars(state_module), **vars(model_module)}
    return typing.get_type_hints(cls, globalns=namespace)


def _build(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _build(options[0], value) if len(options) == 1 else value
    if origin is Literal or hint is Any:
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_build(item, element) for element in value]
    if origin is dict:
        key_hint, item = typing.get_args(hint)
        key_type = int if key_hint is int else str  # JSON keys are strings
        return {key_type(key): _build(item, element) for key, element in value.items()}
    if origin is tuple:
        return tuple(_build(item, element)
                     for item, element in zip(typing.get_args(hint), value, strict=True))
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is float:
        return float(value)
    if isinstance(hint, type) and is_dataclass(hint):
        hints = _hints(hint)
        return hint(**{item.name: _build(hints[item.name], value[item.name])
                       for item in fields(hint) if item.name in value})
    return value

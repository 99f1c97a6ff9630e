"""The JSON export of an incident: the contract scripts and status bars rely on (DESIGN.md).

One object, indented by 2, UTF-8 kept as is, ending with a newline:

- ``incident``: ``id`` (``INC-n``), ``title``, ``priority``, ``category``, ``service``,
  ``from_version``, ``to_version``, ``commander`` (the commander at the last event);
- ``state``: :func:`console.state.state_json` of the fold — at least ``canary_percent`` (int),
  ``rollback_status`` (one of :data:`console.model.ROLLBACK_STATUSES`), ``approvals`` (list of
  ``{role, user, kind, stale, ...}``) and ``guardrails`` (list of ``{name, status, ...}``);
- ``events``: every event as :meth:`console.model.Event.to_json` gives it (``id``, ``ts``,
  ``kind``, ``actor``, ``payload``, ``hash``, ...), oldest first.

Numbers JSON cannot carry (NaN, ±Inf) become ``null``, so the output is always valid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from console.model import Event
from console.state import fold, state_json
from console.store import json_safe


def export_document(events: Sequence[Event]) -> dict[str, Any]:
    """The export as a dict (what :func:`render_json` serialises)."""
    state = fold(events)
    return {
        "incident": {
            "id": state.id_text,
            "title": state.title,
            "priority": state.priority,
            "category": state.category,
            "service": state.service,
            "from_version": state.from_version,
            "to_version": state.to_version,
            "commander": state.commander,
        },
        "state": state_json(state),
        "events": [event.to_json() for event in events],
    }


def render_json(events: Sequence[Event]) -> str:
    """One incident (its events, oldest first) as the JSON export."""
    document = json_safe(export_document(events))
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

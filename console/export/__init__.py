"""Exports of an incident: the PIR (markdown), communication drafts, and JSON.

``render(fmt, events, ...)`` is the one entry point the CLI and the console use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.config import Config
    from console.model import Event

Samples = dict[str, list[tuple[float, float | None]]]


def render(fmt: str, events: Sequence[Event], *, config: Config | None = None,
           samples: Samples | None = None, now: datetime | None = None) -> str:
    """Render ``events`` (one incident, oldest first) as ``pir``, ``comms`` or ``json``."""
    if fmt == "pir":
        from console.export.pir import render_pir

        return render_pir(events, config=config, samples=samples or {}, now=now)
    if fmt == "comms":
        from console.export.comms import render_comms

        return render_comms(events, config=config, samples=samples or {}, now=now)
    if fmt == "json":
        from console.export.jsonexport import render_json

        return render_json(events)
    raise ValueError(f"unknown export format {fmt!r} (pir, comms, json)")

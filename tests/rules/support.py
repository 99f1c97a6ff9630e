"""What the rules' tests share: one config, a timeline builder with its own clock, ready states.

Everything here is pure: events are built the way the store would build them (ids from 1, one
incident, times on a clock the test moves), then folded. No store, no screen, no adapter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from console import policy
from console.config import Config
from console.model import Event, Kind
from console.state import IncidentState, fold

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)

#: security needs security-lead + platform-lead; regulatory needs platform-lead + executive, and
#: executive has no roster. priya is on two rosters (so "one person, two roles" can be tried);
#: dana is on a roster and declares the change for commander alice in some tests.
CONFIG = Config.model_validate(
    {
        "roster": {
            "security-lead": ["priya", "sam"],
            "platform-lead": ["marco", "priya", "dana"],
        },
        "guardrails": [
            {"name": "error-ratio", "query": 'err{track="$track"}', "max": 0.02,
             "consecutive": 3, "on_breach": "rollback"},
            {"name": "p99-latency", "query": 'p99{track="$track"}', "max_ratio_to_baseline": 2.0,
             "consecutive": 2},
        ],
    }
)
GUARDRAILS = ("error-ratio", "p99-latency")


def declaration(config: Config = CONFIG, **overrides: Any) -> dict[str, Any]:
    """The payload `warroom declare` would record for seed 000's P0 security hotfix."""
    args: dict[str, Any] = {
        "title": "PII exposed by the redaction API",
        "priority": "P0",
        "category": "security",
        "service": "redaction-api",
        "from_version": "v1.4.2",
        "to_version": "v1.4.3",
        "bypass_specs": ["canary=harm is ongoing; canary cannot match"],
        "affects": [],
        "commander": "alice",
    }
    payload_overrides = {k: v for k, v in overrides.items() if k not in args}
    args.update({k: v for k, v in overrides.items() if k in args})
    payload = policy.declaration(config, **args).to_payload()
    payload.update(payload_overrides)
    return payload


class Timeline:
    """Events as the store would number them, on a clock the test moves."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.now = T0

    def add(self, kind: str, payload: dict[str, Any] | None = None, actor: str = "alice",
            after_s: float = 1.0) -> Event:
        self.now += timedelta(seconds=after_s)
        event = Event(len(self.events) + 1, 1, self.now, str(kind), actor, payload or {})
        self.events.append(event)
        return event

    def wait(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    @property
    def state(self) -> IncidentState:
        return fold(self.events)

    # --- the usual steps -------------------------------------------------------------------------

    def approve(self, role: str, user: str, kind: str = "direct", version: str = "v1.4.3",
                actor: str | None = None) -> Event:
        payload = {"role": role, "user": user, "kind": kind, "version": version}
        if kind == "relayed":
            payload |= {"relayed_from": user, "evidence": "bridge call 22:14"}
        return self.add(Kind.APPROVED, payload,
                        actor=actor or (user if kind == "direct" else "alice"))

    def approve_all(self) -> None:
        self.approve("security-lead", "priya")
        self.approve("platform-lead", "marco")

    def preflight(self, ok: bool = True, detail: str = "rollback can run",
                  acknowledge: bool = True) -> None:
        kind = Kind.PREFLIGHT_PASSED if ok else Kind.PREFLIGHT_FAILED
        self.add(kind, {"target": "v1.4.2", "checks": [], "detail": detail})
        if acknowledge:
            self.add(Kind.CHECKLIST_ACKED, {"items": ["migrations only add"]})

    def weight(self, percent: int, stage_index: int, action: str = "advance") -> Event:
        self.add(Kind.WEIGHT_REQUESTED, {"to_percent": percent, "action": action})
        return self.add(Kind.WEIGHT_SET, {"percent": percent, "stage_index": stage_index,
                                          "action": action}, after_s=0)

    def guardrail(self, name: str, status: str, **payload: Any) -> Event:
        return self.add(Kind.GUARDRAIL_CHANGED, {"name": name, "status": status, **payload},
                        actor="warroom", after_s=0)

    def all_healthy(self) -> None:
        for name in GUARDRAILS:
            self.guardrail(name, "healthy")


def declared(commander: str = "alice", actor: str | None = None, **overrides: Any) -> Timeline:
    """A timeline holding only the declaration (by ``actor``, default the commander)."""
    timeline = Timeline()
    timeline.add(Kind.DECLARED, declaration(commander=commander, **overrides),
                 actor=actor or commander, after_s=0)
    return timeline


def ready() -> Timeline:
    """Declared, approved, preflight passed and acknowledged: nothing blocks the first stage."""
    timeline = declared()
    timeline.approve_all()
    timeline.preflight()
    return timeline


def at_first_stage(held: bool = True) -> Timeline:
    """At 1% with healthy guardrails; the 5-minute hold has elapsed when ``held``."""
    timeline = ready()
    timeline.weight(1, 0)
    timeline.all_healthy()
    if held:
        timeline.wait(300)
    return timeline


def codes(timeline: Timeline) -> list[str]:
    return [block.code for block in policy.advance_blocks(timeline.state, timeline.now)]

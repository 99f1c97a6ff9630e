"""A fixed, realistic incident for the export tests, written through a real :class:`Store`.

The story follows seed 000's opening: at 22:04 UTC a P0 security emergency is declared on
``redaction-api`` (PII returned unredacted), to ship v1.4.2 → v1.4.3 bypassing the canary
(compressed) and the change window. The security lead approves directly, the platform lead's
approval is relayed from the bridge call, the rollback preflight passes and the compatibility
checklist is acknowledged; the canary goes to 1 %, then 10 % with the hold overridden. At 10 % the
error rate breaches its limit, the breach is sustained, and the automatic rollback runs to v1.4.2.

Three endings:

- :func:`build_verified` — the rollback is VERIFIED, the post-emergency items are recorded and the
  incident is closed (the golden PIR);
- :func:`build_not_verified` — the rollback is NOT VERIFIED, command is handed over, the incident
  stays open;
- :func:`build_promoted` — no breach: the target changes to v1.4.4 (earlier approvals go stale),
  the platform lead's approval is waived, the canary goes 1 % → 10 % → 100 % IMMEDIATELY, and
  after midnight some post-emergency items are recorded (one failed), others stay open.

Every timestamp is fixed (``ts=`` on every write), and metric samples are written to the store and
read back, exactly as ``warroom export`` reads them. The declaration comes from
:func:`console.policy.declaration` with the seeds' default config plus what a deployment would
configure (roster, guardrails, mission-critical scenarios: :func:`fixture_config`); the events
after it follow the order and payloads :mod:`console.engine` writes. :class:`IncidentBuilder` is
public so tests can write their own short timelines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.config import Config, ExportSettings, GuardrailSettings, ScenarioSettings
from console.model import Event, Kind
from console.policy import declaration, emergency_rate_warning
from console.store import Store

DAY = datetime(2026, 3, 12, tzinfo=UTC)
#: When the tests pretend to export (after every variant's last event).
EXPORT_NOW = datetime(2026, 3, 13, 9, 0, 0, tzinfo=UTC)

TITLE = "PII in redaction-api responses: customer emails returned unredacted"
HOSTILE_NOTE = (
    "Support forwarded a customer report | pipe\n"
    "# not a heading\n"
    "[bold]markup[/] and <script>alert(1)</script>"
)
RELAY_EVIDENCE = "bridge call 22:08 | confirmed in Slack #inc-redaction"
HOLD_OVERRIDE_REASON = "Leak is ongoing; 1% showed zero redaction misses in 3 minutes"
NOT_VERIFIED_REASON = ("not healthy 10m 10s after v1.4.2 went live: error-rate on the stable "
                       "track: baseline 5.20% > limit 2.00% (max)")
WAIVER_REASON = "marco unreachable (paged 22:20 and 22:25); security lead accepts platform risk"
IMMEDIATE_REASON = "Active exfiltration confirmed by the security team at 23:39"

ERROR_RATE_QUERY = (
    'sum(rate(http_requests_total{service="$service",track="$track",code=~"5.."}[1m])) / '
    'sum(rate(http_requests_total{service="$service",track="$track"}[1m]))'
)
LATENCY_QUERY = (
    "histogram_quantile(0.95, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{service="$service",track="$track"}[1m])))'
)


def fixture_config(local_timezone: str = "") -> Config:
    """The seeds' defaults, plus what a real deployment would configure: roster, guardrails and
    the mission-critical scenarios (and, when given, the local time zone of the exports)."""
    return Config(
        export=ExportSettings(local_timezone=local_timezone,
                              customer_names={"redaction-api": "Support transcripts"}),
        roster={"security-lead": ["priya"], "platform-lead": ["marco"]},
        guardrails=[
            GuardrailSettings(name="error-rate", query=ERROR_RATE_QUERY, unit="%", scale=100,
                              max=0.02, consecutive=3, on_breach="rollback"),
            GuardrailSettings(name="p95-latency", query=LATENCY_QUERY, unit="s", max=0.8,
                              max_ratio_to_baseline=1.5, consecutive=3, on_breach="hold"),
        ],
        scenarios=ScenarioSettings(mission_critical=["support-transcripts", "login"]),
    )


@dataclass(frozen=True)
class BuiltIncident:
    """What an export needs: the events and samples as the store returns them."""

    incident_id: int
    events: list[Event]
    samples: dict[str, list[tuple[float, float | None]]]
    config: Config
    now: datetime
    path: Path


def at(clock: str) -> datetime:
    """``"22:04:05"`` on the incident's day; ``"+1d 00:15:00"`` on the next one."""
    days = 0
    if clock.startswith("+"):
        offset, _, clock = clock.partition(" ")
        days = int(offset[1:].removesuffix("d"))
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return DAY + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


class IncidentBuilder:
    """Writes one incident to a real store, with fixed, rising timestamps."""

    def __init__(self, path: Path, config: Config | None = None) -> None:
        self.path = path
        self.config = config or fixture_config()
        self.store = Store(path)
        self.incident_id = 0
        self._last: datetime | None = None

    def _clock(self, clock: str) -> datetime:
        ts = at(clock)
        if self._last is not None and ts < self._last:
            raise ValueError(f"{clock} is before the previous event")
        self._last = ts
        return ts

    def declare(self, clock: str, *, commander: str = "sam", to_version: str = "v1.4.3",
                bypasses: list[str] | None = None, rate_count: int = 2,
                simulated: bool = False, title: str = TITLE) -> None:
        payload = declaration(
            self.config, title=title, priority="P0", category="security",
            service="redaction-api", from_version="v1.4.2", to_version=to_version,
            bypass_specs=bypasses if bypasses is not None else [
                "canary=Harm is ongoing: every support transcript response leaks customer "
                "emails",
                "change-window=22:04 in Bengaluru; the fix cannot wait for the 09:00 window",
            ],
            affects=["support-transcripts"], commander=commander, simulated=simulated,
        )
        warning = emergency_rate_warning(self.config, rate_count)
        events = self.store.create_incident(commander, payload, [warning] if warning else [],
                                            ts=self._clock(clock))
        self.incident_id = events[0].incident_id

    def add(self, clock: str, kind: Kind, actor: str, /, **payload: Any) -> Event:
        return self.store.append(self.incident_id, kind, actor, payload, ts=self._clock(clock))

    def find(self, kind: str) -> int:
        """The id of the newest event of ``kind`` so far."""
        return [e for e in self.store.events(self.incident_id) if e.kind == kind][-1].id

    def samples(self, series: str, start: str, values: Sequence[float | None],
                step_s: float = 10.0) -> None:
        base = at(start).timestamp()
        self.store.add_samples(
            self.incident_id,
            [(series, base + index * step_s, value) for index, value in enumerate(values)],
        )

    def finish(self, now: datetime = EXPORT_NOW) -> BuiltIncident:
        events = self.store.events(self.incident_id)
        samples = {name: self.store.samples(self.incident_id, name)
                   for name in self.store.series_names(self.incident_id)}
        self.store.close()
        return BuiltIncident(self.incident_id, events, samples, self.config, now, self.path)


# --- the shared beginning ------------------------------------------------------------------------

CHECKS_PREFLIGHT = [
    {"name": "target version known", "ok": True, "detail": "v1.4.2 (live before the change)"},
    {"name": "target deployable", "ok": True, "detail": "registry has redaction-api:v1.4.2"},
    {"name": "compatibility checklist", "ok": True, "detail": "acknowledged by sam"},
]


def _guardrail(b: IncidentBuilder, clock: str, name: str, status: str, previous: str, *,
               canary: float | None, baseline: float | None, limit: float | None, detail: str,
               breaches: int = 0, sustained: bool = False) -> None:
    """A status change as the engine writes it (the breach tracker's transition payload)."""
    on_breach = next(g.on_breach for g in b.config.guardrails if g.name == name)
    b.add(clock, Kind.GUARDRAIL_CHANGED, "warroom", name=name, status=status, previous=previous,
          canary=canary, baseline=baseline, limit=limit, evidence=412.0, detail=detail,
          breaches=breaches, consecutive=3, sustained=sustained, on_breach=on_breach)


def _opening(b: IncidentBuilder) -> None:
    """Declaration → approvals → note → checklist and preflight → 1%."""
    b.declare("22:04:05")
    b.add("22:04:30", Kind.CONSOLE_OPENED, "sam", user="sam", host="bastion-1", pid=4242,
          mode="commander")
    b.add("22:06:10", Kind.APPROVED, "priya", role="security-lead", user="priya", kind="direct",
          version="v1.4.3", note="Reviewed the redaction diff; ship it.")
    b.add("22:08:45", Kind.APPROVED, "sam", role="platform-lead", user="marco", kind="relayed",
          relayed_from="marco", evidence=RELAY_EVIDENCE, version="v1.4.3")
    b.add("22:09:30", Kind.NOTE, "sam", text=HOSTILE_NOTE)
    b.add("22:10:00", Kind.CHECKLIST_ACKED, "sam",
          items=list(b.config.rollback.compatibility_checklist))
    b.add("22:10:05", Kind.PREFLIGHT_REQUESTED, "warroom", target="v1.4.2")
    b.add("22:10:09", Kind.PREFLIGHT_PASSED, "warroom", target="v1.4.2",
          checks=CHECKS_PREFLIGHT, detail="all checks passed")
    b.add("22:11:00", Kind.WEIGHT_REQUESTED, "sam", from_percent=0, to_percent=1, stage_index=0,
          overrides=[], action="advance")
    b.add("22:11:02", Kind.WEIGHT_SET, "sam", percent=1, stage_index=0, action="advance",
          reported=1)
    _guardrail(b, "22:11:10", "error-rate", "healthy", "unknown", canary=0.004, baseline=0.0042,
               limit=0.02, detail="canary 0.40% ≤ limit 2.00% (max)")
    _guardrail(b, "22:11:10", "p95-latency", "healthy", "unknown", canary=0.31, baseline=0.29,
               limit=0.435, detail="canary 0.31 s ≤ limit 0.43 s (1.5× baseline 0.29 s)")


def _to_ten_percent(b: IncidentBuilder) -> None:
    b.add("22:14:20", Kind.WEIGHT_REQUESTED, "sam", from_percent=1, to_percent=10, stage_index=1,
          action="advance",
          overrides=[{"block": "hold", "words": "hold at 1%: 1m 42s left of 5m 00s",
                      "reason": HOLD_OVERRIDE_REASON}])
    b.add("22:14:22", Kind.WEIGHT_SET, "sam", percent=10, stage_index=1, action="advance",
          reported=10)


def _breach_and_rollback(b: IncidentBuilder, *, console_gap: bool = False) -> None:
    """At 10% the error rate breaches three polls in a row; the engine rolls back to v1.4.2.

    The engine's order: the rollback is journalled, the deployer is called (reporting progress),
    then it is started, the weight goes to 0, and a later poll sees the target live.
    """
    _guardrail(b, "22:19:40", "error-rate", "breach", "healthy", canary=0.061, baseline=0.0042,
               limit=0.02, detail="canary 6.10% > limit 2.00% (max)", breaches=1)
    _guardrail(b, "22:19:50", "error-rate", "breach", "breach", canary=0.058, baseline=0.0042,
               limit=0.02, detail="canary 5.80% > limit 2.00% (max)", breaches=2)
    _guardrail(b, "22:20:00", "error-rate", "breach", "breach", canary=0.055, baseline=0.0042,
               limit=0.02, detail="canary 5.50% > limit 2.00% (max)", breaches=3,
               sustained=True)
    b.add("22:20:00", Kind.GUARDRAIL_ACTION, "warroom", name="error-rate", action="rollback",
          breaches=3)
    b.add("22:20:00", Kind.ROLLBACK_REQUESTED, "warroom", target="v1.4.2",
          from_version="v1.4.3", weight=10, automatic=True,
          reason="sustained breach of error-rate (3 in a row)")
    if console_gap:  # the commander's console quit, and was opened again 30 s later
        b.add("22:20:05", Kind.CONSOLE_CLOSED, "sam", user="sam", host="bastion-1", pid=4242,
              how="quit")
        b.add("22:20:35", Kind.CONSOLE_OPENED, "sam", user="sam", host="bastion-1", pid=4343,
              mode="commander")
    b.add("22:20:40", Kind.ROLLBACK_PROGRESS, "warroom", target="v1.4.2",
          message="3/6 pods on v1.4.2")
    b.add("22:21:20", Kind.ROLLBACK_STARTED, "warroom", target="v1.4.2",
          detail="rollout of redaction-api to v1.4.2 accepted (6/6 pods updated)")
    b.add("22:21:20", Kind.WEIGHT_SET, "warroom", percent=0, stage_index=-1, action="rollback")
    b.add("22:21:25", Kind.ROLLBACK_COMPLETED, "warroom", target="v1.4.2", version="v1.4.2")
    b.add("22:21:25", Kind.VERIFICATION_STARTED, "warroom", target="v1.4.2", hold_s=60.0)


def _samples(b: IncidentBuilder, *, stable_from: str, stable_error: float) -> None:
    """What the engine's poller writes, every 10 s: canary, limit and baseline while the canary
    is live (22:11:10 → 22:20:00), nothing while the rollback runs, the baseline after it."""
    b.samples("error-rate/canary", "22:11:10", [*[0.004] * 50, 0.031, 0.061, 0.058, 0.055])
    b.samples("error-rate/limit", "22:11:10", [0.02] * 54)
    b.samples("error-rate/baseline", "22:11:10", [0.0042] * 54)
    b.samples("p95-latency/canary", "22:11:10", [*[0.31] * 50, 0.38, 0.42, 0.41, 0.4])
    b.samples("p95-latency/limit", "22:11:10", [*[0.435] * 50, 0.435, 0.42, 0.42, 0.435])
    b.samples("p95-latency/baseline", "22:11:10", [0.29] * 54)
    b.samples("error-rate/baseline", stable_from, [stable_error] * 12)
    b.samples("p95-latency/baseline", stable_from, [0.29] * 12)


# --- the three endings ---------------------------------------------------------------------------


def build_verified(tmp_path: Path) -> BuiltIncident:
    """The golden incident: automatic rollback, VERIFIED, post-emergency items recorded, closed.

    With the marks people add for the review: when the leak was detected and began, who was
    scribe and comms, a ticket, a highlighted note and a highlighted event, and the commander's
    console closed for 30 s while the rollback ran (left out of its duration)."""
    b = IncidentBuilder(tmp_path / "verified.db")
    _opening(b)
    b.add("22:12:00", Kind.MILESTONE, "sam", milestone="detected", at="2026-03-12T21:52:00.000Z",
          reason="support ticket SUP-4411 with an unredacted email")
    b.add("22:12:10", Kind.MILESTONE, "sam", milestone="impact-started",
          at="2026-03-12T19:30:00.000Z", reason="v1.4.1 deploy; first leaked response in logs")
    b.add("22:12:20", Kind.ROLE_ASSIGNED, "sam", role="scribe", user="lee")
    b.add("22:12:21", Kind.ROLE_ASSIGNED, "sam", role="comms", user="ana")
    b.add("22:12:30", Kind.NOTE, "lee", text="Ticket and dashboard for the review",
          links=[{"kind": "ticket", "url": "https://tickets.example/SUP-4411"},
                 {"kind": "dashboard", "url": "https://grafana.example/d/redaction"}])
    _to_ten_percent(b)
    _breach_and_rollback(b, console_gap=True)
    b.add("22:22:30", Kind.ROLLBACK_VERIFIED, "warroom", target="v1.4.2", checks=[
        {"name": "deployer reports v1.4.2", "ok": True, "detail": "v1.4.2"},
        {"name": "canary weight 0%", "ok": True, "detail": "0%"},
        {"name": "guardrails healthy on the stable track for 1m 00s", "ok": True,
         "detail": "error-rate, p95-latency"},
    ])
    b.add("22:31:00", Kind.NOTE, "sam",
          text="Error spike: the new redaction regex times out on long transcripts. "
               "Preparing v1.4.4.", highlight=True)
    b.add("22:32:00", Kind.HIGHLIGHTED, "lee", event_id=b.find(Kind.ROLLBACK_REQUESTED),
          reason="the automatic rollback fired on its own")
    b.add("22:36:30", Kind.MILESTONE, "sam", milestone="mitigated",
          at="2026-03-12T22:36:00.000Z", reason="transcript export disabled: no new leaks")
    b.add("22:38:00", Kind.GATE_RECORDED, "sam",
          item="Verify resolution: the harm has stopped and the metrics confirm it",
          result="failed",
          detail="the leak continues on v1.4.2; transcript export disabled at 22:36 "
                 "(flag export_transcripts=false) to stop it")
    b.add("22:39:00", Kind.GATE_RECORDED, "sam",
          item="canary: Watch every metric at 100% for 15-30 minutes", result="waived",
          detail="v1.4.3 never reached 100%: it was rolled back at 10%")
    b.add("22:40:00", Kind.GATE_RECORDED, "sam",
          item="change-window: Confirm on-call coverage through the next business day",
          result="passed", detail="Bengaluru day shift (anil) takes over at 09:00 IST")
    b.add("22:41:00", Kind.GATE_RECORDED, "sam", item="Schedule the post-incident review",
          result="passed", detail="PIR booked for 2026-03-13 10:00 UTC")
    b.add("22:45:00", Kind.CLOSED, "sam",
          reason="v1.4.3 rolled back and verified; leak contained by disabling transcript "
                 "export; v1.4.4 follows as a new change",
          waived_items=[])
    _samples(b, stable_from="22:22:40", stable_error=0.0041)
    return b.finish()


def build_not_verified(tmp_path: Path) -> BuiltIncident:
    """The stable track stays unhealthy after the rollback: NOT VERIFIED at the timeout; command
    changes hands; still open."""
    b = IncidentBuilder(tmp_path / "not_verified.db", fixture_config("Asia/Kolkata"))
    _opening(b)
    _to_ten_percent(b)
    _breach_and_rollback(b)
    b.add("22:21:35", Kind.ROLLBACK_PROGRESS, "warroom", target="v1.4.2",
          message="verification waits: error-rate on the stable track: baseline 5.20% > limit "
                  "2.00% (max)")
    b.add("22:24:10", Kind.NOTE, "sam",
          text="v1.4.2 pods fail on the column v1.4.3's migration added; checking the "
               "compatibility checklist")
    b.add("22:31:35", Kind.ROLLBACK_NOT_VERIFIED, "warroom", target="v1.4.2",
          reason=NOT_VERIFIED_REASON, checks=[
              {"name": "deployer reports v1.4.2", "ok": True, "detail": "v1.4.2"},
              {"name": "canary weight 0%", "ok": True, "detail": "0%"},
              {"name": "guardrails healthy on the stable track", "ok": False,
               "detail": "error-rate on the stable track: baseline 5.20% > limit 2.00% (max)"},
          ])
    b.add("22:33:00", Kind.HANDOVER, "lee", previous_user="sam", previous_host="bastion-1",
          previous_pid=4242, user="lee", host="bastion-2", pid=5151,
          reason="sam's bastion session dropped; lee takes command")
    _samples(b, stable_from="22:31:40", stable_error=0.052)
    return b.finish()


def build_promoted(tmp_path: Path) -> BuiltIncident:
    """Target change, waiver, 100% IMMEDIATELY after midnight; post-emergency items partly done."""
    b = IncidentBuilder(tmp_path / "promoted.db")
    b.declare("22:04:05", bypasses=[
        "eval-gate=The full eval takes 3 hours; the leak is ongoing",
        "canary=Harm is ongoing: every support transcript response leaks customer emails",
        "change-window=22:04 in Bengaluru; the fix cannot wait for the 09:00 window",
    ])
    b.add("22:04:30", Kind.CONSOLE_OPENED, "sam", user="sam", host="bastion-1", pid=4242,
          mode="commander")
    b.add("22:06:10", Kind.APPROVED, "priya", role="security-lead", user="priya", kind="direct",
          version="v1.4.3")
    b.add("22:08:45", Kind.APPROVED, "sam", role="platform-lead", user="marco", kind="relayed",
          relayed_from="marco", evidence=RELAY_EVIDENCE, version="v1.4.3")
    b.add("22:15:00", Kind.TARGET_CHANGED, "sam", from_version="v1.4.3", to_version="v1.4.4",
          reason="v1.4.3 misses phone numbers; v1.4.4 redacts them too")
    b.add("22:31:40", Kind.APPROVED, "priya", role="security-lead", user="priya", kind="direct",
          version="v1.4.4")
    b.add("22:33:00", Kind.WAIVED, "sam", role="platform-lead", reason=WAIVER_REASON,
          version="v1.4.4")
    b.add("22:34:00", Kind.CHECKLIST_ACKED, "sam",
          items=list(b.config.rollback.compatibility_checklist))
    b.add("22:34:05", Kind.PREFLIGHT_REQUESTED, "warroom", target="v1.4.2")
    b.add("22:34:09", Kind.PREFLIGHT_PASSED, "warroom", target="v1.4.2",
          checks=CHECKS_PREFLIGHT, detail="all checks passed")
    b.add("23:20:00", Kind.WEIGHT_REQUESTED, "sam", from_percent=0, to_percent=1, stage_index=0,
          overrides=[], action="advance")
    b.add("23:20:02", Kind.WEIGHT_SET, "sam", percent=1, stage_index=0, action="advance",
          reported=1)
    _guardrail(b, "23:20:10", "error-rate", "healthy", "unknown", canary=0.004, baseline=0.0042,
               limit=0.02, detail="canary 0.40% ≤ limit 2.00% (max)")
    _guardrail(b, "23:20:10", "p95-latency", "healthy", "unknown", canary=0.3, baseline=0.29,
               limit=0.435, detail="canary 0.30 s ≤ limit 0.43 s (1.5× baseline 0.29 s)")
    b.add("23:25:10", Kind.WEIGHT_REQUESTED, "sam", from_percent=1, to_percent=10, stage_index=1,
          overrides=[], action="advance")
    b.add("23:25:12", Kind.WEIGHT_SET, "sam", percent=10, stage_index=1, action="advance",
          reported=10)
    b.add("23:40:00", Kind.WEIGHT_REQUESTED, "sam", from_percent=10, to_percent=100,
          stage_index=3, overrides=[], action="immediate", reason=IMMEDIATE_REASON)
    b.add("23:40:02", Kind.WEIGHT_SET, "sam", percent=100, stage_index=3, action="immediate",
          reported=100)
    b.add("+1d 00:12:00", Kind.GATE_RECORDED, "sam",
          item="Verify resolution: the harm has stopped and the metrics confirm it",
          result="passed", detail="no unredacted emails or phone numbers in 30 min of sampled "
                                  "responses")
    b.add("+1d 00:12:30", Kind.MILESTONE, "sam", milestone="resolved",
          at="2026-03-13T00:10:00.000Z", reason="30 min of sampled responses clean at 100%")
    b.add("+1d 00:13:00", Kind.GATE_RECORDED, "sam",
          item="canary: Watch every metric at 100% for 15-30 minutes", result="passed",
          detail="watched 30 min at 100%: error-rate 0.41%, p95 0.30 s")
    b.add("+1d 00:20:00", Kind.GATE_RECORDED, "sam",
          item="eval-gate: Run the skipped eval against the promoted version", result="failed",
          detail="v1.4.4 regresses 2 address-redaction cases")
    b.samples("error-rate/canary", "23:20:10", [*[0.004] * 30, *[0.0043] * 30])
    b.samples("error-rate/limit", "23:20:10", [0.02] * 60)
    b.samples("error-rate/baseline", "23:20:10", [0.0042] * 60)
    return b.finish()


#: The fixture incidents by name (as the golden files name them).
BUILDERS: dict[str, Callable[[Path], BuiltIncident]] = {
    "verified": build_verified,
    "not_verified": build_not_verified,
    "promoted": build_promoted,
}

"""Flagger's manual gates, decided by the incident record (``warroom gate``).

Flagger (fluxcd/flagger) halts a canary at its *gates*: webhooks it POSTs to and reads only the
status of — 2xx (Flagger accepts up to 202) opens the gate, anything else or no answer keeps it
closed (``pkg/controller/webhook.go``). Four types are manual gates
(``pkg/apis/flagger/v1beta1/canary.go``):

- ``confirm-rollout``: before the canary is scaled up (new revision detected);
- ``confirm-traffic-increase``: before each increase of the canary's weight;
- ``confirm-promotion``: before the canary is promoted to the primary;
- ``rollback``: while the canary is Progressing or Waiting — 2xx means *roll back now*.

Each call carries Flagger's ``CanaryWebhookPayload``: ``{"name", "namespace", "phase",
"checksum", "metadata"}``. The checksum is a hash of the Canary's tracked configs and last
applied spec: it names one *run* of the canary. Flagger's own load tester keeps its gates in a
``sync.Map`` keyed by name and namespace (``pkg/loadtester/gate.go``): a restart forgets every
approval, and an approval outlives the run it was given for. Here a gate's decision is an event
of the incident (:data:`~console.model.Kind.FLAGGER_GATE_OPENED` / ``..._CLOSED``, written by the
commander's console through :mod:`console.commands`), bound to the checksum it was given for:

- open only when the record holds an opening of that gate for exactly this checksum;
- a traffic increase is opened for *one* call (one ``a`` in the console is one step); the call
  it lets through is recorded before 2xx is answered, in the same transaction that uses it up;
- nothing is ever answered 2xx without that: no incident, no decision, another canary, another
  run, a closed incident, a store that cannot be read or written — each answers 403 with why.

The answer is decided inside the store's write transaction (:func:`console.commands.ask_gate`),
so two calls cannot both use one opening. A call is recorded when its answer differs from the
last one recorded for that gate (Flagger polls every analysis interval: the timeline keeps one
line per change, not one per poll).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Literal

from console.state import IncidentState

GateType = Literal["confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"]
#: Flagger's manual gate types (``flaggerv1.HookType``), in the order a run meets them.
GATES: tuple[GateType, ...] = ("confirm-rollout", "confirm-traffic-increase",
                               "confirm-promotion", "rollback")
#: Flagger's canary phases (``flaggerv1.CanaryPhase``).
PHASES = ("Initializing", "Initialized", "Waiting", "Progressing", "WaitingPromotion",
          "Promoting", "Finalising", "Succeeded", "Failed", "Terminating", "Terminated")
#: Largest webhook body read (Flagger's payloads are a few hundred bytes).
MAX_BODY = 64 * 1024


class PayloadError(ValueError):
    """A body that is not Flagger's webhook payload."""


@dataclass(frozen=True)
class WebhookPayload:
    """Flagger's ``CanaryWebhookPayload``."""

    name: str
    namespace: str
    phase: str
    checksum: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def canary(self) -> str:
        """``name.namespace``, as Flagger's logs and its load tester name a canary."""
        return f"{self.name}.{self.namespace}"


def parse_payload(body: bytes) -> WebhookPayload:
    """Flagger's payload from a request body; PayloadError (one line) when it is not one."""
    if len(body) > MAX_BODY:
        raise PayloadError(f"body larger than {MAX_BODY} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise PayloadError("the body is not a JSON object")
    values: dict[str, str] = {}
    for key in ("name", "namespace", "phase", "checksum"):
        value = data.get(key, "")
        if not isinstance(value, str):
            raise PayloadError(f"{key} is not a string")
        values[key] = value.strip()
    for key in ("name", "namespace", "checksum"):
        if not values[key]:
            raise PayloadError(f"no {key}")
        if len(values[key]) > 253 or not values[key].isprintable():
            raise PayloadError(f"{key} is not a Kubernetes name or a checksum")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise PayloadError("metadata is not a map of strings")
    phase = values["phase"] if values["phase"] in PHASES else (values["phase"][:40] or "?")
    return WebhookPayload(values["name"], values["namespace"], phase, values["checksum"],
                          dict(metadata))


def token_matches(payload: WebhookPayload, expected: str | None) -> bool:
    """The webhook's ``metadata.token`` is the configured one (always, when none is asked)."""
    if not expected:
        return True
    given = payload.metadata.get("token", "")
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Answer:
    """What the gate answers one call: open (2xx) or closed (403), and why in words."""

    open: bool
    detail: str

    @property
    def word(self) -> str:
        return "open" if self.open else "closed"


def decide(state: IncidentState, gate: str, payload: WebhookPayload, canary: str) -> Answer:
    """The gate's answer from the record alone (``canary``: the ``name.namespace`` this
    incident's gate is for). Closed unless the record opens this gate for this very run."""
    if gate not in GATES:
        return Answer(False, f"{gate!r} is not one of Flagger's gates ({', '.join(GATES)})")
    if payload.canary != canary:
        return Answer(False, f"{state.id_text} gates canary {canary}, not {payload.canary}")
    if state.closed:
        return Answer(False, f"{state.id_text} is closed: no gate opens any more")
    decision = state.flagger_gates.get(gate)
    if decision is None:
        return Answer(False, f"no decision in {state.id_text}: the commander has not opened "
                             f"{gate}")
    if decision.checksum != payload.checksum:
        state_word = "opened" if decision.open else "decided"
        return Answer(False, f"{state_word} for run {decision.checksum}, not {payload.checksum}:"
                             " a new run needs a new decision")
    if not decision.open:
        why = decision.reason or "closed"
        return Answer(False, f"closed by {decision.by}: {why}")
    once = " for one call" if decision.once else ""
    return Answer(True, f"opened{once} by {decision.by}: {decision.reason}")


def worth_recording(state: IncidentState, gate: str, payload: WebhookPayload,
                    answer: Answer) -> bool:
    """Whether this call goes on the timeline: a one-use opening it uses up, or an answer that
    differs from the last one recorded at this gate (run, phase or open/closed)."""
    decision = state.flagger_gates.get(gate)
    if answer.open and decision is not None and decision.once:
        return True
    last = state.flagger_asks.get(gate)
    return last is None or (last.checksum, last.phase, last.answer, last.canary) != (
        payload.checksum, payload.phase, answer.word, payload.canary)


def gates_for_advance(state: IncidentState, to_percent: int, *, immediate: bool = False
                      ) -> list[tuple[str, bool]]:
    """The gates (type, once) an advance to ``to_percent`` opens for the current run: the
    rollout itself when it is not yet confirmed, then one traffic increase, or the promotion
    for 100 % ("100 % now" lets every increase through)."""
    gates: list[tuple[str, bool]] = []
    rollout = state.flagger_gates.get("confirm-rollout")
    if rollout is None or not rollout.open or rollout.checksum != state.flagger_checksum:
        gates.append(("confirm-rollout", False))
    if immediate:
        gates += [("confirm-traffic-increase", False), ("confirm-promotion", False)]
    elif to_percent >= 100:
        gates.append(("confirm-promotion", False))
    else:
        gates.append(("confirm-traffic-increase", True))
    return gates


__all__ = [
    "GATES",
    "Answer",
    "GateType",
    "PayloadError",
    "WebhookPayload",
    "decide",
    "gates_for_advance",
    "parse_payload",
    "token_matches",
    "worth_recording",
]

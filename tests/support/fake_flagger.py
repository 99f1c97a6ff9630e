"""Flagger's side of its gate webhooks, as its source sends them (fluxcd/flagger).

``pkg/controller/webhook.go``: ``CallWebhook`` marshals a ``CanaryWebhookPayload`` — ``name``,
``namespace``, ``phase``, ``checksum`` and, only when the webhook has any, ``metadata`` (Go's
``omitempty``), in that order — and POSTs it with ``Content-Type: application/json``; an answer
above 202, or none, is an error: the gate is closed. ``pkg/controller/scheduler_hooks.go``: the
confirm-traffic-increase and confirm-promotion hooks are always sent with phase
``Progressing``; confirm-rollout and rollback with the canary's own phase.

The checksum is ``canaryChecksum``: FNV-32a of the Canary's tracked configs and last applied
spec, its decimal text encoded by Kubernetes' ``rand.SafeEncodeString`` (each byte mapped into
``bcdfghjklmnpqrstvwxz2456789``). :func:`checksum` makes one the same way from any text, so a
test's runs carry checksums shaped like a real Flagger's (``85d557f47b`` in Flagger's docs is
one such).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.sim_flagger import flagger_checksum

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "flagger"
#: A checksum as Flagger makes one: SafeEncodeString(decimal(FNV-32a(text))).
checksum = flagger_checksum


def recorded_payloads() -> dict[str, Any]:
    """The payloads of tests/fixtures/flagger/payloads.json (from Flagger's docs and source)."""
    return dict(json.loads((FIXTURES / "payloads.json").read_text()))


@dataclass
class FakeFlagger:
    """Calls a gate the way Flagger's controller does; ``calls`` keeps every answer."""

    url: str
    name: str = "podinfo"
    namespace: str = "test"
    metadata: dict[str, str] | None = None
    calls: list[tuple[str, int, str]] = field(default_factory=list)

    def payload(self, phase: str, run: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "namespace": self.namespace, "phase": phase,
                                "checksum": run}
        if self.metadata:
            body["metadata"] = dict(self.metadata)
        return body

    def call(self, gate: str, run: str, phase: str = "Progressing") -> bool:
        """One webhook call; True when Flagger would go on (HTTP 200-202)."""
        if gate in ("confirm-traffic-increase", "confirm-promotion"):
            phase = "Progressing"  # scheduler_hooks.go sends these with Progressing, always
        data = json.dumps(self.payload(phase, run), separators=(",", ":")).encode()
        response = httpx.post(f"{self.url}/gate/{gate}", content=data,
                              headers={"Content-Type": "application/json"}, timeout=10)
        self.calls.append((gate, response.status_code, response.text.strip()))
        return response.status_code <= 202

"""A simulated Flagger for the demo (``warroom demo --flagger``): it calls ``warroom gate`` as
Flagger's controller does and moves its canary only when the gate lets it.

Each analysis interval (fluxcd/flagger ``pkg/controller/scheduler.go``, simplified to what the
gates decide): a new revision asks ``confirm-rollout`` (refused: the phase becomes ``Waiting``);
while ``Progressing`` it asks ``rollback`` first (200: the canary goes back to the primary, phase
``Failed``), then ``confirm-traffic-increase`` below its last step weight (200: one step up) or
``confirm-promotion`` at it (200: promoted, ``Succeeded``). Every call carries Flagger's payload
(name, namespace, phase, checksum) as JSON; only 200–202 counts as open.

:class:`FlaggerTraffic` is the console's traffic adapter over it: ``set_weight`` waits (for at
most ``converge_s``) until the simulated Flagger reports the weight — warroom opens the gate,
Flagger moves, warroom reads where it is — and then moves the simulated service's traffic with
it, so the guardrails see what Flagger did.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

from adapters.base import DeployError, TrafficController

#: k8s.io/apimachinery/pkg/util/rand's alphabet (no vowels, no 0/1/3).
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def flagger_checksum(text: str) -> str:
    """A checksum shaped as Flagger makes one (``canaryChecksum``: FNV-32a of the Canary's
    tracked configs and last applied spec, its decimal text through Kubernetes'
    ``rand.SafeEncodeString``), here of any ``text``: one per run, ``85d557f47b``-like."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_ALPHANUMS[b % len(_ALPHANUMS)] for b in str(value).encode())


class SimulatedFlagger:
    """Flagger's side of the gates, for one canary; :meth:`start` runs its analysis loop."""

    def __init__(self, gate_url: str, *, name: str, namespace: str, checksum: str,
                 step_weights: Sequence[int], interval_s: float = 1.0) -> None:
        self.gate_url = gate_url.rstrip("/")
        self.name = name
        self.namespace = namespace
        self.checksum = checksum
        self.step_weights = sorted(w for w in step_weights if 0 < w < 100)
        self.interval_s = interval_s
        self.phase = "Initialized"
        self.weight = 0
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # --- one webhook call, as CallWebhook makes it ------------------------------------------------

    def ask(self, gate: str) -> bool:
        import httpx

        phase = "Progressing" if gate in ("confirm-traffic-increase", "confirm-promotion") \
            else self.phase
        body = {"name": self.name, "namespace": self.namespace, "phase": phase,
                "checksum": self.checksum}
        if self._client is None:
            self._client = httpx.Client(timeout=10.0)
        try:
            response = self._client.post(f"{self.gate_url}/gate/{gate}", json=body)
            status = response.status_code
        except httpx.HTTPError:
            status = 0  # no answer: Flagger holds, as for a refusal
        self.calls.append((gate, status))
        return 200 <= status <= 202

    def step(self) -> None:
        """One analysis iteration."""
        with self._lock:
            phase, weight = self.phase, self.weight
        if phase in ("Initialized", "Waiting"):
            phase = "Progressing" if self.ask("confirm-rollout") else "Waiting"
        elif phase == "Progressing":
            if self.ask("rollback"):
                phase, weight = "Failed", 0
            elif weight < (self.step_weights[-1] if self.step_weights else 0):
                if self.ask("confirm-traffic-increase"):
                    weight = next(w for w in self.step_weights if w > weight)
            elif self.ask("confirm-promotion"):
                phase, weight = "Succeeded", 100
        with self._lock:
            self.phase, self.weight = phase, weight

    def status(self) -> tuple[str, int]:
        with self._lock:
            return self.phase, self.weight

    # --- the loop ---------------------------------------------------------------------------------

    def start(self) -> SimulatedFlagger:
        def run() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(Exception):  # a demo's Flagger never stops the console
                    self.step()
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=run, name="simulated-flagger", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._client is not None:
            self._client.close()


class FlaggerTraffic:
    """A :class:`~adapters.base.TrafficController` that follows the simulated Flagger."""

    def __init__(self, flagger: SimulatedFlagger, service: TrafficController, *,
                 converge_s: float = 30.0, poll_s: float = 0.1) -> None:
        self.flagger = flagger
        self.service = service
        self.converge_s = converge_s
        self.poll_s = poll_s

    def current_weight(self) -> int:
        return self.flagger.status()[1]

    def set_weight(self, percent: int) -> None:
        """Wait until Flagger reports ``percent`` (the gate was opened for it), then move the
        simulated service's traffic with it."""
        until = time.monotonic() + self.converge_s
        while True:
            phase, weight = self.flagger.status()
            if weight == percent:
                self.service.set_weight(percent)
                return
            if time.monotonic() >= until:
                raise DeployError(f"set_weight: Flagger did not reach {percent}% within "
                                  f"{self.converge_s:g} s: it reports {weight}% ({phase}); its "
                                  "gate may be closed for this run")
            time.sleep(self.poll_s)


__all__ = ["FlaggerTraffic", "SimulatedFlagger", "flagger_checksum"]

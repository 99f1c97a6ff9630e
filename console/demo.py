"""`warroom demo`: seed 000's story on the simulator, so a newcomer sees the whole cycle.

A P0 security emergency — PII exposed by an internal API — shipping the redaction hotfix
v1.4.2 → v1.4.3 with the canary compressed and the change window bypassed. Holds are tens of
seconds so the cycle takes about three minutes; simulated approvers sign off within 15 seconds
(recorded as simulated, never as direct). With ``--db PATH`` an open demo incident in PATH is
resumed instead of declaring another.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from console import commands, policy
from console.config import Config
from console.state import IncidentState
from console.store import RecordStore

DEMO_SERVICE = "redaction-api"
DEMO_TITLE = "Internal API exposes PII in agent responses"
#: The simulated people on the demo's roster, by role.
DEMO_APPROVERS = {"security-lead": "priya", "platform-lead": "marco"}


#: How the demo's service is simulated: the bad build errs from 10 % on. The same whether the
#: guardrails read the simulator directly or through a real Prometheus scraping it.
DEMO_SIMULATION: dict[str, Any] = {"seed": 7, "bad_from_percent": 10}


def demo_simulation(scenario: str) -> dict[str, Any]:
    """The simulated service's settings for a demo of ``scenario`` (good or bad)."""
    return {**DEMO_SIMULATION, "scenario": scenario}


#: The demo's guardrails on a real Prometheus, written against the conventional metric names that
#: the simulator exports (short windows: the demo lasts minutes, not hours).
PROMETHEUS_GUARDRAILS: list[dict[str, Any]] = [
    {
        "name": "error-ratio",
        "query": 'sum(rate(http_requests_total{service="$service",track="$track",code=~"5.."}'
                 '[30s])) / sum(rate(http_requests_total{service="$service",track="$track"}'
                 '[30s]))',
        "unit": "%", "scale": 100, "max": 0.02,
        "evidence_query": 'sum(increase(http_requests_total{service="$service",'
                          'track="$track"}[30s]))',
        "min_evidence": 20, "consecutive": 8, "on_breach": "rollback",
    },
    {
        "name": "p99-latency",
        "query": 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
                 '{service="$service",track="$track"}[30s])))',
        "unit": "s", "max": 1.0, "max_ratio_to_baseline": 2.0,
        "evidence_query": 'sum(increase(http_requests_total{service="$service",'
                          'track="$track"}[30s]))',
        "min_evidence": 20, "consecutive": 5, "on_breach": "hold",
    },
]


def demo_config(base: Config, scenario: str, fast: bool = False,
                prometheus_url: str | None = None) -> Config:
    """The demo's settings: the simulator everywhere (or a real Prometheus scraping it), short
    holds, guardrails on the simulated service."""
    hold = (lambda s: s / 10) if fast else (lambda s: s)
    raw: dict[str, Any] = {
        "store": base.store.model_dump(),
        "roster": {**{role: [user] for role, user in DEMO_APPROVERS.items()}, **base.roster},
        "canary": {
            "default_plan": "demo",
            "plans": {"demo": {"stages": [
                {"percent": 1, "hold_s": hold(20)},
                {"percent": 10, "hold_s": hold(30)},
                {"percent": 50, "hold_s": hold(30)},
                {"percent": 100, "hold_s": 0},
            ]}},
        },
        "monitoring": {"poll_interval_s": 0.5 if fast else 2.0, "graph_window_s": 240},
        "rollback": {"verification_hold_s": hold(15), "verify_timeout_s": 120},
        "scenarios": {"mission_critical": ["agent-responses", "login"]},
        "metrics": {"kind": "sim", **demo_simulation(scenario)},
        "traffic": {"kind": "sim"},
        "deploy": {"kind": "sim", "rollback_seconds": hold(6)},
        "guardrails": [
            {
                "name": "error-ratio",
                "query": 'sim:error_ratio{service="$service", track="$track"}',
                "unit": "%", "scale": 100, "max": 0.02,
                "evidence_query": 'sim:requests{service="$service", track="$track"}',
                "min_evidence": 20, "consecutive": 8, "on_breach": "rollback",
            },
            {
                "name": "p99-latency",
                "query": 'sim:latency_p99_seconds{service="$service", track="$track"}',
                "unit": "s", "max": 1.0, "max_ratio_to_baseline": 2.0,
                "evidence_query": 'sim:requests{service="$service", track="$track"}',
                "min_evidence": 20, "consecutive": 5, "on_breach": "hold",
            },
        ],
    }
    if prometheus_url:
        raw["metrics"] = {"kind": "prometheus", "url": prometheus_url, "timeout_s": 2.0,
                          "retries": 0}
        raw["guardrails"] = PROMETHEUS_GUARDRAILS
        raw["deploy"]["kind"] = "sim"
    return Config.model_validate(raw)


def find_open_demo(store: RecordStore, scenario: str) -> int | None:
    """The newest open demo incident of ``scenario`` in the store (close it with `C` to start
    over), if any: `make demo-good` never resumes the bad build's demo, nor the other way."""
    for incident_id in reversed(store.incident_ids()):
        state = store.state(incident_id)  # a checkpoint and a short tail, not the history
        if state.simulated and not state.closed and state.scenario == scenario:
            return incident_id
    return None


def declare_demo(store: RecordStore, config: Config, commander: str, *, scenario: str = "bad",
                 ts: datetime | None = None) -> int:
    """Seed 000's story, declared through the write path like any incident (simulated)."""
    declared = commands.declare(
        store, config, commander=commander, title=DEMO_TITLE, priority="P0",
        category="security", service=DEMO_SERVICE, from_version="v1.4.2", to_version="v1.4.3",
        bypass_specs=[
            "canary=PII exposure is ongoing; a multi-day canary cannot match::Compressed canary "
            "1% → 10% → 50% → 100% with intensive monitoring",
            "change-window=22:00 local, outside the change window; the harm is ongoing",
        ],
        affects=["agent-responses"], simulated=True, scenario=scenario, now=ts)
    return declared.incident_id


def start_simulated_approvers(store: RecordStore, config: Config, incident_id: int,
                              state: IncidentState, stop: threading.Event, seed: int = 7,
                              max_delay_s: float = 15.0) -> threading.Thread | None:
    """Sign off the missing roles within ``max_delay_s``, each through the write path (the same
    rules as a person's approval) and recorded as simulated."""
    missing = [role for role in state.missing_roles if role in DEMO_APPROVERS]
    if not missing:
        return None
    rng = random.Random(seed)
    delays = sorted(rng.uniform(max_delay_s / 3, max_delay_s) for _ in missing)

    def run() -> None:
        waited = 0.0
        for role, delay in zip(missing, delays, strict=True):
            if stop.wait(delay - waited):
                return
            waited = delay
            # Refused when the role was approved meanwhile, or the incident closed: fine.
            with contextlib.suppress(policy.Refused):
                commands.simulated_approval(store, config, incident_id,
                                            user=DEMO_APPROVERS[role], role=role)

    thread = threading.Thread(target=run, name="simulated-approvers", daemon=True)
    thread.start()
    return thread


# --- with Flagger's gate and a status page (`warroom demo --flagger --status-page`) -------------

#: The status page stand-in's key lives in this variable of the demo's own process.
DEMO_STATUSPAGE_KEY_ENV = "WARROOM_DEMO_STATUSPAGE_KEY"
#: The Flagger Canary's namespace in the demo.
DEMO_NAMESPACE = "demo"


def with_integrations(config: Config, *, flagger: bool,
                      statuspage: dict[str, Any] | None) -> Config:
    """The demo's config with ``[gate]`` (a Flagger gate on a free port of 127.0.0.1) and/or
    ``[statuspage]`` (the stand-in's address, page and component)."""
    raw = config.model_dump(mode="json", exclude_none=True)
    if flagger:
        raw["gate"] = {"namespace": DEMO_NAMESPACE, "listen": "127.0.0.1:0"}
    if statuspage is not None:
        raw["statuspage"] = statuspage
        names = raw.setdefault("export", {}).setdefault("customer_names", {})
        names.setdefault(DEMO_SERVICE, "Support transcripts")
    return Config.model_validate(raw)


def start_status_page() -> tuple[Any, dict[str, Any]]:
    """The Statuspage stand-in on 127.0.0.1, and the ``[statuspage]`` section that reaches it
    (its key set in this process's environment and registered as a secret)."""
    import os

    from adapters.secrets import register
    from adapters.sim_statuspage import StatuspageStub

    stub = StatuspageStub().start()
    os.environ[DEMO_STATUSPAGE_KEY_ENV] = stub.api_key
    register([stub.api_key])
    component = next(iter(stub.components))
    return stub, {"page_id": stub.page_id, "api_key_env": DEMO_STATUSPAGE_KEY_ENV,
                  "api_url": stub.url, "components": {DEMO_SERVICE: component}}


def start_flagger(location: Any, config: Config, incident_id: int, adapters: Any,
                  *, fast: bool = False) -> tuple[Callable[[], None], str]:
    """`warroom gate` for the demo's incident (its own connection to the record, as the separate
    process it would be), a simulated Flagger calling it, and the console's traffic following
    that Flagger. Returns what stops them and the gate's address."""
    from adapters.sim_flagger import FlaggerTraffic, SimulatedFlagger, flagger_checksum
    from console.gate import GateServer
    from console.store import open_store

    assert config.gate is not None
    gate_store = open_store(location, group=config.store.group,
                            password_env=config.store.password_env)
    try:
        server = GateServer(gate_store, incident_id, config.gate).start()
    except BaseException:
        gate_store.close()
        raise
    state = gate_store.state(incident_id)
    flagger = SimulatedFlagger(
        server.url, name=state.service, namespace=config.gate.namespace,
        checksum=flagger_checksum(f"{state.service} {state.to_version}"),
        step_weights=[stage.percent for stage in state.plan], interval_s=0.5 if fast else 1.0)
    if state.canary_percent and not state.rolled_back:  # resumed: Flagger is where it was
        flagger.phase, flagger.weight = "Progressing", state.canary_percent
    elif state.rolled_back:
        flagger.phase = "Failed"
    flagger.start()
    adapters.traffic = FlaggerTraffic(flagger, adapters.traffic,
                                      converge_s=10.0 if fast else 30.0)

    def stop() -> None:
        flagger.stop()
        server.stop()
        gate_store.close()

    return stop, server.url

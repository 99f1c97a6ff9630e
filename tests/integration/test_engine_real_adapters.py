"""The real engine on real adapters: Prometheus, the http deploy API, the command adapter.

Each test declares an incident on a real store and lets :class:`console.engine.Engine` run it, as
the console would, against:

- a real Prometheus (started here, on 127.0.0.1) scraping a :class:`TestExporter` whose figures the
  test turns, with guardrails written like config.example.toml's (``[5s]`` windows so that a
  change shows within seconds), and traffic + deploy through the ``http`` adapter against the local
  deploy API of tests/support/deploy_api.py;
- the ``command`` adapter running the fake kubectl of tests/fixtures/scripts, with metrics from the
  simulator;
- config.example.toml itself, with only ``[metrics] url`` changed.

Prometheus-backed tests run on the real clock with polls every 0.5 s; every wait has a deadline.
One module fixture starts the exporter and two servers at once (the first sample takes ≈ 6 s, paid
once): one shared, one that a test kills. Each test owns a ``service`` label of the exporter.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.base import ManualClock
from console.config import parse_config
from console.engine import PollResult
from console.model import Kind
from console.policy import Refused
from tests.integration.engine_support import (
    ERROR_MAX,
    ERROR_RATIO_QUERY,
    FROM_VERSION,
    TO_VERSION,
    LiveIncident,
    guardrails,
    http_deploy,
    http_traffic,
    make_config,
    prometheus_metrics,
)
from tests.support.delay_proxy import DelayProxy
from tests.support.deploy_api import Canned, DeployApi
from tests.support.exporter import TestExporter
from tests.support.prometheus_server import PrometheusServer, require_prometheus, values

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "tests" / "fixtures" / "scripts"
EXAMPLE = ROOT / "config.example.toml"

HEALTHY = {"rps": 50.0, "error_ratio": 0.01, "latency_s": 0.08}
#: The exporter's services (one per test) and their tracks at start: (rps, error ratio, latency).
SERVICES: dict[str, dict[str, dict[str, float]]] = {
    "svc-auto": {"canary": HEALTHY, "baseline": HEALTHY},
    "svc-stuck": {"canary": HEALTHY, "baseline": HEALTHY},
    "svc-down": {"canary": HEALTHY, "baseline": HEALTHY},
    "svc-slow": {"canary": HEALTHY, "baseline": HEALTHY},
    # config.example.toml's service: a canary whose every request takes 0.3 s (p99 ≈ 0.50 s,
    # under the max of 0.5 s but over 2 × the baseline's ≈ 0.10 s).
    "svc-example": {"canary": {"rps": 100.0, "error_ratio": 0.01, "latency_s": 0.3},
                    "baseline": {"rps": 100.0, "error_ratio": 0.01, "latency_s": 0.08}},
}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx and requests honour proxy variables; the local servers must be reached directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Live:
    exporter: TestExporter
    prometheus: PrometheusServer  # shared by the tests
    doomed: PrometheusServer  # killed by test_prometheus_killed_mid_run

    def ratio(self, service: str, track: str, server: PrometheusServer | None = None
              ) -> float | None:
        """The error ratio Prometheus computes now (the guardrail's own query)."""
        query = ERROR_RATIO_QUERY.replace("$service", service).replace("$track", track)
        found = values((server or self.prometheus).instant(query))
        return found[0] if found else None


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """The exporter and two Prometheus servers scraping it, started together (≈ 7 s, once)."""
    require_prometheus()
    with TestExporter() as exporter:
        for service, tracks in SERVICES.items():
            for track, figures in tracks.items():
                exporter.set_track(track, service=service, **figures)
        shared = PrometheusServer([exporter.target])
        doomed = PrometheusServer([exporter.target])
        try:
            shared.start()
            doomed.start()  # both discovery throttles run at once: the start is paid once
            for server in (shared, doomed):
                for service in SERVICES:
                    for track in ("canary", "baseline"):
                        query = ERROR_RATIO_QUERY.replace("$service", service).replace(
                            "$track", track)
                        server.wait_for(query, bool, timeout=30)
            yield Live(exporter, shared, doomed)
        finally:
            doomed.stop()
            shared.stop()


@pytest.fixture
def api() -> Iterator[DeployApi]:
    """The deploy API, with the emergency change (v1.5.0) live and the canary at 0%."""
    with DeployApi(version=TO_VERSION) as server:
        yield server


@pytest.fixture
def incidents() -> Iterator[list[LiveIncident]]:
    """Incidents a test opens; each is closed (engine, adapters, store) afterwards."""
    opened: list[LiveIncident] = []
    yield opened
    for incident in opened:
        incident.close()


def open_incident(incidents: list[LiveIncident], *args: Any, **kwargs: Any) -> LiveIncident:
    incident = LiveIncident(*args, **kwargs)
    incidents.append(incident)
    return incident


def all_healthy(incident: LiveIncident) -> bool:
    guards = incident.state.guardrails
    return len(guards) == 3 and all(g.status == "healthy" for g in guards.values())


def statuses(result: PollResult) -> dict[str, str]:
    return {r.name: r.status for r in result.readings}


# --- 1. Prometheus + the http deploy API ----------------------------------------------------------


@pytest.mark.prometheus
def test_canary_error_spike_rolls_back_automatically_and_verifies_only_after_recovery(
        live: Live, api: DeployApi, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    service = "svc-auto"
    consecutive = 3
    hold = 2.0
    config = make_config(metrics=prometheus_metrics(live.prometheus.url),
                         traffic=http_traffic(api.base_url), deploy=http_deploy(api.base_url),
                         guardrails=guardrails(consecutive=consecutive, on_breach="rollback"),
                         verification_hold_s=hold, verify_timeout_s=30)
    run = open_incident(incidents, tmp_path, config, service)
    run.prepare()
    assert run.engine.advance().payload["percent"] == 1
    assert api.weight == 1
    run.poll_until(lambda _: all_healthy(run), 10, "guardrails healthy at 1%")

    # The canary starts failing half its requests; the stable track suffers too (until flipped).
    # The deploy API will keep reporting the new version for a while after accepting a rollback.
    api.wrong_version = TO_VERSION
    spiked = time.monotonic()
    live.exporter.set_track("canary", service=service, error_ratio=0.5)
    live.exporter.set_track("baseline", service=service, error_ratio=0.12)

    breaching: list[int] = []  # the polls whose error-ratio reading was a breach

    def note_breach(result: PollResult) -> None:
        if statuses(result).get("error-ratio") == "breach":
            breaching.append(run.polls)

    run.poll_until(lambda _: run.state.rolled_back, 10, "automatic rollback",
                   check=note_breach)
    assert time.monotonic() - spiked < 8  # the [5s] window shows the spike within seconds
    # Sustained means `consecutive` breaching polls in a row: the rollback came on the last one.
    assert len(breaching) == consecutive, breaching
    assert breaching == list(range(breaching[0], breaching[0] + consecutive))
    changes = [e.payload for e in run.events(Kind.GUARDRAIL_CHANGED)
               if e.payload["name"] == "error-ratio" and e.payload["status"] == "breach"]
    assert [p["breaches"] for p in changes] == list(range(1, consecutive + 1))
    assert changes[-1]["sustained"] is True and changes[-1]["on_breach"] == "rollback"
    assert changes[-1]["canary"] > ERROR_MAX
    actions = {e.payload["name"]: e.payload["action"] for e in run.events(Kind.GUARDRAIL_ACTION)}
    assert actions["error-ratio"] == "rollback"
    (request,) = run.events(Kind.ROLLBACK_REQUESTED)
    assert request.payload["automatic"] is True and request.actor == "warroom"
    assert request.payload["target"] == FROM_VERSION and request.payload["weight"] == 1
    assert "sustained breach of error-ratio (3 in a row)" in request.payload["reason"]
    # ... through the http deploy API: one POST (never retried), then the weight back to 0.
    rollbacks = [r for r in api.requests if r.method == "POST" and r.path.endswith("/rollbacks")]
    assert len(rollbacks) == 1 and rollbacks[0].body["to"] == FROM_VERSION
    assert run.events(Kind.ROLLBACK_STARTED)[0].payload["detail"] == "op-1 (HTTP 202)"
    assert api.weight == 0 and run.state.canary_percent == 0

    # Not verified while the API still reports the new version (and until the stable track's
    # error ratio is visibly over the max, so the next phase starts from an unhealthy reading).
    def never_verified(_: PollResult) -> None:
        assert run.state.rollback_status == "in_progress", run.describe()

    run.poll_until(lambda _: (live.ratio(service, "baseline") or 0) > ERROR_MAX + 0.01, 10,
                   "stable track visibly unhealthy", check=never_verified)
    run.poll_until(lambda _: run.polls >= breaching[-1] + 3, 5,
                   "a few polls with the old version live", check=never_verified)
    assert Kind.ROLLBACK_COMPLETED not in run.kinds()

    # The API now reports the target: the rollback is live, but the stable track is unhealthy.
    api.wrong_version = None
    run.poll_until(lambda _: Kind.ROLLBACK_COMPLETED in run.kinds(), 5, "target reported live",
                   check=never_verified)
    run.poll_until(lambda _: any("verification waits" in e.payload["message"]
                                 for e in run.events(Kind.ROLLBACK_PROGRESS)), 5,
                   "verification waiting on the stable track", check=never_verified)
    waits = [e.payload["message"] for e in run.events(Kind.ROLLBACK_PROGRESS)
             if "verification waits" in e.payload["message"]]
    assert "error-ratio on the stable track: baseline" in waits[0]
    unhealthy_until = time.monotonic() + hold + 1.0  # longer than the hold: still not verified
    run.poll_until(lambda _: time.monotonic() > unhealthy_until, hold + 5,
                   "unhealthy stable track outlasting the hold", check=never_verified)
    stable = {r.name: r for r in run.engine.last_stable_readings}
    assert stable["error-ratio"].status == "breach" and stable["error-ratio"].mode == "stable"

    # The stable track recovers: verified once healthy for the whole hold, not before.
    live.exporter.set_track("baseline", service=service, error_ratio=0.0)
    flipped = time.monotonic()

    def no_verdict_but_verified(_: PollResult) -> None:
        assert run.state.rollback_status in ("in_progress", "verified"), run.describe()

    run.poll_until(lambda _: run.state.rollback_status == "verified", 20, "verified rollback",
                   check=no_verdict_but_verified)
    assert time.monotonic() - flipped >= hold
    (verified,) = run.events(Kind.ROLLBACK_VERIFIED)
    checks = {c["name"]: c for c in verified.payload["checks"]}
    assert checks[f"deployer reports {FROM_VERSION}"]["ok"]
    assert checks["canary weight 0%"] == {"name": "canary weight 0%", "ok": True, "detail": "0%"}
    assert checks["guardrails healthy on the stable track for 2s"]["ok"]
    assert Kind.ROLLBACK_NOT_VERIFIED not in run.kinds()
    assert all(r.status == "healthy" for r in run.engine.last_stable_readings)


@pytest.mark.prometheus
def test_rollback_that_never_completes_is_not_verified_after_the_timeout(
        live: Live, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    timeout = 2.0
    with DeployApi(version=TO_VERSION, rollback_completes=False) as api:
        config = make_config(metrics=prometheus_metrics(live.prometheus.url),
                             traffic=http_traffic(api.base_url), deploy=http_deploy(api.base_url),
                             guardrails=guardrails(), verify_timeout_s=timeout)
        run = open_incident(incidents, tmp_path, config, "svc-stuck")
        run.prepare()
        run.engine.advance()
        run.poll_until(lambda _: all_healthy(run), 10, "guardrails healthy at 1%")
        requested = time.monotonic()
        run.engine.request_rollback("error budget burning; the commander rolls back")
        assert api.count("POST", "/api/services/svc-stuck/rollbacks") == 1  # accepted (202)

        def not_early(_: PollResult) -> None:
            if run.state.rollback_status != "in_progress":
                assert time.monotonic() - requested >= timeout, run.describe()

        run.poll_until(lambda _: run.state.rollback_status == "not_verified", timeout + 5,
                       "NOT VERIFIED", check=not_early)
    (event,) = run.events(Kind.ROLLBACK_NOT_VERIFIED)
    reason = event.payload["reason"]
    assert f"the deployer still reports {TO_VERSION}, not {FROM_VERSION}" in reason, reason
    assert event.payload["checks"] == [{"name": f"deployer reports {FROM_VERSION}", "ok": False,
                                        "detail": TO_VERSION}]
    assert Kind.ROLLBACK_COMPLETED not in run.kinds() and Kind.ROLLBACK_VERIFIED not in run.kinds()
    assert run.state.rollback_detail == reason
    assert api.count("POST", "/api/services/svc-stuck/rollbacks") == 1  # never re-sent


def test_deploy_api_500_on_set_weight_is_recorded_and_changes_nothing(
        api: DeployApi, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    # No guardrails: this is about the traffic call (metrics are the simulator's, never queried).
    config = make_config(metrics={"kind": "sim"}, traffic=http_traffic(api.base_url),
                         deploy=http_deploy(api.base_url), guardrails=[])
    run = open_incident(incidents, tmp_path, config, "svc-500")
    run.prepare()
    assert run.engine.advance().kind == Kind.WEIGHT_SET
    before = run.state
    stage, stage_entered = before.current_stage, before.stage_entered
    path = "/api/services/svc-500/weight"
    puts = api.count("PUT", path)
    api.script("PUT", path, Canned(500, {"error": "upstream mesh timeout"}))

    event = run.engine.advance()
    assert event.kind == Kind.WEIGHT_FAILED == "canary_weight_failed"
    error = event.payload["error"]
    assert "HTTP 500" in error and "upstream mesh timeout" in error, error
    assert error.startswith("set_weight: PUT http://127.0.0.1:")
    assert event.payload["percent"] == 10 and event.payload["action"] == "advance"
    assert api.count("PUT", path) == puts + 1  # a PUT without an idempotency key: sent once
    state = run.state
    assert state.canary_percent == 1 and api.weight == 1
    assert state.current_stage == stage and state.stage_entered == stage_entered
    assert state.pending_weight is None and state.rollback_status == "preflight_passed"
    assert run.engine.advance_blocks() == []  # nothing left in flight: the commander may retry
    assert run.engine.advance().payload["percent"] == 10 and api.weight == 10


@pytest.mark.prometheus
def test_prometheus_killed_mid_run_is_cant_evaluate_and_blocks_advance(
        live: Live, api: DeployApi, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    config = make_config(metrics=prometheus_metrics(live.doomed.url),
                         traffic=http_traffic(api.base_url), deploy=http_deploy(api.base_url),
                         guardrails=guardrails())
    run = open_incident(incidents, tmp_path, config, "svc-down")
    run.prepare()
    run.engine.advance()
    run.poll_until(lambda _: all_healthy(run), 10, "guardrails healthy at 1%")
    assert run.engine.advance_blocks() == []

    live.doomed.kill()
    started = time.monotonic()
    result = run.poll()  # the very next poll
    assert time.monotonic() - started < 3
    assert set(statuses(result).values()) == {"cant_evaluate"}, run.describe()
    for reading in result.readings:
        assert "unreachable" in reading.detail and "connection refused" in reading.detail, \
            reading.detail
        assert reading.canary is None
    assert {g.status for g in run.state.guardrails.values()} == {"cant_evaluate"}
    changed = [e.payload for e in run.events(Kind.GUARDRAIL_CHANGED)][-3:]
    assert [(p["previous"], p["status"]) for p in changed] == [("healthy", "cant_evaluate")] * 3

    blocks = run.engine.advance_blocks()
    assert [b.code for b in blocks] == ["guardrails"]
    assert "can't evaluate" in blocks[0].words
    with pytest.raises(Refused, match="can't evaluate"):
        run.engine.advance()

    # The engine keeps running: more polls, no exception, nothing acted on, nothing moved.
    events_before = len(run.events())
    for _ in range(3):
        started = time.monotonic()
        assert set(statuses(run.poll()).values()) == {"cant_evaluate"}
        run.tick(started)
    assert len(run.events()) == events_before  # an unchanged status is not a new event
    assert run.state.canary_percent == 1 and api.weight == 1
    assert run.state.rollback_status == "preflight_passed"


@pytest.mark.prometheus
def test_slow_prometheus_is_cant_evaluate_within_a_poll_not_a_hang(
        live: Live, api: DeployApi, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    with DelayProxy(("127.0.0.1", live.prometheus.port), delay=0.0) as proxy:
        config = make_config(metrics=prometheus_metrics(proxy.url, timeout_s=1.0),
                             traffic=http_traffic(api.base_url), deploy=http_deploy(api.base_url),
                             guardrails=guardrails())
        run = open_incident(incidents, tmp_path, config, "svc-slow")
        run.prepare()
        run.engine.advance()
        run.poll_until(lambda _: all_healthy(run), 10, "guardrails healthy at 1% via the proxy")

        proxy.delay = 10.0  # every request held for 10 s
        started = time.monotonic()
        result = run.poll()
        took = time.monotonic() - started
        # The engine waits max(1 s, 2 polls) for its queries: about one poll, never the 10 s.
        assert took < 3.0, took
        assert set(statuses(result).values()) == {"cant_evaluate"}, run.describe()
        for reading in result.readings:
            assert "timed out" in reading.detail or "did not answer" in reading.detail, \
                reading.detail
        with pytest.raises(Refused, match="can't evaluate"):
            run.engine.advance()

        proxy.delay = 0.0  # Prometheus answers promptly again: the guardrails recover
        run.poll_until(lambda _: all_healthy(run), 10, "guardrails healthy again")
    assert run.state.canary_percent == 1 and not run.state.rolled_back


# --- 2. the command adapter (fake kubectl), metrics from the simulator ----------------------------

GET_IMAGE = [
    "kubectl", "--namespace", "payments", "get", "deployment", "{service}", "-o",
    "jsonpath={.metadata.generation} {.status.observedGeneration} {.spec.replicas} "
    "{.status.updatedReplicas} {.status.replicas} {.status.availableReplicas} "
    "{.spec.template.spec.containers[0].image}",
]
CONVERGED = r"^(?P<gen>\d+) (?P=gen) (?P<n>\d+) (?P=n) (?P=n) (?P=n) \S+:(?P<value>[\w.+-]+)$"
UNDO = ["kubectl", "--namespace", "payments", "rollout", "undo", "deployment/{service}"]


def kubernetes_sections(rollback_argv: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """docs/deploy-adapters.md's plain-Kubernetes example: ingress-nginx canary weight for traffic,
    the Deployment's converged image for the version, `rollout undo` for the rollback."""
    traffic = {"kind": "command", "timeout_s": 10, "actions": {
        "set_weight": {"argv": ["kubectl", "--namespace", "payments", "annotate", "ingress",
                                "{service}-canary", "--overwrite",
                                "nginx.ingress.kubernetes.io/canary-weight={percent}"]},
        "current_weight": {"argv": [
            "kubectl", "--namespace", "payments", "get", "ingress", "{service}-canary", "-o",
            r"jsonpath={.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary-weight}"]},
    }}
    deploy = {"kind": "command", "timeout_s": 10, "actions": {
        "current_version": {"argv": GET_IMAGE, "result_regex": CONVERGED},
        "preflight": {"argv": [*UNDO, "--dry-run=client"],
                      "result_regex": r"^\s*Image:\s+\S+:(?P<value>[\w.+-]+)\s*$"},
        "rollback": {"argv": rollback_argv},
    }}
    return traffic, deploy


@dataclass
class FakeKube:
    state: Path
    marker: Path

    def runs(self) -> list[list[str]]:
        if not self.marker.exists():
            return []
        return [json.loads(line) for line in self.marker.read_text().splitlines()]

    def load(self) -> dict[str, Any]:
        return json.loads(self.state.read_text())


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    """The fake kubectl first on PATH: v1.5.0 live (v1.4.1 before it), the canary ingress at 0%."""
    path = [str(SCRIPTS), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    for name in ("FAKE_MODE", "FAKE_REQUIRE_TOKEN", "KUBE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeKube(tmp_path / "kube-state.json", tmp_path / "kube-runs.jsonl")
    fake.state.write_text(json.dumps({
        "image": f"registry.example.com/payments:{TO_VERSION}",
        "previous_image": f"registry.example.com/payments:{FROM_VERSION}",
        "ingress_weight": "0",
    }))
    monkeypatch.setenv("FAKE_STATE", str(fake.state))
    monkeypatch.setenv("FAKE_MARKER", str(fake.marker))
    return fake


def command_incident(incidents: list[LiveIncident], tmp_path: Path, rollback_argv: list[str]
                     ) -> LiveIncident:
    """An incident on `payments` at 1% through kubectl, guardrails on the simulated service
    (the same PromQL: the simulator answers the conventional shapes), on a manual clock."""
    traffic, deploy = kubernetes_sections(rollback_argv)
    config = make_config(metrics={"kind": "sim", "scenario": "good"}, traffic=traffic,
                         deploy=deploy, guardrails=guardrails(), poll_interval_s=1.0,
                         verification_hold_s=3.0, verify_timeout_s=60)
    clock = ManualClock(datetime.now(UTC))
    run = open_incident(incidents, tmp_path, config, "payments", clock=clock)
    run.prepare()
    preflight = next(e for e in run.events(Kind.PREFLIGHT_PASSED))
    assert {c["name"]: c["ok"] for c in preflight.payload["checks"]}["preflight command"]
    event = run.engine.advance()
    assert event.kind == Kind.WEIGHT_SET and event.payload["reported"] == 1
    return run


def test_command_rollback_reported_done_is_verified(
        kube: FakeKube, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    run = command_incident(incidents, tmp_path, UNDO)
    assert kube.load()["ingress_weight"] == "1"
    run.poll_until(lambda _: True, 5, "one poll")
    run.engine.request_rollback("the fix makes things worse; back to v1.4.1")
    assert ["kubectl", "--namespace", "payments", "rollout", "undo", "deployment/payments"] \
        in kube.runs()
    started = run.events(Kind.ROLLBACK_STARTED)[0].payload
    assert started["detail"] == "deployment.apps/payments rolled back"
    assert [e.payload["message"] for e in run.events(Kind.ROLLBACK_PROGRESS)] == [
        "deployment.apps/payments rolled back"]  # kubectl's stdout, line by line
    assert kube.load()["ingress_weight"] == "0" and run.state.canary_percent == 0

    hold = run.config.rollback.verification_hold_s
    completed_at: list[datetime] = []

    def note_completion(_: PollResult) -> None:
        if not completed_at and run.state.rollback_completed_ts is not None:
            completed_at.append(run.clock.now())

    run.poll_until(lambda _: run.state.rollback_status == "verified", 10, "verified rollback",
                   check=note_completion)
    assert (run.clock.now() - completed_at[0]).total_seconds() >= hold
    (verified,) = run.events(Kind.ROLLBACK_VERIFIED)
    assert [c["ok"] for c in verified.payload["checks"]] == [True, True, True]
    assert run.events(Kind.ROLLBACK_COMPLETED)[0].payload["version"] == FROM_VERSION
    assert run.state.checklist_active  # a verified rollback opens the post-emergency checklist


def test_command_rollback_exiting_non_zero_is_rollback_failed(
        kube: FakeKube, tmp_path: Path, incidents: list[LiveIncident],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = command_incident(incidents, tmp_path, UNDO)
    monkeypatch.setenv("FAKE_MODE", "fail")  # the cluster credentials expired mid-incident
    run.engine.request_rollback("the fix makes things worse; back to v1.4.1")
    (failed,) = run.events(Kind.ROLLBACK_FAILED)
    error = failed.payload["error"]
    assert "`kubectl --namespace payments rollout undo deployment/payments` exited 1" in error
    assert "You must be logged in to the server (Unauthorized)" in error, error
    assert run.state.rollback_status == "failed" and run.state.rollback_detail == error
    assert Kind.ROLLBACK_STARTED not in run.kinds()
    for _ in range(3):  # the engine keeps running; a failed rollback is never "verified"
        started = time.monotonic()
        run.poll()
        run.tick(started)
    assert run.state.rollback_status == "failed"


def test_failed_rollback_still_takes_the_canary_out_of_traffic(
        kube: FakeKube, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    # `kubectl rollout rollback` is not a kubectl verb: the rollback exits 1 while the traffic
    # commands keep working, so the engine could pull the canary's weight to 0.
    broken = ["kubectl", "--namespace", "payments", "rollout", "rollback", "deployment/{service}"]
    run = command_incident(incidents, tmp_path, broken)
    run.engine.request_rollback("the fix makes things worse; back to v1.4.1")
    assert "exited 1" in run.events(Kind.ROLLBACK_FAILED)[0].payload["error"]
    assert kube.load()["ingress_weight"] == "0", "the canary still carries traffic"


# --- 3. config.example.toml, only [metrics] url changed -------------------------------------------


@pytest.mark.prometheus
def test_example_config_with_only_the_url_changed_reads_live_figures(
        live: Live, tmp_path: Path, incidents: list[LiveIncident]) -> None:
    text = EXAMPLE.read_text()
    default_url = 'url = "http://127.0.0.1:9090"'
    assert text.count(default_url) == 1
    config = parse_config(text.replace(default_url, f'url = "{live.prometheus.url}"'), EXAMPLE)
    assert config.metrics.kind == "prometheus"
    names = [g.name for g in config.guardrails]
    assert names == ["error-ratio", "error-vs-baseline", "p99-latency"]

    run = open_incident(incidents, tmp_path, config, "svc-example")
    run.prepare()
    assert run.engine.advance().payload["percent"] == 1
    result = run.poll()

    readings = {r.name: r for r in result.readings}
    assert list(readings) == names
    for reading in readings.values():
        assert reading.status in ("healthy", "breach"), (reading.name, reading.detail)
        assert reading.canary is not None and reading.baseline is not None, reading.detail
        assert reading.evidence is not None and reading.evidence >= 50  # min_evidence
    assert readings["error-ratio"].status == "healthy"
    assert readings["error-ratio"].canary == pytest.approx(0.01, rel=1e-6)
    assert readings["error-vs-baseline"].status == "healthy"
    assert readings["error-vs-baseline"].baseline == pytest.approx(0.01, rel=1e-6)
    p99 = readings["p99-latency"]
    assert p99.canary == pytest.approx(TestExporter.expected_quantile(0.99, 0.3), rel=1e-6)
    assert p99.baseline == pytest.approx(TestExporter.expected_quantile(0.99, 0.08), rel=1e-6)
    assert p99.status == "breach" and p99.limit == pytest.approx(2 * p99.baseline)
    # The example's p99-latency has initial_delay_s = 60 (its [1m] windows still hold the
    # previous stage): read and graphed, but not judged yet, so its recorded status waits.
    delays = {g.name: g.initial_delay_s for g in config.guardrails}
    assert delays["p99-latency"] > 0
    assert {n: g.status for n, g in run.state.guardrails.items()} == {
        n: ("unknown" if delays[n] else r.status) for n, r in readings.items()}
    for name in names:  # the samples watchers draw their graphs from
        for track in ("canary", "baseline"):
            assert run.store.samples(run.id, f"{name}/{track}"), (name, track)

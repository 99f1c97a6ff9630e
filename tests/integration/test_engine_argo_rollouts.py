"""The real engine on the ``argo-rollouts`` adapters, built from a config by build_adapters, against
the fake Kubernetes API (tests/support/fake_kube.py).

The canary advances by promoting the Rollout's steps; the rollback is an undo that the engine
verifies by reading the Rollout until it has settled on the stable version; a Rollout whose
controller never acts on the undo is NOT VERIFIED at the timeout, saying what it reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters import kube
from console import commands
from console.engine import Engine, idempotency_key
from console.model import Event, Kind
from console.wiring import build_adapters
from tests.integration.engine_support import (
    COMMANDER,
    FROM_VERSION,
    TO_VERSION,
    LiveIncident,
    make_config,
)
from tests.support.fake_kube import TOKEN, FakeKube

SERVICE = "payments"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WARROOM_KUBE_TOKEN", TOKEN)
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_DIR", tmp_path / "no-service-account")


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube(name=SERVICE, stable_image=f"registry.example/{SERVICE}:{FROM_VERSION}") as api:
        api.deploy(f"registry.example/{SERVICE}:{TO_VERSION}")  # CI started the canary
        yield api


def argo(fake: FakeKube) -> dict[str, Any]:
    return {"kind": "argo-rollouts", "api_url": fake.url, "namespace": SERVICE,
            "token": {"env": "WARROOM_KUBE_TOKEN"}, "deadline_s": 5, "converge_s": 5}


@pytest.fixture
def incident(tmp_path: Path, fake: FakeKube) -> Iterator[LiveIncident]:
    config = make_config(metrics={"kind": "sim"}, traffic=argo(fake), deploy=argo(fake),
                         guardrails=[], poll_interval_s=0.1, verification_hold_s=0.3,
                         verify_timeout_s=2.0)
    live = LiveIncident(tmp_path, config, SERVICE)
    try:
        yield live
    finally:
        live.close()


def test_advance_then_roll_back_by_undo_and_verify(incident: LiveIncident,
                                                   fake: FakeKube) -> None:
    incident.prepare()  # the preflight read the Rollout, its ReplicaSets and the account's rights
    preflight = incident.events(Kind.PREFLIGHT_PASSED)[-1].payload
    assert any(c["name"] == f"a ReplicaSet runs {FROM_VERSION}" for c in preflight["checks"])
    incident.engine.advance()
    assert incident.state.canary_percent == 1
    incident.engine.advance()
    assert incident.state.canary_percent == 10
    assert incident.events(Kind.WEIGHT_SET)[-1].payload["reported"] == 10
    assert fake.get()["status"]["currentStepIndex"] == 3  # paused after setWeight 10

    incident.engine.request_rollback("the canary pages")
    started = incident.events(Kind.ROLLBACK_STARTED)[-1].payload
    assert started["detail"] == f"rollout '{SERVICE}' undo to revision 1 ({FROM_VERSION})"
    incident.poll_until(lambda _: incident.state.rollback_status == "verified", 20,
                        "the undo is verified")
    assert fake.get()["spec"]["template"]["spec"]["containers"][0]["image"].endswith(FROM_VERSION)
    assert fake.get()["status"]["phase"] == "Healthy"
    # undo, never a bare abort: no abort patch was needed
    assert all(p.body != {"status": {"abort": True}} for p in fake.patches())


def test_an_undo_the_controller_never_acts_on_is_not_verified(incident: LiveIncident,
                                                              fake: FakeKube) -> None:
    incident.prepare()
    incident.engine.advance()
    fake.controller_running = False
    incident.engine.request_rollback("the canary pages")
    incident.poll_until(lambda _: incident.state.rollback_status == "not_verified", 20,
                        "the stuck undo is NOT VERIFIED")
    reason = incident.events(Kind.ROLLBACK_NOT_VERIFIED)[-1].payload["reason"]
    assert f"still reports {FROM_VERSION} (the controller has not yet seen the spec" in reason


def test_a_gitops_tool_undoing_the_rollback_is_caught_by_the_watch(incident: LiveIncident,
                                                                   fake: FakeKube) -> None:
    incident.prepare()
    incident.engine.advance()
    incident.engine.request_rollback("the canary pages")
    incident.poll_until(lambda _: incident.state.rollback_status == "verified", 20,
                        "the undo is verified")
    incident.poll()
    assert incident.state.watch_status == "watching"
    # Argo CD self-heal: the Git source still names the new version, and it is applied again
    fake.deploy(f"registry.example/{SERVICE}:{TO_VERSION}")
    incident.poll_until(lambda _: incident.state.watch_status == "reverted", 10,
                        "the watch sees the Rollout leave the target")
    reverted = incident.events(Kind.ROLLBACK_REVERTED)
    assert len(reverted) == 1
    assert reverted[0].payload["live"].startswith(f"{TO_VERSION} (canary at step")
    assert f"stable runs {FROM_VERSION}" in reverted[0].payload["live"]
    for _ in range(3):
        incident.poll()
    assert len(incident.events(Kind.ROLLBACK_REVERTED)) == 1  # one event per change
    # someone pauses auto-sync and fixes Git: the stable version is applied again
    fake.deploy(f"registry.example/{SERVICE}:{FROM_VERSION}")
    incident.poll_until(lambda _: incident.state.watch_status == "watching", 10,
                        "the target is live again")
    assert len(incident.events(Kind.ROLLBACK_RESTORED)) == 1


# --- a console that died during the rollback ---------------------------------------------------


def _journal_rollback(incident: LiveIncident) -> Event:
    """The rollback as the write path journals it, and nothing after (the console died)."""
    request = commands.request_rollback(incident.store, incident.id, actor=COMMANDER,
                                        now=incident.clock.now(), reason="drill")
    incident.engine.refresh()
    return request


def _restart(incident: LiveIncident) -> Engine:
    """What a restarted console builds: new adapters, a new engine on the same record."""
    incident.engine.close()
    state = incident.store.state(incident.id)
    incident.engine = Engine(incident.store, incident.id, incident.config,
                             build_adapters(incident.config, state, incident.clock),
                             incident.clock, COMMANDER)
    return incident.engine


def _undos(fake: FakeKube) -> list[Any]:
    return [p for p in fake.patches() if p.path.endswith(f"/rollouts/{SERVICE}")
            and "template" in (p.body.get("spec") or {})]


def _rollback_reconciliations(incident: LiveIncident) -> list[dict[str, Any]]:
    return [e.payload for e in incident.events(Kind.RECONCILED)
            if e.payload["request_kind"] == Kind.ROLLBACK_REQUESTED]


def test_killed_after_the_undo_reached_the_rollout_it_is_not_sent_again(
        incident: LiveIncident, fake: FakeKube) -> None:
    incident.prepare()
    incident.engine.advance()
    request = _journal_rollback(incident)
    key = idempotency_key(request)
    # the undo reached the API server; the console died before it read the answer
    incident.adapters.deployer.rollback(FROM_VERSION, idempotency_key=key)
    assert len(_undos(fake)) == 1
    fake.deploy(f"registry.example/{SERVICE}:{TO_VERSION}")  # and GitOps re-applied meanwhile
    _restart(incident).reconcile()
    # found by its key (not by the live version, which is the bad one again): not sent again
    assert len(_undos(fake)) == 1
    (reconciled,) = _rollback_reconciliations(incident)
    assert reconciled["outcome"] == "applied"
    assert f"warroom.io/rollback-key={key}" in reconciled["detail"]
    assert "not sent again" in reconciled["detail"]
    started = incident.events(Kind.ROLLBACK_STARTED)
    assert len(started) == 1 and "reconciled after a restart" in started[0].payload["detail"]


def test_killed_before_the_undo_was_sent_it_is_sent_once_under_its_key(
        incident: LiveIncident, fake: FakeKube) -> None:
    incident.prepare()
    incident.engine.advance()
    request = _journal_rollback(incident)
    key = idempotency_key(request)
    _restart(incident).reconcile()
    (undo,) = _undos(fake)
    assert undo.body["metadata"]["annotations"] == {"warroom.io/rollback-key": key}
    (reconciled,) = _rollback_reconciliations(incident)
    assert reconciled["outcome"] == "re-issued"
    assert "no operation" in reconciled["detail"]
    # a second restart finds it: still one undo
    _restart(incident).reconcile()
    assert len(_undos(fake)) == 1
    incident.poll_until(lambda _: incident.state.rollback_status == "verified", 20,
                        "the undo sent after the restart is verified")

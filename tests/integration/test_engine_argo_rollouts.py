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
from console.model import Kind
from tests.integration.engine_support import FROM_VERSION, TO_VERSION, LiveIncident, make_config
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

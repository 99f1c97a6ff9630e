"""The ``argo-rollouts`` adapters against a fake Kubernetes API on 127.0.0.1 (tests/support/
fake_kube.py), and the parser against Rollouts recorded from a real cluster (tests/fixtures/
argo_rollouts, copied from the argo-rollouts CLI's test data).

What the console relies on, each pinned here: a weight is reached by promoting to the step that
sets it (the status-subresource merge patch of promote.go) and read back from the Rollout; abort is
not a rollback (the live version is never the target while the spec names the new one); the
rollback is an undo to the stable ReplicaSet's template, which also removes what the bad version
added; a 409 is retried after reading again; a 403 says what RBAC refused and is never retried; a
Rollout that never converges fails the call within its deadline, saying what it reports.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters import kube
from adapters.argo_rollouts import (
    ArgoRolloutsDeployer,
    ArgoRolloutsTraffic,
    image_version,
    merge_patch,
    parse_rollout,
)
from adapters.base import (
    AdapterTimeout,
    Deployer,
    DeployError,
    RollbackLookup,
    TrafficController,
)
from adapters.settings import ArgoRolloutsSettings
from tests.support.fake_kube import TOKEN, FakeKube, pod_hash, template

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "argo_rollouts"
CONTEXT = {"service": "payments", "version": "v1.4.3", "target": "v1.4.2", "incident": "INC-7"}
NEW = "registry.example/payments:v1.4.3"
STATUS_PATH = "/apis/argoproj.io/v1alpha1/namespaces/payments/rollouts/payments/status"
ROLLOUT_PATH = "/apis/argoproj.io/v1alpha1/namespaces/payments/rollouts/payments"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("WARROOM_KUBE_TOKEN", TOKEN)
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_DIR", tmp_path / "no-service-account")


@pytest.fixture
def fake() -> Iterator[FakeKube]:
    with FakeKube() as server:
        yield server


def settings(fake: FakeKube, **overrides: Any) -> ArgoRolloutsSettings:
    values: dict[str, Any] = {"api_url": fake.url, "namespace": "payments",
                              "token": {"env": "WARROOM_KUBE_TOKEN"}, "converge_s": 5.0,
                              "deadline_s": 5.0, "timeout_s": 2.0}
    values.update(overrides)
    return ArgoRolloutsSettings.model_validate(values)


def adapters(fake: FakeKube, **overrides: Any) -> tuple[ArgoRolloutsTraffic,
                                                        ArgoRolloutsDeployer]:
    config = settings(fake, **overrides)
    return (ArgoRolloutsTraffic(config, CONTEXT, poll_s=0.02),
            ArgoRolloutsDeployer(config, CONTEXT))


def eventually(condition: Any, within_s: float = 10.0) -> None:
    """Wait for ``condition()`` (the controller acts on the next reads), with a deadline."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)


# --- the recorded objects ------------------------------------------------------------------------


def _load(name: str) -> Any:
    return yaml.safe_load((FIXTURES / name).read_text())


def test_a_recorded_rollout_mid_canary_without_traffic_routing() -> None:
    rollout = _load("canary-rollout.yaml")
    replicasets = {"items": [_load("stable-rs.yaml"), _load("canary-rs.yaml")]}
    view = parse_rollout(rollout, replicasets, None)
    assert view.step_index == 0 and len(view.steps) == 8
    assert view.stable is not None and view.stable.version == "green"
    assert view.canary is not None and view.canary.version == "does-not-exist"
    assert view.spec_version == "does-not-exist"
    assert view.weights is None
    # no router: the canary's share of available pods, as `kubectl argo rollouts get` says
    assert view.canary_weight("does-not-exist") == 0
    assert view.set_weight() == 20
    assert not view.settled()
    assert view.live_version() == "does-not-exist (canary at step 0/8; stable runs green)"


def test_a_recorded_rollout_with_router_weights() -> None:
    rollout = _load("canary-rollout5.yaml")
    replicasets = {"items": [_load("stable-rs.yaml"), _load("canary-rs.yaml")]}
    view = parse_rollout(rollout, replicasets, None)
    assert view.weights == (20, 60)
    assert view.canary_weight("does-not-exist") == 20
    # the ReplicaSets belong to another Rollout's uid? No: same uid in the recording
    assert {rs.version for rs in view.replicasets} == {"green", "does-not-exist"}


def test_replicasets_of_another_rollout_are_ignored() -> None:
    rollout = _load("canary-rollout.yaml")
    foreign = _load("stable-rs.yaml")
    foreign["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    view = parse_rollout(rollout, {"items": [foreign]}, None)
    assert view.replicasets == []


@pytest.mark.parametrize(("image", "version"), [
    ("registry.example/payments:v1.4.2", "v1.4.2"),
    ("registry.example:5000/payments:v1.4.2", "v1.4.2"),
    ("registry.example:5000/payments", "latest"),
    ("payments@sha256:abcd", "sha256:abcd"),
    ("payments:v2@sha256:abcd", "v2"),
])
def test_image_version(image: str, version: str) -> None:
    assert image_version(image) == version


def test_merge_patch_deletes_what_the_bad_version_added() -> None:
    bad = template("payments", NEW, extra_env=True)
    good = template("payments", "registry.example/payments:v1.4.2")
    patch = merge_patch(bad, good)
    container = patch["spec"]["containers"][0]  # type: ignore[index]
    assert "env" not in container  # lists are replaced whole
    bad["metadata"]["annotations"] = {"added-by-bad": "x"}
    patch = merge_patch(bad, good)
    assert patch["metadata"] == {"annotations": None}  # type: ignore[index]


# --- the adapters against the fake API ----------------------------------------------------------


def test_they_are_the_console_protocols(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake)
    assert isinstance(traffic, TrafficController)
    assert isinstance(deployer, Deployer)


def test_a_canary_through_its_steps_then_abort_then_undo(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake)
    assert traffic.current_weight() == 0 and deployer.current_version() == "v1.4.2"
    fake.deploy(NEW)  # CI sets the new image: the Rollout starts its steps (setWeight 1, pause)
    assert traffic.current_weight() == 1
    traffic.set_weight(10)
    assert traffic.current_weight() == 10
    view = traffic.status()
    assert view.pause_reasons == ["CanaryPauseStep"] and view.step_index == 3
    # promote.go's step patch, on the status subresource, with the version read
    promote = fake.patches()[-1]
    assert promote.path == STATUS_PATH
    assert promote.content_type == "application/merge-patch+json"
    assert promote.body["status"] == {"currentStepIndex": 2, "pauseConditions": None,
                                      "controllerPause": False}
    assert promote.body["metadata"]["resourceVersion"]
    traffic.set_weight(50)
    assert traffic.current_weight() == 50

    # abort: weight 0, but the spec still names the new version: NOT the target, ever
    traffic.set_weight(0)
    assert fake.patches()[-1].body == {"status": {"abort": True}}
    assert traffic.current_weight() == 0
    live = deployer.current_version()
    assert live != "v1.4.2"
    assert live == "v1.4.3 (aborted: the spec still names v1.4.3; stable runs v1.4.2)"

    # the rollback: undo to the stable ReplicaSet's template
    progress: list[str] = []
    assert deployer.rollback("v1.4.2", progress.append) == \
        "rollout 'payments' undo to revision 1 (v1.4.2)"
    undo = fake.patches()[-1]
    assert undo.path == ROLLOUT_PATH
    assert undo.body["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.example/payments:v1.4.2"
    assert "rollouts-pod-template-hash" not in json.dumps(undo.body)
    assert progress and "revision 1" in progress[0]
    traffic.set_weight(0)  # what the engine does after every rollback: nothing left to abort
    assert fake.patches()[-1] is undo
    assert deployer.current_version() == "v1.4.2"
    assert traffic.current_weight() == 0
    assert fake.get()["status"]["phase"] == "Healthy"


def test_the_undo_removes_what_the_bad_version_added(fake: FakeKube) -> None:
    _, deployer = adapters(fake)
    stable_template = fake.get()["spec"]["template"]
    fake.deploy(NEW, extra_env=True)
    deployer.rollback("v1.4.2")
    assert fake.get()["spec"]["template"] == stable_template
    assert pod_hash(fake.get()["spec"]["template"]) == fake.get()["status"]["stableRS"]


def test_the_undo_carries_the_rollbacks_key(fake: FakeKube) -> None:
    _, deployer = adapters(fake)
    fake.deploy(NEW)
    deployer.rollback("v1.4.2", idempotency_key="rb-17-abc")
    assert fake.patches()[-1].body["metadata"]["annotations"] == {
        "warroom.io/rollback-key": "rb-17-abc"}
    assert fake.get()["metadata"]["annotations"]["warroom.io/rollback-key"] == "rb-17-abc"


def test_the_rollbacks_key_is_found_on_the_rollout(fake: FakeKube) -> None:
    _, deployer = adapters(fake)
    assert isinstance(deployer, RollbackLookup)
    fake.deploy(NEW)
    missing = deployer.find_rollback("rb-17-abc")
    assert not missing.known
    assert "no warroom.io/rollback-key annotation" in missing.detail
    assert fake.patches() == []  # looking is reading: nothing was sent
    deployer.rollback("v1.4.2", idempotency_key="rb-17-abc")
    found = deployer.find_rollback("rb-17-abc")
    assert found.known
    assert "warroom.io/rollback-key=rb-17-abc" in found.detail
    assert "the undo was applied (spec v1.4.2" in found.detail
    # another rollback's key is not this one's: that rollback never arrived
    other = deployer.find_rollback("rb-18-def")
    assert not other.known
    assert "warroom.io/rollback-key=rb-17-abc" in other.detail
    # the annotation outlives a re-apply of the manifest (which does not name it)
    fake.deploy(NEW)
    assert deployer.find_rollback("rb-17-abc").known


def test_a_rejected_undo_leaves_no_key(fake: FakeKube) -> None:
    _, deployer = adapters(fake)
    fake.deploy(NEW)
    fake.forbidden = {("patch", "rollouts")}
    with pytest.raises(DeployError, match="HTTP 403"):
        deployer.rollback("v1.4.2", idempotency_key="rb-17-abc")
    fake.forbidden = set()
    assert not deployer.find_rollback("rb-17-abc").known


def test_an_unreadable_rollout_is_no_answer(fake: FakeKube) -> None:
    _, deployer = adapters(fake)
    fake.forbidden = {("get", "rollouts")}
    with pytest.raises(DeployError, match="HTTP 403"):
        deployer.find_rollback("rb-17-abc")


def test_a_rollback_repeated_is_harmless(fake: FakeKube) -> None:
    _, deployer = adapters(fake)
    fake.deploy(NEW)
    deployer.rollback("v1.4.2")
    count = len(fake.patches())
    lines: list[str] = []
    assert deployer.rollback("v1.4.2", lines.append) == "rollout 'payments' already at v1.4.2"
    assert len(fake.patches()) == count
    assert "nothing to undo" in lines[0]


def test_full_promotion(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake)
    fake.deploy(NEW)
    traffic.set_weight(100)
    assert fake.patches()[-1].body == {"status": {"promoteFull": True}}
    assert traffic.current_weight() == 100
    assert deployer.current_version() == "v1.4.3"


def test_an_undo_after_a_full_promotion_skips_the_steps(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake)
    fake.deploy(NEW)
    traffic.set_weight(100)  # the new version is stable now; v1.4.2 is an older ReplicaSet
    assert deployer.current_version() == "v1.4.3"
    lines: list[str] = []
    deployer.rollback("v1.4.2", lines.append)
    assert fake.patches()[-1].body == {"status": {"promoteFull": True}}
    assert "skipping the canary steps" in lines[-1]
    eventually(lambda: deployer.current_version() == "v1.4.2")
    assert traffic.current_weight() == 0


def test_plan_warroom_rewrites_the_steps(fake: FakeKube) -> None:
    traffic, _ = adapters(fake, plan="warroom")
    fake.deploy(NEW)
    traffic.set_weight(25)
    assert fake.patches()[-1].body == {
        "spec": {"strategy": {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}}}}
    assert traffic.current_weight() == 25
    traffic.set_weight(40)
    assert traffic.current_weight() == 40


def test_a_weight_no_step_sets_is_refused_and_nothing_is_sent(fake: FakeKube) -> None:
    traffic, _ = adapters(fake)
    fake.deploy(NEW)
    with pytest.raises(DeployError, match=r"no step of Rollout payments sets 25% .*1%, 10%, 50%"):
        traffic.set_weight(25)
    assert fake.patches() == []


def test_going_down_is_refused(fake: FakeKube) -> None:
    traffic, _ = adapters(fake)
    fake.deploy(NEW)
    traffic.set_weight(50)
    with pytest.raises(DeployError, match="can only advance"):
        traffic.set_weight(10)


def test_a_step_that_would_move_on_by_itself_is_refused() -> None:
    steps = [{"setWeight": 1}, {"pause": {}}, {"setWeight": 10}, {"pause": {"duration": "10s"}},
             {"setWeight": 50}, {"pause": {}}]
    with FakeKube(steps=steps) as fake:
        traffic, _ = adapters(fake)
        fake.deploy(NEW)
        with pytest.raises(DeployError, match=r"would move the canary on by itself"):
            traffic.set_weight(10)
        assert fake.patches() == []
        traffic.set_weight(50)  # the last weight is followed by an indefinite pause
        assert traffic.current_weight() == 50


def test_without_a_status_subresource_the_object_is_patched(fake: FakeKube) -> None:
    fake.status_subresource = False
    traffic, _ = adapters(fake)
    fake.deploy(NEW)
    traffic.set_weight(10)
    assert [p.path for p in fake.patches()] == [STATUS_PATH, ROLLOUT_PATH]
    assert traffic.current_weight() == 10


# --- conflicts, refusals, a Rollout that never converges ------------------------------------------


def test_a_conflict_is_read_again_and_written_again(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake)
    fake.deploy(NEW)
    fake.conflicts = 2
    traffic.set_weight(10)
    assert traffic.current_weight() == 10
    assert len(fake.patches()) == 3  # two 409s, then the write
    fake.conflicts = 1
    lines: list[str] = []
    deployer.rollback("v1.4.2", lines.append)
    assert "409 Conflict" in lines[0]
    assert fake.get()["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.4.2")


def test_a_conflict_that_lasts_fails_with_the_apis_words(fake: FakeKube) -> None:
    traffic, _ = adapters(fake, conflict_retries=2)
    fake.deploy(NEW)
    fake.conflicts = 10
    with pytest.raises(DeployError) as caught:
        traffic.set_weight(10)
    assert "HTTP 409 Conflict" in str(caught.value)
    assert "the object has been modified" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)
    assert len(fake.patches()) == 3


def test_a_stale_resource_version_is_a_conflict() -> None:
    # the controller moves the Rollout between our read and our write
    with FakeKube() as fake:
        traffic, _ = adapters(fake)
        fake.deploy(NEW)
        original = fake.route

        def route_and_move(seen: Any, authorization: str) -> tuple[int, Any]:
            if seen.method == "PATCH" and len(fake.patches()) == 1:
                fake._bump()  # another writer got there first
            return original(seen, authorization)

        fake.route = route_and_move  # type: ignore[method-assign]
        traffic.set_weight(10)
        assert traffic.current_weight() == 10
        assert len(fake.patches()) == 2


def test_rbac_refusal_is_reported_and_not_retried(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake)
    fake.deploy(NEW)
    fake.forbidden = {("patch", "rollouts/status")}
    with pytest.raises(DeployError) as caught:
        traffic.set_weight(10)
    message = str(caught.value)
    assert "HTTP 403 Forbidden" in message
    assert 'cannot patch resource "rollouts/status"' in message
    assert "RBAC" in message
    assert len(fake.patches()) == 1
    # the preflight says so before the emergency: undo would work, promote and abort would not
    preflight = deployer.preflight_rollback("v1.4.2")
    assert [c.name for c in preflight.checks if not c.ok] == [
        "may patch rollouts/status (promote and abort)"]
    fake.forbidden = {("patch", "rollouts")}
    preflight = deployer.preflight_rollback("v1.4.2")
    assert not preflight.ok
    assert [c.name for c in preflight.checks if not c.ok] == ["may patch rollouts (undo)"]
    with pytest.raises(DeployError, match=r"HTTP 403 Forbidden: .*cannot patch resource "
                                          r"\"rollouts\""):
        deployer.rollback("v1.4.2")


def test_preflight_when_no_replicaset_runs_the_target(fake: FakeKube) -> None:
    _, deployer = adapters(fake)
    fake.deploy(NEW)
    result = deployer.preflight_rollback("v1.3.9")
    assert not result.ok
    check = next(c for c in result.checks if c.name == "a ReplicaSet runs v1.3.9")
    assert "payments-" in check.detail and "v1.4.2" in check.detail
    with pytest.raises(DeployError, match=r"no ReplicaSet of Rollout payments runs v1\.3\.9"):
        deployer.rollback("v1.3.9")
    assert fake.patches() == []


def test_a_rollout_whose_controller_never_acts(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake, converge_s=1.0)
    fake.deploy(NEW)
    traffic.current_weight()  # the controller starts the canary
    fake.controller_running = False
    started = time.monotonic()
    with pytest.raises(DeployError) as caught:
        traffic.set_weight(10)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 5.0  # converge_s, and a margin for a busy host
    assert "did not reach 10% within 1 s: it reports 1%" in str(caught.value)
    deployer.rollback("v1.4.2")
    live = deployer.current_version()
    assert live.startswith("v1.4.2 (the controller has not yet seen the spec")


def test_a_canary_whose_pods_never_become_available(fake: FakeKube) -> None:
    traffic, deployer = adapters(fake, converge_s=0.5)
    fake.pods_fail = True
    fake.deploy(NEW)
    with pytest.raises(DeployError, match=r"ProgressDeadlineExceeded"):
        traffic.set_weight(10)
    deployer.rollback("v1.4.2")  # the stable pods are fine: the rollback converges
    eventually(lambda: deployer.current_version() == "v1.4.2")


def test_a_wrong_token_is_refused_and_never_shown(fake: FakeKube,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_KUBE_TOKEN", "wrong-token-5f5f5f5f")
    traffic, _ = adapters(fake)
    with pytest.raises(DeployError) as caught:
        traffic.current_weight()
    assert "HTTP 401 Unauthorized" in str(caught.value)
    assert "5f5f" not in str(caught.value)
    monkeypatch.delenv("WARROOM_KUBE_TOKEN")
    with pytest.raises(DeployError, match="WARROOM_KUBE_TOKEN is not set"):
        traffic.current_weight()


def test_a_hung_api_server_is_cut_at_the_deadline() -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    try:
        config = ArgoRolloutsSettings.model_validate({
            "api_url": f"http://127.0.0.1:{listener.getsockname()[1]}", "namespace": "payments",
            "token": {"env": "WARROOM_KUBE_TOKEN"}, "deadline_s": 0.5, "timeout_s": 5.0})
        deployer = ArgoRolloutsDeployer(config, CONTEXT)
        started = time.monotonic()
        with pytest.raises(AdapterTimeout, match=r"no complete answer within 0\.5 s"):
            deployer.current_version()
        assert time.monotonic() - started < 4.0
    finally:
        listener.close()


# --- where the API server is and who we are ----------------------------------------------------


def _kubeconfig(path: Path, server: str, **user: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod-cluster", "cluster": {"server": server}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod-cluster", "user": "warroom",
                                                  "namespace": "payments"}}],
        "users": [{"name": "warroom", "user": user}],
    }))
    return path


def test_a_kubeconfig_with_a_token(fake: FakeKube, tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", fake.url, token=TOKEN)
    config = ArgoRolloutsSettings.model_validate({"kubeconfig": str(path)})
    traffic = ArgoRolloutsTraffic(config, CONTEXT)
    assert traffic.current_weight() == 0
    assert traffic.rollout.client().target.namespace == "payments"


def test_a_kubeconfig_with_an_exec_plugin_is_refused(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", "https://10.0.0.1:6443",
                       exec={"command": "aws", "args": ["eks", "get-token"]})
    config = ArgoRolloutsSettings.model_validate({"kubeconfig": str(path)})
    with pytest.raises(DeployError, match=r"exec or auth-provider plugin.*token = \{ env"):
        ArgoRolloutsTraffic(config, CONTEXT).current_weight()


def test_no_api_server_at_all_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"not in a pod, no api_url configured, and no "
                                          r"kubeconfig at .*no-kubeconfig"):
        ArgoRolloutsDeployer(ArgoRolloutsSettings(), CONTEXT).current_version()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (the cluster's CA, as far as the test goes)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "ca.crt", directory / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=kubernetes",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_in_cluster_service_account_over_verified_tls(certificate: tuple[str, str],
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(TOKEN + "\n")
    (account / "namespace").write_text("payments")
    (account / "ca.crt").write_text(Path(certificate[0]).read_text())
    monkeypatch.setattr(kube, "SERVICE_ACCOUNT_DIR", account)
    with FakeKube(tls=certificate) as fake:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(fake.port))
        traffic = ArgoRolloutsTraffic(ArgoRolloutsSettings(), CONTEXT)
        assert traffic.current_weight() == 0
        target = traffic.rollout.client().target
        assert target.source == "in-cluster service account" and target.namespace == "payments"
        # the same server, but trusting another CA: refused, not silently accepted
        other = tmp_path / "other-ca.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", str(tmp_path / "k"), "-out", str(other), "-subj", "/CN=x"],
                       check=True, capture_output=True, timeout=60)
        wrong = ArgoRolloutsTraffic(ArgoRolloutsSettings(ca_file=str(other)), CONTEXT)
        with pytest.raises(DeployError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
            wrong.current_weight()


def test_the_documented_example_runs(fake: FakeKube) -> None:
    from tests.adapters.test_command import EXAMPLES

    for section in ("traffic", "deploy"):
        table = dict(EXAMPLES["argo-rollouts-api"][section])
        assert table["token"] == {"env": "WARROOM_KUBE_TOKEN"}
        table.update(api_url=fake.url, ca_file=None)  # the fake speaks plain HTTP
        config = ArgoRolloutsSettings.model_validate(table)
        if section == "traffic":
            traffic = ArgoRolloutsTraffic(config, CONTEXT, poll_s=0.02)
        else:
            deployer = ArgoRolloutsDeployer(config, CONTEXT)
    fake.deploy(NEW)
    traffic.set_weight(10)
    assert deployer.preflight_rollback("v1.4.2").ok
    deployer.rollback("v1.4.2")
    traffic.set_weight(0)
    eventually(lambda: deployer.current_version() == "v1.4.2")


# --- check-config ------------------------------------------------------------------------------


ARGO_CONFIG = """
[metrics]
kind = "prometheus"
url = "http://127.0.0.1:9090"

[traffic]
kind = "argo-rollouts"
namespace = "payments"
token = { env = "WARROOM_KUBE_TOKEN" }
{extra}

[deploy]
kind = "argo-rollouts"
namespace = "payments"
token = { env = "WARROOM_KUBE_TOKEN" }
{extra}
"""


def test_check_config_says_where_the_rollout_is_and_refuses_no_api(
        run_warroom: Any, tmp_path: Path) -> None:
    env = {"WARROOM_KUBE_TOKEN": TOKEN, "KUBECONFIG": str(tmp_path / "none"),
           "KUBERNETES_SERVICE_HOST": ""}
    config = tmp_path / "argo.toml"
    config.write_text(ARGO_CONFIG.replace("{extra}", 'api_url = "https://10.0.0.1:6443"'))
    good = run_warroom("check-config", str(config), env=env)
    assert good.code == 0, good.err
    assert "argo-rollouts: Rollout {service} in payments via https://10.0.0.1:6443" in good.out
    # neither an api_url, nor a pod, nor a kubeconfig: refused now, naming the key
    config.write_text(ARGO_CONFIG.replace("{extra}", ""))
    bad = run_warroom("check-config", str(config), env=env)
    assert bad.code == 2
    assert "traffic.kind: no Kubernetes API to talk to: not in a pod, no api_url" in bad.err

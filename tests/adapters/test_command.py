"""The ``command`` adapters against real executables (tests/fixtures/scripts), and the docs' TOML.

The scripts stand in for kubectl (with the argo rollouts plugin), helm, a hanging command and a
program that prints its arguments. They are put first on PATH, so the argv in the docs runs as
written. Each test gets its own state file (``FAKE_STATE``) and a marker file (``FAKE_MARKER``)
that every run appends its argv to: "nothing ran" is checked by the marker being absent.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from adapters.base import AdapterTimeout, Deployer, DeployError, TrafficController
from adapters.command import CommandDeployer, CommandTraffic, check_value
from adapters.http import HttpDeployer, HttpTraffic
from adapters.settings import (
    DEPLOY_ACTIONS,
    TRAFFIC_ACTIONS,
    CommandSettings,
    DeploySettings,
    HttpSettings,
    check_actions,
)
from console.config import GateSettings, NotifySettings, StatuspageSettings
from tests.support.deploy_api import DeployApi

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "tests" / "fixtures" / "scripts"
DOC = ROOT / "docs" / "deploy-adapters.md"
CONTEXT = {"service": "payments", "version": "v1.5.0", "target": "v1.4.1", "incident": "INC-7"}

GET_IMAGE = [
    "kubectl", "--namespace", "payments", "get", "deployment", "{service}", "-o",
    "jsonpath={.metadata.generation} {.status.observedGeneration} {.spec.replicas} "
    "{.status.updatedReplicas} {.status.replicas} {.status.availableReplicas} "
    "{.spec.template.spec.containers[0].image}",
]
CONVERGED = r"^(?P<gen>\d+) (?P=gen) (?P<n>\d+) (?P=n) (?P=n) (?P=n) \S+:(?P<value>[\w.+-]+)$"
ARGO_GET = ["kubectl", "argo", "rollouts", "get", "rollout", "{service}", "--no-color"]


@dataclass
class Fake:
    """Where the fake tools keep their state and record their runs."""

    state: Path
    marker: Path
    pidfile: Path

    def runs(self) -> list[list[str]]:
        if not self.marker.exists():
            return []
        return [json.loads(line) for line in self.marker.read_text().splitlines()]

    def load(self) -> dict[str, Any]:
        return json.loads(self.state.read_text()) if self.state.exists() else {}

    def save(self, **values: Any) -> None:
        self.state.write_text(json.dumps({**self.load(), **values}))


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    # the scripts' "#!/usr/bin/env python3" finds this interpreter first (no pyenv shim to pay for)
    path = [str(SCRIPTS), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    for name in ("FAKE_MODE", "FAKE_REQUIRE_TOKEN", "KUBE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    files = Fake(tmp_path / "state.json", tmp_path / "marker.jsonl", tmp_path / "pids")
    monkeypatch.setenv("FAKE_STATE", str(files.state))
    monkeypatch.setenv("FAKE_MARKER", str(files.marker))
    monkeypatch.setenv("FAKE_PIDFILE", str(files.pidfile))
    yield files


def command_settings(**actions: Any) -> CommandSettings:
    extra = actions.pop("_settings", {})
    return CommandSettings.model_validate({"kind": "command", "timeout_s": 10,
                                           "actions": actions, **extra})


def deployer(context: dict[str, str] | None = None, **actions: Any) -> CommandDeployer:
    defaults: dict[str, Any] = {
        "current_version": {"argv": GET_IMAGE, "result_regex": CONVERGED},
        "rollback": {"argv": ["kubectl", "--namespace", "payments", "rollout", "undo",
                              "deployment/{service}"]},
    }
    defaults.update(actions)
    return CommandDeployer(command_settings(**defaults), context or CONTEXT)


# --- happy paths -------------------------------------------------------------------------------


def test_adapters_implement_the_protocols(fake: Fake) -> None:
    settings = command_settings(
        set_weight={"argv": ["kubectl", "annotate", "ingress", "x", "w={percent}"]},
        current_weight={"argv": ["kubectl", "get", "ingress", "x", "-o", "jsonpath={.w}"]},
    )
    assert isinstance(CommandTraffic(settings, CONTEXT), TrafficController)
    assert isinstance(deployer(), Deployer)


def test_current_version_with_regex(fake: Fake) -> None:
    assert deployer().current_version() == "v1.5.0"
    assert fake.runs()[0][:6] == ["kubectl", "--namespace", "payments", "get", "deployment",
                                   "payments"]


def test_current_version_regex_without_match_says_what_was_expected(fake: Fake) -> None:
    fake.save(converged=False)  # pods still rolling: the strict regex must not match
    with pytest.raises(DeployError) as caught:
        deployer().current_version()
    message = str(caught.value)
    assert message.startswith("current_version: `kubectl --namespace payments get deployment")
    assert "printed no match for result_regex" in message
    assert "7 6 4 2 4 2 registry.example.com/payments:v1.5.0" in message


def test_current_version_with_json_path(fake: Fake) -> None:
    deploy = deployer(current_version={
        "argv": ["helm", "status", "{service}", "-o", "json"],
        "result_json_path": "chart.metadata.appVersion",
    })
    assert deploy.current_version() == "v1.5.0"


def test_json_path_with_list_index(fake: Fake) -> None:
    deploy = deployer(current_version={
        "argv": ["helm", "history", "{service}", "--max", "2", "-o", "json"],
        "result_json_path": "1.app_version",
    })
    assert deploy.current_version() == "v1.5.0"


def test_weight_round_trip_with_percent(fake: Fake) -> None:
    settings = command_settings(
        set_weight={"argv": ["kubectl", "annotate", "ingress", "{service}-canary", "--overwrite",
                             "nginx.ingress.kubernetes.io/canary-weight={percent}"]},
        current_weight={"argv": ["kubectl", "get", "ingress", "{service}-canary", "-o",
                                 "jsonpath={.metadata.annotations.x}"]},
    )
    traffic = CommandTraffic(settings, CONTEXT)
    traffic.set_weight(25)
    assert traffic.current_weight() == 25
    assert fake.runs()[0][-1] == "nginx.ingress.kubernetes.io/canary-weight=25"


def test_weight_from_regex(fake: Fake) -> None:
    settings = command_settings(
        set_weight={"argv": ["kubectl", "argo", "rollouts", "promote", "{service}"]},
        current_weight={"argv": ARGO_GET,
                        "result_regex": r"^\s*ActualWeight:\s+(?P<value>\d+)\s*$"},
    )
    assert CommandTraffic(settings, CONTEXT).current_weight() == 20


def test_command_without_percent_only_advances(fake: Fake) -> None:
    settings = command_settings(
        set_weight={"argv": ["kubectl", "argo", "rollouts", "promote", "{service}"]},
        current_weight={"argv": ARGO_GET,
                        "result_regex": r"^\s*ActualWeight:\s+(?P<value>\d+)\s*$"},
    )
    traffic = CommandTraffic(settings, CONTEXT)
    traffic.set_weight(40)  # 20 -> next step
    assert traffic.current_weight() == 40
    promotes = lambda: [r for r in fake.runs() if "promote" in r]  # noqa: E731
    assert len(promotes()) == 1
    traffic.set_weight(40)  # already there: nothing to do
    assert len(promotes()) == 1
    with pytest.raises(DeployError, match=r"refusing to use it to go from 40% down to 0%"):
        traffic.set_weight(0)  # promote would advance, never abort
    assert len(promotes()) == 1


def test_rollback_streams_progress_and_returns_the_last_line(fake: Fake) -> None:
    deploy = deployer(rollback={"argv": ["kubectl", "rollout", "status", "deployment/{service}"]})
    lines: list[str] = []
    result = deploy.rollback("v1.4.1", lines.append)
    assert result == 'deployment "payments" successfully rolled out'
    assert lines == [
        'Waiting for deployment "payments" rollout to finish: 2 of 4 updated replicas are '
        "available...",
        'Waiting for deployment "payments" rollout to finish: 3 of 4 updated replicas are '
        "available...",
        'deployment "payments" successfully rolled out',
    ]


def test_rollback_then_version_reads_the_target(fake: Fake) -> None:
    deploy = deployer()
    assert deploy.rollback("v1.4.1") == "deployment.apps/payments rolled back"
    assert deploy.current_version() == "v1.4.1"


def test_rollback_with_a_parser_returns_its_value(fake: Fake) -> None:
    deploy = deployer(rollback={"argv": ["helm", "rollback", "{service}"],
                                "result_regex": r"(success)"})
    assert deploy.rollback("v1.4.1") == "success"


def test_preflight_command_passes_for_the_target_only(fake: Fake) -> None:
    deploy = deployer(preflight={
        "argv": ["kubectl", "rollout", "undo", "deployment/{service}", "--dry-run=client"],
        "result_regex": r"^\s*Image:\s+\S+:(?P<value>[\w.+-]+)\s*$",
    })
    good = deploy.preflight_rollback("v1.4.1")
    assert good.ok, good
    bad = deploy.preflight_rollback("v1.3.9")
    assert not bad.ok
    detail = next(c.detail for c in bad.checks if c.name == "preflight command")
    assert "'v1.4.1'" in detail and "v1.3.9" in detail
    assert fake.load() == {}  # read-only: the state file was never written


def test_preflight_without_command_is_read_only(fake: Fake) -> None:
    result = deployer().preflight_rollback("v1.4.1")
    assert result.ok
    assert "no preflight command is configured" in result.detail
    assert [run[3] for run in fake.runs()] == ["get"]


def test_preflight_refuses_an_unusable_target_up_front(fake: Fake) -> None:
    deploy = deployer(preflight={"argv": ["print-args", "{target}"]})
    result = deploy.preflight_rollback("v1; rm -rf /")
    assert not result.ok
    failed = {c.name: c.detail for c in result.checks if not c.ok}
    assert "refused value for {target}" in failed["target version usable"]
    assert "refused value for {target}" in failed["preflight command"]
    assert all(run[0] == "kubectl" for run in fake.runs())  # print-args never ran


def test_preflight_failure_is_a_failed_check(fake: Fake) -> None:
    deploy = deployer(preflight={"argv": ["helm", "rollback", "{service}", "--dry-run"]},
                      _settings={"env": {"FAKE_MODE": "fail"}})
    result = deploy.preflight_rollback("v1.4.1")
    assert not result.ok
    assert any("another operation" in c.detail for c in result.checks)


# --- failures ----------------------------------------------------------------------------------


def test_non_zero_exit_carries_the_code_and_stderr_tail(fake: Fake) -> None:
    deploy = deployer(_settings={"env": {"FAKE_MODE": "fail"}})
    with pytest.raises(DeployError) as caught:
        deploy.rollback("v1.4.1")
    message = str(caught.value)
    assert message.startswith("rollback: `kubectl --namespace payments rollout undo")
    assert " exited 1: " in message
    tail = message.split(" exited 1: ", 1)[1]
    assert tail.endswith("error: You must be logged in to the server (Unauthorized)")
    assert len(tail) <= 200


def test_garbage_output_says_what_was_expected(fake: Fake) -> None:
    traffic = CommandTraffic(command_settings(
        set_weight={"argv": ["kubectl", "annotate", "ingress", "x", "w={percent}"]},
        current_weight={"argv": ["kubectl", "get", "ingress", "x", "-o", "jsonpath={.w}"]},
        _settings={"env": {"FAKE_MODE": "garbage"}},
    ), CONTEXT)
    with pytest.raises(DeployError) as caught:
        traffic.current_weight()
    message = str(caught.value)
    assert "expected a number 0..100" in message
    assert "\x1b" not in message


def test_garbage_instead_of_json(fake: Fake) -> None:
    deploy = deployer(current_version={"argv": ["kubectl", "get", "deployment", "x", "-o", "json"],
                                       "result_json_path": "spec.replicas"},
                      _settings={"env": {"FAKE_MODE": "garbage"}})
    with pytest.raises(DeployError, match="printed output that is not JSON: %%% something else"):
        deploy.current_version()


def test_missing_json_path(fake: Fake) -> None:
    deploy = deployer(current_version={"argv": ["helm", "status", "{service}", "-o", "json"],
                                       "result_json_path": "chart.metadata.nope"})
    with pytest.raises(DeployError, match=r"without result_json_path 'chart.metadata.nope' \(no "
                                          r"field 'nope' at chart.metadata"):
        deploy.current_version()


def test_hang_is_killed_with_its_children(fake: Fake) -> None:
    deploy = deployer(rollback={"argv": ["hang", "{target}"], "timeout_s": 0.5})
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(AdapterTimeout) as caught:
        deploy.rollback("v1.4.1", lines.append)
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert "no complete answer within 0.5 s; it was killed" in str(caught.value)
    assert "outcome is unknown" in str(caught.value)
    assert lines == ["waiting for the API server..."]  # streamed before the timeout
    pids = [int(p) for p in fake.pidfile.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 3
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids), "the process group survived the timeout"


HOSTILE = [
    "v1; rm -rf /",
    "$(id)",
    "`id`",
    "--kubeconfig=/x",
    "-n",
    "../../etc",
    "v1/../../etc/passwd",
    "..",
    "v1 v2",
    "v1\nv2",
    "v1\n",
    "v1\x00",
    "v1\t",
    "",
    "a|b",
    "a&b",
    "a>b",
    "'quoted'",
    "*",
    "$HOME",
    "x" * 200,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused_and_nothing_runs(fake: Fake, value: str) -> None:
    deploy = deployer(rollback={"argv": ["print-args", "rollback", "--to", "{target}"]})
    with pytest.raises(DeployError) as caught:
        deploy.rollback(value)
    assert str(caught.value).startswith("rollback: refused value for {target}: ")
    assert "nothing was run" in str(caught.value)
    assert fake.runs() == []


@pytest.mark.parametrize("field", ["service", "incident", "version"])
def test_hostile_context_values_are_refused_too(fake: Fake, field: str) -> None:
    context = {**CONTEXT, field: "--all-namespaces"}
    deploy = deployer(context, rollback={"argv": ["print-args", "{service}", "{incident}",
                                                  "{version}", "{target}"]})
    with pytest.raises(DeployError, match=rf"refused value for \{{{field}\}}: '--all-namespaces' "
                                          "starts with '-'"):
        deploy.rollback("v1.4.1")
    assert fake.runs() == []


@pytest.mark.parametrize("value", ["-x", "--kubeconfig=/x", "../x", "a/../b", "a b", "a\nb"])
def test_built_in_rules_hold_whatever_the_pattern(fake: Fake, value: str) -> None:
    deploy = deployer(rollback={"argv": ["print-args", "{target}"]},
                      _settings={"value_pattern": r"(?s).*"})
    with pytest.raises(DeployError, match=r"refused value for \{target\}"):
        deploy.rollback(value)
    assert fake.runs() == []


def test_unused_placeholders_are_not_checked(fake: Fake) -> None:
    # a strange incident id must not block a command that does not use it
    deploy = deployer({**CONTEXT, "incident": "INC 7 (war room)"})
    assert deploy.current_version() == "v1.5.0"


def test_argv_is_passed_literally(fake: Fake) -> None:
    settings: dict[str, Any] = {"value_pattern": r"[A-Za-z0-9*$;]{1,20}"}
    deploy = deployer(
        {**CONTEXT, "service": "$HOME"},
        rollback={"argv": ["print-args", "{service}", "{target}", "literal $PATH *"]},
        _settings=settings,
    )
    deploy.rollback("*;x")
    assert fake.runs() == [["$HOME", "*;x", "literal $PATH *"]]
    # and the default pattern would have refused both
    for value in ("$HOME", "*;x"):
        with pytest.raises(DeployError):
            check_value("target", value, CommandSettings().value_pattern)


def test_secret_env_reaches_the_command_but_not_the_messages(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"env": {"KUBE_TOKEN": {"env": "WARROOM_TEST_KUBE_TOKEN"},
                        "FAKE_REQUIRE_TOKEN": "expected-token"}}
    deploy = deployer(_settings=settings)

    monkeypatch.setenv("WARROOM_TEST_KUBE_TOKEN", "expected-token")
    assert deploy.current_version() == "v1.5.0"

    monkeypatch.setenv("WARROOM_TEST_KUBE_TOKEN", "hunter2-wrong-token")
    with pytest.raises(DeployError) as caught:
        deploy.current_version()
    assert "rejected by the API server" in str(caught.value)
    assert "hunter2-wrong-token" not in str(caught.value)  # the fake echoed it; it was scrubbed

    monkeypatch.delenv("WARROOM_TEST_KUBE_TOKEN")
    runs = len(fake.runs())
    with pytest.raises(DeployError, match="WARROOM_TEST_KUBE_TOKEN is not set"):
        deploy.current_version()
    assert len(fake.runs()) == runs  # nothing ran


def test_missing_program(fake: Fake) -> None:
    deploy = deployer(current_version={"argv": ["no-such-kubectl-here", "version"]})
    with pytest.raises(DeployError, match="program 'no-such-kubectl-here' not found"):
        deploy.current_version()


def test_missing_context_value(fake: Fake) -> None:
    deploy = deployer({"service": "payments"},
                      rollback={"argv": ["print-args", "{version}", "{target}"]})
    with pytest.raises(DeployError, match=r"no value for \{version\}.*nothing was run"):
        deploy.rollback("v1.4.1")
    assert fake.runs() == []


def test_base_url_is_not_a_command_placeholder(fake: Fake) -> None:
    deploy = deployer(current_version={"argv": ["print-args", "{base_url}"]})
    with pytest.raises(DeployError, match=r"no value for \{base_url\}"):
        deploy.current_version()


def test_set_weight_range(fake: Fake) -> None:
    traffic = CommandTraffic(command_settings(
        set_weight={"argv": ["print-args", "{percent}"]},
        current_weight={"argv": ["print-args", "0"]},
    ), CONTEXT)
    for bad in (-1, 101):
        with pytest.raises(DeployError, match=r"0\.\.100"):
            traffic.set_weight(bad)
    traffic.set_weight(100)
    assert fake.runs() == [["100"]]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


# --- the documentation -------------------------------------------------------------------------


def doc_examples() -> dict[str, dict[str, Any]]:
    """Every ```toml block of docs/deploy-adapters.md, parsed, by its '# example: NAME' line."""
    blocks = re.findall(r"^```toml\n(.*?)^```", DOC.read_text(), re.MULTILINE | re.DOTALL)
    assert blocks, "no toml blocks found in the docs"
    examples: dict[str, dict[str, Any]] = {}
    for block in blocks:
        name = re.match(r"# example: ([\w-]+)\n", block)
        assert name is not None, f"a toml block lacks its '# example: NAME' line:\n{block[:80]}"
        examples[name.group(1)] = tomllib.loads(block)
    return examples


EXAMPLES = doc_examples()
SECTION_RULES = {
    "traffic": (TRAFFIC_ACTIONS, TRAFFIC_ACTIONS),
    "deploy": (DEPLOY_ACTIONS, ("current_version", "rollback")),  # as console.config checks
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_doc_example_validates(name: str) -> None:
    example = dict(EXAMPLES[name])
    assert set(example) <= {"traffic", "deploy", "gate", "notify", "statuspage"}, \
        f"{name}: unexpected tables {sorted(example)}"
    assert example, f"{name}: the block has neither [traffic] nor [deploy]"
    if "gate" in example:
        GateSettings.model_validate(example.pop("gate"))
    if "notify" in example:
        NotifySettings.model_validate(example.pop("notify"))
    if "statuspage" in example:
        StatuspageSettings.model_validate(example.pop("statuspage"))
    adapter = TypeAdapter(DeploySettings)
    for section, table in example.items():
        settings = adapter.validate_python(table)
        allowed, required = SECTION_RULES[section]
        check_actions(settings, allowed, required)


def test_docs_cover_every_kind() -> None:
    assert set(EXAMPLES) >= {"http", "argo-rollouts", "kubernetes", "helm"}


def _command(name: str, section: str) -> CommandSettings:
    return CommandSettings.model_validate(EXAMPLES[name][section])


def test_doc_argo_rollouts_example_runs(fake: Fake) -> None:
    traffic = CommandTraffic(_command("argo-rollouts", "traffic"), CONTEXT)
    deploy = CommandDeployer(_command("argo-rollouts", "deploy"), CONTEXT)
    assert traffic.current_weight() == 20
    assert deploy.current_version() == "v1.4.1"  # the (stable) image, not the canary's
    traffic.set_weight(40)
    assert traffic.current_weight() == 40
    with pytest.raises(DeployError, match="can only advance"):
        traffic.set_weight(10)
    assert deploy.preflight_rollback("v1.4.1").ok
    assert deploy.rollback("v1.4.1") == "rollout 'payments' undo"
    assert traffic.current_weight() == 0
    assert deploy.current_version() == "v1.4.1"
    assert ["kubectl", "argo", "rollouts", "undo", "payments", "--namespace", "payments"] \
        in fake.runs()


def test_doc_kubernetes_example_runs(fake: Fake) -> None:
    traffic = CommandTraffic(_command("kubernetes", "traffic"), CONTEXT)
    deploy = CommandDeployer(_command("kubernetes", "deploy"), CONTEXT)
    assert traffic.current_weight() == 10
    traffic.set_weight(25)
    assert traffic.current_weight() == 25
    assert deploy.current_version() == "v1.5.0"
    assert deploy.preflight_rollback("v1.4.1").ok
    assert not deploy.preflight_rollback("v1.3.0").ok
    assert deploy.rollback("v1.4.1") == "deployment.apps/payments rolled back"
    assert deploy.current_version() == "v1.4.1"


def test_doc_helm_example_runs(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_HELM_TOKEN", "helm-token")
    deploy = CommandDeployer(_command("helm", "deploy"), CONTEXT)
    assert deploy.current_version() == "v1.5.0"
    assert deploy.preflight_rollback("v1.4.1").ok
    assert not deploy.preflight_rollback("v1.5.0").ok
    assert deploy.rollback("v1.4.1") == "Rollback was a success! Happy Helming!"
    assert deploy.current_version() == "v1.4.1"
    assert ["helm", "rollback", "payments", "--wait", "--timeout", "5m"] in fake.runs()


def test_doc_http_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_DEPLOY_TOKEN", "doc-token")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # the local server is reached directly
    with DeployApi(token="doc-token") as api:
        def local(section: str) -> HttpSettings:
            settings = HttpSettings.model_validate(EXAMPLES["http"][section])
            return settings.model_copy(update={"base_url": api.base_url})

        traffic = HttpTraffic(local("traffic"), CONTEXT, backoff_s=0.01)
        deploy = HttpDeployer(local("deploy"), CONTEXT, backoff_s=0.01)
        traffic.set_weight(10)
        assert traffic.current_weight() == 10
        assert api.idempotency_keys["/api/services/payments/weight"]
        assert deploy.current_version() == "v1.4.2"
        assert deploy.preflight_rollback("v1.4.1").ok
        assert deploy.rollback("v1.4.1") == "op-1 (HTTP 202)"
        assert deploy.current_version() == "v1.4.1"
        traffic.close()
        deploy.close()

"""`warroom gate`: Flagger's four manual gates, answered from the incident record.

Flagger's real payload shapes (tests/fixtures/flagger/payloads.json, from its docs and source;
tests/support/fake_flagger.py calls as its controller does) are POSTed to a real server on
127.0.0.1. What is pinned here:

- closed by default, for every reason in words (no decision, another canary, another run, a
  closed incident, no such incident, a store that fails), never 2xx without a decision;
- the commander's keys decide: advance opens confirm-rollout and one traffic increase (or the
  promotion at 100 %) for the run Flagger presented; abort and rollback open the rollback gate
  and close the others;
- bound to the checksum: a new run is closed again; a traffic increase lets one call through;
- durable: the real `warroom gate` killed and started again answers as before;
- each change of answer is one timeline event, not one per poll.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.config import Config, GateSettings
from console.engine import ActionRefused
from console.gate import GateServer
from console.model import Kind
from console.store import StoreError
from tests.integration.engine_support import LiveIncident, make_config
from tests.support.fake_flagger import FakeFlagger, checksum, recorded_payloads

REPO = Path(__file__).resolve().parents[2]
RUN = "85d557f47b"  # the checksum of Flagger's docs example
NEXT_RUN = checksum("podinfo: image ghcr.io/stefanprodan/podinfo:6.0.1")


def _config(**gate: Any) -> Config:
    config = make_config(metrics={"kind": "sim"}, traffic={"kind": "sim"},
                         deploy={"kind": "sim"}, guardrails=[], verification_hold_s=0.0)
    return config.model_copy(update={"gate": GateSettings.model_validate(
        {"namespace": "test", "listen": "127.0.0.1:0", **gate})})


@pytest.fixture
def incident(tmp_path: Path) -> Iterator[LiveIncident]:
    live = LiveIncident(tmp_path, _config(), "podinfo")
    try:
        yield live
    finally:
        live.close()


@pytest.fixture
def gate(incident: LiveIncident) -> Iterator[GateServer]:
    assert incident.config.gate is not None
    with GateServer(incident.store, incident.id, incident.config.gate) as server:
        yield server


@pytest.fixture
def flagger(gate: GateServer) -> FakeFlagger:
    return FakeFlagger(gate.url)


def post(url: str, body: Any) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=data, headers={"Content-Type": "application/json"},
                      timeout=10)


def asks(incident: LiveIncident) -> list[dict[str, Any]]:
    return [e.payload for e in incident.events(Kind.FLAGGER_GATE_ASKED)]


# --- closed unless the record opens it ----------------------------------------------------------


def test_every_gate_is_closed_without_a_decision(incident: LiveIncident, gate: GateServer) -> None:
    recorded = recorded_payloads()
    for kind in ("confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"):
        answer = post(f"{gate.url}/gate/{kind}", recorded[kind])
        assert answer.status_code == 403, answer.text
        assert f"no decision in INC-{incident.id}: the commander has not opened {kind}" \
            in answer.text
    # the docs' example, metadata and all (the token is Flagger's, no [gate] token asked here)
    assert post(f"{gate.url}/gate/confirm-rollout", recorded["docs_example"]).status_code == 403
    # one event per change of answer, not per call
    assert [(a["gate"], a["answer"], a["checksum"], a["phase"]) for a in asks(incident)] == [
        ("confirm-rollout", "closed", RUN, "Initialized"),
        ("confirm-traffic-increase", "closed", RUN, "Progressing"),
        ("confirm-promotion", "closed", RUN, "Progressing"),
        ("rollback", "closed", RUN, "Progressing"),
        ("confirm-rollout", "closed", RUN, "Progressing"),
    ]
    for _ in range(3):
        assert post(f"{gate.url}/gate/rollback", recorded["rollback"]).status_code == 403
    assert len(asks(incident)) == 5
    state = incident.store.state(incident.id)
    assert state.flagger_checksum == RUN
    assert state.flagger_canary == "podinfo.test"


def test_what_is_not_flaggers_payload_is_refused(gate: GateServer) -> None:
    url = f"{gate.url}/gate/confirm-rollout"
    assert post(url, b"not json").status_code == 400
    assert post(url, {"name": "podinfo", "namespace": "test"}).status_code == 400  # no checksum
    assert post(url, {"name": 7, "namespace": "test", "checksum": RUN}).status_code == 400
    # the load tester's /gate/open body is not a webhook call: no checksum, no approval
    assert post(url, recorded_payloads()["loadtester_gate_open_body"]).status_code == 400
    assert post(f"{gate.url}/gate/confirm-everything", {"name": "podinfo", "namespace": "test",
                                                         "checksum": RUN}).status_code == 404
    assert httpx.get(f"{gate.url}/healthz").status_code == 200
    assert httpx.get(url).status_code == 405


def test_another_canary_is_never_opened(incident: LiveIncident, gate: GateServer) -> None:
    flagger = FakeFlagger(gate.url)
    flagger.call("confirm-rollout", RUN, "Initialized")
    incident.prepare()
    incident.engine.advance()
    assert flagger.call("confirm-rollout", RUN)
    other = FakeFlagger(gate.url, namespace="prod")
    assert not other.call("confirm-rollout", RUN)
    assert f"INC-{incident.id} gates canary podinfo.test, not podinfo.prod" in other.calls[-1][2]
    assert not FakeFlagger(gate.url, name="frontend").call("confirm-rollout", RUN)


# --- the commander's keys decide ----------------------------------------------------------------


def test_advance_opens_the_rollout_and_one_traffic_increase(incident: LiveIncident,
                                                            flagger: FakeFlagger) -> None:
    incident.prepare()
    with pytest.raises(ActionRefused, match=r"Flagger has not called `warroom gate` for "
                                            r"podinfo\.test yet"):
        incident.engine.advance()
    assert not flagger.call("confirm-rollout", RUN, "Initialized")  # a new revision: it waits
    assert _summary(incident) == ("Flagger run 85d557f47b: asked confirm-rollout (Initialized) "
                                  "→ closed; every gate closed")
    incident.engine.advance()  # 0% → 1%
    opened = [e.payload for e in incident.events(Kind.FLAGGER_GATE_OPENED)]
    assert [(o["gate"], o["checksum"], o["once"]) for o in opened] == [
        ("confirm-rollout", RUN, False), ("confirm-traffic-increase", RUN, True)]
    assert opened[1]["reason"] == "advance 0% → 1%"
    assert _summary(incident).endswith(
        "; open: confirm-rollout, confirm-traffic-increase")
    assert flagger.call("confirm-rollout", RUN, "Waiting")
    assert flagger.calls[-1][1] == 200 and flagger.calls[-1][2].startswith("Approved: opened by")
    assert flagger.call("confirm-traffic-increase", RUN)  # one increase ...
    assert not flagger.call("confirm-traffic-increase", RUN)  # ... and no second one
    assert "closed by flagger: used by Flagger's call" in flagger.calls[-1][2]
    incident.engine.advance()  # 1% → 10%: one more increase, the rollout stays confirmed
    assert flagger.call("confirm-traffic-increase", RUN)
    assert not flagger.call("confirm-traffic-increase", RUN)
    assert not flagger.call("confirm-promotion", RUN)
    incident.engine.advance()  # 10% → 100%: the promotion
    assert flagger.call("confirm-promotion", RUN)
    assert flagger.call("confirm-promotion", RUN)  # asked again for the same run: still open
    assert not flagger.call("rollback", RUN)
    used = [a for a in asks(incident) if a["gate"] == "confirm-traffic-increase"
            and a["answer"] == "open"]
    assert len(used) == 2  # each increase let through is on the record


def test_a_new_run_is_closed_again(incident: LiveIncident, flagger: FakeFlagger) -> None:
    incident.prepare()
    flagger.call("confirm-rollout", RUN, "Initialized")
    incident.engine.advance()
    assert flagger.call("confirm-rollout", RUN)
    # someone deploys again: Flagger starts a new run with a new checksum
    assert not flagger.call("confirm-rollout", NEXT_RUN, "Initialized")
    assert f"opened for run {RUN}, not {NEXT_RUN}: a new run needs a new decision" \
        in flagger.calls[-1][2]
    assert not flagger.call("confirm-traffic-increase", NEXT_RUN)
    assert incident.store.state(incident.id).flagger_checksum == NEXT_RUN
    # the run that was approved is still approved; the new one needs the commander
    assert flagger.call("confirm-rollout", RUN)
    flagger.call("confirm-rollout", NEXT_RUN, "Waiting")
    incident.engine.advance()
    assert flagger.call("confirm-rollout", NEXT_RUN)
    assert flagger.call("confirm-traffic-increase", NEXT_RUN)


@pytest.mark.parametrize("key", ["abort", "rollback"])
def test_abort_and_rollback_open_the_rollback_gate(incident: LiveIncident, flagger: FakeFlagger,
                                                   key: str) -> None:
    incident.prepare()
    flagger.call("confirm-rollout", RUN, "Initialized")
    incident.engine.advance()
    assert not flagger.call("rollback", RUN)
    if key == "abort":
        incident.engine.abort("the canary pages")
    else:
        incident.engine.request_rollback("the canary pages")
    assert flagger.call("rollback", RUN)  # Flagger now routes everything back to the primary
    assert not flagger.call("rollback", NEXT_RUN)  # for this run only
    closed = {e.payload["gate"] for e in incident.events(Kind.FLAGGER_GATE_CLOSED)}
    assert closed == {"confirm-rollout", "confirm-traffic-increase"}
    assert not flagger.call("confirm-rollout", RUN)
    assert not flagger.call("confirm-traffic-increase", RUN)


def test_two_calls_at_once_cannot_both_use_one_increase(incident: LiveIncident,
                                                        flagger: FakeFlagger) -> None:
    incident.prepare()
    flagger.call("confirm-rollout", RUN, "Initialized")
    incident.engine.advance()
    answers: list[bool] = []
    start = threading.Barrier(6)

    def call() -> None:
        start.wait()
        answers.append(FakeFlagger(flagger.url).call("confirm-traffic-increase", RUN))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [False] * 5 + [True]


# --- never open on a fault ----------------------------------------------------------------------


def test_no_record_and_a_failing_store_keep_it_closed(incident: LiveIncident, gate: GateServer,
                                                      flagger: FakeFlagger,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert incident.config.gate is not None
    with GateServer(incident.store, incident.id + 41, incident.config.gate) as nowhere:
        assert not FakeFlagger(nowhere.url).call("confirm-rollout", RUN)
    incident.prepare()
    flagger.call("confirm-rollout", RUN, "Initialized")
    incident.engine.advance()

    def fails(*_: Any, **__: Any) -> Any:
        raise StoreError(f"{incident.store.location}: disk I/O error: nothing was written")

    # the decision is open in the record, but the store cannot be read: closed
    monkeypatch.setattr(incident.store, "state", fails)
    assert not flagger.call("confirm-rollout", RUN)
    assert "the record could not answer" in flagger.calls[-1][2]
    monkeypatch.undo()
    # it can be read but not written: the one-use increase is not let through unrecorded
    monkeypatch.setattr(incident.store, "record", fails)
    assert not flagger.call("confirm-traffic-increase", RUN)
    assert "disk I/O error" in flagger.calls[-1][2]
    monkeypatch.undo()
    assert flagger.call("confirm-traffic-increase", RUN)  # the store is back: the decision holds


def test_a_closed_incident_opens_nothing(incident: LiveIncident, flagger: FakeFlagger) -> None:
    incident.prepare()
    flagger.call("confirm-rollout", RUN, "Initialized")
    incident.engine.advance()
    incident.engine.close_incident("drill over: nothing shipped")
    assert not flagger.call("confirm-rollout", RUN)
    assert "is closed: no gate opens any more" in flagger.calls[-1][2]


def test_a_token_is_asked_when_configured(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_GATE_TOKEN", "16688eb5e9f289f1991c")
    live = LiveIncident(tmp_path, _config(token_env="WARROOM_GATE_TOKEN"), "podinfo")
    try:
        assert live.config.gate is not None
        with GateServer(live.store, live.id, live.config.gate) as server:
            docs = recorded_payloads()["docs_example"]  # carries that very token
            assert "no decision" in post(f"{server.url}/gate/confirm-rollout", docs).text
            wrong = {**docs, "metadata": {"token": "16688eb5e9f289f1991d"}}
            answer = post(f"{server.url}/gate/confirm-rollout", wrong)
            assert answer.status_code == 403 and "metadata.token" in answer.text
            bare = {k: v for k, v in docs.items() if k != "metadata"}
            assert "metadata.token" in post(f"{server.url}/gate/rollback", bare).text
        # refused calls are not recorded: only the one with the token is
        assert len(live.events(Kind.FLAGGER_GATE_ASKED)) == 1
    finally:
        live.close()


# --- durable: the real command, killed and started again ----------------------------------------


def _start_gate(tmp_path: Path, incident: LiveIncident) -> tuple[subprocess.Popen[str], str]:
    config = tmp_path / "warroom.toml"
    config.write_text('[gate]\nnamespace = "test"\nlisten = "127.0.0.1:0"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "--config", str(config), "--db",
         str(incident.store.path), "gate", str(incident.id)],
        cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        raise AssertionError(f"warroom gate did not start: {line!r} {process.stderr.read()!r}")
    url = line.split(" on ", 1)[1].split("/gate/", 1)[0]
    assert url.startswith("http://127.0.0.1:")
    return process, url


def test_a_restarted_gate_answers_as_before(tmp_path: Path, incident: LiveIncident) -> None:
    process, url = _start_gate(tmp_path, incident)
    try:
        flagger = FakeFlagger(url)
        assert not flagger.call("confirm-rollout", RUN, "Initialized")
        incident.prepare()
        incident.engine.advance()  # decided in the commander's console, another process
        process.send_signal(signal.SIGKILL)  # the gate dies between the decision and the check
        process.wait(10)
        process, url = _start_gate(tmp_path, incident)
        flagger = FakeFlagger(url)
        assert flagger.call("confirm-rollout", RUN)
        assert flagger.call("confirm-traffic-increase", RUN)
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        process, url = _start_gate(tmp_path, incident)
        flagger = FakeFlagger(url)
        assert not flagger.call("confirm-traffic-increase", RUN)  # used, and remembered
        assert not flagger.call("confirm-rollout", NEXT_RUN, "Initialized")  # a new run: closed
    finally:
        process.kill()
        process.wait(10)
    opened = [a for a in asks(incident) if a["answer"] == "open"]
    assert [a["gate"] for a in opened] == ["confirm-rollout", "confirm-traffic-increase"]


def test_the_gate_refuses_to_start_without_its_section(tmp_path: Path,
                                                       incident: LiveIncident) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "console.cli", "--config", str(config), "--db",
         str(incident.store.path), "gate", str(incident.id)], cwd=REPO, capture_output=True,
        text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"{config}: gate: no [gate] section" in done.stderr


def _summary(incident: LiveIncident) -> str:
    from widgets.canary import flagger_line

    incident.engine.refresh()
    return flagger_line(incident.state)


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[gate]\nlisten = "127.0.0.1:8795"\n', "gate.namespace", "required key is missing"),
    ('[gate]\nnamespace = "test"\nlisten = "127.0.0.1:99999"\n', "gate.listen",
     "port 99999 is not between 0 and 65535"),
    ('[gate]\nnamespace = "test"\nlisten = "every address"\n', "gate.listen", ""),
    ('[gate]\nnamespace = "Test Space"\n', "gate.namespace", ""),
    ('[gate]\nnamespace = "test"\ntoken_env = "WARROOM_TEST_NO_SUCH_TOKEN"\n', "gate.token_env",
     "environment variable WARROOM_TEST_NO_SUCH_TOKEN is not set or empty"),
    ('[gate]\nnamespace = "test"\nport = 8795\n', "gate.port", ""),
])
def test_check_config_refuses_a_bad_gate_section(tmp_path: Path, text: str, key: str,
                                                 words: str) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    done = subprocess.run([sys.executable, "-m", "console.cli", "check-config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stdout
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{config}: {key}: {words}" in done.stderr

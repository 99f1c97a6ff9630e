"""`make demo-flagger` (`warroom demo --flagger --status-page`): the demo's story through
`warroom gate` and a status page stand-in, with the pieces `console.launch` starts for it.

A simulated Flagger (adapters/sim_flagger.py) calls the gate with Flagger's payload every
analysis interval and moves its canary only when the gate lets it; the console's traffic
follows that Flagger. Here the engine's advance goes through confirm-rollout and one traffic
increase per stage, and the rollback opens Flagger's rollback gate, which sends its canary back;
then the status page post reaches the Statuspage stand-in. Waits are conditions with deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from adapters.sim_flagger import FlaggerTraffic
from adapters.sim_statuspage import StatuspageStub
from console.config import Config
from console.demo import (
    DEMO_SERVICE,
    demo_config,
    start_flagger,
    start_status_page,
    with_integrations,
)
from console.export.comms import status_page_draft
from console.model import Kind
from console.statuspage import next_post
from tests.app.conftest import Rig, RigFactory


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {deadline_s:g} s: {what}"
        time.sleep(0.02)


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StatuspageStub, dict[str, Any]]]:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("WARROOM_DEMO_STATUSPAGE_KEY", raising=False)
    stub, section = start_status_page()
    try:
        yield stub, section
    finally:
        stub.stop()


def test_the_demo_config_gains_the_gate_and_the_page(
        page: tuple[StatuspageStub, dict[str, Any]]) -> None:
    stub, section = page
    config = with_integrations(demo_config(Config(), "bad"), flagger=True, statuspage=section)
    assert config.gate is not None and config.gate.listen == "127.0.0.1:0"
    assert config.gate.canary_name(DEMO_SERVICE) == f"{DEMO_SERVICE}.demo"
    assert config.statuspage is not None and config.statuspage.api_url == stub.url
    assert config.export.customer_names[DEMO_SERVICE] == "Support transcripts"


def test_the_story_through_the_gate_and_the_status_page(
        make_rig: RigFactory, page: tuple[StatuspageStub, dict[str, Any]]) -> None:
    stub, section = page
    rig: Rig = make_rig("bad", gate={"namespace": "demo", "listen": "127.0.0.1:0"},
                        statuspage=section,
                        export={"customer_names": {DEMO_SERVICE: "Support transcripts"}})
    stop, url = start_flagger(rig.db, rig.config, rig.incident_id, rig.engine.adapters, fast=True)
    rig._closers.append(stop)
    assert url.startswith("http://127.0.0.1:")
    traffic = rig.engine.adapters.traffic
    assert isinstance(traffic, FlaggerTraffic)
    flagger = traffic.flagger
    rig.ready()
    # The gate records the checksum before it answers, and Flagger takes the answer after:
    # wait for both, then see what the answer made of its phase.
    wait_for(lambda: rig.state().flagger_checksum == flagger.checksum
             and flagger.status()[0] != "Initialized",
             "the simulated Flagger asks confirm-rollout and takes the answer")
    assert flagger.status() == ("Waiting", 0)

    rig.engine.advance()  # returns once Flagger went through its gates to 1%
    assert flagger.status() == ("Progressing", 1)
    assert rig.state().canary_percent == 1
    rig.past_hold()
    rig.engine.advance()
    assert flagger.status() == ("Progressing", 10)
    opened = [(e.payload["answer"], e.payload["gate"]) for e in rig.events(Kind.FLAGGER_GATE_ASKED)
              if e.payload["answer"] == "open"]
    assert opened == [("open", "confirm-rollout"), ("open", "confirm-traffic-increase"),
                      ("open", "confirm-traffic-increase")]

    rig.engine.request_rollback("the bridge decided")  # Flagger's rollback gate opens
    assert flagger.status() == ("Failed", 0)
    assert rig.state().canary_percent == 0
    assert any(e.payload["gate"] == "rollback" and e.payload["answer"] == "open"
               for e in rig.events(Kind.FLAGGER_GATE_ASKED))

    assert rig.config.statuspage is not None
    draft = status_page_draft(rig.events(), config=rig.config)
    assert draft.status == "identified"  # the fix was withdrawn: the harm is back
    post = next_post(rig.engine.state, draft, rig.config.statuspage,
                     body="We withdrew the fix; the issue is ongoing.")
    posted = rig.engine.post_status_page(post)
    assert posted.kind == Kind.STATUSPAGE_POSTED
    (incident,) = stub.incidents.values()
    assert incident["status"] == "identified"
    assert incident["name"] == "SIMULATED (demo) — Issue affecting Support transcripts"

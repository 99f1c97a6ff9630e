"""Every adapter call ends within its deadline, with a clear reason, and recovers after the fault.

Each transport fault of :data:`tests.faults.fakes.HTTP_FAULTS` is switched on in front of each kind
of call the console makes: a read that may be retried (``current_version``), a write that may be
retried because it carries an idempotency key (``set_weight``), a write that must never be sent
twice (``rollback``), a Prometheus query, and a chat webhook post. For each: the call raises the
adapter's error (never hangs, never returns a wrong answer) within its total deadline plus a
little scheduling slack, the error says what happened, and once the fault is cleared the next call
on the same adapter succeeds: nothing is left stuck.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.base import AdapterError, AdapterTimeout
from adapters.http import HttpDeployer, HttpTraffic
from adapters.notify import WebhookNotifier
from adapters.prometheus import PrometheusMetrics
from adapters.settings import HttpSettings, PrometheusSettings
from tests.faults.conftest import LONG, Tally
from tests.faults.fakes import HTTP_FAULTS, FakeDeployApi, FakePrometheus, FaultyServer

#: The total deadline of every call here, and how much later than it a call may end on a loaded
#: two-core machine (thread scheduling, the retry pause that found no time left).
DEADLINE_S = 2.0 if LONG else 0.6
SLACK_S = 1.5
CONTEXT = {"service": "payments", "target": "v1.4.1", "version": "v1.5.0", "incident": "INC-7"}

#: What each fault's error must say (for every call that fails on it).
REASONS: dict[str, str] = {
    "down": r"[Cc]onnection refused",
    "500": r"HTTP 500",
    "503": r"HTTP 503",
    "slow": r"no complete answer within|did not answer within|no answer within",
    "hang": r"no complete answer within|did not answer within|no answer within",
    "drip": r"no complete answer within",
    "reset": r"[Cc]onnection reset",
    "invalid_json": r"not JSON|HTTP 200",
    "html": r"HTML page",
    "429": r"HTTP 429",
    "empty_body": r"not JSON|empty body",
}
#: Faults a webhook post survives: any 2xx that is not a login page is a delivery.
WEBHOOK_DELIVERED = {"invalid_json", "empty_body"}


@dataclass
class Adapters:
    api: FakeDeployApi
    prometheus: FakePrometheus
    traffic: HttpTraffic
    deployer: HttpDeployer
    metrics: PrometheusMetrics
    notifier: WebhookNotifier


@pytest.fixture
def adapters(monkeypatch: pytest.MonkeyPatch) -> Iterator[Adapters]:
    with FakeDeployApi() as api, FakePrometheus() as prometheus:
        prometheus.set_tracks("value", 0.01, 0.01)
        timing: dict[str, Any] = {"timeout_s": DEADLINE_S / 2, "deadline_s": DEADLINE_S}
        monkeypatch.setenv("WARROOM_TEST_WEBHOOK", api.url + "/hooks/chat")
        built = Adapters(
            api, prometheus,
            HttpTraffic(HttpSettings.model_validate(api.traffic(**timing)), CONTEXT,
                        backoff_s=0.05),
            HttpDeployer(HttpSettings.model_validate(api.deploy(**timing)), CONTEXT,
                         backoff_s=0.05),
            PrometheusMetrics(PrometheusSettings.model_validate(prometheus.metrics(**timing))),
            WebhookNotifier("WARROOM_TEST_WEBHOOK", timeout_s=DEADLINE_S / 2,
                            deadline_s=DEADLINE_S),
        )
        try:
            yield built
        finally:
            built.traffic.close()
            built.deployer.close()
            built.metrics.close()
            built.notifier.close()


def _preflight(adapters: Adapters) -> object:
    """A preflight never raises: a failed check is its answer. Raised here so it is judged."""
    result = adapters.deployer.preflight_rollback("v1.4.1")
    if not result.ok:
        raise AdapterError(next(c.detail for c in result.checks if not c.ok))
    return result


CALLS: dict[str, Callable[[Adapters], object]] = {
    "current_version": lambda a: a.deployer.current_version(),
    "set_weight": lambda a: a.traffic.set_weight(5),
    "rollback": lambda a: a.deployer.rollback("v1.4.1"),
    "prometheus query": lambda a: a.metrics.query('value{track="canary"}'),
    "webhook post": lambda a: a.notifier.send("INC-7: rollback requested"),
}
if LONG:  # every action the console calls, not one of each kind
    CALLS |= {"current_weight": lambda a: a.traffic.current_weight(), "preflight": _preflight}
#: How many times each fault is injected in front of each call (a leak shows on the second).
ROUNDS = 2 if LONG else 1
SERVER_OF = {"prometheus query": "prometheus"}


def _server(adapters: Adapters, call: str) -> FaultyServer:
    return adapters.prometheus if SERVER_OF.get(call) == "prometheus" else adapters.api


def _timed(call: Callable[[], object]) -> tuple[object | BaseException, float]:
    started = time.monotonic()
    try:
        result: object | BaseException = call()
    except BaseException as error:  # the test judges what came back
        result = error
    return result, time.monotonic() - started


FAST_FAULTS = [f for f in HTTP_FAULTS if f not in ("slow", "hang", "drip")]


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("fault", sorted(HTTP_FAULTS))
def test_a_fault_ends_in_a_clear_error_within_the_deadline_and_the_next_call_recovers(
    adapters: Adapters, fault: str, call: str, tally: Tally
) -> None:
    for _ in range(ROUNDS):
        _inject_and_recover(adapters, fault, call, tally)


def _inject_and_recover(adapters: Adapters, fault: str, call: str, tally: Tally) -> None:
    server = _server(adapters, call)
    run = CALLS[call]
    # slow answers come after twice the deadline; drips at 4 bytes a second (never complete)
    server.set_fault(fault, slow_s=DEADLINE_S * 2, drip_s=0.25)
    result, elapsed = _timed(lambda: run(adapters))
    server.clear_faults()
    tally.add("adapter calls under a transport fault")
    # a preflight is two calls (the version read, then the preflight endpoint), each bounded
    budget = DEADLINE_S * (2 if call == "preflight" else 1)
    late = elapsed > budget + SLACK_S
    tally.bad_outcome("adapter calls that outlived their deadline", int(late))
    assert not late, f"{call} under {fault}: {elapsed:.2f} s, deadline {budget} s"
    if call == "webhook post" and fault in WEBHOOK_DELIVERED:
        assert result is None, result
    else:
        wrong = not isinstance(result, AdapterError) or not re.search(REASONS[fault], str(result))
        tally.bad_outcome("adapter calls with no error or an unclear one", int(wrong))
        assert isinstance(result, AdapterError), f"{call} under {fault} returned {result!r}"
        assert re.search(REASONS[fault], str(result)), str(result)
        assert "\n" not in str(result) and len(str(result)) < 500
    # the fault is over: the very next call works, on the same adapter object
    recovered, elapsed = _timed(lambda: run(adapters))
    stuck = isinstance(recovered, BaseException)
    tally.bad_outcome("adapters still failing after the fault ended", int(stuck))
    assert not stuck, f"{call} after {fault}: {recovered!r}"
    assert elapsed < DEADLINE_S, elapsed


@pytest.mark.parametrize("fault", ["slow", "hang", "drip", "reset", "500", "503", "429"])
def test_a_rollback_post_is_never_sent_twice(adapters: Adapters, fault: str,
                                             tally: Tally) -> None:
    """A write without an idempotency key is sent once, whatever happens to it."""
    adapters.api.set_fault(fault, endpoint="rollback", slow_s=DEADLINE_S * 2, drip_s=0.25,
                           retry_after_s=0)
    result, _ = _timed(lambda: adapters.deployer.rollback("v1.4.1"))
    adapters.api.clear_faults()
    sent = len(adapters.api.requests_to("rollback"))
    tally.bad_outcome("rollback POSTs sent more than once", int(sent != 1))
    assert sent == 1
    assert isinstance(result, AdapterError)
    if isinstance(result, AdapterTimeout):
        assert "it may have been applied: read the state back" in str(result)


def test_an_idempotent_write_carries_the_same_key_on_every_retry(adapters: Adapters) -> None:
    adapters.api.set_fault("503", endpoint="set_weight", times=1)
    adapters.traffic.set_weight(10)
    sent = adapters.api.requests_to("set_weight")
    assert len(sent) == 2 and adapters.api.weight == 10
    keys = {r.headers.get("idempotency-key") for r in sent}
    assert len(keys) == 1 and None not in keys


def test_429_retry_after_is_honoured_when_it_fits_and_named_when_it_does_not(
    adapters: Adapters,
) -> None:
    # asks for a pause that fits in the deadline: waited out, then the read succeeds
    adapters.api.set_fault("429", endpoint="current_version", times=1, retry_after_s=0)
    assert adapters.deployer.current_version() == "v1.4.1"
    assert len(adapters.api.requests_to("current_version")) == 2
    # asks for two minutes: not waited for (the call ends at once) and the error says so
    adapters.api.set_fault("429", endpoint="current_version", retry_after_s=120)
    result, elapsed = _timed(adapters.deployer.current_version)
    assert isinstance(result, AdapterError)
    assert "HTTP 429 (the API asks to retry after 120 s)" in str(result)
    assert elapsed < 0.5


def test_a_drip_that_outlasts_many_calls_leaves_no_thread_or_connection_behind(
    adapters: Adapters, tally: Tally
) -> None:
    """The trickle that froze the console: every call is cut, and nothing piles up."""
    adapters.api.set_fault("drip", drip_s=0.2)
    adapters.prometheus.set_fault("drip", drip_s=0.2)
    calls = 6 if LONG else 2
    for _ in range(calls):
        for name in ("current_version", "prometheus query"):
            result, elapsed = _timed(lambda name=name: CALLS[name](adapters))  # type: ignore[misc]
            assert isinstance(result, AdapterTimeout), result
            assert elapsed <= DEADLINE_S + SLACK_S
    tally.add("dripping calls cut at the deadline", calls * 2)
    # the server sees every one of those connections closed by the client
    for server in (adapters.api, adapters.prometheus):
        server.wait_for(lambda server=server: not server._connections, timeout=5)  # type: ignore[misc]
    adapters.api.clear_faults()
    adapters.prometheus.clear_faults()
    assert adapters.deployer.current_version() == "v1.4.1"
    assert adapters.metrics.query('value{track="canary"}')[0].value == 0.01
    # and no deadline timer outlives its call
    deadline = time.monotonic() + 5
    while _deadline_timers() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _deadline_timers()


def _deadline_timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "adapter-deadline" and t.is_alive()]


def test_a_command_that_prints_forever_is_cut_at_its_deadline(tmp_path: Any) -> None:
    from adapters.command import MAX_PROGRESS_LINES, CommandDeployer
    from adapters.settings import CommandSettings

    script = tmp_path / "forever"
    script.write_text("#!/bin/sh\nwhile :; do echo rolling back; done\n")
    script.chmod(0o755)
    settings = CommandSettings.model_validate({
        "kind": "command", "timeout_s": DEADLINE_S,
        "actions": {"current_version": {"argv": ["true"]},
                    "rollback": {"argv": [str(script), "{target}"]}}})
    lines: list[str] = []
    result, elapsed = _timed(lambda: CommandDeployer(settings, CONTEXT).rollback(
        "v1.4.1", lines.append))
    assert elapsed < DEADLINE_S + SLACK_S + 2.0  # plus the SIGTERM grace
    assert isinstance(result, AdapterError)
    assert re.search(r"no complete answer within|printed more than", str(result)), result
    # a flood of output is a handful of progress lines, not thousands of timeline events
    assert len(lines) <= MAX_PROGRESS_LINES + 1
    assert lines[-1].endswith("more lines of output not shown")

"""guardrail_cycle_vs_slowest_ratio: one poll cycle of the engine over 20 guardrails on a real
Prometheus, one of them slowed, against that slowest query alone.

Debian's Prometheus scrapes the test exporter (tests/support) in a process of its own
(prometheus_rig.py), behind a proxy that holds only the requests carrying the slow guardrail's
marker (a PromQL comment) for :data:`DELAY_S`. The engine is the real one (``console.engine``)
with the Prometheus adapter the config names, on an incident whose canary is live at 1 %, so a
cycle is what the commander's console runs every poll: every guardrail's queries, the samples
written, the status changes recorded. If the cycle costs about the slowest query, the queries
ran at once; if it costs the sum, they ran one after another.
"""

from __future__ import annotations

import getpass
import json
import select
import subprocess
import time
from typing import Any

from adapters.base import SystemClock
from console import policy
from console.config import Config
from console.engine import Engine
from console.guardrails import resolve_query
from console.model import Kind
from console.state import fold
from console.store import Store
from console.wiring import build_adapters
from tests.benchmarks.context import BenchError, Context, interleave
from tests.benchmarks.harness import Figure, Series, ratio
from tests.benchmarks.incidents import REPO

SERVICE = "redaction-api"
MARKER = "bench-slow-query"
DELAY_S = 0.25
GUARDRAILS = 20
RIG_START_CAP_S = 60.0
REPETITIONS = 7

_REQUESTS = 'http_requests_total{service="$service",track="$track"}'
_ERRORS = 'http_requests_total{service="$service",track="$track",code=~"5.."}'
_BUCKETS = 'http_request_duration_seconds_bucket{service="$service",track="$track"}'
_SUM = 'http_request_duration_seconds_sum{service="$service",track="$track"}'
_COUNT = 'http_request_duration_seconds_count{service="$service",track="$track"}'


def guardrail_settings() -> list[dict[str, Any]]:
    """Twenty distinct guardrails of the kinds teams write: error ratios over several windows,
    latency quantiles, mean latency, slow-request ratio and request rate. The eighth is slowed."""
    rules: list[dict[str, Any]] = []
    for window in ("30s", "1m", "2m", "5m"):
        rules.append({"name": f"error-ratio-{window}", "unit": "%", "scale": 100, "max": 0.02,
                      "max_ratio_to_baseline": 3.0,
                      "query": f"sum(rate({_ERRORS}[{window}])) / "
                               f"sum(rate({_REQUESTS}[{window}]))"})
    for quantile in ("0.5", "0.75", "0.9", "0.95", "0.99", "0.999"):
        rules.append({"name": f"p{quantile[2:]}-latency", "unit": "s", "max": 1.0,
                      "max_ratio_to_baseline": 2.0,
                      "query": f"histogram_quantile({quantile}, sum by (le) "
                               f"(rate({_BUCKETS}[1m])))"})
    for window in ("30s", "2m", "5m"):
        rules.append({"name": f"p99-latency-{window}", "unit": "s", "max": 1.0,
                      "query": f"histogram_quantile(0.99, sum by (le) "
                               f"(rate({_BUCKETS}[{window}])))"})
    for window in ("30s", "1m", "5m"):
        rules.append({"name": f"mean-latency-{window}", "unit": "s", "max": 0.5,
                      "query": f"sum(rate({_SUM}[{window}])) / sum(rate({_COUNT}[{window}]))"})
    for window in ("1m", "5m"):
        rules.append({"name": f"slow-ratio-{window}", "unit": "%", "scale": 100, "max": 0.1,
                      "query": f'1 - sum(rate(http_request_duration_seconds_bucket{{service='
                               f'"$service",track="$track",le="0.25"}}[{window}])) / '
                               f"sum(rate({_COUNT}[{window}]))"})
    for window in ("30s", "1m"):
        rules.append({"name": f"request-rate-{window}", "unit": "req/s", "max": 10_000,
                      "query": f"sum(rate({_REQUESTS}[{window}]))"})
    assert len(rules) == GUARDRAILS, len(rules)
    rules[7]["query"] += f" # {MARKER}"
    return rules


def guardrail_cycle(ctx: Context) -> list[Figure]:
    rig = subprocess.Popen(
        [ctx.python, "-m", "tests.benchmarks.prometheus_rig", SERVICE, str(DELAY_S), MARKER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        env=ctx.env, text=True)
    try:
        answer = _first_line(rig, ctx.cap(RIG_START_CAP_S))
        if "error" in answer:
            return [Figure("guardrail_cycle_vs_slowest_ratio", "×", 1.5,
                           note=f"skipped: {answer['error']}")]
        return [_measure(ctx, answer["url"])]
    finally:
        if rig.stdin is not None:
            rig.stdin.close()
        try:
            rig.wait(20)
        except subprocess.TimeoutExpired:
            rig.kill()
            rig.wait()


def _first_line(rig: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert rig.stdout is not None and rig.stderr is not None
    ready, _, _ = select.select([rig.stdout], [], [], timeout)
    line = rig.stdout.readline() if ready else ""
    if not line:
        rig.kill()
        _, stderr = rig.communicate()
        raise BenchError(f"the Prometheus rig did not start within {timeout:.0f} s: "
                         f"{stderr.strip()[-400:]}")
    return dict(json.loads(line))


def _measure(ctx: Context, url: str) -> Figure:
    config = Config.model_validate({
        "roster": {"security-lead": ["priya"], "platform-lead": ["marco"]},
        "monitoring": {"poll_interval_s": 5.0},
        "metrics": {"kind": "prometheus", "url": url, "timeout_s": 5.0, "retries": 0},
        "traffic": {"kind": "sim"}, "deploy": {"kind": "sim"},
        "guardrails": guardrail_settings(),
    })
    user = getpass.getuser()
    declaration = policy.declaration(
        config, title="Twenty guardrails", priority="P1", category="incident", service=SERVICE,
        from_version="v1.4.2", to_version="v1.4.3", bypass_specs=[], affects=[], commander=user)
    slow = next(g for g in config.guardrails if MARKER in g.query)
    slow_query = resolve_query(slow.query, SERVICE, "canary")
    cycle = Series(f"engine poll: {GUARDRAILS} guardrails ({2 * GUARDRAILS} queries), one "
                   f"delayed {DELAY_S:g} s", "s")
    single = Series(f"the delayed query alone, through the same adapter ({slow.name})", "s")
    unhealthy: list[str] = []
    with Store(ctx.fresh_path("guardrails.db")) as store:
        incident = store.create_incident(user, declaration)[0].incident_id
        store.append_many(incident, [
            (Kind.WEIGHT_REQUESTED, user, {"from_percent": 0, "to_percent": 1, "stage_index": 0,
                                           "action": "advance", "overrides": []}),
            (Kind.WEIGHT_SET, "warroom", {"percent": 1, "stage_index": 0, "action": "advance",
                                          "reported": 1})])
        adapters = build_adapters(config, fold(store.events(incident)), SystemClock())
        engine = Engine(store, incident, config, adapters, SystemClock(), user)
        try:
            def poll(_: int) -> float:
                started = time.monotonic()
                result = engine.poll()
                elapsed = time.monotonic() - started
                unhealthy.extend(f"{r.name}: {r.detail}" for r in result.readings
                                 if r.status == "cant_evaluate")
                if len(result.readings) != GUARDRAILS:
                    raise BenchError(f"a poll gave {len(result.readings)} readings, not "
                                     f"{GUARDRAILS}")
                return elapsed

            def query(_: int) -> float:
                started = time.monotonic()
                values = adapters.metrics.query(slow_query)
                elapsed = time.monotonic() - started
                if not values:
                    raise BenchError(f"the slow query answered nothing: {slow_query}")
                return elapsed

            poll(0)  # warm-up: connections opened
            query(0)
            unhealthy.clear()
            interleave(REPETITIONS, [(single, query), (cycle, poll)])
        finally:
            engine.close()
    note = f"Prometheus {_version()} on 127.0.0.1; proxy delay {DELAY_S:g} s on one guardrail"
    if unhealthy:
        note += f"; {len(unhealthy)} readings could not evaluate, e.g. {unhealthy[0]}"
    return ratio("guardrail_cycle_vs_slowest_ratio", 1.5, cycle, single, note=note)


def _version() -> str:
    from tests.support.prometheus_server import find_prometheus

    binary = find_prometheus()
    if binary is None:
        return "?"
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split()[2] if first and len(first[0].split()) > 2 else "?"

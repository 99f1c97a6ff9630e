"""The simulated service: its figures, determinism, deploy behaviour and Prometheus exporter.

Everything runs on a ManualClock; the exporter test talks HTTP to 127.0.0.1 only.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.base import (
    DeployError,
    ManualClock,
    MetricsError,
    MetricsSource,
)
from adapters.settings import SimDeploySettings, SimMetricsSettings
from adapters.sim import (
    HISTOGRAM_BUCKETS,
    SimDeployer,
    SimMetricsSource,
    SimTrafficController,
    SimulatedService,
    noise,
    serve_metrics,
)

REPO = Path(__file__).resolve().parents[2]
SERVICE = "redaction-api"


def q(metric: str, track: str, service: str = SERVICE) -> str:
    return f'sim:{metric}{{service="{service}", track="{track}"}}'


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(clock: ManualClock, scenario: str = "good", **kwargs: object) -> SimulatedService:
    return SimulatedService(seed=7, clock=clock, scenario=scenario, **kwargs)  # type: ignore[arg-type]


def value(source: SimMetricsSource, metric: str, track: str) -> float | None:
    answer = source.query(q(metric, track))
    assert len(answer) <= 1
    return answer[0].value if answer else None


# --- determinism ---------------------------------------------------------------------------------


def test_noise_is_a_pure_function_of_seed_series_and_second() -> None:
    assert noise(7, "rps", 100) == noise(7, "rps", 100)
    assert noise(7, "rps", 100) != noise(8, "rps", 100)
    assert noise(7, "rps", 100) != noise(7, "rps", 101)
    assert all(-1.0 <= noise(7, "x", s) < 1.0 for s in range(500))


def test_noise_does_not_depend_on_the_process_hash_seed() -> None:
    code = "from adapters.sim import noise; print(repr(noise(7, 'error_ratio/canary', 1234)))"
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
            check=True,
        )
        outputs.add(done.stdout.strip())
    assert outputs == {repr(noise(7, "error_ratio/canary", 1234))}


def _history(clock: ManualClock, seed: int) -> SimMetricsSource:
    service = SimulatedService(seed=seed, clock=clock, scenario="bad")
    clock.advance(90)
    service.set_weight(10)
    clock.advance(90)
    service.set_weight(50)
    clock.advance(90)
    return SimMetricsSource(service)


def test_same_seed_same_answers_instant_and_range() -> None:
    first, second = ManualClock(), ManualClock()
    a, b = _history(first, 7), _history(second, 7)
    for metric in ("error_ratio", "latency_p99_seconds", "request_rate", "requests"):
        for track in ("canary", "baseline"):
            assert a.query(q(metric, track)) == b.query(q(metric, track))
            start = first.now() - timedelta(seconds=300)
            assert a.query_range(q(metric, track), start, first.now(), 5) == b.query_range(
                q(metric, track), start, second.now(), 5
            )
    # And repeated calls at one instant agree.
    assert a.query(q("request_rate", "canary")) == a.query(q("request_rate", "canary"))


def test_different_seed_different_noise() -> None:
    a, b = _history(ManualClock(), 7), _history(ManualClock(), 8)
    assert a.query(q("error_ratio", "baseline")) != b.query(q("error_ratio", "baseline"))


def test_range_points_equal_instant_values_at_their_time(clock: ManualClock) -> None:
    service = make(clock, "bad")
    source = SimMetricsSource(service)
    start = clock.now()
    seen: dict[float, float | None] = {}
    for weight in [0, 0, 1, 1, 10, 10, 50, 0, 0, 0, 0]:
        service.set_weight(weight)
        clock.advance(30)
        seen[clock.now().timestamp()] = value(source, "error_ratio", "canary")
    [series] = source.query_range(q("error_ratio", "canary"), start, clock.now(), 30)
    points = dict(series.points)
    for ts, instant in seen.items():
        if instant is None:
            assert ts not in points
        else:
            assert points[ts] == pytest.approx(instant, rel=1e-12)


# --- figures -------------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [1, 10, 50])
def test_good_canary_behaves_like_baseline(clock: ManualClock, weight: int) -> None:
    service = make(clock, "good")
    source = SimMetricsSource(service)
    service.set_weight(weight)
    clock.advance(120)
    canary_err = value(source, "error_ratio", "canary")
    baseline_err = value(source, "error_ratio", "baseline")
    assert canary_err is not None and baseline_err is not None
    assert 0.002 <= canary_err <= 0.004
    assert 0.002 <= baseline_err <= 0.004
    canary_p99 = value(source, "latency_p99_seconds", "canary")
    baseline_p99 = value(source, "latency_p99_seconds", "baseline")
    assert canary_p99 == pytest.approx(0.12, rel=0.06)
    assert baseline_p99 == pytest.approx(0.12, rel=0.06)
    assert value(source, "request_rate", "canary") == pytest.approx(2.0 * weight, rel=0.06)
    baseline_rate = value(source, "request_rate", "baseline")
    assert baseline_rate == pytest.approx(2.0 * (100 - weight), rel=0.06)
    assert value(source, "requests", "canary") == pytest.approx(120.0 * weight, rel=0.06)


@pytest.mark.parametrize("weight", [1, 10, 50])
def test_bad_canary_errs_and_is_slow(clock: ManualClock, weight: int) -> None:
    service = make(clock, "bad")
    source = SimMetricsSource(service)
    service.set_weight(weight)
    clock.advance(120)
    canary_err = value(source, "error_ratio", "canary")
    assert canary_err is not None and 0.035 <= canary_err <= 0.045
    baseline_err = value(source, "error_ratio", "baseline")
    assert baseline_err is not None and 0.002 <= baseline_err <= 0.004
    canary_p99 = value(source, "latency_p99_seconds", "canary")
    baseline_p99 = value(source, "latency_p99_seconds", "baseline")
    assert canary_p99 is not None and baseline_p99 is not None
    assert 2.7 <= canary_p99 / baseline_p99 <= 3.3


def test_weight_zero_means_no_canary_data(clock: ManualClock) -> None:
    service = make(clock, "bad")
    source = SimMetricsSource(service)
    clock.advance(300)
    assert source.query(q("error_ratio", "canary")) == []
    assert source.query(q("latency_p99_seconds", "canary")) == []
    assert value(source, "request_rate", "canary") == 0.0
    assert value(source, "requests", "canary") == 0.0
    start = clock.now() - timedelta(seconds=300)
    assert source.query_range(q("error_ratio", "canary"), start, clock.now(), 10) == []
    # The baseline serves everything.
    assert value(source, "request_rate", "baseline") == pytest.approx(200.0, rel=0.06)


def test_canary_data_fades_one_window_after_weight_zero(clock: ManualClock) -> None:
    service = make(clock, "bad")
    source = SimMetricsSource(service)
    service.set_weight(10)
    clock.advance(30)
    service.set_weight(0)
    clock.advance(59)
    assert value(source, "error_ratio", "canary") is not None  # requests still in the window
    clock.advance(1)
    assert source.query(q("error_ratio", "canary")) == []


# --- query language ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        'sim:error_ratio{service="redaction-api",track="canary"}',
        "sim:error_ratio{ track = 'canary' , service = 'redaction-api' }",
        'sim:error_ratio{track="canary", service="redaction-api",}',
        '  sim:error_ratio {\n  service="redaction-api",\n  track="canary"\n}\n',
    ],
)
def test_query_spellings_agree(clock: ManualClock, query: str) -> None:
    service = make(clock, "bad")
    source = SimMetricsSource(service)
    service.set_weight(10)
    clock.advance(60)
    [expected] = source.query(q("error_ratio", "canary"))
    assert source.query(query) == [expected]
    assert expected.labels == {
        "__name__": "sim:error_ratio",
        "service": "redaction-api",
        "track": "canary",
    }
    assert expected.ts == clock.now().timestamp()


def test_selector_without_track_returns_both_series(clock: ManualClock) -> None:
    service = make(clock)
    source = SimMetricsSource(service)
    service.set_weight(10)
    clock.advance(60)
    answer = source.query('sim:request_rate{service="redaction-api"}')
    assert sorted(item.labels["track"] for item in answer) == ["baseline", "canary"]
    assert len(source.query("sim:request_rate")) == 2


def test_unmatched_service_or_track_is_empty(clock: ManualClock) -> None:
    source = SimMetricsSource(make(clock))
    assert source.query(q("request_rate", "baseline", service="other")) == []
    assert source.query(q("request_rate", "stable")) == []


@pytest.mark.parametrize(
    "query",
    [
        'sim:nope{service="redaction-api", track="canary"}',
        'http_requests_total{track="canary"}',
        'rate(sim:requests{track="canary"}[1m])',
        "sim:error_ratio{track=}",
        'sim:error_ratio{track="canary" service="x"}',
        'sim:error_ratio{track=~"can.*"}',
        'sim:error_ratio{pod="a"}',
        "",
        "sim:error_ratio{track=\"canary\"}\n+ 1",
    ],
)
def test_bad_queries_raise_one_line_metrics_errors(clock: ManualClock, query: str) -> None:
    source = SimMetricsSource(make(clock))
    with pytest.raises(MetricsError) as caught:
        source.query(query)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("sim: ")
    with pytest.raises(MetricsError):
        source.query_range(query, clock.now() - timedelta(seconds=60), clock.now(), 15)


# The conventional PromQL of config.example.toml, answered by the simulator too.
ERROR_RATIO = (
    'sum(rate(http_requests_total{service="$service",track="$track",code=~"5.."}[1m])) / '
    'sum(rate(http_requests_total{service="$service",track="$track"}[1m]))'
)
P99 = (
    "histogram_quantile(0.99, sum by (le) (rate("
    'http_request_duration_seconds_bucket{service="$service",track="$track"}[1m])))'
)
INCREASE = 'sum(increase(http_requests_total{service="$service",track="$track"}[1m]))'
RATE = 'sum by (track) (rate(http_requests_total{service="$service"}[1m]))'


def _fill(template: str, track: str) -> str:
    return template.replace("$service", SERVICE).replace("$track", track)


@pytest.mark.parametrize("track", ["canary", "baseline"])
def test_conventional_promql_agrees_with_sim_metrics(clock: ManualClock, track: str) -> None:
    service = make(clock, "bad")
    source = SimMetricsSource(service)
    service.set_weight(10)
    clock.advance(90)
    [ratio] = source.query(_fill(ERROR_RATIO, track))
    assert ratio.labels == {}  # sum() without by drops every label, as in Prometheus
    assert ratio.value == pytest.approx(value(source, "error_ratio", track), rel=1e-9)
    [p99] = source.query(_fill(P99, track))
    assert p99.value == pytest.approx(value(source, "latency_p99_seconds", track), rel=1e-9)
    [requests] = source.query(_fill(INCREASE, track))
    assert requests.value == pytest.approx(value(source, "requests", track), rel=1e-9)
    p50 = source.query(_fill(P99, track).replace("0.99", "0.5"))[0].value
    assert p50 == pytest.approx(p99.value / 3, rel=1e-6)  # median a third of the p99
    ok = 'sum(increase(http_requests_total{service="redaction-api",track="%s",code!~"5.."}[1m]))'
    [good] = source.query(ok % track)
    assert good.value == pytest.approx(requests.value * (1 - ratio.value), rel=1e-9)


def test_conventional_promql_grouping_and_no_data(clock: ManualClock) -> None:
    service = make(clock, "good")
    source = SimMetricsSource(service)
    clock.advance(90)
    assert source.query(_fill(ERROR_RATIO, "canary")) == []  # no canary request: no ratio
    assert source.query(_fill(P99, "canary")) == []
    rates = {item.labels["track"]: item.value for item in source.query(_fill(RATE, ""))}
    assert rates["canary"] == 0.0
    assert rates["baseline"] == pytest.approx(200.0, rel=0.06)
    [series] = source.query_range(
        _fill(ERROR_RATIO, "baseline"), clock.now() - timedelta(seconds=60), clock.now(), 15
    )
    assert len(series.points) == 5


@pytest.mark.parametrize(
    "query",
    [
        'sum by (pod) (rate(http_requests_total{track="canary"}[1m]))',
        'histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{}[1m])))',
        'histogram_quantile(1.5, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))',
        'sum(rate(http_requests_total{track=~"can.*"}[1m]))',
        'rate(http_requests_total{track="canary"}[1m])',
    ],
)
def test_unsupported_promql_is_refused(clock: ManualClock, query: str) -> None:
    with pytest.raises(MetricsError, match=r"^sim: "):
        SimMetricsSource(make(clock)).query(query)


def test_range_query_rejects_bad_steps(clock: ManualClock) -> None:
    source = SimMetricsSource(make(clock))
    with pytest.raises(MetricsError, match="step"):
        source.query_range(q("requests", "baseline"), clock.now(), clock.now(), 0)
    with pytest.raises(MetricsError, match="maximum"):
        source.query_range(
            q("requests", "baseline"), clock.now() - timedelta(days=2), clock.now(), 1
        )


def test_metrics_down(clock: ManualClock) -> None:
    service = make(clock)
    source = SimMetricsSource(service)
    service.metrics_down = True
    with pytest.raises(MetricsError, match=r"^simulated metrics source is down$"):
        source.query(q("requests", "baseline"))
    with pytest.raises(MetricsError, match="down"):
        source.query_range(q("requests", "baseline"), clock.now(), clock.now(), 5)
    service.metrics_down = False
    assert source.query(q("requests", "baseline"))


def test_adapters_satisfy_the_protocols(clock: ManualClock) -> None:
    from adapters.base import Deployer, TrafficController

    service = make(clock)
    assert isinstance(SimMetricsSource(service), MetricsSource)
    assert isinstance(SimTrafficController(service), TrafficController)
    assert isinstance(SimDeployer(service), Deployer)


def test_from_settings(clock: ManualClock) -> None:
    service = SimulatedService.from_settings(
        SimMetricsSettings(scenario="bad", seed=3),
        SimDeploySettings(rollback_seconds=2, fail_rollback=True),
        clock,
        service="checkout",
    )
    assert (service.seed, service.scenario, service.service) == (3, "bad", "checkout")
    assert (service.rollback_seconds, service.fail_rollback) == (2, True)


# --- traffic and deploy --------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [-1, 101, 5.5, True, "10"])
def test_set_weight_validates(clock: ManualClock, weight: object) -> None:
    traffic = SimTrafficController(make(clock))
    with pytest.raises(DeployError, match=r"0\.\.100"):
        traffic.set_weight(weight)  # type: ignore[arg-type]
    assert traffic.current_weight() == 0


def test_weight_history(clock: ManualClock) -> None:
    service = make(clock)
    traffic = SimTrafficController(service)
    start = clock.now().timestamp()
    clock.advance(10)
    traffic.set_weight(1)
    traffic.set_weight(10)  # same instant: the last one holds
    clock.advance(10)
    traffic.set_weight(50)
    assert traffic.current_weight() == 50
    assert service.weight_history == [(start, 0), (start + 10, 10), (start + 20, 50)]
    assert service.weight_at(start + 15) == 10
    assert service.weight_at(start - 100) == 0


def test_promotion_reports_the_canary_version(clock: ManualClock) -> None:
    service = make(clock)
    deployer, traffic = SimDeployer(service), SimTrafficController(service)
    traffic.set_weight(50)
    assert deployer.current_version() == "v1.4.2"
    traffic.set_weight(100)
    assert deployer.current_version() == "v1.4.3"


def test_rollback_goes_live_after_rollback_seconds(clock: ManualClock) -> None:
    service = make(clock, "bad", rollback_seconds=6.0)
    deployer, traffic = SimDeployer(service), SimTrafficController(service)
    source = SimMetricsSource(service)
    traffic.set_weight(10)
    clock.advance(120)
    lines: list[str] = []
    operation = deployer.rollback("v1.4.2", progress=lines.append)
    assert operation == "sim-rollback-1"
    assert traffic.current_weight() == 0
    assert len(lines) == 1 and "v1.4.2" in lines[0] and "\n" not in lines[0]
    assert service.rollbacks == [(clock.now().timestamp(), "v1.4.2")]
    assert deployer.current_version() == "v1.4.3"  # the undo is under way
    clock.advance(5.9)
    assert deployer.current_version() == "v1.4.3"
    clock.advance(0.1)
    assert deployer.current_version() == "v1.4.2"
    clock.advance(60)
    # The canary is gone; the service serves at baseline levels.
    assert source.query(q("error_ratio", "canary")) == []
    err = value(source, "error_ratio", "baseline")
    assert err is not None and err < 0.005
    # The bad build is gone for good: a new canary runs the target.
    traffic.set_weight(10)
    clock.advance(60)
    err = value(source, "error_ratio", "canary")
    assert err is not None and err < 0.005
    assert deployer.rollback("v1.4.2") == "sim-rollback-2"


def test_rollback_after_promotion_cures_only_when_done(clock: ManualClock) -> None:
    service = make(clock, "bad", rollback_seconds=30.0)
    source = SimMetricsSource(service)
    service.set_weight(100)
    clock.advance(120)
    service.rollback("v1.4.2")
    clock.advance(29)
    err = value(source, "error_ratio", "baseline")
    assert err is not None and err > 0.03  # the stable pods still run the promoted build
    clock.advance(61)
    err = value(source, "error_ratio", "baseline")
    assert err is not None and err < 0.005


def test_fail_rollback_never_reports_the_target(clock: ManualClock) -> None:
    service = make(clock, "bad", fail_rollback=True)
    deployer = SimDeployer(service)
    source = SimMetricsSource(service)
    service.set_weight(100)
    clock.advance(60)
    lines: list[str] = []
    assert deployer.rollback("v1.4.2", lines.append) == "sim-rollback-1"
    assert lines  # accepted, as Argo's abort is
    assert service.current_weight() == 0
    clock.advance(3600)
    assert deployer.current_version() == "v1.4.3"
    err = value(source, "error_ratio", "baseline")
    assert err is not None and err > 0.03


def test_rollback_to_unknown_version_is_refused(clock: ManualClock) -> None:
    service = make(clock)
    service.set_weight(10)
    with pytest.raises(DeployError, match=r"v9\.9\.9"):
        SimDeployer(service).rollback("v9.9.9")
    assert service.current_weight() == 10
    assert service.rollbacks == []


def test_preflight_ok(clock: ManualClock) -> None:
    result = SimDeployer(make(clock)).preflight_rollback("v1.4.2")
    assert result.ok and result.target == "v1.4.2"
    assert [c.name for c in result.checks] == [
        "target version v1.4.2 is known",
        "target image is present",
        "stable track healthy",
    ]
    assert all(check.ok and check.detail for check in result.checks)


def test_preflight_unknown_version(clock: ManualClock) -> None:
    result = SimDeployer(make(clock)).preflight_rollback("v1.3.9")
    assert not result.ok
    failed = [check for check in result.checks if not check.ok]
    assert failed[0].name == "target version v1.3.9 is known"
    assert "v1.3.9" in failed[0].detail and "v1.4.2" in failed[0].detail
    assert "cannot run" in result.detail


# --- the exporter --------------------------------------------------------------------------------


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _scrape(url: str) -> tuple[str, Samples]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def _bucket_p99(before: Samples, after: Samples, track: str) -> float:
    """histogram_quantile(0.99, increase(...)) as Prometheus computes it."""
    bounds = [*HISTOGRAM_BUCKETS, math.inf]
    counts = []
    for bound in bounds:
        le = "+Inf" if bound == math.inf else str(bound)
        name = "http_request_duration_seconds_bucket"
        labels = {"service": SERVICE, "track": track, "le": le}
        counts.append(_sample(after, name, **labels) - _sample(before, name, **labels))
    rank = 0.99 * counts[-1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    raise AssertionError("unreachable")


@pytest.fixture
def exported(clock: ManualClock) -> Iterator[tuple[SimulatedService, str]]:
    service = make(clock, "bad")
    server = serve_metrics(service, 0)
    try:
        assert server.port > 0
        yield service, server.url
    finally:
        server.stop()


def test_exporter_serves_monotonic_counters_and_a_faithful_histogram(
    clock: ManualClock, exported: tuple[SimulatedService, str]
) -> None:
    service, url = exported
    assert url.startswith("http://127.0.0.1:")
    service.set_weight(10)
    clock.advance(120)
    text1, first = _scrape(url)
    t1 = clock.now().timestamp()
    clock.advance(120)
    text2, second = _scrape(url)
    t2 = clock.now().timestamp()

    for text in (text1, text2):
        assert "_created" not in text
        assert "process_" not in text and "python_" not in text
        assert 'http_requests_total{code="500",service="redaction-api",track="canary"}' in text
    assert first.keys() == second.keys()
    for key, before in first.items():
        assert second[key] >= before, key
        if key[0] == "http_requests_total":
            assert second[key] > before, key  # both tracks served in between

    for track in ("canary", "baseline"):
        model = service.figures(track, t1, t2)  # type: ignore[arg-type]
        assert model.p99 is not None and model.error_ratio is not None
        estimate = _bucket_p99(first, second, track)
        assert estimate == pytest.approx(model.p99, rel=0.3), track
        name = "http_requests_total"
        errors = _sample(second, name, service=SERVICE, track=track, code="500") - _sample(
            first, name, service=SERVICE, track=track, code="500"
        )
        ok = _sample(second, name, service=SERVICE, track=track, code="200") - _sample(
            first, name, service=SERVICE, track=track, code="200"
        )
        total = errors + ok
        assert total == pytest.approx(model.requests, rel=0.01)
        assert errors / total == pytest.approx(model.error_ratio, rel=0.05)


def test_exporter_omits_a_track_that_never_served(
    clock: ManualClock, exported: tuple[SimulatedService, str]
) -> None:
    _service, url = exported
    clock.advance(30)
    text, _samples = _scrape(url)
    assert 'track="baseline"' in text
    assert 'track="canary"' not in text


def test_exporter_ports_are_distinct_and_released(clock: ManualClock) -> None:
    service = make(clock)
    a, b = serve_metrics(service, 0), serve_metrics(service, 0)
    try:
        assert a.port != b.port
    finally:
        a.stop()
        b.stop()
    again = serve_metrics(service, a.port)  # the port was released
    again.stop()

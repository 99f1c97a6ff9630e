"""PrometheusMetrics against a real Prometheus scraping a controllable exporter.

Also against a refused port, a slow Prometheus (a delaying proxy), a Prometheus killed mid-run,
and a recording stand-in for the headers, statuses and bodies a real one would not produce.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta

import pytest

from adapters.base import AdapterTimeout, MetricsError, MetricsSource
from adapters.prometheus import MetricsTimeout, PrometheusMetrics, instant_values, range_series
from adapters.settings import PrometheusSettings, SecretFromEnv
from tests.integration.conftest import (
    ERROR_RATIO,
    P99,
    SCENARIOS,
    FakeAnswer,
    FakePrometheus,
)
from tests.support.delay_proxy import DelayProxy
from tests.support.exporter import TestExporter
from tests.support.prometheus_server import PrometheusServer, free_port, values

pytestmark = pytest.mark.prometheus

TOKEN = "tok-3f9a61c2-not-for-logs"
TOKEN_VAR = "WARROOM_TEST_PROM_TOKEN"


def metrics_for(url: str, **overrides: object) -> PrometheusMetrics:
    settings = PrometheusSettings.model_validate(
        {"url": url, "timeout_s": 2.0, "retries": 0, **overrides}
    )
    return PrometheusMetrics(settings)


@pytest.fixture
def metrics(prometheus: PrometheusServer) -> PrometheusMetrics:
    return metrics_for(prometheus.url)


# --- without scraped data (run while the shared server collects its first samples) -------------


def test_importing_the_adapter_does_not_import_the_client() -> None:
    code = (
        "import sys, adapters.prometheus; "
        "print(sorted(m for m in ('requests', 'prometheus_api_client', 'urllib3') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert out.strip() == "[]"


def test_is_a_metrics_source(metrics: PrometheusMetrics) -> None:
    assert isinstance(metrics, MetricsSource)


def test_bad_promql_raises_metrics_error_with_prometheus_parse_error(
    metrics: PrometheusMetrics,
) -> None:
    with pytest.raises(MetricsError) as caught:
        metrics.query("sum(rate(http_requests_total[1m])")
    message = str(caught.value)
    assert message.startswith("bad query: ")
    assert "parse error" in message
    assert "unclosed left parenthesis" in message
    assert "\n" not in message and len(message) < 300


def test_bad_range_query_and_bad_step(metrics: PrometheusMetrics) -> None:
    now = datetime.now(UTC)
    with pytest.raises(MetricsError, match="parse error"):
        metrics.query_range("rate(x[1m]", now - timedelta(minutes=1), now, 5)
    with pytest.raises(MetricsError, match="step"):
        metrics.query_range("up", now - timedelta(minutes=1), now, 0)
    with pytest.raises(MetricsError, match="11,000 points"):  # Prometheus's own limit, one line
        metrics.query_range("up", now - timedelta(days=2), now, 1)


def test_series_that_does_not_exist_gives_empty_result(metrics: PrometheusMetrics) -> None:
    assert metrics.query('http_requests_total{service="no-such-service"}') == []
    now = datetime.now(UTC)
    assert metrics.query_range(
        'http_requests_total{service="no-such-service"}', now - timedelta(seconds=30), now, 5
    ) == []


def test_scalar_result_is_one_value_without_labels(metrics: PrometheusMetrics) -> None:
    [value] = metrics.query("scalar(vector(2.5))")
    assert value.labels == {}
    assert value.value == 2.5
    assert abs(value.ts - time.time()) < 60


def test_nan_and_infinities_from_promql(metrics: PrometheusMetrics) -> None:
    [nan] = metrics.query("vector(0) / 0")
    [inf] = metrics.query("vector(1) / 0")
    [neg] = metrics.query("vector(-1) / 0")
    assert math.isnan(nan.value) and not nan.is_finite
    assert inf.value == math.inf
    assert neg.value == -math.inf


def test_instant_query_of_a_range_vector_is_refused_clearly(metrics: PrometheusMetrics) -> None:
    # Prometheus answers a matrix; an instant MetricsSource cannot hold it.
    assert instant_values([]) == []
    with pytest.raises(MetricsError, match="range vector"):
        instant_values([{"metric": {}, "values": [[1.0, "1"]]}])
    with pytest.raises(MetricsError, match="not a number"):
        metrics.query('"a string"')


def test_conversion_of_result_shapes() -> None:
    values = instant_values(
        [
            {"metric": {"track": "canary"}, "value": [1.5, "NaN"]},
            {"metric": {"track": "baseline"}, "value": [1.5, "+Inf"]},
            {"metric": {}, "value": [1.5, "-Inf"]},
        ]
    )
    assert [v.labels for v in values] == [{"track": "canary"}, {"track": "baseline"}, {}]
    assert math.isnan(values[0].value) and values[1].value == math.inf
    assert values[2].value == -math.inf
    [scalar] = instant_values([1.5, "0.25"])
    assert (scalar.labels, scalar.ts, scalar.value) == ({}, 1.5, 0.25)
    [series] = range_series([{"metric": {"a": "b"}, "values": [[1, "1"], [2, "NaN"]]}])
    assert series.labels == {"a": "b"}
    assert series.points[0] == (1.0, 1.0) and math.isnan(series.points[1][1])
    with pytest.raises(MetricsError):
        instant_values([{"metric": {}, "value": [1, "lots"]}])


# --- figures scraped from the exporter ---------------------------------------------------------


def test_error_ratio_and_p99_match_the_exporter(scraped: PrometheusServer) -> None:
    metrics = metrics_for(scraped.url)
    for track, (_rps, error_ratio, latency_s) in SCENARIOS["s"].items():
        [ratio] = metrics.query(ERROR_RATIO.format(service="s", track=track))
        assert ratio.labels == {}
        assert ratio.value == pytest.approx(error_ratio, rel=1e-6)
        [p99] = metrics.query(P99.format(service="s", track=track))
        assert p99.value == pytest.approx(TestExporter.expected_quantile(0.99, latency_s), rel=1e-6)


def test_per_series_labels_and_request_rates(scraped: PrometheusServer) -> None:
    metrics = metrics_for(scraped.url)
    rates = metrics.query('sum by (track) (rate(http_requests_total{service="s"}[30s]))')
    by_track = {value.labels["track"]: value.value for value in rates}
    assert set(by_track) == {"canary", "baseline"}
    # Both tracks are scraped together, so their rates are in the configured proportion even
    # before the 30 s window is full (when rate() still under-reads both alike).
    canary_rps, baseline_rps = SCENARIOS["s"]["canary"][0], SCENARIOS["s"]["baseline"][0]
    assert by_track["baseline"] / by_track["canary"] == pytest.approx(baseline_rps / canary_rps)
    # A window the server has fully sampled gives the configured rate itself (rate() reads low
    # until then, so wait for that, bounded: the window is 5 s of 1 s scrapes).
    query = 'sum(rate(http_requests_total{service="s",track="canary"}[5s]))'
    scraped.wait_for(
        query, lambda r: bool(r) and abs(values(r)[0] - canary_rps) < 0.05 * canary_rps, 20
    )
    [rate] = metrics.query(query)
    assert rate.value == pytest.approx(canary_rps, rel=0.05)


def test_range_query_returns_the_exporters_figures(scraped: PrometheusServer) -> None:
    metrics = metrics_for(scraped.url)
    end = datetime.now(UTC)
    start = end - timedelta(seconds=20)
    [series] = metrics.query_range(ERROR_RATIO.format(service="s", track="canary"), start, end, 1)
    assert series.labels == {}
    assert len(series.points) >= 1
    timestamps = [ts for ts, _ in series.points]
    assert timestamps == sorted(timestamps)
    assert all(start.timestamp() - 1 <= ts <= end.timestamp() + 1 for ts in timestamps)
    assert all(value == pytest.approx(0.02, rel=1e-6) for _, value in series.points)

    p99_by_track = (
        "histogram_quantile(0.99, sum by (le, track) "
        '(rate(http_request_duration_seconds_bucket{service="s"}[30s])))'
    )
    several = metrics.query_range(p99_by_track, start, end, 2.5)
    assert {tuple(s.labels.items()) for s in several} == {(("track", "canary"),),
                                                          (("track", "baseline"),)}
    for one in several:
        latency = SCENARIOS["s"][one.labels["track"]][2]
        expected = TestExporter.expected_quantile(0.99, latency)
        assert all(value == pytest.approx(expected) for _, value in one.points)


def test_nan_and_inf_from_the_gauge(scraped: PrometheusServer) -> None:
    metrics = metrics_for(scraped.url)
    scraped.wait_for('test_value{service="s"}', lambda r: len(r) == 3, timeout=20)
    values = {v.labels["track"]: v.value for v in metrics.query('test_value{service="s"}')}
    assert math.isnan(values["canary"])
    assert values["baseline"] == math.inf
    assert values["neg"] == -math.inf


def test_concurrent_queries_from_several_threads(scraped: PrometheusServer) -> None:
    metrics = metrics_for(scraped.url)
    query = ERROR_RATIO.format(service="s", track="canary")
    results: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(5):
                [value] = metrics.query(query)
                with lock:
                    results.append(value.value)
        except BaseException as error:  # collected and asserted below
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors
    assert len(results) == 40
    assert all(value == pytest.approx(0.02, rel=1e-6) for value in results)


# --- failures ----------------------------------------------------------------------------------


def test_connection_refused_is_fast_and_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    metrics = metrics_for(url, retries=0, timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(MetricsError) as caught:
        metrics.query("up")
    assert time.monotonic() - started < 2.0
    assert str(caught.value) == f"Prometheus at {url} is unreachable: connection refused"
    assert not isinstance(caught.value, AdapterTimeout)


def test_connection_refused_with_retries_stays_bounded() -> None:
    metrics = metrics_for(f"http://127.0.0.1:{free_port()}", retries=2, timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(MetricsError, match="connection refused"):
        metrics.query("up")
    assert time.monotonic() - started < 2.0  # backoff 0 s, 0.4 s: never the library's ≈ 6 s


def test_slow_prometheus_times_out_within_about_the_timeout(
    prometheus: PrometheusServer,
) -> None:
    with DelayProxy(("127.0.0.1", prometheus.port), delay=3.0) as proxy:
        # retries=1 on purpose: a timed-out query is not sent again to a struggling server.
        metrics = metrics_for(proxy.url, timeout_s=0.5, retries=1)
        started = time.monotonic()
        with pytest.raises(AdapterTimeout) as caught:
            metrics.query("vector(1)")
        elapsed = time.monotonic() - started
        assert 0.4 < elapsed < 1.5
        assert str(caught.value) == "Prometheus did not answer within 0.5 s"
        assert isinstance(caught.value, MetricsError)  # also caught as a failed query
        assert isinstance(caught.value, MetricsTimeout)

        # The same adapter recovers once the server is fast again.
        proxy.delay = 0.0
        [value] = metrics.query("vector(1)")
        assert value.value == 1.0


def test_prometheus_killed_mid_run_fails_the_next_query() -> None:
    with PrometheusServer() as own:
        metrics = metrics_for(own.url, timeout_s=1.0, retries=1)
        assert metrics.query("vector(1)")[0].value == 1.0  # a pooled keep-alive connection
        own.kill()
        started = time.monotonic()
        with pytest.raises(MetricsError) as caught:
            metrics.query("vector(1)")
        assert time.monotonic() - started < 2.0
        assert f"Prometheus at {own.url} is unreachable" in str(caught.value)


def test_prometheus_killed_while_a_query_is_in_flight() -> None:
    with PrometheusServer() as own, DelayProxy(("127.0.0.1", own.port), delay=0.5) as proxy:
        metrics = metrics_for(proxy.url, timeout_s=3.0, retries=0)
        outcome: list[BaseException | object] = []
        worker = threading.Thread(target=lambda: outcome.append(_run(metrics, "vector(1)")))
        started = time.monotonic()
        worker.start()
        deadline = time.monotonic() + 10
        while not proxy.requests_seen:  # wait until the query is held in the proxy
            assert time.monotonic() < deadline, "the query never reached the proxy"
            time.sleep(0.01)
        own.kill()
        worker.join(timeout=10)
        assert not worker.is_alive()
        assert time.monotonic() - started < 3.5
        [error] = outcome
        assert isinstance(error, MetricsError)
        assert "\n" not in str(error)


def _run(metrics: PrometheusMetrics, query: str) -> BaseException | object:
    try:
        return metrics.query(query)
    except BaseException as error:
        return error


def test_https_to_a_plain_http_port_is_a_tls_error(prometheus: PrometheusServer) -> None:
    metrics = metrics_for(f"https://127.0.0.1:{prometheus.port}", timeout_s=1.0)
    with pytest.raises(MetricsError, match="TLS"):
        metrics.query("vector(1)")


def test_missing_ca_file_is_refused() -> None:
    with pytest.raises(MetricsError, match=r"/nonexistent/ca\.pem"):
        metrics_for("https://127.0.0.1:9", ca_file="/nonexistent/ca.pem")


# --- credentials, statuses and bodies (a recording stand-in) -----------------------------------


def test_bearer_token_from_env_is_sent(
    fake_prometheus: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VAR, TOKEN + "\n")  # as read from a file
    metrics = metrics_for(fake_prometheus.url, bearer_token={"env": TOKEN_VAR})
    [value] = metrics.query("up")
    assert value.labels == {"job": "fake"}
    request = fake_prometheus.requests[-1]
    assert request["authorization"] == f"Bearer {TOKEN}"
    assert request[":path"].startswith("/api/v1/query?query=up")

    # Read at call time: a rotated token is used at once.
    monkeypatch.setenv(TOKEN_VAR, "rotated-token-0001")
    metrics.query("up")
    assert fake_prometheus.requests[-1]["authorization"] == "Bearer rotated-token-0001"


def test_bearer_token_with_custom_format(
    fake_prometheus: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    metrics = metrics_for(
        fake_prometheus.url, bearer_token={"env": TOKEN_VAR, "format": "Token {}"}
    )
    metrics.query("up")
    assert fake_prometheus.requests[-1]["authorization"] == f"Token {TOKEN}"


def test_basic_auth_from_env(
    fake_prometheus: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARROOM_TEST_PROM_USER", "warroom")
    monkeypatch.setenv("WARROOM_TEST_PROM_PASSWORD", "pw-9b1e77d0")
    metrics = metrics_for(
        fake_prometheus.url,
        basic_user={"env": "WARROOM_TEST_PROM_USER"},
        basic_password={"env": "WARROOM_TEST_PROM_PASSWORD"},
    )
    metrics.query("up")
    expected = base64.b64encode(b"warroom:pw-9b1e77d0").decode()
    assert fake_prometheus.requests[-1]["authorization"] == f"Basic {expected}"


@pytest.mark.parametrize("status", [400, 401, 500, 502])
def test_token_never_appears_in_error_text(
    fake_prometheus: FakePrometheus, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    # A careless proxy that echoes the credential back in its error body.
    fake_prometheus.answer = lambda headers: FakeAnswer(
        status=status,
        body=json.dumps({"status": "error", "errorType": "x",
                         "error": f"rejected {headers.get('authorization')}"}),
    )
    metrics = metrics_for(fake_prometheus.url, bearer_token={"env": TOKEN_VAR}, retries=1)
    with pytest.raises(MetricsError) as caught:
        metrics.query("up")
    message = str(caught.value)
    assert TOKEN not in message and TOKEN not in repr(caught.value)
    assert f"{status}" in message or message.startswith("bad query")
    assert "***" in message
    # Nor in the traceback a logger would print (the library's exception is suppressed).
    assert TOKEN not in "".join(traceback.format_exception(caught.value))


def test_missing_env_var_is_named_never_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARROOM_TEST_UNSET_TOKEN", raising=False)
    settings = PrometheusSettings(
        url="http://127.0.0.1:9", bearer_token=SecretFromEnv(env="WARROOM_TEST_UNSET_TOKEN")
    )
    with pytest.raises(MetricsError, match="WARROOM_TEST_UNSET_TOKEN"):
        PrometheusMetrics(settings)

    # Unset after construction: the next query says so instead of sending no credential.
    monkeypatch.setenv("WARROOM_TEST_UNSET_TOKEN", TOKEN)
    metrics = PrometheusMetrics(settings)
    monkeypatch.delenv("WARROOM_TEST_UNSET_TOKEN")
    with pytest.raises(MetricsError, match=r"WARROOM_TEST_UNSET_TOKEN .*is not set"):
        metrics.query("up")


def test_control_characters_in_a_token_are_refused_without_echo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_VAR, "abc\r\nX-Injected: 1" + TOKEN)
    with pytest.raises(MetricsError) as caught:
        metrics_for("http://127.0.0.1:9", bearer_token={"env": TOKEN_VAR})
    assert TOKEN_VAR in str(caught.value) and TOKEN not in str(caught.value)


def test_503_is_retried_a_bounded_number_of_times(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.answer = FakeAnswer(status=503, body="upstream restarting",
                                        content_type="text/plain")
    metrics = metrics_for(fake_prometheus.url, retries=2)
    started = time.monotonic()
    with pytest.raises(MetricsError) as caught:
        metrics.query("up")
    assert time.monotonic() - started < 2.0
    assert len(fake_prometheus.requests) == 3
    assert str(caught.value) == (
        f"Prometheus at {fake_prometheus.url} answered HTTP 503: upstream restarting"
    )


def test_503_then_success_recovers_on_retry(fake_prometheus: FakePrometheus) -> None:
    answers = iter([FakeAnswer(status=503, body="busy"), FakeAnswer()])
    fake_prometheus.answer = lambda headers: next(answers)
    [value] = metrics_for(fake_prometheus.url, retries=1).query("up")
    assert value.value == 1.0
    assert len(fake_prometheus.requests) == 2


def test_a_500_is_not_retried_and_long_bodies_are_cut(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.answer = FakeAnswer(status=500, body="boom " * 500, content_type="text/plain")
    with pytest.raises(MetricsError) as caught:
        metrics_for(fake_prometheus.url, retries=3).query("up")
    assert len(fake_prometheus.requests) == 1
    assert len(str(caught.value)) <= 300 and "HTTP 500" in str(caught.value)


def test_an_html_login_page_is_not_prometheus(fake_prometheus: FakePrometheus) -> None:
    fake_prometheus.answer = FakeAnswer(body="<html>Sign in</html>", content_type="text/html")
    with pytest.raises(MetricsError, match="an HTML page, not its JSON API"):
        metrics_for(fake_prometheus.url).query("up")

"""Fixtures for integration tests against a real Prometheus (marker ``prometheus``).

One exporter and one Prometheus server are started per test session, on first use, and shared: the
first scraped sample takes ≈ 6 s to become queryable (STACK.md), which no test should pay twice.
The exporter's traffic is configured once, at start, so that every scenario's history grows from
the first scrape on; tests read it and never change it (a test that needs its own figures uses a
service of its own, or its own server). Tests that kill or slow a server start their own.

Scenarios, by ``service`` label (tracks ``canary`` and ``baseline``; see :data:`SCENARIOS`):

- ``s``: the adapter tests' service — canary 20 req/s, 2 % errors, every request 0.3 s;
  baseline 80 req/s, 1 % errors, 0.08 s. ``test_value`` is NaN (canary), +Inf (baseline) and
  -Inf (neg).
- ``healthy``: canary and baseline alike, 1 % errors, 0.08 s.
- ``abs-breach``: canary 30 % errors (baseline 1 %).
- ``ratio-breach``: canary 4 % errors against a baseline of 1 % (under an absolute max of 10 %).
- ``thin``: 0.2 req/s, too little evidence for a guardrail asking for thousands of requests.
- ``nan``: ``test_value`` NaN on both tracks.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.exporter import TestExporter
from tests.support.prometheus_server import PrometheusServer, require_prometheus

#: service → track → (req/s, error ratio, latency s).
SCENARIOS: dict[str, dict[str, tuple[float, float, float]]] = {
    "s": {"canary": (20.0, 0.02, 0.3), "baseline": (80.0, 0.01, 0.08)},
    "healthy": {"canary": (50.0, 0.01, 0.08), "baseline": (50.0, 0.01, 0.08)},
    "abs-breach": {"canary": (50.0, 0.30, 0.08), "baseline": (50.0, 0.01, 0.08)},
    "ratio-breach": {"canary": (50.0, 0.04, 0.08), "baseline": (50.0, 0.01, 0.08)},
    "thin": {"canary": (0.2, 0.0, 0.08), "baseline": (0.2, 0.0, 0.08)},
}
#: service → track → value of the ``test_value`` gauge.
GAUGES: dict[str, dict[str, float]] = {
    "s": {"canary": math.nan, "baseline": math.inf, "neg": -math.inf},
    "nan": {"canary": math.nan, "baseline": math.nan},
}

#: The conventional queries, as the brief and the example config write them.
ERROR_RATIO = (
    'sum(rate(http_requests_total{{service="{service}",track="{track}",code=~"5.."}}[30s]))'
    ' / sum(rate(http_requests_total{{service="{service}",track="{track}"}}[30s]))'
)
P99 = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{{service="{service}",track="{track}"}}[30s])))'
)


@pytest.fixture(scope="session")
def exporter() -> Iterator[TestExporter]:
    """The test exporter, serving every scenario's traffic from session start."""
    with TestExporter() as running:
        for service, tracks in SCENARIOS.items():
            for track, (rps, error_ratio, latency_s) in tracks.items():
                running.set_track(
                    track, rps=rps, error_ratio=error_ratio, latency_s=latency_s, service=service
                )
        for service, values in GAUGES.items():
            for track, value in values.items():
                running.set_value(track, value, service=service)
        yield running


@pytest.fixture(scope="session")
def prometheus(exporter: TestExporter) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping the exporter every second (skipped if not installed)."""
    require_prometheus()
    with PrometheusServer([exporter.target]) as server:
        yield server


@pytest.fixture(scope="session")
def scraped(prometheus: PrometheusServer) -> PrometheusServer:
    """The shared server once the error ratio of every scenario can be computed (≈ 7 s)."""
    for service in SCENARIOS:
        for track in ("canary", "baseline"):
            prometheus.wait_for(ERROR_RATIO.format(service=service, track=track), bool, 30)
    return prometheus


@dataclass
class FakeAnswer:
    """What the fake Prometheus answers next: status, body and content type."""

    status: int = 200
    body: str = json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"job": "fake"}, "value": [1700000000.0, "1"]}
        ]}}
    )
    content_type: str = "application/json"


@dataclass
class FakePrometheus:
    """A tiny HTTP server on 127.0.0.1 that records request headers and answers as told.

    ``answer`` may be a :class:`FakeAnswer` or a callable building one from the request headers
    (to echo a credential back, as a careless proxy might).
    """

    url: str
    requests: list[dict[str, str]] = field(default_factory=list)
    answer: FakeAnswer | Callable[[dict[str, str]], FakeAnswer] = field(default_factory=FakeAnswer)


@pytest.fixture
def fake_prometheus() -> Iterator[FakePrometheus]:
    """A recording stand-in for Prometheus, for headers, statuses and odd bodies."""
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake: FakePrometheus = state["fake"]
            headers = {name.lower(): value for name, value in self.headers.items()}
            headers[":path"] = self.path
            fake.requests.append(headers)
            answer = fake.answer(headers) if callable(fake.answer) else fake.answer
            data = answer.body.encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["fake"] = FakePrometheus(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield state["fake"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

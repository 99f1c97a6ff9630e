"""A controllable exporter of a service's conventional metrics, for a real Prometheus to scrape.

It serves, on 127.0.0.1 with its own :class:`~prometheus_client.CollectorRegistry`:

- ``http_requests_total{service,track,code}`` — counters, ``code`` ``"200"`` and ``"500"``;
- ``http_request_duration_seconds_bucket{service,track,le}`` (with ``_sum`` and ``_count``);
- ``test_value{service,track}`` — a gauge the test sets to any float, NaN and ±Inf included.

The test sets each track's request rate, error ratio and latency (:meth:`TestExporter.set_track`).
Counters are computed when scraped, by integrating the configured rate from the last change, so
they grow exactly linearly in real time and ``rate(...)`` over a window Prometheus has fully
sampled gives the configured figures (over a window only partly sampled, ``rate`` is smaller, but
ratios such as the error ratio and ``histogram_quantile`` are exact at once). No thread ticks.

Every request of a track takes exactly ``latency_s``, so all observations fall in one bucket and
``histogram_quantile`` interpolates inside it: :meth:`TestExporter.expected_quantile` computes the
value Prometheus will answer. No ``*_created`` series are exported (the metric families here carry
no creation time).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

#: Bucket bounds of the latency histogram (prometheus-client's defaults), seconds.
BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)


@dataclass
class Track:
    """One (service, track) pair: its configured traffic and what has accumulated so far."""

    rps: float = 0.0
    error_ratio: float = 0.0
    latency_s: float = 0.05
    since: float = field(default_factory=time.time)
    ok: float = 0.0
    errors: float = 0.0
    latency_sum: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))

    def advance(self, now: float) -> None:
        """Fold the requests served since ``since`` into the totals."""
        elapsed = max(0.0, now - self.since)
        requests = self.rps * elapsed
        self.errors += requests * self.error_ratio
        self.ok += requests * (1.0 - self.error_ratio)
        self.latency_sum += requests * self.latency_s
        for index, bound in enumerate((*BUCKETS, math.inf)):
            if self.latency_s <= bound:
                self.buckets[index] += requests
        self.since = now


class TrafficCollector(Collector):
    """Computes every metric at scrape time from the tracks' configuration."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tracks: dict[tuple[str, str], Track] = {}
        self.values: dict[tuple[str, str], float] = {}

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        requests = CounterMetricFamily(
            "http_requests_total", "Requests served.", labels=["service", "track", "code"]
        )
        durations = HistogramMetricFamily(
            "http_request_duration_seconds", "Request latency.", labels=["service", "track"]
        )
        gauge = GaugeMetricFamily("test_value", "A value set by the test.",
                                  labels=["service", "track"])
        with self._lock:
            for (service, track), state in sorted(self.tracks.items()):
                state.advance(now)
                requests.add_metric([service, track, "200"], state.ok)
                requests.add_metric([service, track, "500"], state.errors)
                bounds = [*(f"{bound:g}" for bound in BUCKETS), "+Inf"]
                durations.add_metric(
                    [service, track],
                    buckets=list(zip(bounds, state.buckets, strict=True)),
                    sum_value=state.latency_sum,
                )
            for (service, track), value in sorted(self.values.items()):
                gauge.add_metric([service, track], value)
        yield requests
        yield durations
        yield gauge


class TestExporter:
    """The exporter's HTTP server on 127.0.0.1 (a free port) and the knobs the test turns."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, service: str = "s") -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.collector = TrafficCollector()
        self.registry.register(self.collector)
        self._server: object | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def target(self) -> str:
        """``"127.0.0.1:PORT"``, for a Prometheus scrape config."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def start(self) -> TestExporter:
        server, thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self._server, self._thread = server, thread
        self.port = int(server.server_port)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TestExporter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- knobs ---------------------------------------------------------------------------------

    def set_track(
        self,
        track: str,
        *,
        rps: float | None = None,
        error_ratio: float | None = None,
        latency_s: float | None = None,
        service: str | None = None,
    ) -> None:
        """Configure a track's traffic from now on; unspecified figures stay as they were."""
        if error_ratio is not None and not 0.0 <= error_ratio <= 1.0:
            raise ValueError("error_ratio must be within 0..1")
        key = (service or self.service, track)
        with self.collector._lock:
            state = self.collector.tracks.setdefault(key, Track())
            state.advance(time.time())
            if rps is not None:
                state.rps = rps
            if error_ratio is not None:
                state.error_ratio = error_ratio
            if latency_s is not None:
                state.latency_s = latency_s

    def set_value(self, track: str, value: float, service: str | None = None) -> None:
        """Set ``test_value{service,track}`` (NaN, +Inf and -Inf included)."""
        with self.collector._lock:
            self.collector.values[(service or self.service, track)] = value

    def scrape(self) -> str:
        """What Prometheus reads from ``/metrics``, for checks without a server."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    @staticmethod
    def expected_quantile(q: float, latency_s: float, buckets: Sequence[float] = BUCKETS) -> float:
        """What ``histogram_quantile(q, ...)`` answers when every request takes ``latency_s``.

        All observations sit in the first bucket whose bound is ≥ ``latency_s``; Prometheus
        interpolates linearly between that bucket's lower and upper bounds.
        """
        lower = 0.0
        for bound in buckets:
            if latency_s <= bound:
                return lower + (bound - lower) * q
            lower = bound
        return lower  # the +Inf bucket: Prometheus answers the highest finite bound

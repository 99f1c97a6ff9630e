"""A deterministic simulated service, and the metrics, traffic and deploy adapters over it.

`warroom demo` and most tests run against this module instead of Prometheus and a real deploy
system. One :class:`SimulatedService` holds the truth (the canary-weight history, when the canary
was promoted, the rollbacks); :class:`SimMetricsSource`, :class:`SimTrafficController` and
:class:`SimDeployer` are thin views over it, so a weight set through the traffic controller shows in
the metrics at once. :func:`serve_metrics` also exports the service over HTTP in the Prometheus text
format, so a real Prometheus can scrape it.

The model, at time ``t``:

* the total request rate is ``base_rps`` with ±5 % noise; the canary receives ``weight`` % of it;
* a healthy build errs on 0.2–0.4 % of requests with a p99 latency of about 0.12 s; the bad build
  (scenario ``bad``) errs on about 4 % with a p99 about three times the baseline's;
* the canary track runs the canary build until a rollback completes; the baseline track runs the
  stable build, except between a promotion (weight 100) and a completed rollback, when the stable
  pods run the canary build too — so a rollback after promotion cures the service only once the
  deployer has actually rolled back, and a rollback that never completes (``fail_rollback``) never
  cures it.

Queried metrics are trailing 60-second aggregates, as ``rate(...[1m])`` would be in PromQL: a track
that served no request in the window has a rate of 0 but no error ratio and no latency (an empty
answer), never NaN. The source answers ``sim:<metric>{service="X", track="canary"}`` selectors,
and also the conventional PromQL shapes over the exporter's metric names
(``sum(rate(http_requests_total{...}[1m]))``, a ratio of two such sums, ``histogram_quantile(0.99,
sum by (le) (rate(..._bucket{...}[1m])))``), so one guardrail config serves both the simulator and
a real Prometheus scraping the exporter.

Noise is a pure function of (seed, series name, whole second) through a stable hash, so a value at a
given instant is the same on every call and in every process, and range queries are reproducible.
Everything reads time from the injected clock; nothing here sleeps except the optional
``slow_seconds`` that imitates a slow metrics server.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from adapters.base import (
    Clock,
    DeployError,
    InstantValue,
    MetricsError,
    PreflightCheck,
    PreflightResult,
    RangeSeries,
)

if TYPE_CHECKING:
    from adapters.settings import SimDeploySettings, SimMetricsSettings

Scenario = Literal["good", "bad"]
Track = Literal["canary", "baseline"]
TRACKS: tuple[Track, ...] = ("canary", "baseline")

#: Width of the trailing window behind every queried value (like ``rate(...[1m])``).
WINDOW_S = 60.0
#: The metrics the simulated source answers, with what each means.
METRICS: dict[str, str] = {
    "sim:error_ratio": "fraction (0..1) of requests answered with a 5xx, over the last 60 s",
    "sim:latency_p99_seconds": "99th percentile of request latency over the last 60 s, seconds",
    "sim:request_rate": "requests per second over the last 60 s",
    "sim:requests": "requests served in the last 60 s",
}
#: Most points one range query may return (Prometheus refuses more than 11,000 too).
MAX_RANGE_POINTS = 11_000

# Model figures. A good build: 0.3 % ± 0.1 % errors, p99 0.12 s ± 5 %. A bad build: 4 % ± 8 %
# errors, p99 three times the good one.
_GOOD_ERROR = 0.003
_GOOD_ERROR_SPREAD = 0.001
_BAD_ERROR = 0.04
_GOOD_P99 = 0.12
_BAD_P99_FACTOR = 3.0
_RPS_SPREAD = 0.05

# Latency is log-normal with the median a third of the p99: the exported histogram is built from
# it, so `histogram_quantile(0.99, ...)` over the buckets lands near the model's p99.
_Z99 = 2.3263478740408408
_P99_TO_MEDIAN = 3.0
_SIGMA = math.log(_P99_TO_MEDIAN) / _Z99
#: Bucket bounds of the exported histogram: fine around the 0.1–0.5 s where p99s live.
HISTOGRAM_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2,
    0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
)


@functools.lru_cache(maxsize=131_072)
def noise(seed: int, series: str, second: int) -> float:
    """A value in [-1, 1) that depends only on (seed, series, whole second).

    blake2b rather than ``hash()``: Python salts ``hash()`` per process, which would make the
    simulator differ from one run to the next.
    """
    digest = hashlib.blake2b(f"{seed}|{series}|{second}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def latency_fraction_below(bound: float, p99: float) -> float:
    """Fraction of requests faster than ``bound`` seconds, for a build whose p99 is ``p99``."""
    if bound <= 0:
        return 0.0
    median = p99 / _P99_TO_MEDIAN
    return _normal_cdf(math.log(bound / median) / _SIGMA)


def _mean_latency(p99: float) -> float:
    return p99 / _P99_TO_MEDIAN * math.exp(_SIGMA**2 / 2)


@dataclass(frozen=True)
class TrackFigures:
    """What one track served over an interval: requests, errors, and request-weighted p99 sum."""

    requests: float = 0.0
    errors: float = 0.0
    p99_weighted: float = 0.0  # sum of (requests × p99) over the interval's segments

    @property
    def error_ratio(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def p99(self) -> float | None:
        return self.p99_weighted / self.requests if self.requests > 0 else None


class SimulatedService:
    """The simulated service: its traffic split, builds and deploy state, driven by a clock.

    Thread-safe: the console reads metrics from worker threads while the exporter's HTTP thread
    scrapes and the engine sets weights.
    """

    def __init__(
        self,
        seed: int,
        clock: Clock,
        scenario: Scenario,
        service: str = "redaction-api",
        stable_version: str = "v1.4.2",
        canary_version: str = "v1.4.3",
        base_rps: float = 200.0,
        rollback_seconds: float = 6.0,
        fail_rollback: bool = False,
        bad_from_percent: int = 1,
    ) -> None:
        if scenario not in ("good", "bad"):
            raise ValueError(f"scenario must be 'good' or 'bad', got {scenario!r}")
        self.seed = seed
        self.clock = clock
        self.scenario: Scenario = scenario
        self.service = service
        self.stable_version = stable_version
        self.canary_version = canary_version
        self.base_rps = base_rps
        self.rollback_seconds = rollback_seconds
        #: The deployer accepts rollbacks but never reports the target live (Argo's abort w/o undo).
        self.fail_rollback = fail_rollback
        #: The bad build's defect shows only at this canary weight or more (a defect under load).
        self.bad_from_percent = bad_from_percent
        #: Make every metrics query fail, as if Prometheus were down.
        self.metrics_down = False
        #: Real seconds every metrics query takes (imitates a slow server; 0 in tests).
        self.slow_seconds = 0.0
        self.started_at = clock.now().timestamp()
        self._lock = threading.RLock()
        # Weight history as two parallel sorted lists, so weight_at() is a bisect.
        self._weight_ts: list[float] = [self.started_at]
        self._weights: list[int] = [0]
        self._promoted_at: float | None = None
        self._rollbacks: list[tuple[float, str]] = []
        self._operations = 0
        #: Someone put a version back after the rollback (a GitOps sync): ``(unix_ts, version)``.
        self._reapplied: tuple[float, str] | None = None

    @classmethod
    def from_settings(
        cls,
        metrics: SimMetricsSettings,
        deploy: SimDeploySettings,
        clock: Clock,
        **overrides: Any,
    ) -> SimulatedService:
        """Build the service from the ``[metrics]`` and ``[deploy]`` sim settings."""
        values: dict[str, Any] = {
            "seed": metrics.seed,
            "clock": clock,
            "scenario": metrics.scenario,
            "rollback_seconds": deploy.rollback_seconds,
            "fail_rollback": deploy.fail_rollback,
            "bad_from_percent": metrics.bad_from_percent,
        }
        values.update(overrides)
        return cls(**values)

    # --- time ------------------------------------------------------------------------------------

    def now(self) -> float:
        """The clock's time as unix seconds."""
        return self.clock.now().timestamp()

    # --- state over time -------------------------------------------------------------------------

    @property
    def weight_history(self) -> list[tuple[float, int]]:
        """Every weight the canary was given, as ``(unix_ts, percent)``, oldest first."""
        with self._lock:
            return list(zip(self._weight_ts, self._weights, strict=True))

    @property
    def rollbacks(self) -> list[tuple[float, str]]:
        """Every rollback requested, as ``(unix_ts, target)``."""
        with self._lock:
            return list(self._rollbacks)

    def weight_at(self, ts: float) -> int:
        """The canary weight in force at ``ts`` (0 before the simulator started)."""
        with self._lock:
            index = bisect.bisect_right(self._weight_ts, ts) - 1
            return self._weights[index] if index >= 0 else 0

    def rollback_completed_at(self) -> float | None:
        """When the first rollback went (or goes) live; None if none was asked for or it fails."""
        with self._lock:
            if not self._rollbacks or self.fail_rollback:
                return None
            return self._rollbacks[0][0] + self.rollback_seconds

    def _rolled_back_by(self, ts: float) -> bool:
        done = self.rollback_completed_at()
        return done is not None and ts >= done

    def reapply(self, version: str) -> None:
        """From now on the deploy system runs ``version`` again, whatever was rolled back: what
        Argo CD's self-heal does to a `kubectl rollout undo` (for drills and tests)."""
        with self._lock:
            self._reapplied = (self.now(), version)

    def _reapplied_at(self, ts: float) -> str | None:
        with self._lock:
            reapplied = self._reapplied
        return reapplied[1] if reapplied is not None and ts >= reapplied[0] else None

    def build_is_bad(self, track: Track, ts: float) -> bool:
        """Whether ``track`` runs the bad build at ``ts``."""
        reapplied = self._reapplied_at(ts)
        if reapplied is not None and track == "baseline":
            return self.scenario == "bad" and reapplied == self.canary_version
        if self.scenario != "bad" or self._rolled_back_by(ts):
            return False
        if track == "canary":
            return self.weight_at(ts) >= self.bad_from_percent
        # The stable pods run the canary build once it was promoted, until a rollback completes.
        with self._lock:
            promoted = self._promoted_at
        return promoted is not None and ts >= promoted

    def version_at(self, ts: float) -> str:
        """The version the deploy system reports as live at ``ts``."""
        reapplied = self._reapplied_at(ts)
        if reapplied is not None:
            return reapplied
        with self._lock:
            rollbacks = list(self._rollbacks)
            promoted = self._promoted_at
        if rollbacks and rollbacks[0][0] <= ts:
            if self._rolled_back_by(ts):
                return rollbacks[0][1]
            # While an undo is under way (or stuck), the rollout's spec still names the new version.
            return self.canary_version
        if promoted is not None and ts >= promoted:
            return self.canary_version
        return self.stable_version

    # --- actions ---------------------------------------------------------------------------------

    def set_weight(self, percent: int) -> None:
        """Send ``percent`` of traffic to the canary from now on."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise DeployError(f"canary weight must be an integer 0..100, got {percent!r}")
        with self._lock:
            # Never out of order, even if a clock steps back; two changes in one instant: last wins.
            ts = max(self.now(), self._weight_ts[-1])
            if ts == self._weight_ts[-1]:
                self._weights[-1] = percent
            else:
                self._weight_ts.append(ts)
                self._weights.append(percent)
            if percent == 100 and self._promoted_at is None and not self._rollbacks:
                self._promoted_at = ts

    def current_weight(self) -> int:
        return self.weight_at(self.now())

    def current_version(self) -> str:
        return self.version_at(self.now())

    def known_versions(self) -> tuple[str, ...]:
        """Versions a rollback may target."""
        return (self.stable_version,)

    def rollback(self, target: str, progress: Callable[[str], None] | None = None) -> str:
        """Record a rollback to ``target``: canary weight 0 now, ``target`` live later."""
        if target not in self.known_versions():
            raise DeployError(
                f"cannot roll {self.service} back to {target}: unknown version "
                f"(known: {', '.join(self.known_versions())})"
            )
        with self._lock:
            ts = self.now()
            self._rollbacks.append((ts, target))
            self._operations += 1
            operation = f"sim-rollback-{self._operations}"
        self.set_weight(0)
        if progress is not None:
            progress(
                f"{operation}: rollback of {self.service} to {target} accepted; "
                f"canary weight set to 0"
            )
        return operation

    # --- the model -------------------------------------------------------------------------------

    def _breakpoints(self, start: float, end: float) -> list[float]:
        """Sorted instants in (start, end) where the model's state may change."""
        with self._lock:
            points = {ts for ts in self._weight_ts if start < ts < end}
            if self._promoted_at is not None and start < self._promoted_at < end:
                points.add(self._promoted_at)
        done = self.rollback_completed_at()
        if done is not None and start < done < end:
            points.add(done)
        with self._lock:
            if self._reapplied is not None and start < self._reapplied[0] < end:
                points.add(self._reapplied[0])
        first = math.floor(start) + 1
        points.update(float(s) for s in range(first, math.ceil(end)))
        return sorted(points)

    def _segments(self, start: float, end: float) -> Iterator[tuple[float, float]]:
        """``[a, b)`` pieces of ``[start, end)`` within which the model is constant."""
        edges = [start, *self._breakpoints(start, end), end]
        for a, b in itertools.pairwise(edges):
            if b > a:
                yield a, b

    def total_rps(self, ts: float) -> float:
        second = math.floor(ts)
        return self.base_rps * (1.0 + _RPS_SPREAD * noise(self.seed, "rps", second))

    def track_rps(self, track: Track, ts: float) -> float:
        share = self.weight_at(ts) / 100.0
        return self.total_rps(ts) * (share if track == "canary" else 1.0 - share)

    def error_ratio_at(self, track: Track, ts: float) -> float:
        """The instantaneous error ratio of ``track``'s build (whether or not it has traffic)."""
        second = math.floor(ts)
        jitter = noise(self.seed, f"error_ratio/{track}", second)
        if self.build_is_bad(track, ts):
            return _BAD_ERROR * (1.0 + 0.08 * jitter)
        return _GOOD_ERROR + _GOOD_ERROR_SPREAD * jitter

    def p99_at(self, track: Track, ts: float) -> float:
        """The instantaneous p99 latency of ``track``'s build, seconds."""
        second = math.floor(ts)
        base = _GOOD_P99 * (1.0 + 0.05 * noise(self.seed, f"latency_p99/{track}", second))
        return base * _BAD_P99_FACTOR if self.build_is_bad(track, ts) else base

    def figures(self, track: Track, start: float, end: float) -> TrackFigures:
        """Requests, errors and p99 of ``track`` integrated over ``[start, end)``."""
        requests = errors = p99_weighted = 0.0
        for a, b in self._segments(start, end):
            served = self.track_rps(track, a) * (b - a)
            if served <= 0:
                continue
            requests += served
            errors += served * self.error_ratio_at(track, a)
            p99_weighted += served * self.p99_at(track, a)
        return TrackFigures(requests, errors, p99_weighted)

    def metric_at(self, metric: str, track: Track, ts: float) -> float | None:
        """The value of a ``sim:`` metric for ``track`` at ``ts``; None means no data.

        A track with no request in the window has a rate of 0 but no error ratio and no latency
        (None, never NaN): what Prometheus answers when a ratio's denominator series is absent.
        """
        window = self.figures(track, ts - WINDOW_S, ts)
        if metric == "sim:requests":
            return window.requests
        if metric == "sim:request_rate":
            return window.requests / WINDOW_S
        if metric == "sim:error_ratio":
            return window.error_ratio
        if metric == "sim:latency_p99_seconds":
            return window.p99
        raise MetricsError(f"unknown metric {metric!r}")


# --- the metrics source --------------------------------------------------------------------------

_MATCHER = re.compile(
    r"""\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!=|!~|=)\s*
        (?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)')\s*(?:,|$)""",
    re.X | re.S,
)
_SIM_SELECTOR = re.compile(r"^(?P<metric>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?$", re.S)

# The conventional PromQL shapes over the exporter's metric names, so one guardrail config serves
# both a real Prometheus scraping :func:`serve_metrics` and the embedded simulator. Matched on the
# query with whitespace outside quotes removed.
_AGG = r"sum(?:by\((?P<by{n}>[A-Za-z_,]*)\))?"
_COUNTER = (
    _AGG + r"\((?P<fn{n}>rate|increase)\(http_requests_total(?:\{{(?P<labels{n}>[^{{}}]*)\}})?"
    r"\[(?P<window{n}>[0-9]+[smh])\]\)\)"
)
_PROMQL_COUNTER = re.compile("^" + _COUNTER.format(n=1) + "$", re.S)
_PROMQL_RATIO = re.compile("^" + _COUNTER.format(n=1) + "/" + _COUNTER.format(n=2) + "$", re.S)
_PROMQL_QUANTILE = re.compile(
    r"^histogram_quantile\((?P<q>[0-9]*\.?[0-9]+),"
    + _AGG.format(n=1)
    + r"\(rate\(http_request_duration_seconds_bucket(?:\{(?P<labels1>[^{}]*)\})?"
    r"\[(?P<window1>[0-9]+[smh])\]\)\)\)$",
    re.S,
)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}

Sample = tuple[dict[str, str], float]


def _quote(query: str) -> str:
    """The query as one short line for an error message."""
    flat = " ".join(query.split())
    return repr(flat if len(flat) <= 160 else flat[:157] + "...")


def _compact(query: str) -> str:
    """``query`` without whitespace outside quoted strings."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for char in query:
        if quote is not None:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            out.append(char)
        elif not char.isspace():
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class _Selection:
    """Which tracks a selector picks, and (for request counters) which status codes."""

    service: str | None = None
    track: str | None = None
    codes: Literal["all", "errors", "ok"] = "all"

    def tracks(self, svc: SimulatedService) -> list[Track]:
        if self.service is not None and self.service != svc.service:
            return []
        return [t for t in TRACKS if self.track is None or self.track == t]


def _selection(body: str | None, query: str, *, codes_allowed: bool) -> _Selection:
    """Parse the matchers of a selector: ``service`` and ``track`` by equality, ``code`` loosely."""
    service: str | None = None
    track: str | None = None
    codes: Literal["all", "errors", "ok"] = "all"
    body = body or ""
    position = 0
    while body[position:].strip():
        found = _MATCHER.match(body, position)
        if found is None:
            raise MetricsError(f"sim: cannot parse the labels of query {_quote(query)}")
        name, op = found.group("name"), found.group("op")
        raw = found.group("dq") if found.group("dq") is not None else found.group("sq")
        value = re.sub(r"\\(.)", r"\1", raw or "")
        position = found.end()
        if name == "code" and codes_allowed:
            error_codes = value.startswith("5")
            if op in ("=", "=~"):
                codes = "errors" if error_codes else "ok"
            else:  # != or !~: everything but
                codes = "ok" if error_codes else "errors"
            continue
        if name not in ("service", "track"):
            known = "service, track, code" if codes_allowed else "service, track"
            raise MetricsError(
                f"sim: unknown label {name!r} in query {_quote(query)} (known: {known})"
            )
        if op != "=":
            raise MetricsError(
                f"sim: only '=' matchers on {name} are supported, in {_quote(query)}"
            )
        if name == "service":
            service = value
        else:
            track = value
    return _Selection(service, track, codes)


def _window(text: str) -> float:
    return float(text[:-1]) * _UNITS[text[-1]]


def _by(text: str | None, query: str, allowed: set[str]) -> frozenset[str]:
    labels = frozenset(label for label in (text or "").split(",") if label)
    unknown = labels - allowed
    if unknown:
        raise MetricsError(
            f"sim: cannot group by {', '.join(sorted(unknown))} in query {_quote(query)}"
        )
    return labels


def _groups(
    svc: SimulatedService, selection: _Selection, by: frozenset[str]
) -> list[tuple[dict[str, str], list[Track]]]:
    """The output series of a ``sum by (...)`` over the selected tracks."""
    tracks = selection.tracks(svc)
    if not tracks:
        return []
    base = {"service": svc.service} if "service" in by else {}
    if "track" in by:
        return [({**base, "track": t}, [t]) for t in tracks]
    return [(base, tracks)]


@dataclass(frozen=True)
class _SimMetric:
    """``sim:<metric>{...}``: one series per selected track."""

    metric: str
    selection: _Selection

    def evaluate(self, svc: SimulatedService, ts: float) -> list[Sample]:
        samples: list[Sample] = []
        for track in self.selection.tracks(svc):
            value = svc.metric_at(self.metric, track, ts)
            if value is not None:
                labels = {"__name__": self.metric, "service": svc.service, "track": track}
                samples.append((labels, value))
        return samples


@dataclass(frozen=True)
class _Counter:
    """``sum [by (...)] (rate|increase(http_requests_total{...}[W]))``."""

    function: str
    window: float
    selection: _Selection
    by: frozenset[str]

    def evaluate(self, svc: SimulatedService, ts: float) -> list[Sample]:
        samples: list[Sample] = []
        for labels, tracks in _groups(svc, self.selection, self.by):
            figures = [svc.figures(t, ts - self.window, ts) for t in tracks]
            if self.selection.codes == "errors":
                count = math.fsum(f.errors for f in figures)
            elif self.selection.codes == "ok":
                count = math.fsum(f.requests - f.errors for f in figures)
            else:
                count = math.fsum(f.requests for f in figures)
            samples.append((labels, count if self.function == "increase" else count / self.window))
        return samples


@dataclass(frozen=True)
class _Ratio:
    """``<counter> / <counter>``, matched on labels; a zero denominator gives no series."""

    numerator: _Counter
    denominator: _Counter

    def evaluate(self, svc: SimulatedService, ts: float) -> list[Sample]:
        above = {tuple(sorted(labels.items())): v for labels, v in self.numerator.evaluate(svc, ts)}
        samples: list[Sample] = []
        for labels, below in self.denominator.evaluate(svc, ts):
            key = tuple(sorted(labels.items()))
            if below > 0 and key in above:
                samples.append((labels, above[key] / below))
        return samples


@dataclass(frozen=True)
class _Quantile:
    """``histogram_quantile(q, sum by (le) (rate(<the duration buckets>{...}[W])))``."""

    q: float
    window: float
    selection: _Selection
    by: frozenset[str]

    def evaluate(self, svc: SimulatedService, ts: float) -> list[Sample]:
        from statistics import NormalDist  # only here: statistics imports more than we need

        # The model's latency is log-normal: any quantile is the p99 times a constant factor.
        factor = math.exp(_SIGMA * (NormalDist().inv_cdf(self.q) - _Z99))
        samples: list[Sample] = []
        for labels, tracks in _groups(svc, self.selection, self.by - {"le"}):
            figures = [svc.figures(t, ts - self.window, ts) for t in tracks]
            requests = math.fsum(f.requests for f in figures)
            if requests > 0:  # no request, no quantile (Prometheus would say NaN)
                p99 = math.fsum(f.p99_weighted for f in figures) / requests
                samples.append((labels, p99 * factor))
        return samples


_Expression = _SimMetric | _Counter | _Ratio | _Quantile


def _counter(match: re.Match[str], n: int, query: str) -> _Counter:
    return _Counter(
        function=match.group(f"fn{n}"),
        window=_window(match.group(f"window{n}")),
        selection=_selection(match.group(f"labels{n}"), query, codes_allowed=True),
        by=_by(match.group(f"by{n}"), query, {"service", "track"}),
    )


def parse_query(query: str) -> _Expression:
    """Compile a query the simulator understands; MetricsError (one line) for anything else.

    Understood: ``sim:<metric>{service="X", track="canary"}`` (see :data:`METRICS`), and the
    conventional shapes over the exporter's names — ``sum(rate(http_requests_total{...}[1m]))``
    (or ``increase``, optionally ``by (track)``), a ratio of two such sums (a ``code=~"5.."``
    matcher selects errors), and ``histogram_quantile(0.99, sum by (le) (rate(
    http_request_duration_seconds_bucket{...}[1m])))``.
    """
    compact = _compact(query)
    simple = _SIM_SELECTOR.match(compact)
    if simple is not None and simple.group("metric") in METRICS:
        selection = _selection(simple.group("labels"), query, codes_allowed=False)
        return _SimMetric(simple.group("metric"), selection)
    if (match := _PROMQL_RATIO.match(compact)) is not None:
        return _Ratio(_counter(match, 1, query), _counter(match, 2, query))
    if (match := _PROMQL_COUNTER.match(compact)) is not None:
        return _counter(match, 1, query)
    if (match := _PROMQL_QUANTILE.match(compact)) is not None:
        q = float(match.group("q"))
        if not 0 < q < 1:
            raise MetricsError(f"sim: quantile must be between 0 and 1, in {_quote(query)}")
        by = _by(match.group("by1"), query, {"le", "service", "track"})
        if "le" not in by:
            raise MetricsError(f"sim: histogram_quantile needs sum by (le), in {_quote(query)}")
        selection = _selection(match.group("labels1"), query, codes_allowed=False)
        return _Quantile(q, _window(match.group("window1")), selection, by)
    if simple is not None:  # a bare selector, of no metric the simulator has
        raise MetricsError(
            f"sim: unknown metric {simple.group('metric')!r} in query {_quote(query)} "
            f"(known: {', '.join(METRICS)})"
        )
    raise MetricsError(
        f"sim: cannot parse query {_quote(query)} (the simulator understands sim:<metric>{{...}} "
        "and the conventional http_requests_total / histogram_quantile shapes)"
    )


class SimMetricsSource:
    """Answers queries from the model of a :class:`SimulatedService` (see :func:`parse_query`).

    A selector without ``track`` matches both tracks (two series), as Prometheus would; a service
    or track that does not exist matches nothing (an empty answer).
    """

    def __init__(self, service: SimulatedService) -> None:
        self.service = service

    def _guard(self) -> None:
        if self.service.slow_seconds > 0:
            time.sleep(self.service.slow_seconds)  # imitates a slow server (demo only)
        if self.service.metrics_down:
            raise MetricsError("simulated metrics source is down")

    def query(self, query: str) -> list[InstantValue]:
        self._guard()
        expression = parse_query(query)
        now = self.service.now()
        samples = expression.evaluate(self.service, now)
        return [InstantValue(labels, now, value) for labels, value in samples]

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[RangeSeries]:
        self._guard()
        if not step > 0:
            raise MetricsError(f"sim: step must be positive, got {step!r}")
        expression = parse_query(query)
        first, last = start.timestamp(), min(end.timestamp(), self.service.now())
        if last < first:
            return []
        count = math.floor((last - first) / step) + 1
        if count > MAX_RANGE_POINTS:
            raise MetricsError(
                f"sim: {count} points exceed the maximum of {MAX_RANGE_POINTS}; use a larger step"
            )
        series: dict[tuple[tuple[str, str], ...], RangeSeries] = {}
        for index in range(count):
            ts = first + index * step
            for labels, v in expression.evaluate(self.service, ts):
                key = tuple(sorted(labels.items()))
                if key not in series:
                    series[key] = RangeSeries(labels, [])
                series[key].points.append((ts, v))
        return list(series.values())


# --- traffic and deploy --------------------------------------------------------------------------


class SimTrafficController:
    """The simulated traffic split of :class:`SimulatedService`."""

    def __init__(self, service: SimulatedService) -> None:
        self.service = service

    def set_weight(self, percent: int) -> None:
        self.service.set_weight(percent)

    def current_weight(self) -> int:
        return self.service.current_weight()


class SimDeployer:
    """The simulated deploy system of :class:`SimulatedService`."""

    def __init__(self, service: SimulatedService) -> None:
        self.service = service

    def current_version(self) -> str:
        return self.service.current_version()

    def preflight_rollback(self, target: str) -> PreflightResult:
        svc = self.service
        known = target in svc.known_versions()
        versions = ", ".join(svc.known_versions())
        checks = [
            PreflightCheck(
                f"target version {target} is known",
                known,
                f"{target} is the stable version of {svc.service}"
                if known
                else f"{svc.service} has never run {target} (known: {versions})",
            ),
            PreflightCheck(
                "target image is present",
                known,
                f"registry.sim/{svc.service}:{target} found"
                if known
                else f"no image registry.sim/{svc.service}:{target}",
            ),
        ]
        now = svc.now()
        stable_bad = svc.build_is_bad("baseline", now)
        checks.append(
            PreflightCheck(
                "stable track healthy",
                not stable_bad,
                f"stable pods error ratio {svc.error_ratio_at('baseline', now):.2%}",
            )
        )
        ok = all(check.ok for check in checks)
        failed = [check.name for check in checks if not check.ok]
        detail = (
            f"rollback of {svc.service} to {target} can run"
            if ok
            else f"rollback of {svc.service} to {target} cannot run: failed {', '.join(failed)}"
        )
        return PreflightResult(target=target, ok=ok, checks=checks, detail=detail)

    def rollback(self, target: str, progress: Callable[[str], None] | None = None, *,
                 idempotency_key: str | None = None) -> str:
        # The simulated deploy system lives in the console's process and is rebuilt from the
        # record at each start: it has no operations to look up, so the key is not kept.
        del idempotency_key
        return self.service.rollback(target, progress)


# --- the Prometheus exporter ---------------------------------------------------------------------


class MetricsExportError(MetricsError):
    """The exporter could not start (port taken, address unavailable)."""


@dataclass
class MetricsServer:
    """A running exporter: where it listens, and how to stop it."""

    port: int
    addr: str
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _ServiceCollector:
    """Integrates the model between scrapes into cumulative counters and histogram buckets."""

    def __init__(self, service: SimulatedService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._last = service.started_at
        self._totals: dict[Track, dict[str, float]] = {
            track: {"ok": 0.0, "error": 0.0, "sum": 0.0, **{str(b): 0.0 for b in HISTOGRAM_BUCKETS}}
            for track in TRACKS
        }

    def _advance(self) -> None:
        now = self.service.now()
        if now <= self._last:
            return
        svc = self.service
        for a, b in svc._segments(self._last, now):
            for track in TRACKS:
                served = svc.track_rps(track, a) * (b - a)
                if served <= 0:
                    continue
                totals = self._totals[track]
                ratio = svc.error_ratio_at(track, a)
                p99 = svc.p99_at(track, a)
                totals["error"] += served * ratio
                totals["ok"] += served * (1.0 - ratio)
                totals["sum"] += served * _mean_latency(p99)
                for bound in HISTOGRAM_BUCKETS:
                    totals[str(bound)] += served * latency_fraction_below(bound, p99)
        self._last = now

    def describe(self) -> list[Any]:
        return []  # registering must not trigger a scrape

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        with self._lock:
            self._advance()
            snapshot = {track: dict(values) for track, values in self._totals.items()}
        service = self.service.service
        requests = CounterMetricFamily(
            "http_requests", "Requests served, by track and status code.",
            labels=["service", "track", "code"],
        )
        durations = HistogramMetricFamily(
            "http_request_duration_seconds", "Request latency, by track.",
            labels=["service", "track"],
        )
        for track, totals in snapshot.items():
            count = totals["ok"] + totals["error"]
            if count <= 0:
                continue  # a track that never served has no series, as with real pods
            # Whole requests: floors of monotonic sums stay monotonic.
            requests.add_metric([service, track, "200"], math.floor(totals["ok"]))
            requests.add_metric([service, track, "500"], math.floor(totals["error"]))
            buckets = [(str(b), math.floor(totals[str(b)])) for b in HISTOGRAM_BUCKETS]
            buckets.append(("+Inf", math.floor(count)))
            durations.add_metric([service, track], buckets, totals["sum"])
        yield requests
        yield durations


def serve_metrics(service: SimulatedService, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Export ``service`` over HTTP at ``http://addr:port/metrics``; port 0 picks a free port.

    The exporter has its own registry (no process or platform metrics, no ``*_created`` series) and
    serves ``http_requests_total{service, track, code}`` and
    ``http_request_duration_seconds{service, track}``.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ServiceCollector(service))  # type: ignore[arg-type]
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as error:
        raise MetricsExportError(
            f"cannot serve metrics on {addr}:{port}: {error.strerror or error}"
        ) from None
    return MetricsServer(port=server.server_address[1], addr=addr, _server=server, _thread=thread)


__all__ = [
    "HISTOGRAM_BUCKETS",
    "METRICS",
    "WINDOW_S",
    "MetricsExportError",
    "MetricsServer",
    "SimDeployer",
    "SimMetricsSource",
    "SimTrafficController",
    "SimulatedService",
    "TrackFigures",
    "latency_fraction_below",
    "noise",
    "parse_query",
    "serve_metrics",
]

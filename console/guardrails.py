"""Guardrail evaluation: is the canary within its limits, and can we even tell?

A guardrail (``[[guardrails]]`` in the config) is a query with ``$service`` and ``$track``
placeholders, evaluated for the canary and the baseline track, and limits: an absolute ``max``
and/or ``max_ratio_to_baseline``. :func:`evaluate` turns one evaluation into a
:class:`GuardrailReading` with one of four statuses:

``cant_evaluate``
    We do not know, because the data cannot be trusted. A query failed or timed out; the canary
    series is missing (the query matched nothing); a value query gave more than one series (which
    one would be judged? aggregate it, e.g. ``sum(...)``); a value is NaN or ±Inf, or did not
    parse; a sample is older than ``max_age_s``, or stamped in the future beyond ``max_skew_s``
    (a clock is wrong, so its age means nothing); or a ratio limit needs a baseline that is
    missing or untrustworthy in the same ways. A can't-evaluate reading is never healthy and never
    a breach: the console treats it as a blocker of ``advance`` and never acts on it.
``insufficient``
    The values are readable but rest on fewer than ``min_evidence`` requests (the evidence query,
    run for the same track as the value, summed over its series: counts add up, so several
    series are not ambiguous there).
``breach``
    The canary exceeds the effective limit: the lower of ``max`` and
    ``max_ratio_to_baseline × baseline``. A trustworthy canary value above ``max`` is a breach
    even when the baseline (and so the ratio limit) cannot be trusted: what we know is already
    bad, and the absolute limit does not depend on the baseline.
``healthy``
    Every applicable limit was checked against trustworthy data and the canary is within it.

The checks run in that order, so the first problem found is the one reported.

``mode="stable"`` verifies a rollback: the same guardrails, on the baseline track, against the
absolute ``max`` only (a ratio to itself means nothing).

:class:`BreachTracker` counts consecutive breaches per guardrail and reports status changes and
the moment a breach becomes sustained. Only a healthy reading resets the count; can't-evaluate and
insufficient readings neither add to it nor reset it, so a flapping source cannot hide a breach.

This module is core: no Textual. It reads metrics only through :class:`adapters.base.MetricsSource`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from adapters.base import AdapterError, InstantValue, MetricsSource
from adapters.secrets import scrub
from console.config import GuardrailSettings
from console.events import GuardrailChanged
from console.model import GuardrailStatus, format_ts, format_value
from console.state import IncidentState
from console.stats import mann_whitney_u

Mode = Literal["canary", "stable"]

#: How far in the future a sample may be stamped before it is not trusted (``[monitoring]
#: clock_skew_s`` sets it for the console).
DEFAULT_CLOCK_SKEW_S = 30.0

#: Error text kept in a reading: one line, this long at most.
MAX_ERROR_CHARS = 200

_PLACEHOLDER = re.compile(r"\$(?:\{(service|track)\}|(service|track)\b)")


def resolve_query(template: str, service: str, track: str) -> str:
    """Fill ``$service`` / ``${service}`` and ``$track`` / ``${track}`` in a query template.

    Grafana-style placeholders, so PromQL braces (``{service="$service"}``) stay untouched. The
    values are inserted as they are: service names are config-checked identifiers, not user prose.
    """
    values = {"service": service, "track": track}

    def replace(match: re.Match[str]) -> str:
        return values[match.group(1) or match.group(2)]

    return _PLACEHOLDER.sub(replace, template)


def _format_count(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _format_ratio(ratio: float) -> str:
    """``3`` → ``3.0×``; ``1.25`` → ``1.25×``."""
    return f"{ratio:.1f}×" if round(ratio, 1) == ratio else f"{ratio:g}×"


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_ERROR_CHARS else flat[: MAX_ERROR_CHARS - 1] + "…"


def _error_text(error: BaseException) -> str:
    message = _one_line(scrub(str(error)))
    if isinstance(error, AdapterError | TimeoutError) and message:
        return message
    # Anything else is a bug or an unexpected library error: keep its type, it helps.
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _json_float(value: float | None) -> float | str | None:
    """JSON has no NaN or Inf: write them as Prometheus does."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


@dataclass(frozen=True)
class GuardrailReading:
    """One evaluation of one guardrail: the status, the figures behind it and one line of why."""

    name: str
    status: GuardrailStatus
    canary: float | None = None
    baseline: float | None = None
    limit: float | None = None  # the effective limit the judged value was compared with
    evidence: float | None = None
    detail: str = ""
    queries: dict[str, str] = field(default_factory=dict)  # role → resolved query
    raw: dict[str, list[float]] = field(default_factory=dict)  # role → values seen
    error: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    mode: Mode = "canary"
    warn_limit: float | None = None  # where the warn band starts (``warn`` × the limit)
    no_data: bool = False  # the canary (or its evidence) answered with nothing: on_no_data
    comparison: Comparison | None = None  # Mann-Whitney on the stage's samples, if configured
    rule: str = ""  # the rule that decided the status, by its setting's name

    @property
    def is_healthy(self) -> bool:
        return self.status == "healthy"

    def why(self) -> dict[str, Any]:
        """What a recorded status change keeps of this reading (``GuardrailChanged``'s fields):
        each value, the limit and the warn band, the rule that decided, the queries as sent and
        the samples they answered — the verdict's why, readable from the record alone."""
        figures: dict[str, Any] = {
            "canary": _json_float(self.canary), "baseline": _json_float(self.baseline),
            "limit": _json_float(self.limit), "evidence": _json_float(self.evidence),
            "detail": self.detail}
        if self.warn_limit is not None:
            figures["warn_limit"] = _json_float(self.warn_limit)
        if self.no_data:
            figures["no_data"] = True
        if self.comparison is not None:
            figures["comparison"] = self.comparison.words
        if self.rule:
            figures["rule"] = self.rule
        figures["queries"] = dict(self.queries) or None
        figures["samples"] = {role: [_json_float(v) for v in values]
                              for role, values in self.raw.items()} or None
        return figures

    def to_payload(self) -> dict[str, Any]:
        """A JSON-safe dict (NaN/Inf written as strings, the time as the store's UTC string)."""
        payload: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "mode": self.mode,
            "canary": _json_float(self.canary),
            "baseline": _json_float(self.baseline),
            "limit": _json_float(self.limit),
            "evidence": _json_float(self.evidence),
            "detail": self.detail,
            "queries": dict(self.queries),
            "raw": {role: [_json_float(v) for v in values] for role, values in self.raw.items()},
            "error": self.error,
            "ts": format_ts(self.ts),
        }
        if self.rule:
            payload["rule"] = self.rule
        # What only some guardrails have is written only when there.
        if self.warn_limit is not None:
            payload["warn_limit"] = _json_float(self.warn_limit)
        if self.no_data:
            payload["no_data"] = True
        if self.comparison is not None:
            payload["comparison"] = self.comparison.to_payload()
        return payload


def judged_by(guardrail: GuardrailSettings) -> str:
    """How a guardrail judges, in one line: its limits and every rule of issue 16 it has.
    ``max 2.00% · 2.0× baseline · warn above 80% of the limit · no data: can't evaluate ·
    3 in a row → rollback``."""
    g = guardrail
    parts: list[str] = []
    if g.max is not None:
        parts.append(f"max {format_value(g.max, g.unit, g.scale)}")
    if g.max_ratio_to_baseline is not None:
        parts.append(f"{_format_ratio(g.max_ratio_to_baseline)} baseline")
    if g.warn is not None:
        parts.append(f"WARN above {g.warn:.0%} of the limit")
    if g.evidence_query and g.min_evidence > 0:
        parts.append(f"needs {g.min_evidence:,.0f} requests")
    parts.append(f"no data: {_NO_DATA_RULE[g.on_no_data]}")
    parts += judgement_rules(g, with_no_data=False, with_warn=False)
    if not g.shadow:
        parts.append(f"{g.consecutive} in a row → {g.on_breach}")
    return " · ".join(parts)


_NO_DATA_RULE = {"cant_evaluate": "can't evaluate", "hold": "hold the canary", "breach": "breach"}


def judgement_rules(guardrail: GuardrailSettings, *, with_no_data: bool = True,
                    with_warn: bool = True) -> list[str]:
    """The judgement settings a guardrail has beyond its limits (issue 16), in words; empty
    for a guardrail that judges by its limits alone."""
    g = guardrail
    parts: list[str] = []
    if with_warn and g.warn is not None:
        parts.append(f"WARN above {g.warn:.0%} of the limit")
    if with_no_data and g.on_no_data != "cant_evaluate":
        parts.append(f"no data: {_NO_DATA_RULE[g.on_no_data]}")
    if g.initial_delay_s > 0:
        parts.append(f"initial delay {g.initial_delay_s:g}s after each stage change")
    if g.mann_whitney is not None:
        mw = g.mann_whitney
        parts.append(f"Mann-Whitney α {mw.alpha:g} on ≥ {mw.min_samples} samples "
                     + ("(gating)" if mw.gate else "(shown, not gating)"))
    if g.shadow:
        parts.append("SHADOW: never gates")
    return parts


# --- the statistical comparison (Mann-Whitney U) ------------------------------------------------


def format_p(p: float) -> str:
    """``0.0312`` → ``0.031``; below 0.001 → ``< 0.001``."""
    return "< 0.001" if p < 0.001 else f"= {p:.3g}"


@dataclass(frozen=True)
class Comparison:
    """Mann-Whitney U of the canary's samples of the stage against the baseline's (one-sided:
    is the canary higher?). ``p`` is None until each track has ``min_samples``."""

    n_canary: int
    n_baseline: int
    min_samples: int
    alpha: float
    gate: bool
    p: float | None = None
    u: float | None = None

    @property
    def enough(self) -> bool:
        return self.p is not None

    @property
    def higher(self) -> bool:
        """The canary is significantly higher than the baseline."""
        return self.p is not None and self.p < self.alpha

    @property
    def words(self) -> str:
        """One line: ``Mann-Whitney: canary higher, p < 0.001 < α 0.05 (12 canary, 12
        baseline samples)``; the same words in every pane, detail and record."""
        counts = f"{self.n_canary} canary, {self.n_baseline} baseline samples"
        gate = "" if self.gate else ", not gating"
        if self.p is None:
            return (f"Mann-Whitney: waiting for {self.min_samples} samples of each track "
                    f"({counts}{gate})")
        verdict = ("canary higher" if self.higher else "no significant difference")
        relation = "<" if self.higher else "≥"
        return (f"Mann-Whitney: {verdict}, p {format_p(self.p)} {relation} α {self.alpha:g} "
                f"({counts}{gate})")

    def to_payload(self) -> dict[str, Any]:
        return {"n_canary": self.n_canary, "n_baseline": self.n_baseline,
                "min_samples": self.min_samples, "alpha": self.alpha, "gate": self.gate,
                "p": self.p, "u": self.u, "words": self.words}


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def compare(guardrail: GuardrailSettings, canary: Sequence[float | None],
            baseline: Sequence[float | None]) -> Comparison | None:
    """The guardrail's Mann-Whitney comparison of the stage's samples (None when it has none
    configured). Missing and non-finite samples are left out: a poll without data is no
    evidence either way."""
    settings = guardrail.mann_whitney
    if settings is None:
        return None
    canary_values, baseline_values = _finite(canary), _finite(baseline)
    base = Comparison(len(canary_values), len(baseline_values), settings.min_samples,
                      settings.alpha, settings.gate)
    if min(base.n_canary, base.n_baseline) < settings.min_samples:
        return base
    result = mann_whitney_u(canary_values, baseline_values, "greater")
    return replace(base, p=result.p, u=result.u)


SampleReader = Callable[[str, float], Sequence[tuple[float, float | None]]]
"""``(series, since_unix_ts) → [(unix_ts, value), ...]``: the store's samples of one series."""


def stage_start(state: IncidentState, name: str) -> datetime | None:
    """Where the stage's samples for guardrail ``name`` start: the stage change, or the end of
    its initial delay (what the windows held before that was the previous stage). None
    without canary traffic."""
    if state.canary_percent == 0 or state.stage_entered is None:
        return None
    guard = state.guardrails.get(name)
    start = state.stage_entered
    if guard is not None and guard.initial_delay_s > 0:
        start = max(start, state.stage_entered + timedelta(seconds=guard.initial_delay_s))
    return start


def stage_samples(read: SampleReader, state: IncidentState, name: str,
                  now: datetime) -> tuple[list[float | None], list[float | None]]:
    """The canary's and the baseline's recorded samples of the current stage (see
    :func:`stage_start`) for guardrail ``name``, up to ``now``. Empty before the stage."""
    start = stage_start(state, name)
    if start is None or start > now:
        return [], []
    since, until = start.timestamp(), now.timestamp()
    canary = [v for ts, v in read(f"{name}/canary", since) if ts <= until]
    baseline = [v for ts, v in read(f"{name}/baseline", since) if ts <= until]
    return canary, baseline


def with_comparison(reading: GuardrailReading, comparison: Comparison | None) -> GuardrailReading:
    """The reading with its comparison attached; a gating comparison judges a reading the
    limits found healthy or WARN: a canary significantly higher is a breach, too few samples
    is insufficient evidence. A reading already worse keeps its status (and its why)."""
    if comparison is None:
        return reading
    judged = replace(reading, comparison=comparison)
    if not comparison.gate or reading.status not in ("healthy", "warn"):
        return judged
    if not comparison.enough:
        return replace(judged, status="insufficient", rule="mann_whitney (too few samples)",
                       detail=f"{comparison.words}; {reading.detail}")
    if comparison.higher:
        return replace(judged, status="breach", rule="mann_whitney",
                       detail=f"{comparison.words}; {reading.detail}")
    return judged


# --- judging one answer --------------------------------------------------------------------------

Answer = list[InstantValue] | BaseException


@dataclass(frozen=True)
class _Value:
    """What one role's answer amounts to: a value, or the reason there is none."""

    value: float | None
    problem: str | None  # a can't-evaluate reason, already phrased for the detail line
    error: str | None = None
    no_data: bool = False  # the query answered, with nothing (no series, or NaN)
    series: int = 0
    labels: dict[str, str] = field(default_factory=dict)  # of the chosen series


def _describe_labels(labels: Mapping[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("__name__", "service", "track")}
    if not shown:
        return ""
    text = ",".join(f"{k}={v}" for k, v in sorted(shown.items()))
    return " {" + (text if len(text) <= 60 else text[:59] + "…") + "}"


def _read(
    answer: Answer,
    *,
    what: str,
    track: str,
    now: datetime,
    max_age_s: float,
    max_skew_s: float,
    several: Literal["refuse", "sum"] = "refuse",
) -> _Value:
    """Check one answer for the can't-evaluate cases, then reduce it to one value.

    A value query must give exactly one series (``several="refuse"``); an evidence query's
    series are counts and are summed (``several="sum"``).
    """
    # The evidence's messages name it; a value's or baseline's name the track, which is enough.
    role = "evidence " if what == "evidence" else ""
    if isinstance(answer, BaseException):
        error = _error_text(answer)
        return _Value(None, f"{role}query failed: {error}", error=error)
    if not answer:
        return _Value(None, f"no {role}data for track={track}", no_data=True)
    count = len(answer)
    if count > 1 and several == "refuse":
        return _Value(
            None,
            f"{role}query gives {count} series for track={track}, not one "
            f"({_describe_labels(answer[0].labels).strip() or 'no labels'}, "
            f"{_describe_labels(answer[1].labels).strip() or 'no labels'}"
            f"{', ...' if count > 2 else ''}): aggregate it, e.g. sum(...)",
            series=count,
        )
    bad = [item for item in answer if not math.isfinite(item.value)]
    if bad:
        word = format_value(bad[0].value)
        of = f" ({len(bad)} of {count} series)" if count > 1 else ""
        # NaN is Prometheus's answer to 0/0, a ratio over no requests: no data. ±Inf is not.
        return _Value(None, f"{role}value is {word} for track={track}{of}", series=count,
                      no_data=all(math.isnan(item.value) for item in bad))
    newest = max(item.ts for item in answer)
    ahead = newest - now.timestamp()
    if ahead > max_skew_s:
        return _Value(
            None,
            f"{role}data is stamped {ahead:.0f} s in the future (allowed clock skew "
            f"{max_skew_s:.0f} s) for track={track}: a clock is wrong",
            series=count,
        )
    oldest = min(item.ts for item in answer)
    age = now.timestamp() - oldest
    if age > max_age_s:
        return _Value(
            None,
            f"{role}data is {age:.0f} s old (limit {max_age_s:.0f} s) for track={track}",
            series=count,
        )
    if several == "sum":
        return _Value(math.fsum(item.value for item in answer), None, series=count)
    return _Value(answer[0].value, None, series=1, labels=dict(answer[0].labels))


def _raw(answer: Answer | None) -> list[float]:
    if answer is None or isinstance(answer, BaseException):
        return []
    return [item.value for item in answer]


@dataclass(frozen=True)
class _Plan:
    """The queries one guardrail needs in one mode, by role."""

    guardrail: GuardrailSettings
    mode: Mode
    queries: dict[str, str]


def _plan(guardrail: GuardrailSettings, service: str, mode: Mode) -> _Plan:
    queries: dict[str, str] = {}
    if mode == "canary":
        queries["canary"] = resolve_query(guardrail.query, service, "canary")
        # The baseline is read even without a ratio limit: graphs and the detail line use it.
        queries["baseline"] = resolve_query(guardrail.query, service, "baseline")
        evidence_track = "canary"
    else:
        queries["baseline"] = resolve_query(guardrail.query, service, "baseline")
        evidence_track = "baseline"
    if guardrail.evidence_query:
        queries["evidence"] = resolve_query(guardrail.evidence_query, service, evidence_track)
    return _Plan(guardrail, mode, queries)


def judge(
    guardrail: GuardrailSettings,
    answers: Mapping[str, Answer],
    queries: Mapping[str, str],
    now: datetime,
    max_age_s: float,
    mode: Mode = "canary",
    max_skew_s: float = DEFAULT_CLOCK_SKEW_S,
) -> GuardrailReading:
    """Turn the answers to a guardrail's queries (by role) into a reading. Pure; never raises."""
    g = guardrail
    subject_role = "canary" if mode == "canary" else "baseline"
    subject_track = subject_role
    raw = {role: _raw(answers.get(role)) for role in queries}

    def fmt(value: float | None) -> str:
        return format_value(value, g.unit, g.scale)

    def reading(status: GuardrailStatus, detail: str, rule: str = "",
                **values: Any) -> GuardrailReading:
        return GuardrailReading(
            name=g.name,
            status=status,
            detail=detail,
            queries=dict(queries),
            raw=raw,
            ts=now,
            mode=mode,
            rule=rule or RULE_BY_STATUS.get(status, ""),
            **values,
        )

    # The baseline, in canary mode: the reference of the ratio limit (its lowest series). Read
    # first so every reading, even a can't-evaluate one, carries it for the graphs.
    baseline: _Value | None = None
    if mode == "canary" and "baseline" in answers:
        baseline = _read(
            answers["baseline"], what="baseline", track="baseline", now=now,
            max_age_s=max_age_s, max_skew_s=max_skew_s,
        )

    # 1. The judged value: errors, empty, NaN/Inf, stale → can't evaluate.
    subject = _read(
        answers[subject_role], what="value", track=subject_track, now=now,
        max_age_s=max_age_s, max_skew_s=max_skew_s,
    )
    if subject.value is None:
        if subject.no_data and mode == "canary":
            return _no_data(g, reading, subject.problem or "no data",
                            baseline=baseline.value if baseline else None)
        return reading(
            "cant_evaluate",
            subject.problem or "no value",
            error=subject.error,
            baseline=baseline.value if baseline else None,
        )
    value = subject.value
    known: dict[str, Any] = {
        "canary": value if mode == "canary" else None,
        "baseline": (baseline.value if baseline else None) if mode == "canary" else value,
    }

    # 2. Evidence: unreadable → can't evaluate; too little → insufficient.
    evidence: float | None = None
    if "evidence" in queries:
        read = _read(
            answers["evidence"], what="evidence", track=subject_track, now=now,
            max_age_s=max_age_s, max_skew_s=max_skew_s, several="sum",
        )
        if read.value is None:
            problem = read.problem or "no evidence"
            if read.no_data and mode == "canary":
                return _no_data(g, reading, problem, **known)
            return reading("cant_evaluate", problem, error=read.error, **known)
        evidence = read.value
        if evidence < g.min_evidence:
            return reading(
                "insufficient",
                f"only {_format_count(evidence)} requests on {subject_track} in window, "
                f"need {_format_count(g.min_evidence)} ({subject_track} {fmt(value)})",
                evidence=evidence,
                **known,
            )
    known["evidence"] = evidence

    # 3. Stable mode: the absolute max only.
    if mode == "stable":
        if g.max is None:
            return reading(
                "healthy",
                f"baseline {fmt(value)}; ratio limits do not apply to the stable track",
                **known,
            )
        if value > g.max:
            return reading(
                "breach", f"baseline {fmt(value)} > limit {fmt(g.max)} (max)",
                limit=g.max, **known,
            )
        return reading(
            "healthy", f"baseline {fmt(value)} ≤ limit {fmt(g.max)} (max)",
            limit=g.max, **known,
        )

    # 4. Canary mode: the effective limit is the lower of the limits that apply.
    limits: list[tuple[float, str]] = []
    if g.max is not None:
        limits.append((g.max, "max"))
    ratio_problem: str | None = None
    ratio_error: str | None = None
    na_note = ""
    if g.max_ratio_to_baseline is not None:
        ratio = g.max_ratio_to_baseline
        if baseline is None or baseline.value is None:
            missing = (baseline.problem if baseline else None) or "no baseline value"
            ratio_problem = f"{missing}: the ratio limit can't be checked"
            ratio_error = baseline.error if baseline else None
        elif baseline.value <= 0:
            if g.max is None:
                ratio_problem = (
                    f"baseline is {fmt(baseline.value)}: a ratio limit of {_format_ratio(ratio)} "
                    "is undefined "
                    "and there is no absolute max"
                )
            else:  # the ratio limit does not apply: the max alone judges, and the detail says so
                na_note = "; ratio limit n/a: baseline is 0"
        else:
            limits.append(
                (ratio * baseline.value, f"{_format_ratio(ratio)} baseline {fmt(baseline.value)}")
            )
    limit, why = min(limits, key=lambda item: item[0]) if limits else (None, "")

    if limit is not None and value > limit:
        # What we know is already bad, even if the ratio part could not be checked.
        unknown = "; baseline unknown" if ratio_problem else ""
        return reading(
            "breach",
            f"canary {fmt(value)} > limit {fmt(limit)} ({why}){na_note}{unknown}",
            rule="max" if why == "max" else "max_ratio_to_baseline",
            limit=limit,
            **known,
        )
    if ratio_problem is not None:
        within = f"canary {fmt(value)} ≤ max {fmt(limit)}, but " if limit is not None else ""
        return reading(
            "cant_evaluate", f"{within}{ratio_problem}", limit=limit, error=ratio_error, **known
        )
    if g.warn is not None and limit is not None:
        warn_limit = g.warn * limit
        # Like the limit: a canary *above* the band's start is WARN, exactly at it is healthy.
        if value > warn_limit:
            return reading(
                "warn",
                f"canary {fmt(value)} > warn {fmt(warn_limit)} ({g.warn:.0%} of limit "
                f"{fmt(limit)}, {why}){na_note}{WARN_SUFFIX}",
                limit=limit, warn_limit=warn_limit, **known,
            )
        return reading(
            "healthy",
            f"canary {fmt(value)} ≤ warn {fmt(warn_limit)} < limit {fmt(limit)} ({why}){na_note}",
            limit=limit, warn_limit=warn_limit, **known,
        )
    return reading(
        "healthy",
        f"canary {fmt(value)} ≤ limit {fmt(limit)} ({why}){na_note}",
        limit=limit,
        **known,
    )


#: The rule that decides each status unless a judgement names another (a limit's breach names
#: its limit; no data names on_no_data; a gating comparison names mann_whitney).
RULE_BY_STATUS: dict[str, str] = {
    "healthy": "every limit holds",
    "warn": "warn",
    "breach": "max",
    "insufficient": "min_evidence",
    "cant_evaluate": "untrusted data",
}

#: How a WARN's detail ends (the timeline says who decides; the block says it once).
WARN_SUFFIX = ": a person decides"

_NO_DATA_WORDS = {
    "cant_evaluate": "",
    "hold": ": the canary holds until the commander resumes (on_no_data = hold)",
    "breach": ": counted as a breach (on_no_data = breach)",
}


def _no_data(g: GuardrailSettings, reading: Any, problem: str, **known: Any) -> GuardrailReading:
    """The canary's query (or its evidence) answered with nothing: the guardrail's
    ``on_no_data`` says what that is. Never healthy."""
    status: GuardrailStatus = "breach" if g.on_no_data == "breach" else "cant_evaluate"
    result: GuardrailReading = reading(status, problem + _NO_DATA_WORDS[g.on_no_data],
                                       rule=f"on_no_data = {g.on_no_data}", **known)
    return replace(result, no_data=True)


# --- evaluation ----------------------------------------------------------------------------------


def evaluate_all(
    source: MetricsSource,
    guardrails: Sequence[GuardrailSettings],
    service: str,
    now: datetime,
    max_age_s: float,
    mode: Mode = "canary",
    executor: Executor | None = None,
    timeout_s: float | None = None,
    max_skew_s: float = DEFAULT_CLOCK_SKEW_S,
) -> list[GuardrailReading]:
    """Evaluate every guardrail, all queries at once; readings in config order. Never raises.

    Every query of every guardrail is submitted to ``executor`` (a private thread pool if None), so
    a cycle costs about the slowest query. Queries are submitted flat, never as nested tasks, so a
    small shared pool cannot deadlock. With ``timeout_s``, a query not answered in time makes its
    guardrail can't-evaluate ("query timed out"); the cycle does not wait for it.
    """
    plans = [_plan(guardrail, service, mode) for guardrail in guardrails]
    # Each distinct query runs once, even if several guardrails or roles share it.
    distinct = list(dict.fromkeys(q for plan in plans for q in plan.queries.values()))
    if not distinct:
        return []
    results: dict[str, Answer] = {}
    futures: dict[str, Future[list[InstantValue]]] = {}
    own = executor is None
    pool: Executor = executor or ThreadPoolExecutor(
        max_workers=min(32, len(distinct)), thread_name_prefix="guardrail"
    )
    try:
        for query in distinct:
            try:
                futures[query] = pool.submit(source.query, query)
            except RuntimeError as refused:  # the pool was shut down under us
                results[query] = refused
        wait(list(futures.values()), timeout=timeout_s)
    finally:
        if own:
            # Do not wait for a hung query: its thread finishes (or not) on its own.
            pool.shutdown(wait=False, cancel_futures=True)
    for query, future in futures.items():
        if not future.done():
            future.cancel()
            results[query] = TimeoutError(f"query timed out after {timeout_s:g} s")
        elif future.cancelled():
            results[query] = TimeoutError("query was cancelled")
        elif (failure := future.exception()) is not None:
            results[query] = failure
        else:
            results[query] = future.result()

    readings: list[GuardrailReading] = []
    for plan in plans:
        answer_set = {role: results[query] for role, query in plan.queries.items()}
        try:
            readings.append(
                judge(plan.guardrail, answer_set, plan.queries, now, max_age_s, plan.mode,
                      max_skew_s=max_skew_s)
            )
        except Exception as error:  # a bug here must not stop the guardrail loop
            readings.append(
                GuardrailReading(
                    name=plan.guardrail.name,
                    status="cant_evaluate",
                    detail=f"evaluation failed: {_error_text(error)}",
                    queries=dict(plan.queries),
                    error=_error_text(error),
                    ts=now,
                    mode=plan.mode,
                )
            )
    return readings


def evaluate(
    source: MetricsSource,
    guardrail: GuardrailSettings,
    service: str,
    now: datetime,
    max_age_s: float,
    mode: Mode = "canary",
    executor: Executor | None = None,
    timeout_s: float | None = None,
    max_skew_s: float = DEFAULT_CLOCK_SKEW_S,
) -> GuardrailReading:
    """Evaluate one guardrail (its queries concurrently). Never raises for source failures."""
    return evaluate_all(
        source, [guardrail], service, now, max_age_s, mode, executor=executor,
        timeout_s=timeout_s, max_skew_s=max_skew_s,
    )[0]


# --- consecutive breaches ------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """Something the timeline should record about one guardrail.

    Either its status changed (``previous != status``), or its breach count just reached
    ``consecutive`` (``sustained``), or both at once.
    """

    name: str
    previous: GuardrailStatus
    status: GuardrailStatus
    breaches: int
    consecutive: int
    sustained: bool
    reading: GuardrailReading | None = None

    @property
    def changed(self) -> bool:
        return self.previous != self.status

    def record(self, on_breach: str | None = None,
               shadow: bool | None = None) -> GuardrailChanged:
        """The ``guardrail_status_changed`` record of this transition, with the reading's
        figures (and how the guardrail acts on a sustained breach, and whether it is a shadow
        that never acts)."""
        reading = self.reading
        figures = reading.why() if reading is not None else {}
        return GuardrailChanged(name=self.name, status=self.status, previous=self.previous,
                                breaches=self.breaches, consecutive=self.consecutive,
                                sustained=self.sustained, on_breach=on_breach,
                                shadow=shadow or None, **figures)

    def to_payload(self) -> dict[str, Any]:
        """The stored fields of :meth:`record` (without ``on_breach``)."""
        return self.record().to_payload()


class BreachTracker:
    """Counts consecutive breaching evaluations per guardrail.

    Reset semantics: a ``breach`` adds one; a ``healthy`` reading resets the count to zero;
    ``warn``, ``insufficient`` and ``cant_evaluate`` leave it as it is (a canary flapping
    between the warn band and a breach is still breaching). So breach, can't-evaluate, breach,
    breach is sustained at ``consecutive = 3``: losing the metrics for a moment cannot restart the
    count of a real breach, and a reading we cannot judge is never taken as healthy.
    The sustained signal fires once, when the count reaches ``consecutive``; it fires again only
    after a healthy reading reset the count and breaches built up again.
    """

    def __init__(self, guardrails: Sequence[GuardrailSettings] | Mapping[str, int]) -> None:
        if isinstance(guardrails, Mapping):
            self._consecutive = dict(guardrails)
        else:
            self._consecutive = {g.name: g.consecutive for g in guardrails}
        self._breaches: dict[str, int] = {}
        self._status: dict[str, GuardrailStatus] = {}

    def consecutive(self, name: str) -> int:
        # An unknown guardrail acts on its first breach: the cautious default.
        return self._consecutive.get(name, 1)

    def breaches(self, name: str) -> int:
        return self._breaches.get(name, 0)

    def status(self, name: str) -> GuardrailStatus:
        return self._status.get(name, "unknown")

    def is_sustained(self, name: str) -> bool:
        return self.breaches(name) >= self.consecutive(name)

    def budget(self, name: str) -> str:
        """E.g. ``breaches 1/3``."""
        return f"breaches {self.breaches(name)}/{self.consecutive(name)}"

    def restore(self, name: str, status: GuardrailStatus, breaches: int) -> None:
        """Resume from recorded state (e.g. the last ``guardrail_status_changed`` event)."""
        self._status[name] = status
        self._breaches[name] = max(0, breaches)

    def update(self, readings: Sequence[GuardrailReading]) -> list[Transition]:
        """Fold one evaluation cycle in; return what changed, in the readings' order."""
        transitions: list[Transition] = []
        for reading in readings:
            name = reading.name
            previous = self.status(name)
            count = self.breaches(name)
            if reading.status == "breach":
                count += 1
            elif reading.status == "healthy":
                count = 0
            self._breaches[name] = count
            self._status[name] = reading.status
            needed = self.consecutive(name)
            sustained = reading.status == "breach" and count == needed
            if sustained or previous != reading.status:
                transitions.append(
                    Transition(
                        name=name,
                        previous=previous,
                        status=reading.status,
                        breaches=count,
                        consecutive=needed,
                        sustained=sustained,
                        reading=reading,
                    )
                )
        return transitions


__all__ = [
    "BreachTracker",
    "Comparison",
    "GuardrailReading",
    "Mode",
    "Transition",
    "compare",
    "evaluate",
    "evaluate_all",
    "format_value",
    "judge",
    "judged_by",
    "judgement_rules",
    "resolve_query",
    "stage_samples",
    "stage_start",
    "with_comparison",
]

"""The benchmark harness: series of samples, figures with their baselines, caps, the table and
``bench-results.json``.

A :class:`Series` is what one thing measured several times gave (seconds, ms, MB, %). A
:class:`Figure` is one line of the table: a value compared with a target (or information only,
without a target), the baseline measured in the same run, the spread of the repetitions, and the
1-minute load average when it was taken. A ratio figure is the median of the per-repetition
ratios measured thing ÷ baseline, the two measured one right after the other (interleaved), so
both see the same machine.

A measurement that reaches its wall-clock cap is recorded, not dropped: its value is a lower
bound, it is a MISS, and its note says so.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Series:
    """Repeated measurements of one thing, in ``unit``; ``capped`` when one reached its cap
    (that sample, the cap's elapsed time, is then a lower bound)."""

    what: str
    unit: str
    samples: list[float] = field(default_factory=list)
    capped: bool = False
    cap_note: str = ""

    def add(self, value: float) -> None:
        self.samples.append(value)

    def add_capped(self, elapsed: float, note: str) -> None:
        self.samples.append(elapsed)
        self.capped = True
        self.cap_note = note

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def statistic(self, name: str) -> float:
        return percentile(self.samples, 0.95) if name == "p95" else self.median

    def to_json(self, statistic: str = "median") -> dict[str, Any]:
        """``value`` is the statistic the figure uses (median, or p95 for a p95 figure)."""
        return {"what": self.what, "unit": self.unit, "value": _round(self.statistic(statistic)),
                "statistic": statistic, "median": _round(self.median),
                "samples": [_round(s) for s in self.samples], "capped": self.capped}


@dataclass
class Figure:
    """One figure of the table and of ``bench-results.json``."""

    name: str
    unit: str
    target: float | None  # None: for information, no target
    value: float | None = None
    baseline: Series | None = None
    measured: Series | None = None
    spread: tuple[float, float] | None = None  # (min, max) of the per-repetition figures
    repetitions: int = 0
    load: float | None = None
    load_before: float | None = None
    note: str = ""
    capped: bool = False
    error: str = ""  # the benchmark itself failed: no value
    statistic: str = "median"  # what of the samples the value is: median, p95, ratio, total

    @property
    def ok(self) -> bool | None:
        if self.target is None:
            return None
        if self.value is None or self.capped or self.error:
            return False
        return self.value <= self.target

    @property
    def _baseline_statistic(self) -> str:
        return "p95" if self.statistic == "p95" else "median"

    @property
    def baseline_value(self) -> float | None:
        if self.baseline is None or not self.baseline.samples:
            return None
        return self.baseline.statistic(self._baseline_statistic)

    @property
    def status(self) -> str:
        if self.error:
            return "ERROR"
        if self.value is None:
            return "skipped"
        if self.target is None:
            return "info"
        return "ok" if self.ok else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _round(self.value),
            "unit": self.unit,
            "target": self.target,
            "ok": self.ok,
            "statistic": self.statistic,
            "baseline": self.baseline.to_json(self._baseline_statistic) if self.baseline
            else None,
            "spread": ({"min": _round(self.spread[0]), "max": _round(self.spread[1])}
                       if self.spread else None),
            "load": None if self.load is None else round(self.load, 2),
            "load_before": None if self.load_before is None else round(self.load_before, 2),
            "repetitions": self.repetitions,
            "measured": self.measured.to_json() if self.measured else None,
            "capped": self.capped,
            "note": self.note,
            **({"error": self.error} if self.error else {}),
        }


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    magnitude = abs(value)
    digits = 4 if magnitude < 1 else 3 if magnitude < 100 else 1
    return round(value, digits)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def load_1m() -> float:
    return os.getloadavg()[0]


def ratio(name: str, target: float | None, measured: Series, baseline: Series,
          note: str = "") -> Figure:
    """measured ÷ baseline, repetition by repetition; the figure is the median ratio.

    With a capped measured series, the capped sample over the baseline's median is the value
    (a lower bound), and the figure is a MISS whatever its size.
    """
    if not measured.samples or not baseline.samples:
        raise ValueError(f"{name}: nothing measured")
    if len(measured.samples) == len(baseline.samples):  # each against its neighbour in time
        ratios = [m / b for m, b in zip(measured.samples, baseline.samples, strict=True) if b > 0]
    else:  # a capped series stopped early: against the baseline's median
        ratios = [m / baseline.median for m in measured.samples]
    notes = [note] if note else []
    if measured.capped:
        value = measured.samples[-1] / baseline.median
        notes.append(f"lower bound: {measured.cap_note}")
    else:
        value = statistics.median(ratios)
    spread = (min(ratios), max(ratios)) if ratios else None
    return Figure(name, "×", target, value=value, baseline=baseline, measured=measured,
                  spread=spread, repetitions=len(measured.samples), note="; ".join(notes),
                  capped=measured.capped, statistic="median of ratios")


def absolute(name: str, target: float | None, measured: Series,
             baseline: Series | None = None, *, statistic: str = "median",
             value: float | None = None, note: str = "") -> Figure:
    """A figure in the measured series' own unit: its median, its p95, or a given ``value``
    (``statistic`` then says what it is)."""
    if not measured.samples:
        raise ValueError(f"{name}: nothing measured")
    if value is None:
        value = measured.statistic(statistic)
    notes = [note] if note else []
    if measured.capped:
        value = max(value, measured.samples[-1])
        notes.append(f"lower bound: {measured.cap_note}")
    return Figure(name, measured.unit, target, value=value, baseline=baseline, measured=measured,
                  spread=(min(measured.samples), max(measured.samples)),
                  repetitions=len(measured.samples), note="; ".join(notes),
                  capped=measured.capped, statistic=statistic)


# --- output --------------------------------------------------------------------------------------


def format_number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = (f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10
            else f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}")
    if unit == "×":
        return f"{text}×"
    return f"{text} {unit}" if unit else text


def table(figures: Sequence[Figure]) -> str:
    """The figures as a Markdown table (readable in a terminal and pasteable into the README),
    then their notes."""
    header = ["figure", "value", "target", "", "measured", "baseline (same run)", "spread", "n",
              "load"]
    rows = []
    notes = []
    for figure in figures:
        value = format_number(figure.value, figure.unit)
        if figure.capped and figure.value is not None:
            value = "≥ " + value
        target = "—" if figure.target is None else "≤ " + format_number(figure.target,
                                                                        figure.unit)
        measured = "—"
        if figure.measured is not None and figure.measured.samples:
            measured = format_number(figure.measured.median, figure.measured.unit)
        baseline = "—"
        if figure.baseline is not None and figure.baseline_value is not None:
            baseline = format_number(figure.baseline_value, figure.baseline.unit)
        spread = "—"
        if figure.spread is not None:
            spread = (f"{format_number(figure.spread[0], figure.unit)}–"
                      f"{format_number(figure.spread[1], figure.unit)}")
        load = "—" if figure.load is None else f"{figure.load:.2f}"
        rows.append([figure.name, value, target, figure.status, measured, baseline, spread,
                     str(figure.repetitions or "—"), load])
        text = figure.error or figure.note
        if text:
            notes.append(f"- `{figure.name}`: {text}")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(row) for row in rows]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def write_results(path: Path, figures: Sequence[Figure]) -> None:
    path.write_text(json.dumps([f.to_json() for f in figures], indent=2, ensure_ascii=False)
                    + "\n", encoding="utf-8")

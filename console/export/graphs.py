"""Graphs for the PIR: each guardrail's canary and baseline against its limit, as a Mermaid
``xychart-beta`` block (GitHub and GitLab render it in the markdown; elsewhere it stays readable
text).

The samples are bucketed to at most :data:`MAX_POINTS` points along the x axis (the canary's
worst value in a bucket, the baseline's mean, the limit's last), each labelled with its time
(HH:MM UTC). A Mermaid xychart has no annotations, so the moments that matter are written into
the label of the bucket they fall in: a stage change (``→10%``), the rollback (``ROLLBACK``) and
its verdict (``VERIFIED`` / ``NOT VERIFIED``). A bucket without a canary sample (no canary
traffic: before the first stage, after the rollback) draws the canary at 0, and says so under
the chart.

Everything written inside the block comes from the record or the config, and is reduced to
characters Mermaid takes inside a quoted label.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from operator import itemgetter, mul

from console.model import Event, Kind

MAX_POINTS = 12
#: Canary red, baseline blue, limit grey (Mermaid's default palette draws them alike).
PALETTE = ('%%{init: {"themeVariables": {"xyChart": '
           '{"plotColorPalette": "#d62728, #1f77b4, #7f7f7f"}}}}%%')
TRACKS = ("canary", "baseline", "limit")
#: The kinds of the events a chart marks on its time axis (:func:`_moments`).
MARKED = (Kind.WEIGHT_SET, Kind.ROLLBACK_REQUESTED, Kind.ROLLBACK_VERIFIED,
          Kind.ROLLBACK_NOT_VERIFIED)
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._:%/()+→✓–-]")


@dataclass(frozen=True)
class Chart:
    """One guardrail's chart: its labels and lines, and the Mermaid text."""

    guardrail: str
    labels: list[str]
    lines: dict[str, list[float]]  # track → one value per label
    unit: str
    mermaid: str


def label(text: str) -> str:
    """Text safe inside a quoted Mermaid label: no quotes, brackets or line breaks."""
    return _UNSAFE.sub("", text.replace("\n", " ")).strip()[:60]


def charts(samples: Mapping[str, Sequence[tuple[float, float | None]]],
           events: Sequence[Event], units: Mapping[str, tuple[str, float]]) -> list[Chart]:
    """A chart per guardrail with a canary series, in name order. ``units``: guardrail → (unit,
    scale), as the config shows its values."""
    by_guardrail: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for series, points in samples.items():
        guardrail, _, track = series.rpartition("/")
        if not guardrail or track not in TRACKS:
            continue
        found = known(points)
        if found:
            by_guardrail.setdefault(guardrail, {})[track] = sorted(found)
    moments = _moments(events)
    out = []
    for guardrail in sorted(by_guardrail):
        tracks = by_guardrail[guardrail]
        if "canary" not in tracks:
            continue
        unit, scale = units.get(guardrail, ("", 1.0))
        out.append(_chart(guardrail, tracks, moments, unit, scale))
    return out


def known(points: Sequence[tuple[float, float | None]]) -> list[tuple[float, float]]:
    """The points with a finite value (None: no value was taken; NaN and infinities are no
    measurement), in their order."""
    values = list(map(_VALUE, points))
    if None not in values and math.isfinite(sum(values)):  # each finite (NaN or ∞ would show)
        return list(points)  # type: ignore[arg-type]  # no None among them
    return [(ts, v) for ts, v in points if v is not None and math.isfinite(v)]


_TIME, _VALUE = itemgetter(0), itemgetter(1)


def _moments(events: Sequence[Event]) -> list[tuple[float, str]]:
    """(unix time, marker) of the moments a chart marks."""
    found: list[tuple[float, str]] = []
    for event in events:
        if event.kind == Kind.WEIGHT_SET:
            percent = event.payload.get("percent")
            if isinstance(percent, int) and not isinstance(percent, bool):
                found.append((event.ts.timestamp(), f"→{percent}%"))
        elif event.kind == Kind.ROLLBACK_REQUESTED:
            found.append((event.ts.timestamp(), "ROLLBACK"))
        elif event.kind == Kind.ROLLBACK_VERIFIED:
            found.append((event.ts.timestamp(), "VERIFIED"))
        elif event.kind == Kind.ROLLBACK_NOT_VERIFIED:
            found.append((event.ts.timestamp(), "NOT VERIFIED"))
    return found


def _chart(guardrail: str, tracks: Mapping[str, list[tuple[float, float]]],
           moments: Sequence[tuple[float, str]], unit: str, scale: float) -> Chart:
    first = min(points[0][0] for points in tracks.values())
    last = max(points[-1][0] for points in tracks.values())
    count = MAX_POINTS if last > first else 1
    width = (last - first) / count if last > first else 1.0

    def bucket(ts: float) -> int:
        return min(count - 1, max(0, int((ts - first) / width))) if last > first else 0

    grouped = {track: _buckets(points, bucket, count, scale)
               for track, points in tracks.items()}
    lines: dict[str, list[float]] = {}
    for track in TRACKS:
        if track not in grouped:
            continue
        found: list[float | None] = [
            None if not items else _round(
                max(items) if track == "canary" else items[-1] if track == "limit"
                else sum(items) / len(items))
            for items in grouped[track]]
        if track == "canary":  # a canary without samples took no traffic
            lines[track] = [0.0 if value is None else value for value in found]
        else:  # a limit or a baseline holds until the next sample (the first, before it)
            known = [value for value in found if value is not None]
            previous = known[0] if known else 0.0
            values: list[float] = []
            for item in found:
                if item is not None:
                    previous = item
                values.append(previous)
            lines[track] = values
    short_axis = last - first < 3600
    window = (f"{datetime.fromtimestamp(first, UTC):%H:%M}–"
              f"{datetime.fromtimestamp(last, UTC):%H:%M} UTC")
    marks: dict[int, list[str]] = {}
    for ts, marker in moments:
        if first - width <= ts <= last + width:
            marks.setdefault(bucket(ts), []).append(marker)
    labels = []
    for index in range(count):
        start = datetime.fromtimestamp(first + index * width, UTC)
        # Within an hour the axis shows minutes and seconds (the title says which hour).
        text = f"{start:%M:%S}" if short_axis else f"{start:%H:%M}"
        if index in marks:
            text += " " + " ".join(marks[index])
        text = label(text)
        while text in labels:  # a category axis merges equal labels: keep each bucket apart
            text += "."
        labels.append(text)
    top = max((max(values) for values in lines.values() if values), default=1.0)
    top = _nice(top * 1.1 if top > 0 else 1.0)
    shown_unit = label(unit) or "value"
    body = [
        PALETTE,
        "xychart-beta",
        f'    title "{label(guardrail)} ({shown_unit}), {label(window)}"',
        "    x-axis [" + ", ".join(f'"{text}"' for text in labels) + "]",
        f'    y-axis "{shown_unit}" 0 --> {_number(top)}',
    ]
    for track in TRACKS:
        if track in lines:
            body.append("    line [" + ", ".join(_number(v) for v in lines[track]) + "]")
    return Chart(guardrail, labels, lines, unit, "\n".join(body))


def _buckets(points: list[tuple[float, float]], bucket: Callable[[float], int], count: int,
             scale: float) -> list[list[float]]:
    """The values of ``points`` (in time order), scaled, in the ``count`` buckets that
    ``bucket`` puts them in."""
    scaled = list(map(mul, map(_VALUE, points), repeat(scale)))
    if count == 1:
        return [scaled]
    times = list(map(_TIME, points))
    if math.isfinite(sum(times)):
        # bucket() never decreases with the time: each bucket is a run of the points, found
        # by bisection (a long incident has a sample per poll)
        bounds = [0, *(bisect_left(times, index, key=bucket) for index in range(1, count)),
                  len(times)]
        return [scaled[bounds[index]:bounds[index + 1]] for index in range(count)]
    buckets: list[list[float]] = [[] for _ in range(count)]  # a time that is no number
    for ts, value in zip(times, scaled, strict=True):
        buckets[bucket(ts)].append(value)
    return buckets


def _round(value: float) -> float:
    if value == 0:
        return 0.0
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return round(value, digits)


def _nice(value: float) -> float:
    """A round upper bound for the y axis (1, 2 or 5 times a power of ten)."""
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    text = f"{value:.6g}"
    return text if "e" not in text else f"{value:.6f}".rstrip("0").rstrip(".")


def parse(block: str) -> dict[str, object]:
    """A strict reader of the subset of ``xychart-beta`` written here (the tests check each
    chart with it): the title, the x labels, the y range and the lines; raises ValueError on
    anything else, or when a line's length differs from the labels'."""
    lines = [line.strip() for line in block.strip().split("\n")]
    if lines and lines[0].startswith("%%{init:") and lines[0].endswith("}%%"):
        lines = lines[1:]  # the theme directive
    if not lines or lines[0] != "xychart-beta":
        raise ValueError("not an xychart-beta block")
    result: dict[str, object] = {"lines": []}
    for line in lines[1:]:
        if match := re.fullmatch(r'title "([^"\[\]]*)"', line):
            result["title"] = match.group(1)
        elif match := re.fullmatch(r"x-axis \[(.*)\]", line):
            names = re.findall(r'"([^"\[\]]*)"', match.group(1))
            if ", ".join(f'"{x}"' for x in names) != match.group(1):
                raise ValueError(f"bad x-axis: {line}")
            result["labels"] = names
        elif match := re.fullmatch(r'y-axis "([^"\[\]]*)" (-?[\d.]+) --> (-?[\d.]+)', line):
            low, high = float(match.group(2)), float(match.group(3))
            if not low < high:
                raise ValueError(f"empty y range: {line}")
            result["y"] = (match.group(1), low, high)
        elif match := re.fullmatch(r"line \[(.*)\]", line):
            drawn = [float(v) for v in match.group(1).split(", ")]
            result["lines"].append(drawn)  # type: ignore[attr-defined]
        else:
            raise ValueError(f"not understood: {line}")
    labels = result.get("labels")
    if not isinstance(labels, list) or "y" not in result or "title" not in result:
        raise ValueError("a chart needs a title, an x-axis and a y-axis")
    for series in result["lines"]:  # type: ignore[attr-defined]
        if len(series) != len(labels):
            raise ValueError("a line has not one value per label")
        _, low, high = result["y"]  # type: ignore[misc]
        if any(not low <= v <= high for v in series):
            raise ValueError("a value is outside the y range")
    return result

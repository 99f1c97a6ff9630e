"""The PIR's Mermaid graphs: one per guardrail, canary and baseline against the limit, the
stage changes and the rollback marked; each block read back by a strict parser of the
xychart-beta subset (and by the Mermaid CLI when it is installed)."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from console.export.graphs import MAX_POINTS, _buckets, charts, known, label, parse
from console.export.pir import render_pir
from tests.export.fixtures import build_promoted, build_verified

BLOCK = re.compile(r"```mermaid\n(.*?)\n```", re.S)


def test_a_chart_per_guardrail_with_the_moments_marked(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    text = render_pir(built.events, config=built.config, samples=built.samples, now=built.now)
    blocks = BLOCK.findall(text)
    assert len(blocks) == 2
    error_rate = parse(blocks[0])
    assert error_rate["title"] == "error-rate (%), 22:11–22:24 UTC"
    labels = error_rate["labels"]
    assert isinstance(labels, list) and len(labels) == MAX_POINTS
    assert len(set(labels)) == len(labels)  # a category axis would merge equal labels
    marks = " ".join(labels)
    for moment in ("→10%", "ROLLBACK", "VERIFIED", "→0%"):
        assert moment in marks, moment
    canary, baseline, limit = error_rate["lines"]  # type: ignore[misc]
    assert max(canary) == 6.1 and set(limit) == {2.0}  # in % (the config's scale)
    assert canary[-1] == 0  # no canary traffic after the rollback
    assert 0.41 <= baseline[-1] <= 0.42


def test_without_samples_there_is_no_chart(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    assert charts({}, built.events, {}) == []
    text = render_pir(built.events, config=built.config, samples={}, now=built.now)
    assert "```mermaid" not in text


def test_labels_cannot_break_out_of_the_block() -> None:
    assert label('err"or]\n[x') == "error x"
    assert label("a" * 100) == "a" * 60


def test_the_parser_refuses_what_mermaid_would_not_take() -> None:
    good = ('xychart-beta\n    title "t (%)"\n    x-axis ["a", "b"]\n'
            '    y-axis "%" 0 --> 10\n    line [1, 2]')
    assert parse(good)["labels"] == ["a", "b"]
    for bad in (good.replace("line [1, 2]", "line [1]"),
                good.replace("x-axis", "x axis"),
                good.replace("0 --> 10", "10 --> 0"),
                good.replace("line [1, 2]", "line [1, 20]"),
                good.replace('"b"', '"b"]"')):
        with pytest.raises(ValueError):
            parse(bad)


def test_a_multi_day_incident_charts_its_canary_window(tmp_path: Path) -> None:
    built = build_promoted(tmp_path)
    (chart,) = charts(built.samples, built.events, {"error-rate": ("%", 100.0)})
    parsed = parse(chart.mermaid)
    assert "→1% " in " ".join(parsed["labels"]) + " "  # type: ignore[arg-type]
    assert "→10%" in " ".join(parsed["labels"])  # type: ignore[arg-type]


_TIMES = st.floats(-1e10, 1e10) | st.sampled_from([0.0, 1.0, 1.5, 2.0])  # equal times too
#: Values, often one that is no measurement (None, NaN, ±∞), or a sum of them that is not finite.
_VALUES = st.floats(-1e6, 1e6) | st.sampled_from([None, math.nan, math.inf, -math.inf, 1e308])


@given(st.lists(st.tuples(_TIMES | st.sampled_from([math.inf, math.nan]), _VALUES)))
@example([(1.0, 2.0), (2.0, math.nan)])
@example([(1.0, 1e308), (2.0, 1e308)])
def test_the_known_points_are_those_with_a_finite_value(
        points: list[tuple[float, float | None]]) -> None:
    found = known(points)
    assert found == [(ts, v) for ts, v in points if v is not None and math.isfinite(v)]


@given(st.lists(st.tuples(_TIMES, st.floats(-1e6, 1e6)), min_size=1),
       st.sampled_from([1.0, 100.0, 0.001, -2.0]), st.sampled_from([None, math.inf, math.nan]))
def test_the_buckets_are_those_a_point_at_a_time_would_fill(
        points: list[tuple[float, float]], scale: float, odd: float | None) -> None:
    """A chart's buckets, found by bisection in the points' time order, are the ones each
    point's own bucket makes; a time that is no number fails as it would there."""
    points = sorted(points)
    if odd is not None:  # in the middle (where a NaN sorts): a time no bisection would look at
        points.insert(len(points) // 2, (odd, 1.0))
    first, last = points[0][0], points[-1][0]
    count = MAX_POINTS if last > first else 1
    width = (last - first) / count if last > first else 1.0

    def bucket(ts: float) -> int:  # as _chart()
        return min(count - 1, max(0, int((ts - first) / width))) if last > first else 0

    expected: list[list[float]] | type[Exception] = [[] for _ in range(count)]
    try:
        for ts, value in points:
            expected[bucket(ts)].append(value * scale)  # type: ignore[index]
    except (ValueError, OverflowError) as error:
        expected = type(error)
    if isinstance(expected, list):
        assert _buckets(points, bucket, count, scale) == expected
    else:
        with pytest.raises(expected):
            _buckets(points, bucket, count, scale)


@pytest.mark.skipif(shutil.which("mmdc") is None and not os.environ.get("WARROOM_MMDC"),
                    reason="the Mermaid CLI (mmdc) is not installed: the parser test stands in")
def test_mermaid_cli_renders_each_chart(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    text = render_pir(built.events, config=built.config, samples=built.samples, now=built.now)
    mmdc = os.environ.get("WARROOM_MMDC") or shutil.which("mmdc") or "mmdc"
    for index, block in enumerate(BLOCK.findall(text)):
        source, target = tmp_path / f"chart{index}.mmd", tmp_path / f"chart{index}.svg"
        source.write_text(block, encoding="utf-8")
        result = subprocess.run([mmdc, "-i", str(source), "-o", str(target)],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-500:]
        assert "<svg" in target.read_text(encoding="utf-8")

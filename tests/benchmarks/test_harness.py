"""The benchmark harness cannot rot: its machinery on something tiny, in seconds.

`make bench` itself takes minutes and reports figures, not pass or fail; these tests run its
pieces (a real program on a pty read by pyte, the cap, the statistics, the JSON, the incident
generator) on the bare Textual app and a 300-event incident. Generous caps: they must pass on a
busy machine, and they assert no speed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.state import fold
from console.store import SCHEMA_VERSION, Store
from tests.benchmarks import harness, incidents, run
from tests.benchmarks.console_figures import BARE_TITLE
from tests.benchmarks.context import Context, interleave
from tests.benchmarks.harness import Series
from tests.benchmarks.terminal import ScreenTest, shows, titled

FIELDS = {"name", "value", "unit", "target", "ok", "baseline", "spread", "load"}


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    monkeypatch.setenv("WARROOM_BENCH_CACHE", str(tmp_path / "cache"))
    context = Context.create(budget_s=300)
    context.group_deadline = time.monotonic() + 300
    try:
        yield context
    finally:
        context.close()


def bare_startup(ctx: Context, test: ScreenTest | None = None, cap: float = 120.0) -> float:
    return ctx.time_to_screen(ctx.app("bare"), test or titled(BARE_TITLE), cap,
                              "the bare app's pane title")


def test_a_real_program_is_measured_and_written_as_a_figure(ctx: Context, tmp_path: Path
                                                            ) -> None:
    measured = Series("bare app, once", "s")
    baseline = Series("bare app, again", "s")
    interleave(1, [(baseline, lambda _: bare_startup(ctx)),
                   (measured, lambda _: bare_startup(ctx))])
    assert len(measured.samples) == len(baseline.samples) == 1
    assert not measured.capped and 0 < measured.samples[0] < 120

    figure = harness.ratio("startup_ratio", 1.3, measured, baseline)
    out = tmp_path / "bench-results.json"
    harness.write_results(out, [figure])
    [record] = json.loads(out.read_text())
    assert set(record) >= FIELDS
    assert record["name"] == "startup_ratio" and record["unit"] == "×"
    assert record["value"] == pytest.approx(measured.samples[0] / baseline.samples[0], rel=1e-3)
    assert record["baseline"]["samples"] and record["spread"]["min"] <= record["spread"]["max"]
    assert "startup_ratio" in harness.table([figure])


def test_a_measurement_past_its_cap_is_a_miss_whose_value_is_a_lower_bound(ctx: Context
                                                                           ) -> None:
    never = Series("bare app until a text it never shows", "s")
    interleave(3, [(never, lambda _: bare_startup(ctx, shows("a text nobody writes"), cap=1.0))])
    assert never.capped and len(never.samples) == 1  # capped once, not tried again
    assert never.samples[0] >= 1.0
    figure = harness.absolute("never_s", 60.0, never)
    assert figure.value is not None and figure.value <= 60.0
    assert figure.status == "MISS" and figure.ok is False  # under the target, yet a lower bound
    assert "lower bound" in figure.note
    assert "≥" in harness.table([figure])


def test_statistics() -> None:
    assert harness.percentile([1, 2, 3, 4, 5], 0.95) == pytest.approx(4.8)
    figure = harness.ratio("r", 2.0, Series("m", "s", [2.0, 4.0, 9.0]),
                           Series("b", "s", [1.0, 2.0, 3.0]))
    assert figure.value == 2.0 and figure.spread == (2.0, 3.0) and figure.status == "ok"
    info = harness.absolute("i", None, Series("m", "ms", [1.0, 3.0]))
    assert info.status == "info" and info.ok is None
    broken = harness.Figure("b", "s", 1.0, error="benchmark failed: no screen")
    assert broken.status == "ERROR" and broken.to_json()["ok"] is False


def test_only_selects_by_figure_or_group_and_refuses_unknown_names() -> None:
    assert [g.name for g in run.select("startup_ratio,exports")] == ["startup", "exports"]
    assert len(run.select("")) == len(run.GROUPS)
    with pytest.raises(SystemExit, match="unknown"):
        run.select("startup_ratio,no_such_figure")


def test_a_generated_incident_verifies_folds_and_is_cached_by_schema(tmp_path: Path) -> None:
    path = incidents.incident_db(300, directory=tmp_path)
    assert f"schema{SCHEMA_VERSION}" in str(path)
    built = path.stat().st_mtime_ns
    assert incidents.incident_db(300, directory=tmp_path) == path
    assert path.stat().st_mtime_ns == built  # found, not rebuilt
    with Store(path, readonly=True) as store:
        assert store.verify(incidents.INCIDENT_ID) == (300, None)
        events = store.events(incidents.INCIDENT_ID)
        state = fold(events)
        kinds = {event.kind for event in events}
        assert store.series_names(incidents.INCIDENT_ID)
    assert len(events) == 300 and not state.closed and state.canary_percent == 10
    assert not state.missing_roles and state.checklist_acked
    assert {"guardrail_status_changed", "note_added", "canary_weight_set"} <= kinds


def test_a_figure_never_measured_keeps_its_unit() -> None:
    from tests.benchmarks.run import unit_of

    names = ("key_to_redrawn_p95_ms", "rss_100k_mb", "idle_cpu_watch_percent", "pir_export_100k_s",
             "startup_ratio")
    assert [unit_of(n) for n in names] == ["ms", "MB", "%", "s", "×"]

"""The PIR's Impact section made from what the export's checking child worked out of the metric
samples (the figures of each series and the charts: :class:`console.export.record.Measured`)
is the one made from the samples in this process — and where the child cannot work it out (a
guardrail whose limits come from the guardrail changes, which it does not decode), it sends
the samples and the PIR works it out itself, as without a child."""

from __future__ import annotations

import io
import os
import sqlite3
from pathlib import Path

import pytest

from console.export import Configured, LateConfig, _CheckingChild, export, render
from console.export.graphs import MARKED, charts
from console.export.record import (
    DocumentSettings,
    Measured,
    build_record,
    measure,
    measured_with,
    series_figures,
)
from console.model import Kind
from console.store import Store
from tests.export.fixtures import (
    BUILDERS,
    BuiltIncident,
    build_verified,
)


def _without(db: Path, where: str) -> None:
    """Samples taken out of a built incident's store, with the sqlite3 shell."""
    conn = sqlite3.connect(db)
    conn.execute(f"DELETE FROM samples WHERE {where}")
    conn.commit()
    conn.close()


def _stored_samples(db: Path) -> dict[str, list[tuple[float, float | None]]]:
    with Store(db, readonly=True) as store:
        return {name: store.samples(1, name) for name in store.series_names(1)}


def _in_process(built: BuiltIncident) -> str:
    return render("pir", built.events, config=built.config, samples=_stored_samples(built.path),
                  now=built.now)


def _with_child(built: BuiltIncident, monkeypatch: pytest.MonkeyPatch, *,
                late: bool) -> tuple[str, list[object]]:
    """The PIR exported with its checking child (the configuration given, or read by the
    child as ``warroom export`` does), and what the child sent of the samples; the child
    is gone once the export is written."""
    sent: list[object] = []
    children: list[int] = []
    real = _CheckingChild.measured

    def spied(self: _CheckingChild) -> object:
        got = real(self)
        sent.append(got)
        children.append(self.pid)
        return got

    monkeypatch.setattr(_CheckingChild, "measured", spied)
    out = io.StringIO()
    with Store(built.path, readonly=True) as store:
        if late:
            read = LateConfig(lambda: Configured(DocumentSettings.of(built.config)))
            export("pir", store, 1, out, now=built.now, parallel=True, late=read)
        else:
            export("pir", store, 1, out, config=built.config, now=built.now, parallel=True)
    for pid in children:
        with pytest.raises(ChildProcessError):  # reaped
            os.waitpid(pid, os.WNOHANG)
    return out.getvalue(), sent


@pytest.mark.parametrize("late", [False, True], ids=["config", "late-config"])
@pytest.mark.parametrize("variant", sorted(BUILDERS))
def test_the_child_works_out_what_the_pir_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                variant: str, late: bool) -> None:
    built = BUILDERS[variant](tmp_path)
    text, sent = _with_child(built, monkeypatch, late=late)
    assert text == _in_process(built)
    (measured,) = sent
    assert isinstance(measured, Measured)  # a few figures and charts, not the samples
    assert measured.charts and measured.charts[0].guardrail == "error-rate"
    assert [f.series for f in measured.figures][:2] == ["error-rate/baseline",
                                                        "error-rate/canary"]
    labels = " ".join(" ".join(chart.labels) for chart in measured.charts)
    if variant != "promoted":  # the rollback and its verdict, marked from the checked rows
        assert "ROLLBACK" in labels
        assert ("NOT VERIFIED" if variant == "not_verified" else "VERIFIED") in labels
    assert "→10%" in labels


@pytest.mark.parametrize("late", [False, True], ids=["config", "late-config"])
def test_a_guardrail_without_a_limit_series_is_worked_out_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late: bool) -> None:
    """The limits of p95-latency then come from the guardrail changes: the child sends the
    samples, and the PIR is the one made from them here."""
    built = build_verified(tmp_path)
    _without(built.path, "series = 'p95-latency/limit'")
    text, sent = _with_child(built, monkeypatch, late=late)
    assert text == _in_process(built)
    (samples,) = sent
    assert isinstance(samples, dict) and "p95-latency/limit" not in samples
    assert samples == _stored_samples(built.path)
    # the limit the guardrail reported (0.435 s, then 0.42 s), from its changes
    assert "| p95-latency/canary | 54 | 0.42 s |" in text


def test_without_samples_the_child_says_so(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    built = build_verified(tmp_path)
    _without(built.path, "1")
    text, sent = _with_child(built, monkeypatch, late=True)
    assert text == _in_process(built)
    assert sent == [Measured([], [])]
    assert "_No metric samples were recorded for this incident._" in text


def test_measured_is_the_figures_and_the_charts(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    record = build_record(built.events, built.config)
    units = {name: (unit.unit, unit.scale) for name, unit in record.units.items()}
    marked = record.of(*MARKED)
    assert [e.kind for e in marked] == [e.kind for e in built.events if e.kind in MARKED]
    whole = measure(record, built.samples)
    assert whole == Measured(series_figures(record, built.samples),
                             charts(built.samples, marked, units))
    # Without the guardrail changes at hand, only where no guardrail needs them.
    assert measured_with(built.samples, record.units, marked, None) == whole
    no_limit = {k: v for k, v in built.samples.items() if k != "error-rate/limit"}
    assert measured_with(no_limit, record.units, marked, None) is None
    changes = record.of(Kind.GUARDRAIL_CHANGED)
    assert measured_with(no_limit, record.units, marked, changes) == measure(record, no_limit)


@pytest.mark.parametrize("scenario", ["bad", "good"])
def test_the_demos_pir_with_the_child_is_the_one_in_the_readme(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str) -> None:
    from tests.export import demo_runs

    db = tmp_path / f"{scenario}.db"
    pir, _ = demo_runs.run(scenario, db)
    with Store(db, readonly=True) as store:
        events = store.require_events(1)
    built = BuiltIncident(1, events, {}, demo_runs._config(scenario), demo_runs.EXPORT_NOW, db)
    text, sent = _with_child(built, monkeypatch, late=True)
    assert text == pir
    assert isinstance(sent[0], Measured) and sent[0].charts


def test_a_child_that_fails_after_its_verdict_leaves_the_samples_to_this_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child sends its verdict first (the PIR's first part is written meanwhile), then
    what it made of the samples: when that never comes, the verdict stands and the samples
    are read and worked out here."""
    import console.export

    def fails(*_: object) -> None:
        raise RuntimeError("the child fails after its verdict")

    built = build_verified(tmp_path)
    monkeypatch.setattr(console.export, "_measured_in_child", fails)  # in the forked child
    text, sent = _with_child(built, monkeypatch, late=True)
    assert sent == [None]
    assert text == _in_process(built)

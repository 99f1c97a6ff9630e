"""The PIR's "Why each verdict" part (issue 16, item 2): for the verdicts that decided something,
the queries as sent, each value, the limit, the rule and the samples it was judged on — from the
recorded status changes alone, and readable on a projector however long the record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.export import render
from console.export.why import MAX_ROWS
from console.model import Kind
from tests.rules.engine_rig import N, Rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(tmp_path, "rollback")
    rig.to_first_stage()
    yield rig
    rig.close()


def why(rig: Rig) -> str:
    pir = render("pir", rig.store.events(rig.incident), config=rig.config)
    start = pir.index("#### Why each verdict")
    return pir[start:pir.index("\n### ", start)]


def row(text: str, first_cell: str, containing: str) -> str:
    for line in text.splitlines():
        if line.startswith(f"| {first_cell} |") and containing in line:
            return line
    raise AssertionError(f"no row at {first_cell} with {containing!r} in:\n{text}")


def test_every_status_change_records_the_samples_it_was_judged_on(rig: Rig) -> None:
    rig.poll(0.05)
    rig.poll(0.06)  # the breach count moves: recorded too, with its samples
    first, second = rig.events(Kind.GUARDRAIL_CHANGED)[-2:]
    assert first.payload["samples"] == {"canary": [0.05], "baseline": [0.001],
                                        "evidence": [1000.0]}
    assert second.payload["samples"]["canary"] == [0.06]


def test_a_sustained_breach_says_why_it_rolled_back(rig: Rig) -> None:
    rig.poll(0.001)
    values = [0.03, 0.05, 0.04]
    for value in values:
        rig.poll(value)
    text = why(rig)
    # the query as sent, once
    assert '- canary: `sim:error_ratio{service="redaction-api", track="canary"}`' in text
    at = rig.events(Kind.GUARDRAIL_CHANGED)[-1].ts.strftime("%H:%M:%S")
    line = row(text, at, "sustained")
    assert f"BREACH {N}/{N}, sustained" in line
    assert "| 4.00% | 0.10% | 2.00% | max |" in line  # each value, the limit, the rule
    assert f"{N} polls in a row from" in line and "canary 3.00% – 5.00%" in line
    assert "evidence 1,000 requests" in line
    assert "triggered the automatic rollback" in line
    first = rig.events(Kind.GUARDRAIL_CHANGED)[-N].ts.strftime("%H:%M:%S")
    assert f"BREACH 1/{N}" in row(text, first, "BREACH 1/")


def test_the_verdict_in_force_at_an_advance_is_what_gated_it(rig: Rig) -> None:
    rig.poll(0.001)
    rig.clock.advance(600)
    rig.engine.advance()
    assert rig.engine.state.canary_percent == 10
    at = rig.events(Kind.GUARDRAIL_CHANGED)[0].ts.strftime("%H:%M:%S")
    line = row(why(rig), at, "healthy")
    assert "every limit holds" in line and "allowed the advance to 10%" in line


def test_a_flapping_guardrail_is_summarised(rig: Rig) -> None:
    for _ in range(MAX_ROWS + 5):
        rig.poll(0.001)
        rig.poll(None)  # can't evaluate: a verdict that matters each time
    text = why(rig)
    rows = [line for line in text.splitlines() if line.startswith("| ") and ":" in line[:6]]
    assert len(rows) == MAX_ROWS
    assert "5 more verdicts of error-ratio like these are not shown here" in text


def test_an_older_record_without_samples_says_so(rig: Rig) -> None:
    rig.store.append(rig.incident, Kind.GUARDRAIL_CHANGED, "warroom", {
        "name": "error-ratio", "status": "breach", "previous": "unknown", "canary": 0.05,
        "limit": 0.02, "detail": "canary 5.00% > limit 2.00% (max)", "breaches": 1,
        "consecutive": N, "on_breach": "rollback"}, ts=rig.clock.now())
    assert "not recorded (older record)" in why(rig)

"""When the change is the fix for an ongoing harm, rolling it back brings the harm back: the
state, the header, the rules of closing and the PIR all say so (issue 14, Deliver 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console import policy
from console.export.pir import render_pir
from console.model import Kind
from console.state import fold
from tests.export.fixtures import (
    IncidentBuilder,
    build_not_verified,
    build_verified,
    fixture_config,
)
from widgets.header import time_left_text, urgency


def test_a_fix_rolled_back_brings_the_harm_back_until_mitigated(tmp_path: Path) -> None:
    built = build_verified(tmp_path)
    events = built.events
    requested = next(i for i, e in enumerate(events) if e.kind == Kind.ROLLBACK_REQUESTED)
    live = next(i for i, e in enumerate(events) if e.kind == Kind.ROLLBACK_COMPLETED)
    mitigated = next(i for i, e in enumerate(events) if e.kind == Kind.MILESTONE
                     and e.payload["milestone"] == "mitigated")
    assert fold(events[:requested + 1]).harm_back is False  # the fix still serves
    assert fold(events[:live + 1]).harm_back is True  # v1.4.2 is live: the leak is back
    assert fold(events[:mitigated + 1]).harm_back is False  # marked mitigated after it
    assert fold(events).change_is_fix is True  # security: a fix unless declared otherwise


def test_a_risky_change_rolled_back_is_not_harm(tmp_path: Path) -> None:
    builder = IncidentBuilder(tmp_path / "risky.db")
    builder.declare("22:04:05", rate_count=0)
    events = builder.finish().events
    declared = events[0]
    risky = [type(declared)(declared.id, declared.incident_id, declared.ts, declared.kind,
                            declared.actor, {**declared.payload, "change_is_fix": False},
                            declared.prev_hash, declared.hash)]
    assert fold(risky).change_is_fix is False


def test_the_header_and_the_close_rule(tmp_path: Path) -> None:
    built = build_not_verified(tmp_path)
    state = fold(built.events)
    assert state.harm_back  # NOT VERIFIED, but v1.4.2 was reported live
    with pytest.raises(policy.Refused, match="harm is live again"):
        policy.check_close(state, "ok")
    policy.check_close(state, "leak stopped by disabling the export; v1.4.4 next")
    verified = fold(build_verified(tmp_path / "v").events)
    # closed, the fix never shipped: no "closed before target"
    assert time_left_text(verified, built.now) == "closed, the fix NOT shipped"
    assert urgency(verified, built.now) == "warning"  # mitigated, not resolved


def test_the_pir_says_it_everywhere_a_person_looks(tmp_path: Path) -> None:
    built = build_not_verified(tmp_path)
    text = render_pir(built.events, config=fixture_config(), samples=built.samples, now=None)
    summary = text.split("## Summary")[1].split("## ")[0]
    resolution = text.split("## Resolution")[1].split("## ")[0]
    wrong = text.split("## What Went Wrong")[1].split("## ")[0]
    actions = text.split("## Action Items")[1].split("## ")[0]
    for part in (summary, resolution, wrong):
        assert "the harm was live again when it went live at 22:21:25 UTC" in part
        assert "hotfix path (seed 002)" in part
    assert "INC-1-1: Ship a corrected fix for" in actions
    assert "- **The change**: the fix for an ongoing harm" in text

"""The PIRs and drafts of the demo's bad and good runs (docs/, shown in the README) are what
the code exports today: regenerate with WARROOM_UPDATE_GOLDEN=1 and read the diff."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from console.export.graphs import parse
from tests.export.demo_runs import DOCS, run


@pytest.mark.parametrize("scenario", ["bad", "good"])
def test_the_demo_pirs_in_docs_are_current(scenario: str, tmp_path: Path) -> None:
    pir, comms = run(scenario, tmp_path / "demo.db")
    for name, text in ((f"pir-demo-{scenario}.md", pir), (f"comms-demo-{scenario}.md", comms)):
        path = DOCS / name
        if os.environ.get("WARROOM_UPDATE_GOLDEN") == "1":
            path.write_text(text, encoding="utf-8")
            continue
        assert path.read_text(encoding="utf-8") == text, (
            f"docs/{name} differs (WARROOM_UPDATE_GOLDEN=1 regenerates it)")
    # What a projector needs: no repeated poll lines, a graph that parses, the outcome said.
    timeline = pir.split("## Timeline (UTC)")[1].split("\n## ")[0]
    bullets = [line for line in timeline.split("\n") if line.startswith("- ")]
    assert len(bullets) < 40
    assert not any(line.endswith("…") for line in bullets)
    for block in re.findall(r"```mermaid\n(.*?)\n```", pir, re.S):
        parse(block)
    if scenario == "bad":
        assert "the harm was live again" in pir and "hotfix path (seed 002)" in pir
        assert "SIMULATED" in comms and "Fix Rolled Back" in comms
    else:
        assert "| Time to resolve | detection → resolved |" in pir
        assert "P0 target 2h 00m: met" in pir

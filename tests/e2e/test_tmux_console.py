"""End to end, the console issue's failures: the real `warroom` in a real tmux, by capture-pane.

- `!` (100 % now) needs the typed confirmation: a wrong word is refused on screen and nothing
  moves; the service name or `100` sends it; the ladder then marks the skipped stages as skipped.
- The header is on screen at 120×36 and 150×40, and resizing down to 80×24 and back up loses no
  pane.
- `make demo-prometheus` (scripts/demo-prometheus): the bad build breaches through a real
  Prometheus scraping the simulator, exactly as on the simulator path, the rollback is VERIFIED,
  and the incident is still in its database after the console exits.

Same rules as tests/e2e/test_tmux.py (whose helpers these reuse): every wait polls the screen
against a deadline; each test kills only the sessions it started, on a private tmux socket.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_tmux import REPO, WARROOM, Tmux, demo_argv, run_warroom, world

__all__ = ["world"]  # the fixture, imported for the tests below

World = tuple[Path, dict[str, str], Callable[[str], Tmux]]
pytestmark = pytest.mark.tmux


def ready_at_zero(commander: Tmux) -> None:
    """Wait for the simulated approvals, then acknowledge the compatibility checklist."""
    commander.wait_for("COMMANDER", 20, "the console to start")
    commander.wait_for("2/2 approved", 30, "both simulated approvals")
    commander.wait_for("preflight ✓ passed", 10, "the rollback preflight")
    commander.send("c")
    commander.wait_for("Rollback compatibility checklist", 5, "the checklist confirmation")
    commander.send("y")
    commander.wait_for("ready to advance to 1%", 10)


def confirm_box(screen: str) -> str | None:
    """What the 100 % form's confirmation box holds (the box after its label)."""
    rows = screen.splitlines()
    for index, row in enumerate(rows):
        if "To confirm, type" in row and index + 2 < len(rows):
            text = rows[index + 2].strip("█ ").strip("▊▎ ")
            return "" if text == "redaction-api or 100" else text  # the placeholder: empty
    return None


def test_hundred_percent_now_needs_the_typed_confirmation(world: World) -> None:
    db, env, session = world
    commander = session("commander")
    commander.start(demo_argv(db))
    ready_at_zero(commander)

    commander.send("!")
    screen = commander.wait_for("Why must this ship to 100% now?", 5, "the 100 % form")
    assert "To confirm, type redaction-api or 100:" in screen
    commander.type("exfiltration is live on agent responses")
    commander.send("Enter")
    # Enter moved to the confirmation box; a word that is neither the service nor 100 is refused.
    commander.type("yes")
    commander.send("Enter")
    screen = commander.wait_for("Not confirmed: type redaction-api or 100 exactly.", 5,
                                "the refusal of a wrong confirmation")
    assert "[0%]" in screen, "nothing moved"
    for left in ("ye", "y", ""):  # one key at a time, each seen to land, as a person corrects
        commander.send("BSpace")
        commander.wait_for(lambda s, left=left: confirm_box(s) == left, 5,
                           f"the box to read {left!r}")
    commander.type("redaction-api")
    commander.send("Enter")
    screen = commander.wait_for("[100%]", 15, "the canary at 100%")
    assert "1%✓" not in screen and "10%✓" not in screen and "50%✓" not in screen
    words = " ".join(row.strip("│┃ ") for row in screen.splitlines())
    assert "1%, 10%, 50% skipped" in words or "skipped" in screen

    commander.send("q")
    commander.wait_for("warroom exited with 0", 15, "a clean exit")
    document = json.loads(run_warroom(env, db.parent, "export", "1", "--format", "json",
                                      "--db", str(db)).stdout)
    requested = [e["payload"] for e in document["events"] if e["kind"] == "canary_weight_requested"]
    assert [(r["to_percent"], r["action"]) for r in requested] == [(100, "immediate")]
    assert requested[0]["reason"] == "exfiltration is live on agent responses"


def header_row(screen: str) -> str:
    return screen.splitlines()[0] if screen else ""


PANES = ("Canary", "Rollback", "Approvals", "Guardrails", "Timeline")


def laid_out(screen: str, width: int, height: int) -> bool:
    """The console fills the window: header on the first row, footer on the last, every pane,
    a box edge in the last column, and from 30 rows the graphs."""
    rows = screen.splitlines()
    return (len(rows) == height and "COMMANDER" in header_row(screen)
            and "Quit" in rows[-1]
            and any(len(row) == width and row[-1] in "╮╯│" for row in rows)
            and all(f"─ {name}" in screen for name in PANES)
            # below 30 rows the graphs give their rows to the timeline
            and (height < 30 or ("─ error-ratio" in screen and "─ p99-latency" in screen)))


def test_header_at_every_size_and_resize_loses_no_pane(world: World) -> None:
    db, _env, session = world
    commander = session("commander")
    commander.start(demo_argv(db), width=120, height=36)
    commander.wait_for("COMMANDER", 20, "the console to start")
    for width, height in ((120, 36), (150, 40), (80, 24), (200, 50), (120, 36)):
        commander.resize(width, height)
        screen = commander.wait_for(
            lambda s, w=width, h=height: laid_out(s, w, h),
            15, f"every pane and the header at {width}×{height}")
        assert "COMMANDER" in header_row(screen) and "INC-1" in header_row(screen)
    commander.send("q")
    commander.wait_for("warroom exited with 0", 15, "a clean exit")


def prometheus_or_skip() -> None:
    found = subprocess.run([str(REPO / "scripts" / "ensure-prometheus")], capture_output=True,
                           text=True, timeout=600)
    if found.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"prometheus is needed under CI=true: {found.stderr.strip()}",
                        pytrace=False)
        pytest.skip(f"prometheus is not installed: {found.stderr.strip()}")


def test_demo_prometheus_breaches_and_rolls_back_verified(world: World) -> None:
    prometheus_or_skip()
    db, env, session = world
    data = Path(env["XDG_DATA_HOME"])
    commander = session("commander")
    commander.start([str(REPO / "scripts" / "demo-prometheus"), "--fast"])
    ready_at_zero(commander)

    commander.send("a")
    commander.wait_for("Advance canary 0% → 1%?", 5, "the advance confirmation")
    commander.send("y")
    # Through Prometheus the evidence needs a few scrapes (1 s apart) before the guardrails judge.
    commander.wait_for("ready to advance to 10%", 60, "healthy guardrails at 1% via Prometheus")
    commander.send("a")
    commander.wait_for("Advance canary 1% → 10%?", 5, "the advance confirmation")
    commander.send("y")
    commander.wait_for("[10%]", 10, "the canary at 10%")
    # The error ratio over a 30 s rate window climbs for a few scrapes before it crosses 2 %.
    commander.wait_for("error-ratio  BREACH", 90, "the bad build's error-ratio breach, measured "
                       "by Prometheus")

    commander.send("R")
    commander.wait_for("ROLL BACK redaction-api to v1.4.2?", 10, "the rollback confirmation")
    commander.send("y")
    screen = commander.wait_for("ROLLBACK VERIFIED", 60, "the verified rollback")
    assert "[0%]" in screen
    commander.send("q")
    commander.wait_for("warroom exited with 0", 20, "a clean exit")

    # The incident outlives the script's scratch Prometheus: it is in the user data dir.
    kept = data / "warroom" / "demo-prometheus.db"
    assert kept.exists(), sorted(str(p) for p in data.rglob("*"))
    document = json.loads(run_warroom(env, db.parent, "export", "1", "--format", "json",
                                      "--db", str(kept)).stdout)
    assert document["state"]["rollback_status"] == "verified"
    breaches = [e for e in document["events"] if e["kind"] == "guardrail_status_changed"
                and e["payload"]["status"] == "breach"]
    errors = [e["payload"] for e in breaches if e["payload"]["name"] == "error-ratio"]
    assert errors and errors[0]["canary"] > errors[0]["limit"] == 0.02


def test_a_console_that_cannot_open_leaves_the_terminal_with_one_line(world: World) -> None:
    """The console draws its first frame before it reads the config and the record (start-up):
    a step that fails afterwards gives the terminal back and says why in the one line the
    command always said, with the same exit status."""
    db, _env, session = world
    bad = db.parent / "bad.toml"
    bad.write_text('[metrics]\nkind = "nope"\n')
    none = db.parent / "none.db"
    for argv, words in (
            ([*demo_argv(db), "--config", str(bad)],
             f"warroom: config error: {bad}: metrics.kind: unknown kind 'nope' (known: sim, "
             "prometheus)"),
            ([*WARROOM, "open", "1", "--db", str(none)],
             f"warroom: no incident database at {none} (declare an incident first, or pass "
             "--db)")):
        console = session("refused")
        console.start(argv)
        screen = console.wait_for("warroom exited with 2", 20, "the refusal")
        # the console's screen is gone: what is left is the one line (wrapped at 80 columns)
        lines = [line for line in screen.splitlines() if line.strip()]
        assert lines[-1] == "warroom exited with 2", screen
        assert "".join(lines[:-1]) == words, screen

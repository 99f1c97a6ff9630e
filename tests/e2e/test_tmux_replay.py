"""End to end: the real `warroom replay` in a real tmux (issue 16, item 3).

A closed-or-finished record (the demo's bad run, played by the real engine on a manual clock:
tests/export/demo_runs.py) replayed from the record alone: opened at a moment with ``--at``, moved
with the keys (a stage, a time typed, a step back), played, and quit — and the record is exactly
as it was. Then a live incident (a commander's demo in another window) replayed up to now.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from tests.e2e.test_tmux import WARROOM, Tmux, demo_argv, run_warroom, world
from tests.export.demo_runs import run as play_demo

__all__ = ["world"]  # the fixture, imported for the tests below

World = tuple[Path, dict[str, str], Callable[[str], Tmux]]


def header(screen: str) -> str:
    return screen.splitlines()[0] if screen else ""


def test_replay_a_finished_record_with_the_keys(world: World) -> None:
    db, _env, session = world
    play_demo("bad", db)  # 22:00 declared, 1 % at 22:00:14, 10 % at 22:00:35, rollback verified
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    replay = session("replay")
    replay.start([*WARROOM, "replay", "1", "--db", str(db), "--at", "22:00:40"], 120, 36)
    screen = replay.wait_for(lambda s: "REPLAY" in header(s) and "22:00:40" in header(s), 20,
                             "the replay at 22:00:40")
    assert "[10%]" in replay.wait_for("BREACH", 10, "the breach at 10%")
    assert "COMMANDER" not in screen and "WATCHING" not in screen

    replay.send("]")  # the next stage change: the rollback's weight to 0 %
    replay.wait_for("[0%]", 10, "the next stage: 0% after the rollback")
    replay.send("t")
    replay.wait_for("Jump to a moment", 5, "the time form")
    replay.type("22:00:20")
    replay.send("Enter")
    screen = replay.wait_for(lambda s: "22:00:20" in header(s) and "[1%]" in s, 10,
                             "the canary at 1% at 22:00:20")
    assert "BREACH" not in screen
    replay.send(",")  # back one event: the moment of the event before
    replay.wait_for(lambda s: "22:00:20" not in header(s), 10, "a step back")

    # Commander keys do nothing: the help after them proves they were handled.
    replay.send("a", "R", "n", "?")
    screen = replay.wait_for("warroom — running an emergency change", 10, "the help screen")
    assert "ROLL BACK" not in screen and "Advance canary" not in screen
    replay.send("Escape")
    replay.wait_for(lambda s: "running an emergency change" not in s, 5, "the help to close")
    replay.send("q")
    replay.wait_for("warroom exited with 0", 15, "a clean exit")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # nothing was written


def test_replay_a_live_incident_stops_at_now(world: World) -> None:
    db, env, session = world
    commander = session("commander")
    commander.start(demo_argv(db))
    commander.wait_for("preflight ✓ passed", 30, "the commander's console")
    replay = session("replay")
    replay.start([*WARROOM, "replay", "1", "--db", str(db), "--at", "+0s"], 120, 36)
    replay.wait_for(lambda s: "REPLAY" in header(s) and "paused" in header(s), 20,
                    "the replay, paused at the declaration")
    replay.send("+", "+", "+", "+", "+", "Space")  # 60×: the few seconds there are pass quickly
    replay.wait_for("Replay reached the end of the record", 20, "play to stop at now")
    assert "paused" in header(replay.screen())
    replay.send("q")
    replay.wait_for("warroom exited with 0", 15, "a clean exit")
    commander.send("q")
    commander.wait_for("warroom exited with 0", 15)
    exported = run_warroom(env, db.parent, "export", "1", "--format", "json", "--db", str(db))
    assert exported.returncode == 0, exported.stderr

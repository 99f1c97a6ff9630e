"""End to end: the real `warroom replay` in a real tmux (issue 16, item 3).

A closed-or-finished record (the demo's bad run, played by the real engine on a manual clock:
tests/export/demo_runs.py) replayed from the record alone: opened at a moment with ``--at``, moved
with the keys (a stage, a time typed, a step back), played, and quit — and the record is exactly
as it was. Then a live incident (a commander's demo in another window) replayed up to now.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
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


def _warroom_pid(replay: Tmux) -> int:
    """The warroom process running in ``replay``'s pane (the pane's shell is its parent)."""
    shell = int(replay._tmux("display-message", "-p", "-t", replay.name, "#{pane_pid}").stdout)
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(fields[1]) == shell:  # the field after the state is the parent's pid
            children.append(int(stat.parent.name))
    assert len(children) == 1, f"expected one process under the pane's shell: {children}"
    return children[0]


def _wait_for_state(pid: int, state: str, why: str, timeout: float = 10.0) -> None:
    """Until ``pid``'s state (``/proc/PID/stat``: S sleeping, R running, T stopped) is
    ``state`` (R counts as S: a process that runs is not stopped)."""
    deadline = time.monotonic() + timeout
    while True:
        now = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if now == state or (state == "S" and now == "R"):
            return
        assert time.monotonic() < deadline, f"{why}: the process is still in state {now}"
        time.sleep(0.05)


def _wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of ``pid``: each is a wake-up from a sleep."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def test_an_idle_console_sleeps_and_still_reads_every_key(world: World) -> None:
    # Textual's input thread wakes ten times a second to look for keys; warroom's sleeps until
    # a key comes (console/driver.py). An idle console then wakes about once a second (its
    # clock), and a lone Escape, arrows and quitting still work.
    db, _env, session = world
    play_demo("good", db)
    replay = session("replay")
    replay.start([*WARROOM, "replay", "1", "--db", str(db), "--at", "+0s"], 80, 24)
    replay.wait_for(lambda s: "REPLAY" in header(s) and "paused" in header(s), 20,
                    "the replay, paused at the declaration")
    pid = _warroom_pid(replay)
    # The quietest of up to five 2 s windows (start-up work may still run in the first one on a
    # busy machine): Textual's own input thread alone wakes 10 times a second, in every window.
    rates = []
    for _window in range(5):
        before, started = _wakeups(pid), time.monotonic()
        time.sleep(2.0)  # a measurement window, not a wait for a condition
        rates.append((_wakeups(pid) - before) / (time.monotonic() - started))
        if rates[-1] < 4:
            break
    assert min(rates) < 4, f"an idle console woke {min(rates):.1f} times a second at best"

    # Stopped and continued (SIGTSTP, SIGCONT), as a shell's job control does: Textual closes the
    # driver and starts it again with a new input thread, which must still be woken and fed.
    os.kill(pid, signal.SIGTSTP)
    _wait_for_state(pid, "T", "stopped after SIGTSTP")
    os.kill(pid, signal.SIGCONT)
    _wait_for_state(pid, "S", "running again after SIGCONT")
    replay.wait_for(lambda s: "REPLAY" in header(s), 10, "the console drawn again")

    replay.send("?")
    replay.wait_for("warroom — running an emergency change", 10, "the help screen")
    replay.send("Escape")  # a lone Escape: reported once the parser's short wait is over
    replay.wait_for(lambda s: "running an emergency change" not in s, 5, "the help to close")
    replay.send("]")  # the next stage change
    replay.wait_for(lambda s: "[1%]" in s, 10, "the canary at 1%")
    replay.send("q")
    replay.wait_for("warroom exited with 0", 15, "a clean exit")

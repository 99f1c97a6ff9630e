"""End to end: the real `warroom` command in a real tmux, driven by keys, read by capture-pane.

What a commander does on the bastion host: `warroom demo --fast --scenario bad` in an 80×24 tmux
window; wait for the (simulated) approvers; acknowledge the compatibility checklist; advance to 1%,
wait for the hold, advance to 10%; when the bad build breaches, press R and confirm; wait until the
console says ROLLBACK VERIFIED; quit. Then `warroom export 1 --format json` and `warroom verify 1`
must tell the same story. A second test watches the same incident with `warroom watch 1` and
checks that its R does nothing.

Every wait polls `tmux capture-pane` against a deadline; nothing sleeps for a fixed time beyond a
0.1 s poll step. Each test runs its own tmux server (a private `-L` socket) and kills only the
sessions it started, by name, in a `finally`. Skipped when tmux is missing; under CI=true that is
a failure.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.tmux

if shutil.which("tmux") is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("tmux is not installed, and CI=true: the end-to-end tests must run "
                    "(apt-get install -y tmux)", pytrace=False)
    pytest.skip("tmux is not installed: the end-to-end tests drive the real command in tmux "
                "(apt-get install -y tmux)", allow_module_level=True)


def _warroom() -> list[str]:
    """The checkout's `warroom` console script (the venv's), else the module."""
    for candidate in (REPO / ".venv" / "bin" / "warroom", Path(sys.executable).parent / "warroom"):
        if candidate.exists():
            return [str(candidate)]
    return [sys.executable, "-m", "console.cli"]


WARROOM = _warroom()


class Tmux:
    """One tmux session on a private server socket: start, send keys, read the screen."""

    def __init__(self, socket: str, name: str, cwd: Path, env: dict[str, str]) -> None:
        self.socket = socket
        self.name = name
        self.cwd = cwd
        self.env = env

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=10, check=check)

    def start(self, argv: list[str], width: int = 80, height: int = 24) -> None:
        """Run ``argv`` in a new detached session; its exit status stays on screen afterwards."""
        assigns = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env.items())
        # $? is saved at once: after the blank `echo` it would be echo's status, always 0.
        # -u COLUMNS -u LINES: something in the pytest process exports 80×24 to children at the C
        # level (not in os.environ); Textual would believe it over the pane's real size.
        command = (f"env -u COLUMNS -u LINES {assigns} {shlex.join(argv)}; status=$?; echo; "
                   "echo \"warroom exited with $status\"; sleep 120")
        # -f /dev/null: no user tmux.conf; the private socket: nobody else's server or sessions.
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d",
                        "-s", self.name, "-x", str(width), "-y", str(height), "-c", str(self.cwd),
                        command], check=True, timeout=10, capture_output=True, text=True)

    def resize(self, width: int, height: int) -> None:
        """Resize the session's window, as a person dragging their terminal would."""
        self._tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name).stdout

    def send(self, *keys: str) -> None:
        """Press keys by tmux name (``y``, ``R``, ``Enter``, ``Escape``), in order."""
        for key in keys:
            self._tmux("send-keys", "-t", self.name, key)

    def type(self, text: str) -> None:
        """Type ``text`` literally."""
        self._tmux("send-keys", "-t", self.name, "-l", text)

    def wait_for(self, what: str | Callable[[str], bool], timeout: float, why: str = "") -> str:
        """Poll the screen until ``what`` (a text, or a test of the screen) holds."""
        test = (lambda screen: what in screen) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while not test(screen):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: after {timeout:g}s still waiting for "
                                     f"{why or what!r}; the screen shows:\n{screen}")
            time.sleep(0.1)
            screen = self.screen()
        return screen

    def kill(self) -> None:
        self._tmux("kill-session", "-t", self.name, check=False)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Callable[[str], Tmux]]]:
    """A temp dir with the demo database path, the environment the commands run with, and a
    factory of tmux sessions that are all killed (by name) at the end."""
    env = {
        "PYTHONPATH": str(REPO),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "tmux-256color" if _has_terminfo("tmux-256color") else "screen-256color",
        "COLORTERM": "truecolor",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    socket = f"warroom-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sessions: list[Tmux] = []

    def session(role: str) -> Tmux:
        tmux = Tmux(socket, f"warroom-{role}-{uuid.uuid4().hex[:8]}", tmp_path, env)
        sessions.append(tmux)
        return tmux

    try:
        yield tmp_path / "demo.db", env, session
    finally:
        for tmux in sessions:
            tmux.kill()
        # The private server exits with its last session; its socket file stays behind.
        path = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / socket
        if sessions and subprocess.run(["tmux", "-L", socket, "ls"], capture_output=True,
                                       timeout=10).returncode != 0:
            path.unlink(missing_ok=True)


def _has_terminfo(name: str) -> bool:
    return subprocess.run(["infocmp", name], capture_output=True).returncode == 0 \
        if shutil.which("infocmp") else False


def run_warroom(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WARROOM, *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**os.environ, **env})


def demo_argv(db: Path) -> list[str]:
    return [*WARROOM, "demo", "--fast", "--scenario", "bad", "--db", str(db)]


def test_demo_bad_build_rolled_back_and_verified(world: tuple[Path, dict[str, str],
                                                              Callable[[str], Tmux]]) -> None:
    db, env, session = world
    commander = session("commander")
    commander.start(demo_argv(db))
    commander.wait_for("COMMANDER", 20, "the console to start")
    commander.wait_for("INC-1", 5)

    # The simulated approvers sign off within 15 s (seeded); then only the checklist blocks.
    commander.wait_for("2/2 approved", 30, "both simulated approvals")
    commander.wait_for("preflight ✓ passed", 10, "the rollback preflight")
    commander.send("c")
    commander.wait_for("Rollback compatibility checklist", 5, "the checklist confirmation")
    commander.send("y")
    commander.wait_for("ready to advance to 1%", 10)

    commander.send("a")
    commander.wait_for("Advance canary 0% → 1%?", 5, "the advance confirmation")
    commander.send("y")
    commander.wait_for("[1%]", 10, "the canary at 1%")
    # The hold (2 s with --fast) and enough canary evidence for the guardrails to judge it.
    commander.wait_for("ready to advance to 10%", 30, "the hold at 1% and healthy guardrails")

    commander.send("a")
    commander.wait_for("Advance canary 1% → 10%?", 5, "the advance confirmation")
    commander.send("y")
    commander.wait_for("[10%]", 10, "the canary at 10%")
    commander.wait_for("BREACH", 20, "the bad build's breach")

    commander.send("R")
    commander.wait_for("ROLL BACK redaction-api to v1.4.2?", 5, "the rollback confirmation")
    screen = commander.screen()
    assert "Canary weight:  10% → 0%" in screen
    assert "Counts as VERIFIED only when:" in screen
    commander.send("y")
    screen = commander.wait_for("ROLLBACK VERIFIED", 30, "the verified rollback")
    assert "[0%]" in screen

    commander.send("q")
    commander.wait_for("warroom exited with 0", 15, "a clean exit")

    exported = run_warroom(env, db.parent, "export", "1", "--format", "json", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    state = document["state"]
    assert state["rollback_status"] == "verified"
    assert state["canary_percent"] == 0
    assert sorted((a["role"], a["user"], a["kind"], a["stale"]) for a in state["approvals"]) == [
        ("platform-lead", "marco", "simulated", False),
        ("security-lead", "priya", "simulated", False),
    ]
    assert document["incident"]["service"] == "redaction-api"
    events = document["events"]
    kinds = [e["kind"] for e in events]
    weights = [e["payload"]["percent"] for e in events if e["kind"] == "canary_weight_set"]
    assert weights == [1, 10, 0]
    # The automatic rollback needs 8 breaches in a row (≈ 4 s at the --fast 0.5 s poll); R is
    # pressed within a poll or two of the first one (≈ 0.5 s measured here).
    requests = [e for e in events if e["kind"] == "rollback_requested"]
    assert len(requests) == 1
    assert requests[0]["payload"]["automatic"] is False, "R was pressed before the automatic one"
    assert kinds.index("rollback_requested") < kinds.index("rollback_verified")
    assert "rollback_not_verified" not in kinds

    verified = run_warroom(env, db.parent, "verify", "1", "--db", str(db))
    assert verified.returncode == 0, verified.stderr
    assert "chain intact" in verified.stdout


def test_watcher_shows_the_incident_and_its_R_does_nothing(
        world: tuple[Path, dict[str, str], Callable[[str], Tmux]]) -> None:
    db, env, session = world
    commander = session("commander")
    commander.start(demo_argv(db))
    commander.wait_for("COMMANDER", 20, "the console to start")
    commander.wait_for("preflight ✓ passed", 10)

    watcher = session("watcher")
    watcher.start([*WARROOM, "watch", "1", "--db", str(db)])
    screen = watcher.wait_for(lambda s: "WATCHING" in s and "INC-1" in s, 20,
                              "the read-only console on INC-1")
    assert "P0" in screen and "COMMANDER" not in screen
    watcher.wait_for("Console opened by", 10, "the commander's timeline")
    watcher.wait_for("preflight ✓ passed", 10)
    assert "press R" not in watcher.screen()

    # R in the watcher: no confirmation. `?` after it proves the key was handled (keys are
    # processed in order), so the absence of the modal is not a race.
    watcher.send("R")
    watcher.send("?")
    screen = watcher.wait_for("warroom — running an emergency change", 10, "the help screen")
    assert "ROLL BACK" not in screen
    watcher.send("Escape")
    watcher.wait_for(lambda s: "running an emergency change" not in s, 5, "the help to close")

    # What the commander records reaches the watcher.
    commander.send("n")
    commander.wait_for("Add a note to the timeline", 5)
    commander.type("go/no-go at 22:15")
    commander.send("Enter")
    watcher.wait_for("Note: go/no-go at 22:15", 10, "the commander's note in the watcher")

    watcher.send("q")
    watcher.wait_for("warroom exited with 0", 15)
    commander.send("q")
    commander.wait_for("warroom exited with 0", 15)

    exported = run_warroom(env, db.parent, "export", "1", "--format", "json", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    kinds = [e["kind"] for e in document["events"]]
    assert "rollback_requested" not in kinds
    assert document["state"]["rollback_status"] == "preflight_passed"
    notes = [e for e in document["events"] if e["kind"] == "note_added"]
    assert [n["payload"]["text"] for n in notes] == ["go/no-go at 22:15"]


def test_second_commander_refused_then_take_over_hands_command_over(
        world: tuple[Path, dict[str, str], Callable[[str], Tmux]]) -> None:
    db, env, session = world
    first = session("first")
    first.start(demo_argv(db))
    first.wait_for("COMMANDER", 20, "the first commander's console")
    first.wait_for("preflight ✓ passed", 10)

    # A second `open` while the first console is alive is refused, naming who holds command.
    second = session("second")
    second.start([*WARROOM, "open", "1", "--db", str(db)])
    screen = second.wait_for("warroom exited with 2", 20, "the refusal")
    assert "is commanded by" in screen and "take-over" in screen.replace("\n", "")

    # --take-over takes command and records the handover; the first console turns WATCHING.
    third = session("third")
    third.start([*WARROOM, "open", "1", "--db", str(db), "--take-over", "--reason",
                 "day shift takes over"])
    third.wait_for("COMMANDER", 20, "the new commander's console")
    first.wait_for("WATCHING", 20, "the first console to give up command")
    third.wait_for("handed over", 10, "the handover on the timeline")

    third.send("q")
    third.wait_for("warroom exited with 0", 15)
    first.send("q")
    first.wait_for("warroom exited with 0", 15)
    exported = run_warroom(env, db.parent, "export", "1", "--format", "json", "--db", str(db))
    handovers = [e for e in json.loads(exported.stdout)["events"]
                 if e["kind"] == "command_handover"]
    assert len(handovers) == 1
    assert handovers[0]["payload"]["reason"] == "day shift takes over"


@pytest.mark.postgresql
def test_on_postgresql_an_approver_elsewhere_and_a_watcher_follow_the_commander(
        world: tuple[Path, dict[str, str], Callable[[str], Tmux]], pg_url: str,
        postgres_server: PostgresServer) -> None:
    """The multi-host setup in real terminals on one PostgreSQL record: the commander's console
    (`warroom open`), a watcher's (`warroom watch`), and an approver who is a database role of
    their own, running `warroom approve` from another shell. Both consoles show the approval and
    the commander's note as they commit (NOTIFY, not polling); the watcher's R does nothing."""
    db, env, session = world
    env["PGPASSWORD"] = os.environ["PGPASSWORD"]  # the admin's: the commander's role here
    (db.parent / "warroom.toml").write_text('[roster]\nsenior-engineer = ["asha"]\n')
    declared = run_warroom(env, db.parent, "declare", "--db", pg_url, "--title",
                           "Checkout errors", "--priority", "P1", "--category", "incident",
                           "--service", "checkout-api", "--from-version", "1.4.2",
                           "--to-version", "1.4.3")
    assert declared.returncode == 0, declared.stderr
    granted = run_warroom(env, db.parent, "store", "init", "--db", pg_url, "--grant",
                          postgres_server.ensure_role("asha", "asha-pw"))
    assert granted.returncode == 0, granted.stderr

    commander = session("commander")
    commander.start([*WARROOM, "open", "1", "--db", pg_url], 120, 36)
    commander.wait_for("COMMANDER", 30, "the commander's console")
    watcher = session("watcher")
    watcher.start([*WARROOM, "watch", "1", "--db", pg_url], 120, 36)
    watcher.wait_for(lambda s: "WATCHING" in s and "INC-1" in s, 30, "the watcher's console")
    watcher.wait_for("Console opened by", 20, "the commander's timeline")

    # asha approves from "her laptop": her own role and password, no share of the commander's
    approved = run_warroom({**env, "PGPASSWORD": "asha-pw"}, db.parent, "approve", "1",
                           "--role", "senior-engineer", "--db",
                           pg_url.replace("warroom_admin@", "asha@"))
    assert approved.returncode == 0, approved.stderr
    for console in (commander, watcher):
        console.wait_for(lambda s: "asha" in s and "1 approved" in s, 20,
                         "asha's approval on the console")

    watcher.send("R")
    watcher.send("?")
    screen = watcher.wait_for("warroom — running an emergency change", 10, "the help screen")
    assert "ROLL BACK" not in screen
    watcher.send("Escape")
    watcher.wait_for(lambda s: "running an emergency change" not in s, 5, "the help to close")

    commander.send("n")
    commander.wait_for("Add a note to the timeline", 5)
    commander.type("go/no-go at 22:15")
    commander.send("Enter")
    watcher.wait_for("Note: go/no-go at 22:15", 10, "the commander's note in the watcher")

    watcher.send("q")
    watcher.wait_for("warroom exited with 0", 15)
    commander.send("q")
    commander.wait_for("warroom exited with 0", 15)
    exported = run_warroom(env, db.parent, "export", "1", "--format", "json", "--db", pg_url)
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert [(a["role"], a["user"], a["kind"]) for a in document["state"]["approvals"]] == [
        ("senior-engineer", "asha", "direct")]
    assert "rollback_requested" not in [e["kind"] for e in document["events"]]

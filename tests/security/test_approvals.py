"""Nobody approves for someone else (issue 12, Deliver 1), on real OS accounts.

The commander is root. The approvers are real accounts (``useradd`` in the setup; skipped when
not root). ``warroom approve`` runs in their name the way ``su``/``runuser`` leave a process:
effective uid the approver's, the login uid (``/proc/self/loginuid``) and the controlling
terminal still root's. The interpreter of this checkout lives where other accounts may not read
it, so the driver loads warroom first and then drops to the approver's uid and groups itself;
``test_su_and_runuser_keep_the_login_uid`` shows that the real ``su`` and ``runuser`` leave
exactly that behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import GROUP, REPO, ensure_account, needs_root, shared_room

pytestmark = needs_root

#: Runs `warroom ARGS` as ACCOUNT: loads everything first, sets the login uid the session should
#: carry (LOGINUID, "-" to leave it), then setgroups/setgid/setuid, as su does.
DRIVER = """
import os, sys, grp, pwd
import console.cli, console.commands, console.config, console.policy, console.state
import console.store, console.paths, console.model, console.identity, console.sandbox
import adapters.secrets, sqlite_utils, platformdirs, pydantic, tomllib, argparse, _strptime
import json, unicodedata, encodings.idna, hmac, ctypes
account, group, loginuid, config = sys.argv[1:5]
user = pwd.getpwnam(account)
if loginuid != "-":
    with open("/proc/self/loginuid", "w") as handle:
        handle.write(loginuid)
console.cli.main(["check-config", config])  # warm every lazy import while still root
gid = grp.getgrnam(group).gr_gid
os.setgroups([gid]); os.setgid(user.pw_gid); os.setuid(user.pw_uid)
sys.exit(console.cli.main(sys.argv[5:]))
"""


def can_set_loginuid() -> bool:
    probe = subprocess.run([sys.executable, "-c",
                            "open('/proc/self/loginuid','w').write('0')"], capture_output=True)
    return probe.returncode == 0


class Room:
    """A war room on this host: a shared directory, a config with a roster, root commands."""

    def __init__(self) -> None:
        self.dir = shared_room()
        self.config = self.dir / "warroom.toml"
        self.config.write_text(
            f'[store]\ngroup = "{GROUP}"\n'
            '[roster]\nsecurity-lead = ["wrs-priya", "wrs-marco"]\n'
            'platform-lead = ["wrs-marco"]\n')
        os.chmod(self.config, 0o644)
        self.db = self.dir / "w.db"
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.env.pop("SUDO_USER", None)

    def warroom(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console.cli", "--config", str(self.config),
                               "--db", str(self.db), *args], capture_output=True, text=True,
                              env=self.env, timeout=60, cwd=self.dir, stdin=subprocess.DEVNULL,
                              start_new_session=True)

    def as_account(self, account: str, *args: str, loginuid: str = "-",
                   sudo_user: str | None = None) -> subprocess.CompletedProcess[str]:
        """``warroom ARGS`` as ``account``, in a session of its own (no terminal), with the
        login uid ``loginuid`` and, if given, SUDO_USER."""
        env = dict(self.env)
        if sudo_user is not None:
            env["SUDO_USER"] = sudo_user
        return subprocess.run(
            [sys.executable, "-c", DRIVER, account, GROUP, loginuid, str(self.config),
             "--config", str(self.config), "--db", str(self.db), *args],
            capture_output=True, text=True, env=env, timeout=60, cwd=self.dir,
            stdin=subprocess.DEVNULL, start_new_session=True)

    def approvals(self) -> list[dict[str, object]]:
        exported = self.warroom("export", "1", "--format", "json")
        assert exported.returncode == 0, exported.stderr
        return json.loads(exported.stdout)["state"]["approvals"]  # type: ignore[no-any-return]


@pytest.fixture
def room() -> Iterator[Room]:
    for name in ("wrs-priya", "wrs-marco"):
        ensure_account(name)
    made = Room()
    declared = made.warroom("declare", "--title", "PII", "--priority", "P0", "--category",
                            "security", "--service", "redaction-api", "--from-version",
                            "v1.4.2", "--to-version", "v1.4.3", "--bypass",
                            "canary=harm is ongoing now")
    try:
        assert declared.returncode == 0, declared.stderr
        yield made
    finally:
        shutil.rmtree(made.dir, ignore_errors=True)


def test_su_and_runuser_keep_the_login_uid(tmp_path: Path) -> None:
    """What the cases below rely on: su and runuser change the account, not the login
    session, so the kernel still names the person who logged in."""
    ensure_account("wrs-marco")
    if not can_set_loginuid():
        pytest.skip("this session's login uid is fixed (loginuid_immutable): cannot start a "
                    "root login session to su from")
    root_session = "import os,sys; open('/proc/self/loginuid','w').write('0'); " \
                   "os.execvp(sys.argv[1], sys.argv[1:])"
    show = "echo $(cat /proc/self/loginuid) $(id -un)"
    for argv in (["su", "wrs-marco", "-s", "/bin/sh", "-c", show],
                 ["runuser", "-u", "wrs-marco", "--", "/bin/sh", "-c", show]):
        done = subprocess.run([sys.executable, "-c", root_session, *argv], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["0", "wrs-marco"], (argv[0], done.stdout)


def test_the_commander_running_approve_as_an_approver_is_refused_and_nothing_recorded(
        room: Room) -> None:
    if not can_set_loginuid():
        pytest.skip("cannot give the driver root's login uid (loginuid_immutable)")
    refused = room.as_account("wrs-marco", "approve", "1", "--role", "platform-lead",
                              loginuid="0")
    assert refused.returncode == 2
    assert ("wrs-marco's approval was run by root, the commander of INC-1" in refused.stderr)
    assert room.approvals() == []


def test_sudo_in_the_commanders_name_is_refused(room: Room) -> None:
    refused = room.as_account("wrs-marco", "approve", "1", "--role", "platform-lead",
                              sudo_user="root")
    assert refused.returncode == 2 and "run by root, the commander" in refused.stderr
    assert room.approvals() == []


def test_the_commanders_terminal_gives_the_commander_away(room: Room) -> None:
    """su from the commander's own terminal, with no login uid at all: the terminal's owner
    (root, in this tmux pane) still names the person behind the account."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: this case needs a terminal the commander owns")
    socket = f"warroom-sec-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    out = room.dir / "approve.out"
    script = room.dir / "approve.sh"
    import shlex

    argv = [sys.executable, "-c", DRIVER, "wrs-marco", GROUP, "-", str(room.config),
            "--config", str(room.config), "--db", str(room.db), "approve", "1", "--role",
            "platform-lead"]
    script.write_text(f"export PYTHONPATH={shlex.quote(str(REPO))}\n"
                      f"{shlex.join(argv)} > {out} 2>&1; echo \"exit $?\" >> {out}\n")
    try:
        subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s",
                        "approve", f"sh {shlex.quote(str(script))}; sleep 30"], check=True,
                       timeout=10)
        deadline = time.monotonic() + 30
        while "exit " not in (out.read_text() if out.exists() else ""):
            assert time.monotonic() < deadline, "the approval in tmux did not finish"
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
    text = out.read_text()
    assert "exit 2" in text and "run by root, the commander" in text, text
    assert room.approvals() == []


def test_approvers_in_their_own_sessions_approve_and_one_person_fills_one_role(
        room: Room) -> None:
    marco = str(__import__("pwd").getpwnam("wrs-marco").pw_uid)
    priya = str(__import__("pwd").getpwnam("wrs-priya").pw_uid)
    loginuid = (lambda uid: uid) if can_set_loginuid() else (lambda uid: "-")
    first = room.as_account("wrs-marco", "approve", "1", "--role", "platform-lead",
                            loginuid=loginuid(marco))
    assert first.returncode == 0, first.stderr
    second_role = room.as_account("wrs-marco", "approve", "1", "--role", "security-lead",
                                  loginuid=loginuid(marco))
    assert second_role.returncode == 2
    assert "already approved as platform-lead; a second role needs a second person" in (
        second_role.stderr)
    relayed = room.warroom("approve", "1", "--role", "security-lead", "--relayed-from",
                           "WRS-Marco", "--evidence", "bridge call 22:14")
    assert relayed.returncode == 2  # a look-alike of a rostered name is not on the roster
    relayed = room.warroom("approve", "1", "--role", "security-lead", "--relayed-from",
                           "wrs-marco", "--evidence", "bridge call 22:14")
    assert relayed.returncode == 2 and "second role needs a second person" in relayed.stderr
    own = room.as_account("wrs-priya", "approve", "1", "--role", "security-lead",
                          loginuid=loginuid(priya))
    assert own.returncode == 0, own.stderr
    assert [(a["role"], a["user"], a["kind"], a["stale"]) for a in room.approvals()] == [
        ("platform-lead", "wrs-marco", "direct", False),
        ("security-lead", "wrs-priya", "direct", False)]


@pytest.mark.parametrize("spelling", ["ROOT", "root ", "root\u200b", "Root\u00ad"])
def test_the_commander_relaying_their_own_name_in_another_spelling_is_refused(
        room: Room, spelling: str) -> None:
    relayed = room.warroom("approve", "1", "--role", "platform-lead", "--relayed-from",
                           spelling, "--evidence", "bridge call 22:14")
    assert relayed.returncode == 2
    assert "the commander cannot relay their own approval" in relayed.stderr
    assert room.approvals() == []


def test_a_name_on_no_roster_and_a_role_with_no_roster_take_no_relayed_approval(
        room: Room) -> None:
    off = room.warroom("approve", "1", "--role", "platform-lead", "--relayed-from", "somebody",
                       "--evidence", "bridge call 22:14")
    assert off.returncode == 2 and "not on the roster for platform-lead" in off.stderr
    declared = room.warroom("declare", "--title", "fine", "--priority", "P1", "--category",
                            "regulatory", "--service", "api", "--from-version", "v1",
                            "--to-version", "v2")
    assert declared.returncode == 0, declared.stderr
    executive = room.warroom("approve", "2", "--role", "executive", "--relayed-from", "dana",
                             "--evidence", "bridge call 22:14")
    assert executive.returncode == 2 and "executive has no roster" in executive.stderr


def test_an_approver_who_takes_command_no_longer_counts_and_the_record_says_why(
        room: Room) -> None:
    from console import commands
    from console.store import Store

    priya = str(__import__("pwd").getpwnam("wrs-priya").pw_uid)
    own = room.as_account("wrs-priya", "approve", "1", "--role", "security-lead",
                          loginuid=priya if can_set_loginuid() else "-")
    assert own.returncode == 0, own.stderr
    with Store(room.db, group=GROUP) as store:  # wrs-priya's console taking over command
        lease, previous = store.acquire_lease(1, "root", pid=os.getpid())
        commands.open_console(store, 1, user="wrs-priya", host="bastion", pid=os.getpid() + 1,
                              previous=lease, take_over=True, reason="day shift takes over")
        del previous
    (approval,) = room.approvals()
    assert approval["stale"] is True and approval["stale_reason"] == "wrs-priya took command"
    exported = json.loads(room.warroom("export", "1", "--format", "json").stdout)
    assert "security-lead" in exported["state"]["missing_roles"]

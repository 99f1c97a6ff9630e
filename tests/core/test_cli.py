"""Every command through the real `warroom` entry point in a subprocess, on a temp database."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, Result

Run = Callable[..., Result]

CONFIG = """
[roster]
security-lead = ["priya"]
platform-lead = ["marco"]

[scenarios]
mission_critical = ["login", "checkout"]
"""


@pytest.fixture
def cli(tmp_path: Path, run_warroom: Run) -> Run:
    (tmp_path / "warroom.toml").write_text(CONFIG)

    def run(*args: str, **kw: object) -> Result:
        return run_warroom(*args, "--db", str(tmp_path / "w.db"), **kw)  # type: ignore[arg-type]

    return run


def declare(cli: Run, *extra: str) -> str:
    result = cli("declare", "--title", "PII exposed by internal API", "--priority", "P0",
                 "--category", "security", "--service", "redaction-api", "--from-version",
                 "v1.4.2", "--to-version", "v1.4.3",
                 "--bypass", "canary=harm is ongoing; canary speed cannot match",
                 "--bypass", "change-window=it is 22:00 and the leak continues", *extra)
    assert result.code == 0, result.err
    return result.out.strip().splitlines()[-1]


def test_declare_prints_the_id_last(cli: Run) -> None:
    assert declare(cli, "--affects", "login") == "INC-1"
    assert declare(cli) == "INC-2"


def test_second_emergency_in_30_days_warns_on_stderr_and_in_the_timeline(cli: Run) -> None:
    declare(cli)
    result = cli("declare", "--title", "again", "--priority", "P1", "--category", "incident",
                 "--service", "api", "--from-version", "v1", "--to-version", "v2")
    assert result.code == 0
    assert "bar may be too low" in result.err
    exported = json.loads(cli("export", "2", "--format", "json").out)
    assert "emergency_rate_warning" in [e["kind"] for e in exported["events"]]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--priority", "P9"], "--priority 'P9'"),
        (["--category", "boredom"], "--category 'boredom'"),
        (["--bypass", "coffee=because we are tired"], "unknown element 'coffee'"),
        (["--bypass", "canary=now"], "specific reason"),
        (["--affects", "billing"], "not a configured mission-critical scenario"),
        (["--to-version", "v1.4.2"], "the same"),
        (["--to-version", "$(rm -rf /)"], "expected a version"),
    ],
)
def test_bad_declarations_exit_2_with_one_line(cli: Run, args: list[str], words: str) -> None:
    base = {"--title": "t", "--priority": "P0", "--category": "security", "--service": "svc",
            "--from-version": "v1.4.2", "--to-version": "v1.4.3"}
    argv: list[str] = []
    for flag, value in base.items():
        if flag not in args:
            argv += [flag, value]
    result = cli("declare", *argv, *args)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert words in result.err
    assert "Traceback" not in result.err


def test_missing_argument_is_one_line(cli: Run) -> None:
    result = cli("declare", "--title", "x")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "required" in result.err


def test_the_commander_cannot_approve_their_own_incident(cli: Run) -> None:
    incident = declare(cli)
    result = cli("approve", incident, "--role", "security-lead")
    assert result.code == 2
    assert "is the commander of INC-1 and cannot approve it" in result.err


def test_relayed_waived_note_and_export(cli: Run) -> None:
    incident = declare(cli)
    relayed = cli("approve", incident, "--role", "platform-lead", "--relayed-from", "marco",
                  "--evidence", "bridge call 22:14, said go")
    assert relayed.code == 0, relayed.err
    assert "relayed" in relayed.out and "Still missing: security-lead" in relayed.out
    waived = cli("waive", "1", "--role", "security-lead", "--reason",
                 "security lead on a flight; CISO delegate agreed on bridge")
    assert waived.code == 0, waived.err
    assert cli("note", incident, "fix [bold]verified[/] | by curl\nsecond line").code == 0
    exported = json.loads(cli("export", incident, "--format", "json").out)
    approvals = exported["state"]["approvals"]
    assert [(a["role"], a["kind"], a["stale"]) for a in approvals] == [
        ("platform-lead", "relayed", False), ("security-lead", "waived", False)]
    assert exported["incident"]["id"] == "INC-1"
    assert exported["state"]["canary_percent"] == 0
    assert exported["state"]["rollback_status"] == "none"
    note = exported["events"][-1]["payload"]["text"]
    assert note == "fix [bold]verified[/] | by curl\nsecond line"
    listing = cli("list")
    assert listing.code == 0 and "INC-1" in listing.out


def test_target_change_makes_approvals_stale(cli: Run) -> None:
    incident = declare(cli)
    cli("approve", incident, "--role", "platform-lead", "--relayed-from", "marco",
        "--evidence", "bridge call 22:14, said go")
    result = cli("target", incident, "--to-version", "v1.4.4", "--reason",
                 "v1.4.3 missed one redaction path")
    assert result.code == 0, result.err
    state = json.loads(cli("export", incident, "--format", "json").out)["state"]
    assert state["approvals"][0]["stale"] is True
    assert state["missing_roles"] == ["security-lead", "platform-lead"]


def test_unknown_incident_and_bad_ids(cli: Run) -> None:
    declare(cli)
    for args in (["note", "INC-9", "x"], ["verify", "9"], ["export", "9"]):
        result = cli(*args)
        assert result.code == 2 and "no incident INC-9" in result.err, (args, result.err)
    result = cli("note", "INC-x", "hello")
    assert result.code == 2 and "not an incident id" in result.err


def test_verify_catches_an_edited_event(cli: Run, tmp_path: Path) -> None:
    incident = declare(cli)
    cli("note", incident, "approved on the bridge")
    assert cli("verify", incident).code == 0
    conn = sqlite3.connect(tmp_path / "w.db")
    conn.execute("DROP TRIGGER events_are_append_only_update")
    conn.execute("UPDATE events SET actor = 'mallory' WHERE kind = 'note_added'")
    conn.commit()
    conn.close()
    result = cli("verify", incident)
    assert result.code == 2
    assert "chain BROKEN" in result.err and "event #2" in result.err and "edited" in result.err


def test_check_config(run_warroom: Run, tmp_path: Path) -> None:
    good = run_warroom("check-config", str(REPO / "config.example.toml"))
    assert good.code == 0 and "Canary plan compressed (default): 1% (300s)" in good.out
    bad = run_warroom("check-config", str(REPO / "tests/fixtures/config/bad_unknown_key.toml"))
    assert bad.code == 2
    assert bad.err.strip().endswith("bad_unknown_key.toml: store.password: unknown key")
    assert len(bad.err.strip().splitlines()) == 1


def test_bad_config_for_any_command_is_one_line(run_warroom: Run, tmp_path: Path) -> None:
    (tmp_path / "warroom.toml").write_text("[canary]\nplans = 3\n")
    result = run_warroom("list")
    assert result.code == 2 and "warroom.toml: canary.plans" in result.err


def test_database_that_is_not_one(run_warroom: Run, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_text("hello" * 1000)
    result = run_warroom("list", "--db", str(bogus))
    assert result.code == 2 and "not a warroom database" in result.err


def test_export_to_file(cli: Run, tmp_path: Path) -> None:
    incident = declare(cli)
    out = tmp_path / "pir.md"
    result = cli("export", incident, "-o", str(out))
    assert result.code == 0, result.err
    assert out.read_text().startswith("# Post-Incident Review: INC-1 — PII exposed by internal API")


# --- approvals from other OS accounts ------------------------------------------------------------

AS_USER = """
import os, sys, grp, pwd
# Load everything the command needs before dropping privileges: the interpreter lives under
# /root here, which other accounts cannot read.
import console.cli, console.config, console.policy, console.state, console.store, console.paths
import console.model, sqlite_utils, platformdirs, pydantic, tomllib, argparse, _strptime, json
console.cli.main(["check-config", sys.argv[3]])
user = pwd.getpwnam(sys.argv[1])
gid = grp.getgrnam(sys.argv[2]).gr_gid
try:  # what pam_loginuid does at the approver's own login: the session is theirs, not root's
    with open("/proc/self/loginuid", "w") as handle:
        handle.write(str(user.pw_uid))
except OSError:
    pass
os.setgroups([gid]); os.setgid(user.pw_gid); os.setuid(user.pw_uid)
sys.exit(console.cli.main(sys.argv[4:]))
"""


def _ensure_account(name: str, group: str) -> None:
    import subprocess

    subprocess.run(["groupadd", "-f", group], check=True)
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", "-G", group, name],
                       check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create OS accounts for approvers")
def test_two_other_os_accounts_approve(tmp_path: Path) -> None:
    import subprocess
    import sys
    import tempfile

    group = "warroom-test"
    for name in ("wrt-priya", "wrt-marco", "wrt-eve"):
        _ensure_account(name, group)
    room = Path(tempfile.mkdtemp(prefix="warroom-room-"))
    try:
        import grp as grp_mod
        import shutil

        os.chown(room, -1, grp_mod.getgrnam(group).gr_gid)
        os.chmod(room, 0o2770)
        config = room / "warroom.toml"
        config.write_text(f'[store]\ngroup = "{group}"\n[roster]\nsecurity-lead = ["wrt-priya"]\n'
                          'platform-lead = ["wrt-marco"]\n')
        os.chmod(config, 0o644)
        db = room / "w.db"
        env = {**os.environ, "PYTHONPATH": str(REPO)}

        def warroom(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "console.cli", "--config", str(config),
                                   "--db", str(db), *args], capture_output=True, text=True,
                                  env=env, timeout=60)

        def as_user(user: str, *args: str) -> subprocess.CompletedProcess[str]:
            # their own session: no terminal of root's (warroom approve checks who owns it)
            return subprocess.run([sys.executable, "-c", AS_USER, user, group, str(config),
                                   "--config", str(config), "--db", str(db), *args],
                                  capture_output=True, text=True, env=env, timeout=60, cwd=room,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

        declared = warroom("declare", "--title", "PII", "--priority", "P0", "--category",
                           "security", "--service", "redaction-api", "--from-version", "v1.4.2",
                           "--to-version", "v1.4.3", "--bypass", "canary=harm is ongoing now",
                           "--bypass", "change-window=night, leak continues")
        assert declared.returncode == 0, declared.stderr
        assert oct(db.stat().st_mode & 0o777) == "0o660"
        wrong_role = as_user("wrt-priya", "approve", "1", "--role", "platform-lead")
        assert wrong_role.returncode == 2
        assert "wrt-priya is not on the roster for platform-lead" in wrong_role.stderr
        stranger = as_user("wrt-eve", "approve", "1", "--role", "security-lead")
        assert stranger.returncode == 2 and "not on the roster" in stranger.stderr
        first = as_user("wrt-priya", "approve", "1", "--role", "security-lead", "--note", "go")
        assert first.returncode == 0, first.stderr
        second = as_user("wrt-marco", "approve", "1", "--role", "platform-lead")
        assert second.returncode == 0, second.stderr
        assert "All required approvals are in." in second.stdout
        exported = json.loads(warroom("export", "1", "--format", "json").stdout)
        assert [(a["role"], a["user"], a["kind"]) for a in exported["state"]["approvals"]] == [
            ("security-lead", "wrt-priya", "direct"), ("platform-lead", "wrt-marco", "direct")]
        assert exported["state"]["missing_roles"] == []
        assert warroom("verify", "1").returncode == 0
    finally:
        shutil.rmtree(room, ignore_errors=True)


def test_a_second_commander_is_refused_with_who_holds_it(cli: Run, tmp_path: Path) -> None:
    from console.store import Store

    incident = declare(cli)
    with Store(tmp_path / "w.db") as store:
        # this test process stands in for a live commander's console on this host
        store.acquire_lease(1, "alice", pid=os.getpid())
    result = cli("open", incident)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "commanded by alice" in result.err and "--take-over" in result.err


def test_console_commands_refuse_bad_input_before_taking_the_terminal(cli: Run) -> None:
    assert "not an incident id" in cli("open", "INC-x").err
    result = cli("watch", "3")
    assert result.code == 2 and "no incident database" in result.err
    declare(cli)
    result = cli("watch", "3")
    assert result.code == 2 and "no incident INC-3" in result.err


def test_an_adapter_that_cannot_start_is_one_line(run_warroom: Run, tmp_path: Path) -> None:
    (tmp_path / "warroom.toml").write_text(
        '[metrics]\nkind = "prometheus"\nurl = "http://127.0.0.1:9"\n'
        'bearer_token = { env = "WARROOM_TEST_UNSET_TOKEN" }\n'
        '[traffic]\nkind = "sim"\n[deploy]\nkind = "sim"\n')
    declared = run_warroom("declare", "--db", "w.db", "--title", "t", "--priority", "P1",
                           "--category", "incident", "--service", "svc", "--from-version", "v1",
                           "--to-version", "v2")
    assert declared.code == 0, declared.err
    result = run_warroom("open", "1", "--db", "w.db")
    assert result.code == 2
    assert result.err.strip() == (
        f"warroom: config error: {tmp_path / 'warroom.toml'}: metrics.bearer_token: environment "
        "variable WARROOM_TEST_UNSET_TOKEN is not set or empty (it holds a secret)")


def test_check_config_warns_when_anything_is_simulated(run_warroom, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A config copied from the example without its adapters is the simulator: said out loud."""
    result = run_warroom("check-config")
    assert result.code == 0, result.err
    assert "WARNING: every adapter is the simulator" in result.out
    config = tmp_path / "warroom.toml"
    config.write_text('[console]\nenvironment = "prod-eu"\n')
    result = run_warroom("check-config", str(config))
    assert "Environment: prod-eu (header colour red)" in result.out

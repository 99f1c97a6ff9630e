"""Identity by the database (issue 15, item 2): on PostgreSQL an approval's person is the role that
authenticated (``session_user``), and the database itself refuses an approval in someone else's
name — the commander's included, whatever client is used. Real roles, real passwords, real
connections; the roster maps approver roles to database roles."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from console import commands
from console import events as ev
from console.config import parse_config
from console.pgstore import PostgresStore
from console.store import StoreError, copy_incident, open_store
from tests.conftest import Result
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.postgresql

Run = Callable[..., Result]
PEOPLE = ("alice", "priya", "marco")
CONFIG = """
[roster]
security-lead = ["priya"]
platform-lead = ["marco"]
"""


@pytest.fixture
def room(postgres_server: PostgresServer, pg_url: str) -> dict[str, str]:
    """The record's schema, owned by the admin; alice (commander), priya and marco as roles of
    their own with the day-to-day grants. Returns each person's URL (password: their name)."""
    with open_store(pg_url) as owner:
        assert isinstance(owner, PostgresStore)
        for name in PEOPLE:
            owner.grant(postgres_server.ensure_role(name, f"{name}-secret"))
    return {name: pg_url.replace("warroom_admin@", f"{name}@") for name in PEOPLE}


def as_person(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("PGPASSWORD", f"{name}-secret")


def test_two_approvers_as_two_roles_and_a_forged_approval_refused(
        room: dict[str, str], tmp_path: Path, run_warroom: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "warroom.toml").write_text(CONFIG)

    def warroom(person: str, *args: str) -> Result:
        return run_warroom(*args, "--db", room[person], env={"PGPASSWORD": f"{person}-secret"})

    declared = warroom("alice", "declare", "--title", "PII", "--priority", "P0", "--category",
                       "security", "--service", "redaction-api", "--from-version", "v1",
                       "--to-version", "v2", "--bypass", "canary=harm is ongoing now")
    assert declared.code == 0, declared.err
    assert "commander alice" in declared.out  # the role, not the OS account running the tests
    own = warroom("alice", "approve", "1", "--role", "security-lead")
    assert own.code == 2 and "alice is the commander" in own.err
    first = warroom("priya", "approve", "1", "--role", "security-lead")
    assert first.code == 0, first.err
    assert "security-lead approval by priya (direct)" in first.out

    # the commander, through the project's own write path, in marco's name: the rules would let
    # it pass (marco is on the roster), the database does not
    config = parse_config(CONFIG, tmp_path / "warroom.toml")
    as_person(monkeypatch, "alice")
    with open_store(room["alice"]) as alice:
        with pytest.raises(StoreError, match="alice cannot record it as marco"):
            commands.approve(alice, config, 1, user="marco", role="platform-lead")
        with pytest.raises(StoreError, match="alice cannot approve as marco"):
            alice.record(1, "alice", ev.Approved(role="platform-lead", user="marco"))
        with pytest.raises(StoreError, match="simulated approval belongs to a simulated"):
            alice.record(1, "alice", ev.Approved(role="platform-lead", user="marco",
                                                 kind="simulated"))
        with pytest.raises(StoreError, match="cannot approve as marco"):
            alice.record(1, "alice", ev.Approved(role="platform-lead", user="marco",
                                                 kind="made-up"))  # folds as direct
    # priya cannot approve for marco either, on her own connection
    as_person(monkeypatch, "priya")
    with open_store(room["priya"]) as priya, \
            pytest.raises(StoreError, match="priya cannot approve as marco"):
        priya.record(1, "priya", ev.Approved(role="platform-lead", user="marco"))

    relayed = warroom("alice", "approve", "1", "--role", "platform-lead", "--relayed-from",
                      "marco", "--evidence", "bridge call 22:14")
    assert relayed.code == 0, relayed.err
    exported = json.loads(warroom("priya", "export", "1", "--format", "json").out)
    assert [(a["role"], a["user"], a["kind"]) for a in exported["state"]["approvals"]] == [
        ("security-lead", "priya", "direct"), ("platform-lead", "marco", "relayed")]
    assert warroom("marco", "verify", "1").code == 0


def test_a_copy_keeps_approvals_recorded_by_others(room: dict[str, str], tmp_path: Path,
                                                   pg_url: str, postgres_server: PostgresServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(CONFIG, tmp_path / "warroom.toml")
    with open_store(tmp_path / "bastion.db") as bastion:
        declared = commands.declare(
            bastion, config, commander="alice", title="t", priority="P1", category="security",
            service="api", from_version="v1", to_version="v2")
        incident = declared.incident_id
        commands.approve(bastion, config, incident, user="priya", role="security-lead")
        # a day-to-day role cannot copy it in: the approval is priya's, the role is marco's
        as_person(monkeypatch, "marco")
        with open_store(room["marco"]) as marco, pytest.raises(StoreError, match="owner"):
            copy_incident(bastion, marco, incident)
        # the schema's owner can, and only for the copy: afterwards the check is on again
        monkeypatch.setenv("PGPASSWORD", postgres_server.password)
        with open_store(pg_url) as owner:
            assert copy_incident(bastion, owner, incident) == len(bastion.events(incident))
            assert owner.verify(incident) == (len(bastion.events(incident)), None)
            with pytest.raises(StoreError, match="warroom_admin cannot approve as marco"):
                owner.record(incident, "warroom_admin",
                             ev.Approved(role="platform-lead", user="marco"))


def test_appends_after_the_known_head_need_the_day_to_day_grants_and_no_more(
        room: dict[str, str], pg_url: str, postgres_server: PostgresServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A note after the head a store knows is one statement (the short road): the day-to-day
    grants are enough for it, and a watcher's read-only grants are not."""
    with open_store(pg_url) as owner:
        assert isinstance(owner, PostgresStore)
        incident = owner.create_incident("alice", {"title": "t"})[0].incident_id
        owner.grant(postgres_server.ensure_role("wendy", "wendy-secret"), read_only=True)
    as_person(monkeypatch, "priya")
    with open_store(room["priya"]) as priya:
        priya.state(incident)  # the head, as priya's store knows it
        notes = [priya.append(incident, "note_added", "priya", {"text": f"n{n}"})
                 for n in range(3)]
        assert [e.prev_hash for e in notes[1:]] == [e.hash for e in notes[:-1]]
        assert priya.verify(incident) == (4, None)
    as_person(monkeypatch, "wendy")
    with open_store(room["priya"].replace("priya@", "wendy@")) as wendy:
        wendy.state(incident)
        with pytest.raises(StoreError, match="permission denied"):
            wendy.append(incident, "note_added", "wendy", {"text": "sneaked in"})
        assert wendy.verify(incident) == (4, None)

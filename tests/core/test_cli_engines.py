"""The real `warroom` command on both engines: the same verbs, the same answers, whether the
record is an SQLite file or a PostgreSQL database (``store_location``); and `warroom store`,
which copies a record between them with every hash intact."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from console.store import open_store
from tests.conftest import Result
from tests.core.test_store_contract import drop_guards, raw
from tests.support.postgres_server import PostgresServer

Run = Callable[..., Result]

CONFIG = """
[roster]
security-lead = ["priya"]
platform-lead = ["marco"]
"""


@pytest.fixture
def cli(tmp_path: Path, run_warroom: Run, store_location: Path | str) -> Run:
    (tmp_path / "warroom.toml").write_text(CONFIG)

    def run(*args: str, **kw: object) -> Result:
        return run_warroom(*args, "--db", str(store_location), **kw)  # type: ignore[arg-type]

    return run


def declare(cli: Run) -> str:
    result = cli("declare", "--title", "PII exposed by internal API", "--priority", "P0",
                 "--category", "security", "--service", "redaction-api", "--from-version",
                 "v1.4.2", "--to-version", "v1.4.3",
                 "--bypass", "canary=harm is ongoing; canary speed cannot match")
    assert result.code == 0, result.err
    return result.out.strip().splitlines()[-1]


def test_the_verbs_on_either_engine(cli: Run) -> None:
    incident = declare(cli)
    assert incident == "INC-1"
    own = cli("approve", incident, "--role", "security-lead")
    assert own.code == 2 and "cannot approve it" in own.err
    relayed = cli("approve", incident, "--role", "platform-lead", "--relayed-from", "marco",
                  "--evidence", "bridge call 22:14, said go")
    assert relayed.code == 0, relayed.err
    assert cli("waive", incident, "--role", "security-lead", "--reason", "on a flight").code == 0
    assert cli("note", incident, "fix [bold]verified[/]\nsecond line").code == 0
    assert cli("target", incident, "--to-version", "v1.4.4", "--reason", "one more path").code == 0
    exported = json.loads(cli("export", incident, "--format", "json").out)
    assert [(a["role"], a["kind"], a["stale"]) for a in exported["state"]["approvals"]] == [
        ("platform-lead", "relayed", True), ("security-lead", "waived", True)]
    listing = cli("list")
    assert listing.code == 0 and "INC-1" in listing.out
    verified = cli("verify", incident)
    assert verified.code == 0 and "chain intact (5 events verified)" in verified.out
    for args in (["note", "INC-9", "x"], ["verify", "9"], ["export", "9"]):
        result = cli(*args)
        assert result.code == 2 and "no incident INC-9" in result.err, (args, result.err)


def test_verify_catches_an_edit_on_either_engine(cli: Run, store_location: Path | str) -> None:
    incident = declare(cli)
    cli("note", incident, "approved on the bridge")
    raw(store_location, *drop_guards(store_location),
        "UPDATE events SET actor = 'mallory' WHERE kind = 'note_added'")
    result = cli("verify", incident)
    assert result.code == 2
    assert "chain BROKEN" in result.err and "edited" in result.err


def test_a_second_commander_is_refused_on_either_engine(cli: Run,
                                                        store_location: Path | str) -> None:
    incident = declare(cli)
    with open_store(store_location) as store:
        store.acquire_lease(1, "alice", pid=os.getpid())
    result = cli("open", incident)
    assert result.code == 2 and "commanded by alice" in result.err


@pytest.mark.postgresql
def test_store_url_in_the_config_with_the_password_from_a_named_variable(
        tmp_path: Path, run_warroom: Run, pg_url: str) -> None:
    password = os.environ.pop("PGPASSWORD")
    try:
        (tmp_path / "warroom.toml").write_text(
            f'[store]\nurl = "{pg_url}"\npassword_env = "WARROOM_TEST_PG_PASSWORD"\n')
        without = run_warroom("list")
        assert without.code == 2 and "WARROOM_TEST_PG_PASSWORD" in without.err
        env = {"WARROOM_TEST_PG_PASSWORD": password}
        declared = run_warroom("declare", "--title", "t", "--priority", "P1", "--category",
                               "incident", "--service", "api", "--from-version", "v1",
                               "--to-version", "v2", env=env)
        assert declared.code == 0, declared.err
        checked = run_warroom("check-config", env=env)
        assert f"Database: {pg_url} (PostgreSQL; password from $WARROOM_TEST_PG_PASSWORD)" in (
            checked.out)
        assert "INC-1" in run_warroom("list", env=env).out
        wrong = run_warroom("list", env={"WARROOM_TEST_PG_PASSWORD": "wrong"})
        assert wrong.code == 2 and "cannot connect" in wrong.err
        assert len(wrong.err.strip().splitlines()) == 1
    finally:
        os.environ["PGPASSWORD"] = password


def test_a_password_in_the_config_url_is_refused(tmp_path: Path, run_warroom: Run) -> None:
    (tmp_path / "warroom.toml").write_text(
        '[store]\nurl = "postgresql://warroom:hunter2@db.internal/warroom"\n')
    result = run_warroom("list")
    assert result.code == 2 and "store: url carries a password" in result.err
    assert "hunter2" not in result.err
    on_the_command_line = run_warroom("list", "--db", "postgresql://w:hunter2@127.0.0.1:9/w")
    assert on_the_command_line.code == 2 and "carries a password" in on_the_command_line.err


@pytest.mark.postgresql
def test_store_copy_to_postgresql_and_back(tmp_path: Path, run_warroom: Run, pg_url: str) -> None:
    (tmp_path / "warroom.toml").write_text(CONFIG)
    first = tmp_path / "first.db"
    for _ in range(2):
        declared = run_warroom("declare", "--db", str(first), "--title", "t", "--priority", "P1",
                               "--category", "incident", "--service", "api", "--from-version",
                               "v1", "--to-version", "v2")
        assert declared.code == 0, declared.err
    assert run_warroom("note", "--db", str(first), "2", "on the bastion").code == 0
    up = run_warroom("store", "copy", "--db", str(first), "--to", pg_url)
    assert up.code == 0, up.err
    assert "INC-1: 1 event copied" in up.out and "INC-2: 3 events copied" in up.out
    again = run_warroom("store", "copy", "--db", str(first), "--to", pg_url, "2")
    assert again.code == 2 and "INC-2 already exists" in again.err
    assert run_warroom("note", "--db", pg_url, "2", "on the server").code == 0
    back = tmp_path / "back.db"
    down = run_warroom("store", "copy", "--from", pg_url, "--to", str(back), "INC-2")
    assert down.code == 0, down.err
    exports = [json.loads(run_warroom("export", "--db", where, "2", "--format", "json").out)
               for where in (pg_url, str(back))]
    assert exports[0]["events"] == exports[1]["events"]
    assert [e["payload"].get("text") for e in exports[1]["events"]][-2:] == [
        "on the bastion", "on the server"]
    assert run_warroom("verify", "--db", str(back), "2").code == 0


def test_store_init_prints_the_postgresql_schema(run_warroom: Run, tmp_path: Path) -> None:
    printed = run_warroom("store", "init", "--print")
    assert printed.code == 0
    assert "CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events" in printed.out
    made = run_warroom("store", "init", "--db", str(tmp_path / "new.db"))
    assert made.code == 0 and "schema version 5 ready (sqlite)" in made.out
    assert run_warroom("store", "copy").code == 2


@pytest.mark.postgresql
def test_a_granted_role_uses_the_record_but_cannot_remove_its_guards(
        tmp_path: Path, run_warroom: Run, pg_url: str, postgres_server: PostgresServer) -> None:
    import psycopg

    role, secret = "warroom_app", "app-secret"
    postgres_server.ensure_role(role, secret)
    init = run_warroom("store", "init", "--db", pg_url, "--grant", role)
    assert init.code == 0, init.err
    assert f"GRANT SELECT, INSERT ON incidents, events, samples TO {role};" in init.out
    as_app = pg_url.replace("warroom_admin@", f"{role}@")
    env = {"PGPASSWORD": secret}
    (tmp_path / "warroom.toml").write_text(CONFIG)
    declared = run_warroom("declare", "--db", as_app, "--title", "t", "--priority", "P1",
                           "--category", "incident", "--service", "api", "--from-version", "v1",
                           "--to-version", "v2", env=env)
    assert declared.code == 0, declared.err
    assert run_warroom("note", "--db", as_app, "1", "from the app role", env=env).code == 0
    with psycopg.connect(as_app, password=secret, autocommit=True) as conn:
        for statement in ("ALTER TABLE events DISABLE TRIGGER USER",
                          "DROP TRIGGER events_are_append_only_update ON events",
                          "UPDATE events SET actor = 'mallory'"):
            with pytest.raises(psycopg.Error, match=r"must be owner|permission denied"):
                conn.execute(statement)  # type: ignore[arg-type]
    assert run_warroom("verify", "--db", as_app, "1", env=env).code == 0

"""A rewritten record is caught (issue 12, Deliver 4), by someone who can write the file.

Each attacker here works with the sqlite3 module on the database file, the way anyone with write
access could: drop the guards, delete or rewrite events, recompute every later hash, move the
recorded head back, put the guards back. The published head (``warroom verify`` prints it; every
export and chat post carries it) and the keyed chain are what still catch them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.store import Store, event_hash, use_chain_key

from .support import REPO, token

WARROOM = [sys.executable, "-m", "console.cli"]
KEY = token(32, seed=4)  # letters no message holds: the key is scrubbed from every text


@pytest.fixture(autouse=True)
def _no_process_chain_key() -> object:
    use_chain_key(None)
    yield
    use_chain_key(None)


def warroom(tmp_path: Path, *args: str, key: str | None = None,
            config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("WARROOM_CHAIN_KEY", None)
    if key is not None:
        env["WARROOM_CHAIN_KEY"] = key
    cfg = ["--config", str(config)] if config is not None else []
    return subprocess.run([*WARROOM, *cfg, "--db", str(tmp_path / "w.db"), *args],
                          capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)


def keyed_config(tmp_path: Path) -> Path:
    path = tmp_path / "keyed.toml"
    path.write_text('[store]\nchain_key_env = "WARROOM_CHAIN_KEY"\n')
    return path


def an_incident(tmp_path: Path, notes: int = 6, **kw: object) -> None:
    declared = warroom(tmp_path, "declare", "--title", "PII", "--priority", "P1",
                       "--category", "incident", "--service", "api", "--from-version", "v1",
                       "--to-version", "v2", **kw)  # type: ignore[arg-type]
    assert declared.returncode == 0, declared.stderr
    for n in range(notes):
        noted = warroom(tmp_path, "note", "1", f"note {n}", **kw)  # type: ignore[arg-type]
        assert noted.returncode == 0, noted.stderr


def published_head(tmp_path: Path, **kw: object) -> str:
    verified = warroom(tmp_path, "verify", "1", **kw)  # type: ignore[arg-type]
    assert verified.returncode == 0, verified.stderr
    line = verified.stdout.strip().splitlines()[-1]
    assert line.startswith("head #"), verified.stdout
    number, digest = line.removeprefix("head #").split(" ")
    return f"{number}:{digest.split(':', 1)[1]}"


class Attacker:
    """Someone with write access to the file and the sqlite3 module, who knows how the chain is
    made (but not the chain key)."""

    GUARDS = ("events_are_append_only_update", "events_are_append_only_delete",
              "chain_heads_only_advance", "chain_heads_are_kept")

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db)
        self.saved = {name: sql for name, sql in self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")}
        for name in self.GUARDS:
            self.conn.execute(f"DROP TRIGGER IF EXISTS {name}")

    def rehash_from(self, first_id: int) -> None:
        """Recompute every hash from ``first_id`` on with plain sha256, and the recorded heads."""
        rows = self.conn.execute("SELECT id, incident_id, ts, kind, actor, payload, prev_hash "
                                 "FROM events WHERE incident_id = 1 ORDER BY id").fetchall()
        prev = None
        for event_id, incident, ts, kind, actor, payload, prev_hash in rows:
            if event_id < first_id:
                prev = self.conn.execute("SELECT hash FROM events WHERE id = ?",
                                         (event_id,)).fetchone()[0]
                continue
            link = prev if prev is not None else prev_hash
            digest = event_hash(link, event_id, incident, ts, kind, actor, payload)
            self.conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?",
                              (link, digest, event_id))
            prev = digest
        self.cover_heads()

    def cover_heads(self) -> None:
        last = self.conn.execute("SELECT id, hash FROM events WHERE incident_id = 1 "
                                 "ORDER BY id DESC LIMIT 1").fetchone()
        self.conn.execute("UPDATE chain_heads SET event_id = ?, hash = ? WHERE incident_id = 1",
                          last)
        self.conn.execute("UPDATE leases SET head_event_id = ?, head_hash = ?", last)

    def done(self) -> None:
        for name in self.GUARDS:
            if name in self.saved:
                self.conn.execute(self.saved[name])
        self.conn.commit()
        self.conn.close()


# --- the published head --------------------------------------------------------------------------


def test_verify_prints_the_head_and_every_export_carries_it(tmp_path: Path) -> None:
    an_incident(tmp_path, notes=2)
    head = published_head(tmp_path)
    number, digest = head.split(":")
    text = f"head #{number} sha256:{digest}"
    assert text in warroom(tmp_path, "export", "1").stdout
    assert text in warroom(tmp_path, "export", "1", "--format", "comms").stdout
    document = json.loads(warroom(tmp_path, "export", "1", "--format", "json").stdout)
    assert document["head"]["text"] == text
    assert warroom(tmp_path, "verify", "1", "--head", head).returncode == 0


@pytest.mark.parametrize("removed", [1, 3])
def test_the_newest_events_removed_and_covered_up_are_caught_by_the_published_head(
        tmp_path: Path, removed: int) -> None:
    an_incident(tmp_path)
    head = published_head(tmp_path)
    attacker = Attacker(tmp_path / "w.db")
    attacker.conn.execute(f"DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id "
                          f"DESC LIMIT {removed})")
    attacker.cover_heads()
    attacker.done()
    assert warroom(tmp_path, "verify", "1").returncode == 0  # the file alone cannot tell
    caught = warroom(tmp_path, "verify", "1", "--head", head)
    assert caught.returncode == 2
    assert "is not in this record" in caught.stderr and "were removed" in caught.stderr


def test_a_note_edited_and_every_later_hash_recomputed_is_caught_by_the_published_head(
        tmp_path: Path) -> None:
    an_incident(tmp_path)
    head = published_head(tmp_path)
    attacker = Attacker(tmp_path / "w.db")
    attacker.conn.execute("UPDATE events SET payload = '{\"text\":\"all fine\"}' WHERE id = 3")
    attacker.rehash_from(3)
    attacker.done()
    assert warroom(tmp_path, "verify", "1").returncode == 0  # re-hashed: the chain holds
    caught = warroom(tmp_path, "verify", "1", "--head", head)
    assert caught.returncode == 2 and "rewritten and re-hashed" in caught.stderr


def test_a_naive_truncation_is_caught_by_the_record_itself(tmp_path: Path) -> None:
    """Without covering up the recorded head, removing the newest events shows on its own."""
    an_incident(tmp_path)
    attacker = Attacker(tmp_path / "w.db")
    attacker.conn.execute("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")
    attacker.done()
    caught = warroom(tmp_path, "verify", "1")
    assert caught.returncode == 2
    assert "the head recorded with the last append (#7) no longer matches" in caught.stderr


def test_the_commanders_heartbeat_records_the_head_it_saw(tmp_path: Path) -> None:
    an_incident(tmp_path, notes=2)
    with Store(tmp_path / "w.db") as store:
        lease, _ = store.acquire_lease(1, "alice", pid=os.getpid())
        assert store.heartbeat(lease)
        head = store.head(1)
    conn = sqlite3.connect(tmp_path / "w.db")
    assert head is not None
    assert conn.execute("SELECT head_event_id, head_hash FROM leases").fetchone() == (
        head.event_id, head.hash)
    conn.close()
    # the newest event removed and the per-append head covered up: the heartbeat's remains
    attacker = Attacker(tmp_path / "w.db")
    attacker.conn.execute("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")
    last = attacker.conn.execute("SELECT MAX(id), hash FROM events").fetchone()
    attacker.conn.execute("UPDATE chain_heads SET event_id = ?, hash = ?", last)
    attacker.done()
    caught = warroom(tmp_path, "verify", "1")
    assert caught.returncode == 2
    assert "seen by the commander's last heartbeat" in caught.stderr


def test_chat_posts_carry_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.notify import WebhookNotifier
    from tests.core.test_engine import ChatServer, World, wait_for

    chat = ChatServer(200)
    monkeypatch.setenv("WARROOM_TEST_WEBHOOK", chat.url)
    world = World(tmp_path, "bad", on_breach="rollback")
    try:
        world.adapters.notifier = WebhookNotifier("WARROOM_TEST_WEBHOOK", timeout_s=2)
        world.approve_and_prepare()
        world.engine.request_rollback("drill: the chat must hear it")
        wait_for(lambda: bool(chat.received))
        post = chat.received[0]["text"]
        request = next(e for e in world.store.events(world.incident)
                       if e.kind == "rollback_requested")
        assert post.endswith(f"(head #{request.id} sha256:{request.hash})")
    finally:
        world.engine.close()
        chat.stop()


# --- the keyed chain -----------------------------------------------------------------------------


def test_a_keyed_incident_says_so_and_a_rehash_without_the_key_is_caught(tmp_path: Path) -> None:
    config = keyed_config(tmp_path)
    an_incident(tmp_path, key=KEY, config=config)
    conn = sqlite3.connect(tmp_path / "w.db")
    first = json.loads(conn.execute("SELECT payload FROM events WHERE id = 1").fetchone()[0])
    conn.close()
    assert first["chain"] == "keyed"
    verified = warroom(tmp_path, "verify", "1", key=KEY, config=config)
    assert verified.returncode == 0, verified.stderr
    assert "keyed chain (HMAC-SHA256)" in verified.stdout and "hmac-sha256:" in verified.stdout
    # no key: nothing is claimed
    unkeyed = warroom(tmp_path, "verify", "1", config=config)
    assert unkeyed.returncode == 2
    # no key, so no append either
    refused = warroom(tmp_path, "note", "1", "sneaked in", config=config)
    assert refused.returncode == 2 and "needs the chain key" in refused.stderr

    attacker = Attacker(tmp_path / "w.db")
    attacker.conn.execute("UPDATE events SET payload = '{\"text\":\"all fine\"}' WHERE id = 3")
    attacker.rehash_from(3)  # sha256, as the attacker has no key
    attacker.done()
    caught = warroom(tmp_path, "verify", "1", key=KEY, config=config)
    assert caught.returncode == 2 and "event #3" in caught.stderr and "edited" in caught.stderr


def test_a_keyed_chain_stripped_of_its_key_and_rehashed_is_caught(tmp_path: Path) -> None:
    config = keyed_config(tmp_path)
    an_incident(tmp_path, key=KEY, config=config)
    attacker = Attacker(tmp_path / "w.db")
    payload = json.loads(attacker.conn.execute("SELECT payload FROM events WHERE id = 1")
                         .fetchone()[0])
    del payload["chain"]
    attacker.conn.execute("UPDATE events SET payload = ? WHERE id = 1",
                          (json.dumps(payload, sort_keys=True, separators=(",", ":"),
                                      ensure_ascii=False),))
    attacker.rehash_from(1)
    attacker.done()
    caught = warroom(tmp_path, "verify", "1", key=KEY, config=config)
    assert caught.returncode == 2 and "the chain is not keyed" in caught.stderr


def test_a_wrong_key_verifies_nothing(tmp_path: Path) -> None:
    config = keyed_config(tmp_path)
    an_incident(tmp_path, notes=1, key=KEY, config=config)
    wrong = warroom(tmp_path, "verify", "1", key=KEY[::-1], config=config)
    assert wrong.returncode == 2 and "event #1" in wrong.stderr

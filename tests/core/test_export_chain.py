"""`warroom export` verifies the chain while it writes: a record that was edited is not exported
quietly (exit 2), and with --allow-broken the export says where it broke (DESIGN.md)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from console.config import Config
from console.demo import declare_demo, demo_config
from console.model import Kind
from console.store import Store


def edited_record(path: Path) -> int:
    """A demo incident with notes, one of which was edited afterwards with the sqlite3 shell."""
    with Store(path) as store:
        incident = declare_demo(store, demo_config(Config(), "bad"), "alice")
        for text in ("first", "second", "third"):
            store.append(incident, Kind.NOTE, "bob", {"text": text})
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_are_append_only_update")
    conn.execute("UPDATE events SET payload = '{\"text\":\"SECOND, rewritten\"}' "
                 "WHERE payload LIKE '%second%'")
    conn.commit()
    conn.close()
    return incident


@pytest.mark.parametrize("fmt", ["pir", "comms", "json"])
def test_an_edited_record_is_refused_and_nothing_is_written(run_warroom, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            fmt: str) -> None:
    db = tmp_path / "w.db"
    edited_record(db)
    target = tmp_path / "out" / f"export.{fmt}"
    target.parent.mkdir()
    result = run_warroom("export", "1", "--format", fmt, "--db", str(db), "-o", str(target))
    assert result.code == 2
    assert "chain BROKEN at #3" in result.err and "--allow-broken" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert list(target.parent.iterdir()) == []  # no export, no partial file
    to_stdout = run_warroom("export", "1", "--format", fmt, "--db", str(db))
    assert to_stdout.code == 2 and to_stdout.out == ""


def test_allow_broken_exports_and_says_where_it_broke(run_warroom, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "w.db"
    edited_record(db)
    pir = run_warroom("export", "1", "--db", str(db), "--allow-broken")
    assert pir.code == 0, pir.err
    lines = pir.out.splitlines()
    assert lines[0].startswith("# ")
    assert "CHAIN BROKEN at #3" in lines[2] and "was edited" in lines[2]
    assert "warning" in pir.err
    document = json.loads(run_warroom("export", "1", "--format", "json", "--db", str(db),
                                      "--allow-broken").out)
    assert document["chain"]["intact"] is False and document["chain"]["event_id"] == 3
    assert [e["payload"].get("text") for e in document["events"]][1:] == [
        "first", "SECOND, rewritten", "third"]


def test_an_intact_record_exports_without_a_chain_key(run_warroom, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "w.db"
    with Store(db) as store:
        declare_demo(store, demo_config(Config(), "bad"), "alice")
    result = run_warroom("export", "1", "--format", "json", "--db", str(db))
    assert result.code == 0
    assert "chain" not in json.loads(result.out)

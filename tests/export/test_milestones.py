"""Milestones, roles, links and highlights: through the real command, into the PIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main
from console.export import render
from console.model import Kind
from console.store import Store


def _declare(db: Path, *extra: str) -> None:
    assert main(["declare", "--db", str(db), "--title", "PII in transcripts", "--priority", "P0",
                 "--category", "security", "--service", "redaction-api", "--from-version",
                 "v1.4.2", "--to-version", "v1.4.3", *extra]) == 0


def _pir(db: Path) -> str:
    with Store(db) as store:
        return render("pir", store.require_events(1))


def test_milestones_roles_links_and_highlights_reach_the_pir(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    db = tmp_path / "w.db"
    _declare(db, "--detected-at", "2026-03-12T21:52:00Z",
             "--link", "ticket=https://tickets.example/SUP-1")
    assert main(["mark", "1", "impact-started", "--at", "2026-03-12T19:30:00Z", "--reason",
                 "first leaked response in the logs", "--db", str(db)]) == 0
    assert main(["role", "1", "scribe", "lee", "--db", str(db)]) == 0
    assert main(["note", "1", "export disabled", "--highlight", "--link",
                 "pr=https://git.example/pr/7", "--db", str(db)]) == 0
    assert main(["highlight", "1", "1", "--reason", "the start", "--db", str(db)]) == 0
    assert main(["mark", "1", "mitigated", "--db", str(db)]) == 0
    text = _pir(db)
    assert "| **detected** | 2026-03-12 21:52:00" in text or "| **detected** | 21:52:00" in text
    assert "first leaked response in the logs" in text
    assert "- **Roles**: scribe lee" in text
    assert "ticket <https://tickets.example/SUP-1>; pr <https://git.example/pr/7>" in text
    assert "| Time to detect | impact started → detected | 2h 22m | — |" in text
    assert "⭐" in text and "_the start_" in text
    with Store(db) as store:
        kinds = [e.kind for e in store.require_events(1)]
    assert kinds.count(Kind.MILESTONE) == 3 and Kind.HIGHLIGHTED in kinds


@pytest.mark.parametrize(("argv", "message"), [
    (["mark", "1", "fixed"], "unknown milestone"),
    (["mark", "1", "detected", "--at", "2999-01-01T00:00:00Z"], "in the future"),
    (["mark", "1", "detected", "--at", "yesterday"], "expected ISO 8601"),
    (["role", "1", "Scribe!", "lee"], "role"),
    (["note", "1", "x", "--link", "pr=javascript:alert(1)"], "not an http(s) URL"),
    (["note", "1", "x", "--link", "nourl"], "KIND=URL"),
    (["highlight", "1", "99"], "no event #99"),
])
def test_bad_marks_are_refused_with_one_line(tmp_path: Path, argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.db"
    _declare(db)
    capsys.readouterr()
    assert main([*argv, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_milestones_must_be_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.db"
    _declare(db, "--detected-at=-10m")
    assert main(["mark", "1", "resolved", "--at=-20m", "--db", str(db)]) == 2
    assert "before detected" in capsys.readouterr().err
    assert main(["mark", "1", "resolved", "--db", str(db)]) == 0

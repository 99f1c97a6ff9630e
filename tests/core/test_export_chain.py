"""`warroom export` verifies the chain while it writes: a record that was edited is not exported
quietly (exit 2), and with --allow-broken the export says where it broke (DESIGN.md)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
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


# --- the PIR's hashes checked by a forked child while the events are built ----------------------


def _export_text(db: Path, fmt: str, *, parallel: bool,
                 allow_broken: bool = False) -> tuple[str, int, object]:
    import io
    from datetime import UTC, datetime

    from console.export import export

    out = io.StringIO()
    with Store(db, readonly=True) as store:
        checked, problem = export(fmt, store, 1, out, now=datetime(2026, 12, 3, tzinfo=UTC),
                                  allow_broken=allow_broken, parallel=parallel)
    return out.getvalue(), checked, problem


@pytest.mark.parametrize("fmt", ["pir", "comms"])
def test_a_forked_check_exports_what_the_one_process_does(tmp_path: Path, fmt: str) -> None:
    db = tmp_path / "w.db"
    with Store(db) as store:
        incident = declare_demo(store, demo_config(Config(), "bad"), "alice")
        for number in range(300):
            store.append(incident, Kind.NOTE, "bob", {"text": f"note {number}"})
        start = store.events(incident)[0].ts.timestamp()
        store.add_samples(incident, [(f"error-rate/{track}", start + 5.0 * n, value * n)
                                     for track, value in (("canary", 0.002), ("baseline", 0.001))
                                     for n in range(40)])
    parallel = _export_text(db, fmt, parallel=True)
    assert parallel == _export_text(db, fmt, parallel=False)
    if fmt == "pir":  # the samples the child read are those the one process reads
        assert "| error-rate/canary | 40 |" in parallel[0]
    edited = tmp_path / "edited.db"
    edited_record(edited)
    from console.export import BrokenChain

    with pytest.raises(BrokenChain) as refused:
        _export_text(edited, fmt, parallel=True)
    assert refused.value.problem.event_id == 3
    broken = _export_text(edited, fmt, parallel=True, allow_broken=True)
    assert broken == _export_text(edited, fmt, parallel=False, allow_broken=True)
    assert "CHAIN BROKEN at #3" in broken[0]


def test_a_document_made_before_the_child_disagreed_is_made_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The document is made while the child checks; when the child's rows were not these (or
    it failed), the rows are read and checked here and the document made again from them."""
    from console.export import _CheckingChild

    db = tmp_path / "w.db"
    with Store(db) as store:
        declare_demo(store, demo_config(Config(), "bad"), "alice")
    serial = _export_text(db, "pir", parallel=False)
    made: list[int] = []
    real_adopt = _CheckingChild.adopt

    def disagree(self: _CheckingChild, checker: object, digests: list[int]) -> bool:
        from console.store import ChainChecker

        made.append(len(digests))
        real_adopt(self, ChainChecker(), digests)  # reaps the child; ``checker`` untouched
        return False

    monkeypatch.setattr(_CheckingChild, "adopt", disagree)
    assert _export_text(db, "pir", parallel=True) == serial
    assert made  # the child was asked, and overruled


def test_rows_read_otherwise_by_the_child_are_checked_again_here(tmp_path: Path) -> None:
    from console.export import _CheckingChild, _read_unchecked
    from console.store import ChainChecker

    db = tmp_path / "w.db"
    with Store(db) as store:
        declare_demo(store, demo_config(Config(), "bad"), "alice")
    with Store(db, readonly=True) as store:
        checker = ChainChecker()
        child = _CheckingChild.start(store, 1, checker)
        assert child is not None
        _, digests = _read_unchecked(store, 1, child.up_to)
        assert not child.adopt(checker, [*digests, 0])  # not what this process read
        assert checker.checked == 0 and checker.problem is None  # untouched: check here
        child = _CheckingChild.start(store, 1, checker)
        assert child is not None
        assert child.adopt(checker, digests)
        assert checker.checked == child.up_to and checker.problem is None


def test_the_child_and_this_process_stop_at_the_same_event(tmp_path: Path) -> None:
    """Events appended while an export runs are in neither half: both stop at the newest event
    there was when it began."""
    from console.export import _CheckingChild, _read_unchecked
    from console.store import ChainChecker

    db = tmp_path / "w.db"
    with Store(db) as writer:
        incident = declare_demo(writer, demo_config(Config(), "bad"), "alice")
        with Store(db, readonly=True) as store:
            checker = ChainChecker()
            child = _CheckingChild.start(store, incident, checker)
            assert child is not None
            writer.append(incident, Kind.NOTE, "bob", {"text": "after the start"})
            events, digests = _read_unchecked(store, incident, child.up_to)
            assert child.adopt(checker, digests)
            assert events[-1].id == child.up_to == checker.last_id
            assert store.last_event_id(incident) == child.up_to + 1


def test_the_head_read_without_hashes_gets_the_ones_the_child_checked(tmp_path: Path) -> None:
    """This process reads the rows without the chain's columns; the newest event gets its
    stored hashes, and only when its hash is the one the child checked."""
    from console.export import _CheckingChild, _read_unchecked, _with_head_hashes
    from console.store import ChainChecker

    db = tmp_path / "w.db"
    with Store(db) as store:
        incident = declare_demo(store, demo_config(Config(), "bad"), "alice")
    with Store(db, readonly=True) as store:
        checker = ChainChecker()
        child = _CheckingChild.start(store, incident, checker)
        assert child is not None
        events, digests = _read_unchecked(store, incident, child.up_to)
        assert events[-1].hash == ""
        assert child.adopt(checker, digests)
        stored = store.events(incident)
        assert _with_head_hashes(store, events, checker)
        assert events[-1] == stored[-1]  # every field, the hashes too
        assert [e.id for e in events] == [e.id for e in stored]
        assert [e.payload for e in events] == [e.payload for e in stored]
        checker.last_hash = "0" * 64  # not what the child saw: read and check here instead
        assert not _with_head_hashes(store, events, checker)


@pytest.mark.parametrize("secret", [None, "note-secret-1234"])
def test_the_pir_written_a_part_at_a_time_is_the_rendered_one(tmp_path: Path,
                                                             secret: str | None) -> None:
    """The export writes a PIR's lines a few thousand at a time (the break's notice among
    them); with a secret registered, whole, through the one scrub: the same bytes as render()."""
    from adapters import secrets
    from console.export import _LINES_A_WRITE, render

    db = tmp_path / "w.db"
    edited_record(db)
    with Store(db) as store:
        for number in range(_LINES_A_WRITE + 10):  # more lines than one write takes
            store.append(1, Kind.NOTE, "bob", {"text": f"note {number}: note-secret-1234"})
        events = store.events(1)
    if secret is not None:
        secrets.register([secret])
    for parallel in (True, False):
        text, _, problem = _export_text(db, "pir", parallel=parallel, allow_broken=True)
        assert problem is not None and "CHAIN BROKEN at #3" in text
        rendered = render("pir", events, now=datetime(2026, 12, 3, tzinfo=UTC),
                          chain_problem=problem)  # type: ignore[arg-type]
        assert text == (rendered if secret is None else secrets.scrub(rendered))
        assert ("note-secret-1234" in text) == (secret is None)


def test_the_collector_is_left_off_only_for_a_caller_that_ends(tmp_path: Path) -> None:
    """An export runs without the cyclic collector; for a caller that ends its process right
    after (``leave``: the CLI) it stays off — its first pass would walk all the export made —
    and what it made is left to it, not freed; `warroom`'s main, run by a caller that goes
    on (a test), turns the collector back on."""
    import gc
    import io

    from console.cli import main
    from console.export import export

    db = tmp_path / "w.db"
    with Store(db) as store:
        declare_demo(store, demo_config(Config(), "bad"), "alice")
    assert gc.isenabled()
    with Store(db, readonly=True) as store:
        export("pir", store, 1, io.StringIO())
        assert gc.isenabled()
        left: list[object] = []
        try:
            out = io.StringIO()
            export("pir", store, 1, out, leave=left)
            assert not gc.isenabled()
            events, document = left  # left to the end of the process, with the document
            assert [e.id for e in events] == [e.id for e in store.events(1)]
            assert out.getvalue().startswith(document.before[0])  # type: ignore[attr-defined]
        finally:
            gc.enable()
    assert main(["export", "1", "--db", str(db), "-o", str(tmp_path / "pir.md")]) == 0
    assert (tmp_path / "pir.md").read_text(encoding="utf-8").startswith("# Post-Incident Review")
    assert gc.isenabled()

"""Hostile text through every CLI entry point: stored literally, or refused with exit 2.

More than 200 strings — markup of every kind the text will meet (Rich/Textual, HTML, Markdown),
ANSI escapes, each C0 and C1 control character, bidi controls and invisible characters, bytes
that are not UTF-8, huge strings — go through each verb that stores text a person typed: the
title and a bypass reason and compensation of ``declare``, ``note``, the note of a direct
``approve``, the evidence and the name of a relayed one, the reason of ``waive`` and of
``target``; and some through the fields that must refuse them (service, version, role). Each call
either stores the text literally (bytes that are not UTF-8 made visible as ``\\xNN``) or is
refused with exit 2 and one line on stderr; never exit 1, never a traceback. The exports of the
result carry no HTML tag and no bidi control, and the chain verifies.

The calls run ``console.cli.main`` in this process, with each argument as CPython hands argv over
(``os.fsdecode`` of the bytes: surrogate escapes for what is not UTF-8); a sample goes through
the real ``warroom`` command with the raw bytes in its argv. ``make faults`` runs every string
both ways.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.cli import _visible_text, main, os_user
from console.config import parse_config
from console.model import Kind
from console.policy import declaration
from console.store import Store
from tests.conftest import REPO
from tests.faults.conftest import LONG, Tally

ME = os_user()
CONFIG = f"""
[roster]
security-lead = ["{ME}"]
platform-lead = ["marco"]
"""


def hostile_strings() -> list[bytes]:
    """The strings, as the bytes a shell would put in argv (no NUL: argv cannot carry one)."""
    text: list[str] = [
        # Rich / Textual markup
        "[bold]x[/]", "[link=http://evil.example]y[/link]", "[/]", "[red", "[@click=app.quit]q[/]",
        "[reverse]$x[/reverse]", "\\[escaped]", "[b][i][u]nested", "[dim on red]", "[#ff0000]c",
        # HTML
        "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<!-- c -->", "&lt;b&gt;",
        "&#60;script&#62;", "<div style='position:fixed'>x</div>", "</td></tr></table>",
        "<a href=javascript:alert(1)>x</a>", "<iframe src=//evil>", "<svg/onload=alert(1)>",
        # Markdown
        "# heading", "| a | b |", "```", "~~~", "- item", "1. one", "> quote", "---", "===",
        "[l](javascript:alert(1))", "![i](http://t.example/x.gif)", "<http://auto.link>",
        "**bold** _it_", "\\", "`code`", "x  \ny", "* * *", "+ plus", "2) two", "    code",
        # ANSI and terminal escapes
        "\x1b[31mred\x1b[0m", "\x1b]0;owned\x07", "\x1b[2J\x1b[H", "\x1b[?1049h", "\x1bPq#\x1b\\",
        "\x1b[6n", "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "\x1bc", "\x9b31mC1 CSI",
        "\x1b[1;1H\x1b[K", "\x07bell", "\x08\x08\x08over",
        # bidi, invisible, separators
        *(f"abc{chr(c)}def" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A),
                                       0x200E, 0x200F, 0x061C)),
        "approved \u202egnirts desrever\u202c ok", "\u2067\u2066nested\u2069\u2069",
        *(f"zero{chr(c)}width" for c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E)),
        "line\u2028sep", "para\u2029sep", "nel\u0085line",
        # shells, formats, injection
        "$(rm -rf /)", "`id`", "; DROP TABLE events;--", "' OR 1=1 --", "%s%n%x%d", "{0}{1}",
        "{incident}{target}", "${HOME}", "%(x)s", "\\x1b[31m", '"}', '\\"', "'", '"',
        # whitespace and nothing
        "", " ", "   ", "\t", "\n", "\r\n", "a\rb", "\n\n\nx\n\n", " padded ",
        # Unicode that is fine and must stay exactly as typed
        "émoji 👩\u200d💻 ok", "日本語のノート", "مرحبا بالعالم", "שלום עולם", "e\u0301",
        "Z\u0338\u0321\u0322\u031b\u0317", "\u00a0nbsp", "\u3000ideographic", "🏳️\u200d🌈",
        "ｆｕｌｌｗｉｄｔｈ", "Ω≈ç√∫", "\U0001f600" * 10,
        # long
        "x" * 10_000, "é" * 5_000, "[b]" * 3_000, "\x1b[31m" * 2_000, "line\n" * 2_000,
        "a" * 200, "a" * 201, "word " * 5_000,
    ]
    # every C0 control (but NUL) and every C1 control, alone in a sentence
    text += [f"ctl{chr(c)}here" for c in range(0x01, 0x20)]
    text += [f"c1{chr(c)}here" for c in range(0x80, 0xA0)]
    raw = [t.encode("utf-8") for t in text]
    # bytes that are not UTF-8
    raw += [
        b"\xc3(", b"ok\x80\x81", b"\xff\xfe", b"\xed\xa0\x80surrogate", b"\xf0\x28\x8c\xbc",
        b"\xc0\xafoverlong", b"\xf8\x88\x80\x80\x80", b"cut\xe2\x82", b"\x80", b"\xfe",
        b"latin1 caf\xe9", b"cp1252 \x93quoted\x94", b"mixed \xc3\xa9 \xe9", b"\xef\xbb\xbfbom",
        b"[bold]\xff[/]", b"\x1b[31m\xc3(\x1b[0m", b"\xe2\x80\xaebidi\xff",
        b"\xff" * 2_000, b"note \xc3",
    ]
    # a huge argument, near the kernel's limit for one (128 KiB)
    raw += [b"H" * 120_000, "ü".encode() * 50_000]
    return raw


STRINGS = hostile_strings()


def test_there_are_more_than_200_strings() -> None:
    assert len(STRINGS) >= 200 and len(set(STRINGS)) == len(STRINGS)


def sample() -> list[bytes]:
    """Every string (make faults), or a deterministic spread of them (make test)."""
    if LONG:
        return STRINGS
    invalid = [s for s in STRINGS if _not_utf8(s)]
    return [*STRINGS[::10], *invalid[:5]]


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass
class Outcome:
    code: int
    out: str
    err: str


class Room:
    """A database and config, and ``main`` run in this process as ``warroom`` would be."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "w.db"
        self.config_path = tmp_path / "warroom.toml"
        self.config_path.write_text(CONFIG)
        self.config = parse_config(CONFIG, self.config_path)
        self.calls = 0

    def run(self, *args: str | bytes) -> Outcome:
        argv = [os.fsdecode(a) if isinstance(a, bytes) else a for a in args]
        argv += ["--db", str(self.db), "--config", str(self.config_path)]
        out, err = io.StringIO(), io.StringIO()
        self.calls += 1
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse's --help / --version
                code = int(exit_.code or 0)
        return Outcome(code, out.getvalue(), err.getvalue())

    def incident(self, commander: str) -> str:
        payload = declaration(self.config, title="PII exposed", priority="P0",
                              category="security", service="redaction-api",
                              from_version="v1.4.2", to_version="v1.4.3", bypass_specs=[],
                              affects=[], commander=commander)
        with Store(self.db) as store:
            return str(store.create_incident(commander, payload)[0].incident_id)

    def last(self, incident: str, kind: str) -> dict[str, object]:
        with Store(self.db, readonly=True) as store:
            events = [e for e in store.events(int(incident)) if e.kind == kind]
        assert events, f"no {kind} in INC-{incident}"
        return events[-1].payload


@pytest.fixture
def room(tmp_path: Path) -> Room:
    return Room(tmp_path)


def _judge(outcome: Outcome, stored: str | None, raw: bytes, where: str, tally: Tally,
           blank_means: str | None = None) -> None:
    """Stored literally (exit 0), or refused (exit 2, one line); never an internal error.

    ``blank_means``: what an empty value stands for (a bypass's default compensation).
    """
    tally.add("hostile CLI calls")
    internal = outcome.code not in (0, 2) or "internal error" in outcome.err or \
        "Traceback" in outcome.err
    tally.bad_outcome("hostile CLI calls ending in an internal error", int(internal))
    assert not internal, (where, raw[:80], outcome)
    if outcome.code == 2:
        tally.add("hostile CLI calls refused with exit 2")
        lines = outcome.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("warroom: "), (where, outcome.err[:300])
        return
    tally.add("hostile CLI calls stored")
    expected = _visible_text(os.fsdecode(raw))
    literal = stored in (expected, expected.strip()) or (
        blank_means is not None and not expected.strip() and stored == blank_means)
    tally.bad_outcome("hostile strings not stored literally", int(not literal))
    assert literal, (where, raw[:80], (stored or "")[:80])


@pytest.mark.parametrize("raw", sample(), ids=lambda r: repr(r[:24]))
def test_every_entry_point_stores_it_literally_or_refuses_it(room: Room, raw: bytes,
                                                              tally: Tally) -> None:
    base = ["--priority", "P0", "--category", "security", "--service", "redaction-api",
            "--from-version", "v1.4.2", "--to-version", "v1.4.3"]
    # declare: the title, a bypass reason, a bypass compensation
    for flag, value, field in (
        ("--title", raw, "title"),
        ("--bypass", b"canary=" + raw, "reason"),
        ("--bypass", b"canary=harm is ongoing::" + raw, "compensation"),
    ):
        args = ["declare", b"--title=" + raw if flag == "--title" else "--title=t", *base]
        if flag == "--bypass":
            args.append(b"--bypass=" + value)
        outcome = room.run(*args)
        stored = None
        if outcome.code == 0:
            incident = outcome.out.strip().splitlines()[-1].removeprefix("INC-")
            payload = room.last(incident, Kind.DECLARED)
            stored = (payload["title"] if field == "title"
                      else payload["bypasses"][0][field])  # type: ignore[index]
        _judge(outcome, str(stored) if stored is not None else None, raw, f"declare {field}",
               tally, blank_means=room.config.bypass["canary"].compensation)
    # the fields that must refuse what is not an identifier or a version
    for flag in ("--service", "--from-version"):
        outcome = room.run("declare", "--title=t", *[a for a in base if a not in (flag,)],
                           b"%s=%s" % (flag.encode(), raw))
        assert outcome.code in (0, 2), outcome
        tally.add("hostile CLI calls")
    mine = room.incident(ME)
    # note (after `--`: text that starts with '-' is a note, not an option)
    outcome = room.run("note", mine, "--", raw)
    _judge(outcome, str(room.last(mine, Kind.NOTE)["text"]) if outcome.code == 0 else None,
           raw, "note", tally)
    # relayed approval: its evidence, then its relayed-from name on another incident
    outcome = room.run("approve", mine, "--role", "platform-lead", "--relayed-from", "marco",
                       b"--evidence=" + raw)
    _judge(outcome, str(room.last(mine, Kind.APPROVED)["evidence"]) if outcome.code == 0
           else None, raw, "approve --evidence", tally)
    other = room.incident(ME)
    outcome = room.run("approve", other, "--role", "platform-lead", b"--relayed-from=" + raw,
                       "--evidence=bridge call 22:14")
    _judge(outcome, str(room.last(other, Kind.APPROVED)["relayed_from"]) if outcome.code == 0
           else None, raw, "approve --relayed-from", tally)
    # waive reason, target reason
    outcome = room.run("waive", mine, "--role", "security-lead", b"--reason=" + raw)
    _judge(outcome, str(room.last(mine, Kind.WAIVED)["reason"]) if outcome.code == 0 else None,
           raw, "waive --reason", tally)
    outcome = room.run("target", mine, "--to-version", "v1.4.4", b"--reason=" + raw)
    _judge(outcome, str(room.last(mine, Kind.TARGET_CHANGED)["reason"]) if outcome.code == 0
           else None, raw, "target --reason", tally)
    # a direct approval's note, on an incident someone else commands
    theirs = room.incident("alice")
    outcome = room.run("approve", theirs, "--role", "security-lead", b"--note=" + raw)
    _judge(outcome, str(room.last(theirs, Kind.APPROVED)["note"]) if outcome.code == 0 else None,
           raw, "approve --note", tally)
    # a role, an incident id: refused
    refused: list[tuple[str | bytes, ...]] = [("approve", theirs, b"--role=" + raw),
                                              ("note", raw, "text")]
    for refused_args in refused:
        outcome = room.run(*refused_args)
        assert outcome.code == 2 and len(outcome.err.strip().splitlines()) == 1, outcome
        tally.add("hostile CLI calls")
    # what was stored exports safely, and the chain holds
    for incident in (mine, other, theirs):
        _exports_are_safe(room, incident, tally)


def _exports_are_safe(room: Room, incident: str, tally: Tally) -> None:
    for fmt in ("pir", "comms"):
        outcome = room.run("export", incident, "--format", fmt)
        assert outcome.code == 0, outcome.err
        unsafe = "<script" in outcome.out.lower() or any(
            chr(c) in outcome.out for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
        tally.bad_outcome("exports with a raw HTML tag or bidi control", int(unsafe))
        assert not unsafe
    outcome = room.run("export", incident, "--format", "json")
    assert outcome.code == 0 and json.loads(outcome.out)["incident"]
    assert room.run("verify", incident).code == 0
    listing = room.run("list")
    assert listing.code == 0
    assert "\x1b" not in listing.out and "\u202e" not in listing.out


# --- through the real command, with raw bytes in argv -----------------------------------------


def _real_sample() -> list[bytes]:
    if LONG:
        return STRINGS
    invalid = [s for s in STRINGS if _not_utf8(s)]
    return [*invalid[:4], b"\x1b[31mred\x1b[0m", "\u202e".encode()]


@pytest.fixture(scope="module")
def real_room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    room = tmp_path_factory.mktemp("real")
    (room / "warroom.toml").write_text(CONFIG)
    yield room


def _warroom(room: Path, *args: bytes | str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LC_ALL": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "console.cli", *args, "--db", "w.db"],
                          capture_output=True, timeout=60, cwd=room, env=env, check=False)


@pytest.mark.parametrize("raw", _real_sample(), ids=lambda r: repr(r[:24]))
def test_the_real_command_with_raw_bytes(real_room: Path, raw: bytes, tally: Tally) -> None:
    declared = _warroom(real_room, "declare", b"--title=" + raw, "--priority", "P1",
                        "--category", "incident", "--service", "svc", "--from-version", "v1",
                        "--to-version", "v2")
    noted = None
    if declared.returncode == 0:
        incident = declared.stdout.decode().strip().splitlines()[-1]
        noted = _warroom(real_room, "note", incident, "--", raw)
    for result in (declared, noted):
        if result is None:
            continue
        tally.add("hostile calls of the real warroom command")
        err = result.stderr.decode("utf-8", "replace")
        internal = result.returncode not in (0, 2) or "internal error" in err
        tally.bad_outcome("hostile CLI calls ending in an internal error", int(internal))
        assert not internal, err
        if result.returncode == 2:
            assert len(err.strip().splitlines()) == 1, err

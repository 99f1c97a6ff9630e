"""Figures of the consoles as a person meets them: start-up, keys, watchers, idle CPU, memory.

Every console here is the real ``warroom`` process on an 80×24 pseudo-terminal, its screen read
by pyte (see terminal.py); every baseline is a small Textual app from apps/ measured the same way,
in the same run, one repetition after the other.
"""

from __future__ import annotations

import getpass
import random
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from console.model import Kind
from console.store import Store
from tests.benchmarks import peers
from tests.benchmarks.context import REPETITIONS, BenchError, Context, interleave
from tests.benchmarks.harness import Figure, Series, absolute, ratio
from tests.benchmarks.terminal import (
    KEYS,
    Capped,
    ScreenTest,
    Terminal,
    every,
    hidden,
    in_pane,
    shows,
    timeline_rows,
    titled,
)

#: The console's panes at the bench's 80×24, by the titles on their borders. The guardrail graphs
#: (titled with the guardrails' names) are part of the layout from 30 rows up only: below, they
#: would be one line of figures that the Guardrails pane already shows (console/app.tcss).
WARROOM_PANES = ("Canary", "Rollback", "Approvals", "Guardrails", "Timeline")
BARE_TITLE = "Bare"
#: The note dialog's title, in the console and in the baseline app alike.
NOTE_FORM = "Add a note"
#: The canary pane's subtitle when nothing blocks `advance`.
READY = "✓ ready"

STARTUP_CAP_S = 30.0
NOTE_CAP_S = 10.0
NOTES = 20
WATCH_NOTES = 20
WATCH_OPEN_CAP_S = 30.0
IDLE_WINDOW_S = 60.0
IDLE_SLICE_S = 10.0
IDLE_SETTLE_S = 5.0
RSS_CAP_S = 90.0


def _bare(ctx: Context) -> Callable[[int], float]:
    return lambda _: ctx.time_to_screen(ctx.app("bare"), titled(BARE_TITLE), STARTUP_CAP_S,
                                        "the bare app's titled pane")


# --- start-up ------------------------------------------------------------------------------------


def startup(ctx: Context) -> list[Figure]:
    bare = Series("bare Textual app (Header, Footer, one Static): start → its pane titled", "s")
    demo = Series("warroom demo, fresh db: start → every pane titled", "s")

    def run_demo(repetition: int | str) -> float:
        db = ctx.fresh_path(f"startup/demo-{repetition}.db")
        return ctx.time_to_screen(ctx.warroom("demo", "--db", db), titled(*WARROOM_PANES),
                                  STARTUP_CAP_S, "every pane of warroom demo titled")

    _bare(ctx)(0)  # warm-up, untimed: bytecode written, files in the page cache
    run_demo("warm-up")
    interleave(REPETITIONS, [(bare, _bare(ctx)), (demo, run_demo)])
    return [ratio("startup_ratio", 1.3, demo, bare)]


def peer_startups(ctx: Context) -> list[Figure]:
    peers.write_inputs(ctx.run_dir)
    figures = []
    for peer in peers.PEERS:
        name = f"startup_ratio_{peer.name}"
        command, reason = peers.install(peer, ctx.cache, ctx.cap(peers.INSTALL_TIMEOUT_S))
        if command is None:
            figures.append(Figure(name, "×", None, note=f"skipped: {reason}"))
            ctx.log(f"{peer.name}: {reason}")
            continue
        argv = [str(command), *(str(ctx.run_dir / arg) for arg in peer.arguments)]
        bare = Series("bare Textual app: start → its pane titled", "s")
        measured = Series(f"{peer.package} {peer.version}: start → {peer.ready_words}", "s")

        def run_peer(_: int, argv: list[str] = argv, peer: peers.Peer = peer) -> float:
            return ctx.time_to_screen(argv, peer.ready, STARTUP_CAP_S,
                                      f"{peer.name}: {peer.ready_words}")

        run_peer(0)  # warm-up
        interleave(REPETITIONS, [(bare, _bare(ctx)), (measured, run_peer)])
        figures.append(ratio(name, None, measured, bare,
                             note=f"for information: {peer.package} {peer.version} in its own "
                                  f"venv (Textual {peers.textual_version(command)})"))
    return figures


# --- keys ----------------------------------------------------------------------------------------


def expect(term: Terminal, test: ScreenTest, timeout: float, what: str) -> None:
    """Wait for a step of a scenario (not a measurement): its absence breaks the benchmark."""
    try:
        term.wait_for(test, timeout, what)
    except Capped as capped:
        raise BenchError(f"{what}: not on screen after {timeout:g} s; the screen shows:\n"
                         + "\n".join(capped.screen)) from None


def submit_note(term: Terminal, text: str, pane: str) -> float:
    """`n`, the text, Enter; milliseconds from Enter to the text in ``pane`` (dialog closed)."""
    term.send("n")
    expect(term, shows(NOTE_FORM), NOTE_CAP_S, "the note dialog")
    term.send(text)
    expect(term, shows(text), NOTE_CAP_S, "the typed note")
    waiter = term.watch(every(hidden(NOTE_FORM), in_pane(pane, text)))
    pressed = term.send(KEYS["enter"])
    return (term.wait(waiter, pressed + NOTE_CAP_S, f"the note in the {pane} pane",
                      since=pressed) - pressed) * 1000


def advance(term: Terminal, percent: int) -> float:
    """`a`, then `y` once the confirmation shows; milliseconds from `y` to the canary pane
    showing ``percent`` as the current stage."""
    expect(term, shows(READY), 60, f"nothing blocking the advance to {percent}%")
    term.send("a")
    expect(term, shows("y = advance to"), NOTE_CAP_S, "the advance confirmation")
    waiter = term.watch(every(hidden("y = advance to"), in_pane("Canary", f"[{percent}%]")))
    pressed = term.send("y")
    return (term.wait(waiter, pressed + NOTE_CAP_S, f"the canary at {percent}%",
                      since=pressed) - pressed) * 1000


def key_to_redrawn(ctx: Context) -> list[Figure]:
    demo_db = ctx.fresh_path("keys/demo.db")
    notes_db = ctx.fresh_path("keys/notes.db")
    console = Series("warroom demo --fast: note Enter or advance y → shown on the commander's "
                     "screen", "ms")
    notes_only = Series("note Enter → the note in the Timeline pane", "ms")
    advances = Series("advance y → the new stage in the Canary pane", "ms")
    baseline = Series("minimal Textual app: note Enter → row committed to SQLite (WAL, FULL) "
                      "and shown", "ms")
    tag = secrets.token_hex(2)
    demo_argv = ctx.warroom("demo", "--fast", "--scenario", "good", "--db", demo_db)
    with ctx.running(demo_argv, titled(*WARROOM_PANES), 60, "the demo console") as demo, \
            ctx.running(ctx.app("note_app", notes_db), titled("Notes"), 30,
                        "the minimal note app") as app:

        def console_note(i: int) -> float:
            value = submit_note(demo, f"bench note {i:02d} {tag}", "Timeline")
            notes_only.add(value)
            return value

        interleave(NOTES, [(baseline, lambda i: submit_note(app, f"bench note {i:02d} {tag}",
                                                            "Notes")),
                           (console, console_note)])
        if not console.capped:
            # The compatibility checklist first (`c`, `y`), then three stages of the plan.
            demo.send("c")
            expect(demo, shows("y = I confirm"), NOTE_CAP_S, "the checklist confirmation")
            demo.send("y")
            for percent in (1, 10, 50):
                try:
                    value = advance(demo, percent)
                except Capped as capped:
                    console.add_capped(capped.elapsed_s * 1000, f"{capped.what} not seen "
                                       f"within {capped.elapsed_s:.1f} s of `y`")
                    break
                console.add(value)
                advances.add(value)
    parts = [f"notes p95 {_p95(notes_only)} (n={len(notes_only.samples)})",
             f"advances p95 {_p95(advances)} (n={len(advances.samples)})"]
    return [absolute("key_to_redrawn_p95_ms", 50, console, baseline, statistic="p95",
                     note="; ".join(parts))]


def _p95(series: Series) -> str:
    from tests.benchmarks.harness import percentile

    return f"{percentile(series.samples, 0.95):.0f} ms" if series.samples else "n/a"


def watch_latency(ctx: Context) -> list[Figure]:
    db = ctx.fresh_path("watch/demo.db")
    watch = Series("another process commits a note → shown by `warroom watch`", "ms")
    baseline = Series("the same commit → shown by a minimal Textual watcher (data_version "
                      "every 50 ms)", "ms")
    user = getpass.getuser()
    rng = random.Random(11)
    tag = secrets.token_hex(2)
    demo_argv = ctx.warroom("demo", "--scenario", "good", "--db", db)
    with ctx.running(demo_argv, titled(*WARROOM_PANES), 60, "the demo console"), \
            ctx.running(ctx.console("watch", db, "1"), titled(*WARROOM_PANES), 60,
                        "the watching console") as watcher, \
            ctx.running(ctx.app("watch_app", db), titled("Notes"), 30,
                        "the minimal watcher") as app, \
            Store(db) as store:
        for i in range(WATCH_NOTES):
            text = f"commit {i:02d} {tag}"
            seen_by_watcher = watcher.watch(in_pane("Timeline", text))
            seen_by_app = app.watch(in_pane("Notes", text))
            store.append(1, Kind.NOTE, user, {"text": text})
            committed = time.monotonic()
            for series, term, waiter in ((watch, watcher, seen_by_watcher),
                                         (baseline, app, seen_by_app)):
                if series.capped:
                    continue
                try:
                    series.add((term.wait(waiter, committed + NOTE_CAP_S, text) - committed)
                               * 1000)
                except Capped:
                    series.add_capped((time.monotonic() - committed) * 1000,
                                      f"a committed note was not shown within {NOTE_CAP_S:g} s")
            # Commits at random moments, not in step with anyone's polling period.
            time.sleep(rng.uniform(0.05, 0.4))
    return [absolute("watch_latency_p95_ms", 150, watch, baseline, statistic="p95",
                     note="the demo's commander runs meanwhile; commits by the benchmark's own "
                          "Store.append, timed from its return")]


# --- opening a long incident ---------------------------------------------------------------------


def watch_open(ctx: Context) -> list[Figure]:
    small_db = ctx.incident(1_000)
    large_db = ctx.incident(1_000_000)
    small = Series("warroom watch, 1,000 events: start → first timeline rows", "s")
    large = Series("warroom watch, 1,000,000 events: start → first timeline rows", "s")
    large_rss: list[float] = []

    def open_small(_: int) -> float:
        return ctx.time_to_screen(ctx.console("watch", small_db, "1"), timeline_rows(),
                                  WATCH_OPEN_CAP_S, "timeline rows (1,000 events)")

    def open_large(_: int) -> float:
        return ctx.time_to_screen(ctx.console("watch", large_db, "1"), timeline_rows(),
                                  WATCH_OPEN_CAP_S, "timeline rows (1,000,000 events)",
                                  inspect=lambda term: large_rss.append(term.rss_mb()[0]))

    with ctx.held_open(small_db, large_db):  # live incidents: a commander has them open
        open_small(0)  # warm-up
        interleave(REPETITIONS, [(small, open_small), (large, open_large)])
    note = (f"the 1M watcher's VmRSS when its rows showed (or at the cap): "
            f"{max(large_rss):.0f} MB" if large_rss else "")
    return [ratio("watch_open_1m_vs_1k_ratio", 2, large, small, note=note)]


# --- idle ----------------------------------------------------------------------------------------


def idle_cpu(ctx: Context) -> list[Figure]:
    watch_db = ctx.private_copy(1_000, "idle-watch")
    commander_db = ctx.private_copy(1_000, "idle-commander")
    names = ("bare", "watch", "commander")
    series = {
        "bare": Series("bare Textual app, idle: % of one core", "%"),
        "watch": Series("warroom watch (1,000 events, no commander), idle: % of one core", "%"),
        "commander": Series("warroom open (1,000 events, simulator polling every 2 s), idle: "
                            "% of one core", "%"),
    }
    with ctx.held_open(watch_db), \
            ctx.running(ctx.app("bare"), titled(BARE_TITLE), 60, "the bare app") as bare, \
            ctx.running(ctx.console("watch", watch_db, "1"),
                        every(titled(*WARROOM_PANES), timeline_rows()), 60,
                        "the watcher") as watcher, \
            ctx.running(ctx.console("open", commander_db, "1"),
                        every(titled(*WARROOM_PANES), timeline_rows()), 60,
                        "the commander") as commander:
        terms = dict(zip(names, (bare, watcher, commander), strict=True))
        time.sleep(IDLE_SETTLE_S)  # start-up work (preflight, first polls) is not idle
        first = {name: term.cpu_seconds() for name, term in terms.items()}
        previous = dict(first)
        started = time.monotonic()
        while time.monotonic() - started < IDLE_WINDOW_S - 0.01:
            time.sleep(min(IDLE_SLICE_S, IDLE_WINDOW_S - (time.monotonic() - started)))
            for name, term in terms.items():
                if not term.alive():
                    raise BenchError(f"the {name} process exited while idle:\n{term.text()}")
                now = term.cpu_seconds()
                series[name].add((now - previous[name]) / IDLE_SLICE_S * 100)
                previous[name] = now
        window = time.monotonic() - started
        totals = {name: (previous[name] - first[name]) / window * 100 for name in names}
    note = f"{window:.0f} s window in {IDLE_SLICE_S:.0f} s slices (spread), utime+stime from /proc"
    return [
        absolute("idle_cpu_watch_percent", 0.5, series["watch"], series["bare"],
                 value=totals["watch"], statistic="total", note=note),
        absolute("idle_cpu_commander_percent", 2, series["commander"], series["bare"],
                 value=totals["commander"], statistic="total", note=note),
    ]


# --- memory --------------------------------------------------------------------------------------


def memory(ctx: Context) -> list[Figure]:
    db = ctx.private_copy(100_000, "rss-100k")
    samples = {"commander": Series("warroom open, 100,000 events: VmRSS after its first "
                                   "timeline rows", "MB"),
               "watcher": Series("warroom watch, 100,000 events: VmRSS after its first "
                                 "timeline rows", "MB"),
               "bare": Series("bare Textual app: VmRSS after its first frame", "MB")}
    peaks: dict[str, float] = {}
    notes: list[str] = []
    terms = {"commander": ctx.terminal(ctx.console("open", db, "1")),
             "watcher": ctx.terminal(ctx.console("watch", db, "1")),
             "bare": ctx.terminal(ctx.app("bare"))}
    ready = {"commander": every(titled(*WARROOM_PANES), timeline_rows()),
             "watcher": every(titled(*WARROOM_PANES), timeline_rows()),
             "bare": titled(BARE_TITLE)}
    # The watcher may start before the commander has the file open: hold it open meanwhile.
    with ctx.held_open(db):
        try:
            for term in terms.values():
                term.start()
            deadline = time.monotonic() + ctx.cap(RSS_CAP_S)
            for name, term in terms.items():
                try:
                    term.wait(term.watch(ready[name]), deadline, f"the {name}'s first frame")
                except Capped as capped:
                    rss = term.rss_mb()[0]
                    samples[name].add_capped(rss, f"the {name} showed no timeline rows within "
                                                  f"{capped.elapsed_s:.0f} s (VmRSS then)")
            for _ in range(4):  # right away, then each second for 3 s: workers may still load
                for name, term in terms.items():
                    if not samples[name].capped:
                        samples[name].add(term.rss_mb()[0])
                    peaks[name] = term.rss_mb()[1]
                time.sleep(1.0)
        except (OSError, ProcessLookupError) as error:
            raise BenchError(f"reading /proc failed: {error}") from None
        finally:
            for term in terms.values():
                term.stop()
    larger = max(("commander", "watcher"), key=lambda name: max(samples[name].samples))
    other = "watcher" if larger == "commander" else "commander"
    notes.append(f"the larger is the {larger}; the {other}: {max(samples[other].samples):.0f} MB; "
                 f"peaks (VmHWM): commander {peaks.get('commander', 0):.0f} MB, watcher "
                 f"{peaks.get('watcher', 0):.0f} MB")
    return [absolute("rss_100k_mb", 150, samples[larger], samples["bare"],
                     value=max(samples[larger].samples), statistic="max", note="; ".join(notes))]




# --- replay: a moment of a long incident ---------------------------------------------------------

REPLAY_JUMPS = 20
REPLAY_CAP_S = 10.0
JUMP_FORM = "Jump to a moment"


def _span(db: Path) -> tuple[datetime, float]:
    """When the incident was declared, and how many seconds its record spans."""
    with Store(db, readonly=True) as store:
        state = store.state(1)
    assert state.declared_ts is not None and state.last_ts is not None
    return state.declared_ts, (state.last_ts - state.declared_ts).total_seconds()


def _replayed_at(clock: str) -> ScreenTest:
    """The header (the first line) shows the replay paused at ``clock`` (HH:MM:SS): its long
    form (``08:04:38 UTC · +41s · #19/1,000 · paused``) or its short one (``08:04:38 paused``)."""
    return lambda lines: bool(lines) and clock in lines[0] and "paused" in lines[0]


def replay_seek(ctx: Context) -> list[Figure]:
    small_db = ctx.incident(1_000)
    large_db = ctx.incident(1_000_000)
    large = Series("warroom replay, 1,000,000 events: t, a moment, Enter → the console as it "
                   "was then (header clock, panes, timeline)", "ms")
    small = Series("the same jump in warroom replay of the 1,000-event incident", "ms")
    rng = random.Random(16)

    def jump(term: Terminal, start: datetime, span_s: float, shown: list[str]) -> float:
        """A random moment of the record, typed as +Ns after the declaration; milliseconds
        from Enter to the replay showing it."""
        while True:
            offset = rng.randrange(0, max(1, int(span_s)))
            clock = (start + timedelta(seconds=offset)).strftime("%H:%M:%S")
            if clock != shown[-1]:
                break
        term.send("t")
        expect(term, shows(JUMP_FORM), REPLAY_CAP_S, "the replay's time form")
        term.send(f"+{offset}s")
        expect(term, shows(f"+{offset}s"), REPLAY_CAP_S, "the typed moment")
        waiter = term.watch(every(hidden(JUMP_FORM), _replayed_at(clock)))
        pressed = term.send(KEYS["enter"])
        seen = term.wait(waiter, pressed + REPLAY_CAP_S, f"the replay at {clock}", since=pressed)
        shown.append(clock)
        return (seen - pressed) * 1000

    spans = {db: _span(db) for db in (small_db, large_db)}
    ready = every(shows("REPLAY", "paused"), timeline_rows())
    with ctx.held_open(small_db, large_db), \
            ctx.running(ctx.console("replay", small_db, "1"), ready, 60,
                        "the replay of 1,000 events") as small_term, \
            ctx.running(ctx.console("replay", large_db, "1"), ready, 60,
                        "the replay of 1,000,000 events") as large_term:
        small_shown, large_shown = [""], [""]
        jump(small_term, *spans[small_db], small_shown)  # warm-up: the form's first build
        jump(large_term, *spans[large_db], large_shown)
        interleave(REPLAY_JUMPS, [
            (small, lambda _: jump(small_term, *spans[small_db], small_shown)),
            (large, lambda _: jump(large_term, *spans[large_db], large_shown))])
    return [absolute("replay_seek_1m_ms", 200, large, small, statistic="p95",
                     note=f"{REPLAY_JUMPS} jumps to random moments (+Ns after the declaration) "
                          "of each record, opened read-only in place; each folded from the "
                          "nearest kept checkpoint")]

"""Exports of an incident: the PIR (markdown), communication drafts, and JSON.

``export(fmt, store, incident_id, out, ...)`` writes one incident from the store while reading it
(the CLI and the console use it); ``render(fmt, events, ...)`` renders events held in memory
(tests, and the PIR and comms renderers underneath).

A record that failed verification is exported only when asked (``warroom export
--allow-broken``), and then says so where nobody can miss it: at the top of the PIR and the
comms, and as ``chain`` in the JSON.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, overload

if TYPE_CHECKING:
    from console.config import Config
    from console.export.record import DocumentSettings, Measured
    from console.model import Event
    from console.store import ChainChecker, ChainProblem, RecordStore

Samples = dict[str, list[tuple[float, float | None]]]
FORMATS = ("pir", "comms", "json")


def render(fmt: str, events: Sequence[Event], *, config: Config | DocumentSettings | None = None,
           samples: Measured | Samples | Callable[[], Measured | Samples] | None = None,
           now: datetime | None = None, chain_problem: ChainProblem | None = None) -> str:
    """Render ``events`` (one incident, oldest first) as ``pir``, ``comms`` or ``json``.
    ``samples``: the metric samples (or what the PIR takes of them: :class:`Measured`), or
    what gives them when the PIR gets to them (the comms do not use them). ``config``: the
    PIR needs only its :class:`DocumentSettings`; the comms, the whole configuration."""
    if fmt == "json":
        from console.export.jsonexport import render_json

        return render_json(events, chain_problem)
    if fmt == "pir":
        from console.export.pir import render_pir

        text = render_pir(events, config=config, samples=samples or {}, now=now)
    elif fmt == "comms":
        from console.export.comms import render_comms
        from console.export.record import DocumentSettings

        if isinstance(config, DocumentSettings):
            raise ValueError("the comms need the whole configuration, not only its "
                             "DocumentSettings")
        text = render_comms(events, config=config, now=now)
    else:
        raise ValueError(f"unknown export format {fmt!r} (pir, comms, json)")
    return text if chain_problem is None else _with_break(text, chain_problem)


def export(fmt: str, store: RecordStore, incident_id: int, out: TextIO, *,
           config: Config | None = None, now: datetime | None = None,
           allow_broken: bool = False, samples: bool = False, parallel: bool = False,
           leave: list[object] | None = None,
           late: LateConfig | None = None) -> tuple[int, ChainProblem | None]:
    """Write one incident from ``store`` to ``out`` as ``fmt``, verifying its chain as it is
    read; returns (events checked, the first problem or None). ``samples``: the JSON carries
    the metric samples too. ``parallel`` (the CLI, a process of its own): the PIR's and the
    comms' hashes are checked by a forked child meanwhile (:func:`read_events`). ``leave``
    receives the events read and the document, for a caller that ends its process right
    after and has no need to free them (the CLI: 100,000 events take 0.08 s to free, a PIR
    of them and its record 0.02 s); the cyclic collector, off while an export runs, is then
    left off (its first pass would walk all that the export made: 0.03 s at 100,000 events)
    — the caller turns it back on if it goes on.

    ``late`` (a PIR, ``parallel``, instead of ``config``): the configuration is read by the
    checking child while this process reads the events (:class:`LateConfig`); where no child
    can be had or it could not read it, :class:`NotConfigured` is raised before anything is
    written (the caller reads the configuration itself, which says what is wrong with it).

    A broken chain raises :class:`BrokenChain` unless ``allow_broken`` (the caller discards what
    was written: export to a temporary file); allowed, the export says where it broke.
    """
    import gc

    # An export allocates a few objects per event and frees none until it is done: the cyclic
    # collector's passes over 100,000 live events would cost more than the export itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _export(fmt, store, incident_id, out, config=config, now=now,
                       allow_broken=allow_broken, samples=samples, parallel=parallel,
                       leave=leave, late=late)
    finally:
        if collecting and leave is None:
            gc.enable()


def _export(fmt: str, store: RecordStore, incident_id: int, out: TextIO, *,
            config: Config | None, now: datetime | None, allow_broken: bool,
            samples: bool, parallel: bool, leave: list[object] | None,
            late: LateConfig | None) -> tuple[int, ChainProblem | None]:
    from console.store import ChainChecker

    if late is not None and (fmt != "pir" or not parallel or config is not None):
        raise ValueError("a configuration read late is for a PIR made in parallel")
    out = _Scrubbed(out)  # type: ignore[assignment]  # write() is all that is used
    checker = ChainChecker(store.chain_key)
    if late is not None:
        late.bind(store, checker)
    if fmt == "json":
        from console.export.jsonexport import verified_lines, write_json_lines

        def verified(chunks: Iterable[list[tuple[Any, ...]]]) -> Iterator[list[str]]:
            for rows in chunks:  # each row checked as its line is made
                yield verified_lines(rows, checker)

        def chain() -> ChainProblem | None:
            problem = checker.finish(store, incident_id)
            if problem is not None and not allow_broken:
                raise BrokenChain(problem)
            return problem

        series = ({name: store.samples(incident_id, name)
                   for name in store.series_names(incident_id)} if samples else None)
        write_json_lines(out, store.state(incident_id), verified(store.iter_chunks(incident_id)),
                         chain, series)
        return checker.checked, checker.problem

    def document(events: list[Event],
                 read: Callable[[], Measured | Samples | None] | None = None) -> Document:
        def measured() -> Measured | Samples:  # the child's (``read``), else read here
            got = read() if read is not None else None
            return got if got is not None else {name: store.samples(incident_id, name)
                                                for name in store.series_names(incident_id)}

        settings = config if late is None else late.settings()
        if fmt == "pir":  # its lines: written a part at a time, its Impact last (_write)
            from console.export.pir import pir_parts

            return _Parts(*pir_parts(events, config=settings, samples=measured, now=now))
        return render(fmt, events, config=settings, samples=measured, now=now)

    # In parallel, the document is made while the child checks the chain; its verdict still
    # decides whether it is written (and the break is printed in it when allowed).
    if parallel:
        settings: DocumentSettings | None = None
        if fmt == "pir" and late is None:  # with ``late``, the child has the configuration
            from console.export.record import DocumentSettings

            settings = DocumentSettings.of(config)
        events, text = read_events(store, incident_id, checker, document, late, settings)
    else:
        events, text = read_verified(store, incident_id, checker), None
    try:
        if leave is not None:
            leave.append(events)
        if late is not None:
            late.settings()  # the chain key is this process's before the head is checked
        problem = checker.finish(store, incident_id)
        if problem is not None and not allow_broken:
            raise BrokenChain(problem)
        if not events:
            events = store.require_events(incident_id)  # raises: the incident has none
        if text is None:
            text = document(events)
        _write(out, text if problem is None else _with_break(text, problem))
        if leave is not None:  # and the document (with what it was made of: the record)
            leave.append(text)
    finally:
        if isinstance(text, _Parts):
            text.close()
    return checker.checked, problem


def _nothing() -> None:
    pass


@dataclasses.dataclass(frozen=True)
class _Parts:
    """A PIR's lines in three parts: those before its Impact section, what makes that
    section's lines (from the metric samples, or from what the checking child worked out of
    them: it may wait for the child), and those after it. Written in that order
    (:func:`_write`), the first part — most of a long PIR — is written while the child works.
    ``close`` ends the child (once they are written, or were not)."""

    before: list[str] | str
    impact: Callable[[], list[str]]
    after: list[str]
    close: Callable[[], None] = _nothing


#: A document as :func:`_write` writes it: whole, as its lines, or as a PIR's parts.
Document = str | list[str] | _Parts


def _write(out: TextIO, text: Document) -> None:
    """A document, or its lines (joined by line breaks, and one at the end): a long one a
    part at a time, without making it one string first — unless a secret is registered, when
    the one scrub sees it whole (a secret's pieces may lie across a line break)."""
    if isinstance(text, _Parts):
        from adapters.secrets import registered

        if registered():
            before = text.before
            whole = before if isinstance(before, str) else "\n".join(before) + "\n"
            _write(out, whole + "\n".join([*text.impact(), *text.after]) + "\n")
            return
        _write(out, text.before)
        _write(out, [*text.impact(), *text.after])
        return
    if isinstance(text, str):
        out.write(text)
        return
    from adapters.secrets import registered

    if registered():
        out.write("\n".join(text) + "\n")
        return
    for start in range(0, len(text), _LINES_A_WRITE):
        out.write("\n".join(text[start:start + _LINES_A_WRITE]) + "\n")


#: Lines of a long document written at a time (a few hundred kilobytes).
_LINES_A_WRITE = 4096


class _Scrubbed:
    """A text stream that passes every write through the one scrub (the record is scrubbed
    when written; this also covers a record written before a secret was configured)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        from adapters.secrets import scrub

        return self._out.write(scrub(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._out, name)


def read_verified(store: RecordStore, incident_id: int, checker: ChainChecker) -> list[Event]:
    """Every event of the incident, read once: each row is checked against the chain as it
    is read, and its payload decoded. Past a break (once ``checker`` has a problem) the rows
    are still read, so ``--allow-broken`` exports the record as it is."""
    decode = _payload_decoder()
    events: list[Event] = []
    times = _Times()
    for rows in store.iter_chunks(incident_id):
        checker.check_rows(rows)
        events += _stored_events(rows, decode, times)
    return events


def _stored_events(rows: Iterable[tuple[Any, ...]], decode: Callable[[str], dict[str, Any]],
                   times: _Times) -> list[Event]:
    """The events of stored rows (all their columns, as the chain's readers read them), each
    payload decoded and each time parsed once."""
    from console.model import as_events, event_parts

    return as_events([event_parts(event_id, inc, times[ts], kind, actor, decode(payload), prev,
                                  digest)
                      for event_id, inc, ts, kind, actor, payload, prev, digest in rows])


class _Times(dict[str, datetime]):
    """Stored times parsed, each once (events written together share their time)."""

    def __init__(self) -> None:
        super().__init__()
        from console.model import parse_ts

        self._parse = parse_ts

    def __missing__(self, text: str) -> datetime:
        parsed = self[text] = self._parse(text)
        return parsed


def read_events(store: RecordStore, incident_id: int, checker: ChainChecker,
                meanwhile: Callable[[list[Event], Callable[[], Measured | Samples | None]],
                                    Document] | None = None,
                late: LateConfig | None = None, settings: DocumentSettings | None = None,
                ) -> tuple[list[Event], Document | None]:
    """:func:`read_verified`, its hash-checking done by a forked child meanwhile where one can
    be had (an SQLite record, a platform with ``fork``): the child reads the same rows on a
    connection of its own and checks them while this process decodes them, builds the events
    and makes of them what ``meanwhile`` makes (the document) — on two cores, the check costs
    no wait. Both stop at the newest event there was when they began, and each keeps a digest
    of every chunk it read: rows that differ between the two reads (the record written to
    under them), or a child that fails, and the rows are read and checked here, as without a
    child, and ``meanwhile``'s result is dropped (None: make it again from these events).
    ``checker`` ends as the child's: the caller decides from it whether the result is used.
    For a PIR (``settings``, its settings, or ``late``), the child, which has time to spare,
    also reads the incident's metric samples once it has checked, and works out what the
    PIR's Impact section takes of them (:class:`~console.export.record.Measured`, from the
    marked events among the rows it checked) — or, where that needs more of the events than
    it decodes, sends the samples: ``meanwhile``'s second argument waits for that answer
    (which comes after the verdict) and gives either (None when the child gave neither). A
    PIR's parts (:class:`_Parts`) come back with a ``close`` that ends the child, for the
    caller to call once it has written them.

    ``late``: the child reads the configuration first (:class:`LateConfig`), and this process
    takes it when it needs it; :class:`NotConfigured` when no child can be had."""
    child = _CheckingChild.start(store, incident_id, checker, late, settings)
    if child is None:
        if late is not None:
            raise NotConfigured("no process could be forked to read the configuration")
        return read_verified(store, incident_id, checker), None
    try:
        events, digests = _read_unchecked(store, incident_id, child.up_to)
        headed = _head_hashes(store, events)
        made = (meanwhile(events, child.measured) if meanwhile is not None and events
                and headed else None)
    except BaseException:
        child.abandon()
        raise
    if not child.adopt(checker, digests) or not headed or not _head_checked(events, checker):
        child.abandon()
        if late is not None:
            late.settings()  # the chain key, before the rows are checked here
        return read_verified(store, incident_id, checker), None
    if isinstance(made, _Parts):  # its Impact section may yet ask the child
        return events, dataclasses.replace(made, close=child.abandon)
    child.abandon()
    return events, made


def _rows_up_to(store: RecordStore, incident_id: int,
                up_to: int) -> Iterator[list[tuple[Any, ...]]]:
    return store.iter_chunks_up_to(incident_id, up_to)


#: The columns of a stored row that :func:`_read_unchecked` reads (all but the incident, which
#: the query names, and the chain's two hashes, which only the checking child needs).
_CONTENT = operator.itemgetter(0, 2, 3, 4, 5)
_KIND = operator.itemgetter(3)


def _read_unchecked(store: RecordStore, incident_id: int,
                    up_to: int) -> tuple[list[Event], list[int]]:
    """The events up to ``up_to`` (not checked, and without their hashes: see
    :func:`_with_head_hashes`), and a digest of each chunk of rows (their :data:`_CONTENT`)."""
    from console.model import as_events, event_parts

    decode = _payload_decoder()
    events: list[Event] = []
    digests: list[int] = []
    times = _Times()
    for rows in store.iter_content_chunks(incident_id, up_to):
        digests.append(hash(tuple(rows)))
        events += as_events([event_parts(event_id, incident_id, times[ts], kind, actor,
                                         decode(payload), "", "")
                             for event_id, ts, kind, actor, payload in rows])
    return events, digests


def _with_head_hashes(store: RecordStore, events: list[Event], checker: ChainChecker) -> bool:
    """The newest of ``events`` (read without hashes) with its stored hashes: the documents
    name the head of the chain. False when that row's hash is not the one the child checked
    (the record changed under the export)."""
    return _head_hashes(store, events) and _head_checked(events, checker)


def _head_hashes(store: RecordStore, events: list[Event]) -> bool:
    """The newest of ``events`` with its stored hashes (read before the child has answered:
    :func:`_head_checked` then says whether they are the ones it checked); False when that
    event is no longer there."""
    if not events:
        return True
    head = events[-1]
    stored = store.events(head.incident_id, after_id=head.id - 1, limit=1)
    if not stored or stored[0].id != head.id:
        return False
    full = stored[0]
    events[-1] = dataclasses.replace(head, prev_hash=full.prev_hash, hash=full.hash)
    return True


def _head_checked(events: list[Event], checker: ChainChecker) -> bool:
    """The head's hash is the one the child checked last (a broken chain says so itself)."""
    return not events or checker.problem is not None or events[-1].hash == checker.last_hash


class LateConfig:
    """The configuration of an export begun before it was read (``warroom export`` of a PIR:
    reading it takes a tenth of a second, which the events need not wait for). ``read`` runs
    in the checking child, before it checks (it reads the configuration as the caller always
    does, and gives what the export takes of it as plain values: :class:`Configured`); this
    process takes that answer when it first needs it (:meth:`settings`), registers its
    secrets and chain key, and keeps it (:attr:`configured`)."""

    def __init__(self, read: Callable[[], Configured]) -> None:
        self.read = read
        self.configured: Configured | None = None
        #: Where the answer comes from (the checking child, once it is started).
        self.source: Callable[[], Configured | None] | None = None
        self._store: RecordStore | None = None
        self._checker: ChainChecker | None = None

    def bind(self, store: RecordStore, checker: ChainChecker) -> None:
        self._store, self._checker = store, checker

    def settings(self) -> DocumentSettings:
        """What the document takes of the configuration (waiting for the child's answer once,
        then its secrets and chain key are this process's); :class:`NotConfigured` when the
        child could not read it."""
        if self.configured is None:
            got = self.source() if self.source is not None else None
            if got is None:
                raise NotConfigured("the configuration could not be read by the checking child")
            got.adopt(self._store, self._checker)
            self.configured = got
        return self.configured.document


@dataclasses.dataclass(frozen=True)
class Configured:
    """What an export takes of the configuration, as plain values (pickled from the process
    that read it): the document's settings, the values of the configured secrets (for the one
    scrub), the chain key, and the store's group (an export file's mode)."""

    document: DocumentSettings
    secrets: tuple[str, ...] = ()
    chain_key: bytes | None = None
    group: str | None = None

    def adopt(self, store: RecordStore | None, checker: ChainChecker | None) -> None:
        """Make them this process's, as reading the configuration here would have."""
        from adapters.secrets import register
        from console.store import use_chain_key

        register(self.secrets)
        use_chain_key(self.chain_key)
        if store is not None:
            store.chain_key = self.chain_key
        if checker is not None:
            checker.key = self.chain_key


class NotConfigured(Exception):
    """An export begun before its configuration was read has not got it: the caller reads it
    and starts again (nothing was written)."""


class _CheckingChild:
    """A forked process that checks an incident's chain up to one event and reports how far
    it got (pickled through a pipe), with a digest of each chunk of rows it read, and for a
    PIR what it takes of the incident's metric samples (:func:`_measured_in_child`). With a
    :class:`LateConfig`, it first reads the configuration and answers with what the export
    takes of it (None when it could not: then it stops)."""

    #: Longest wait for the child's answer once this process is done (then: check here).
    WAIT_S = 120.0

    def __init__(self, pid: int, answer: int, up_to: int, late: LateConfig | None,
                 measuring: bool = False) -> None:
        self.pid = pid
        self.up_to = up_to
        self._answer = answer
        self._answered: dict[str, Any] | None = None
        self._measuring = measuring
        self._measured: Measured | Samples | None = None
        self._done = False
        self._buffer = bytearray()
        self._deadline: float | None = None
        self._configured: Configured | None = None
        self._late = late is not None
        self._status: int | None = None
        if late is not None:
            late.source = self.configured

    @classmethod
    def start(cls, store: RecordStore, incident_id: int, checker: ChainChecker,
              late: LateConfig | None = None,
              settings: DocumentSettings | None = None) -> _CheckingChild | None:
        """The child, started (None where none can be had). ``settings`` (a PIR's) or
        ``late`` (whose configuration gives them): it also works out what the PIR takes of
        the samples."""
        import os

        if store.engine != "sqlite" or not hasattr(os, "fork") or checker.checked:
            return None
        up_to = store.last_event_id(incident_id)
        location = store.location
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return None
        if pid == 0:  # the child: check, answer, and leave without running any cleanup
            os.close(read)
            code = 1
            try:
                key = checker.key
                if late is not None:
                    configured: Configured | None = None
                    try:
                        configured = late.read()
                    finally:  # None: the parent reads it, and says what is wrong with it
                        _send(write, configured)
                    key = configured.chain_key
                    settings = configured.document
                _check_in_child(location, incident_id, up_to, key, write, settings)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        return cls(pid, read, up_to, late, late is not None or settings is not None)

    def abandon(self) -> None:
        """Stop the child and forget its answers (this process failed before it needed them,
        or needs no more of them)."""
        import os
        import signal

        if self._done:
            return
        self._done = True
        os.close(self._answer)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)

    def _message(self) -> tuple[bool, Any]:
        """(True, the child's next message), or (False, None) once it has no more: it ended,
        failed or took too long (it is then reaped, and its end is its status: True only for
        a clean exit after its last message)."""
        import os
        import pickle
        import select
        import signal
        import time

        if self._done:
            return False, None
        if self._deadline is None:
            self._deadline = time.monotonic() + self.WAIT_S
        buffer = self._buffer
        try:
            while len(buffer) < 8 or len(buffer) < 8 + int.from_bytes(buffer[:8], "little"):
                ready, _, _ = select.select([self._answer], [], [],
                                            max(0.0, self._deadline - time.monotonic()))
                if not ready:
                    os.kill(self.pid, signal.SIGKILL)
                    raise EOFError
                chunk = os.read(self._answer, 1 << 20)
                if not chunk:
                    raise EOFError
                buffer += chunk
        except EOFError:
            self._done = True
            os.close(self._answer)
            _, self._status = os.waitpid(self.pid, 0)
            return False, None
        size = int.from_bytes(buffer[:8], "little")
        data = bytes(buffer[8:8 + size])
        del buffer[:8 + size]
        try:
            return True, pickle.loads(data)
        except Exception:  # a torn answer is no answer
            self.abandon()
            return False, None

    def configured(self) -> Configured | None:
        """What the child read of the configuration (waiting for it once), or None."""
        if self._late:
            self._late = False
            ok, got = self._message()
            self._configured = got if ok and isinstance(got, Configured) else None
            if self._configured is None:
                self.abandon()
        return self._configured

    def _receive(self) -> dict[str, Any] | None:
        """The child's verdict (waited for once), or None when it failed or took too long."""
        if self._late and self.configured() is None:
            return None
        if self._done or self._answered is not None:
            return self._answered
        ok, answer = self._message()
        if not ok:
            return None
        if not isinstance(answer, dict):
            self.abandon()
            return None
        if not self._measuring:
            more, _ = self._message()  # the child ends after its answer: reaped, status read
            if more or self._status != 0:
                self.abandon()
                return None
        self._answered = answer
        return answer

    def measured(self) -> Measured | Samples | None:
        """What the child made of the metric samples (:func:`_measured_in_child`: its answer
        after the verdict, waited for once), or None."""
        if not self._measuring:
            return self._measured
        self._measuring = False
        if self._receive() is None:
            return None
        ok, got = self._message()
        if not ok:
            return None
        more, _ = self._message()  # the child ends after it: reaped, status read
        if more or self._status != 0:
            self.abandon()
            return None
        self._measured = got
        return self._measured

    def adopt(self, checker: ChainChecker, digests: list[int]) -> bool:
        """The child's verdict into ``checker``; False (``checker`` untouched) when the child
        failed, took too long, or read other rows than ``digests`` say this process read."""
        answer = self._receive()
        if answer is None or answer["digests"] != digests:
            return False
        for name in ("checked", "last_id", "last_hash", "problem", "keyed", "unverified"):
            setattr(checker, name, answer[name])
        return True


def _check_in_child(location: str, incident_id: int, up_to: int, key: bytes | None,
                    answer: int, settings: DocumentSettings | None = None) -> None:
    import os
    from itertools import compress

    from console.store import ChainChecker, Store

    with Store(location, readonly=True, chain_key=key) as store:
        checker = ChainChecker(store.chain_key)
        digests = []
        marked: list[tuple[Any, ...]] = []  # a PIR's: the rows of the events its charts mark
        kinds = _marked_kinds() if settings is not None else frozenset()
        for rows in _rows_up_to(store, incident_id, up_to):
            checker.check_rows(rows)  # once broken, the rest is only read (and digested)
            digests.append(hash(tuple(map(_CONTENT, rows))))
            if kinds:
                marked += compress(rows, map(kinds.__contains__, map(_KIND, rows)))
        _send(answer, {
            "checked": checker.checked, "last_id": checker.last_id,
            "last_hash": checker.last_hash, "problem": checker.problem, "keyed": checker.keyed,
            "unverified": checker.unverified, "digests": digests})
        if settings is not None:  # a PIR's, after the verdict: its first part is written meanwhile
            _send(answer, _measured_in_child(store, incident_id, settings, marked))
    os.close(answer)


def _marked_kinds() -> frozenset[str]:
    """The stored kinds of the events a PIR's charts mark."""
    from console.export.graphs import MARKED

    return frozenset(kind.value for kind in MARKED)


def _measured_in_child(store: RecordStore, incident_id: int, settings: DocumentSettings,
                       marked: list[tuple[Any, ...]]) -> Measured | Samples:
    """What the PIR's Impact section takes of the incident's metric samples — the figures of
    each series and the charts, worked out as the PIR would from the samples, the settings'
    units and the marked events (``marked``: their rows, among those the child checked; only
    theirs are decoded). Where a guardrail has no limit series, its limits come from the
    guardrail changes, which the child does not decode: the samples, for the PIR to work
    them out itself."""
    from console.export.record import measured_with

    samples = {name: store.samples(incident_id, name) for name in store.series_names(incident_id)}
    events = _stored_events(marked, _payload_decoder(), _Times())
    measured = measured_with(samples, settings.units, events, None)
    return samples if measured is None else measured


def _send(pipe: int, message: object) -> None:
    """One message of the checking child: its pickle's length (8 bytes), then the pickle."""
    import os
    import pickle

    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(pipe, view):]


def _payload_decoder() -> Callable[[str], dict[str, Any]]:
    """Decodes a stored payload (msgspec when installed: a fraction of the json module's time
    per payload, which is most of an export's reading)."""
    try:
        import msgspec
    except ImportError:  # pragma: no cover - msgspec is a dependency; json is the fallback
        import json

        return json.loads
    return msgspec.json.Decoder().decode  # type: ignore[no-any-return]


def protect(path: Path, group: str | None = None) -> None:
    """An export file's mode: 0600, or 0640 with the store's group — a PIR of a PII incident
    is not for every account on the bastion. An unknown group leaves it 0600."""
    import grp
    import os

    mode = 0o600
    if group:
        try:
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
            mode = 0o640
        except (KeyError, PermissionError):
            pass
    os.chmod(path, mode)


def write_private(path: Path, text: str, group: str | None = None) -> None:
    """Write an export to ``path`` whole (a temporary file beside it, renamed), mode as
    :func:`protect` says, whatever the umask, secrets scrubbed."""
    import os
    import tempfile

    from adapters.secrets import scrub

    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".warroom-export-")
    partial = Path(name)
    try:
        with open(handle, "w", encoding="utf-8") as out:
            out.write(scrub(text))  # every export, as export() does
        protect(partial, group)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class BrokenChain(Exception):
    """The record failed verification and the export was not asked for anyway."""

    def __init__(self, problem: ChainProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@overload
def _with_break(text: str, problem: ChainProblem) -> str: ...


@overload
def _with_break(text: list[str], problem: ChainProblem) -> list[str]: ...


@overload
def _with_break(text: _Parts, problem: ChainProblem) -> _Parts: ...


def _with_break(text: Document, problem: ChainProblem) -> Document:
    """The loud notice of a broken chain, right under the document's title (in the document,
    or among its lines or parts: see :func:`_write`)."""
    from console.export.markdown import md_inline

    if isinstance(text, _Parts):
        return dataclasses.replace(text, before=_with_break(text.before, problem))

    where = f"#{problem.event_id}" if problem.event_id is not None else "the record"
    notice = (f"> **⚠ CHAIN BROKEN at {where} — the record was edited.** "
              f"{md_inline(problem.message, '> ')}. "
              "This document was exported with `--allow-broken` from a record that failed "
              "verification: facts after the break cannot be trusted.")
    if not isinstance(text, str):
        return _with_break("\n".join(text) + "\n", problem) if not text or "\n" in text[0] \
            else [text[0], "", notice, *text[1:]]
    title, _, rest = text.partition("\n")
    return f"{title}\n\n{notice}\n{rest}"

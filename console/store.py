"""The incident record: append-only, hash-chained events, fold checkpoints, metric samples and
commander leases, behind one interface (:class:`RecordStore`) with two engines.

- :class:`Store` keeps the record in one SQLite file (the default): WAL mode,
  ``synchronous=FULL``, a busy timeout; writers serialise with ``BEGIN IMMEDIATE``; the schema
  version is ``PRAGMA user_version``; the file is created 0600, or 0660 for a configured war-room
  group; readers (``warroom watch``) open it read-only and notice changes through
  ``PRAGMA data_version``.
- ``console.pgstore.PostgresStore`` keeps it in PostgreSQL, for teams beyond one host (README,
  "PostgreSQL store"): the same tables and chain, an append after the chain head the store
  knows in one statement (else writers serialised per incident by an advisory lock and the
  head's row lock), watchers woken by LISTEN/NOTIFY.

On both, events are never updated or deleted (triggers in the database refuse it), and each
incident's events form a sha256 chain (``hash = sha256(prev_hash + canonical event)``) computed
here, in Python, from the stored bytes: the same events have the same hashes whichever engine
holds them, so :meth:`RecordStore.verify` and the exports give the same answer on both and
:func:`copy_incident` moves a record between them intact. Migrations are explicit and a newer
unknown schema version is refused rather than guessed at.

Open a store with :func:`open_store` (a path or a ``postgresql://`` URL).
"""

from __future__ import annotations

import contextlib
import functools
import grp
import hashlib
import hmac
import json
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.secrets import scrub, scrub_value
from console.events import Payload
from console.model import (
    Event,
    Kind,
    format_head,
    format_incident_id,
    format_ts,
    parse_ts,
    stored_event,
    utcnow,
)
from console.state import IncidentState

if TYPE_CHECKING:
    from console.filewatch import FileWatch

SCHEMA_VERSION = 5
#: From this schema version on (both engines), the record keeps a history of fold checkpoints:
#: the state as of every :data:`HISTORY_EVERY`-th event, so a replay folds from the nearest one.
HISTORY_SCHEMA = 5
GENESIS_HASH = "0" * 64
BUSY_TIMEOUT_MS = 10_000
#: A checkpoint is written after at least this many events since the last one...
CHECKPOINT_EVERY = 256
#: A checkpoint is also kept in the history (never replaced) once per this many events.
HISTORY_EVERY = 512
#: ...and after every event that is not one of these (the ones that come in hundreds), so the
#: state a list or a console opens with is at most a few hundred such events away.
FREQUENT_KINDS: frozenset[str] = frozenset({
    Kind.NOTE, Kind.GUARDRAIL_CHANGED, Kind.ROLLBACK_PROGRESS, Kind.NOTIFIED, Kind.NOTIFY_FAILED,
    Kind.CONSOLE_OPENED,
})


#: Set by :func:`forbid_write_handles`: this process only watches.
_WATCH_ONLY = False


def incident_in_file(path: Path, incident_id: int) -> bool:
    """Whether the database file itself holds the incident, read without a -wal or -shm
    (``immutable``: for an answer when nothing is writing it, e.g. to name an unknown incident
    before saying why a watcher cannot open the file). True when it cannot tell."""
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return True
    try:
        return conn.execute("SELECT 1 FROM incidents WHERE id = ?",
                            (incident_id,)).fetchone() is not None
    except sqlite3.Error:
        return True
    finally:
        conn.close()


def forbid_write_handles() -> None:
    """From now on, every read-only store this process opens holds no write handle on any of
    the database's files, or is refused (``warroom watch``)."""
    global _WATCH_ONLY
    _WATCH_ONLY = True


class StoreError(Exception):
    """The database cannot be used; ``str()`` is one line saying why and what to do."""


class UnknownIncident(StoreError):
    """No incident has that id."""


class LeaseHeld(StoreError):
    """Another live commander holds the incident's lease."""

    def __init__(self, lease: Lease, age_s: float) -> None:
        self.lease = lease
        self.age_s = age_s
        super().__init__(
            f"{format_incident_id(lease.incident_id)} is commanded by {lease.user} "
            f"(pid {lease.pid} on {lease.host}, heartbeat {age_s:.0f}s ago); "
            "use --take-over to take command, or `warroom watch` to follow"
        )


@dataclass(frozen=True)
class Lease:
    """Who commands an incident right now."""

    incident_id: int
    user: str
    host: str
    pid: int
    token: str
    acquired_ts: datetime
    heartbeat_ts: datetime


@dataclass(frozen=True)
class TimelineRows:
    """A filter's rows of an incident's timeline, as of one snapshot (:meth:`timeline_rows`)."""

    row_total: int
    event_total: int
    tail: list[Event]
    up_to_id: int
    anchor_row: int | None = None


@dataclass(frozen=True)
class ChainProblem:
    """The first place where an incident's chain does not hold."""

    event_id: int | None
    message: str


def canonical_json(value: Any) -> str:
    """The one serialisation hashed and stored: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (JSON has no such numbers); tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def event_hash(prev_hash: str, event_id: int, incident_id: int, ts: str, kind: str, actor: str,
               payload_json: str, key: bytes | None = None) -> str:
    """``sha256(prev_hash + canonical event)``, hashing the stored payload bytes as they are.

    The canonical event is ``canonical_json`` of ``{actor, id, incident, kind, payload, ts}``;
    the payload is stored canonical already, so it is spliced in rather than parsed and
    re-serialised (the same bytes, at a fraction of the cost). A payload that was edited into
    another spelling of the same JSON therefore no longer matches its hash — as it should not.
    """
    before, after = hashed_text_around_id(prev_hash, incident_id, ts, kind, actor, payload_json)
    text = f"{before}{event_id}{after}".encode()
    if key is not None:  # a keyed chain: nobody without the key can recompute it
        return hmac.new(key, text, hashlib.sha256).hexdigest()
    return hashlib.sha256(text).hexdigest()


def hashed_text_around_id(prev_hash: str, incident_id: int, ts: str, kind: str, actor: str,
                          payload_json: str) -> tuple[str, str]:
    """What :func:`event_hash` hashes (``prev_hash`` and the canonical event), before and after
    the event's id, for an engine that numbers the event and hashes it in the same statement."""
    return (f'{prev_hash}{{"actor":{_json_string(actor)},"id":',
            f',"incident":{incident_id},"kind":{_json_string(kind)},"payload":{payload_json},'
            f'"ts":{_json_string(ts)}}}')


#: What a keyed incident's declaration says in its payload (``"chain": "keyed"``).
KEYED = "keyed"

#: The chain key of this process (see :func:`use_chain_key`), used by every store it opens.
_CHAIN_KEY: bytes | None = None


def use_chain_key(key: bytes | None) -> None:
    """The key of keyed chains (HMAC-SHA256) for every store this process opens: incidents
    declared with it are keyed, and appending to or verifying a keyed incident needs it."""
    global _CHAIN_KEY
    _CHAIN_KEY = key


@dataclass(frozen=True)
class Head:
    """An incident's newest event: what a published ``head #N sha256:…`` names."""

    event_id: int
    hash: str
    keyed: bool = False

    def __str__(self) -> str:
        return format_head(self.event_id, self.hash, self.keyed)

    @classmethod
    def parse(cls, text: str) -> Head:
        """``N:HASH`` (also ``#N:sha256:HASH`` or ``head #N sha256:HASH``) → a head."""
        cleaned = text.strip().removeprefix("head").strip().lstrip("#")
        number, sep, digest = cleaned.replace(" ", ":", 1).partition(":")
        digest = digest.removeprefix("hmac-sha256:").removeprefix("sha256:").strip().lower()
        if not sep or not number.isdigit() or len(digest) != 64 or any(
                ch not in "0123456789abcdef" for ch in digest):
            raise ValueError(f"{text!r} is not a head: expected N:HASH (64 hex digits), as "
                             "`warroom verify` prints it")
        return cls(int(number), digest)


#: JSON's string encoder without ensure_ascii (what canonical_json uses), in C where available.
_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def storage_advice(error: BaseException, where: object = None) -> str:
    """What to do about a storage error, in words (empty when there is nothing to say): the
    faults a war room meets are a lock held too long, a full disk and a read-only file."""
    text = str(error).lower()
    if where is not None and ("i/o" in text or "full" in text):
        # SQLite says "disk I/O error" when a full disk stops it making its -shm file
        with contextlib.suppress(OSError):
            if shutil.disk_usage(Path(str(where)).parent).free < 64 * 1024:
                return "the disk is full: free space on its filesystem, then try again"
    if "locked" in text or "busy" in text:
        return (f"another process held the database locked for more than "
                f"{BUSY_TIMEOUT_MS / 1000:g} s: let it finish or stop it, then try again")
    if "full" in text or "no space" in text:
        return "the disk is full: free space on its filesystem, then try again"
    if "readonly" in text or "read-only" in text or "permission" in text:
        return ("it cannot be written: make the file, its -wal and -shm files and its directory "
                "writable for this user, then try again")
    if "unable to open" in text or "disk i/o" in text:
        return ("check that the file, its -wal and -shm files and its directory exist and are "
                "readable and writable for this user")
    return ""


def _storage_error(doing: str, where: object, error: BaseException) -> StoreError:
    """One line: what could not be done to which file, why, what to do (and, for a write,
    that nothing of it was written)."""
    advice = storage_advice(error, where)
    written = "; nothing was written" if doing == "write" else ""
    return StoreError(f"cannot {doing} {where}: {error}{written}"
                      + (f" ({advice})" if advice else ""))


def _create_file(path: Path, group: str | None) -> None:
    """Create the database file with the right mode before SQLite touches it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o660 if group else 0o600
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except FileExistsError:
        return
    os.close(fd)
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            path.unlink(missing_ok=True)
            raise StoreError(f"store.group {group!r} is not a group on this host") from None
        os.chown(path, -1, gid)
    os.chmod(path, mode)  # the umask may have removed bits we asked for


def _schema_v2(conn: sqlite3.Connection) -> None:
    """Version 2: fold checkpoints (derived, replaceable) and an index for the timeline's
    filters (events of some kinds, by id)."""
    conn.execute(
        "CREATE TABLE checkpoints (incident_id INTEGER PRIMARY KEY REFERENCES incidents(id), "
        "event_id INTEGER NOT NULL, event_hash TEXT NOT NULL, fold_version TEXT NOT NULL, "
        "digest TEXT NOT NULL, state TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX events_by_incident_kind ON events (incident_id, kind, id)")


def _schema_v1(conn: sqlite3.Connection) -> None:
    """Version 1: incidents, append-only events, samples, leases.

    The statements are the ones sqlite-utils wrote for this schema, byte for byte (so the
    schema text of every database is the same whichever made it), in plain SQL: sqlite-utils
    imports numpy where it is installed, a fifth of a second at every new database's start."""
    conn.execute('CREATE TABLE "incidents" (\n   "id" INTEGER PRIMARY KEY,\n'
                 '   "created_ts" TEXT NOT NULL\n)')
    conn.execute('CREATE TABLE "events" (\n   "id" INTEGER PRIMARY KEY,\n'
                 '   "incident_id" INTEGER NOT NULL REFERENCES "incidents"("id"),\n'
                 '   "ts" TEXT NOT NULL,\n   "kind" TEXT NOT NULL,\n   "actor" TEXT NOT NULL,\n'
                 '   "payload" TEXT NOT NULL,\n   "prev_hash" TEXT NOT NULL,\n'
                 '   "hash" TEXT NOT NULL\n)')
    conn.execute('CREATE INDEX "events_by_incident"\n    ON "events" ("incident_id", "id")')
    conn.execute('CREATE INDEX "events_by_kind"\n    ON "events" ("kind", "ts")')
    for table in ("events", "incidents"):
        for verb in ("UPDATE", "DELETE"):
            conn.execute(
                f"CREATE TRIGGER {table}_are_append_only_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} are append-only: {verb} refused'); END"
            )
    conn.execute('CREATE TABLE "samples" (\n   "incident_id" INTEGER NOT NULL,\n'
                 '   "series" TEXT NOT NULL,\n   "ts" REAL NOT NULL,\n   "value" REAL\n)')
    conn.execute('CREATE INDEX "samples_by_series"\n'
                 '    ON "samples" ("incident_id", "series", "ts")')
    conn.execute('CREATE TABLE "leases" (\n   "incident_id" INTEGER PRIMARY KEY,\n'
                 '   "user" TEXT NOT NULL,\n   "host" TEXT NOT NULL,\n'
                 '   "pid" INTEGER NOT NULL,\n   "token" TEXT NOT NULL,\n'
                 '   "acquired_ts" TEXT NOT NULL,\n   "heartbeat_ts" TEXT NOT NULL\n)')


def _schema_v3(conn: sqlite3.Connection) -> None:
    """Version 3: each incident's chain head, advanced in the transaction of every append (so
    removing the newest events, or rewriting and re-hashing them, no longer matches it; its
    triggers refuse moving it back or deleting it), and the head each lease heartbeat saw."""
    conn.execute(
        "CREATE TABLE chain_heads (incident_id INTEGER PRIMARY KEY REFERENCES incidents(id), "
        "event_id INTEGER NOT NULL, hash TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TRIGGER chain_heads_only_advance BEFORE UPDATE ON chain_heads "
        "WHEN NEW.event_id <= OLD.event_id "
        "BEGIN SELECT RAISE(ABORT, 'a chain head only advances'); END"
    )
    conn.execute(
        "CREATE TRIGGER chain_heads_are_kept BEFORE DELETE ON chain_heads "
        "BEGIN SELECT RAISE(ABORT, 'chain heads are kept'); END"
    )
    conn.execute(
        "INSERT INTO chain_heads (incident_id, event_id, hash) "
        "SELECT e.incident_id, e.id, e.hash FROM events e "
        "WHERE e.id = (SELECT MAX(id) FROM events WHERE incident_id = e.incident_id)"
    )
    conn.execute("ALTER TABLE leases ADD COLUMN head_event_id INTEGER")
    conn.execute("ALTER TABLE leases ADD COLUMN head_hash TEXT")


def _schema_v4(conn: sqlite3.Connection) -> None:
    """Version 4 is PostgreSQL's alone (approvals checked by the database's roles): nothing
    here, so that the next version is one number on both engines."""


def _schema_v5(conn: sqlite3.Connection) -> None:
    """Version 5: the history of fold checkpoints (derived, replaceable: a replay folds from the
    nearest one before the moment it shows, never from the first event)."""
    conn.execute(
        "CREATE TABLE checkpoint_history (incident_id INTEGER NOT NULL REFERENCES incidents(id), "
        "event_id INTEGER NOT NULL, event_hash TEXT NOT NULL, fold_version TEXT NOT NULL, "
        "digest TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (incident_id, event_id))"
    )


#: version reached → the step that reaches it from the version before.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _schema_v1, 2: _schema_v2, 3: _schema_v3, 4: _schema_v4, 5: _schema_v5}


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event about to be appended, all but its id (which the engine gives)."""

    incident_id: int
    ts: str
    kind: str
    actor: str
    payload: dict[str, Any]
    payload_json: str  # the stored, hashed bytes of the payload
    prev_hash: str
    key: bytes | None  # the chain key, for a keyed chain

    def numbered(self, event_id: int) -> tuple[Event, tuple[Any, ...]]:
        """The event with this id, and its stored row."""
        digest = event_hash(self.prev_hash, event_id, self.incident_id, self.ts, self.kind,
                            self.actor, self.payload_json, self.key)
        event = Event(event_id, self.incident_id, parse_ts(self.ts), self.kind, self.actor,
                      self.payload, self.prev_hash, digest)
        return event, (event_id, self.incident_id, self.ts, self.kind, self.actor,
                       self.payload_json, self.prev_hash, digest)


class ChangeFeed:
    """Tells a watcher that something may have been committed to the store (events, samples, a
    lease): :meth:`wait` returns True when there is something to read.

    The SQLite feed asks ``PRAGMA data_version`` of the watcher's own reader connection (it
    changes when another connection commits); the PostgreSQL feed listens (LISTEN/NOTIFY).
    """

    #: How long a caller's loop should let one :meth:`wait` block when nothing happens: a
    #: feed that is woken by the change itself (LISTEN/NOTIFY, a file watch) is woken by
    #: :meth:`close` too, and can sleep long.
    patience = 0.1

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Up to ``timeout`` seconds for a change (False at once if ``stop`` is set)."""
        raise NotImplementedError

    def mark(self) -> None:
        """Everything committed so far is about to be read: only later commits count."""

    def close(self) -> None:
        """Stop listening."""


class RecordStore:
    """The record, whatever holds it: incidents, append-only hash-chained events, fold
    checkpoints, metric samples and commander leases.

    This class holds everything both engines share — the chain, the folded state and its
    checkpoints, the queries (written once, with ``?`` parameters) — and leaves to each engine
    how a transaction is opened and serialised, how an event is numbered, and how a watcher
    learns of a commit. :class:`Store` is SQLite (the default, one file on one host);
    ``console.pgstore.PostgresStore`` is PostgreSQL. Open either with :func:`open_store`.

    One instance wraps one connection guarded by a lock, so it may be shared with worker
    threads.
    """

    #: Which engine: ``"sqlite"`` or ``"postgresql"``.
    engine: str = ""
    #: Where the record lives, as said in messages (a path, or a URL without its password).
    location: str = ""
    readonly: bool = False
    schema_version: int = SCHEMA_VERSION
    #: The driver's exceptions, turned into :class:`StoreError` where a read fails.
    _errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        #: The key of keyed chains (this process's, :func:`use_chain_key`; an engine may
        #: take another).
        self.chain_key: bytes | None = _CHAIN_KEY
        self._lock = threading.RLock()
        # The folded state of each incident this store has read or written, as of its newest
        # event seen here; and the event count at its last checkpoint.
        self._states: dict[int, IncidentState] = {}
        self._checkpointed: dict[int, int] = {}
        self._history_counts: dict[int, int] = {}  # event id of the newest kept checkpoint

    # --- what each engine provides ---------------------------------------------------------------

    def _transaction(self, incident_id: int | None,
                     appends: bool) -> contextlib.AbstractContextManager[Any]:
        """A write transaction yielding the connection; serialised with every other writer of
        ``incident_id`` (of new incident numbers, for None) in any process. ``appends``: it
        will append events to that incident (an engine may fetch ahead what that needs)."""
        raise NotImplementedError

    def _execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run ``sql`` (``?`` parameters) on ``conn``; returns the driver's cursor."""
        raise NotImplementedError

    def _snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Several reads that see one committed state (call with the lock held)."""
        raise NotImplementedError

    def _next_event_id(self, conn: Any) -> int:
        """The id of the event about to be inserted (inside a write transaction)."""
        raise NotImplementedError

    def _connection(self) -> Any:
        raise NotImplementedError

    def _append_at_head(self, incident_id: int, kind: str, actor: str, payload: dict[str, Any],
                        ts: datetime) -> Event | None:
        """An engine's short road for one event that needs no decision: append it after the
        head this store last wrote or read, if that is still the chain's head, and return it;
        None (nothing written) sends the append down the serialised road."""
        del incident_id, kind, actor, payload, ts
        return None

    def _triggers_intact(self) -> bool:
        """Whether the database still refuses UPDATE and DELETE of events."""
        raise NotImplementedError

    def change_feed(self, incident_id: int) -> ChangeFeed:
        """A feed that wakes a watcher of ``incident_id`` when something was committed."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- shared plumbing -------------------------------------------------------------------------

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self, incident_id: int | None = None, *, appends: bool = False) -> Iterator[Any]:
        if self.readonly:
            raise StoreError("this database is open read-only")
        with self._lock:
            try:
                with self._transaction(incident_id, appends) as conn:
                    yield conn
            except BaseException:
                self._forget_states()  # they may hold events that were rolled back
                raise

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._execute(self._connection(), sql, params).fetchall())
            except self._errors as error:
                raise _storage_error("read", self.location, error) from None

    # --- incidents and events --------------------------------------------------------------------

    def create_incident(self, actor: str, declared: Payload | dict[str, Any],
                        extra: Sequence[Payload | tuple[str, dict[str, Any]]] = (),
                        ts: datetime | None = None) -> list[Event]:
        """Number a new incident and append its declaration (and ``extra`` facts) atomically."""
        ts = ts or utcnow()
        first = dict(_payload_dict(declared))
        if self.chain_key is not None:
            first["chain"] = KEYED  # the incident's first event says its chain is keyed
        facts = [(Kind.DECLARED.value, first)]
        facts += [(item.KIND, item.to_payload()) if isinstance(item, Payload) else item
                  for item in extra]
        with self._write(None) as conn:
            number = self._execute(
                conn, "SELECT COALESCE(MAX(id), 0) + 1 FROM incidents").fetchone()[0]
            self._execute(conn, "INSERT INTO incidents (id, created_ts) VALUES (?, ?)",
                          (number, format_ts(ts)))
            return [self._insert(conn, number, kind, actor, payload, ts)
                    for kind, payload in facts]

    def append(self, incident_id: int, kind: str, actor: str, payload: dict[str, Any] | None = None,
               ts: datetime | None = None) -> Event:
        """Append one event to an incident's chain (raw: code records typed facts with
        :meth:`record`)."""
        ts = ts or utcnow()
        event = self._append_at_head(incident_id, kind, actor, payload or {}, ts)
        if event is not None:
            return event
        with self._write(incident_id, appends=True) as conn:
            self._require_incident(conn, incident_id)
            return self._insert(conn, incident_id, kind, actor, payload or {}, ts or utcnow())

    def record(self, incident_id: int, actor: str,
               fact: Payload | Callable[[IncidentState], Payload],
               ts: datetime | None = None) -> Event:
        """Append one typed fact. Given a function instead, call it with the incident's state as
        of its newest event, inside the write transaction, and append what it returns — or
        nothing, if it refuses by raising (``policy.Refused``): the rules are checked against
        exactly the state the fact is appended to, even with other writers at work."""
        if isinstance(fact, Payload):
            ts = ts or utcnow()
            event = self._append_at_head(incident_id, fact.KIND, actor, fact.to_payload(), ts)
            if event is not None:
                return event
        with self._write(incident_id, appends=True) as conn:
            self._require_incident(conn, incident_id)
            record = fact if isinstance(fact, Payload) else fact(self._state_in(incident_id).copy())
            return self._insert(conn, incident_id, record.KIND, actor, record.to_payload(),
                                ts or utcnow())

    def append_many(self, incident_id: int, items: Sequence[tuple[str, str, dict[str, Any]]],
                    ts: datetime | None = None) -> list[Event]:
        """Append several ``(kind, actor, payload)`` events in one transaction."""
        ts = ts or utcnow()
        with self._write(incident_id, appends=True) as conn:
            self._require_incident(conn, incident_id)
            return [self._insert(conn, incident_id, k, a, p, ts) for k, a, p in items]

    def state(self, incident_id: int) -> IncidentState:
        """The incident's state as of its newest event: the newest valid checkpoint plus the
        events after it (never the whole history, once a checkpoint exists). A copy the caller
        owns. Raises :class:`UnknownIncident` for an incident without events."""
        with self._lock:
            try:
                state = self._state_in(incident_id)
            except self._errors as error:
                raise _storage_error("read", self.location, error) from None
            if not state.event_count:
                raise UnknownIncident(
                    f"no incident {format_incident_id(incident_id)} in {self.location}")
            return state.copy()

    # --- the folded state and its checkpoints ----------------------------------------------------

    def _forget_states(self) -> None:
        self._states.clear()
        self._checkpointed.clear()
        self._history_counts.clear()

    def _state_in(self, incident_id: int) -> IncidentState:
        """The cached state of an incident, caught up with its newest committed event (call
        with the lock held; inside a write transaction the catch-up sees what it will append
        to)."""
        state = self._states.get(incident_id)
        if state is None:
            state = self._load_checkpoint(incident_id) or IncidentState()
            self._states[incident_id] = state
            self._checkpointed[incident_id] = state.event_count
        for row in self._rows_after(incident_id, state.last_event_id):
            state.apply(_event_from_row(row))
        return state

    def _rows_after(self, incident_id: int, after_id: int) -> list[tuple[Any, ...]]:
        """The incident's stored rows after ``after_id`` (the state's catch-up)."""
        return list(self._execute(
            self._connection(),
            "SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
            "WHERE incident_id = ? AND id > ? ORDER BY id", (incident_id, after_id),
        ).fetchall())

    def _load_checkpoint(self, incident_id: int) -> IncidentState | None:
        """The incident's checkpoint if it is valid (see console/checkpoint.py), else None."""
        if self.schema_version < 2:
            return None
        from console import checkpoint

        row = self._execute(
            self._connection(),
            "SELECT c.event_id, c.event_hash, c.fold_version, c.digest, c.state, e.hash "
            "FROM checkpoints c LEFT JOIN events e ON e.id = c.event_id "
            "AND e.incident_id = c.incident_id WHERE c.incident_id = ?", (incident_id,),
        ).fetchone()
        if row is None:
            return None
        event_id, event_hash, fold_version, digest, text, chain_hash = row
        if (fold_version != checkpoint.FOLD_VERSION or chain_hash != event_hash
                or digest != checkpoint.digest(event_hash, fold_version, text)):
            return None
        try:
            state = checkpoint.decode(text)
        except ValueError:
            return None
        if state.last_event_id != event_id or state.last_hash != event_hash:
            return None
        return state

    def _write_checkpoint(self, conn: Any, state: IncidentState) -> None:
        from console import checkpoint

        text = checkpoint.encode(state)
        version = checkpoint.FOLD_VERSION
        self._execute(
            conn,
            "INSERT INTO checkpoints (incident_id, event_id, event_hash, fold_version, digest, "
            "state) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET "
            "event_id = excluded.event_id, event_hash = excluded.event_hash, "
            "fold_version = excluded.fold_version, digest = excluded.digest, "
            "state = excluded.state",
            (state.incident_id, state.last_event_id, state.last_hash, version,
             checkpoint.digest(state.last_hash, version, text), text),
        )
        self._checkpointed[state.incident_id] = state.event_count
        if self.schema_version >= HISTORY_SCHEMA and self._history_due(conn, state):
            self._execute(
                conn,
                "INSERT INTO checkpoint_history (incident_id, event_id, event_hash, "
                "fold_version, digest, state) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (incident_id, event_id) DO NOTHING",
                (state.incident_id, state.last_event_id, state.last_hash, version,
                 checkpoint.digest(state.last_hash, version, text), text),
            )
            self._history_counts[state.incident_id] = state.last_event_id

    def _history_due(self, conn: Any, state: IncidentState) -> bool:
        """Whether the state is :data:`HISTORY_EVERY` event ids past the newest kept in the
        history (read once per incident, then remembered). Ids, not counts: no count of a long
        record is needed, and with other incidents interleaved the spacing only gets closer."""
        known = self._history_counts.get(state.incident_id)
        if known is None:
            row = self._execute(
                conn, "SELECT c.event_id FROM checkpoint_history c WHERE c.incident_id = ? "
                "ORDER BY c.event_id DESC LIMIT 1", (state.incident_id,)).fetchone()
            known = int(row[0]) if row is not None else 0
            self._history_counts[state.incident_id] = known
        return state.last_event_id - known >= HISTORY_EVERY

    def checkpoint(self, incident_id: int) -> None:
        """Write the incident's checkpoint now (a console that closes, a rebuild after a
        checkpoint was found invalid)."""
        with self._write(incident_id) as conn:
            state = self._state_in(incident_id)
            if state.event_count:
                self._write_checkpoint(conn, state)

    def _require_incident(self, conn: Any, incident_id: int) -> None:
        if self._execute(conn, "SELECT 1 FROM incidents WHERE id = ?",
                         (incident_id,)).fetchone() is None:
            raise UnknownIncident(
                f"no incident {format_incident_id(incident_id)} in {self.location}")

    def _draft(self, state: IncidentState, incident_id: int, kind: str, actor: str,
               payload: dict[str, Any], ts: datetime) -> EventDraft:
        """The event that follows ``state``'s newest event (the chain's head as this store
        knows it), all but its id; nothing is written, the state is not changed."""
        # The record never holds a piece of a configured secret, whoever wrote the text.
        safe_payload = scrub_value(json_safe(payload))
        keyed = (safe_payload.get("chain") == KEYED if kind == Kind.DECLARED
                 else state.chain_keyed)
        if keyed and self.chain_key is None:
            raise StoreError(f"{format_incident_id(incident_id)}'s chain is keyed: appending "
                             "to it needs the chain key (the variable [store] chain_key_env "
                             "names must hold it)")
        return EventDraft(incident_id, format_ts(ts), str(kind), scrub(actor), safe_payload,
                          canonical_json(safe_payload), state.last_hash or GENESIS_HASH,
                          self.chain_key if keyed else None)

    def _checkpoint_due(self, incident_id: int, kind: str, event_count: int) -> bool:
        """Whether the state of ``event_count`` events, the newest of ``kind``, is to be
        written as the incident's checkpoint."""
        return self.schema_version >= 2 and (
            kind not in FREQUENT_KINDS
            or event_count - self._checkpointed.get(incident_id, 0) >= CHECKPOINT_EVERY)

    def _insert(self, conn: Any, incident_id: int, kind: str, actor: str,
                payload: dict[str, Any], ts: datetime) -> Event:
        state = self._state_in(incident_id)  # caught up: its newest event is the chain's head
        event, row = self._draft(state, incident_id, kind, actor, payload, ts).numbered(
            self._next_event_id(conn))
        self._execute(
            conn,
            "INSERT INTO events (id, incident_id, ts, kind, actor, payload, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        if self.schema_version >= 3:
            self._execute(
                conn,
                "INSERT INTO chain_heads (incident_id, event_id, hash) VALUES (?, ?, ?) "
                "ON CONFLICT (incident_id) DO UPDATE SET event_id = excluded.event_id, "
                "hash = excluded.hash", (incident_id, event.id, event.hash))
        state.apply(event)
        if self._checkpoint_due(incident_id, event.kind, state.event_count):
            self._write_checkpoint(conn, state)
        return event

    def incident_ids(self) -> list[int]:
        return [row[0] for row in self._read("SELECT id FROM incidents ORDER BY id")]

    def has_incident(self, incident_id: int) -> bool:
        return bool(self._read("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)))

    def incident_created_ts(self, incident_id: int) -> str:
        """When the incident was numbered, as stored (for :func:`copy_incident`)."""
        rows = self._read("SELECT created_ts FROM incidents WHERE id = ?", (incident_id,))
        if not rows:
            raise UnknownIncident(
                f"no incident {format_incident_id(incident_id)} in {self.location}")
        return str(rows[0][0])

    def events(self, incident_id: int, after_id: int = 0,
               limit: int | None = None) -> list[Event]:
        """An incident's events with id greater than ``after_id``, oldest first (the first
        ``limit`` of them, if given)."""
        sql = ("SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
               "WHERE incident_id = ? AND id > ? ORDER BY id")
        params: tuple[Any, ...] = (incident_id, after_id)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [_event_from_row(row) for row in self._read(sql, params)]

    # --- reading a window of the timeline (its filters are queries) ------------------------------

    def _kinds_clause(self, kinds: frozenset[str] | None) -> tuple[str, list[Any]]:
        if kinds is None:
            return "", []
        ordered = sorted(kinds)
        return f" AND kind IN ({', '.join('?' for _ in ordered)})", list(ordered)

    def count_events(self, incident_id: int, kinds: frozenset[str] | None = None,
                     before_id: int | None = None) -> int:
        """How many of the incident's events (of ``kinds``; with an id below ``before_id``)."""
        clause, params = self._kinds_clause(kinds)
        if before_id is not None:
            clause += " AND id < ?"
            params.append(before_id)
        rows = self._read(f"SELECT count(*) FROM events WHERE incident_id = ?{clause}",
                          (incident_id, *params))
        return int(rows[0][0])

    def events_page(self, incident_id: int, kinds: frozenset[str] | None, offset: int,
                    limit: int) -> list[Event]:
        """Rows ``offset`` … ``offset + limit - 1`` of the incident's events (of ``kinds``),
        oldest first."""
        clause, params = self._kinds_clause(kinds)
        rows = self._read(
            "SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
            f"WHERE incident_id = ?{clause} ORDER BY id LIMIT ? OFFSET ?",
            (incident_id, *params, limit, max(0, offset)),
        )
        return [_event_from_row(row) for row in rows]

    def events_tail(self, incident_id: int, kinds: frozenset[str] | None,
                    limit: int, up_to_id: int | None = None) -> list[Event]:
        """The newest ``limit`` events of the incident (of ``kinds``; with ids up to
        ``up_to_id``), oldest first.

        Of ``kinds``: one indexed read per kind, merged here. A single ``kind IN (...)`` query
        is planned over the incident's ids instead, and walks back through every event when
        the kinds are rare (the graphs' marks in a million-event record: seconds, not
        milliseconds)."""
        bound = "" if up_to_id is None else " AND id <= ?"
        bound_params: tuple[Any, ...] = () if up_to_id is None else (up_to_id,)
        select = ("SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
                  "WHERE incident_id = ?")
        if kinds is None:
            rows = self._read(f"{select}{bound} ORDER BY id DESC LIMIT ?",
                              (incident_id, *bound_params, limit))
        else:
            rows = []
            for kind in sorted(kinds):
                rows += self._read(f"{select} AND kind = ?{bound} ORDER BY id DESC LIMIT ?",
                                   (incident_id, kind, *bound_params, limit))
            rows = sorted(rows, key=lambda row: row[0], reverse=True)[:limit]
        return [_event_from_row(row) for row in reversed(rows)]

    def timeline_rows(self, incident_id: int, kinds: frozenset[str] | None, limit: int,
                      anchor_id: int | None = None, up_to_id: int | None = None,
                      event_count: int | None = None) -> TimelineRows:
        """What a timeline needs to show an incident of any length under a filter, read in one
        snapshot: the row count, the event count, the newest ``limit`` rows, the newest event
        id the counts include, and (with ``anchor_id``) the row of the first event at or after
        it. With ``up_to_id``, the incident as it was when that event was its newest (a
        replay; ``event_count``, the events up to it, when the caller's fold already knows it:
        counting a million rows is what costs)."""
        bound = "" if up_to_id is None else " AND id <= ?"
        bound_params: tuple[Any, ...] = () if up_to_id is None else (up_to_id,)
        with self._lock:
            try:
                with self._snapshot():
                    if up_to_id is not None and event_count is not None:
                        head: Any = (up_to_id, event_count)
                    else:
                        head = self._execute(
                            self._connection(),
                            "SELECT COALESCE(MAX(id), 0), count(*) FROM events "
                            "WHERE incident_id = ?" + bound,
                            (incident_id, *bound_params)).fetchone()
                    below = None if up_to_id is None else up_to_id + 1
                    rows = (head[1] if kinds is None
                            else self.count_events(incident_id, kinds, before_id=below))
                    tail = self.events_tail(incident_id, kinds, limit, up_to_id=up_to_id)
                    anchor = (self.count_events(incident_id, kinds, before_id=anchor_id)
                              if anchor_id is not None else None)
            except self._errors as error:
                raise _storage_error("read", self.location, error) from None
        return TimelineRows(int(rows), int(head[1]), tail, int(head[0]), anchor)

    def iter_rows(self, incident_id: int, chunk: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every event of the incident as its stored row (id, incident_id, ts, kind, actor,
        payload JSON, prev_hash, hash), oldest first, read ``chunk`` rows at a time."""
        for rows in self.iter_chunks(incident_id, chunk):
            yield from rows

    def iter_chunks(self, incident_id: int, chunk: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of :meth:`iter_rows`, a list of up to ``chunk`` at a time (never empty)."""
        after = 0
        while True:
            rows = self._chain_rows(incident_id, after, chunk)
            if rows:
                yield rows
            if len(rows) < chunk:
                return
            after = rows[-1][0]

    def iter_content_chunks(self, incident_id: int, up_to: int,
                            chunk: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of :meth:`iter_chunks_up_to` without the chain's columns: (id, ts, kind,
        actor, payload JSON), in the same chunks — for a reader whose rows are checked against
        the chain by someone else (an export's checking child)."""
        return self._chunks_up_to("id, ts, kind, actor, payload", incident_id, up_to, chunk)

    def iter_chunks_up_to(self, incident_id: int, up_to: int,
                          chunk: int = 5000) -> Iterator[list[tuple[Any, ...]]]:
        """The stored rows of :meth:`iter_chunks` up to event ``up_to``, in chunks of at most
        ``chunk`` (never empty; not always those of :meth:`iter_chunks`)."""
        return self._chunks_up_to("id, incident_id, ts, kind, actor, payload, prev_hash, hash",
                                  incident_id, up_to, chunk)

    def _chunks_up_to(self, columns: str, incident_id: int, up_to: int,
                      chunk: int) -> Iterator[list[tuple[Any, ...]]]:
        """An incident's rows up to ``up_to`` in id order. On SQLite, while the incident's
        rows are dense (most ids of a window of ``chunk`` are its own: one incident at a time,
        the usual record), by windows of ids, the table read in id order: through the
        incident's index, every row is a second lookup (a quarter of the time at 100,000
        events). From the first sparse window on, and on PostgreSQL, through the index."""
        after = 0
        if self.engine == "sqlite":
            first = self._read("SELECT MIN(id) FROM events WHERE incident_id = ?",
                               (incident_id,))[0][0]
            if first is None:
                return
            after = first - 1
            while after < up_to:
                end = min(after + chunk, up_to)
                rows = self._read(
                    f"SELECT {columns} FROM events "  # the columns: ours
                    "WHERE +incident_id = ? AND id > ? AND id <= ? ORDER BY id",
                    (incident_id, after, end),
                )
                if rows:
                    yield rows
                after = end
                if len(rows) < chunk // 2:
                    break  # other incidents' events in between: the index from here
        while after < up_to:
            rows = self._read(
                f"SELECT {columns} FROM events "  # the columns: ours
                "WHERE incident_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                (incident_id, after, up_to, chunk),
            )
            if rows:
                yield rows
            if len(rows) < chunk:
                return
            after = rows[-1][0]

    def iter_events(self, incident_id: int, chunk: int = 5000) -> Iterator[Event]:
        """Every event of the incident, oldest first, without holding them all."""
        for row in self.iter_rows(incident_id, chunk):
            yield _event_from_row(row)

    def require_events(self, incident_id: int) -> list[Event]:
        events = self.events(incident_id)
        if not events:
            raise UnknownIncident(
                f"no incident {format_incident_id(incident_id)} in {self.location}")
        return events

    def declarations_since(self, since: datetime) -> list[Event]:
        """Declaration events at or after ``since`` (for the emergency-rate bar)."""
        rows = self._read(
            "SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
            "WHERE kind = ? AND ts >= ? ORDER BY id",
            (str(Kind.DECLARED), format_ts(since)),
        )
        return [_event_from_row(row) for row in rows]

    def last_event_id(self, incident_id: int) -> int:
        rows = self._read("SELECT COALESCE(MAX(id), 0) FROM events WHERE incident_id = ?",
                          (incident_id,))
        return int(rows[0][0])

    # --- the record as it was at any moment (a replay) -------------------------------------------

    def state_at(self, incident_id: int, event_id: int,
                 nearest: IncidentState | None = None) -> IncidentState:
        """The incident's state as of its event ``event_id`` (its newest event at or before
        it): the nearest valid checkpoint at or before it — the history's, the current
        checkpoint, or ``nearest`` (a state the caller folded before) — plus the events after
        it, read a page at a time. Never the whole history once checkpoints exist."""
        best = nearest if nearest is not None and nearest.last_event_id <= event_id else None
        with self._lock:
            try:
                kept = self._history_checkpoint(incident_id, event_id)
                if kept is not None and (best is None
                                         or kept.last_event_id > best.last_event_id):
                    best = kept
                state = best.copy() if best is not None else IncidentState()
                while state.last_event_id < event_id:
                    rows = list(self._execute(
                        self._connection(),
                        "SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash "
                        "FROM events WHERE incident_id = ? AND id > ? AND id <= ? ORDER BY id "
                        "LIMIT 5000", (incident_id, state.last_event_id, event_id)).fetchall())
                    if not rows:
                        break
                    for row in rows:
                        state.apply(_event_from_row(row))
            except self._errors as error:
                raise _storage_error("read", self.location, error) from None
        return state

    def _history_checkpoint(self, incident_id: int, event_id: int) -> IncidentState | None:
        """The newest valid checkpoint at or before ``event_id``: of the history (schema 5),
        else the current one if it is old enough (call with the lock held)."""
        from console import checkpoint

        candidates: list[tuple[Any, ...]] = []
        if self.schema_version >= HISTORY_SCHEMA:
            candidates += self._execute(
                self._connection(),
                "SELECT c.event_id, c.event_hash, c.fold_version, c.digest, c.state, e.hash "
                "FROM checkpoint_history c LEFT JOIN events e ON e.id = c.event_id "
                "AND e.incident_id = c.incident_id WHERE c.incident_id = ? AND c.event_id <= ? "
                "AND c.fold_version = ? ORDER BY c.event_id DESC LIMIT 2",
                (incident_id, event_id, checkpoint.FOLD_VERSION)).fetchall()
        if self.schema_version >= 2:
            candidates += self._execute(
                self._connection(),
                "SELECT c.event_id, c.event_hash, c.fold_version, c.digest, c.state, e.hash "
                "FROM checkpoints c LEFT JOIN events e ON e.id = c.event_id "
                "AND e.incident_id = c.incident_id WHERE c.incident_id = ? AND c.event_id <= ?",
                (incident_id, event_id)).fetchall()
        for row in sorted(candidates, key=lambda r: -int(r[0])):
            found, event_hash, fold_version, digest, text, chain_hash = row
            if (fold_version != checkpoint.FOLD_VERSION or chain_hash != event_hash
                    or digest != checkpoint.digest(event_hash, fold_version, text)):
                continue
            try:
                state = checkpoint.decode(text)
            except ValueError:
                continue
            if state.last_event_id == found and state.last_hash == event_hash:
                return state
        return None

    def event_at_time(self, incident_id: int, ts: datetime) -> int:
        """The id of the incident's newest event stamped at or before ``ts`` (0 before its
        first): a binary search over its ids (events are appended in time order), a few
        indexed reads whatever the record's length."""
        wanted = format_ts(ts)
        # MIN and MAX in one query would scan the incident's ids (SQLite's shortcut takes one
        # aggregate at a time): two single-aggregate reads, each one index lookup.
        low = int(self._read("SELECT COALESCE(MIN(id), 0) FROM events WHERE incident_id = ?",
                             (incident_id,))[0][0])
        high = self.last_event_id(incident_id)
        if not low:
            return 0
        found = 0
        while low <= high:
            middle = (low + high) // 2
            row = self._read("SELECT id, ts FROM events WHERE incident_id = ? AND id >= ? "
                             "ORDER BY id LIMIT 1", (incident_id, middle))
            if not row or row[0][0] > high:
                high = middle - 1
                continue
            event_id, stamped = int(row[0][0]), str(row[0][1])
            if stamped <= wanted:
                found = event_id
                low = event_id + 1
            else:
                high = middle - 1
        return found

    def neighbour_event(self, incident_id: int, event_id: int, *, forward: bool,
                        kinds: frozenset[str] | None = None,
                        payload_has: Sequence[str] = (),
                        payload_lacks: Sequence[str] = ()) -> Event | None:
        """The first event after ``event_id`` (or the last before it) of ``kinds`` whose stored
        payload contains every text of ``payload_has`` and none of ``payload_lacks`` (the
        canonical JSON, e.g. ``'"status":"breach"'``), or None."""
        clause = ""
        params: list[Any] = []
        for text in payload_has:
            clause += " AND payload LIKE ?"
            params.append(f"%{text}%")
        for text in payload_lacks:
            clause += " AND payload NOT LIKE ?"
            params.append(f"%{text}%")
        relation, order = (">", "ASC") if forward else ("<", "DESC")
        select = ("SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
                  f"WHERE incident_id = ? AND id {relation} ?")
        rows: list[tuple[Any, ...]] = []
        # One indexed read per kind (see events_tail), the nearest of them kept.
        for kind in sorted(kinds) if kinds is not None else [None]:
            of_kind = "" if kind is None else " AND kind = ?"
            rows += self._read(f"{select}{of_kind}{clause} ORDER BY id {order} LIMIT 1",
                               (incident_id, event_id, *([kind] if kind else []), *params))
        if not rows:
            return None
        nearest = min(rows, key=lambda row: row[0]) if forward else \
            max(rows, key=lambda row: row[0])
        return _event_from_row(nearest)

    # --- verification ----------------------------------------------------------------------------

    def verify(self, incident_id: int) -> tuple[int, ChainProblem | None]:
        """Re-walk an incident's chain; returns (events checked, first problem or None)."""
        walk = ChainWalk(self, incident_id)
        while not walk.step():
            pass
        return walk.checked, walk.problem

    def verify_walk(self, incident_id: int) -> ChainWalk:
        """Re-walk an incident's chain and return the finished walk (its problem, whether it
        is keyed, whether its hashes could be checked)."""
        walk = ChainWalk(self, incident_id)
        while not walk.step():
            pass
        return walk

    def head(self, incident_id: int) -> Head | None:
        """The incident's newest event as a publishable head, or None without events."""
        rows = self._read("SELECT id, hash FROM events WHERE incident_id = ? ORDER BY id DESC "
                          "LIMIT 1", (incident_id,))
        if not rows:
            return None
        state_keyed = self._read("SELECT payload FROM events WHERE incident_id = ? ORDER BY id "
                                 "LIMIT 1", (incident_id,))
        keyed = bool(state_keyed) and f'"chain":"{KEYED}"' in state_keyed[0][0]
        return Head(int(rows[0][0]), rows[0][1], keyed)

    def check_head(self, incident_id: int, head: Head) -> ChainProblem | None:
        """Whether this record contains the published ``head`` exactly: its event is still
        there, in this incident, with that very hash (so nothing up to it was removed or
        rewritten, and the chain after it follows from it)."""
        rows = self._read("SELECT incident_id, hash FROM events WHERE id = ?", (head.event_id,))
        last = self.last_event_id(incident_id)
        if not rows or rows[0][0] != incident_id:
            return ChainProblem(head.event_id, (
                f"the published head #{head.event_id} is not in this record, which ends at "
                f"#{last}: events up to the head were removed"))
        if rows[0][1] != head.hash:
            return ChainProblem(head.event_id, (
                f"event #{head.event_id} has hash {rows[0][1][:16]}…, not the published "
                f"{head.hash[:16]}…: the record up to the head was rewritten and re-hashed"))
        return None

    def _recorded_heads_problem(self, incident_id: int) -> ChainProblem | None:
        """The head recorded with the newest append, and the one the commander's last
        heartbeat saw, must still be in the record with the same hash."""
        if self.schema_version < 3:
            return None
        recorded = self._read("SELECT event_id, hash FROM chain_heads WHERE incident_id = ?",
                              (incident_id,))
        beats = self._read("SELECT head_event_id, head_hash FROM leases WHERE incident_id = ? "
                           "AND head_event_id IS NOT NULL", (incident_id,))
        for source, rows in (("recorded with the last append", recorded),
                             ("seen by the commander's last heartbeat", beats)):
            if not rows:
                continue
            event_id, digest = int(rows[0][0]), str(rows[0][1])
            problem = self.check_head(incident_id, Head(event_id, digest))
            if problem is not None:
                return ChainProblem(problem.event_id, f"the head {source} (#{event_id}) no "
                                    f"longer matches: {problem.message.split(': ', 1)[1]}")
        return None

    def _chain_rows(self, incident_id: int, after_id: int,
                    limit: int) -> list[tuple[Any, ...]]:
        return self._read(
            "SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
            "WHERE incident_id = ? AND id > ? ORDER BY id LIMIT ?",
            (incident_id, after_id, limit),
        )

    # --- samples ---------------------------------------------------------------------------------

    def add_samples(self, incident_id: int,
                    samples: Sequence[tuple[str, float, float | None]]) -> None:
        """Record metric samples ``(series, unix_ts, value)``; NaN/inf are stored as NULL."""
        rows = [
            (incident_id, series, ts,
             value if value is not None and math.isfinite(value) else None)
            for series, ts, value in samples
        ]
        if not rows:
            return
        with self._write(incident_id) as conn:
            self._execute_many(
                conn, "INSERT INTO samples (incident_id, series, ts, value) VALUES (?, ?, ?, ?)",
                rows)

    def _execute_many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self._execute(conn, sql, row)

    def samples(self, incident_id: int, series: str, since_ts: float = 0.0,
                until_ts: float | None = None) -> list[tuple[float, float | None]]:
        """A series' samples from ``since_ts`` (to ``until_ts``, a replay's moment), oldest
        first."""
        bound = "" if until_ts is None else " AND ts <= ?"
        rows = self._read(
            "SELECT ts, value FROM samples WHERE incident_id = ? AND series = ? AND ts >= ?"
            f"{bound} ORDER BY ts",
            (incident_id, series, since_ts, *(() if until_ts is None else (until_ts,))),
        )
        return [(float(ts), None if value is None else float(value)) for ts, value in rows]

    def series_names(self, incident_id: int) -> list[str]:
        rows = self._read(
            "SELECT DISTINCT series FROM samples WHERE incident_id = ? ORDER BY series",
            (incident_id,),
        )
        return [row[0] for row in rows]

    # --- commander leases ------------------------------------------------------------------------

    def lease(self, incident_id: int) -> Lease | None:
        rows = self._read(
            'SELECT incident_id, "user", host, pid, token, acquired_ts, heartbeat_ts FROM leases '
            "WHERE incident_id = ?",
            (incident_id,),
        )
        return _lease_from_row(rows[0]) if rows else None

    def acquire_lease(self, incident_id: int, user: str, *, take_over: bool = False,
                      stale_after_s: float = 30.0, now: datetime | None = None,
                      pid: int | None = None, host: str | None = None
                      ) -> tuple[Lease, Lease | None]:
        """Take command of an incident. Returns (our lease, the lease we replaced, if any).

        A lease is free when nobody holds it, its heartbeat is older than ``stale_after_s``, or
        its process no longer exists on this host; otherwise :class:`LeaseHeld` is raised unless
        ``take_over``.
        """
        now = now or utcnow()
        pid = os.getpid() if pid is None else pid
        if not host:
            import socket  # only a commander takes a lease: no other command pays its import

            host = socket.gethostname()
        token = os.urandom(8).hex()
        with self._write(incident_id) as conn:
            self._require_incident(conn, incident_id)
            row = self._execute(
                conn,
                'SELECT incident_id, "user", host, pid, token, acquired_ts, heartbeat_ts '
                "FROM leases WHERE incident_id = ?",
                (incident_id,),
            ).fetchone()
            previous = _lease_from_row(row) if row else None
            if previous is not None and not take_over:
                age = (now - previous.heartbeat_ts).total_seconds()
                gone = previous.host == host and not process_alive(previous.pid)
                ours = previous.host == host and previous.pid == pid
                if not (gone or ours or age > stale_after_s):
                    raise LeaseHeld(previous, age)
            self._execute(
                conn,
                'INSERT INTO leases (incident_id, "user", host, pid, token, acquired_ts, '
                "heartbeat_ts) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE "
                'SET "user" = excluded."user", host = excluded.host, pid = excluded.pid, '
                "token = excluded.token, acquired_ts = excluded.acquired_ts, "
                "heartbeat_ts = excluded.heartbeat_ts",
                (incident_id, user, host, pid, token, format_ts(now), format_ts(now)),
            )
        lease = Lease(incident_id, user, host, pid, token, parse_ts(format_ts(now)),
                      parse_ts(format_ts(now)))
        return lease, previous

    def heartbeat(self, lease: Lease, now: datetime | None = None) -> bool:
        """Refresh our lease; False if someone took it over meanwhile."""
        now = now or utcnow()
        with self._write(lease.incident_id) as conn:
            if self.schema_version >= 3:
                # each beat records the chain head it saw: removing events after it shows
                head = self._execute(
                    conn, "SELECT id, hash FROM events WHERE incident_id = ? ORDER BY id DESC "
                    "LIMIT 1", (lease.incident_id,)).fetchone() or (None, None)
                cursor = self._execute(
                    conn, "UPDATE leases SET heartbeat_ts = ?, head_event_id = ?, head_hash = ? "
                    "WHERE incident_id = ? AND token = ?",
                    (format_ts(now), head[0], head[1], lease.incident_id, lease.token),
                )
            else:
                cursor = self._execute(
                    conn, "UPDATE leases SET heartbeat_ts = ? WHERE incident_id = ? AND token = ?",
                    (format_ts(now), lease.incident_id, lease.token),
                )
            return bool(cursor.rowcount == 1)

    def release_lease(self, lease: Lease) -> None:
        with self._write(lease.incident_id) as conn:
            self._execute(conn, "DELETE FROM leases WHERE incident_id = ? AND token = ?",
                          (lease.incident_id, lease.token))

    # --- copying a record between stores ---------------------------------------------------------

    def _import_incident(self, incident_id: int, created_ts: str,
                         rows: Iterator[tuple[Any, ...]]) -> int:
        """Insert an incident and its stored event rows exactly as they are (ids, timestamps,
        payload bytes and hashes), checking the chain as it goes; refused if the incident or
        any of its event ids already exists here. Returns the number of events."""
        checker = ChainChecker(self.chain_key)
        with self._write(incident_id) as conn:
            if self._execute(conn, "SELECT 1 FROM incidents WHERE id = ?",
                             (incident_id,)).fetchone() is not None:
                raise StoreError(f"{format_incident_id(incident_id)} already exists in "
                                 f"{self.location}: a copy never merges two records")
            self._execute(conn, "INSERT INTO incidents (id, created_ts) VALUES (?, ?)",
                          (incident_id, created_ts))
            self._before_import(conn)
            for row in rows:
                if not checker.check(row):
                    assert checker.problem is not None
                    raise StoreError(f"the source's chain is BROKEN: {checker.problem.message}; "
                                     "nothing was copied")
                if self._execute(conn, "SELECT 1 FROM events WHERE id = ?",
                                 (row[0],)).fetchone() is not None:
                    raise StoreError(f"event #{row[0]} already exists in {self.location} (in "
                                     "another incident): the copy would need new ids, which "
                                     "would change every hash; nothing was copied")
                self._execute(
                    conn,
                    "INSERT INTO events (id, incident_id, ts, kind, actor, payload, prev_hash, "
                    "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            if self.schema_version >= 3 and checker.checked:
                self._execute(conn, "INSERT INTO chain_heads (incident_id, event_id, hash) "
                              "VALUES (?, ?, ?)", (incident_id, checker.last_id,
                                                  checker.last_hash))
            self._after_import(conn)
        return checker.checked

    def _before_import(self, conn: Any) -> None:
        """What an engine must do before rows recorded elsewhere are inserted as they are."""

    def _after_import(self, conn: Any) -> None:
        """What an engine must do after rows were inserted with their own ids."""

    def person(self, os_account: str) -> str:
        """Who acts through this store: on SQLite the OS account running warroom (DESIGN.md:
        the approver is the OS account); on PostgreSQL the database role that authenticated."""
        return os_account


def copy_incident(source: RecordStore, target: RecordStore, incident_id: int) -> int:
    """Copy one incident's record — every event with its id, timestamp, payload bytes and hash,
    and its metric samples — from ``source`` to ``target`` (SQLite → PostgreSQL or back), so
    that ``warroom verify`` and every export give the same answer on both sides. The source's
    chain is verified first and a broken one is refused. Returns the number of events copied."""
    checked, problem = source.verify(incident_id)
    if problem is not None:
        raise StoreError(f"{format_incident_id(incident_id)} in {source.location}: chain BROKEN: "
                         f"{problem.message}; nothing was copied")
    created = source.incident_created_ts(incident_id)
    copied = target._import_incident(incident_id, created, source.iter_rows(incident_id))
    samples = [(series, ts, value)
               for series in source.series_names(incident_id)
               for ts, value in source.samples(incident_id, series)]
    target.add_samples(incident_id, samples)
    target.checkpoint(incident_id)
    del checked
    return copied


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: str | os.PathLike[str]) -> bool:
    """Whether a store location names a PostgreSQL database rather than an SQLite file."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def open_store(location: str | os.PathLike[str], *, readonly: bool = False,
               group: str | None = None, password_env: str | None = None) -> RecordStore:
    """Open the record at ``location``: a ``postgresql://`` URL (the password from
    ``password_env``, ``PGPASSWORD``, the libpq password or service file, never the URL) or an
    SQLite file path (``group``: the war room's OS group, for the file's mode)."""
    if is_postgres_url(location):
        from console.pgstore import PostgresStore

        return PostgresStore(str(location), readonly=readonly, password_env=password_env)
    return Store(location, readonly=readonly, group=group)


class _SqliteChangeFeed(ChangeFeed):
    """``PRAGMA data_version`` of the reader's connection (it changes when another connection
    commits), asked when the kernel says the record's files were written (console/filewatch.py:
    an idle watcher sleeps), then again a few times (:attr:`SETTLE_S`), since a commit becomes
    visible a moment after its first bytes reach the ``-wal``. Where no file watch can
    be had, asked every :data:`POLL_S`."""

    #: How often data_version is asked without a file watch.
    POLL_S = 0.1
    #: With a file watch: the pauses between the questions after a write, ≈ 0.7 s in all (a
    #: commit is seen at most 40 ms after it is visible; one whose fsync takes longer than
    #: that, at the next write or after :attr:`patience`).
    SETTLE_S = (0.005, 0.01, 0.02, 0.03, *[0.04] * 15)

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seen: int | None = None
        self._watch: FileWatch | None = None
        self._settle: list[float] = []
        if not store.path.is_file():
            return
        from console.filewatch import file_watch

        path = store.path.resolve()
        self._watch = file_watch(path.parent, (path.name, f"{path.name}-wal"))
        if self._watch is not None:
            self.patience = 5.0  # a loop of waits turns when something was written

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        if self._seen is None:  # nothing read yet: there is something to read
            return not (stop is not None and stop.is_set())
        deadline = time.monotonic() + timeout
        pause = stop if stop is not None else threading.Event()
        while True:
            # First wait, then ask: a reader with nobody else on the file may see data_version
            # move at every read, and must not spin on it.
            remaining = deadline - time.monotonic()
            watch = self._watch
            if remaining <= 0:
                pass
            elif watch is None:
                pause.wait(min(self.POLL_S, remaining))
            elif self._settle:
                pause.wait(min(self._settle.pop(0), remaining))
            elif watch.wait(remaining):
                self._settle = list(self.SETTLE_S)
            if (stop is not None and stop.is_set()) or (watch is not None and watch.closed):
                return False
            if self._store.data_version() != self._seen:
                self._settle.clear()
                return True
            if time.monotonic() >= deadline:
                return False

    def mark(self) -> None:
        self._seen = self._store.data_version()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()


class Store(RecordStore):
    """An incident record in one SQLite file (the default)."""

    engine = "sqlite"
    _errors = (sqlite3.Error,)

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False,
                 group: str | None = None, chain_key: bytes | None = None) -> None:
        super().__init__()
        if chain_key is not None:
            self.chain_key = chain_key
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self.readonly = readonly
        self.schema_version = SCHEMA_VERSION
        if readonly:
            if not self.path.exists():
                raise StoreError(f"no database at {self.path}")
            self._conn = self._open_readonly()
        else:
            _create_file(self.path, group)
            self._conn = self._connect(str(self.path))
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    def _open_readonly(self) -> sqlite3.Connection:
        """A connection that holds no write handle on the database, its -wal or its -shm.

        It is opened, and read once (which opens the -wal and -shm), in a thread the kernel
        forbids to write (console/sandbox.py), so SQLite falls back to read-only handles; the
        -shm is asked for read-only too (``readonly_shm``). Such a reader cannot create a
        missing -wal/-shm: in a watch-only process (:func:`forbid_write_handles`) that is
        refused with what access would create them; elsewhere (an export, a verify) the plain
        ``mode=ro`` open of before is used, which creates them where the account may.
        """
        from console import sandbox

        resolved = self.path.resolve()
        strict = _WATCH_ONLY
        box: dict[str, Any] = {}

        def open_here() -> None:
            try:
                sandbox.forbid_writes_in_this_thread()
            except sandbox.SandboxUnavailable as error:
                box["unavailable"] = error
                return
            try:
                conn = self._connect(resolved.as_uri() + "?mode=ro&readonly_shm=1", uri=True)
                try:
                    conn.execute("PRAGMA temp_store = MEMORY")  # no temp file handles either
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                except BaseException:
                    conn.close()
                    raise
                box["conn"] = conn
            except BaseException as error:  # reported in the caller's thread
                box["error"] = error

        opener = threading.Thread(target=open_here, name="warroom-readonly-open", daemon=True)
        opener.start()
        opener.join()
        conn: sqlite3.Connection | None = box.get("conn")
        if conn is None and strict and "unavailable" not in box:
            raise StoreError(self._missing_wal_message(box.get("error")))
        if conn is None:
            conn = self._connect(resolved.as_uri() + "?mode=ro" +
                                 ("&readonly_shm=1" if strict else ""), uri=True)
            conn.execute("PRAGMA temp_store = MEMORY")
        if strict:
            writable = sandbox.writable_handles(
                [str(resolved), f"{resolved}-wal", f"{resolved}-shm"])
            if writable:
                conn.close()
                raise StoreError(
                    f"cannot watch {self.path} without a write handle ({', '.join(writable)}): "
                    "this kernel cannot forbid them (no Landlock); watch from an account whose "
                    "group may only read the directory")
        return conn

    def _missing_wal_message(self, error: BaseException | None) -> str:
        """Why a watcher cannot open the record, and what access would let it."""
        directory = self.path.resolve().parent
        try:
            import grp as grp_module

            group = grp_module.getgrgid(directory.stat().st_gid).gr_name
        except (KeyError, OSError):
            group = "the war room's group"
        missing = [name for name in (f"{self.path.name}-wal", f"{self.path.name}-shm")
                   if not (directory / name).exists()]
        if not missing:
            return f"cannot open {self.path} read-only: {error}"
        return (f"{self.path} has no {' or '.join(missing)} right now (no commander console "
                f"has it open), and a watcher never creates them: start watching while the "
                f"commander's console runs, or have an account of group {group} with write "
                f"access to {directory} open the incident first (chgrp {group} {directory}; "
                f"chmod 2770 {directory})")

    def _connect(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, uri=uri, check_same_thread=False,
                                   isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open {self.path}: {error}") from None
        return conn

    def _prepare(self) -> None:
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as error:
            if "not a database" in str(error) or "malformed" in str(error):
                raise StoreError(f"{self.path} is not a warroom database ({error})") from None
            raise _storage_error("open", self.path, error) from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this warroom "
                f"understands ({SCHEMA_VERSION}): upgrade warroom"
            )
        if self.readonly:
            if version < 1:
                raise StoreError(f"{self.path} is not a warroom database (no schema)")
            # An older schema still reads (version 1 only lacks derived tables and an index):
            # a watcher or an export must not need write access to migrate.
            self.schema_version = version
            return
        try:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.OperationalError as error:
            raise _storage_error("use", self.path, error) from None
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        with self._write() as conn:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current == 0:
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if tables:
                    raise StoreError(f"{self.path} holds tables but is not a warroom database")
            for target in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](conn)
                conn.execute(f"PRAGMA user_version = {target}")
        del version

    @contextlib.contextmanager
    def _transaction(self, incident_id: int | None,
                     appends: bool) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the file's one write lock: every writer, of every incident, in
        # turn (SQLite has no finer lock, and needs none at a war room's write rate).
        # Every failure is one StoreError saying what to do (a full disk, a lock held too long,
        # a read-only file), and the transaction is rolled back whole: nothing half-written.
        # A failed statement may already have ended the transaction, so ROLLBACK may fail too.
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise _storage_error("write", self.path, error) from None
        try:
            yield self._conn
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise _storage_error("write", self.path, error) from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise
        else:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as error:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise _storage_error("write", self.path, error) from None

    def _execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(sql, params)

    def _execute_many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    def _connection(self) -> sqlite3.Connection:
        return self._conn

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _next_event_id(self, conn: Any) -> int:
        # Safe: the transaction holds the file's write lock.
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def data_version(self) -> int:
        """Changes when another connection commits: a cheap 'is there anything new?'."""
        return int(self._read("PRAGMA data_version")[0][0])

    def change_feed(self, incident_id: int) -> ChangeFeed:
        del incident_id  # data_version says "something changed", for any incident
        return _SqliteChangeFeed(self)

    def _triggers_intact(self) -> bool:
        triggers = self._read(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
            "AND name LIKE 'events_are_append_only_%'"
        )[0][0]
        return bool(triggers == 2)


class ChainChecker:
    """Checks an incident's stored rows one by one, oldest first: each follows the one before
    and still matches its hash (an HMAC with the chain key when the declaration says the chain
    is keyed). Stops at the first problem (:attr:`problem`). At the end (:meth:`finish`) the
    head recorded with every append, and the one the commander's last heartbeat saw, must still
    be in the record, unchanged."""

    def __init__(self, key: bytes | None = None) -> None:
        self.checked = 0
        self.last_id = 0
        self.last_hash = GENESIS_HASH
        self.problem: ChainProblem | None = None
        self.key = key
        #: The declaration says the chain is keyed.
        self.keyed = False
        #: Why the hashes were not checked (a keyed chain and no key), or "": only the links.
        self.unverified = ""
        self._hash_key: bytes | None = None

    def hasher(self) -> Callable[[bytes], Any] | None:
        """For a caller that checks rows in a loop of its own (the JSON export, which quotes
        the same fields for its lines): what hashes ``prev_hash + canonical event`` as
        :func:`event_hash` does (its result's ``hexdigest()`` is the stored hash) — or None
        while that loop must go through :meth:`check` (before the first row, after a
        problem, or where hashes cannot be checked). A row the loop does not accept goes to
        :meth:`check`, which says why."""
        if self.checked == 0 or self.problem is not None or self.unverified:
            return None
        if self._hash_key is None:
            return hashlib.sha256
        return functools.partial(hmac.new, self._hash_key, digestmod=hashlib.sha256)

    def _digest(self, row: tuple[Any, ...]) -> str | None:
        """The hash the row should have, or None where it cannot be known (keyed, no key)."""
        event_id, inc, ts, kind, actor, payload, prev_hash, _ = row
        if self.unverified:
            return None
        return event_hash(prev_hash, event_id, inc, ts, kind, actor, payload, self._hash_key)

    def _start(self, row: tuple[Any, ...]) -> None:
        """The first row: is this chain keyed, and can it be checked?"""
        try:
            declared = json.loads(row[5])
        except (TypeError, ValueError):
            declared = {}
        self.keyed = isinstance(declared, dict) and declared.get("chain") == KEYED
        if self.keyed and self.key is None:
            self.unverified = ("the chain is keyed (HMAC-SHA256) and no chain key is set here: "
                               "only its links were checked, not its hashes")
        self._hash_key = self.key if self.keyed else None

    def check(self, row: tuple[Any, ...]) -> bool:
        """Check the next stored row; False once the chain is broken (at this row or before)."""
        if self.problem is not None:
            return False
        event_id, _, ts, kind, _, _, prev_hash, digest = row
        if self.checked == 0 and self.last_id == 0:
            self._start(row)
        expected = self._digest(row)
        if (self.checked and prev_hash == self.last_hash
                and (expected is None or expected == digest)):
            self.checked += 1  # the common case, first and cheapest
            self.last_id = event_id
            self.last_hash = digest
            return True
        where = f"event #{event_id} ({kind} at {ts})"
        if self.checked == 0 and kind != Kind.DECLARED:
            self.problem = ChainProblem(event_id, f"{where} is first, but the chain must start "
                                                  "with the declaration: events were removed")
        elif prev_hash != self.last_hash:
            self.problem = ChainProblem(event_id, f"{where} does not follow the event before "
                                                  "it: an event was removed or inserted just "
                                                  "before it")
        elif expected is not None and expected != digest:
            self.problem = ChainProblem(event_id, f"{where} was edited: its content no longer "
                                                  "matches its hash")
        else:
            self.checked += 1
            self.last_id = event_id
            self.last_hash = digest
            return True
        return False

    def check_rows(self, rows: Sequence[tuple[Any, ...]]) -> bool:
        """:meth:`check` each of ``rows`` (the next stored rows, oldest first) in one loop:
        the same verdicts at a fraction of the cost per row (a long record's verification is
        mostly this loop). A row the loop does not accept goes to :meth:`check`, which
        decides and says why. False once the chain is broken."""
        quote = _json_string
        index, count = 0, len(rows)
        while index < count and self.problem is None:
            hasher = self.hasher()
            if hasher is None:  # the first row, or hashes that cannot be checked
                self.check(rows[index])
                index += 1
                continue
            checked, last_id, last_hash = self.checked, self.last_id, self.last_hash
            stopped = count
            for at in range(index, count):
                event_id, incident_id, ts, kind, actor, payload, prev_hash, digest = rows[at]
                if prev_hash != last_hash or hasher(
                        (f'{prev_hash}{{"actor":{quote(actor)},"id":{event_id},'
                         f'"incident":{incident_id},"kind":{quote(kind)},"payload":{payload},'
                         f'"ts":{quote(ts)}}}').encode()).hexdigest() != digest:
                    stopped = at
                    break
                checked += 1
                last_id, last_hash = event_id, digest
            self.checked, self.last_id, self.last_hash = checked, last_id, last_hash
            if stopped < count:
                self.check(rows[stopped])
            index = stopped + 1
        return self.problem is None

    def finish(self, store: RecordStore, incident_id: int) -> ChainProblem | None:
        """At the head: what is wrong beyond the rows (no events at all, triggers removed, the
        recorded head gone or changed, an unkeyed chain where chains are keyed)."""
        if self.problem is None and self.checked == 0:
            if not store.has_incident(incident_id):
                raise UnknownIncident(f"no incident {format_incident_id(incident_id)} in "
                                      f"{store.location}")
            self.problem = ChainProblem(None, "the incident has no events: its declaration was "
                                              "removed")
        if self.problem is None and not store._triggers_intact():
            self.problem = ChainProblem(None, "the append-only triggers were removed from the "
                                              "database")
        if self.problem is None and self.key is not None and not self.keyed:
            self.problem = ChainProblem(None, "the chain is not keyed, but a chain key is set "
                                              "here: it was declared without the key, or "
                                              "rewritten by someone without it")
        if self.problem is None:
            self.problem = store._recorded_heads_problem(incident_id)
        return self.problem


class ChainWalk:
    """Verifies an incident's chain a step at a time, so a console can verify a long record in
    the background (and then each new event as it arrives) and say how far it got."""

    def __init__(self, store: RecordStore, incident_id: int) -> None:
        self.store = store
        self.incident_id = incident_id
        self._checker = ChainChecker(store.chain_key)

    @property
    def checked(self) -> int:
        return self._checker.checked

    @property
    def last_id(self) -> int:
        return self._checker.last_id

    @property
    def problem(self) -> ChainProblem | None:
        return self._checker.problem

    @property
    def checker(self) -> ChainChecker:
        return self._checker

    def step(self, limit: int = 20_000) -> bool:
        """Check up to ``limit`` more events; True once the walk is at the head (or broken)."""
        checker = self._checker
        if checker.problem is not None:
            return True
        rows = self.store._chain_rows(self.incident_id, checker.last_id, limit)
        if not checker.check_rows(rows):
            return True
        if len(rows) < limit:
            checker.finish(self.store, self.incident_id)
            return True
        return False


def _payload_dict(payload: Payload | dict[str, Any]) -> dict[str, Any]:
    return payload.to_payload() if isinstance(payload, Payload) else payload


def _event_from_row(row: tuple[Any, ...]) -> Event:
    event_id, incident_id, ts, kind, actor, payload, prev_hash, digest = row
    return stored_event(event_id, incident_id, parse_ts(ts), kind, actor, json.loads(payload),
                        prev_hash, digest)


def _lease_from_row(row: tuple[Any, ...]) -> Lease:
    incident_id, user, host, pid, token, acquired, heartbeat = row
    return Lease(incident_id, user, host, int(pid), token, parse_ts(acquired), parse_ts(heartbeat))


def recent_window(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)

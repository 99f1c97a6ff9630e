"""The incident record in PostgreSQL, for teams beyond one host (README, "PostgreSQL store").

The same contract as the SQLite store (:class:`console.store.RecordStore` holds the shared part):

- Events and incidents are append-only, enforced by the database: triggers refuse UPDATE,
  DELETE and TRUNCATE. :meth:`PostgresStore._triggers_intact` (part of ``warroom verify``) also
  notices a trigger that was dropped or disabled.
- The chain is computed in Python from the stored text (``ts``, ``kind``, ``actor`` and the
  canonical ``payload`` are ``text``, never ``jsonb`` or ``timestamptz``, which would re-spell
  them), so the same events have the same hashes as in SQLite.
- An append that needs no decision (a note, an adapter's outcome, a guardrail's change) takes
  the short road, one round trip and the commit, like a bare INSERT: one statement, its own
  transaction, appends the event after the head this store last wrote or read, if that is still
  the incident's chain head (:data:`APPEND_AT_HEAD`; the server numbers the event and hashes the
  very bytes Python hashes), or writes nothing; the append then takes the serialised road.
- The serialised road (a fact decided on the state, several events, a declaration): a
  transaction-level advisory lock on the incident (new incident numbers by one lock of their
  own), then the lock of the incident's chain-head row, which the short road's UPDATE waits
  for, taken before the state is read: a check and the append it guards see the same chain
  head, in any number of processes on any hosts. Event ids come from a sequence, so writers of
  different incidents never wait for each other.
- The database refuses a fork whoever writes (schema 6): no two events of one incident follow
  the same hash.
- Watchers learn of a commit through LISTEN/NOTIFY: triggers on events, samples and leases
  notify channel ``warroom`` with the incident id; the notification is delivered at commit.
- The schema version is the one row of ``warroom_schema``; migrations run under an advisory
  lock, in order, and a newer unknown version is refused.

The password never comes from the URL (refused there): it comes from the environment variable
named by ``[store] password_env``, or from what libpq reads itself (``PGPASSWORD``, the password
file, a service file named by ``service=``), or a client certificate (``sslcert``/``sslkey``).

psycopg 3 is imported only when a PostgreSQL store is opened (the ``postgres`` extra).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import TYPE_CHECKING, Any

from console.model import format_incident_id
from console.store import (
    ChangeFeed,
    RecordStore,
    StoreError,
    hashed_text_around_id,
)

if TYPE_CHECKING:
    import psycopg

    from console.model import Event

#: The channel every store notifies and every watcher listens on; the payload is the incident id.
NOTIFY_CHANNEL = "warroom"
#: First key of every advisory lock warroom takes (the second is the incident id; 0 numbers new
#: incidents; -1 migrates the schema). ASCII "WR".
LOCK_NAMESPACE = 0x5752
MIGRATION_LOCK = -1
CONNECT_TIMEOUT_S = 10
#: The unique index by which two events of one incident never follow the same hash (schema 6).
FORK_GUARD = "events_chain_never_forks"
#: Triggers whose absence (or disabling) means the record is no longer append-only.
GUARD_TRIGGERS = ("events_are_append_only_update", "events_are_append_only_delete",
                  "events_are_append_only_truncate")

_V1 = [
    "CREATE TABLE incidents (id bigint PRIMARY KEY, created_ts text COLLATE \"C\" NOT NULL)",
    "CREATE SEQUENCE events_id_seq AS bigint",
    "CREATE TABLE events (id bigint PRIMARY KEY, "
    "incident_id bigint NOT NULL REFERENCES incidents (id), ts text COLLATE \"C\" NOT NULL, "
    "kind text COLLATE \"C\" NOT NULL, actor text NOT NULL, payload text NOT NULL, "
    "prev_hash text NOT NULL, hash text NOT NULL)",
    "CREATE INDEX events_by_incident ON events (incident_id, id)",
    "CREATE INDEX events_by_kind ON events (kind, ts)",
    """CREATE FUNCTION warroom_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% are append-only: % refused', TG_TABLE_NAME, TG_OP;
    END $$""",
    *[f"CREATE TRIGGER {table}_are_append_only_{verb.lower()} BEFORE {verb} ON {table} "
      f"FOR EACH {'STATEMENT' if verb == 'TRUNCATE' else 'ROW'} "
      "EXECUTE FUNCTION warroom_refuse_change()"
      for table in ("events", "incidents") for verb in ("UPDATE", "DELETE", "TRUNCATE")],
    "CREATE TABLE samples (incident_id bigint NOT NULL, series text COLLATE \"C\" NOT NULL, "
    "ts double precision NOT NULL, value double precision)",
    "CREATE INDEX samples_by_series ON samples (incident_id, series, ts)",
    "CREATE TABLE leases (incident_id bigint PRIMARY KEY, \"user\" text NOT NULL, "
    "host text NOT NULL, pid integer NOT NULL, token text NOT NULL, "
    "acquired_ts text COLLATE \"C\" NOT NULL, heartbeat_ts text COLLATE \"C\" NOT NULL)",
    f"""CREATE FUNCTION warroom_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', OLD.incident_id::text);
        ELSE
            PERFORM pg_notify('{NOTIFY_CHANNEL}', NEW.incident_id::text);
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW "
    "EXECUTE FUNCTION warroom_notify()",
    "CREATE TRIGGER samples_notify AFTER INSERT ON samples FOR EACH ROW "
    "EXECUTE FUNCTION warroom_notify()",
    "CREATE TRIGGER leases_notify AFTER INSERT OR UPDATE OR DELETE ON leases FOR EACH ROW "
    "EXECUTE FUNCTION warroom_notify()",
]

_V2 = [
    "CREATE TABLE checkpoints (incident_id bigint PRIMARY KEY REFERENCES incidents (id), "
    "event_id bigint NOT NULL, event_hash text NOT NULL, fold_version text NOT NULL, "
    "digest text NOT NULL, state text NOT NULL)",
    "CREATE INDEX events_by_incident_kind ON events (incident_id, kind, id)",
]

_V3 = [
    # each incident's chain head, advanced with every append; it only moves forward and stays
    "CREATE TABLE chain_heads (incident_id bigint PRIMARY KEY REFERENCES incidents (id), "
    "event_id bigint NOT NULL, hash text NOT NULL)",
    """CREATE FUNCTION warroom_head_advances() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.event_id <= OLD.event_id THEN
            RAISE EXCEPTION 'a chain head only advances';
        END IF;
        RETURN NEW;
    END $$""",
    "CREATE TRIGGER chain_heads_only_advance BEFORE UPDATE ON chain_heads FOR EACH ROW "
    "EXECUTE FUNCTION warroom_head_advances()",
    "CREATE TRIGGER chain_heads_are_kept BEFORE DELETE ON chain_heads FOR EACH ROW "
    "EXECUTE FUNCTION warroom_refuse_change()",
    "INSERT INTO chain_heads (incident_id, event_id, hash) SELECT e.incident_id, e.id, e.hash "
    "FROM events e WHERE e.id = (SELECT max(id) FROM events WHERE incident_id = e.incident_id)",
    # the head each lease heartbeat saw
    "ALTER TABLE leases ADD COLUMN head_event_id bigint",
    "ALTER TABLE leases ADD COLUMN head_hash text",
]

#: Version 4 (PostgreSQL only; 1-3 are the SQLite schema's): an approval names the person the
#: database authenticated.
#: Any approval is recorded by the role that is connected (``actor = session_user``); a direct
#: approval (any kind but relayed or simulated: the fold reads an unknown kind as direct) is
#: given by that role (``user = session_user``); a simulated one only in a simulated incident
#: (the demo). Nobody — the commander included — can record an approval in someone else's
#: name, whatever client they use; a relayed approval stays marked as relayed.
_V4 = [
    """CREATE FUNCTION warroom_check_person() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        approval jsonb;
        how text;
    BEGIN
        IF NEW.kind <> 'approval_given' THEN
            RETURN NEW;
        END IF;
        approval := NEW.payload::jsonb;
        how := COALESCE(approval->>'kind', 'direct');
        IF how = 'simulated' THEN
            IF COALESCE((SELECT (d.payload::jsonb->>'simulated')::boolean FROM events d
                         WHERE d.incident_id = NEW.incident_id AND d.kind = 'incident_declared'
                         ORDER BY d.id LIMIT 1), false) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'a simulated approval belongs to a simulated incident only'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.actor IS DISTINCT FROM session_user::text THEN
            RAISE EXCEPTION 'an approval is recorded by the database role connected: % cannot '
                'record it as %', session_user, NEW.actor USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF how <> 'relayed' AND approval->>'user' IS DISTINCT FROM session_user::text THEN
            RAISE EXCEPTION 'a direct approval is given by the database role connected: % cannot '
                'approve as %', session_user, approval->>'user'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$""",
    "CREATE TRIGGER events_person_is_session_user BEFORE INSERT ON events FOR EACH ROW "
    "EXECUTE FUNCTION warroom_check_person()",
]

#: version reached → the statements that reach it from the version before. Versions 1-3 are the
#: SQLite schema's (each has the same tables, columns and indexes); 4 is PostgreSQL's own (the
#: identity check), so the next version both engines share must be 5.
#: Version 5 (both engines): the history of fold checkpoints, from which a replay folds.
_V5 = [
    "CREATE TABLE checkpoint_history (incident_id bigint NOT NULL REFERENCES incidents (id), "
    "event_id bigint NOT NULL, event_hash text NOT NULL, fold_version text NOT NULL, "
    "digest text NOT NULL, state text NOT NULL, PRIMARY KEY (incident_id, event_id))",
]

#: Version 6 (PostgreSQL only, like 4: SQLite's writers take the whole file, so they never
#: race; SQLite's next version is therefore 7): the database itself refuses a fork of a chain.
#: Two events of one incident never follow the same hash, so of two writers that appended
#: after the same head, whatever client they run, the second one's INSERT fails. The short
#: road of an append (:meth:`PostgresStore._append_at_head`) relies on its own condition on the
#: chain head; this holds any other writer to the same rule.
_V6 = [
    f"CREATE UNIQUE INDEX {FORK_GUARD} ON events (incident_id, prev_hash)",
]

MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5, 6: _V6}
SCHEMA_VERSION = max(MIGRATIONS)
IDENTITY_TRIGGER = "events_person_is_session_user"


def schema_sql() -> str:
    """The whole schema as one SQL script (for a DBA who creates it by hand)."""
    lines = ["CREATE TABLE warroom_schema (version integer NOT NULL);"]
    for version in sorted(MIGRATIONS):
        lines += [f"{statement};" for statement in MIGRATIONS[version]]
    lines.append(f"INSERT INTO warroom_schema (version) VALUES ({SCHEMA_VERSION});")
    return "\n".join(lines) + "\n"


#: What a day-to-day role needs, and no more: read everything, append events, keep checkpoints,
#: samples and leases. It owns nothing, so it cannot drop or disable the append-only triggers.
GRANTS = [
    "GRANT SELECT ON warroom_schema TO {role}",
    "GRANT SELECT, INSERT ON incidents, events, samples TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON checkpoints TO {role}",
    "GRANT SELECT, INSERT ON checkpoint_history TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON chain_heads TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON leases TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON SEQUENCE events_id_seq TO {role}",
]
#: What a watcher needs, and nothing more: `warroom watch` and `warroom serve` (LISTEN needs no
#: grant). A role with only these can read the record and cannot write one byte of it.
READ_GRANTS = [
    "GRANT SELECT ON warroom_schema, incidents, events, samples, checkpoints, chain_heads, "
    "leases TO {role}",
]
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grants_sql(role: str, *, read_only: bool = False) -> list[str]:
    """The GRANT statements that let ``role`` use the record without owning it (with
    ``read_only``: only read it, as a watcher)."""
    if not ROLE_NAME.match(role):
        raise StoreError(f"{role!r} is not a plain role name (lower-case letters, digits, _)")
    return [grant.format(role=role) for grant in (READ_GRANTS if read_only else GRANTS)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def connection_kwargs(url: str, password_env: str | None) -> dict[str, Any]:
    """What ``psycopg.connect`` is given besides the URL; refuses a password in the URL."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception as error:  # psycopg.ProgrammingError: not a valid connection string
        raise StoreError(f"store URL is not valid: {_first_line(error)}") from None
    for secret in ("password", "sslpassword"):
        if parts.get(secret):
            raise StoreError(
                f"the store URL carries a {secret}: remove it, and give it through "
                "[store] password_env, PGPASSWORD, the libpq password file or a service file")
    kwargs: dict[str, Any] = {"application_name": "warroom"}
    if "connect_timeout" not in parts:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise StoreError(f"[store] password_env names ${password_env}, which is not set")
        kwargs["password"] = password
    return kwargs


#: An append on the short road, in one statement that is its own transaction: the event takes
#: the next id and is hashed by the server — sha256 of the text :func:`hashed_text_around_id`
#: gives around the id, the very bytes :func:`event_hash` hashes — and the incident's chain
#: head moves from the hash this store knows to the new event's, and the event is inserted,
#: only if that hash is still the head; otherwise nothing is written and no row comes back.
#: The head's row stays locked until the commit, so a second writer after the same head waits,
#: then finds the head moved. Returns the event's id and hash. Parameters: the hashed text
#: before and after the id (UTF-8), the incident, the previous hash, then the stored ts, kind,
#: actor, payload and previous hash.
APPEND_AT_HEAD = (
    "WITH new AS (SELECT n.id, encode(sha256(%s::bytea || convert_to(n.id::text, 'UTF8') "
    "|| %s::bytea), 'hex') AS hash FROM (SELECT nextval('events_id_seq') AS id) n), "
    "head AS (UPDATE chain_heads h SET event_id = new.id, hash = new.hash FROM new "
    "WHERE h.incident_id = %s AND h.hash = %s AND h.event_id < new.id "
    "RETURNING h.incident_id) "
    "INSERT INTO events (id, incident_id, ts, kind, actor, payload, prev_hash, hash) "
    "SELECT new.id, head.incident_id, %s, %s, %s, %s, %s, new.hash FROM new, head "
    "RETURNING id, hash")


@dataclass
class _Ahead:
    """What an appending transaction fetched with its lock (each used at most once)."""

    incident_id: int
    exists: bool
    next_id: int | None
    rows: tuple[int, list[tuple[Any, ...]]] | None  # (after id, the rows after it)


class PostgresStore(RecordStore):
    """An incident record in a PostgreSQL database."""

    engine = "postgresql"

    def __init__(self, url: str, *, readonly: bool = False,
                 password_env: str | None = None) -> None:
        super().__init__()
        import psycopg

        self._psycopg = psycopg
        self._errors = (psycopg.Error,)
        self.url = url
        self.location = url
        self.readonly = readonly
        self._connect_kwargs = connection_kwargs(url, password_env)
        self._sql: dict[str, str] = {}
        self._ahead: _Ahead | None = None
        self.schema_version = SCHEMA_VERSION
        self._conn = self.connect()
        try:
            self._prepare()
            row = self._conn.execute("SELECT session_user").fetchone()
            #: The database role this store authenticated as: on PostgreSQL, the person.
            self.session_user = str(row[0]) if row else ""
        except BaseException:
            self._conn.close()
            raise

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        """A new connection to this store's database, as this store connects (a watcher's feed,
        the tests' tampering)."""
        options = "-c default_transaction_read_only=on" if self.readonly else None
        try:
            return self._psycopg.connect(self.url, autocommit=autocommit, options=options,
                                         **self._connect_kwargs)
        except self._psycopg.Error as error:
            raise StoreError(f"cannot connect to {self.location}: {_first_line(error)}") from None

    def _prepare(self) -> None:
        version = self._schema_version(self._conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.location} has schema version {version}, newer than this warroom "
                f"understands ({SCHEMA_VERSION}): upgrade warroom")
        if self.readonly:
            if version < 1:
                raise StoreError(f"{self.location} holds no warroom record (no schema): "
                                 "declare an incident there first")
            self.schema_version = version
            return
        if version < SCHEMA_VERSION:
            self._migrate()

    def _schema_version(self, conn: psycopg.Connection[Any]) -> int:
        try:
            if conn.execute("SELECT to_regclass('warroom_schema')").fetchone() == (None,):
                return 0
            row = conn.execute("SELECT max(version) FROM warroom_schema").fetchone()
        except self._psycopg.Error as error:
            raise StoreError(f"cannot read {self.location}: {_first_line(error)}") from None
        return int(row[0] or 0) if row else 0

    def _migrate(self) -> None:
        with self._write(MIGRATION_LOCK) as conn:
            # Re-read under the lock: another process may have migrated meanwhile.
            current = self._schema_version(conn)
            if current == 0:
                if conn.execute("SELECT to_regclass('events')").fetchone() != (None,):
                    raise StoreError(f"{self.location} holds an events table but is not a "
                                     "warroom database")
                conn.execute("CREATE TABLE warroom_schema (version integer NOT NULL)")
                conn.execute("INSERT INTO warroom_schema (version) VALUES (0)")
            for target in range(current + 1, SCHEMA_VERSION + 1):
                if target == 6:
                    self._refuse_a_forked_chain(conn)
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)  # type: ignore[arg-type]  # our own constant SQL
                conn.execute("UPDATE warroom_schema SET version = %s", (target,))

    def _refuse_a_forked_chain(self, conn: psycopg.Connection[Any]) -> None:
        """Before the fork guard (schema 6) is made: say which incident's chain already forked
        (two events after the same hash), rather than how an index could not be made."""
        row = conn.execute(
            "SELECT incident_id, min(id), max(id) FROM events GROUP BY incident_id, prev_hash "
            "HAVING count(*) > 1 ORDER BY incident_id LIMIT 1").fetchone()
        if row is not None:
            raise StoreError(
                f"{self.location}: {format_incident_id(int(row[0]))}'s chain forked (events "
                f"#{row[1]} and #{row[2]} follow the same hash), so this warroom cannot guard it "
                "against forks: `warroom verify` says more; copy the incidents that verify to a "
                "new database (`warroom store copy`)")

    # --- what RecordStore asks of an engine ------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, incident_id: int | None,
                     appends: bool) -> Iterator[psycopg.Connection[Any]]:
        conn = self._conn
        errors = self._psycopg.Error
        try:
            self._begin(conn, incident_id, appends)
        except errors as error:
            self._rollback()
            raise StoreError(f"cannot write {self.location}: {_first_line(error)}") from None
        try:
            # An append's statements and its COMMIT go out together (pipeline mode): the body
            # reads nothing it did not fetch with the lock, so nothing waits for an answer.
            with conn.pipeline() if appends else contextlib.nullcontext():
                yield conn
                conn.execute("COMMIT")
        except errors as error:
            self._rollback()
            raise StoreError(f"cannot write {self.location}: {_first_line(error)}") from None
        except BaseException:
            self._rollback()
            raise
        finally:
            self._ahead = None

    def _begin(self, conn: psycopg.Connection[Any], incident_id: int | None,
               appends: bool) -> None:
        """BEGIN, then wait for the incident's lock; for a transaction that appends, also lock
        the incident's chain head (the short road's appends wait for it, then find it moved)
        and ask whether the incident exists, the next event id and the rows the cached state
        lacks. One round trip for all of it (a multi-statement query, the values are our own
        integers)."""
        key = 0 if incident_id is None else int(incident_id)
        statements = ["BEGIN", f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {key})"]
        state = self._states.get(key) if appends and incident_id is not None else None
        if appends and incident_id is not None:
            statements += [
                f"SELECT 1 FROM chain_heads WHERE incident_id = {key} FOR UPDATE",
                f"SELECT EXISTS (SELECT 1 FROM incidents WHERE id = {key}), "
                "nextval('events_id_seq')"]
            if state is not None:
                statements.append(
                    "SELECT id, incident_id, ts, kind, actor, payload, prev_hash, hash FROM events "
                    f"WHERE incident_id = {key} AND id > {int(state.last_event_id)} ORDER BY id")
        cursor = conn.execute("; ".join(statements))  # type: ignore[arg-type]  # our own SQL
        cursor.nextset()  # past BEGIN, to the lock's (empty) answer
        if len(statements) < 3:
            return
        cursor.nextset()  # the chain head's row, locked
        cursor.nextset()
        row = cursor.fetchone()
        exists, next_id = (bool(row[0]), int(row[1])) if row else (False, None)
        rows = None
        if state is not None:
            cursor.nextset()
            rows = (state.last_event_id, list(cursor.fetchall()))
        self._ahead = _Ahead(key, exists, next_id, rows)

    def _append_at_head(self, incident_id: int, kind: str, actor: str, payload: dict[str, Any],
                        ts: datetime) -> Event | None:
        """The short road: one statement, run as its own transaction (one round trip, then the
        commit), that appends the event after the head this store knows (the cached state's
        newest event) if that is still the chain's head (:data:`APPEND_AT_HEAD`). None when
        the road is not open — nothing cached yet, a keyed chain (its key never leaves this
        process), a checkpoint due — or when another writer moved the head meanwhile: then
        nothing was written, and the serialised road catches up, hashes and appends."""
        if self.readonly:
            return None
        with self._lock:
            state = self._states.get(incident_id)
            if (state is None or not state.event_count or state.chain_keyed
                    or self._checkpoint_due(incident_id, kind, state.event_count + 1)):
                return None
            draft = self._draft(state, incident_id, kind, actor, payload, ts)
            before, after = hashed_text_around_id(draft.prev_hash, incident_id, draft.ts,
                                                  draft.kind, draft.actor, draft.payload_json)
            try:
                found = self._conn.execute(APPEND_AT_HEAD, (
                    before.encode(), after.encode(), incident_id, draft.prev_hash, draft.ts,
                    draft.kind, draft.actor, draft.payload_json, draft.prev_hash),
                    prepare=True).fetchone()
            except self._psycopg.errors.UniqueViolation:
                # An event id taken by a copy into this database, or this head taken by a
                # writer that does not know the short road: the serialised road sorts it out.
                return None
            except self._psycopg.Error as error:
                self._forget_states()
                raise StoreError(f"cannot write {self.location}: {_first_line(error)}") from None
            if found is None:
                return None  # the head moved: nothing was written
            event, _ = draft.numbered(int(found[0]))
            if event.hash != found[1]:  # the same bytes hashed here and there: never differs
                self._forget_states()
                raise StoreError(f"{self.location} hashed event #{event.id} as {found[1]}, "
                                 f"not {event.hash}: the chain cannot be trusted from here")
            state.apply(event)
            return event

    def _rollback(self) -> None:
        with contextlib.suppress(self._psycopg.Error):
            self._conn.execute("ROLLBACK")

    def _execute(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        text = self._sql.get(sql)
        if text is None:  # the shared queries are written with ?; psycopg wants %s
            text = self._sql[sql] = sql.replace("?", "%s")
        return conn.execute(text, params)

    def _execute_many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    def _connection(self) -> psycopg.Connection[Any]:
        return self._conn

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            with contextlib.suppress(self._psycopg.Error):
                self._conn.execute("COMMIT")

    def _next_event_id(self, conn: Any) -> int:
        ahead = self._ahead
        if ahead is not None and ahead.next_id is not None:
            next_id = ahead.next_id
            ahead.next_id = None
            return next_id
        return int(conn.execute("SELECT nextval('events_id_seq')").fetchone()[0])

    def _require_incident(self, conn: Any, incident_id: int) -> None:
        ahead = self._ahead
        if ahead is not None and ahead.incident_id == incident_id and ahead.exists:
            return
        super()._require_incident(conn, incident_id)

    def _rows_after(self, incident_id: int, after_id: int) -> list[tuple[Any, ...]]:
        ahead = self._ahead
        if ahead is not None and ahead.incident_id == incident_id and ahead.rows is not None \
                and ahead.rows[0] == after_id:
            rows = ahead.rows[1]
            ahead.rows = None
            return rows
        return super()._rows_after(incident_id, after_id)

    def person(self, os_account: str) -> str:
        """The database role that authenticated: who acts, whatever the OS account."""
        del os_account
        return self.session_user

    def _before_import(self, conn: Any) -> None:
        # A copy writes approvals recorded by others, as they were: the identity check is off
        # for this transaction only, which only the schema's owner can do (ALTER TABLE).
        if self.schema_version >= 4:
            conn.execute(f"ALTER TABLE events DISABLE TRIGGER {IDENTITY_TRIGGER}")

    def _after_import(self, conn: Any) -> None:
        if self.schema_version >= 4:
            conn.execute(f"ALTER TABLE events ENABLE TRIGGER {IDENTITY_TRIGGER}")
        # Imported rows kept their ids: the sequence must go past them (and never back).
        conn.execute(
            "SELECT setval('events_id_seq', GREATEST((SELECT COALESCE(max(id), 0) FROM events), "
            "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_id_seq), 1))")

    def _triggers_intact(self) -> bool:
        rows = self._read(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass('events') "
            "AND tgname = ANY(?) AND tgenabled <> 'D'", (list(GUARD_TRIGGERS),))
        return bool(rows[0][0] == len(GUARD_TRIGGERS))

    def change_feed(self, incident_id: int) -> ChangeFeed:
        return PostgresChangeFeed(self.connect(), incident_id)

    def grant(self, role: str, *, read_only: bool = False) -> list[str]:
        """Apply :func:`grants_sql` for ``role`` (as the schema's owner); returns what ran."""
        statements = grants_sql(role, read_only=read_only)
        with self._write(MIGRATION_LOCK) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]  # a checked role name
        return statements

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self


class PostgresChangeFeed(ChangeFeed):
    """LISTEN on its own connection: :meth:`wait` returns as soon as a commit touching the
    incident is delivered (no polling of the tables)."""

    def __init__(self, conn: psycopg.Connection[Any], incident_id: int) -> None:
        self._conn = conn
        self._incident = str(incident_id)
        self._primed = False
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return False
        if not self._primed:  # nothing read yet: there is something to read
            self._primed = True
            return True
        deadline = monotonic() + timeout
        ours = False
        while not ours:
            remaining = deadline - monotonic()
            if remaining <= 0:
                return False
            for notify in self._conn.notifies(timeout=remaining, stop_after=1):
                ours = ours or notify.payload == self._incident
        # One commit notifies once per table it touched: take the rest now, so they do not
        # wake the next wait for the same commit.
        for _ in self._conn.notifies(timeout=0):
            pass
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

"""The ``warroom`` command (DESIGN.md, "The command line": a contract other tests rely on).

Exit codes: 0 done; 2 bad input or refused by the rules, with one line on stderr; 1 an internal
fault, with a short message (a traceback only with ``--debug``). The console (Textual) is imported
only by ``demo``, ``open`` and ``watch``, so every other command starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from console.errors import UsageError, os_user
from console.model import format_incident_id, parse_incident_id, utcnow

if TYPE_CHECKING:
    from console.config import Config
    from console.export import Configured, LateConfig
    from console.store import RecordStore

PROG = "warroom"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _common(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--config/--db/--debug, accepted before or after the sub-command."""
    # On sub-commands the defaults are suppressed so they never overwrite a value given before.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="config file (default: ./warroom.toml, then the user config dir; "
                        "$WARROOM_CONFIG)")
    parser.add_argument("--db", metavar="PATH", default=default,
                        help="incident database (default: $WARROOM_DB, then [store] path, then "
                        "the user data dir)")
    parser.add_argument("--debug", action="store_true",
                        default=False if top else argparse.SUPPRESS,
                        help="show tracebacks of internal faults")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Run an emergency change while an incident is live.")
    parser.add_argument("--version", action="version", version=f"{PROG} 0.1.0")
    _common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _common(sub)
        return sub

    demo = command("demo", "simulated environment + commander console")
    demo.add_argument("--scenario", choices=["good", "bad"], default="bad",
                      help="the simulated build (default: bad, to show a verified rollback)")
    demo.add_argument("--fast", action="store_true", help="short holds (for drills and tests)")
    demo.add_argument("--prometheus", metavar="URL",
                      help="read guardrails from a real Prometheus that scrapes the simulator")
    demo.add_argument("--serve-metrics", metavar="PORT", type=int,
                      help="export the simulated service's metrics on 127.0.0.1:PORT")
    demo.add_argument("--flagger", action="store_true",
                      help="drive a simulated Flagger through `warroom gate` (its manual gates "
                      "answered from the record)")
    demo.add_argument("--status-page", action="store_true",
                      help="a Statuspage stand-in on 127.0.0.1 that s posts to")

    declare = command("declare", "declare an emergency change; prints the id last")
    declare.add_argument("--title", required=True)
    declare.add_argument("--priority", required=True, metavar="P0..P3")
    declare.add_argument("--category", required=True,
                         metavar="security|regulatory|incident|customer-blocking")
    declare.add_argument("--service", required=True)
    declare.add_argument("--from-version", required=True, help="the stable version (the "
                         "rollback target)")
    declare.add_argument("--to-version", required=True, help="the version being shipped")
    declare.add_argument("--bypass", action="append", default=[],
                         metavar="ELEMENT=REASON[::COMPENSATION]")
    declare.add_argument("--affects", action="append", default=[], metavar="SCENARIO",
                         help="a mission-critical scenario the incident affects")
    declare.add_argument("--plan", help="canary plan name (default: the config's default_plan)")
    declare.add_argument("--detected-at", metavar="TIME",
                         help="when the problem was detected (records the detected milestone): "
                         "ISO 8601, HH:MM[:SS] UTC today, or -15m")
    declare.add_argument("--link", action="append", default=[], metavar="KIND=URL",
                         help="a ticket, PR, runbook or dashboard (repeatable)")
    fix = declare.add_mutually_exclusive_group()
    fix.add_argument("--fix", dest="change_is_fix", action="store_const", const=True,
                     help="the change is the fix for an ongoing harm: rolling it back brings the "
                     "harm back (the default for security and incident)")
    fix.add_argument("--risky-change", dest="change_is_fix", action="store_const", const=False,
                     help="the change is a risky change of its own: rolling it back ends the "
                     "risk (the default for regulatory and customer-blocking)")

    opener = command("open", "commander console for an incident")
    opener.add_argument("id")
    opener.add_argument("--take-over", action="store_true",
                        help="take command from a live commander (recorded as a handover)")
    opener.add_argument("--reason", default="", help="why, with --take-over")

    watch = command("watch", "read-only console for an incident")
    watch.add_argument("id")

    serve = command("serve", "the read-only console in browsers (textual-serve), behind a "
                    "token printed once at start")
    serve.add_argument("id")
    serve.add_argument("--host", help="address to listen on (default: [serve] host, "
                       "127.0.0.1: put the team's reverse proxy in front)")
    serve.add_argument("--port", type=int, help="TCP port (default: [serve] port, 8000; 0: any "
                       "free port)")
    serve.add_argument("--public-url", metavar="URL", help="the base URL browsers use through "
                       "the reverse proxy (default: [serve] public_url): the printed link")
    serve.add_argument("--max-watchers", type=int, metavar="N",
                       help="browser sessions at once (default: [serve] max_watchers, 20)")
    replay = command("replay", "the console as it was at any moment, from the record alone "
                               "(read-only; a live incident replays up to now)")
    replay.add_argument("id")
    replay.add_argument("--at", metavar="TIME",
                        help="open at this moment (default: the end): HH:MM[:SS] UTC, ISO 8601, "
                             "+15m after the declaration, -15m before the end")

    approve = command("approve", "approve as the OS account running this, or record a relayed "
                                 "approval (commander)")
    approve.add_argument("id")
    approve.add_argument("--role", required=True)
    approve.add_argument("--note", default="")
    approve.add_argument("--relayed-from", metavar="NAME")
    approve.add_argument("--evidence", default="")

    waive = command("waive", "waive a required approval (commander; shown as a waiver forever)")
    waive.add_argument("id")
    waive.add_argument("--role", required=True)
    waive.add_argument("--reason", required=True)

    note = command("note", "add a note to the timeline")
    note.add_argument("id")
    note.add_argument("text")
    note.add_argument("--highlight", action="store_true",
                      help="mark the note as a moment that matters (the PIR lists it)")
    note.add_argument("--link", action="append", default=[], metavar="KIND=URL")

    mark = command("mark", "mark a milestone: detected, impact-started, mitigated, resolved")
    mark.add_argument("id")
    mark.add_argument("milestone", metavar="detected|impact-started|mitigated|resolved")
    mark.add_argument("--at", metavar="TIME", help="when it happened (default: now): ISO 8601, "
                      "HH:MM[:SS] UTC today, or -15m")
    mark.add_argument("--reason", default="", help="how you know (recorded)")

    role = command("role", "record who holds a role on the bridge (scribe, comms, ...)")
    role.add_argument("id")
    role.add_argument("role")
    role.add_argument("user")

    highlight = command("highlight", "mark an earlier event as a moment that matters")
    highlight.add_argument("id")
    highlight.add_argument("event", type=int, metavar="EVENT_ID")
    highlight.add_argument("--reason", default="")

    target = command("target", "change the version being shipped (earlier approvals go stale)")
    target.add_argument("id")
    target.add_argument("--to-version", required=True)
    target.add_argument("--reason", required=True)

    command("list", "list incidents")

    export = command("export", "export an incident")
    export.add_argument("id")
    export.add_argument("--format", choices=["pir", "comms", "json"], default="pir")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.add_argument("--allow-broken", action="store_true",
                        help="export a record whose chain fails verification (the export says so)")
    export.add_argument("--samples", action="store_true",
                        help="json: add the metric samples the PIR is computed from")

    verify = command("verify", "re-walk an incident's hash chain and print its head")
    verify.add_argument("id")
    verify.add_argument("--head", metavar="N:HASH", action="append", default=[],
                        help="a head published earlier (`head #N sha256:HASH`): prove this copy "
                        "contains that exact prefix (catches removed newest events and a "
                        "rewritten, re-hashed record)")

    gate = command("gate", "serve Flagger's manual gates (confirm-rollout, "
                   "confirm-traffic-increase, confirm-promotion, rollback) from the record")
    gate.add_argument("id")
    gate.add_argument("--listen", metavar="HOST:PORT",
                      help="where to listen (default: [gate] listen, 127.0.0.1:8795)")

    check = command("check-config", "print what a config file means, or why it is refused")
    check.add_argument("file", nargs="?")

    store = command("store", "the record's database: create its schema, or copy incidents "
                    "between an SQLite file and PostgreSQL")
    store.add_argument("action", choices=["init", "copy"],
                       help="init: create (or migrate) the schema of the configured store "
                       "(--print: print the PostgreSQL schema as SQL instead); copy: copy "
                       "incidents, every event and hash as it is, to --to")
    store.add_argument("ids", nargs="*", metavar="ID",
                       help="copy: the incidents to copy (default: all of them)")
    store.add_argument("--to", metavar="PATH|URL", help="copy: the target store (an SQLite "
                       "file or a postgresql:// URL)")
    store.add_argument("--from", dest="source", metavar="PATH|URL",
                       help="copy: the source store (default: the configured one, as --db)")
    store.add_argument("--print", dest="print_sql", action="store_true",
                       help="init: print the PostgreSQL schema instead of creating it")
    store.add_argument("--grant", metavar="ROLE",
                       help="init (PostgreSQL): also grant ROLE what day-to-day use needs, and "
                       "no ownership (with --print: print the grants)")
    store.add_argument("--grant-read", metavar="ROLE",
                       help="init (PostgreSQL): grant ROLE read access only, for watchers and "
                       "`warroom serve` (with --print: print the grants)")
    return parser


# --- helpers -------------------------------------------------------------------------------------


def _load_config(args: argparse.Namespace,
                 explicit: str | None = None) -> tuple[Config, Path | None]:
    from console.config import load_config, register_secrets

    config, path = load_config(explicit or args.config)
    register_secrets(config)  # from here on, no piece of one reaches any text we make
    return config, path


def _db_path(args: argparse.Namespace, config: Config) -> Path | str:
    """Where the record is: ``--db``, then ``$WARROOM_DB``, then ``[store] url`` or ``path``,
    then the user data dir. A ``postgresql://`` URL (in any of them) is returned as text."""
    from console import paths
    from console.store import is_postgres_url

    for given in (args.db, os.environ.get("WARROOM_DB")):
        if given:
            return given if is_postgres_url(given) else Path(given).expanduser()
    if config.store.url:
        return config.store.url
    return paths.default_db_path(config.store.path)


def _open_store(args: argparse.Namespace, config: Config, *, readonly: bool = False,
                must_exist: bool = False) -> RecordStore:
    from console.store import StoreError, open_store

    location = _db_path(args, config)
    if isinstance(location, Path) and (must_exist or readonly) and not location.exists():
        raise StoreError(f"no incident database at {location} (declare an incident first, or "
                         "pass --db)")
    return open_store(location, readonly=readonly, group=config.store.group,
                      password_env=config.store.password_env)


def _incident(text: str) -> int:
    try:
        return parse_incident_id(text)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _print_err(line: str) -> None:
    """One line on stderr: user text quoted in a message (a name, a role) is shown, never
    obeyed: no line break, escape sequence or bidi control reaches the terminal."""
    from adapters.secrets import scrub

    with contextlib.suppress(OSError):  # stderr closed too: nobody is left to tell
        print(_one_line(scrub(line)), file=sys.stderr)


# --- commands ------------------------------------------------------------------------------------


def cmd_declare(args: argparse.Namespace) -> int:
    from console import commands

    config, _ = _load_config(args)
    with _open_store(args, config) as store:
        user = store.person(os_user())
        declared = commands.declare(
            store, config, commander=user, title=args.title, priority=args.priority,
            category=args.category, service=args.service, from_version=args.from_version,
            to_version=args.to_version, bypass_specs=args.bypass, affects=args.affects,
            plan_name=args.plan, now=utcnow(),
            detected_at=_time(args.detected_at, "--detected-at"), links=args.link,
            change_is_fix=args.change_is_fix)
    if declared.warning:
        _print_err(f"warroom: warning: {declared.warning.message}")
    record = declared.record
    print(f"Declared {record.priority} {record.category} emergency on {record.service}: "
          f"{record.from_version} → {record.to_version}; commander {user}")
    print(f"Required approvals: {', '.join(record.required_roles) or 'none'}")
    if record.advice:
        print(record.advice)
    print(format_incident_id(declared.incident_id))
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from console import commands
    from console.identity import invoking_people

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    # Who runs this: the OS account, and anyone behind it (su/sudo/runuser keep the login uid,
    # SUDO_USER and the terminal's owner): both are recorded, and the rules check both.
    invocation = invoking_people()
    with _open_store(args, config, must_exist=True) as store:
        user = store.person(invocation.user)
        if user != invocation.user:
            # PostgreSQL: the person is the database role that authenticated (checked by the
            # database itself); who is behind the OS account says nothing more about it.
            invocation = replace(invocation, user=user, behind=())
        if args.relayed_from is not None:
            commands.relay_approval(
                store, config, incident_id, actor=user, role=args.role,
                relayed_from=args.relayed_from, evidence=args.evidence, note=args.note)
        else:
            if args.evidence:
                raise UsageError("--evidence goes with --relayed-from")
            commands.approve(store, config, incident_id, user=user, role=args.role,
                             note=args.note, run_by=invocation.people,
                             run_by_detail=invocation.describe())
        after = store.state(incident_id)
    approval = after.approvals[-1]
    how = "relayed" if args.relayed_from is not None else "direct"
    run_by = f", run by {invocation.describe()}" if invocation.behind and how == "direct" else ""
    print(f"{after.id_text}: {args.role} approval by {approval.user} ({how}{run_by}) for "
          f"{approval.version} recorded")
    missing = after.missing_roles
    print("All required approvals are in." if not missing else
          f"Still missing: {', '.join(missing)}")
    return 0


def cmd_waive(args: argparse.Namespace) -> int:
    from console import commands

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    with _open_store(args, config, must_exist=True) as store:
        user = store.person(os_user())
        commands.waive(store, incident_id, actor=user, role=args.role, reason=args.reason)
    print(f"{format_incident_id(incident_id)}: approval of {args.role} WAIVED by {user} (shown "
          "as a waiver in the timeline and the PIR)")
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    from console import commands

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    if not args.text.strip():
        raise UsageError("the note is empty")
    with _open_store(args, config, must_exist=True) as store:
        event = commands.note(store, incident_id, actor=store.person(os_user()), text=args.text,
                              links=args.link, highlight=args.highlight)
    print(f"{format_incident_id(incident_id)}: note #{event.id} added")
    return 0


def _time(text: str | None, flag: str) -> datetime | None:
    """``--at``/``--detected-at``: ISO 8601 (UTC when no zone is given), ``HH:MM[:SS]`` UTC
    today (yesterday, if that is still to come), or ``-15m`` / ``-2h`` / ``-90s`` ago."""
    import re
    from datetime import UTC, datetime, timedelta

    if text is None:
        return None
    now = utcnow()
    value = text.strip()
    ago = re.fullmatch(r"-(\d{1,5})([smh])", value)
    if ago:
        unit = {"s": 1, "m": 60, "h": 3600}[ago.group(2)]
        return now - timedelta(seconds=int(ago.group(1)) * unit)
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value)
    try:
        if clock:
            hour, minute, second = (int(part or 0) for part in clock.groups())
            when = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
            return when - timedelta(days=1) if when > now + timedelta(minutes=2) else when
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected ISO 8601, HH:MM[:SS] (UTC) or -15m") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def cmd_mark(args: argparse.Namespace) -> int:
    from console import commands

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    at = _time(args.at, "--at")
    with _open_store(args, config, must_exist=True) as store:
        event = commands.mark(store, incident_id, actor=store.person(os_user()),
                              milestone=args.milestone, at=at, reason=args.reason)
    when = event.payload.get("at", "")
    print(f"{format_incident_id(incident_id)}: milestone {args.milestone} at {when} recorded")
    return 0


def cmd_role(args: argparse.Namespace) -> int:
    from console import commands

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    with _open_store(args, config, must_exist=True) as store:
        commands.assign_role(store, incident_id, actor=store.person(os_user()), role=args.role,
                             user=args.user)
    print(f"{format_incident_id(incident_id)}: {args.role} is {args.user}")
    return 0


def cmd_highlight(args: argparse.Namespace) -> int:
    from console import commands

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    with _open_store(args, config, must_exist=True) as store:
        commands.highlight(store, incident_id, actor=store.person(os_user()), event_id=args.event,
                           reason=args.reason)
    print(f"{format_incident_id(incident_id)}: event #{args.event} highlighted")
    return 0


def cmd_target(args: argparse.Namespace) -> int:
    from console import commands

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    with _open_store(args, config, must_exist=True) as store:
        commands.change_target(store, incident_id, actor=store.person(os_user()),
                               to_version=args.to_version, reason=args.reason)
    print(f"{format_incident_id(incident_id)}: target is now {args.to_version}; earlier "
          "approvals are stale")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from console.model import format_duration

    config, _ = _load_config(args)
    path = _db_path(args, config)
    if isinstance(path, Path) and not path.exists():
        print(f"No incidents yet ({path} does not exist).")
        return 0
    with _open_store(args, config, readonly=True) as store:
        ids = store.incident_ids()
        if not ids:
            print("No incidents.")
            return 0
        now = utcnow()
        print(f"{'ID':<8} {'PRI':<3} {'CATEGORY':<17} {'SERVICE':<16} {'CANARY':>6} "
              f"{'ROLLBACK':<16} {'AGE':>8}  TITLE")
        for incident_id in ids:
            state = store.state(incident_id)  # its checkpoint and the few events after it
            status = "closed" if state.closed else f"{state.canary_percent}%"
            title = _one_line(state.title)
            print(f"{state.id_text:<8} {state.priority:<3} {state.category:<17} "
                  f"{state.service[:16]:<16} {status:>6} {state.rollback_status:<16} "
                  f"{format_duration(state.elapsed_s(now)):>8}  {title}")
    return 0


def _one_line(text: str) -> str:
    """User text on one terminal line: control characters shown, not obeyed."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def cmd_export(args: argparse.Namespace) -> int:
    from console.export import LateConfig, NotConfigured

    early = _early_export(args)
    if early is not None:
        incident_id, location = early
        late = LateConfig(lambda: _configured(args))
        try:
            return _export_to(args, incident_id, location, None, late)
        except NotConfigured:
            pass  # read here: what is wrong with it is said as for any command
        except Exception:
            if late.configured is None:
                _load_config(args)  # a bad config is told first, as before any export
            raise
    config, _ = _load_config(args)
    return _export_to(args, _incident(args.id), _db_path(args, config), config, None)


def _early_export(args: argparse.Namespace) -> tuple[int, Path] | None:
    """A PIR from an SQLite file named by ``--db`` or ``$WARROOM_DB`` begins before the
    configuration is read (its checking child reads it meanwhile: a tenth of a second that
    the events need not wait for): the incident's id and the file. None for anything else,
    and wherever the usual order must say what is wrong (an id that is none, no such file):
    the configuration first, as for every command."""
    from console.store import is_postgres_url

    if args.format != "pir" or not hasattr(os, "fork"):
        return None
    given = args.db or os.environ.get("WARROOM_DB")
    if not given or is_postgres_url(given):
        return None
    try:
        incident_id = parse_incident_id(args.id)
    except ValueError:
        return None
    path = Path(given).expanduser()
    return (incident_id, path) if path.is_file() else None


def _configured(args: argparse.Namespace) -> Configured:
    """The configuration read as every command reads it (its secrets and chain key this
    process's), and what an export takes of it (an export's checking child runs this)."""
    from console.config import chain_key, secret_values
    from console.export import Configured
    from console.export.record import DocumentSettings

    config, _ = _load_config(args)
    return Configured(DocumentSettings.of(config), tuple(secret_values(config)),
                      chain_key(config), config.store.group)


def _export_to(args: argparse.Namespace, incident_id: int, location: Path | str,
               config: Config | None, late: LateConfig | None) -> int:
    """Export to ``-o FILE`` (or stdout) with ``config``, or with ``late`` (``config`` None:
    the configuration is read while the export begins)."""
    import tempfile

    from console.export import BrokenChain, export, protect
    from console.store import open_store

    name = format_incident_id(incident_id)
    target = Path(args.output) if args.output else None
    # Written whole or not at all: to a temporary file first (beside the target, so the final
    # rename is atomic), because the chain is verified while the export is written.
    directory = target.resolve().parent if target else None
    handle, partial_name = tempfile.mkstemp(dir=directory, prefix=".warroom-export-")
    partial = Path(partial_name)
    try:
        with (open(handle, "w", encoding="utf-8") as out,
              open_store(location, readonly=True) if config is None
              else _open_store(args, config, readonly=True) as store):
            checked, problem = export(args.format, store, incident_id, out, config=config,
                                      now=utcnow(), allow_broken=args.allow_broken,
                                      samples=args.samples, parallel=True,
                                      leave=_LEFT_FOR_EXIT, late=late)
        if target is not None:
            group = (config.store.group if config is not None
                     else late.configured.group if late is not None and late.configured
                     else None)
            protect(partial, group)  # 0600 (0640 with the store's group)
            partial.replace(target)
        else:
            with partial.open(encoding="utf-8") as written:
                shutil.copyfileobj(written, sys.stdout)
    except BrokenChain as broken:
        where = (f"#{broken.problem.event_id}" if broken.problem.event_id is not None
                 else "the record")
        raise UsageError(f"{name}: chain BROKEN at {where}: {broken.problem.message}; "
                         "export refused (--allow-broken exports it with the break printed "
                         "in it)") from None
    finally:
        partial.unlink(missing_ok=True)
    if problem is not None:
        _print_err(f"warroom: warning: {name}: chain BROKEN: {problem.message} (exported with "
                   "--allow-broken; the export says so)")
    if target is not None:
        print(f"{name}: {args.format} written to {target} ({checked:,} events, chain "
              f"{'BROKEN' if problem else 'verified'})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from console.store import Head

    config, _ = _load_config(args)
    incident_id = _incident(args.id)
    try:
        published = [Head.parse(text) for text in args.head]
    except ValueError as error:
        raise UsageError(f"--head: {error}") from None
    name = format_incident_id(incident_id)
    with _open_store(args, config, readonly=True) as store:
        walk = store.verify_walk(incident_id)
        problem = walk.problem
        for head in published:
            problem = problem or store.check_head(incident_id, head)
        head_now = store.head(incident_id)
    if problem is not None:
        _print_err(f"warroom: {name}: chain BROKEN: {problem.message}")
        return 2
    keyed = walk.checker.keyed
    if walk.checker.unverified:
        _print_err(f"warroom: {name}: NOT verified: {walk.checker.unverified} (set the "
                   "variable [store] chain_key_env names)")
        return 2
    print(f"{name}: chain intact ({walk.checked} events verified)")
    print("keyed chain (HMAC-SHA256): nobody without the key can re-hash it" if keyed else
          "unkeyed chain (sha256): compare its head with one published earlier (--head)")
    for head in published:
        print(f"contains the published head #{head.event_id} exactly")
    if head_now is not None:
        print(head_now)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from console.config import ConfigError, GateSettings
    from console.gate import serve

    config, path = _load_config(args)
    if config.gate is None:
        raise ConfigError(path, "gate", "no [gate] section: say which Flagger Canary namespace "
                                        "the gate answers for (see config.example.toml)")
    settings = config.gate
    if args.listen:
        try:
            settings = GateSettings.model_validate({**settings.model_dump(),
                                                    "listen": args.listen})
        except ValueError:
            raise UsageError(f"--listen {args.listen!r}: expected HOST:PORT") from None
    incident_id = _incident(args.id)
    with _open_store(args, config, must_exist=True) as store:
        state = store.state(incident_id)
        canary = settings.canary_name(state.service)

        def ready(server: object) -> None:
            from console.gate import GateServer

            assert isinstance(server, GateServer)
            print(f"warroom gate: {state.id_text}'s Flagger gates for canary {canary} on "
                  f"{server.url}/gate/<confirm-rollout|confirm-traffic-increase|"
                  "confirm-promotion|rollback> (ctrl+c stops)", flush=True)

        try:
            serve(store, incident_id, settings, ready=ready)
        except OSError as error:
            raise UsageError(f"gate: cannot listen on {settings.listen}: "
                             f"{error.strerror or error}") from None
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from console.config import ConfigError, environment_problems

    config, path = _load_config(args, args.file)
    # what `open` would refuse on this host is refused here too, before anyone relies on it
    problems = environment_problems(config)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(first.path, first.key, first.message + more)
    print(f"Config: {path if path else 'none found: built-in defaults'}")
    location = _db_path(args, config)
    if isinstance(location, Path):
        print(f"Database: {location}" + (f" (group {config.store.group}, mode 0660)"
                                         if config.store.group else " (mode 0600)"))
    else:
        secret = (f"password from ${config.store.password_env}" if config.store.password_env
                  else "password from libpq: PGPASSWORD, ~/.pgpass or a service file")
        print(f"Database: {location} (PostgreSQL; {secret})")
    print("Roster:" + ("" if config.roster else " empty (nobody can approve directly)"))
    for role, users in config.roster.items():
        print(f"  {role}: {', '.join(users) or '-'}")
    print("Approval path:")
    for category, roles in config.approvals.items():
        print(f"  {category}: {', '.join(roles)}")
    from console.policy import approval_rules

    print("Approval rules:")
    for rule in approval_rules(config):
        print(f"  - {rule}")
    print("Deploy-time targets: " + ", ".join(
        f"{p} {config.priorities.hours(p):g}h" for p in ("P0", "P1", "P2", "P3")))
    for name, plan in config.canary.plans.items():
        stages = " → ".join(f"{s.percent}% ({s.hold_s:g}s)" for s in plan.stages)
        default = " (default)" if name == config.canary.default_plan else ""
        print(f"Canary plan {name}{default}: {stages}")
    print(f"Guardrails: {len(config.guardrails)}")
    for g in config.guardrails:
        limits = []
        if g.max is not None:
            limits.append(f"max {g.max:g}")
        if g.max_ratio_to_baseline is not None:
            limits.append(f"≤ {g.max_ratio_to_baseline:g}× baseline")
        print(f"  {g.name}: {', '.join(limits)}; {g.consecutive} in a row → {g.on_breach}")
        from console.guardrails import judgement_rules

        if rules := judgement_rules(g):
            print(f"    {'; '.join(rules)}")
    print(f"Metrics: {_adapter_line(config.metrics)}")
    print(f"Traffic: {_adapter_line(config.traffic)}")
    print(f"Deploy: {_adapter_line(config.deploy)}")
    simulated = config.simulated()
    if len(simulated) == 3:
        print("WARNING: every adapter is the simulator ([metrics], [traffic] and [deploy] kind = "
              "\"sim\"): nothing real is deployed or measured; the console shows SIM")
    for name in config.simulated_sections():
        print(f"WARNING: [{name}] is the simulator while another section is real (a drill "
              "only); the console shows SIM")
    if config.gate is not None:
        gate = config.gate
        token = f"token from ${gate.token_env}" if gate.token_env else "no token asked"
        print(f"Flagger gate: `warroom gate ID` on {gate.listen}, canary "
              f"{gate.canary_name('{service}')} ({token})")
    notify = config.notify
    targets = ([f"webhook ${notify.webhook_url_env}"] if notify.webhook_url_env else []) + \
        [f"apprise ${name}" for name in notify.urls_env]
    if targets:
        print(f"Chat: {', '.join(targets)} (each post within {notify.deadline_s:g}s, recorded)")
    if config.statuspage is not None:
        page = config.statuspage
        components = ", ".join(f"{service} → {component}"
                               for service, component in page.components.items()) or "none"
        print(f"Status page: {page.api_url} page {page.page_id}, key from "
              f"${page.api_key_env}; components: {components} (s in the console posts, after "
              "confirmation)")
    if config.console.environment:
        print(f"Environment: {config.console.environment} (header colour "
              f"{config.console.badge_colour()})")
    serve = config.serve
    print(f"Browser watchers (warroom serve ID): listen on {serve.host}:{serve.port}, at most "
          f"{serve.max_watchers} at once, each a read-only `warroom watch`; a new token in the "
          "link at each start" + (f"; link through {serve.public_url}" if serve.public_url
                                  else ""))
    if not serve.is_loopback():
        print(f"WARNING: [serve] host = {serve.host} is not the loopback: browsers reach the "
              "server without TLS unless the reverse proxy is the only way in")
    print(f"Rollback: verification hold {config.rollback.verification_hold_s:g}s, "
          f"{len(config.rollback.compatibility_checklist)} compatibility checks")
    print("Mission-critical scenarios: "
          + (", ".join(config.scenarios.mission_critical) or "none configured"))
    print(f"Emergency-rate bar: {config.emergency_rate.max_per_30_days} per 30 days")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    from console.store import StoreError, copy_incident, is_postgres_url, open_store

    config, _ = _load_config(args)
    if args.action == "init":
        if args.ids or args.to or args.source:
            raise UsageError("store init takes no ids, --to or --from (it uses --db or the "
                             "config's [store])")
        if args.print_sql:
            from console.pgstore import grants_sql, schema_sql

            print(schema_sql(), end="")
            for grant in grants_sql(args.grant) if args.grant else []:
                print(f"{grant};")
            for grant in grants_sql(args.grant_read, read_only=True) if args.grant_read else []:
                print(f"{grant};")
            return 0
        with _open_store(args, config) as store:
            print(f"{store.location}: warroom schema version {store.schema_version} ready "
                  f"({store.engine})")
            if args.grant or args.grant_read:
                from console.pgstore import PostgresStore

                if not isinstance(store, PostgresStore):
                    raise UsageError("--grant is for a PostgreSQL store (an SQLite file's "
                                     "access is its mode and group)")
                for grant in store.grant(args.grant) if args.grant else []:
                    print(f"{grant};")
                for grant in (store.grant(args.grant_read, read_only=True) if args.grant_read
                              else []):
                    print(f"{grant};")
        return 0
    if args.print_sql or args.grant or args.grant_read:
        raise UsageError("--print, --grant and --grant-read go with store init")
    if not args.to:
        raise UsageError("store copy needs --to PATH|URL")

    def location(text: str) -> Path | str:
        return text if is_postgres_url(text) else Path(text).expanduser()

    source_location = location(args.source) if args.source else _db_path(args, config)
    target_location = location(args.to)
    if str(source_location) == str(target_location):
        raise UsageError("--to names the source itself")
    if isinstance(source_location, Path) and not source_location.exists():
        raise StoreError(f"no incident database at {source_location}")
    password_env = config.store.password_env
    with open_store(source_location, readonly=True, password_env=password_env) as source, \
            open_store(target_location, group=config.store.group,
                       password_env=password_env) as target:
        ids = [_incident(text) for text in args.ids] or source.incident_ids()
        if not ids:
            print(f"No incidents in {source.location}: nothing to copy.")
            return 0
        for incident_id in ids:
            copied = copy_incident(source, target, incident_id)
            checked, problem = target.verify(incident_id)
            if problem is not None:  # cannot happen unless the target is tampered with at once
                raise StoreError(f"{format_incident_id(incident_id)}: the copy in "
                                 f"{target.location} does not verify: {problem.message}")
            head = target.events_tail(incident_id, None, 1)[-1].hash if checked else "-"
            print(f"{format_incident_id(incident_id)}: {copied:,} "
                  f"event{'' if copied == 1 else 's'} copied to "
                  f"{target.location}; chain verified on both sides (head {head[:16]}…)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from console.config import ServeSettings
    from console.launch import check_watchable

    config, config_path = _load_config(args)
    incident_id = _incident(args.id)
    given = {key: value for key, value in (
        ("host", args.host), ("port", args.port), ("public_url", args.public_url),
        ("max_watchers", args.max_watchers)) if value is not None}
    try:
        settings = ServeSettings.model_validate({**config.serve.model_dump(), **given})
    except ValueError as error:
        from pydantic import ValidationError

        if isinstance(error, ValidationError):
            problem = error.errors()[0]
            flag = "--" + str(problem["loc"][0]).replace("_", "-")
            raise UsageError(f"{flag}: {problem['msg']}") from None
        raise
    location = _db_path(args, config)
    if isinstance(location, Path):
        location = location.resolve()
    # what each browser's `warroom watch` would refuse is refused now, once, on this terminal
    check_watchable(incident_id, config, location)
    from console.serve import ServePlan, new_token, page_url, serve

    name = format_incident_id(incident_id)
    argv = [sys.executable, "-m", "console.cli", "watch", name, "--db", str(location)]
    if config_path is not None:
        argv += ["--config", str(Path(config_path).resolve())]
    plan = ServePlan(title=f"warroom {name} (watching, read-only)", argv=tuple(argv),
                     token=new_token(), max_watchers=settings.max_watchers)

    def announce(host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        local = page_url(f"http://{shown}:{port}", plan.token)
        print(f"Serving {name} read-only to browsers: each one runs `warroom watch {name}`, "
              "which cannot act.")
        if settings.public_url:
            print(f"  Link: {page_url(settings.public_url, plan.token)}")
            print(f"  (through the reverse proxy to {local})")
        else:
            print(f"  Link: {local}")
        print("Anyone with this link can watch until this server stops; it is shown only now "
              "(a new one each run). Ctrl+C stops.")
        if not settings.is_loopback(host):
            print(f"WARNING: listening on {host}, not the loopback: the link travels without "
                  "TLS unless a reverse proxy terminates it in front of this address.")
        sys.stdout.flush()

    return serve(plan, settings.host, settings.port, settings.public_url, announce)


def _adapter_line(settings: Any) -> str:
    """One adapter section for check-config: its kind and how long a call may take."""
    kind = settings.kind
    if kind == "prometheus":
        return (f"prometheus at {settings.url} (each query: {settings.timeout_s:g} s per read, "
                f"{settings.deadline_s:g} s in all)")
    if kind == "http":
        return (f"http at {settings.base_url} (each call: {settings.timeout_s:g} s per read, "
                f"{settings.deadline_s:g} s in all unless the action says otherwise)")
    if kind == "command":
        return f"command (each command: {settings.timeout_s:g} s in all unless the action says)"
    if kind == "argo-rollouts":
        where = settings.api_url or "in-cluster or kubeconfig"
        return (f"argo-rollouts: Rollout {settings.rollout} in "
                f"{settings.namespace or 'the default namespace'} via {where}, plan "
                f"{settings.plan} (each call: {settings.deadline_s:g} s in all; set_weight waits "
                f"{settings.converge_s:g} s more for the controller)")
    return "sim (the embedded simulator)"


def cmd_console(args: argparse.Namespace) -> int:
    from console.launch import opens_behind_first_frame, run_console, run_console_opening

    if opens_behind_first_frame(args):

        def load() -> tuple[Config, Path | str | None]:
            config, _ = _load_config(args)
            return config, (_db_path(args, config) if args.db or args.command != "demo"
                            else None)

        return run_console_opening(args, load)
    config, _ = _load_config(args)
    return run_console(args, config, _db_path(args, config) if args.db or args.command != "demo"
                       else None)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "declare": cmd_declare,
    "approve": cmd_approve,
    "waive": cmd_waive,
    "note": cmd_note,
    "target": cmd_target,
    "mark": cmd_mark,
    "role": cmd_role,
    "highlight": cmd_highlight,
    "list": cmd_list,
    "export": cmd_export,
    "verify": cmd_verify,
    "check-config": cmd_check_config,
    "gate": cmd_gate,
    "store": cmd_store,
    "demo": cmd_console,
    "open": cmd_console,
    "watch": cmd_console,
    "serve": cmd_serve,
    "replay": cmd_console,
}


#: Options whose value names a file: refused when not valid UTF-8 (made visible, it would name
#: another file), instead of made visible like every other text.
_PATH_OPTIONS = ("config", "db", "output", "file")


def _visible_text(text: str) -> str:
    """``text`` as it can be stored: bytes that were not UTF-8 (Python hands them over as lone
    surrogates) become visible escapes, ``b'ok\\x80'`` → ``'ok\\\\x80'``; anything else is
    unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that was not a byte: show its code point
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean_arguments(args: argparse.Namespace) -> None:
    """Every text argument storable as UTF-8; a path that is not UTF-8 is refused (exit 2)."""
    for name, value in vars(args).items():
        if isinstance(value, str) and _visible_text(value) != value:
            if name in _PATH_OPTIONS:
                flag = name if name == "file" else f"--{name}"
                raise UsageError(f"{flag}: {_visible_text(value)!r} is not valid UTF-8; "
                                 "rename the file")
            setattr(args, name, _visible_text(value))
        elif isinstance(value, list):
            setattr(args, name, [_visible_text(v) if isinstance(v, str) else v for v in value])


def _stdout_gone() -> None:
    """The reader of our output went away (`warroom list | head -1`): not an error. Point
    stdout at /dev/null so the interpreter's last flush does not complain either."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """argparse, except that `store copy` takes its ids after the options too (argparse gives a
    ``*`` positional its empty match before the options, and then refuses later ids)."""
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) == "store" and not any(
            text.startswith("-") for text in extra):
        args.ids = [*args.ids, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


#: What a command built and need not free: a process that is the command itself ends once the
#: command is done, without freeing it (an export's 100,000 events take 0.08 s to free).
_LEFT_FOR_EXIT: list[object] = []


def main(argv: Sequence[str] | None = None) -> int:
    own_process = argv is None  # the `warroom` command (not a caller in its own process)
    collecting = gc.isenabled()  # an export leaves the collector off (console.export.export)
    argv = list(sys.argv[1:] if argv is None else argv)
    # pydantic looks for plugins in every installed distribution's entry points when the first
    # model is built (≈ 50 ms of every command's start); warroom uses none. A value already set
    # (even empty) is left as it is.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    debug = "--debug" in argv
    for stream in (sys.stdout, sys.stderr):
        # a title in any script must print even where the locale's encoding cannot show it
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")
    try:
        args = _parse(build_parser(), argv)
        _clean_arguments(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        if _LEFT_FOR_EXIT and own_process:
            sys.stderr.flush()
            os._exit(code)  # nothing is left to do: no exit handler, nothing to write
        return code
    except BrokenPipeError:
        _stdout_gone()
        return 0
    except KeyboardInterrupt:
        _print_err("warroom: interrupted")
        return 130
    except Exception as error:  # every user error is one line; anything else is a fault
        from console.config import ConfigError
        from console.policy import Refused
        from console.store import StoreError

        if isinstance(error, UsageError | Refused):
            _print_err(f"warroom: {error}")
            return 2
        if isinstance(error, ConfigError):
            _print_err(f"warroom: config error: {error}")
            return 2
        if isinstance(error, StoreError):
            _print_err(f"warroom: {error}")
            return 2
        from adapters.base import AdapterError

        if isinstance(error, AdapterError):  # e.g. a secret's environment variable is unset
            _print_err(f"warroom: cannot start the adapters: {error}")
            return 2
        if isinstance(error, OSError) and error.filename:
            _print_err(f"warroom: {error.filename}: {error.strerror}")
            return 2
        if debug:
            import traceback

            traceback.print_exc()
        _print_err(f"warroom: internal error: {type(error).__name__}: {error}"
                   + ("" if debug else " (run with --debug for details)"))
        return 1
    finally:
        _LEFT_FOR_EXIT.clear()  # a caller in its own process (a test) frees them now
        if collecting:
            gc.enable()


if __name__ == "__main__":
    sys.exit(main())

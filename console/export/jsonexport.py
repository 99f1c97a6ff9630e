"""The JSON export of an incident: the contract scripts and status bars rely on (DESIGN.md).

One object, UTF-8 kept as is, ending with a newline:

- ``incident``: ``id`` (``INC-n``), ``title``, ``priority``, ``category``, ``service``,
  ``from_version``, ``to_version``, ``commander`` (the commander at the last event);
- ``state``: :func:`console.state.state_json` of the fold — at least ``canary_percent`` (int),
  ``rollback_status`` (one of :data:`console.model.ROLLBACK_STATUSES`), ``approvals`` (list of
  ``{role, user, kind, stale, ...}``) and ``guardrails`` (list of ``{name, status, ...}``);
- ``events``: every event with ``id``, ``incident``, ``ts``, ``kind``, ``actor``, ``payload``,
  ``prev_hash`` and ``hash``, oldest first, **one per line** (``grep`` and ``jq`` friendly);
- ``samples`` (only with ``--samples``): each metric series the commander's poller recorded
  (``<guardrail>/<track>``, track one of ``canary``, ``baseline``, ``limit``) as a list of
  ``[ts, value]`` (``ts`` as the events' ``ts``; ``value`` a number or ``null``), oldest first —
  what the PIR's impact figures and graphs are computed from;
- ``chain``, last (only when the record failed verification and the export was asked for anyway
  with ``--allow-broken``): ``{intact: false, event_id, problem}``.

``incident`` and ``state`` are indented by 2. The events are written while they are read from
the store, each from its stored bytes: the payload is the stored canonical JSON, spliced in, never
parsed and re-serialised, so exporting 100,000 events costs little more than reading them.
Numbers JSON cannot carry (NaN, ±Inf) are never stored; in the state they become ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from console.model import Event, format_head, format_incident_id, format_ts
from console.state import IncidentState, fold, state_json
from console.store import ChainChecker, ChainProblem, canonical_json, json_safe

#: JSON's string encoder without ensure_ascii (C where available): UTF-8 kept as is.
_string = json.encoder.encode_basestring  # type: ignore[attr-defined]

#: An event as stored: id, incident id, ts, kind, actor, payload JSON, prev_hash, hash.
Row = tuple[int, int, str, str, str, str, str, str]


def head_document(state: IncidentState) -> dict[str, Any]:
    """Everything but the events: the incident and the folded state."""
    document: dict[str, Any] = {
        "incident": {
            "id": state.id_text,
            "title": state.title,
            "priority": state.priority,
            "category": state.category,
            "service": state.service,
            "from_version": state.from_version,
            "to_version": state.to_version,
            "commander": state.commander,
        },
        "state": state_json(state),
    }
    if state.last_hash:  # the chain head, as published (`warroom verify ID --head N:HASH`)
        document["head"] = {
            "event_id": state.last_event_id, "hash": state.last_hash,
            "algorithm": "hmac-sha256" if state.chain_keyed else "sha256",
            "text": format_head(state.last_event_id, state.last_hash, state.chain_keyed)}
    return json_safe(document)  # type: ignore[no-any-return]


def event_line(row: Row) -> str:
    """One event as its export line, from its stored columns (the payload spliced in)."""
    event_id, incident_id, ts, kind, actor, payload, prev_hash, digest = row
    return (f'    {{"id":{event_id},"incident":"{format_incident_id(incident_id)}",'
            f'"ts":{_string(ts)},"kind":{_string(kind)},"actor":{_string(actor)},'
            f'"payload":{payload},"prev_hash":{_string(prev_hash)},"hash":{_string(digest)}}}')


def write_json(out: TextIO, state: IncidentState, rows: Iterable[Row],
               chain: Callable[[], ChainProblem | None] | ChainProblem | None = None,
               samples: Mapping[str, Sequence[tuple[float, float | None]]] | None = None
               ) -> None:
    """Write the export: the head, each event as it comes, the metric samples when asked
    (``--samples``), then — when the chain is broken — where (``chain``: the problem, or what
    says it once every row was read and checked)."""
    write_json_lines(out, state, _line_batches(rows), chain, samples)


def _line_batches(rows: Iterable[Row]) -> Iterator[list[str]]:
    batch: list[str] = []
    for row in rows:
        batch.append(event_line(row))
        if len(batch) == 2000:  # a few large writes rather than 200,000 small ones
            yield batch
            batch = []
    if batch:
        yield batch


def write_json_lines(out: TextIO, state: IncidentState, batches: Iterable[list[str]],
                     chain: Callable[[], ChainProblem | None] | ChainProblem | None = None,
                     samples: Mapping[str, Sequence[tuple[float, float | None]]] | None = None
                     ) -> None:
    """:func:`write_json` of events already made into their lines (:func:`event_line`), a
    batch at a time."""
    head = json.dumps(head_document(state), indent=2, ensure_ascii=False, allow_nan=False)
    out.write(head[:-2])  # without the closing "\n}"
    out.write(',\n  "events": [\n')
    first = True
    for batch in batches:
        if batch:
            out.write(("" if first else ",\n") + ",\n".join(batch))
            first = False
    out.write("\n  ]")
    if samples is not None:
        out.write(',\n  "samples": {')
        for index, name in enumerate(sorted(samples)):
            points = ",".join(f"[{_string(format_ts(_utc(ts)))},{_figure(value)}]"
                              for ts, value in samples[name])
            out.write(("," if index else "") + f"\n    {_string(name)}: [{points}]")
        out.write("\n  }" if samples else "}")
    problem = chain() if callable(chain) else chain
    if problem is not None:
        broken = {"intact": False, "event_id": problem.event_id, "problem": problem.message}
        out.write(',\n  "chain": ' + json.dumps(broken, ensure_ascii=False))
    out.write("\n}\n")


def verified_lines(rows: Sequence[Row], checker: ChainChecker) -> list[str]:
    """The export lines of a chunk of stored rows (oldest first, following the rows
    ``checker`` has seen), each row checked against the chain on the way.

    One loop does both, since the hash and the line quote the same ts, kind and actor: a row
    that follows its predecessor and whose ``prev_hash + canonical event`` (as
    :func:`console.store.event_hash` spells it) hashes to its stored hash is accepted here;
    any other row — the first, a break, a keyed chain without its key — goes to
    ``checker.check``, which decides and says why. The lines are :func:`event_line`'s, byte
    for byte; an accepted row's hashes are hex digits and need no quoting."""
    quote = _string
    lines: list[str] = []
    append = lines.append
    hasher = checker.hasher()
    checked, last_id, last_hash = checker.checked, checker.last_id, checker.last_hash
    incident, incident_text = None, ""
    for row in rows:
        event_id, incident_id, ts, kind, actor, payload, prev_hash, digest = row
        if incident_id != incident:
            incident, incident_text = incident_id, format_incident_id(incident_id)
        q_ts, q_kind, q_actor = quote(ts), quote(kind), quote(actor)
        if hasher is not None and prev_hash == last_hash and hasher(
                (f'{prev_hash}{{"actor":{q_actor},"id":{event_id},"incident":{incident_id},'
                 f'"kind":{q_kind},"payload":{payload},"ts":{q_ts}}}').encode()
        ).hexdigest() == digest:
            checked += 1
            last_id, last_hash = event_id, digest
            append(f'    {{"id":{event_id},"incident":"{incident_text}","ts":{q_ts},'
                   f'"kind":{q_kind},"actor":{q_actor},"payload":{payload},'
                   f'"prev_hash":"{prev_hash}","hash":"{digest}"}}')
            continue
        if checker.problem is None:
            checker.checked, checker.last_id, checker.last_hash = checked, last_id, last_hash
            checker.check(row)
            hasher = checker.hasher()
            checked, last_id, last_hash = checker.checked, checker.last_id, checker.last_hash
        append(f'    {{"id":{event_id},"incident":"{incident_text}","ts":{q_ts},'
               f'"kind":{q_kind},"actor":{q_actor},"payload":{payload},'
               f'"prev_hash":{quote(prev_hash)},"hash":{quote(digest)}}}')
    if checker.problem is None:
        checker.checked, checker.last_id, checker.last_hash = checked, last_id, last_hash
    return lines


def _utc(unix_ts: float) -> datetime:
    return datetime.fromtimestamp(unix_ts, UTC)


def _figure(value: float | None) -> str:
    """A sample's value as JSON: ``null`` when there was none (or it was not finite)."""
    return "null" if value is None or not math.isfinite(value) else repr(float(value))


def event_row(event: Event) -> Row:
    """An event held in memory as the row it is stored as."""
    return (event.id, event.incident_id, format_ts(event.ts), str(event.kind), event.actor,
            canonical_json(json_safe(event.payload)), event.prev_hash, event.hash)


def export_document(events: Sequence[Event]) -> dict[str, Any]:
    """The export as a dict (the events as :meth:`Event.to_json` gives them)."""
    document = head_document(fold(events))
    document["events"] = [json_safe(event.to_json()) for event in events]
    return document


def render_json(events: Sequence[Event], chain_problem: ChainProblem | None = None,
                samples: Mapping[str, Sequence[tuple[float, float | None]]] | None = None
                ) -> str:
    """One incident (its events, oldest first) as the JSON export."""
    import io

    out = io.StringIO()
    write_json(out, fold(events), (event_row(event) for event in events), chain_problem,
               samples)
    return out.getvalue()

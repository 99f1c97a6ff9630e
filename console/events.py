"""Typed event records: every kind of fact an incident records, with its payload's fields.

The stored JSON is the contract (DESIGN.md): databases in the field hold it and ``warroom export
--format json`` prints it. These classes are how code reads and writes it, instead of dict
literals and string keys:

- a payload class per kind (``Declared``, ``Approved``, ``WeightSet``, …), a dataclass whose
  ``KIND`` says which kind it is; ``record.to_payload()`` is the dict that is stored (fields left
  at ``None`` are not written, so optional fields stay absent as they always were). Treat a
  record as immutable: it is not frozen only because a frozen dataclass costs six times as much
  to build, and one is built for every event read;
- :func:`read` gives the typed payload of a stored :class:`~console.model.Event`. Reading is
  tolerant, because the record outlives the code that wrote it: a missing field takes its
  default, a value of the wrong type is converted when it can be and defaulted when it cannot,
  and a kind this code does not know reads as :class:`Unknown`. Reading never raises.

Reading is on the path of every fold and every export, so each class gets a reader compiled once
(one call per field, no reflection per event).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar, get_type_hints

from console.model import Event, Kind

#: What a guardrail figure may be in a stored payload: a number, the strings Prometheus uses for
#: NaN and infinities ("NaN", "+Inf", "-Inf"), or nothing.
Figure = float | str | None


# --- nested records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bypass:
    """A bypassed element of the normal release path, with why and what compensates (seed 000)."""

    element: str = ""
    reason: str = ""
    compensation: str = ""
    post_gate: str = ""

    @property
    def checklist_item(self) -> str:
        """Its item on the post-emergency checklist (meaningful when it has a post-gate)."""
        return f"{self.element}: {self.post_gate}"


@dataclass(frozen=True, slots=True)
class PlanStage:
    """A stage of the declared canary plan."""

    percent: int = 0
    hold_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DeclaredGuardrail:
    """A guardrail as the declaration recorded it (its name and how it acts)."""

    name: str = ""
    consecutive: int = 1
    on_breach: str = "hold"
    shadow: bool | None = None  # written only when set, so older declarations read the same
    initial_delay_s: float | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """One line of a preflight or a verification: what was checked, whether it held, the detail."""

    name: str = ""
    ok: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    """A block of advance set aside with a typed reason."""

    block: str = ""
    words: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    """A link a person gave (ticket, PR, runbook, dashboard...): its kind and where it points."""

    kind: str = ""
    url: str = ""


# --- payloads ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Payload:
    """Base of every payload class."""

    KIND: ClassVar[str] = ""

    def to_payload(self) -> dict[str, Any]:
        """The dict that is stored: every field, but those left at ``None``."""
        return _writer(type(self))(self)


@dataclass(slots=True)
class Declared(Payload):
    KIND: ClassVar[str] = Kind.DECLARED
    title: str = ""
    priority: str = ""
    category: str = ""
    service: str = ""
    from_version: str = ""
    to_version: str = ""
    commander: str = ""
    bypasses: list[Bypass] = field(default_factory=list)
    affects: list[str] = field(default_factory=list)
    advice: str = ""
    required_roles: list[str] = field(default_factory=list)
    plan_name: str = ""
    plan: list[PlanStage] = field(default_factory=list)
    target_hours: float = 0.0
    checklist: list[str] = field(default_factory=list)
    guardrails: list[DeclaredGuardrail] = field(default_factory=list)
    simulated: bool = False
    scenario: str | None = None  # a demo's simulated build: good | bad
    links: list[Link] | None = None
    # Whether the change is the fix for an ongoing harm (rolling it back brings the harm back)
    # or a risky change of its own; absent in older records: the category decides.
    change_is_fix: bool | None = None
    chain: str | None = None  # "keyed": every hash of this incident is an HMAC-SHA256


@dataclass(slots=True)
class RateWarning(Payload):
    KIND: ClassVar[str] = Kind.RATE_WARNING
    count: int = 0
    window_days: int = 0
    bar: int = 0
    message: str = ""


@dataclass(slots=True)
class Approved(Payload):
    KIND: ClassVar[str] = Kind.APPROVED
    role: str = ""
    user: str = ""
    kind: str = "direct"  # direct | relayed | simulated
    version: str = ""
    note: str = ""
    relayed_from: str | None = None
    evidence: str | None = None
    #: The people behind the OS account that ran ``warroom approve`` when they are not that
    #: account (``su``/``sudo``/``runuser``: the login uid, SUDO_USER, the terminal's owner)...
    run_by: list[str] | None = None
    #: ...and where each name came from, in words: ``"root (login uid)"``.
    run_by_detail: str | None = None


@dataclass(slots=True)
class Waived(Payload):
    KIND: ClassVar[str] = Kind.WAIVED
    role: str = ""
    reason: str = ""
    version: str = ""


@dataclass(slots=True)
class TargetChanged(Payload):
    KIND: ClassVar[str] = Kind.TARGET_CHANGED
    from_version: str = ""
    to_version: str = ""
    reason: str = ""


@dataclass(slots=True)
class Note(Payload):
    KIND: ClassVar[str] = Kind.NOTE
    text: str = ""
    links: list[Link] | None = None
    highlight: bool | None = None  # the note itself is marked as important


@dataclass(slots=True)
class ConsoleOpened(Payload):
    KIND: ClassVar[str] = Kind.CONSOLE_OPENED
    user: str = ""
    host: str = ""
    pid: int = 0
    mode: str = "commander"


@dataclass(slots=True)
class Handover(Payload):
    KIND: ClassVar[str] = Kind.HANDOVER
    previous_user: str = ""
    previous_host: str = ""
    previous_pid: int = 0
    user: str = ""
    host: str = ""
    pid: int = 0
    reason: str = ""


@dataclass(slots=True)
class ChecklistAcked(Payload):
    KIND: ClassVar[str] = Kind.CHECKLIST_ACKED
    items: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PreflightRequested(Payload):
    KIND: ClassVar[str] = Kind.PREFLIGHT_REQUESTED
    target: str = ""


@dataclass(slots=True)
class PreflightPassed(Payload):
    KIND: ClassVar[str] = Kind.PREFLIGHT_PASSED
    target: str = ""
    checks: list[Check] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True)
class PreflightFailed(Payload):
    KIND: ClassVar[str] = Kind.PREFLIGHT_FAILED
    target: str = ""
    checks: list[Check] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True)
class WeightRequested(Payload):
    """Journalled before the traffic call; abort is a request for 0 % with action "abort"."""

    KIND: ClassVar[str] = Kind.WEIGHT_REQUESTED
    from_percent: int = 0
    to_percent: int = 0
    stage_index: int = -1
    action: str = "advance"  # advance | immediate | abort | rollback
    overrides: list[OverrideRecord] | None = None
    reason: str | None = None


@dataclass(slots=True)
class WeightSet(Payload):
    KIND: ClassVar[str] = Kind.WEIGHT_SET
    percent: int = 0
    stage_index: int = -1
    action: str = "advance"
    reported: int | None = None
    request_id: int | None = None


@dataclass(slots=True)
class WeightFailed(Payload):
    KIND: ClassVar[str] = Kind.WEIGHT_FAILED
    percent: int = 0
    stage_index: int = -1
    action: str = "advance"
    error: str = ""
    request_id: int | None = None


@dataclass(slots=True)
class GuardrailChanged(Payload):
    """A guardrail's status changed (or its breach count moved while in breach)."""

    KIND: ClassVar[str] = Kind.GUARDRAIL_CHANGED
    name: str = ""
    status: str = "unknown"
    previous: str = "unknown"
    canary: Figure = None
    baseline: Figure = None
    limit: Figure = None
    evidence: Figure = None
    detail: str = ""
    breaches: int = 0
    consecutive: int | None = None
    sustained: bool = False
    on_breach: str | None = None
    mode: str | None = None  # "stable" while a rollback is verified on the stable track
    warn_limit: Figure = None  # where the warn band starts, when the guardrail has one
    no_data: bool | None = None  # the canary answered with nothing (its on_no_data applied)
    shadow: bool | None = None  # evaluated and recorded, never gates
    comparison: str | None = None  # the Mann-Whitney comparison, in words, when configured
    rule: str | None = None  # the rule that decided (max, max_ratio_to_baseline, warn, ...)
    queries: dict[str, str] | None = None  # role → the query as sent
    #: role → the values its query answered, the samples this verdict was judged on
    #: (Prometheus's words for NaN and infinities kept); absent in records before issue 16
    samples: dict[str, list[Figure]] | None = None


@dataclass(slots=True)
class GuardrailAction(Payload):
    KIND: ClassVar[str] = Kind.GUARDRAIL_ACTION
    name: str = ""
    action: str = "alert"  # alert | hold | rollback
    breaches: int = 0


@dataclass(slots=True)
class RollbackRequested(Payload):
    KIND: ClassVar[str] = Kind.ROLLBACK_REQUESTED
    target: str = ""
    from_version: str = ""
    weight: int = 0
    automatic: bool = False
    reason: str = ""


@dataclass(slots=True)
class RollbackStarted(Payload):
    """The deployer accepted the rollback."""

    KIND: ClassVar[str] = Kind.ROLLBACK_STARTED
    target: str = ""
    detail: str = ""


@dataclass(slots=True)
class RollbackProgress(Payload):
    KIND: ClassVar[str] = Kind.ROLLBACK_PROGRESS
    target: str = ""
    message: str = ""
    phase: str | None = None  # while verifying: "holding" (healthy, the hold runs) | "waiting"


@dataclass(slots=True)
class RollbackCompleted(Payload):
    """The deployer reports the target live."""

    KIND: ClassVar[str] = Kind.ROLLBACK_COMPLETED
    target: str = ""
    version: str = ""


@dataclass(slots=True)
class RollbackFailed(Payload):
    KIND: ClassVar[str] = Kind.ROLLBACK_FAILED
    target: str = ""
    error: str = ""


@dataclass(slots=True)
class VerificationStarted(Payload):
    KIND: ClassVar[str] = Kind.VERIFICATION_STARTED
    target: str = ""
    hold_s: float = 0.0


@dataclass(slots=True)
class RollbackVerified(Payload):
    KIND: ClassVar[str] = Kind.ROLLBACK_VERIFIED
    target: str = ""
    checks: list[Check] = field(default_factory=list)


@dataclass(slots=True)
class RollbackNotVerified(Payload):
    KIND: ClassVar[str] = Kind.ROLLBACK_NOT_VERIFIED
    target: str = ""
    reason: str = ""
    checks: list[Check] = field(default_factory=list)


@dataclass(slots=True)
class GateRecorded(Payload):
    """A post-emergency checklist item's result."""

    KIND: ClassVar[str] = Kind.GATE_RECORDED
    item: str = ""
    result: str = ""  # passed | failed | waived
    detail: str = ""


@dataclass(slots=True)
class Reconciled(Payload):
    """A journalled request found without an outcome, settled from what the adapter reports."""

    KIND: ClassVar[str] = Kind.RECONCILED
    request_kind: str = ""
    request_id: int = 0
    outcome: str = ""
    detail: str = ""


@dataclass(slots=True)
class Closed(Payload):
    KIND: ClassVar[str] = Kind.CLOSED
    reason: str = ""
    waived_items: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Notified(Payload):
    KIND: ClassVar[str] = Kind.NOTIFIED
    message: str = ""
    target: str | None = None  # the [notify] urls_env variable it went to (absent: the webhook)


@dataclass(slots=True)
class NotifyFailed(Payload):
    KIND: ClassVar[str] = Kind.NOTIFY_FAILED
    message: str = ""
    error: str = ""
    target: str | None = None


@dataclass(slots=True)
class ChainBroken(Payload):
    """Verification found the record edited (where, and how far it held): recorded once, so
    the break is part of the record itself."""

    KIND: ClassVar[str] = Kind.CHAIN_BROKEN
    event_id: int | None = None
    message: str = ""
    verified_to: int = 0


@dataclass(slots=True)
class Paused(Payload):
    """The commander holds the canary at its weight (not an abort): advance waits for resume."""

    KIND: ClassVar[str] = Kind.PAUSED
    percent: int = 0
    reason: str = ""


@dataclass(slots=True)
class Resumed(Payload):
    KIND: ClassVar[str] = Kind.RESUMED
    percent: int = 0
    reason: str = ""


@dataclass(slots=True)
class Milestone(Payload):
    """A moment of the incident a person marks: when it happened (``at``, which may be before
    it was recorded), and why they say so."""

    KIND: ClassVar[str] = Kind.MILESTONE
    milestone: str = ""
    at: str = ""  # format_ts: UTC with milliseconds
    reason: str = ""


@dataclass(slots=True)
class RoleAssigned(Payload):
    KIND: ClassVar[str] = Kind.ROLE_ASSIGNED
    role: str = ""
    user: str = ""


@dataclass(slots=True)
class Highlighted(Payload):
    KIND: ClassVar[str] = Kind.HIGHLIGHTED
    event_id: int = 0
    reason: str = ""


@dataclass(slots=True)
class ConsoleClosed(Payload):
    KIND: ClassVar[str] = Kind.CONSOLE_CLOSED
    user: str = ""
    host: str = ""
    pid: int = 0
    how: str = "quit"  # quit | lease-lost


@dataclass(slots=True)
class RollbackWatchStarted(Payload):
    """After VERIFIED, the live version is read on every poll for ``watch_s``."""

    KIND: ClassVar[str] = Kind.ROLLBACK_WATCH_STARTED
    target: str = ""
    watch_s: float = 0.0


@dataclass(slots=True)
class RollbackReverted(Payload):
    """The live version moved away from the target after VERIFIED (the rollback was undone)."""

    KIND: ClassVar[str] = Kind.ROLLBACK_REVERTED
    target: str = ""
    live: str = ""


@dataclass(slots=True)
class RollbackRestored(Payload):
    KIND: ClassVar[str] = Kind.ROLLBACK_RESTORED
    target: str = ""
    live: str = ""


@dataclass(slots=True)
class RollbackWatchEnded(Payload):
    KIND: ClassVar[str] = Kind.ROLLBACK_WATCH_ENDED
    target: str = ""
    watched_s: float = 0.0


@dataclass(slots=True)
class Escalated(Payload):
    """A sustained breach warroom may not act on by itself again: the commander decides."""

    KIND: ClassVar[str] = Kind.ESCALATED
    name: str = ""
    breaches: int = 0
    reason: str = ""


@dataclass(slots=True)
class FlaggerGateOpened(Payload):
    KIND: ClassVar[str] = Kind.FLAGGER_GATE_OPENED
    gate: str = ""
    canary: str = ""
    checksum: str = ""
    once: bool = False
    reason: str = ""


@dataclass(slots=True)
class FlaggerGateClosed(Payload):
    KIND: ClassVar[str] = Kind.FLAGGER_GATE_CLOSED
    gate: str = ""
    canary: str = ""
    checksum: str = ""
    reason: str = ""


@dataclass(slots=True)
class FlaggerGateAsked(Payload):
    KIND: ClassVar[str] = Kind.FLAGGER_GATE_ASKED
    gate: str = ""
    canary: str = ""
    checksum: str = ""
    phase: str = ""
    answer: str = ""
    detail: str = ""


@dataclass(slots=True)
class StatusPagePosted(Payload):
    KIND: ClassVar[str] = Kind.STATUSPAGE_POSTED
    action: str = ""
    name: str = ""
    status: str = ""
    components: dict[str, str] = field(default_factory=dict)
    body: str = ""
    page_incident: str = ""
    shortlink: str = ""
    detail: str | None = None


@dataclass(slots=True)
class StatusPageFailed(Payload):
    KIND: ClassVar[str] = Kind.STATUSPAGE_FAILED
    action: str = ""
    name: str = ""
    status: str = ""
    components: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""


@dataclass(slots=True)
class Unknown(Payload):
    """A kind this code does not know (a newer warroom wrote it): kept, counted, shown raw."""

    raw: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        return dict(self.raw)


PAYLOAD_TYPES: tuple[type[Payload], ...] = (
    Declared, RateWarning, Approved, Waived, TargetChanged, Note, ConsoleOpened, Handover,
    ChecklistAcked, PreflightRequested, PreflightPassed, PreflightFailed, WeightRequested,
    WeightSet, WeightFailed, GuardrailChanged, GuardrailAction, RollbackRequested,
    RollbackStarted, RollbackProgress, RollbackCompleted, RollbackFailed, VerificationStarted,
    RollbackVerified, RollbackNotVerified, GateRecorded, Reconciled, Closed, Notified,
    NotifyFailed, ChainBroken, Paused, Resumed, Milestone, RoleAssigned, Highlighted,
    ConsoleClosed, RollbackWatchStarted, RollbackReverted, RollbackRestored, RollbackWatchEnded,
    Escalated, FlaggerGateOpened, FlaggerGateClosed, FlaggerGateAsked, StatusPagePosted,
    StatusPageFailed,
)
BY_KIND: dict[str, type[Payload]] = {cls.KIND: cls for cls in PAYLOAD_TYPES}


def read(event: Event) -> Payload:
    """The typed payload of a stored event (never raises; see the module docstring)."""
    payload = event.payload
    reader = _READERS.get(event.kind)
    if reader is None:
        cls = BY_KIND.get(event.kind)
        if cls is not None:  # compiled on first use: a command pays only for what it reads
            reader = _READERS[event.kind] = _reader(cls)
    if reader is None or not isinstance(payload, dict):
        return Unknown(dict(payload) if isinstance(payload, dict) else {})
    return reader(payload)


P = TypeVar("P", bound=Payload)


def read_as(event: Event, cls: type[P]) -> P:
    """The payload of ``event`` as ``cls`` (an event of another kind reads as ``cls``'s defaults
    plus whatever fields the two share: for code that has already checked the kind)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    return _reader(cls)(payload)  # type: ignore[return-value]


def from_payload(cls: type[P], payload: Mapping[str, Any]) -> P:
    """A payload dict (from JSON, a test, an older writer) as ``cls``, tolerantly."""
    return _reader(cls)(payload)  # type: ignore[return-value]


# --- conversion, compiled once per class ---------------------------------------------------------


def _str(value: Any, default: str) -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


def _opt_str(value: Any, default: None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any, default: int) -> int:
    if type(value) is int:
        return value
    try:
        return int(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError, OverflowError):
        return default


def _opt_int(value: Any, default: None) -> int | None:
    return None if value is None else _int(value, 0)


def _float(value: Any, default: float) -> float:
    if type(value) is float:
        return value
    try:
        number = float(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError, OverflowError):
        return default
    return number if math.isfinite(number) else default


def _bool(value: Any, default: bool) -> bool:
    return default if value is None else bool(value)


def _figure(value: Any, default: None) -> Figure:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _str_list(value: Any, default: list[str]) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item if isinstance(item, str) else str(item) for item in value]


def _records(cls: type[Any], value: Any, *, from_str: str | None = None) -> list[Any]:
    if not isinstance(value, list):
        return []
    reader = _reader(cls)
    out = []
    for item in value:
        if isinstance(item, dict):
            out.append(reader(item))
        elif from_str is not None and isinstance(item, str):
            out.append(cls(**{from_str: item}))  # an older writer recorded names only
    return out


_NESTED: dict[Any, Callable[[Any, Any], Any]] = {
    list[Bypass]: lambda v, d: _records(Bypass, v),
    list[PlanStage]: lambda v, d: _records(PlanStage, v),
    list[DeclaredGuardrail]: lambda v, d: _records(DeclaredGuardrail, v, from_str="name"),
    list[Check]: lambda v, d: _records(Check, v),
    list[OverrideRecord] | None: lambda v, d: None if v is None else _records(OverrideRecord, v),
    list[Link] | None: lambda v, d: None if v is None else _records(Link, v),
}
_SCALARS: dict[Any, Callable[[Any, Any], Any]] = {
    bool | None: lambda v, d: None if v is None else bool(v),
    str: _str,
    str | None: _opt_str,
    int: _int,
    int | None: _opt_int,
    float: _float,
    float | None: lambda v, d: None if v is None else _float(v, 0.0),
    bool: _bool,
    bool | None: lambda v, d: None if v is None else bool(v),
    Figure: _figure,
    list[str]: _str_list,
    list[str] | None: lambda v, d: None if v is None else _str_list(v, []),
    dict[str, Any]: lambda v, d: dict(v) if isinstance(v, dict) else {},
    dict[str, str] | None: lambda v, d: (
        {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else None),
    dict[str, str]: lambda v, d: (
        {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else {}),
    dict[str, list[Figure]] | None: lambda v, d: (
        {str(k): [_figure(x, None) for x in (xs if isinstance(xs, list) else [])]
         for k, xs in v.items()} if isinstance(v, dict) else None),
}

_READERS_BY_CLASS: dict[type[Any], Callable[[Mapping[str, Any]], Any]] = {}
_WRITERS_BY_CLASS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {}


def _reader(cls: type[Any]) -> Callable[[Mapping[str, Any]], Any]:
    reader = _READERS_BY_CLASS.get(cls)
    if reader is not None:
        return reader
    hints = get_type_hints(cls)
    names: dict[str, Any] = {"cls": cls}
    args = []
    for index, item in enumerate(fields(cls)):
        hint = hints[item.name]
        convert = _SCALARS.get(hint) or _NESTED.get(hint)
        if convert is None:
            raise TypeError(f"{cls.__name__}.{item.name}: no reader for {hint!r}")
        default = item.default if item.default is not MISSING else None
        names[f"c{index}"] = convert
        names[f"d{index}"] = default
        args.append(f"c{index}(get({item.name!r}), d{index})")
    source = f"def read(raw):\n    get = raw.get\n    return cls({', '.join(args)})\n"
    exec(source, names)  # one compiled call per field: reading is on every fold's path
    reader = names["read"]
    _READERS_BY_CLASS[cls] = reader
    return reader  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):  # a field left at None is not written
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)
                if getattr(value, item.name) is not None}
    return value


def _writer(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    writer = _WRITERS_BY_CLASS.get(cls)
    if writer is not None:
        return writer
    names = [item.name for item in fields(cls)]

    def write(record: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            value = getattr(record, name)
            if value is not None:
                out[name] = _plain(value)
        return out

    _WRITERS_BY_CLASS[cls] = write
    return write


_READERS: dict[str, Callable[[Mapping[str, Any]], Payload]] = {}

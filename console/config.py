"""The configuration: strict pydantic models loaded from TOML, with the seeds' defaults.

Where the file comes from, in order: ``--config FILE``, ``$WARROOM_CONFIG``, ``./warroom.toml``,
then ``warroom.toml`` in the user config dir. With none of them, the defaults below apply (the
simulator for metrics, traffic and deploy). Unknown keys are refused. A bad file raises
:class:`ConfigError`, whose one line names the file and the key. Secrets are never in the file:
settings name the environment variables that hold them.
"""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from adapters.settings import (
    DEPLOY_ACTIONS,
    TRAFFIC_ACTIONS,
    ArgoRolloutsSettings,
    CommandSettings,
    DeploySettings,
    HttpSettings,
    KeyedError,
    MetricsSettings,
    PrometheusSettings,
    SecretFromEnv,
    SimDeploySettings,
    SimMetricsSettings,
    Strict,
    check_actions,
    quote_key,
)
from console import paths
from console.model import BYPASS_ELEMENTS, CATEGORIES, PRIORITIES, Category, Priority

ROLE_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
#: Deepest nesting of tables and arrays a config may have; no setting needs more than a handful.
MAX_DEPTH = 16
#: The placeholders a guardrail query may use ($name or ${name}).
GUARDRAIL_PLACEHOLDERS = ("service", "track")
_DOLLAR_NAME = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _printable(text: str, limit: int = 300) -> str:
    """One line: control characters shown as escapes, so an error can never span two lines."""
    text = _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConfigError(Exception):
    """A configuration file could not be used; ``str()`` is one line naming the file and key."""

    def __init__(self, path: Path | None, key: str, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = _printable(str(path), 500) if path is not None else "<defaults>"
        key, message = _printable(key, 200), _printable(message)
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class StoreSettings(Strict):
    """Where the incident database lives and who may write it."""

    path: str | None = Field(
        default=None,
        description="Database file. Default: $WARROOM_DB, else warroom.db in the user data dir.",
    )
    group: str | None = Field(
        default=None,
        description="OS group of the war room: the file is then created 0660 for that group, so "
        "approvers in other accounts can write. Without it the file is 0600.",
    )
    url: str | None = Field(
        default=None,
        description="A PostgreSQL database instead of the SQLite file: postgresql://USER@HOST/DB "
        "(libpq's URL; sslmode, sslcert, sslkey, service and the like as query parameters). "
        "Never a password: it comes from password_env, PGPASSWORD, the libpq password file or a "
        "service file. README, 'PostgreSQL store'.",
    )
    password_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the PostgreSQL password (else "
        "libpq's own PGPASSWORD, password file or service file applies).",
    )
    chain_key_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the chain key: incidents declared with it "
        "are keyed (every hash an HMAC-SHA256), so someone who can write the file but lacks the "
        "key cannot rewrite the record and re-hash it. Appending and verifying need the key.",
    )

    @model_validator(mode="after")
    def _one_store(self) -> StoreSettings:
        if self.url is None:
            if self.password_env is not None:
                raise ValueError("password_env goes with url (a PostgreSQL store)")
            return self
        if self.path is not None:
            raise ValueError("give path (an SQLite file) or url (PostgreSQL), not both")
        if not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError("url must start with postgresql:// (the SQLite file is path)")
        problem = postgres_url_problem(self.url)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def location(self) -> str | None:
        """The configured store: the URL, the path, or None for the default file."""
        return self.url or self.path


def postgres_url_problem(url: str) -> str | None:
    """Why a PostgreSQL URL may not be used, or None: it must not carry a secret."""
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        has_password = parts.password is not None
    except ValueError as error:
        return f"url is not a valid URL: {error}"
    if has_password or any(key in query for key in ("password", "sslpassword")):
        return ("url carries a password: secrets never go in the config file; set "
                "password_env, or use PGPASSWORD, the libpq password file or a service file")
    return None


class ApprovalRuleSettings(Strict):
    """Choices in the approval rules that must be made explicitly (never by default)."""

    relayed_without_roster: list[str] = Field(
        default_factory=list,
        description="Roles with no [roster] entry that still accept a relayed approval (the "
        "commander's word on who gave it cannot be checked against a roster). Default: none.",
    )


class PrioritySettings(Strict):
    """Deploy-time target of each priority, counted from declaration (seed 001)."""

    P0: float = Field(default=2.0, gt=0, description="Hours to deploy a P0 fix (security).")
    P1: float = Field(default=4.0, gt=0, description="Hours to deploy a P1 fix (production down).")
    P2: float = Field(default=24.0, gt=0, description="Hours to deploy a P2 fix (major bug).")
    P3: float = Field(
        default=48.0, gt=0, description="Hours to deploy a P3 fix (business critical)."
    )

    def hours(self, priority: Priority) -> float:
        return float(getattr(self, priority))


class BypassDefault(Strict):
    """What bypassing one discipline element means (seed 000's bypass-scope table)."""

    justification: str = Field(description="The kind of reason that justifies the bypass.")
    compensation: str = Field(description="The default compensation recorded with the bypass.")
    post_gate: str = Field(description="What must be run or confirmed after the emergency ships.")


def _default_bypasses() -> dict[str, BypassDefault]:
    return {
        "eval-gate": BypassDefault(
            justification="Speed required; eval would slow",
            compensation="Skip with documented reason; run eval after promotion; "
            "rollback if regression",
            post_gate="Run the skipped eval against the promoted version",
        ),
        "canary": BypassDefault(
            justification="Harm is ongoing; canary speed cannot match",
            compensation="Compress canary (faster steps) or skip; intensive monitoring at 100%",
            post_gate="Watch every metric at 100% for 15-30 minutes",
        ),
        "change-window": BypassDefault(
            justification="Time-of-day necessity",
            compensation="Document the bypass; ensure on-call coverage",
            post_gate="Confirm on-call coverage through the next business day",
        ),
        "freeze": BypassDefault(
            justification="Cannot wait for freeze end",
            compensation="Document the bypass; senior approval",
            post_gate="Record the senior approval with the freeze owner",
        ),
        "multi-change": BypassDefault(
            justification="Single change is the fix",
            compensation="Standard sequence",
            post_gate="Resume the standard multi-change sequence",
        ),
    }


class StageSettings(Strict):
    """One canary stage: the weight it sets and how long it must hold before advancing."""

    percent: int = Field(ge=1, le=100, description="Canary weight of this stage, in percent.")
    hold_s: float = Field(default=0, ge=0, description="Minimum hold at this stage, in seconds.")


class PlanSettings(Strict):
    """A canary plan: stages in rising order, the last at 100%."""

    stages: list[StageSettings] = Field(min_length=1, description="The stages, in order.")

    @model_validator(mode="after")
    def _rising_to_100(self) -> PlanSettings:
        percents = [stage.percent for stage in self.stages]
        for index, (a, b) in enumerate(itertools.pairwise(percents), 1):
            if b <= a:
                raise KeyedError(f"stages[{index}].percent",
                                 f"stage percents must rise, got {percents}")
        if percents[-1] != 100:
            raise KeyedError(f"stages[{len(percents) - 1}].percent",
                             f"the last stage must be 100%, got {percents[-1]}%")
        return self


def _compressed_plan() -> PlanSettings:
    minute = 60.0
    return PlanSettings(
        stages=[
            StageSettings(percent=1, hold_s=5 * minute),
            StageSettings(percent=10, hold_s=10 * minute),
            StageSettings(percent=50, hold_s=10 * minute),
            StageSettings(percent=100, hold_s=0),
        ]
    )


class CanarySettings(Strict):
    """Canary plans; the emergency default is seed 000's compressed 1 → 10 → 50 → 100."""

    default_plan: str = Field(default="compressed", description="Plan used by `declare`.")
    plans: dict[str, PlanSettings] = Field(
        default_factory=lambda: {"compressed": _compressed_plan()},
        description="Plans by name.",
    )

    @model_validator(mode="after")
    def _default_exists(self) -> CanarySettings:
        if self.default_plan not in self.plans:
            raise KeyedError("default_plan", f"{self.default_plan!r} is not in plans")
        return self


class MannWhitneySettings(Strict):
    """Compare the canary's samples of the stage with the baseline's (Mann-Whitney U, one-sided:
    is the canary higher?), as Kayenta does. Shown with its p-value and sample counts; it gates
    only with ``gate = true``."""

    gate: bool = Field(
        default=False,
        description="true: a canary significantly higher than the baseline is a breach, and too "
        "few samples is insufficient evidence. false: shown, never judged by.",
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=1,
        description="Significance level: p below this says the canary is higher.",
    )
    min_samples: int = Field(
        default=8, ge=3, le=10_000,
        description="Samples of each track needed in the stage before the test says anything.",
    )


class GuardrailSettings(Strict):
    """A metric the canary must keep within limits, queried for the canary and baseline tracks."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,47}$", description="Shown name.")
    query: str = Field(
        description="PromQL; $service and $track (canary | baseline) are filled in."
    )
    unit: str = Field(default="", description="Unit shown with values: '%', 's', 'req/s'...")
    scale: float = Field(
        default=1.0, description="Multiplier for display (e.g. 100 to show a ratio as %)."
    )
    max: float | None = Field(default=None, description="Breach when the canary exceeds this.")
    max_ratio_to_baseline: float | None = Field(
        default=None, gt=0, description="Breach when canary / baseline exceeds this."
    )
    evidence_query: str | None = Field(
        default=None,
        description="PromQL giving the requests (or samples) behind the value, for the track.",
    )
    min_evidence: float = Field(
        default=0, ge=0, description="Below this evidence the result is 'insufficient evidence'."
    )
    consecutive: int = Field(
        default=3, ge=1, le=100, description="Breaching evaluations in a row before acting."
    )
    on_breach: Literal["alert", "hold", "rollback"] = Field(
        default="hold", description="What a sustained breach does."
    )
    warn: float | None = Field(
        default=None, gt=0, lt=1,
        description="A band below the limit: a canary above this fraction of its effective "
        "limit is WARN, which holds advance until the commander decides with a typed reason "
        "(0.8: from 80 % of the limit). Unset: no band.",
    )
    on_no_data: Literal["cant_evaluate", "hold", "breach"] = Field(
        default="cant_evaluate",
        description="When the canary's query (or its evidence query) answers with nothing or "
        "NaN: cant_evaluate blocks advance until data returns; hold pauses the canary until "
        "the commander resumes it; breach counts as a breach.",
    )
    shadow: bool = Field(
        default=False,
        description="Evaluated, graphed and recorded, but never gates: no block, no action "
        "(for a new metric).",
    )
    initial_delay_s: float = Field(
        default=0.0, ge=0, le=86_400,
        description="After each stage change, the guardrail is not judged for this long "
        "(the metric windows still hold the previous stage); advance waits for it.",
    )
    mann_whitney: MannWhitneySettings | None = Field(
        default=None, description="Optional statistical comparison of canary and baseline.",
    )

    @field_validator("query", "evidence_query")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        for match in _DOLLAR_NAME.finditer(value or ""):
            name = match.group(1) if match.group(1) is not None else match.group(2)
            if name not in GUARDRAIL_PLACEHOLDERS:
                known = ", ".join("$" + n for n in GUARDRAIL_PLACEHOLDERS)
                raise ValueError(f"unknown placeholder {match.group()!r} (known: {known})")
        return value

    @model_validator(mode="after")
    def _has_limit(self) -> GuardrailSettings:
        if self.max is None and self.max_ratio_to_baseline is None:
            raise KeyedError("max", "give max, max_ratio_to_baseline, or both")
        if "$track" not in self.query and "${track}" not in self.query:
            raise KeyedError("query",
                             "must use $track so canary and baseline can be compared")
        return self


class MonitoringSettings(Strict):
    """How often guardrails are evaluated and how much history the graphs show."""

    poll_interval_s: float = Field(default=5.0, gt=0, le=300, description="Seconds between polls.")
    graph_window_s: float = Field(default=900.0, gt=0, description="Seconds of history graphed.")
    clock_skew_s: float = Field(
        default=30.0, ge=0, le=3600,
        description="A sample stamped further than this in the future is not trusted (a clock "
        "is wrong): the guardrail can't evaluate.",
    )


class RollbackSettings(Strict):
    """Rollback readiness (seed 002) and what counts as a verified rollback."""

    verification_hold_s: float = Field(
        default=60.0, ge=0,
        description="Guardrails must stay healthy this long after the target is live.",
    )
    verify_timeout_s: float = Field(
        default=600.0, gt=0,
        description="Give up waiting for the deployer to report the target after this long.",
    )
    watch_s: float = Field(
        default=1800.0, ge=0, le=7 * 24 * 3600,
        description="After VERIFIED, keep reading the live version on every poll this long: if "
        "it moves away from the target (a GitOps sync, an auto-promotion), the console alarms, "
        "records it and notifies. 0: no watch.",
    )
    compatibility_checklist: list[str] = Field(
        default_factory=lambda: [
            "Migrations are backward compatible (they only add; existing data unchanged)",
            "No down-migrations are needed to go back",
            "Contracts with other services are backward compatible",
            "The front-end tolerates the older backend",
            "Async events are replayable (consumers tolerate repetition)",
            "Written rollback steps exist that anyone on call could follow",
        ],
        description="Acknowledged at preflight, before the first stage.",
    )


class ScenarioSettings(Strict):
    """Mission-critical scenarios (seed 002): when one is affected, prefer rollback."""

    mission_critical: list[str] = Field(
        default_factory=list, description="Names accepted by `declare --affects`."
    )


class EmergencyRateSettings(Strict):
    """Seed 000, Q3: frequent 'emergencies' mean the bar is too low."""

    max_per_30_days: int = Field(
        default=1, ge=0,
        description="Warn at declaration when more emergencies than this were declared in 30 days.",
    )


class NotifySettings(Strict):
    """A chat webhook told about breaches, rollbacks and their verdicts (optional)."""

    webhook_url_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding a chat webhook URL (a service's own webhook "
                    "URL goes through apprise in that service's shape; any other gets "
                    '{"text": ...}).',
    )
    urls_env: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(
        default_factory=list, max_length=20,
        description="Environment variables each holding an apprise URL (slack://, msteams://, "
                    "mmost://, discord://, mailto://, pagerduty://, ...): every target is told.",
    )
    timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Timeout of one connect and of one read."
    )
    deadline_s: float = Field(
        default=10.0, gt=0, le=120,
        description="Total deadline of one post: a webhook that trickles its answer is cut here.",
    )


class GateSettings(Strict):
    """``warroom gate``: Flagger's manual gates (confirm-rollout, confirm-traffic-increase,
    confirm-promotion, rollback) answered from the incident record (optional)."""

    listen: str = Field(
        default="127.0.0.1:8795", pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$",
        description="HOST:PORT the gate server listens on (127.0.0.1 by default: put a proxy "
                    "or a port-forward in front of it rather than listening on every address).",
    )
    canary: str = Field(
        default="{service}", min_length=1, max_length=253,
        pattern=r"^(\{service\}|[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$",
        description="The Flagger Canary's name ({service}: the incident's service).",
    )
    namespace: str = Field(
        min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="The Flagger Canary's namespace: a call for any other canary is refused.",
    )
    token_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding a token each webhook must carry as "
                    "metadata.token (the Canary's webhook metadata); unset: no token asked.",
    )

    @field_validator("listen")
    @classmethod
    def _port(cls, value: str) -> str:
        port = int(value.rsplit(":", 1)[1])
        if not 0 <= port <= 65535:  # 0: any free port (printed when the gate starts)
            raise ValueError(f"port {port} is not between 0 and 65535")
        return value

    def canary_name(self, service: str) -> str:
        """``name.namespace`` of the Canary this incident's gate answers for."""
        name = service if self.canary == "{service}" else self.canary
        return f"{name}.{self.namespace}"


class StatuspageSettings(Strict):
    """A status page (Atlassian Statuspage's API): the commander posts the comms draft's status
    page update from the console (``s``), after seeing the exact text."""

    page_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                         description="The page's id (Statuspage: Your page → API info).")
    api_key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                             description="Environment variable holding the API key.")
    api_url: str = Field(default="https://api.statuspage.io", pattern=r"^https?://[^\s]+$",
                         description="The API's base URL (a proxy, or a stand-in for drills).")
    components: dict[str, str] = Field(
        default_factory=dict,
        description="Service → the page's component id whose status follows the incident.")
    deliver_notifications: bool = Field(
        default=True, description="Let the page notify its subscribers of each update.")
    ca_file: str | None = Field(default=None, description="A private CA for the API's TLS.")
    timeout_s: float = Field(default=5.0, gt=0, le=60,
                             description="Timeout of one connect and of one read.")
    deadline_s: float = Field(default=15.0, gt=0, le=120,
                              description="Total deadline of one post.")


class ConsoleSettings(Strict):
    """Where this console runs, always on screen: the header carries the environment's name in
    its colour, so nobody mistakes production for staging at 22:00."""

    environment: str = Field(
        default="", max_length=24, pattern=r"^[A-Za-z0-9 ._-]*$",
        description="The environment's name in the header (e.g. production, staging); "
                    "empty: not shown.",
    )
    colour: Literal["auto", "red", "amber", "green", "blue", "none"] = Field(
        default="auto",
        description="The environment badge's colour; auto: red when the name says prod, "
                    "else none.",
    )

    def badge_colour(self) -> str:
        """The colour the header draws the environment in (``none``: no colour)."""
        if self.colour != "auto":
            return self.colour
        return "red" if "prod" in self.environment.lower() else "none"


class ServeSettings(Strict):
    """`warroom serve ID`: the read-only console for browsers (README, "Browser watchers")."""

    host: str = Field(
        default="127.0.0.1", min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$",
        description="Address the server listens on. Keep the loopback default and put the "
                    "team's reverse proxy (TLS, single sign-on) in front; --host overrides.",
    )
    port: int = Field(
        default=8000, ge=0, le=65535,
        description="TCP port (0: any free port, printed at start); --port overrides.",
    )
    public_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s?#]+$",
        description="The base URL browsers use, through the reverse proxy (e.g. "
                    "https://ops.example.com/warroom): only the printed link changes.",
    )
    max_watchers: int = Field(
        default=20, ge=1, le=500,
        description="Browser sessions at once (each is a `warroom watch` process); more are "
                    "refused with 503.",
    )

    def is_loopback(self, host: str | None = None) -> bool:
        """True when ``host`` (default: this section's) accepts connections from this machine
        only."""
        import ipaddress

        name = host or self.host
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


def _default_update_minutes() -> dict[Priority, int]:
    return {"P0": 30, "P1": 60, "P2": 240, "P3": 1440}


class ExportSettings(Strict):
    """How the PIR and the communication drafts speak to people outside the war room."""

    local_timezone: str = Field(
        default="",
        description="An IANA time zone (e.g. Asia/Kolkata) shown beside UTC in the PIR and the "
                    "drafts; empty: UTC only.",
    )
    customer_names: dict[str, str] = Field(
        default_factory=dict,
        description="Service → the name customers know it by, used by the status page and the "
                    "customer email (an internal service name is never shown there; a service "
                    "missing here is left as a [bracketed] blank).",
    )
    update_every_minutes: dict[Priority, int] = Field(
        default_factory=_default_update_minutes,
        description="How soon the next public update is promised, by priority (minutes).",
    )

    @field_validator("local_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise KeyedError("local_timezone",
                                 f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)"
                                 ) from None
        return value

    @field_validator("update_every_minutes")
    @classmethod
    def _minutes(cls, value: dict[Priority, int]) -> dict[Priority, int]:
        for priority, minutes in value.items():
            if not 5 <= minutes <= 7 * 24 * 60:
                raise KeyedError(priority, "between 5 minutes and 7 days")
        return {**_default_update_minutes(), **value}


def _default_approval_path() -> dict[Category, list[str]]:
    return {
        "security": ["security-lead", "platform-lead"],
        "regulatory": ["platform-lead", "executive"],
        "incident": ["senior-engineer", "platform-lead"],
        "customer-blocking": ["senior-engineer", "executive"],
    }


class Config(Strict):
    """Everything warroom can be told; every field has the seeds' default."""

    _source: Path | None = PrivateAttr(default=None)

    store: StoreSettings = Field(default_factory=StoreSettings)
    roster: dict[str, list[str]] = Field(
        default_factory=dict, description="Role → OS user names allowed to approve as that role."
    )
    approvals: dict[Category, list[str]] = Field(
        default_factory=_default_approval_path,
        description="Roles whose approval each category requires.",
    )
    approval_rules: ApprovalRuleSettings = Field(default_factory=ApprovalRuleSettings)
    priorities: PrioritySettings = Field(default_factory=PrioritySettings)
    bypass: dict[str, BypassDefault] = Field(default_factory=_default_bypasses)
    canary: CanarySettings = Field(default_factory=CanarySettings)
    guardrails: list[GuardrailSettings] = Field(default_factory=list)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    rollback: RollbackSettings = Field(default_factory=RollbackSettings)
    scenarios: ScenarioSettings = Field(default_factory=ScenarioSettings)
    emergency_rate: EmergencyRateSettings = Field(default_factory=EmergencyRateSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    gate: GateSettings | None = Field(
        default=None, description="Flagger's manual gates kept in the record (`warroom gate`).")
    statuspage: StatuspageSettings | None = Field(
        default=None, description="A status page the commander posts to from the console.")
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    metrics: MetricsSettings = Field(default_factory=SimMetricsSettings)
    traffic: DeploySettings = Field(default_factory=SimDeploySettings)
    deploy: DeploySettings = Field(default_factory=SimDeploySettings)

    @field_validator("roster")
    @classmethod
    def _roster(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, users in value.items():
            if not re.match(ROLE_PATTERN, role):
                raise KeyedError(quote_key(role),
                                 "a role must be lower-case letters, digits and dashes")
            for index, user in enumerate(users):
                if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", user):
                    raise KeyedError(f"{role}[{index}]", f"{user!r} is not an OS user name")
        return value

    @field_validator("approvals")
    @classmethod
    def _approvals(cls, value: dict[Category, list[str]]) -> dict[Category, list[str]]:
        for category, roles in value.items():
            for index, role in enumerate(roles):
                if not re.match(ROLE_PATTERN, role):
                    raise KeyedError(f"{category}[{index}]", f"{role!r} is not a role name")
        return {**_default_approval_path(), **value}

    @field_validator("bypass")
    @classmethod
    def _bypass(cls, value: dict[str, BypassDefault]) -> dict[str, BypassDefault]:
        unknown = sorted(set(value) - set(BYPASS_ELEMENTS))
        if unknown:
            raise KeyedError(
                quote_key(unknown[0]),
                f"unknown element {unknown[0]!r} (known: {', '.join(BYPASS_ELEMENTS)})",
            )
        return {**_default_bypasses(), **value}

    @field_validator("guardrails")
    @classmethod
    def _unique_guardrails(cls, value: list[GuardrailSettings]) -> list[GuardrailSettings]:
        names = [g.name for g in value]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise KeyedError(f"[{index}].name", f"guardrail name {name!r} is used twice")
        return value

    @model_validator(mode="after")
    def _actions(self) -> Config:
        for section, allowed, required in (
            ("traffic", TRAFFIC_ACTIONS, TRAFFIC_ACTIONS),
            ("deploy", DEPLOY_ACTIONS, ("current_version", "rollback")),
        ):
            try:
                check_actions(getattr(self, section), allowed, required)
            except KeyedError as error:
                raise KeyedError(f"{section}.{error.key}", str(error)) from None
        return self

    @model_validator(mode="after")
    def _relayed_without_roster(self) -> Config:
        used = {role for roles in self.approvals.values() for role in roles}
        for index, role in enumerate(self.approval_rules.relayed_without_roster):
            key = f"approval_rules.relayed_without_roster[{index}]"
            if role not in used:
                raise KeyedError(key, f"no category in [approvals] requires {role!r}")
            if self.roster.get(role):
                raise KeyedError(key, f"{role} has a roster: a relayed approval for it must name "
                                      "a rostered person; remove it here")
        return self

    @model_validator(mode="after")
    def _roster_look_alikes(self) -> Config:
        # Two spellings of one person on a roster would be one person counted as two.
        from console.identity import person

        for role, users in self.roster.items():
            seen: dict[str, str] = {}
            for index, user in enumerate(users):
                other = seen.setdefault(person(user), user)
                if other != user:
                    raise KeyedError(f"roster.{role}[{index}]",
                                     f"{user!r} and {other!r} are the same person")
        return self

    @model_validator(mode="after")
    def _roster_roles_are_used(self) -> Config:
        # a roster role no category requires is a typo ("securty-lead"): its people could never
        # approve anything, and nobody would notice until 22:00
        used = {role for roles in self.approvals.values() for role in roles}
        for role in self.roster:
            if role not in used:
                raise KeyedError(
                    f"roster.{role}",
                    f"no category in [approvals] requires this role (required roles: "
                    f"{', '.join(sorted(used)) or 'none'})",
                )
        return self

    @model_validator(mode="after")
    def _no_silent_simulator(self) -> Config:
        # A real deploy system judged on simulated metrics (or real metrics while the canary is
        # only simulated) is the worst kind of silent: the console would look right and be wrong.
        # A section left out is the simulator; with any real section, each must be explicit.
        real = [name for name in ("metrics", "traffic", "deploy")
                if getattr(self, name).kind != "sim"]
        if not real:
            return self
        for name in ("metrics", "traffic", "deploy"):
            if name not in self.model_fields_set:
                kinds = ", ".join(f"[{r}] is {getattr(self, r).kind}" for r in real)
                raise KeyedError(
                    name,
                    f"not configured, so it would be the simulator while {kinds}; configure it "
                    f"(kind = \"sim\" only for a drill)",
                )
        return self

    def required_roles(self, category: Category) -> list[str]:
        return list(self.approvals.get(category, []))

    @property
    def source(self) -> Path | None:
        """The file this config was loaded from (None: the built-in defaults)."""
        return self._source

    def simulated(self) -> list[str]:
        """Every adapter section that is the simulator (the header says SIM while any is)."""
        return [name for name in ("metrics", "traffic", "deploy")
                if getattr(self, name).kind == "sim"]

    def simulated_sections(self) -> list[str]:
        """The adapter sections that are the simulator while another one is real (a drill)."""
        kinds = {name: getattr(self, name).kind for name in ("metrics", "traffic", "deploy")}
        if all(kind == "sim" for kind in kinds.values()):
            return []
        return [name for name, kind in kinds.items() if kind == "sim"]


def config_candidates(explicit: str | os.PathLike[str] | None) -> list[Path]:
    """Where a config is looked for, in order."""
    if explicit:
        return [Path(explicit)]
    found: list[Path] = []
    env = os.environ.get("WARROOM_CONFIG")
    if env:
        return [Path(env)]
    found.append(Path.cwd() / "warroom.toml")
    found.append(paths.config_dir() / "warroom.toml")
    return found


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to use, or None to use the defaults. An explicit path must exist."""
    candidates = config_candidates(explicit)
    if explicit or os.environ.get("WARROOM_CONFIG"):
        return candidates[0]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


_TAGS = frozenset({"sim", "prometheus", "http", "command"})


_key_part = quote_key  # a key with dots, spaces or quotes is quoted, as TOML writes it


def _key_of(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in _TAGS and parts:
            continue  # discriminated-union tags, not keys the user wrote
        elif part.startswith(("function-", "union[")) or part in ("str", "SecretFromEnv",
                                                                  "[key]"):
            continue  # pydantic's names for union branches and dict keys, not keys either
        else:
            parts.append(("." if parts else "") + _key_part(str(part)))
    return "".join(parts)


def _join(key: str, sub: str) -> str:
    if not key:
        return sub
    return f"{key}{sub}" if sub.startswith("[") else f"{key}.{sub}"


def _deepest(raw: object, limit: int) -> str | None:
    """The key at which ``raw`` nests deeper than ``limit`` tables/arrays, if it does."""
    pending: list[tuple[object, tuple[int | str, ...]]] = [(raw, ())]
    while pending:
        node, location = pending.pop()
        if len(location) > limit:
            return _key_of(location)
        if isinstance(node, dict):
            pending.extend((child, (*location, str(key))) for key, child in node.items())
        elif isinstance(node, list):
            pending.extend((child, (*location, index)) for index, child in enumerate(node))
    return None


def _line_key(text: str, line_number: int) -> str:
    """The key (with its table) written on ``line_number`` of a TOML text, or ''."""
    lines = text.splitlines()
    if not 1 <= line_number <= len(lines):
        return ""
    table = ""
    for line in lines[:line_number - 1]:
        header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]", line)
        if header:
            table = header.group(1)
    line = lines[line_number - 1]
    header = re.match(r"^\s*\[\[?\s*([^\]#]*?)\s*(?:\]|#|$)", line)
    if header and header.group(1):
        return header.group(1)
    assignment = re.match(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=", line)
    if assignment:
        name = assignment.group(1).strip()
        return f"{table}.{name}" if table else name
    return ""


def _nesting_line(text: str) -> tuple[int, str]:
    """Where a TOML text nests deepest: (line number, the key being assigned there)."""
    depth = deepest = 0
    deepest_line = 1
    key = found_key = ""
    quote = ""
    for number, line in enumerate(text.splitlines(), 1):
        if not quote and depth == 0:
            assignment = re.match(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=", line)
            if assignment:
                key = assignment.group(1).strip()
        index = 0
        while index < len(line):
            char = line[index]
            if quote:
                if char == "\\" and quote in ('"', '"""'):
                    index += 2
                    continue
                if line.startswith(quote, index):
                    index += len(quote)
                    quote = ""
                    continue
            elif char == "#":
                break
            elif line.startswith(('"""', "'''"), index):
                quote = line[index:index + 3]
                index += 3
                continue
            elif char in "\"'":
                quote = char
            elif char in "[{":
                depth += 1
                if depth > deepest:
                    deepest, deepest_line, found_key = depth, number, key
            elif char in "]}":
                depth = max(0, depth - 1)
            index += 1
        if quote in ('"', "'"):
            quote = ""  # single-line strings end with their line
    return deepest_line, found_key


def _validation_error(error: ValidationError, path: Path | None) -> ConfigError:
    first = error.errors()[0]
    key = _key_of(tuple(first["loc"]))
    message = str(first["msg"]).removeprefix("Value error, ")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedError):
        key = _join(key, cause.key)
        message = str(cause)
    elif first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        key = _join(key, "kind")
        if first["type"] == "union_tag_not_found":
            message = "required key is missing"
        else:
            expected = (first.get("ctx") or {}).get("expected_tags", "")
            message = f"unknown kind {first['input'].get('kind')!r} (known: " \
                f"{str(expected).replace(chr(39), '')})"
    elif first["type"] == "finite_number":
        message = "must be a finite number (not nan or inf)"
    return ConfigError(path, key or "(top level)", message)


def parse_config(text: str, path: Path | None = None) -> Config:
    """Parse TOML text into a Config, or raise ConfigError naming the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        at = re.search(r"\(at line (\d+), column (\d+)\)", message)
        key = ""
        if at:
            line = int(at.group(1))
            key = _line_key(text, line) or f"line {line}"
        raise ConfigError(path, key, f"not valid TOML: {message}") from None
    except RecursionError:
        line, key = _nesting_line(text)
        raise ConfigError(path, key or f"line {line}",
                          f"nested too deeply (line {line}); at most {MAX_DEPTH} levels") from None
    too_deep = _deepest(raw, MAX_DEPTH)
    if too_deep is not None:
        raise ConfigError(path, too_deep, f"nested too deeply; at most {MAX_DEPTH} levels")
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        raise _validation_error(error, path) from None
    except RecursionError:  # pragma: no cover - the depth check above should make this impossible
        raise ConfigError(path, "", f"nested too deeply; at most {MAX_DEPTH} levels") from None
    config._source = path
    return config


def load_config(explicit: str | os.PathLike[str] | None = None) -> tuple[Config, Path | None]:
    """Find and load the config; returns it with the file it came from (None: defaults)."""
    path = find_config(explicit)
    if path is None:
        return Config(), None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file") from None
    except IsADirectoryError:
        raise ConfigError(path, "", "is a directory, not a config file") from None
    except OSError as error:
        raise ConfigError(path, "", f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(path, f"line {line}", "not UTF-8 text") from None
    return parse_config(text, path), path


# --- what only the running host can tell ------------------------------------------------------


def _secrets(config: Config) -> list[tuple[str, SecretFromEnv]]:
    """Every secret the config names, with its key."""
    found: list[tuple[str, SecretFromEnv]] = []
    metrics = config.metrics
    if isinstance(metrics, PrometheusSettings):
        for name in ("bearer_token", "basic_user", "basic_password"):
            secret = getattr(metrics, name)
            if secret is not None:
                found.append((f"metrics.{name}", secret))
    for section in ("traffic", "deploy"):
        settings: Any = getattr(config, section)
        if isinstance(settings, HttpSettings):
            found += [(f"{section}.headers.{_key_part(name)}", spec)
                      for name, spec in settings.headers.items()
                      if isinstance(spec, SecretFromEnv)]
        elif isinstance(settings, CommandSettings):
            found += [(f"{section}.env.{name}", spec) for name, spec in settings.env.items()
                      if isinstance(spec, SecretFromEnv)]
        elif isinstance(settings, ArgoRolloutsSettings) and settings.token is not None:
            found.append((f"{section}.token", settings.token))
    return found


def secret_values(config: Config) -> list[str]:
    """The values, in this environment, of every secret the config names (set ones only)."""
    names = [secret.env for _, secret in _secrets(config)]
    if config.notify.webhook_url_env:
        names.append(config.notify.webhook_url_env)
    names += config.notify.urls_env
    if config.store.password_env:
        names.append(config.store.password_env)
    if config.gate is not None and config.gate.token_env:
        names.append(config.gate.token_env)
    if config.statuspage is not None:
        names.append(config.statuspage.api_key_env)
    if config.store.chain_key_env:
        names.append(config.store.chain_key_env)
    return [value.strip() for name in names if (value := os.environ.get(name) or "").strip()]


def register_secrets(config: Config) -> None:
    """Make every configured secret known to the one scrub (:mod:`adapters.secrets`), so no
    piece of one reaches a screen, the record, a message or an export of this process; and
    the chain key (``[store] chain_key_env``) known to every store this process opens."""
    from adapters.secrets import register
    from console.store import use_chain_key

    register(secret_values(config))
    use_chain_key(chain_key(config))


def chain_key(config: Config) -> bytes | None:
    """The chain key in this environment (``[store] chain_key_env``), or None."""
    name = config.store.chain_key_env
    key = (os.environ.get(name) or "").strip() if name else ""
    return key.encode("utf-8") if key else None


def environment_problems(config: Config, *, store: bool = True) -> list[ConfigError]:
    """What this host lacks for the config to work: each one line naming the file and key.

    Unset (or empty) secret variables, a missing CA file, an unset webhook variable, and (with
    ``store``) a ``[store] group`` that is not a group here. ``warroom check-config`` reports
    them, and a commander's console refuses to open with any of them: a configured adapter that
    cannot authenticate must fail now, not at the first advance.
    """
    path = config.source
    problems: list[ConfigError] = []
    for key, secret in _secrets(config):
        if not (os.environ.get(secret.env) or "").strip():
            problems.append(ConfigError(
                path, key, f"environment variable {secret.env} is not set or empty (it holds a "
                           "secret)"))
    metrics = config.metrics
    if (isinstance(metrics, PrometheusSettings) and metrics.verify_tls and metrics.ca_file
            and not os.path.isfile(metrics.ca_file)):
        problems.append(ConfigError(path, "metrics.ca_file",
                                    f"no such file: {metrics.ca_file}"))
    for section in ("traffic", "deploy"):
        kube: Any = getattr(config, section)
        if isinstance(kube, ArgoRolloutsSettings):
            missing = False
            for key in ("ca_file", "kubeconfig"):
                named = getattr(kube, key)
                if named and not os.path.isfile(os.path.expanduser(named)):
                    missing = True
                    problems.append(ConfigError(path, f"{section}.{key}",
                                                f"no such file: {named}"))
            if not missing:
                # where the API server and the credentials come from (files and environment
                # only, no request): not in a pod and no kubeconfig must fail now, not at 22:00
                from adapters.base import DeployError
                from adapters.kube import resolve_target

                try:
                    resolve_target(kube)
                except DeployError as error:
                    problems.append(ConfigError(path, f"{section}.kind", str(error)))
    chain_key = config.store.chain_key_env
    if chain_key and len((os.environ.get(chain_key) or "").strip()) < 16:
        problems.append(ConfigError(path, "store.chain_key_env",
                                    f"environment variable {chain_key} is not set, or shorter "
                                    "than 16 characters (it holds the chain key)"))
    webhook = config.notify.webhook_url_env
    if webhook and not (os.environ.get(webhook) or "").strip():
        problems.append(ConfigError(path, "notify.webhook_url_env",
                                    f"environment variable {webhook} is not set or empty (it "
                                    "holds the chat webhook URL)"))
    for name in config.notify.urls_env:
        url = (os.environ.get(name) or "").strip()
        if not url:
            problems.append(ConfigError(path, "notify.urls_env",
                                        f"environment variable {name} is not set or empty (it "
                                        "holds an apprise URL)"))
            continue
        from adapters.chat import apprise_knows

        if not apprise_knows(url):
            problems.append(ConfigError(path, "notify.urls_env",
                                        f"${name} holds a URL apprise does not know (it takes "
                                        "slack://, msteams://, mmost://, discord://, mailto://, "
                                        "pagerduty://, json://, ...)"))
    page = config.statuspage
    if page is not None:
        if not (os.environ.get(page.api_key_env) or "").strip():
            problems.append(ConfigError(path, "statuspage.api_key_env",
                                        f"environment variable {page.api_key_env} is not set or "
                                        "empty (it holds the status page's API key)"))
        if page.ca_file and not os.path.isfile(page.ca_file):
            problems.append(ConfigError(path, "statuspage.ca_file",
                                        f"no such file: {page.ca_file}"))
    gate = config.gate
    if gate is not None and gate.token_env and not (os.environ.get(gate.token_env) or "").strip():
        problems.append(ConfigError(path, "gate.token_env",
                                    f"environment variable {gate.token_env} is not set or empty "
                                    "(it holds the token Flagger's webhooks carry)"))
    if store and config.store.group:
        import grp

        try:
            grp.getgrnam(config.store.group)
        except KeyError:
            problems.append(ConfigError(path, "store.group",
                                        f"{config.store.group!r} is not a group on this host"))
    return problems


__all__ = [
    "CATEGORIES",
    "PRIORITIES",
    "Config",
    "ConfigError",
    "GateSettings",
    "GuardrailSettings",
    "MannWhitneySettings",
    "PlanSettings",
    "StageSettings",
    "StatuspageSettings",
    "environment_problems",
    "load_config",
    "parse_config",
    "register_secrets",
    "secret_values",
]

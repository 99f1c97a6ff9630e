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
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from adapters.settings import (
    DEPLOY_ACTIONS,
    TRAFFIC_ACTIONS,
    DeploySettings,
    MetricsSettings,
    SimDeploySettings,
    SimMetricsSettings,
    Strict,
    check_actions,
)
from console import paths
from console.model import BYPASS_ELEMENTS, CATEGORIES, PRIORITIES, Category, Priority

ROLE_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"


class ConfigError(Exception):
    """A configuration file could not be used; ``str()`` is one line naming the file and key."""

    def __init__(self, path: Path | None, key: str, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = str(path) if path is not None else "<defaults>"
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
        if any(b <= a for a, b in itertools.pairwise(percents)):
            raise ValueError(f"stage percents must rise, got {percents}")
        if percents[-1] != 100:
            raise ValueError(f"the last stage must be 100%, got {percents[-1]}%")
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
            raise ValueError(f"default_plan {self.default_plan!r} is not in plans")
        return self


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

    @model_validator(mode="after")
    def _has_limit(self) -> GuardrailSettings:
        if self.max is None and self.max_ratio_to_baseline is None:
            raise ValueError("give max, max_ratio_to_baseline, or both")
        if "$track" not in self.query and "${track}" not in self.query:
            raise ValueError("query must use $track so canary and baseline can be compared")
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
        default=None, description="Environment variable holding a chat webhook URL."
    )
    timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Timeout of one connect and of one read."
    )
    deadline_s: float = Field(
        default=10.0, gt=0, le=120,
        description="Total deadline of one post: a webhook that trickles its answer is cut here.",
    )


def _default_approval_path() -> dict[Category, list[str]]:
    return {
        "security": ["security-lead", "platform-lead"],
        "regulatory": ["platform-lead", "executive"],
        "incident": ["senior-engineer", "platform-lead"],
        "customer-blocking": ["senior-engineer", "executive"],
    }


class Config(Strict):
    """Everything warroom can be told; every field has the seeds' default."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    roster: dict[str, list[str]] = Field(
        default_factory=dict, description="Role → OS user names allowed to approve as that role."
    )
    approvals: dict[Category, list[str]] = Field(
        default_factory=_default_approval_path,
        description="Roles whose approval each category requires.",
    )
    priorities: PrioritySettings = Field(default_factory=PrioritySettings)
    bypass: dict[str, BypassDefault] = Field(default_factory=_default_bypasses)
    canary: CanarySettings = Field(default_factory=CanarySettings)
    guardrails: list[GuardrailSettings] = Field(default_factory=list)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    rollback: RollbackSettings = Field(default_factory=RollbackSettings)
    scenarios: ScenarioSettings = Field(default_factory=ScenarioSettings)
    emergency_rate: EmergencyRateSettings = Field(default_factory=EmergencyRateSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    metrics: MetricsSettings = Field(default_factory=SimMetricsSettings)
    traffic: DeploySettings = Field(default_factory=SimDeploySettings)
    deploy: DeploySettings = Field(default_factory=SimDeploySettings)

    @field_validator("roster")
    @classmethod
    def _roster(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, users in value.items():
            if not re.match(ROLE_PATTERN, role):
                raise ValueError(f"role {role!r} must be lower-case letters, digits and dashes")
            for user in users:
                if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", user):
                    raise ValueError(f"{role}: {user!r} is not an OS user name")
        return value

    @field_validator("approvals")
    @classmethod
    def _approvals(cls, value: dict[Category, list[str]]) -> dict[Category, list[str]]:
        for category, roles in value.items():
            for role in roles:
                if not re.match(ROLE_PATTERN, role):
                    raise ValueError(f"{category}: role {role!r} is not a role name")
        return {**_default_approval_path(), **value}

    @field_validator("bypass")
    @classmethod
    def _bypass(cls, value: dict[str, BypassDefault]) -> dict[str, BypassDefault]:
        unknown = sorted(set(value) - set(BYPASS_ELEMENTS))
        if unknown:
            raise ValueError(
                f"unknown element {unknown[0]!r} (known: {', '.join(BYPASS_ELEMENTS)})"
            )
        return {**_default_bypasses(), **value}

    @field_validator("guardrails")
    @classmethod
    def _unique_guardrails(cls, value: list[GuardrailSettings]) -> list[GuardrailSettings]:
        names = [g.name for g in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"guardrail name {name!r} is used twice")
        return value

    @model_validator(mode="after")
    def _actions(self) -> Config:
        check_actions(self.traffic, TRAFFIC_ACTIONS, TRAFFIC_ACTIONS)
        check_actions(self.deploy, DEPLOY_ACTIONS, ("current_version", "rollback"))
        return self

    def required_roles(self, category: Category) -> list[str]:
        return list(self.approvals.get(category, []))


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


def _key_of(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in {"sim", "prometheus", "http", "command"} and parts:
            continue  # discriminated-union tags, not keys the user wrote
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def parse_config(text: str, path: Path | None = None) -> Config:
    """Parse TOML text into a Config, or raise ConfigError naming the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, "", f"not valid TOML: {error}") from None
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = _key_of(tuple(first["loc"]))
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key is missing"
        raise ConfigError(path, key, message) from None


def load_config(explicit: str | os.PathLike[str] | None = None) -> tuple[Config, Path | None]:
    """Find and load the config; returns it with the file it came from (None: defaults)."""
    path = find_config(explicit)
    if path is None:
        return Config(), None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file") from None
    except OSError as error:
        raise ConfigError(path, "", f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
    return parse_config(text, path), path


__all__ = [
    "CATEGORIES",
    "PRIORITIES",
    "Config",
    "ConfigError",
    "GuardrailSettings",
    "PlanSettings",
    "StageSettings",
    "load_config",
    "parse_config",
]

"""Settings of each adapter kind, as strict pydantic models.

They live with the adapters (not in ``console.config``) so an adapter can be built and tested
without the console; ``console.config`` embeds them under ``[metrics]``, ``[traffic]`` and
``[deploy]``.
This module imports only pydantic: loading a config never pays for httpx or prometheus-api-client.

Secrets are never in the file: a setting names the environment variable that holds the secret.
Templates use ``{name}`` placeholders drawn from a fixed set (see :data:`PLACEHOLDERS`); an unknown
placeholder is refused when the config is loaded, not at 22:00 when the action runs.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Names a template may use, and what they are filled with.
PLACEHOLDERS: dict[str, str] = {
    "service": "the incident's service",
    "target": "the version a rollback goes to (the stable version)",
    "version": "the version being shipped (the canary's)",
    "percent": "the canary weight being set, 0..100",
    "incident": "the incident id, e.g. INC-7",
    "base_url": "the adapter's base_url",
    "idempotency_key": "a key unique to this action (same on retries); for a rollback, the "
                       "console's key for it, the same after a restart",
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def template_names(template: str) -> set[str]:
    """The placeholder names a template uses."""
    return set(_PLACEHOLDER.findall(template))


def _check_template(template: str) -> str:
    unknown = template_names(template) - PLACEHOLDERS.keys()
    if unknown:
        names = ", ".join("{" + n + "}" for n in sorted(unknown))
        known = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
        raise ValueError(f"unknown placeholder {names} (known: {known})")
    return template


def fill_template(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders with ``values``; unknown or missing names raise KeyError."""

    def replace(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER.sub(replace, template)


class KeyedError(ValueError):
    """A refusal that names the key it is about, below the model that raised it.

    A model-level validator has no key of its own; ``console.config`` joins ``key`` to the
    model's place in the file, so the one-line error names the key a person must fix.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def quote_key(name: str) -> str:
    """A TOML key as it is written: bare when it can be, else in double quotes."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Strict(BaseModel):
    """Base of every settings model: unknown keys are refused, values are not coerced silently,
    and NaN or ±inf (which TOML allows) is no number of seconds or limit."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SecretFromEnv(Strict):
    """A secret read from an environment variable at the moment it is needed."""

    env: str = Field(description="Name of the environment variable that holds the secret.")
    format: str = Field(
        default="{}",
        description="How the secret is written into a header, e.g. 'Bearer {}'.",
    )

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"not an environment variable name: {value!r}")
        return value


# --- metrics -------------------------------------------------------------------------------------


class SimMetricsSettings(Strict):
    """The embedded simulator answers metric queries (the default, and `warroom demo`)."""

    kind: Literal["sim"] = "sim"
    scenario: Literal["good", "bad"] = Field(
        default="good", description="The simulated build: good behaves like baseline; bad errs."
    )
    seed: int = Field(default=7, description="Seed of the simulator's noise, for repeatable runs.")
    bad_from_percent: int = Field(
        default=1, ge=1, le=100,
        description="The bad build's defect shows from this canary weight on (under load).",
    )
    serve_port: int | None = Field(
        default=None,
        description="If set, also export the simulated service's metrics over HTTP on "
        "127.0.0.1:PORT (prometheus-client), for a real Prometheus to scrape.",
    )


class PrometheusSettings(Strict):
    """A real Prometheus server, queried through prometheus-api-client."""

    kind: Literal["prometheus"] = "prometheus"
    url: str = Field(description="Base URL of the Prometheus HTTP API, e.g. http://127.0.0.1:9090.")
    timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="Timeout of one connect and of one read."
    )
    deadline_s: float = Field(
        default=6.0, gt=0, le=120,
        description="Total deadline of one query, retries included: a server that trickles its "
        "answer is cut here ('no complete answer within N s').",
    )
    retries: int = Field(
        default=1, ge=0, le=5, description="Retries of a failed query (bounded, with backoff)."
    )
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate.")
    ca_file: str | None = Field(default=None, description="CA bundle to verify TLS with.")
    bearer_token: SecretFromEnv | None = Field(
        default=None, description="Bearer token, from an environment variable."
    )
    basic_user: SecretFromEnv | None = Field(
        default=None, description="Basic-auth user name, from an environment variable."
    )
    basic_password: SecretFromEnv | None = Field(
        default=None, description="Basic-auth password, from an environment variable."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        from urllib.parse import urlsplit

        try:
            port = urlsplit(value).port  # raises for a port that is not a number or > 65535
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError(f"not a usable port in {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth(self) -> PrometheusSettings:
        if (self.basic_user is None) != (self.basic_password is None):
            missing = "basic_password" if self.basic_password is None else "basic_user"
            raise KeyedError(missing, "basic_user and basic_password must be given together")
        if self.bearer_token is not None and self.basic_user is not None:
            raise KeyedError("bearer_token",
                             "give bearer_token or basic_user/basic_password, not both")
        return self


MetricsSettings = Annotated[SimMetricsSettings | PrometheusSettings, Field(discriminator="kind")]


# --- traffic and deploy --------------------------------------------------------------------------

#: The actions each section may define.
TRAFFIC_ACTIONS = ("set_weight", "current_weight")
DEPLOY_ACTIONS = ("current_version", "preflight", "rollback", "rollback_status")
#: Actions only the http kind has: looking a rollback up by its idempotency key (GET; 404 is
#: "no such operation").
HTTP_ONLY_ACTIONS = ("rollback_status",)


class SimDeploySettings(Strict):
    """The simulated traffic controller or deployer (shares the simulator of [metrics])."""

    kind: Literal["sim"] = "sim"
    rollback_seconds: float = Field(
        default=6.0, ge=0, description="How long the simulated rollback takes to go live."
    )
    fail_rollback: bool = Field(
        default=False,
        description="Simulate a deployer that never reports the target version (for drills).",
    )


class HttpAction(Strict):
    """One call of the http adapter."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(description="URL template, e.g. '{base_url}/services/{service}/weight'.")
    body: dict[str, object] | None = Field(
        default=None,
        description="JSON body; string values may hold placeholders, e.g. {weight = '{percent}'}. "
        "A value that is exactly one placeholder of a number ('{percent}') is sent as a number.",
    )
    result_path: str | None = Field(
        default=None,
        description="Dotted path to the answer's field in the JSON response, "
        "e.g. 'status.version'.",
    )
    expect_status: list[int] = Field(
        default_factory=lambda: [200, 201, 202, 204],
        description="HTTP statuses that mean success.",
    )
    idempotent: bool | None = Field(
        default=None,
        description="Whether retrying is safe. Default: true for GET, and for writes whose URL, "
        "body or headers carry {idempotency_key}; false otherwise.",
    )
    deadline_s: float | None = Field(
        default=None, gt=0, le=3600,
        description="Total deadline of this call, retries included (default: the section's).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_template(value)

    @field_validator("body")
    @classmethod
    def _body(cls, value: dict[str, object] | None) -> dict[str, object] | None:
        def walk(node: object) -> None:
            if isinstance(node, str):
                _check_template(node)
            elif isinstance(node, dict):
                for child in node.values():
                    walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        walk(value)
        return value


class HttpSettings(Strict):
    """Any deploy or traffic API reachable over HTTP(S), through httpx."""

    kind: Literal["http"] = "http"
    base_url: str = Field(description="Base URL that action URLs may use as {base_url}.")
    timeout_s: float = Field(
        default=5.0, gt=0, le=300, description="Timeout of one connect and of one read."
    )
    deadline_s: float = Field(
        default=15.0, gt=0, le=3600,
        description="Total deadline of one call: the whole exchange, retries and pauses "
        "included. Past it the call is abandoned and fails ('no complete answer within N s').",
    )
    retries: int = Field(
        default=2, ge=0, le=10, description="Retries (with backoff) of requests safe to retry."
    )
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate.")
    headers: dict[str, str | SecretFromEnv] = Field(
        default_factory=dict,
        description="Headers sent with every request; secrets as "
        "{env = 'VAR', format = 'Bearer {}'}.",
    )
    actions: dict[str, HttpAction] = Field(
        default_factory=dict, description="The calls, by action name."
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str | SecretFromEnv]) -> dict[str, str | SecretFromEnv]:
        for name, spec in value.items():
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise KeyedError(quote_key(name), "not an HTTP header name")
            if isinstance(spec, str):
                if re.search(r"[\x00-\x1f\x7f]", spec):
                    raise KeyedError(quote_key(name), "the value contains control characters")
                try:
                    _check_template(spec)
                except ValueError as error:
                    raise KeyedError(quote_key(name), str(error)) from None
        return value


class CommandAction(Strict):
    """One command of the command adapter: an argv list, never a shell string."""

    argv: list[str] = Field(
        min_length=1, description="Program and arguments; placeholders allowed."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, le=3600, description="Timeout of this command (default: the section's)."
    )
    result_regex: str | None = Field(
        default=None,
        description="Regex over stdout; the named group 'value' (or group 1) is the answer.",
    )
    result_json_path: str | None = Field(
        default=None, description="Dotted path into stdout parsed as JSON."
    )

    @field_validator("argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        for arg in value:
            _check_template(arg)
        return value

    @field_validator("result_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a valid regex: {error}") from None
        return value

    @model_validator(mode="after")
    def _one_parser(self) -> CommandAction:
        if self.result_regex is not None and self.result_json_path is not None:
            raise KeyedError("result_json_path", "give result_regex or result_json_path, not both")
        return self


class CommandSettings(Strict):
    """Local commands (kubectl, helm, kubectl-argo-rollouts) run with an argv template."""

    kind: Literal["command"] = "command"
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="Default command timeout.")
    value_pattern: str = Field(
        default=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$",
        description="Every value substituted into argv must match this, or the action is refused.",
    )
    env: dict[str, str | SecretFromEnv] = Field(
        default_factory=dict, description="Extra environment for the commands."
    )
    actions: dict[str, CommandAction] = Field(
        default_factory=dict, description="The commands, by action name."
    )

    @field_validator("value_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regex: {error}") from None
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str | SecretFromEnv]) -> dict[str, str | SecretFromEnv]:
        for name, spec in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise KeyedError(quote_key(name), "not an environment variable name")
            if isinstance(spec, str) and "\x00" in spec:
                raise KeyedError(name, "the value contains a NUL character")
        return value


class ArgoRolloutsSettings(Strict):
    """An Argo Rollouts ``Rollout``, driven through the Kubernetes API with httpx (no kubectl).

    Where the API server, the token and the CA come from, in order: the keys below; inside a pod,
    the service account (``KUBERNETES_SERVICE_HOST``, ``/var/run/secrets/kubernetes.io/
    serviceaccount``); otherwise the kubeconfig (``kubeconfig``, ``$KUBECONFIG``,
    ``~/.kube/config``).
    """

    kind: Literal["argo-rollouts"] = "argo-rollouts"
    rollout: str = Field(
        default="{service}",
        description="The Rollout's name; placeholders allowed (default: the incident's service).",
    )
    namespace: str | None = Field(
        default=None,
        description="The Rollout's namespace (default: the service account's, else the "
        "kubeconfig context's, else 'default').",
    )
    container: str | None = Field(
        default=None,
        description="The container whose image tag is the version (default: the first).",
    )
    plan: Literal["steps", "warroom"] = Field(
        default="steps",
        description="steps: a weight is reached by promoting the Rollout to the step that sets "
        "it (each setWeight followed by an indefinite pause); warroom: the canary steps are "
        "rewritten to [setWeight N, pause] on each stage, so any weight can be set.",
    )
    api_url: str | None = Field(
        default=None,
        description="The API server, e.g. https://10.0.0.1:6443 (default: in-cluster, else the "
        "kubeconfig's cluster).",
    )
    kubeconfig: str | None = Field(
        default=None, description="A kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
    )
    context: str | None = Field(
        default=None, description="The kubeconfig context (default: its current-context)."
    )
    token: SecretFromEnv | None = Field(
        default=None,
        description="Bearer token, from an environment variable (default: the service account's "
        "token, else the kubeconfig user's token or tokenFile).",
    )
    ca_file: str | None = Field(
        default=None,
        description="CA bundle the API server's certificate is verified with (default: the "
        "service account's ca.crt, else the kubeconfig cluster's).",
    )
    verify_tls: bool = Field(default=True, description="Verify the API server's certificate.")
    timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="Timeout of one connect and of one read."
    )
    deadline_s: float = Field(
        default=20.0, gt=0, le=600,
        description="Total deadline of one read or write (every request it makes, conflict "
        "retries included).",
    )
    converge_s: float = Field(
        default=60.0, ge=0, le=1800,
        description="How long set_weight waits for the controller to report the weight; it is "
        "the whole call's deadline. 0: do not wait.",
    )
    conflict_retries: int = Field(
        default=3, ge=0, le=10,
        description="409 Conflict: re-read the Rollout and write again, at most this often.",
    )

    @field_validator("rollout")
    @classmethod
    def _rollout(cls, value: str) -> str:
        return _check_template(value)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", value):
            raise ValueError(f"not a Kubernetes namespace name: {value!r}")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value is not None else None


DeploySettings = Annotated[
    SimDeploySettings | HttpSettings | CommandSettings | ArgoRolloutsSettings,
    Field(discriminator="kind"),
]


def check_actions(
    settings: SimDeploySettings | HttpSettings | CommandSettings | ArgoRolloutsSettings,
    allowed: tuple[str, ...], required: tuple[str, ...],
) -> None:
    """Refuse action names a section cannot use, and report required ones that are missing."""
    if isinstance(settings, SimDeploySettings | ArgoRolloutsSettings):
        return  # their actions are built in
    if isinstance(settings, CommandSettings):
        allowed = tuple(name for name in allowed if name not in HTTP_ONLY_ACTIONS)
    unknown = sorted(set(settings.actions) - set(allowed))
    if unknown:
        raise KeyedError(f"actions.{unknown[0]}",
                         f"unknown action (known: {', '.join(allowed)})")
    missing = [name for name in required if name not in settings.actions]
    if missing:
        raise KeyedError(f"actions.{missing[0]}",
                         f"required action is missing (required: {', '.join(required)})")

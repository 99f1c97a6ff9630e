"""A small Kubernetes API client on httpx: where the API server is, who we are, one request.

:mod:`adapters.argo_rollouts` talks to the Kubernetes API directly (no kubectl on the bastion,
no client library that would pull half the ecosystem). This module answers the questions every
call asks, in the order kubectl answers them:

* **where** — ``api_url`` from the config; inside a pod, ``KUBERNETES_SERVICE_HOST``/``_PORT``;
  otherwise the kubeconfig's cluster (``kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``, the
  ``context`` or the current-context);
* **who** — a bearer token from the environment variable the config names; else the service
  account's token file (read at every call: projected tokens rotate); else the kubeconfig user's
  ``token``, ``tokenFile`` or client certificate. Exec and auth-provider plugins are refused with
  a line saying what to configure instead (they run arbitrary programs);
* **trust** — TLS is verified against ``ca_file``, the service account's ``ca.crt`` or the
  kubeconfig's certificate authority; ``verify_tls = false`` is the only way off.

:meth:`KubeClient.request` makes one request under the caller's :class:`~adapters._deadline.
Deadline` and turns a refusal into a :class:`KubeError` that carries the API's ``Status``
(``reason``, ``code``, ``message``): "HTTP 403 Forbidden: rollouts.argoproj.io "payments" is
forbidden: User ... cannot patch ...". Secrets are scrubbed from every message.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters._common import excerpt, looks_like_html
from adapters._deadline import Deadline
from adapters.base import AdapterTimeout, DeployError

if TYPE_CHECKING:
    import httpx

    from adapters.settings import ArgoRolloutsSettings

#: Where a pod's service account is mounted (a module attribute so tests can point it elsewhere).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: The largest answer read (a Rollout with its status is a few kB; a ReplicaSet list tens).
MAX_BODY_BYTES = 8 * 1024 * 1024


class KubeError(DeployError):
    """The API server refused a request; ``code`` and ``reason`` come from its ``Status``."""

    def __init__(self, message: str, code: int, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class KubeTarget:
    """Where the API server is and how to reach it (no secret value is kept here)."""

    api_url: str
    namespace: str
    source: str  # "in-cluster service account", "kubeconfig ~/.kube/config (context prod)", ...
    token_env: str | None = None  # the configured variable, read at each call
    token_format: str = "Bearer {}"
    token_file: str | None = None  # the service account's or the kubeconfig's tokenFile
    token_inline: str | None = None  # a kubeconfig user's token
    ca_file: str | None = None
    client_cert: tuple[str, str] | None = None
    verify_tls: bool = True

    def authorization(self) -> tuple[str | None, str | None]:
        """``(header value, raw secret)`` now; DeployError naming where it was looked for."""
        if self.token_env is not None:
            raw = os.environ.get(self.token_env, "").strip()
            if not raw:
                raise DeployError(f"environment variable {self.token_env} is not set (it holds "
                                  "the Kubernetes token); nothing was sent")
            return self.token_format.replace("{}", raw), raw
        if self.token_file is not None:
            try:
                raw = Path(self.token_file).read_text().strip()
            except OSError as error:
                raise DeployError(f"cannot read the token file {self.token_file}: "
                                  f"{error.strerror or error}; nothing was sent") from None
            if not raw:
                raise DeployError(f"the token file {self.token_file} is empty; nothing was sent")
            _register(raw)  # a token read from a file is a secret like a configured one
            return f"Bearer {raw}", raw
        if self.token_inline:
            return f"Bearer {self.token_inline}", self.token_inline
        return None, None


def _register(secret: str) -> None:
    from adapters import secrets

    if secret not in secrets.registered():
        secrets.register([secret])


def resolve_target(settings: ArgoRolloutsSettings) -> KubeTarget:
    """The API server, namespace and credentials the settings lead to; DeployError otherwise."""
    token_env, token_format = _token_spec(settings)
    in_cluster = _in_cluster()
    if settings.api_url is not None or in_cluster is not None:
        api_url = settings.api_url or (in_cluster[0] if in_cluster else "")
        token_file = None
        ca_file = settings.ca_file
        namespace = settings.namespace
        source = "the configured api_url" if settings.api_url else "in-cluster service account"
        if in_cluster is not None:
            if token_env is None:
                token_file = str(SERVICE_ACCOUNT_DIR / "token")
            if ca_file is None and (SERVICE_ACCOUNT_DIR / "ca.crt").is_file():
                ca_file = str(SERVICE_ACCOUNT_DIR / "ca.crt")
            if namespace is None:
                with contextlib.suppress(OSError):
                    namespace = (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or None
        if token_env is None and token_file is None and settings.api_url is not None:
            # an explicit API server with no token: the kubeconfig may still say who we are
            with contextlib.suppress(DeployError):
                from_file = _from_kubeconfig(settings)
                if from_file.api_url == api_url:
                    return from_file
        return KubeTarget(api_url=api_url, namespace=namespace or "default", source=source,
                          token_env=token_env, token_format=token_format, token_file=token_file,
                          ca_file=ca_file, verify_tls=settings.verify_tls)
    return _from_kubeconfig(settings)


def _token_spec(settings: ArgoRolloutsSettings) -> tuple[str | None, str]:
    """The token's variable and header format: the variable holds the bare token."""
    if settings.token is None:
        return None, "Bearer {}"
    fmt = settings.token.format
    return settings.token.env, "Bearer {}" if fmt == "{}" else fmt


def _in_cluster() -> tuple[str] | None:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "").strip() or "443"
    if not host or not (SERVICE_ACCOUNT_DIR / "token").is_file():
        return None
    if ":" in host:
        host = f"[{host}]"
    return (f"https://{host}:{port}",)


def kubeconfig_path(settings: ArgoRolloutsSettings) -> Path:
    """The kubeconfig the settings name, else the first of ``$KUBECONFIG``, else the default."""
    if settings.kubeconfig:
        return Path(settings.kubeconfig).expanduser()
    env = os.environ.get("KUBECONFIG", "")
    for part in env.split(os.pathsep):
        if part.strip():
            return Path(part.strip()).expanduser()
    return Path("~/.kube/config").expanduser()


def _from_kubeconfig(settings: ArgoRolloutsSettings) -> KubeTarget:
    path = kubeconfig_path(settings)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DeployError(
            f"no Kubernetes API to talk to: not in a pod, no api_url configured, and no kubeconfig "
            f"at {path}") from None
    except OSError as error:
        raise DeployError(f"cannot read the kubeconfig {path}: {error.strerror or error}") from None
    import yaml  # only a kubeconfig needs YAML

    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        raise DeployError(f"the kubeconfig {path} is not valid YAML") from None
    if not isinstance(config, Mapping):
        raise DeployError(f"the kubeconfig {path} is not a mapping")
    context_name = settings.context or config.get("current-context")
    if not context_name:
        raise DeployError(f"the kubeconfig {path} has no current-context; set [..] context")
    context = _named(config, "contexts", context_name, "context", path)
    cluster = _named(config, "clusters", context.get("cluster"), "cluster", path)
    user = _named(config, "users", context.get("user"), "user", path) if context.get("user") \
        else {}
    base = path.parent
    where = f"kubeconfig {path} (context {context_name})"
    if "exec" in user or "auth-provider" in user:
        raise DeployError(
            f"the {where} authenticates with an exec or auth-provider plugin, which warroom does "
            "not run: set token = { env = \"VAR\" } with a token for a service account")
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise DeployError(f"the {where} names no usable cluster server")
    ca_file = settings.ca_file or _file_or_data(cluster, "certificate-authority", base)
    cert = _file_or_data(user, "client-certificate", base)
    key = _file_or_data(user, "client-key", base)
    token_file = None
    token_inline = None
    if settings.token is None:
        if user.get("tokenFile"):
            token_file = str(_relative(str(user["tokenFile"]), base))
        elif user.get("token"):
            token_inline = str(user["token"])
            _register(token_inline)
    return KubeTarget(
        api_url=settings.api_url or server,
        namespace=settings.namespace or str(context.get("namespace") or "default"),
        source=where,
        token_env=_token_spec(settings)[0], token_format=_token_spec(settings)[1],
        token_file=token_file, token_inline=token_inline, ca_file=ca_file,
        client_cert=(cert, key) if cert and key else None,
        verify_tls=settings.verify_tls and not cluster.get("insecure-skip-tls-verify", False),
    )


def _named(config: Mapping[str, Any], section: str, name: object, field: str,
           path: Path) -> Mapping[str, Any]:
    for item in config.get(section) or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            value = item.get(field) or {}
            if isinstance(value, Mapping):
                return value
    raise DeployError(f"the kubeconfig {path} has no {field} named {name!r}")


def _relative(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


_data_files: dict[str, str] = {}
_data_lock = threading.Lock()


def _file_or_data(node: Mapping[str, Any], key: str, base: Path) -> str | None:
    """A kubeconfig's ``key`` (a path) or ``key-data`` (base64, written once to a private file)."""
    if node.get(key):
        return str(_relative(str(node[key]), base))
    data = node.get(f"{key}-data")
    if not data:
        return None
    with _data_lock:
        if data not in _data_files:
            try:
                raw = base64.b64decode(str(data), validate=True)
            except ValueError:
                raise DeployError(f"the kubeconfig's {key}-data is not base64") from None
            handle, name = tempfile.mkstemp(prefix="warroom-kube-", suffix=".pem")
            with os.fdopen(handle, "wb") as file:  # mkstemp: mode 0600
                file.write(raw)
            _data_files[data] = name
        return _data_files[data]


class KubeClient:
    """Requests to one API server, each under the caller's deadline."""

    def __init__(self, target: KubeTarget, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import ssl

                import httpx

                verify: bool | ssl.SSLContext = self.target.verify_tls
                if self.target.verify_tls and self.target.ca_file:
                    verify = ssl.create_default_context(cafile=self.target.ca_file)
                if self.target.client_cert is not None and isinstance(verify, ssl.SSLContext):
                    verify.load_cert_chain(*self.target.client_cert)
                elif self.target.client_cert is not None:
                    context = ssl.create_default_context()
                    if not self.target.verify_tls:
                        context.check_hostname = False
                        context.verify_mode = ssl.CERT_NONE
                    context.load_cert_chain(*self.target.client_cert)
                    verify = context
                self._client = httpx.Client(
                    base_url=self.target.api_url, verify=verify, follow_redirects=False,
                    timeout=httpx.Timeout(self.timeout_s),
                    # a new connection per request: nothing a past fault left behind is reused,
                    # and every socket is known to the call's Deadline
                    limits=httpx.Limits(max_keepalive_connections=0),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def request(self, method: str, path: str, deadline: Deadline, *, what: str,
                body: object = None, content_type: str = "application/json",
                params: Mapping[str, str] | None = None) -> Any:
        """One request; the decoded JSON answer, or KubeError / AdapterTimeout with one line.

        ``what`` starts every message ("abort: PATCH rollouts/payments/status").
        """
        import httpx

        header, secret = self.target.authorization()
        secrets = (secret,) if secret else ()
        headers = {"Accept": "application/json"}
        if header is not None:
            headers["Authorization"] = header
        content: bytes | None = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body).encode()
        unsafe = "" if method == "GET" else (
            "; it may have been applied: read the Rollout back before trying again")
        if deadline.expired:
            raise AdapterTimeout(f"{what} -> not sent: the call's {deadline.seconds:g} s deadline "
                                 "had passed")
        try:
            with self._http().stream(
                method, path, headers=headers, content=content, params=params,
                timeout=httpx.Timeout(deadline.bound(self.timeout_s)),
                extensions={"trace": deadline.trace},
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise DeployError(f"{what} -> the answer is larger than "
                                          f"{MAX_BODY_BYTES // 1024 // 1024} MiB; not read")
                    chunks.append(chunk)
                status = response.status_code
        except httpx.HTTPError as error:
            if deadline.expired:
                raise AdapterTimeout(f"{what} -> no complete answer within {deadline.seconds:g} "
                                     f"s{unsafe}") from None
            if isinstance(error, httpx.TimeoutException):
                raise AdapterTimeout(f"{what} -> no answer within {self.timeout_s:g} s"
                                     f"{unsafe}") from None
            reason = excerpt(str(error) or type(error).__name__, secrets, 160)
            raise DeployError(f"{what} -> {reason}") from None
        text = b"".join(chunks).decode("utf-8", errors="replace")
        if 200 <= status < 300:
            try:
                return json.loads(text) if text.strip() else None
            except ValueError:
                shown = "an HTML page (a proxy?)" if looks_like_html(text) else "not JSON"
                raise DeployError(f"{what} -> HTTP {status}, but the answer is {shown}: "
                                  f"{excerpt(text, secrets, 120)}") from None
        raise _refusal(what, status, text, secrets)


def _refusal(what: str, status: int, text: str, secrets: tuple[str, ...]) -> KubeError:
    """A KubeError from an error answer: the API's ``Status`` (reason, message) when it sent one."""
    reason, message = "", ""
    with contextlib.suppress(ValueError):
        body = json.loads(text)
        if isinstance(body, Mapping) and body.get("kind") == "Status":
            reason = str(body.get("reason") or "")
            message = str(body.get("message") or "")
    if not message:
        message = "an HTML page (a proxy?)" if looks_like_html(text) else (text or "(empty body)")
    hint = ""
    if status == 401:
        hint = " (the token was refused: expired, or for another cluster?)"
    elif status == 403:
        hint = " (RBAC: the account needs this verb on this resource)"
    label = f"HTTP {status}{' ' + reason if reason else ''}"
    return KubeError(f"{what} -> {label}: {excerpt(message, secrets, 240)}{hint}", status, reason)


__all__ = ["KubeClient", "KubeError", "KubeTarget", "kubeconfig_path", "resolve_target"]

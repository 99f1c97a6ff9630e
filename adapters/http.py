"""The ``http`` kind of traffic controller and deployer: any deploy API, through httpx.

Each action of ``[traffic]`` / ``[deploy]`` (``kind = "http"``) is one HTTP call described in the
config: method, URL template, JSON body template, and ``result_path``, the dotted path (list indices
allowed: ``items.0.version``) to the answer in the JSON response. Placeholders are filled from the
``context`` the console gives (``service``, ``version``, ``target``, ``incident``) plus what the
adapter adds per call (``percent``, ``base_url``, ``idempotency_key``).

Rules this module keeps, because an emergency change is the worst moment to learn them:

* Retries (bounded, exponential backoff) only where repeating is harmless: reads (GET), and writes
  marked ``idempotent`` or carrying ``{idempotency_key}`` (one key per call, the same on every
  retry). A non-idempotent write is sent once, whatever happens. The rollback is never retried
  inside a call (unless its action says ``idempotent = true``): the console reads the deploy
  system's state first (``rollback_status``, by the key it derived from the journalled request)
  and only then decides whether to send it again.
* Every failure is one line: action, method, URL (no query string, no credentials), HTTP status
  and a short, cleaned excerpt of the body. Secrets never appear in it, even when the server
  echoes them.
* Secrets are read from the environment at call time; a missing variable fails before anything is
  sent, naming the variable (never a value).

* Every call has a total deadline (``deadline_s``, per section and per action): the whole exchange,
  retries and their pauses included, ends by then, however slowly the server trickles its answer.
  Past it the connection is cut and the call fails with "no complete answer within N s". A
  ``timeout_s`` bounds each connect and each read inside that. Connections are not kept alive
  between calls, so a fault that ends leaves nothing stuck behind: the next call starts clean.
* A 429 or 503 with ``Retry-After`` is retried after that pause when the call may be retried and
  the pause fits in the deadline; otherwise the failure says how long the API asked to wait.
* An answer larger than :data:`MAX_BODY_BYTES` is refused, not read into memory.

httpx is imported when the first request is made, so importing this module costs almost nothing.
Every call is synchronous and blocks for at most its deadline: the console runs adapters in worker
threads.

The small parsing helpers (:func:`lookup_path`, :func:`parse_weight`, ...) live in
:mod:`adapters._common`, shared with :mod:`adapters.command`; they stay importable from here.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from adapters._common import (
    CONTROL,
    PathNotFound,
    check_context,
    check_percent,
    clean_text,
    describe_preflight_value,
    excerpt,
    kind_of,
    looks_like_html,
    lookup_path,
    parse_version,
    parse_weight,
    resolve_secret,
    scrub,
    should_advance,
    version_check,
)
from adapters._deadline import Deadline
from adapters.base import (
    AdapterTimeout,
    DeployError,
    PreflightCheck,
    PreflightResult,
    RollbackOperation,
)
from adapters.settings import (
    HttpAction,
    HttpSettings,
    SecretFromEnv,
    fill_template,
    template_names,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "HttpDeployer",
    "HttpTraffic",
    "PathNotFound",
    "clean_text",
    "describe_preflight_value",
    "lookup_path",
    "parse_version",
    "parse_weight",
    "resolve_secret",
    "scrub",
]

# HTTP statuses that say "try again later" rather than "no": only these are retried.
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_BACKOFF_CAP_S = 2.0
#: The largest answer read; a bigger one is a failure (a deploy API's answers are small).
MAX_BODY_BYTES = 4 * 1024 * 1024

_T = TypeVar("_T")


# --- the HTTP machinery ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """A successful response, with what an error message about it needs."""

    where: str  # "action: METHOD url", safe to show
    status: int
    text: str
    secrets: tuple[str, ...]

    def fail(self, problem: str) -> DeployError:
        body = excerpt(self.text, self.secrets) or "(empty body)"
        return DeployError(f"{self.where} -> HTTP {self.status}, but {problem}: {body}")

    def json(self) -> object:
        try:
            return json.loads(self.text)
        except ValueError:
            if looks_like_html(self.text):
                raise self.fail("the body is an HTML page, not JSON (a login page or a proxy?)") \
                    from None
            raise self.fail("the body is not JSON") from None

    def result(self, path: str) -> object:
        try:
            return lookup_path(self.json(), path)
        except PathNotFound as error:
            raise self.fail(f"result_path {path!r} is missing from the JSON ({error})") from None


def _display_url(url: str) -> str:
    """The URL without credentials, query string or fragment (tokens travel there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _url_value(name: str, value: str) -> str:
    # Values are data, not URL syntax: '/', '?', '#', '&' in a version must not change the request.
    if name == "base_url":
        return value.rstrip("/")
    encoded = quote(value, safe="")
    if encoded in (".", ".."):  # a path segment of dots would climb the URL path
        encoded = encoded.replace(".", "%2E")
    return encoded


class _HttpActions:
    """Runs the configured actions of one ``[traffic]`` or ``[deploy]`` section."""

    def __init__(
        self, settings: HttpSettings, context: Mapping[str, str | None], *, backoff_s: float
    ) -> None:
        self.settings = settings
        self.context = check_context(context)
        self.backoff_s = backoff_s
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    # the client is built on first use: importing httpx costs ~0.12 s (STACK.md)
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.settings.timeout_s),
                    verify=self.settings.verify_tls,
                    follow_redirects=False,  # a redirect could carry our headers elsewhere
                    # a new connection per call: a connection a past fault left behind is never
                    # reused, and each one's socket is known to the call's Deadline
                    limits=httpx.Limits(max_keepalive_connections=0),
                    # trust_env stays on: a bastion's HTTPS_PROXY / SSL_CERT_FILE must apply
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def has(self, name: str) -> bool:
        return name in self.settings.actions

    def call(self, name: str, *, also_ok: frozenset[int] = frozenset(), **extra: str) -> _Answer:
        """Run action ``name``; raise DeployError / AdapterTimeout with one line on failure.

        ``also_ok``: statuses answered as they are (not retried, not an error), besides the
        action's ``expect_status``."""
        action = self.settings.actions.get(name)
        if action is None:
            raise DeployError(f"{name}: no such action is configured for the http adapter")
        values = {
            **self.context,
            "base_url": self.settings.base_url,
            "idempotency_key": uuid.uuid4().hex,  # one key per call, the same on each retry
            **extra,
        }
        secrets: list[str] = []
        try:
            url = fill_template(action.url, {k: _url_value(k, v) for k, v in values.items()})
            body = _fill_body(action.body, values)
            headers = self._headers(name, values, secrets)
        except KeyError as error:
            missing = error.args[0]
            raise DeployError(
                f"{name}: no value for {{{missing}}} (the console gave: "
                f"{', '.join(sorted(self.context)) or 'nothing'}); nothing was sent"
            ) from None
        where = f"{name}: {action.method} {_display_url(url)}"
        attempts = 1 + (self.settings.retries if self._idempotent(name, action) else 0)
        return self._send(action, url, body, headers, where, attempts, secrets, also_ok)

    def read(self, name: str, parse: Callable[[object], _T]) -> _T:
        """Run action ``name`` and ``parse`` its answer (at ``result_path``, else the whole body).

        ``parse`` raises ValueError for a value it cannot accept: a DeployError with the body.
        """
        answer = self.call(name)
        path = self.settings.actions[name].result_path
        value = answer.result(path) if path is not None else _bare_value(answer)
        try:
            return parse(value)
        except ValueError as error:
            raise answer.fail(str(error)) from None

    def _headers(self, name: str, values: dict[str, str], secrets: list[str]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for header, spec in self.settings.headers.items():
            if isinstance(spec, SecretFromEnv):
                value, raw = resolve_secret(spec, f"{name}: header {header}")
                secrets.append(raw)
            else:
                value = fill_template(spec, values)
            if CONTROL.search(value):
                # a value with CR/LF would split the header block; refuse it (without echoing it)
                raise DeployError(f"{name}: header {header} would contain control characters")
            headers[header] = value
        return headers

    def _idempotent(self, name: str, action: HttpAction) -> bool:
        if action.idempotent is not None:
            return action.idempotent
        if action.method == "GET":
            return True
        if name == "rollback":
            # Never resent blind, key or not: the console asks the deploy system first.
            return False
        used = template_names(action.url) | set().union(
            *(template_names(v) for v in self.settings.headers.values() if isinstance(v, str))
        )
        return "idempotency_key" in used or _body_uses(action.body, "idempotency_key")

    def _send(
        self,
        action: HttpAction,
        url: str,
        body: object,
        headers: dict[str, str],
        where: str,
        attempts: int,
        secrets: list[str],
        also_ok: frozenset[int] = frozenset(),
    ) -> _Answer:
        import httpx

        client = self.client()
        method = action.method
        secret_tuple = tuple(secrets)
        deadline_s = action.deadline_s or self.settings.deadline_s
        # the server may have acted on a write it never answered: say so
        unsafe = "" if method == "GET" else (
            "; it may have been applied: read the state back before trying again"
        )

        def too_late(tried: str) -> AdapterTimeout:
            return AdapterTimeout(
                f"{where} -> no complete answer within {deadline_s:g} s{tried}{unsafe}"
            )

        with Deadline(deadline_s) as deadline:
            for attempt in range(1, attempts + 1):
                last = attempt == attempts
                tried = f" (after {attempt} attempts)" if attempt > 1 else ""
                timeout = httpx.Timeout(deadline.bound(self.settings.timeout_s))
                try:
                    status, text = self._exchange(
                        client, method, url, headers, body, timeout, deadline
                    )
                except httpx.InvalidURL as error:
                    raise DeployError(f"{where} -> not a usable URL ({error})") from None
                except _TooLarge:
                    raise DeployError(
                        f"{where} -> the answer is larger than {MAX_BODY_BYTES // 1024 // 1024} "
                        f"MiB; it was not read{tried}"
                    ) from None
                except httpx.HTTPError as error:
                    if deadline.expired:
                        raise too_late(tried) from None
                    if not last and self._pause(attempt, deadline):
                        continue
                    if isinstance(error, httpx.TimeoutException):
                        phase = "connect" if isinstance(error, httpx.ConnectTimeout) else "answer"
                        raise AdapterTimeout(
                            f"{where} -> no {phase} within {self.settings.timeout_s:g} s"
                            f"{tried}{unsafe}"
                        ) from None
                    reason = excerpt(str(error) or type(error).__name__, secret_tuple, 120)
                    raise DeployError(f"{where} -> {reason}{tried}") from None
                if status.code in action.expect_status or status.code in also_ok:
                    return _Answer(where, status.code, text, secret_tuple)
                if status.code in _RETRY_STATUSES and not last:
                    if status.retry_after is None and self._pause(attempt, deadline):
                        continue
                    if status.retry_after is not None and self._wait(status.retry_after,
                                                                     deadline):
                        continue
                shown = excerpt(text, secret_tuple) or "(empty body)"
                if looks_like_html(text):
                    shown = f"an HTML page (a login page or a proxy?): {shown}"
                asked = ""
                if status.retry_after is not None:
                    asked = f" (the API asks to retry after {status.retry_after:g} s)"
                raise DeployError(f"{where} -> HTTP {status.code}{tried}{asked}: {shown}")
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _exchange(
        client: httpx.Client,
        method: str,
        url: str,
        headers: dict[str, str],
        body: object,
        timeout: httpx.Timeout,
        deadline: Deadline,
    ) -> tuple[_Status, str]:
        """One request and its whole answer, read under ``deadline`` and the size cap."""
        with client.stream(
            method, url, headers=headers, json=body, timeout=timeout,
            extensions={"trace": deadline.trace},
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _TooLarge
                chunks.append(chunk)
            encoding = response.encoding or "utf-8"
            text = b"".join(chunks).decode(encoding, errors="replace")
            return _Status(response.status_code, _retry_after(response.headers)), text

    def _pause(self, attempt: int, deadline: Deadline) -> bool:
        """Back off before another attempt; False when no attempt fits in the deadline."""
        return self._wait(min(self.backoff_s * 2 ** (attempt - 1), _BACKOFF_CAP_S), deadline)

    @staticmethod
    def _wait(seconds: float, deadline: Deadline) -> bool:
        # another attempt needs some of the deadline left after the pause, or it is pointless
        if seconds >= deadline.remaining() - 0.05:
            return False
        time.sleep(seconds)
        return True


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Status:
    code: int
    retry_after: float | None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """The pause a Retry-After header asks for, in seconds (delay-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _fill_body(node: object, values: dict[str, str]) -> object:
    if isinstance(node, str):
        if node == "{percent}":
            return int(values["percent"])  # sent as a JSON number, as APIs expect
        return fill_template(node, values)
    if isinstance(node, dict):
        return {key: _fill_body(child, values) for key, child in node.items()}
    if isinstance(node, list):
        return [_fill_body(child, values) for child in node]
    return node


def _body_uses(node: object, name: str) -> bool:
    if isinstance(node, str):
        return name in template_names(node)
    if isinstance(node, dict):
        return any(_body_uses(child, name) for child in node.values())
    if isinstance(node, list):
        return any(_body_uses(child, name) for child in node)
    return False


# --- the adapters ------------------------------------------------------------------------------


class HttpTraffic:
    """A :class:`~adapters.base.TrafficController` behind an HTTP API.

    ``context`` holds placeholder values (``service``, ``version``, ``target``, ``incident``);
    ``percent``, ``base_url`` and ``idempotency_key`` are added per call.
    """

    def __init__(
        self,
        settings: HttpSettings,
        context: Mapping[str, str | None],
        *,
        backoff_s: float = 0.2,
    ) -> None:
        self._actions = _HttpActions(settings, context, backoff_s=backoff_s)

    def set_weight(self, percent: int) -> None:
        """Send ``percent`` to the canary. If ``result_path`` is set, the echoed weight must match.

        An action whose URL and body do not carry ``{percent}`` (a "promote to the next step"
        endpoint) can only move forward: it is called only when ``percent`` is above the current
        weight, skipped when equal, and refused for a lower weight.
        """
        value = check_percent(percent)
        action = self._actions.settings.actions.get("set_weight")
        if action is not None and not (
            "percent" in template_names(action.url) or _body_uses(action.body, "percent")
        ):
            why = "the configured call does not carry {percent}"
            if not should_advance(percent, self.current_weight(), why):
                return
        answer = self._actions.call("set_weight", percent=value)
        path = self._actions.settings.actions["set_weight"].result_path
        if path is not None:
            try:
                echoed = parse_weight(answer.result(path))
            except ValueError as error:
                raise answer.fail(f"{path!r} is not a weight ({error})") from None
            if echoed != percent:
                raise DeployError(
                    f"{answer.where} -> the API reports weight {echoed}, not {percent}"
                )

    def current_weight(self) -> int:
        """The canary weight the API reports, 0..100."""
        return self._actions.read("current_weight", parse_weight)

    def close(self) -> None:
        """Close the connection pool (the adapter reopens it if used again)."""
        self._actions.close()

    def __enter__(self) -> HttpTraffic:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class HttpDeployer:
    """A :class:`~adapters.base.Deployer` behind an HTTP API (see :class:`HttpTraffic`)."""

    def __init__(
        self,
        settings: HttpSettings,
        context: Mapping[str, str | None],
        *,
        backoff_s: float = 0.2,
    ) -> None:
        self._actions = _HttpActions(settings, context, backoff_s=backoff_s)

    def current_version(self) -> str:
        """The version the API reports as live (read from ``result_path``)."""
        return self._actions.read("current_version", parse_version)

    def preflight_rollback(self, target: str) -> PreflightResult:
        """Check, without changing anything, that a rollback to ``target`` can run.

        Never raises for a failing check: every problem becomes a failed :class:`PreflightCheck`.
        """
        checks = [
            PreflightCheck(
                "target version known", bool(target.strip()),
                f"rollback target {target!r}" if target.strip() else "no rollback target given",
            ),
            version_check(self.current_version),
        ]
        if self._actions.has("preflight"):
            checks.extend(self._endpoint_checks(target))
            detail = "checked by the deploy API's preflight endpoint"
        else:
            checks.append(PreflightCheck(
                "preflight endpoint", True,
                "no preflight endpoint is configured: only read-only checks were run",
            ))
            detail = "no preflight endpoint is configured; read-only checks only"
        ok = all(check.ok for check in checks)
        return PreflightResult(target=target, ok=ok, checks=checks, detail=detail)

    def _endpoint_checks(self, target: str) -> list[PreflightCheck]:
        try:
            answer = self._actions.call("preflight", target=target)
            path = self._actions.settings.actions["preflight"].result_path
            if path is not None:
                ok, said = describe_preflight_value(answer.result(path), target)
                return [PreflightCheck("preflight endpoint", ok, f"{path} {said}")]
            return _checks_from_body(answer)
        except (DeployError, AdapterTimeout) as error:  # a timeout is not a DeployError
            return [PreflightCheck("preflight endpoint", False, str(error))]

    def rollback(self, target: str, progress: Callable[[str], None] | None = None, *,
                 idempotency_key: str | None = None) -> str:
        """Ask the API to roll back to ``target``; returns the operation id or the HTTP status.

        Completion is confirmed by the console, by reading :meth:`current_version`. With
        ``idempotency_key`` (the console's, derived from the journalled request), that key is
        ``{idempotency_key}`` in the templates; the POST is sent once, never retried here.
        """
        if not target.strip():
            raise DeployError("rollback: no rollback target given; nothing was sent")
        if idempotency_key:
            answer = self._actions.call("rollback", target=target,
                                        idempotency_key=idempotency_key)
        else:
            answer = self._actions.call("rollback", target=target)
        path = self._actions.settings.actions["rollback"].result_path
        if path is not None:
            value = answer.result(path)
            if isinstance(value, dict | list) or value is None:
                raise answer.fail(f"{path!r} is {kind_of(value)}, not an operation id")
            description = f"{clean_text(str(value), 80)} (HTTP {answer.status})"
        else:
            description = f"HTTP {answer.status}"
        if progress is not None:
            progress(f"rollback to {target} accepted: {description}")
        return description

    def find_rollback(self, idempotency_key: str) -> RollbackOperation | None:
        """What the API knows of the rollback sent under ``idempotency_key``, through the
        ``rollback_status`` action: a 2xx answer is an operation it has (its ``result_path``, or
        an excerpt of the body, is the detail), 404 is none. None without that action."""
        if not self._actions.has("rollback_status"):
            return None
        answer = self._actions.call("rollback_status", also_ok=frozenset({404}),
                                    idempotency_key=idempotency_key)
        if answer.status == 404:
            return RollbackOperation(False, f"HTTP 404 for {idempotency_key}")
        path = self._actions.settings.actions["rollback_status"].result_path
        if path is not None:
            detail = clean_text(str(answer.result(path)), 120)
        else:
            detail = excerpt(answer.text, answer.secrets, 120) or f"HTTP {answer.status}"
        return RollbackOperation(True, detail)

    def close(self) -> None:
        """Close the connection pool (the adapter reopens it if used again)."""
        self._actions.close()

    def __enter__(self) -> HttpDeployer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _bare_value(answer: _Answer) -> object:
    """Without a result_path, the answer is the whole body: a JSON scalar or plain text."""
    try:
        return json.loads(answer.text)
    except ValueError:
        return answer.text.strip()


def _checks_from_body(answer: _Answer) -> list[PreflightCheck]:
    """Read ``{"ok": bool, "checks": [...] | {...}, "detail": str}`` from a preflight endpoint."""
    body = answer.json()
    if not isinstance(body, Mapping) or ("ok" not in body and "checks" not in body):
        raise answer.fail("a preflight answer needs 'ok' or 'checks' (or set result_path)")
    checks: list[PreflightCheck] = []
    raw = body.get("checks")
    items: list[tuple[str, object]] = []
    if isinstance(raw, Mapping):
        items = [(str(k), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        for index, item in enumerate(raw, 1):
            label = item.get("name", f"check {index}") if isinstance(item, Mapping) else index
            items.append((str(label), item))
    for label, item in items:
        if isinstance(item, Mapping):
            ok = item.get("ok") is True or item.get("status") in ("ok", "pass", "passed")
            detail = item.get("detail", item.get("message", ""))
        else:
            ok, detail = item is True, ""
        checks.append(PreflightCheck(clean_text(label, 80), ok, clean_text(str(detail or ""))))
    overall = body["ok"] is True if "ok" in body else all(c.ok for c in checks)
    detail = clean_text(str(body.get("detail", body.get("message", "")) or ""))
    checks.append(PreflightCheck(
        "preflight endpoint", overall,
        detail or ("the deploy API says the rollback can run" if overall
                   else "the deploy API says the rollback cannot run"),
    ))
    return checks

"""A real Prometheus server as a :class:`~adapters.base.MetricsSource`, via prometheus-api-client.

Importing this module is cheap: ``prometheus_api_client`` and ``requests`` (≈ 0.12 s, STACK.md)
are imported when a :class:`PrometheusMetrics` is built, so the CLI and config loading never pay
for them.

Every call is synchronous and ends within ``deadline_s``, the total deadline of the whole exchange
(retries included): a server that trickles its answer a byte at a time, which never trips the
per-read ``timeout_s``, is cut at the deadline ("no complete answer within N s"), and its connection
is closed, so the next poll starts clean. The console calls it from worker threads, never from the
UI thread. Every failure is one short line in a :class:`MetricsError` (a timeout is a
:class:`MetricsTimeout`, both a MetricsError and an AdapterTimeout) that never contains a
credential. An answer that is not Prometheus's ``{"status": "success", "data": ...}`` (an HTML
login page, ``status: error`` with HTTP 200) is a MetricsError that says so.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from adapters._common import looks_like_html, scrub
from adapters._deadline import Deadline, deadline_http_adapter
from adapters.base import AdapterTimeout, InstantValue, MetricsError, RangeSeries

if TYPE_CHECKING:
    from collections.abc import Callable

    from prometheus_api_client import PrometheusConnect

    from adapters.settings import PrometheusSettings, SecretFromEnv

#: Longest error message we raise; the rest of a server's answer is cut (with an ellipsis).
MAX_MESSAGE = 300
#: Backoff between retries (urllib3: factor × 2^(retry-1) seconds): short, a war room is waiting.
RETRY_BACKOFF_FACTOR = 0.2
#: Statuses worth retrying: a proxy or load balancer in front of a restarting Prometheus.
RETRY_STATUSES = (502, 503, 504)



class MetricsTimeout(AdapterTimeout, MetricsError):
    """Prometheus did not answer in time: caught by ``except AdapterTimeout`` and by
    ``except MetricsError`` alike, so a caller that handles "the query failed" handles this too."""


_STATUS_MESSAGE = re.compile(r"^HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)
_POSITION = re.compile(r"^(\d+:\d+): (.*)$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Collapse whitespace and control characters; cut to ``limit`` characters."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _display_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _seconds(value: float) -> str:
    """``0.5`` → ``"0.5"``, ``3.0`` → ``"3"``: how a duration reads in a message."""
    return f"{value:g}"


def _parse_value(raw: object) -> float:
    """A Prometheus sample value ("1.5", "NaN", "+Inf", "-Inf") as a float."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise MetricsError(f"Prometheus sent a sample value that is not a number: {raw!r:.40}")
    try:
        # float() reads Prometheus's spellings of the special values: "NaN", "+Inf", "-Inf".
        return float(raw)
    except ValueError:
        raise MetricsError(
            f"Prometheus sent a sample value that is not a number: {str(raw)!r:.40}"
        ) from None


def _parse_point(raw: object) -> tuple[float, float]:
    """A ``[ts, "value"]`` pair."""
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise MetricsError(f"Prometheus sent an unreadable sample: {raw!r:.60}")
    ts, value = raw
    try:
        if isinstance(ts, bool):
            raise TypeError
        stamp = float(ts)
    except (TypeError, ValueError):
        raise MetricsError(f"Prometheus sent an unreadable timestamp: {ts!r:.40}") from None
    if not math.isfinite(stamp):
        raise MetricsError(f"Prometheus sent an unreadable timestamp: {ts!r:.40}")
    return stamp, _parse_value(value)


def _labels(item: dict[str, Any]) -> dict[str, str]:
    metric = item.get("metric", {})
    if not isinstance(metric, dict):
        raise MetricsError("Prometheus sent a series whose labels are unreadable")
    return {str(name): str(value) for name, value in metric.items()}


def _is_bare_point(result: object) -> bool:
    """A scalar or string answer is a bare ``[ts, "value"]`` rather than a list of series."""
    return (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], int | float)
        and not isinstance(result[0], bool)
    )


def instant_values(result: object) -> list[InstantValue]:
    """Convert the ``data.result`` of an instant query (vector or scalar) to InstantValues."""
    if _is_bare_point(result):
        ts, value = _parse_point(result)
        return [InstantValue(labels={}, ts=ts, value=value)]
    if not isinstance(result, list):
        raise MetricsError("Prometheus sent an answer that is not a list of series")
    values: list[InstantValue] = []
    for item in result:
        if not isinstance(item, dict):
            raise MetricsError("Prometheus sent a series that is not an object")
        if "value" not in item:
            if "values" in item:
                raise MetricsError(
                    "the query returns a range vector (e.g. metric[5m]); "
                    "wrap it in a function such as rate() for an instant value"
                )
            raise MetricsError("Prometheus sent a series without a value")
        ts, value = _parse_point(item["value"])
        values.append(InstantValue(labels=_labels(item), ts=ts, value=value))
    return values


def range_series(result: object) -> list[RangeSeries]:
    """Convert the ``data.result`` of a range query (a matrix) to RangeSeries."""
    if not isinstance(result, list):
        raise MetricsError("Prometheus sent a range answer that is not a list of series")
    series: list[RangeSeries] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise MetricsError("Prometheus sent a range series without values")
        points = [_parse_point(point) for point in item["values"]]
        series.append(RangeSeries(labels=_labels(item), points=points))
    return series


def _server_error_text(body: str) -> str:
    """Prometheus's own ``error`` field from a JSON error body, else the body itself."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        text = answer["error"]
        # 'invalid parameter "query": 1:18: parse error: ...' reads better as
        # 'parse error: ... (at 1:18)'.
        text = re.sub(r'^invalid parameter "query": ', "", text)
        position = _POSITION.match(text)
        if position:
            text = f"{position.group(2)} (at {position.group(1)})"
        return text
    return body


def _status_and_body(message: str) -> tuple[int, str] | None:
    """Undo prometheus-api-client's ``"HTTP Status Code 400 (b'...')"`` message."""
    match = _STATUS_MESSAGE.match(message)
    if not match:
        return None
    status, raw = int(match.group(1)), match.group(2)
    try:
        content = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return status, raw
    if isinstance(content, bytes):
        return status, content.decode("utf-8", errors="replace")
    return status, str(content)


class PrometheusMetrics:
    """Query a Prometheus server over its HTTP API (``/api/v1/query``, ``/api/v1/query_range``).

    Thread safety: one ``PrometheusConnect`` and so one ``requests.Session`` is shared by every
    thread. The console runs each poll in a fresh worker thread, so a client per thread
    (``threading.local``) would open a new connection, and leave a session behind, on every poll;
    a shared session keeps its pooled keep-alive connections. Sharing is safe here because after
    construction nothing mutates the session: the library only sends GETs through it, urllib3's
    connection pool is thread-safe, and credentials are swapped by replacing (never mutating) the
    client's ``headers`` / ``auth`` attributes under a lock, an atomic assignment for readers.
    """

    def __init__(self, settings: PrometheusSettings, connections: int = 10) -> None:
        """``connections``: kept-alive connections in the pool — as many as a poll has queries,
        so all of a poll's queries are in flight at once on warm connections."""
        self.settings = settings
        self.url = settings.url
        self._display_url = _display_url(settings.url)
        self._lock = threading.Lock()
        headers, auth = self._credentials()  # fail fast on a missing variable

        if settings.verify_tls and settings.ca_file and not os.path.isfile(settings.ca_file):
            raise MetricsError(f"Prometheus CA file {settings.ca_file} does not exist")

        # Heavy imports here, not at module level (STACK.md start-up budget).
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        # The library's default retry stalls ≈ 6 s on a refused connection and it has no
        # timeout: bound both. Read errors (a timeout after the query was sent) are not retried,
        # so a slow server costs about one timeout, and a struggling one gets no second query.
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=0,
            status=settings.retries,
            other=0,
            backoff_factor=RETRY_BACKOFF_FACTOR,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,  # hand back the last 5xx so its body reaches the message
            respect_retry_after_header=False,  # a Retry-After of minutes would stall a poll
        )
        session = requests.Session()
        # TLS verification is on unless turned off; a CA bundle, when given, is what verifies.
        session.verify = (settings.ca_file or True) if settings.verify_tls else False
        session.hooks["response"].append(_check_answer)
        self._client: PrometheusConnect = PrometheusConnect(
            url=settings.url,
            headers=headers,
            auth=auth,
            disable_ssl=not settings.verify_tls,
            retry=retry,
            session=session,
            timeout=settings.timeout_s,  # type: ignore[arg-type]  # the library says int; float works
            method="GET",
        )
        # PrometheusConnect mounted a plain adapter for the URL: ours obeys the call's deadline
        session.mount(settings.url, deadline_http_adapter(
            max_retries=retry, pool_connections=1, pool_maxsize=max(1, connections)))
        self._requests = requests

    # --- MetricsSource -------------------------------------------------------------------------

    def query(self, query: str) -> list[InstantValue]:
        """Evaluate ``query`` now; an empty list means it matched nothing.

        A scalar answer (``scalar(...)``, a number literal) is one value with empty labels.
        """
        result = self._call(
            lambda client, timeout: client.custom_query(query=query, timeout=timeout)
        )
        return instant_values(result)

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` over ``[start, end]`` every ``step`` seconds.

        Naive datetimes are taken as UTC. Prometheus's API takes whole seconds for start and end
        (the library rounds them); ``step`` may be fractional.
        """
        if not step > 0 or not math.isfinite(step):
            raise MetricsError(f"range query step must be a positive number of seconds, not {step}")
        start_utc = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
        end_utc = end if end.tzinfo is not None else end.replace(tzinfo=UTC)
        if end_utc < start_utc:
            raise MetricsError("range query ends before it starts")
        step_text = repr(float(step)) if step != int(step) else str(int(step))
        result = self._call(
            lambda client, timeout: client.custom_query_range(
                query=query, start_time=start_utc, end_time=end_utc, step=step_text,
                timeout=timeout,
            )
        )
        return range_series(result)

    def close(self) -> None:
        """Close the pooled connections. The object must not be used afterwards."""
        self._client.close()

    def __enter__(self) -> PrometheusMetrics:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------

    def _secret(self, secret: SecretFromEnv, what: str) -> str:
        """Read one secret from its environment variable; never put its value in a message."""
        value = os.environ.get(secret.env)
        if value is None or not value.strip():
            raise MetricsError(
                f"environment variable {secret.env} ({what} for Prometheus) is not set or empty"
            )
        value = value.strip()  # a token read from a file usually ends with a newline
        if _CONTROL.search(value):
            # requests would refuse it with a message that quotes the whole header value.
            raise MetricsError(
                f"environment variable {secret.env} ({what} for Prometheus) holds control "
                "characters and cannot be sent"
            )
        return value

    def _credentials(self) -> tuple[dict[str, str] | None, tuple[str, str] | None]:
        """Headers and basic-auth tuple, read from the environment now."""
        settings = self.settings
        if settings.bearer_token is not None:
            token = self._secret(settings.bearer_token, "bearer token")
            form = settings.bearer_token.format
            # The default format "{}" means "the token": a bearer_token is sent as a Bearer
            # credential. Any other format is the whole header value, e.g. "Token {}".
            header = f"Bearer {token}" if form == "{}" else form.replace("{}", token)
            return {"Authorization": header}, None
        if settings.basic_user is not None and settings.basic_password is not None:
            user = self._secret(settings.basic_user, "basic-auth user")
            password = self._secret(settings.basic_password, "basic-auth password")
            return None, (user, password)
        return None, None

    def _secrets(self) -> list[str]:
        """The secret values in force now, to scrub from any message as a last defence."""
        values = []
        for secret in (
            self.settings.bearer_token,
            self.settings.basic_user,
            self.settings.basic_password,
        ):
            if secret is not None:
                value = (os.environ.get(secret.env) or "").strip()
                if len(value) >= 4:  # scrubbing "ab" would mangle the message, not protect it
                    values.append(value)
        userinfo = urlsplit(self.url).password
        if userinfo:
            values.append(userinfo)
        return values

    def _scrub(self, message: str) -> str:
        return _one_line(scrub(message, self._secrets()))

    def _call(self, request: Callable[[PrometheusConnect, float], object]) -> object:
        """Run ``request(client, timeout)`` with fresh credentials within the deadline; turn
        every failure into one line."""
        headers, auth = self._credentials()
        with self._lock:
            # Replace, never mutate: a request in flight on another thread keeps a whole value.
            if self._client.headers != headers:
                self._client.headers = headers
            if self._client.auth != auth:
                self._client.auth = auth
        deadline_s = self.settings.deadline_s
        with Deadline(deadline_s) as deadline:
            try:
                return request(self._client, deadline.bound(self.settings.timeout_s))
            except MetricsError:
                raise
            except Exception as error:  # one place turns every failure into one short line
                if deadline.expired:
                    raise MetricsTimeout(
                        f"Prometheus at {self._display_url}: no complete answer within "
                        f"{_seconds(deadline_s)} s"
                    ) from None
                raise self._translate(error) from None

    def _translate(self, error: Exception) -> MetricsError:
        """The one-line MetricsError (or MetricsTimeout) that says what went wrong."""
        import urllib3.exceptions as urllib3_exc
        from prometheus_api_client.exceptions import PrometheusApiClientException

        exc = self._requests.exceptions
        where = f"Prometheus at {self._display_url}"
        timeout = _seconds(self.settings.timeout_s)

        # requests reports a timeout whose retries are spent as a ConnectionError wrapping
        # urllib3's MaxRetryError(ReadTimeoutError): look at the causes, not only the type.
        # (urllib3's NewConnectionError, e.g. "connection refused", subclasses ConnectTimeoutError.)
        chain = _chain(error)
        if isinstance(error, exc.ConnectTimeout) or any(
            isinstance(cause, urllib3_exc.ConnectTimeoutError)
            and not isinstance(cause, urllib3_exc.NewConnectionError)
            for cause in chain
        ):
            return MetricsTimeout(
                self._scrub(f"{where} did not accept a connection within {timeout} s")
            )
        if isinstance(error, exc.Timeout) or any(
            isinstance(cause, urllib3_exc.ReadTimeoutError | TimeoutError) for cause in chain
        ):
            return MetricsTimeout(f"Prometheus did not answer within {timeout} s")
        if isinstance(error, exc.ChunkedEncodingError | exc.ContentDecodingError):
            return MetricsError(
                self._scrub(f"{where} broke off its answer: {_connection_reason(error)}")
            )
        if isinstance(error, exc.SSLError):
            return MetricsError(self._scrub(f"{where}: TLS failed: {_ssl_reason(error)}"))
        if isinstance(error, exc.ConnectionError):
            return MetricsError(self._scrub(f"{where} is unreachable: {_connection_reason(error)}"))
        if isinstance(error, exc.InvalidJSONError | ValueError):
            return MetricsError(
                f"{where} sent an answer that is not Prometheus JSON (a proxy or login page?)"
            )
        if isinstance(error, KeyError | TypeError):
            return MetricsError(f"{where} sent an answer without data.result")
        if isinstance(error, PrometheusApiClientException):
            parsed = _status_and_body(str(error))
            if parsed is None:
                return MetricsError(self._scrub(f"{where}: {error}"))
            status, body = parsed
            text = _server_error_text(body)
            if status in (400, 422):
                # 400: the query does not parse (or a bad parameter); 422: it cannot be executed.
                return MetricsError(self._scrub(f"bad query: {text}"))
            if status in (401, 403):
                return MetricsError(
                    self._scrub(f"{where} refused the credentials (HTTP {status}): {text}")
                )
            if status == 503 and '"errorType":"timeout"' in body.replace(" ", ""):
                return MetricsTimeout(self._scrub(f"{where} timed out evaluating the query"))
            return MetricsError(self._scrub(f"{where} answered HTTP {status}: {text}"))
        if isinstance(error, exc.RequestException):
            return MetricsError(self._scrub(f"{where}: {type(error).__name__}: {error}"))
        return MetricsError(self._scrub(f"{where}: unexpected {type(error).__name__}: {error}"))


def _check_answer(response: Any, *_: Any, **__: Any) -> None:
    """A requests response hook: a 200 that is not Prometheus's success answer is an error.

    prometheus-api-client reads ``data.result`` of any 200 and would report a login page or a
    ``status: error`` answer as a bare KeyError or JSON error; this says what came back.
    """
    if response.status_code != 200:
        return
    text = response.text
    try:
        answer = json.loads(text)
    except ValueError:
        if looks_like_html(text):
            raise MetricsError(
                "Prometheus answered with an HTML page, not its JSON API (a login page or a "
                "proxy?)"
            ) from None
        raise MetricsError(
            "Prometheus sent an answer that is not JSON (cut short, or not Prometheus?)"
        ) from None
    if not isinstance(answer, dict):
        raise MetricsError("Prometheus sent an answer that is not a JSON object")
    status = answer.get("status")
    if status != "success":
        error = _one_line(str(answer.get("error") or "no error given"), 160)
        kind = answer.get("errorType")
        of = f" ({_one_line(str(kind), 40)})" if kind else ""
        raise MetricsError(f"Prometheus answered status={_one_line(str(status), 20)}{of}: {error}")
    data = answer.get("data")
    if not isinstance(data, dict) or "result" not in data:
        raise MetricsError("Prometheus sent an answer without data.result")


def _chain(error: BaseException) -> list[BaseException]:
    """The error and its causes/contexts/reasons (urllib3 nests them), without loops."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError; a str on ssl errors
        pending.extend([current.__cause__, current.__context__])
        pending.extend(x for x in (reason, *current.args) if isinstance(x, BaseException))
    return seen


def _connection_reason(error: BaseException) -> str:
    """'connection refused', 'connection reset', 'cannot resolve the host'..."""
    chain = _chain(error)
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
    for cause in chain:
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, ConnectionAbortedError | BrokenPipeError):
            return "connection closed"
    text = " ".join(str(cause) for cause in chain).lower()
    if "connection refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or (
        "name resolution" in text
    ):
        return "cannot resolve the host name"
    if "remote end closed" in text or "remotedisconnected" in text or "connection aborted" in text:
        return "the connection closed before an answer"
    if "connection reset" in text:
        return "connection reset"
    if "no route to host" in text or "network is unreachable" in text:
        return "no route to the host"
    return "connection failed"


def _ssl_reason(error: BaseException) -> str:
    text = " ".join(str(cause) for cause in _chain(error))
    if "CERTIFICATE_VERIFY_FAILED" in text:
        match = re.search(r"certificate verify failed: ([^()'\"]+)", text)
        detail = match.group(1).strip() if match else "certificate not trusted"
        return f"certificate verify failed: {detail}"
    if "WRONG_VERSION_NUMBER" in text:
        return "the server does not speak TLS on this port (try http://)"
    return _one_line(text, 120)

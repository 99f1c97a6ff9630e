"""A fake deploy/traffic API and a fake Prometheus on 127.0.0.1 that misbehave on purpose.

Both are :class:`FaultyServer`: a small HTTP/1.1 server on raw sockets (so it can do what a real
server in trouble does: drip one byte a second, hang after reading the request, reset the
connection half-way through a body, go away entirely) with faults switched on and off while it
runs, for every request or for one endpoint, forever or for the next N requests::

    with FakeDeployApi() as api:
        api.set_fault("drip", endpoint="rollback")        # only the rollback POST drips
        api.set_fault("500", times=2)                     # the next two requests, any endpoint
        ...
        api.clear_faults()

Every request is recorded (:attr:`FaultyServer.requests`: method, path, query, headers, body,
which fault it met), so a test can show what reached the server, and how often.

:class:`FakeDeployApi` keeps its own state (canary weight, live version, rollbacks done) and
answers the routes of docs/deploy-adapters.md's generic deploy API; :meth:`FakeDeployApi.traffic`
and :meth:`FakeDeployApi.deploy` give ``[traffic]`` / ``[deploy]`` sections that drive it.
Writes carry ``Idempotency-Key`` when the adapter sends one; the API records it per request, so
work that needs "was this rollback POSTed twice?" can read it back.

:class:`FakePrometheus` answers ``/api/v1/query`` for ``NAME{track="TRACK"}`` with the values set
in :attr:`FakePrometheus.values`, and has the data faults a metrics source can have on top of the
transport faults (NaN, +Inf, an empty result, stale or future timestamps, ``status: error``, two
series, a value that does not parse).
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

#: Faults of the transport, that any HTTP server can have.
HTTP_FAULTS: dict[str, str] = {
    "down": "nothing listens on the port: connection refused",
    "500": "HTTP 500 with an error body",
    "503": "HTTP 503 (a proxy in front of a restarting server)",
    "slow": "answers correctly, but only after slow_s seconds",
    "hang": "accepts and reads the request, then never answers",
    "drip": "answers correctly, one byte every drip_s seconds",
    "reset": "sends the headers and half the body, then resets the connection",
    "invalid_json": "HTTP 200 with a JSON body cut short",
    "html": "HTTP 200 with an HTML login page",
    "429": "HTTP 429 Too Many Requests with Retry-After: retry_after_s",
    "empty_body": "HTTP 200 with an empty body",
}
#: Faults of the data a metrics source answers with.
PROMETHEUS_DATA_FAULTS: dict[str, str] = {
    "nan": "the value is NaN",
    "inf": "the value is +Inf",
    "empty": "the result is empty: no series matched",
    "stale": "the sample is stamped 10 minutes ago",
    "future": "the sample is stamped 10 minutes ahead",
    "status_error": "HTTP 200 with status=error",
    "two_series": "two series where one is expected",
    "bad_value": "a value that is not a number",
    "bad_timestamp": "a timestamp that is not a number",
}
ALL_PROMETHEUS_FAULTS = {**HTTP_FAULTS, **PROMETHEUS_DATA_FAULTS}

LOGIN_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
              b"<form action='/login'><input name='user'></form></body></html>")


@dataclass
class Fault:
    """One switched-on fault: its kind, how many requests it still applies to, its knobs."""

    kind: str
    times: int | None = None  # None: until cleared
    slow_s: float = 3.0
    drip_s: float = 1.0
    retry_after_s: int = 120


@dataclass
class Request:
    """What the server saw of one request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, the raw text, or None
    endpoint: str
    fault: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_answer(status: int, data: Any) -> Answer:
    return Answer(status, json.dumps(data).encode())


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
            404: "Not Found", 405: "Method Not Allowed", 422: "Unprocessable Entity",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class FaultyServer:
    """An HTTP/1.1 server on 127.0.0.1 whose faults are switched while it runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._faults: dict[str | None, Fault] = {}
        self._listener: socket.socket | None = None
        self._port = 0
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._released = threading.Event()  # set to let "hang" handlers go
        self._accept_idle = threading.Event()  # the accept loop holds no listener
        self.requests: list[Request] = []

    # --- control ---------------------------------------------------------------------------------

    def start(self) -> FaultyServer:
        self._listen()
        thread = threading.Thread(target=self._accept_loop, name=f"{type(self).__name__}-accept",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._released.set()
        with self._lock:
            listener, self._listener = self._listener, None
            connections = list(self._connections)
        if listener is not None:
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultyServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def set_fault(self, kind: str, endpoint: str | None = None, times: int | None = None,
                  **knobs: Any) -> None:
        """Switch ``kind`` on for ``endpoint`` (None: every request), for ``times`` requests."""
        if kind not in ALL_PROMETHEUS_FAULTS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults[endpoint] = Fault(kind, times, **knobs)
            self._released.clear()
        if kind == "down":
            self._close_listener()
            self._drop_connections()

    def clear_faults(self) -> None:
        """Every fault off: hanging and dripping answers are let go, a down server listens."""
        with self._lock:
            was_down = any(f.kind == "down" for f in self._faults.values())
            self._faults.clear()
            self._released.set()
        if was_down:
            self._listen()

    def requests_to(self, endpoint: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{type(self).__name__}: condition not met in {timeout} s")
            time.sleep(0.01)

    # --- for subclasses --------------------------------------------------------------------------

    def endpoint_of(self, method: str, path: str, query: dict[str, list[str]]) -> str:
        return f"{method} {path}"

    def answer(self, request: Request, fault: Fault | None) -> Answer:
        raise NotImplementedError

    # --- machinery -------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(64)
        with self._lock:
            self._port = listener.getsockname()[1]
            self._listener = listener

    def _drop_connections(self) -> None:
        """A server that goes down takes its open (kept-alive) connections with it."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            self._accept_idle.clear()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept loop's select at once
            listener.close()
            # until the accept loop lets go of it, the kernel keeps the socket (and its backlog)
            # alive: a client would be reset, not refused. "down" means refused.
            self._accept_idle.wait(2.0)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener = self._listener
                if listener is None:
                    self._accept_idle.set()
            if listener is None:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([listener], [], [], 0.05)
                if not ready:
                    continue
                connection, _ = listener.accept()
            except (OSError, ValueError):
                continue  # closed under us ("down"): the loop waits for a new listener
            thread = threading.Thread(target=self._serve_connection, args=(connection,),
                                      daemon=True)
            thread.start()

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            key = endpoint if endpoint in self._faults else None
            fault = self._faults.get(key)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[key]
            return fault

    def _serve_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
        reader = connection.makefile("rb")
        try:
            while not self._stop.is_set():
                read = self._read_request(reader)
                if read is None:
                    return
                request, fault = read
                keep_alive = request.headers.get("connection", "").lower() != "close"
                if not self._respond(connection, request, fault) or not keep_alive:
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(connection)
            with contextlib.suppress(OSError):
                reader.close()
                connection.close()

    def _read_request(self, reader: Any) -> tuple[Request, Fault | None] | None:
        line = reader.readline(65537)
        if not line:
            return None
        try:
            method, target, _ = line.decode("latin-1").split(" ", 2)
        except ValueError:
            return None
        headers: dict[str, str] = {}
        while True:
            header = reader.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        raw = reader.read(length) if length else b""
        body: Any = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if method == "POST" and headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            query.update(parse_qs(raw.decode("utf-8", "replace")))
        endpoint = self.endpoint_of(method, path, query)
        fault = self._take_fault(endpoint)
        request = Request(method, path, query, headers, body, endpoint,
                          fault.kind if fault else None)
        with self._lock:
            self.requests.append(request)
        return request, fault

    def _respond(self, connection: socket.socket, request: Request, fault: Fault | None) -> bool:
        """Answer one request, faults applied; False when the connection is finished."""
        kind = fault.kind if fault else None
        if kind == "hang":
            self._released.wait()
            return False
        if kind == "slow" and fault is not None:
            self._released.wait(fault.slow_s)  # cleared early: answer now
        answer = self._faulted_answer(request, fault)
        head = (f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, 'Status')}\r\n"
                f"Content-Type: {answer.content_type}\r\n"
                f"Content-Length: {len(answer.body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                + "\r\n").encode("latin-1")
        if kind == "drip" and fault is not None:
            for byte in head + answer.body:
                if self._stop.is_set() or self._released.wait(fault.drip_s):
                    return False  # cleared: this connection is abandoned, the next is clean
                connection.sendall(bytes([byte]))
            return True
        if kind == "reset":
            connection.sendall(head + answer.body[: max(1, len(answer.body) // 2)])
            # SO_LINGER 0: close sends RST, as a crashing server or a load balancer does
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        connection.sendall(head + answer.body)
        return True

    def _faulted_answer(self, request: Request, fault: Fault | None) -> Answer:
        kind = fault.kind if fault else None
        if kind == "500":
            return json_answer(500, {"error": "internal error: database connection lost"})
        if kind == "503":
            return Answer(503, b"upstream connect error or disconnect/reset before headers",
                          "text/plain")
        if kind == "429" and fault is not None:
            return Answer(429, b'{"error": "rate limited"}',
                          headers={"Retry-After": str(fault.retry_after_s)})
        if kind == "html":
            return Answer(200, LOGIN_PAGE, "text/html; charset=utf-8")
        if kind == "empty_body":
            return Answer(200, b"", "application/json")
        answer = self.answer(request, fault)
        if kind == "invalid_json":
            return Answer(200, answer.body[: max(1, len(answer.body) // 2)], answer.content_type)
        return answer


# --- the deploy / traffic API --------------------------------------------------------------------

_ROUTE = re.compile(
    r"/api/services/([^/]+)/(weight|version|rollbacks|rollbacks/preflight|rollbacks/[^/]+)")
ENDPOINTS = ("set_weight", "current_weight", "current_version", "preflight", "rollback",
             "rollback_status")


class FakeDeployApi(FaultyServer):
    """A deploy/traffic API with its own state: canary weight, live version, rollbacks done.

    Endpoints are named as the adapter actions that call them: ``set_weight`` (PUT weight),
    ``current_weight`` (GET weight), ``current_version``, ``preflight``, ``rollback`` and
    ``rollback_status`` (GET rollbacks/KEY: the operation a rollback POST carrying that
    ``Idempotency-Key`` started, or 404); and ``webhook`` (POST /hooks/...), a chat webhook that
    keeps the messages posted to it. A rollback POST whose key the API already has is answered
    with that operation and done no second time (as an API that honours idempotency keys does);
    it is still recorded as a request, so a test sees every POST that was sent.
    """

    def __init__(self, weight: int = 0, version: str = "v1.4.1",
                 known_versions: tuple[str, ...] = ("v1.4.1", "v1.5.0")) -> None:
        super().__init__()
        self.weight = weight
        self.version = version
        self.known_versions = set(known_versions)
        self.rollbacks: list[str] = []  # targets, in the order the rollbacks were done
        self.operations: dict[str, dict[str, Any]] = {}  # by idempotency key
        self.messages: list[str] = []  # what was posted to /hooks/... (a chat webhook)

    def __enter__(self) -> FakeDeployApi:
        self.start()
        return self

    def endpoint_of(self, method: str, path: str, query: dict[str, list[str]]) -> str:
        if path.startswith("/hooks/"):
            return "webhook"
        match = _ROUTE.fullmatch(path)
        if match is None:
            return f"{method} {path}"
        what = match.group(2)
        if what == "weight":
            return "current_weight" if method == "GET" else "set_weight"
        if what.startswith("rollbacks/") and what != "rollbacks/preflight":
            return "rollback_status"
        return {"version": "current_version", "rollbacks": "rollback",
                "rollbacks/preflight": "preflight"}[what]

    def answer(self, request: Request, fault: Fault | None) -> Answer:
        endpoint = request.endpoint
        body = request.body if isinstance(request.body, dict) else {}
        with self._lock:
            if endpoint == "webhook":  # a chat webhook: Slack answers "ok"
                self.messages.append(str(body.get("text", "")))
                return Answer(200, b"ok", "text/plain")
            if endpoint == "current_weight":
                return json_answer(200, {"canary": {"weight": self.weight}})
            if endpoint == "set_weight":
                if not isinstance(body.get("weight"), int):
                    return json_answer(400, {"error": "body needs an integer 'weight'"})
                self.weight = body["weight"]
                return json_answer(200, {"canary": {"weight": self.weight}})
            if endpoint == "current_version":
                return json_answer(200, {"items": [{"track": "stable", "version": self.version}]})
            if endpoint == "preflight":
                target = request.query.get("target", [""])[0]
                known = target in self.known_versions
                return json_answer(200, {"ok": known, "checks": [
                    {"name": "image exists", "ok": known, "detail": target}]})
            if endpoint == "rollback_status":
                key = request.path.rsplit("/", 1)[-1]
                operation = self.operations.get(key)
                if operation is None:
                    return json_answer(404, {"error": f"no operation {key}"})
                return json_answer(200, {"operation": operation})
            if endpoint == "rollback":
                wanted = body.get("to")
                key = request.headers.get("idempotency-key")
                if key and key in self.operations:
                    return json_answer(202, {"operation": self.operations[key]})
                if wanted not in self.known_versions:
                    return json_answer(422, {"error": f"unknown version {wanted!r}"})
                self.rollbacks.append(str(wanted))
                self.version = str(wanted)
                self.weight = 0
                operation = {"id": f"op-{len(self.rollbacks)}", "to": wanted, "status": "done"}
                if key:
                    self.operations[key] = operation
                return json_answer(202, {"operation": operation})
        return json_answer(404, {"error": f"no route {request.method} {request.path}"})

    def traffic(self, **overrides: Any) -> dict[str, Any]:
        """A ``[traffic]`` section (kind http) that drives this API."""
        return {
            "kind": "http", "base_url": self.url, "timeout_s": 1.0, "deadline_s": 2.0,
            "retries": 1, "headers": {"Idempotency-Key": "{idempotency_key}"},
            "actions": {
                "set_weight": {"method": "PUT", "url": "{base_url}/api/services/{service}/weight",
                               "body": {"weight": "{percent}"}, "result_path": "canary.weight"},
                "current_weight": {"url": "{base_url}/api/services/{service}/weight",
                                   "result_path": "canary.weight"},
            },
            **overrides,
        }

    def deploy(self, **overrides: Any) -> dict[str, Any]:
        """A ``[deploy]`` section (kind http) that drives this API: the rollback carries the
        console's idempotency key, and can be looked up by it (``rollback_status``)."""
        return {
            "kind": "http", "base_url": self.url, "timeout_s": 1.0, "deadline_s": 2.0,
            "retries": 1, "headers": {"Idempotency-Key": "{idempotency_key}"},
            "actions": {
                "rollback_status": {"url": "{base_url}/api/services/{service}/rollbacks/"
                                           "{idempotency_key}",
                                    "result_path": "operation.id"},
                "current_version": {"url": "{base_url}/api/services/{service}/version",
                                    "result_path": "items.0.version"},
                "preflight": {"url": "{base_url}/api/services/{service}/rollbacks/preflight"
                                     "?target={target}"},
                "rollback": {"method": "POST",
                             "url": "{base_url}/api/services/{service}/rollbacks",
                             "body": {"to": "{target}"}, "result_path": "operation.id",
                             "expect_status": [202]},
            },
            **overrides,
        }


# --- Prometheus ----------------------------------------------------------------------------------

_SELECTOR = re.compile(r'^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*\{\s*track\s*=\s*"([^"]*)"\s*\}\s*$')


class FakePrometheus(FaultyServer):
    """``/api/v1/query`` for ``NAME{track="TRACK"}``: one series with ``values[(NAME, TRACK)]``.

    A name/track pair missing from :attr:`values` matches nothing (an empty result). Endpoints
    are the tracks (``canary``, ``baseline``), so a fault can hit one track only. Timestamps
    come from ``clock`` (unix seconds; the real clock by default).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.values: dict[tuple[str, str], float] = {}

    def __enter__(self) -> FakePrometheus:
        self.start()
        return self

    def set_tracks(self, name: str, canary: float | None, baseline: float | None) -> None:
        with self._lock:
            for track, value in (("canary", canary), ("baseline", baseline)):
                if value is None:
                    self.values.pop((name, track), None)
                else:
                    self.values[(name, track)] = value

    def endpoint_of(self, method: str, path: str, query: dict[str, list[str]]) -> str:
        match = _SELECTOR.match((query.get("query") or [""])[0])
        return match.group(2) if match else "query"

    def answer(self, request: Request, fault: Fault | None) -> Answer:
        if request.path != "/api/v1/query":
            return json_answer(404, {"status": "error", "error": "not found"})
        query = (request.query.get("query") or [""])[0]
        match = _SELECTOR.match(query)
        if match is None:
            return json_answer(400, {"status": "error", "errorType": "bad_data",
                                     "error": f"parse error: cannot read {query[:40]!r}"})
        name, track = match.groups()
        kind = fault.kind if fault else None
        if kind == "status_error":
            return json_answer(200, {"status": "error", "errorType": "execution",
                                     "error": "query processing would load too many samples"})
        now = self.clock()
        with self._lock:
            value = self.values.get((name, track))
        if value is None or kind == "empty":
            return self._vector([])
        ts: Any = now
        text: Any = repr(float(value))
        if kind == "nan":
            text = "NaN"
        elif kind == "inf":
            text = "+Inf"
        elif kind == "bad_value":
            text = "12,5"
        elif kind == "stale":
            ts = now - 600
        elif kind == "future":
            ts = now + 600
        elif kind == "bad_timestamp":
            ts = "yesterday"
        series = [{"metric": {"__name__": name, "track": track, "pod": "a"}, "value": [ts, text]}]
        if kind == "two_series":
            series.append({"metric": {"__name__": name, "track": track, "pod": "b"},
                           "value": [ts, repr(float(value) / 2)]})
        return self._vector(series)

    @staticmethod
    def _vector(result: list[dict[str, Any]]) -> Answer:
        return json_answer(200, {"status": "success",
                                 "data": {"resultType": "vector", "result": result}})

    def metrics(self, **overrides: Any) -> dict[str, Any]:
        """A ``[metrics]`` section that reads this server."""
        return {"kind": "prometheus", "url": self.url, "timeout_s": 1.0, "deadline_s": 2.0,
                "retries": 1, **overrides}


@contextlib.contextmanager
def running(*servers: FaultyServer) -> Iterator[None]:
    for server in servers:
        server.start()
    try:
        yield
    finally:
        for server in servers:
            server.stop()

"""A real deploy/traffic HTTP API on 127.0.0.1, for testing the ``http`` adapters.

:class:`DeployApi` runs a :class:`http.server.ThreadingHTTPServer` on a free port in a background
thread. It keeps a canary weight and a live version, and can be told to misbehave the ways real
deploy APIs do during an incident: answer 500 with a body, hang, report the wrong version, accept
a rollback that never completes, demand a bearer token (and echo a wrong one back, as careless
servers do). It counts requests per ``(method, path)`` and records idempotency keys and JSON
bodies, so tests can assert retries and their absence.

Routes (``{s}`` is any service name; the path is matched after URL-decoding):

=======  ======================================  =============================================
GET      /api/services/{s}/weight                ``{"canary": {"weight": W}}``
PUT      /api/services/{s}/weight                body ``{"weight": N}`` → sets W, echoes it
GET      /api/services/{s}/version               ``{"items": [{"track": "stable", ...}]}``
POST     /api/services/{s}/rollbacks             body ``{"to": V}`` → 202 ``{"operation": ...}``
GET      /api/services/{s}/rollbacks/preflight   ``?target=V`` → ``{"ok": ..., "checks": [...]}``
=======  ======================================  =============================================

:meth:`DeployApi.script` queues canned answers for one ``(method, path)``; they are used, in order,
before the route's normal behaviour.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class Canned:
    """One scripted answer: status, body (JSON-encoded unless str/bytes), delay before answering."""

    status: int = 200
    body: Any = ""
    delay_s: float = 0.0
    content_type: str | None = None


@dataclass
class Request:
    """What the server saw of one request."""

    method: str
    path: str  # decoded path, without the query string
    raw_path: str  # as sent, with the query string
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it is not JSON, or None


@dataclass
class DeployApi:
    """The fake API's state and knobs; ``start()`` it (or use it as a context manager)."""

    weight: Any = 0
    version: str = "v1.4.2"
    #: Versions a rollback may go to; preflight says no to anything else.
    known_versions: set[str] = field(default_factory=lambda: {"v1.4.1", "v1.4.2", "v1.5.0"})
    #: If set, GET .../version reports this instead of the real version.
    wrong_version: str | None = None
    #: If False, a rollback is accepted (202) but the live version never changes.
    rollback_completes: bool = True
    #: If set, requests need ``Authorization: Bearer <token>``; a wrong one is echoed in a 401.
    token: str | None = None

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    idempotency_keys: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._scripts: dict[tuple[str, str], deque[Canned]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._operations = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------

    def start(self) -> DeployApi:
        api = self

        class Handler(_Handler):
            owner = api

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases handlers that are "hanging"
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> DeployApi:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the API first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def script(self, method: str, path: str, *answers: Canned) -> None:
        """Queue canned answers for ``method path`` (used before the normal behaviour)."""
        with self._lock:
            self._scripts[(method, path)].extend(answers)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.counts[(method, path)]

    # --- request handling (called from the server's threads) ------------------------------------

    def _handle(self, request: Request) -> Canned:
        with self._lock:
            self.counts[(request.method, request.path)] += 1
            self.requests.append(request)
            key = request.headers.get("idempotency-key")
            if key is None and isinstance(request.body, dict):
                key = request.body.get("idempotency_key")
            if key is not None:
                self.idempotency_keys[request.path].append(key)
            queue = self._scripts.get((request.method, request.path))
            canned = queue.popleft() if queue else None
        if canned is not None:
            if canned.delay_s:
                self._stop.wait(canned.delay_s)
            return canned
        if self.token is not None:
            given = request.headers.get("authorization", "")
            if given != f"Bearer {self.token}":
                # careless servers echo what they got: the adapter must scrub it
                return Canned(401, {"error": f"invalid credentials {given!r}"})
        return self._route(request)

    def _route(self, request: Request) -> Canned:
        match = re.fullmatch(
            r"/api/services/([^/]+)/(weight|version|rollbacks|rollbacks/preflight)", request.path
        )
        if match is None:
            return Canned(404, {"error": f"no route {request.method} {request.path}"})
        service, what = match.groups()
        with self._lock:
            if what == "weight" and request.method == "GET":
                return Canned(200, {"service": service, "canary": {"weight": self.weight}})
            if what == "weight" and request.method in ("PUT", "POST"):
                body = request.body if isinstance(request.body, dict) else {}
                if "weight" not in body:
                    return Canned(400, {"error": "body needs 'weight'"})
                self.weight = body["weight"]
                return Canned(200, {"service": service, "canary": {"weight": self.weight}})
            if what == "version" and request.method == "GET":
                live = self.wrong_version or self.version
                return Canned(200, {
                    "service": service,
                    "items": [{"track": "stable", "version": live}],
                    "status": {"version": live},
                })
            if what == "rollbacks" and request.method == "POST":
                body = request.body if isinstance(request.body, dict) else {}
                target = body.get("to")
                if target not in self.known_versions:
                    return Canned(422, {"error": f"unknown version {target!r}"})
                self._operations += 1
                if self.rollback_completes:
                    self.version = target
                return Canned(202, {"operation": {"id": f"op-{self._operations}",
                                                  "state": "running"}})
            if what == "rollbacks/preflight" and request.method == "GET":
                query = parse_qs(urlsplit(request.raw_path).query)
                target = query.get("target", [""])[0]
                known = target in self.known_versions
                return Canned(200, {
                    "ok": known,
                    "checks": [
                        {"name": "image exists", "ok": known,
                         "detail": f"{target} is in the registry" if known
                         else f"{target} is not in the registry"},
                        {"name": "migrations reversible", "ok": True, "detail": "none pending"},
                    ],
                })
        return Canned(405, {"error": f"{request.method} not allowed on {request.path}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a "hanging" handler must not keep the test process alive
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # the adapter hangs up on a slow answer on purpose; a broken pipe here is expected
        pass


class _Handler(BaseHTTPRequestHandler):
    owner: DeployApi
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
        request = Request(
            method=self.command,
            path=unquote(urlsplit(self.path).path),
            raw_path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        canned = self.owner._handle(request)
        if isinstance(canned.body, bytes):
            payload, ctype = canned.body, "application/octet-stream"
        elif isinstance(canned.body, str):
            payload, ctype = canned.body.encode(), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(canned.body).encode(), "application/json"
        try:
            self.send_response(canned.status)
            self.send_header("Content-Type", canned.content_type or ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

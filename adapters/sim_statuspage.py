"""A status page stand-in on 127.0.0.1: the Atlassian Statuspage API v1's incident calls, as
the real one answers them, for the demo (``make demo-flagger``) and the tests.

It keeps the incidents it was given and every request it saw (:attr:`StatuspageStub.seen`), and
answers in the API's shapes: an incident object (``id``, ``name``, ``status``, ``impact``,
``shortlink``, ``components``, ``incident_updates`` newest first, ``created_at``...), 201 for a
create, 200 for an update; ``{"error": "Could not authenticate"}`` (401) without the page's
``OAuth`` key; 404 ``{"error": "The requested resource could not be found."}`` for an unknown page
or incident; 422 ``{"error": ["Status is not included in the list"]}`` for an unknown status;
420 ``{"error": "Rate limit exceeded"}`` when :attr:`rate_limited`. :attr:`hang_next` holds the
next answer back (a create whose answer is lost, after the incident was made).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_STATUSES = ("investigating", "identified", "monitoring", "resolved")
_COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage")
_IMPACT = {"major_outage": "critical", "partial_outage": "major",
           "degraded_performance": "minor", "operational": "none"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


@dataclass
class Seen:
    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class StatuspageStub:
    """The API of one page; ``start()`` it (or use it as a context manager)."""

    page_id: str = "kctbh9vrtdwd"
    api_key: str = "b3f1c9e2-7a51-4d0e-9c66-5b0d7e4a2c18"
    components: dict[str, str] = field(default_factory=lambda: {
        "8kbf7d35c070": "Support transcripts"})
    rate_limited: bool = False
    hang_next: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the API ---------------------------------------------------------------------------------

    def route(self, method: str, path: str, authorization: str, body: Any) -> tuple[int, Any]:
        if authorization != f"OAuth {self.api_key}":
            return 401, {"error": "Could not authenticate"}
        if self.rate_limited:
            return 420, {"error": "Rate limit exceeded"}
        prefix = f"/v1/pages/{self.page_id}/incidents"
        if not path.startswith(prefix):
            return 404, {"error": "The requested resource could not be found."}
        rest = path[len(prefix):].strip("/")
        if method == "GET" and rest == "unresolved":
            return 200, [dict(i) for i in self.incidents.values() if i["status"] != "resolved"]
        if method == "POST" and not rest:
            return self._create(body)
        if method in ("PATCH", "PUT") and rest in self.incidents:
            return self._update(self.incidents[rest], body)
        return 404, {"error": "The requested resource could not be found."}

    def _fields(self, body: Any) -> tuple[dict[str, Any], str | None]:
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict):
            return {}, "incident is missing"
        status = incident.get("status", "investigating")
        if status not in _STATUSES:
            return {}, "Status is not included in the list"
        for component, value in (incident.get("components") or {}).items():
            if component not in self.components:
                return {}, f"Component {component} not found"
            if value not in _COMPONENT_STATUSES:
                return {}, "Component status is not included in the list"
        return incident, None

    def _components(self, incident: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": cid, "page_id": self.page_id, "name": self.components[cid],
                 "status": status, "group_id": None, "showcase": True}
                for cid, status in (incident.get("components") or {}).items()]

    def _update_record(self, record: dict[str, Any], fields: dict[str, Any]) -> None:
        now = _now()
        components = self._components(fields)
        record["incident_updates"].insert(0, {
            "id": _id(), "incident_id": record["id"], "status": record["status"],
            "body": str(fields.get("body") or ""), "created_at": now, "updated_at": now,
            "display_at": now, "deliver_notifications": bool(
                fields.get("deliver_notifications", True)),
            "affected_components": [{"code": c["id"], "name": c["name"],
                                     "old_status": "operational", "new_status": c["status"]}
                                    for c in components],
        })
        if components:
            record["components"] = components
            worst = max((c["status"] for c in components), key=_COMPONENT_STATUSES.index)
            record["impact"] = _IMPACT[worst]
        record["updated_at"] = now
        if record["status"] == "monitoring":
            record["monitoring_at"] = now
        if record["status"] == "resolved":
            record["resolved_at"] = now

    def _create(self, body: Any) -> tuple[int, Any]:
        fields, error = self._fields(body)
        if error:
            return 422, {"error": [error]}
        if not str(fields.get("name") or "").strip():
            return 422, {"error": ["Name can't be blank"]}
        now = _now()
        incident_id = _id()
        record: dict[str, Any] = {
            "id": incident_id, "page_id": self.page_id, "name": fields["name"],
            "status": fields.get("status", "investigating"), "impact": "none",
            "impact_override": None, "created_at": now, "updated_at": now, "started_at": now,
            "monitoring_at": None, "resolved_at": None, "components": [],
            "incident_updates": [], "metadata": {},
            "shortlink": f"https://stspg.io/{incident_id[:9]}",
        }
        self._update_record(record, fields)
        self.incidents[incident_id] = record
        return 201, record

    def _update(self, record: dict[str, Any], body: Any) -> tuple[int, Any]:
        fields, error = self._fields(body)
        if error:
            return 422, {"error": [error]}
        record["status"] = fields.get("status", record["status"])
        if fields.get("name"):
            record["name"] = fields["name"]
        self._update_record(record, fields)
        return 200, record

    # --- HTTP ------------------------------------------------------------------------------------

    def start(self) -> StatuspageStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with stub.lock:
                    stub.seen.append(Seen(self.command, self.path,
                                          self.headers.get("Authorization", ""), body))
                    code, answer = stub.route(self.command, self.path.split("?", 1)[0],
                                              self.headers.get("Authorization", ""), body)
                    hang, stub.hang_next = stub.hang_next, 0.0
                if hang:
                    time.sleep(hang)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (its deadline): the incident exists anyway

            do_GET = do_POST = do_PATCH = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True, name="statuspage-stub")
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StatuspageStub:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


__all__ = ["StatuspageStub"]

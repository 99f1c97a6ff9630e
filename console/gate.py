"""``warroom gate``: the HTTP server Flagger's gate webhooks call, answered from the record.

One server serves one incident's canary. Flagger POSTs its ``CanaryWebhookPayload`` to
``/gate/<type>`` (``confirm-rollout``, ``confirm-traffic-increase``, ``confirm-promotion``,
``rollback``): the answer is 200 when the record opens that gate for that run, 403 otherwise,
with the reason as the body (Flagger puts a refusal's body in its Kubernetes events, so
``kubectl describe canary`` says why it waits). The decision itself is
:func:`console.commands.ask_flagger_gate`; this module only speaks HTTP.

Nothing is kept in memory between calls: a restarted server answers exactly as the one before
it did. Bound to 127.0.0.1 by default (``[gate] listen``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from console import commands, flagger
from console.config import GateSettings
from console.model import utcnow
from console.store import RecordStore

#: Seconds a client has to send its request (Flagger's default webhook timeout is 10 s).
REQUEST_TIMEOUT_S = 10.0


def split_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a bind address."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class GateServer:
    """The gate of one incident; :meth:`start` serves it on a thread, :meth:`stop` ends it."""

    def __init__(self, store: RecordStore, incident_id: int, settings: GateSettings, *,
                 listen: str | None = None, log: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.incident_id = incident_id
        self.settings = settings
        self.listen = listen or settings.listen
        self.log = log or (lambda _line: None)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._canary: str | None = None

    # --- answering ------------------------------------------------------------------------------

    def canary(self) -> str:
        """``name.namespace`` of the Canary this incident's gate is for (from its service)."""
        if self._canary is None:
            service = self.store.state(self.incident_id).service
            self._canary = self.settings.canary_name(service)
        return self._canary

    def token(self) -> str | None:
        name = self.settings.token_env
        return (os.environ.get(name) or "").strip() or None if name else None

    def answer(self, gate: str, body: bytes) -> tuple[int, str]:
        """The HTTP status and body for one call of Flagger's webhook at ``gate``."""
        if gate not in flagger.GATES:
            return 404, f"no gate {gate!r}: use /gate/" + " or /gate/".join(flagger.GATES)
        try:
            payload = flagger.parse_payload(body)
        except flagger.PayloadError as error:
            return 400, f"not Flagger's webhook payload: {error}"
        if self.settings.token_env and not flagger.token_matches(payload, self.token()):
            # not recorded: anyone who can reach the port could otherwise fill the timeline
            return 403, "Forbidden: metadata.token is missing or wrong"
        try:
            canary = self.canary()
        except Exception as error:
            return 403, f"Forbidden: the record could not be read ({type(error).__name__}): closed"
        answer = commands.ask_flagger_gate(self.store, self.incident_id, gate=gate,
                                           payload=payload, canary=canary, ts=utcnow())
        self.log(f"{gate} {payload.canary} run {payload.checksum} ({payload.phase}) → "
                 f"{answer.word}: {answer.detail}")
        if answer.open:
            return 200, f"Approved: {answer.detail}"
        return 403, f"Forbidden: {answer.detail}"

    # --- serving --------------------------------------------------------------------------------

    def start(self) -> GateServer:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "warroom-gate"
            sys_version = ""
            timeout = REQUEST_TIMEOUT_S

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, text: str) -> None:
                data = (text + "\n").encode("utf-8", "backslashreplace")
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] == "/healthz":
                    self._send(200, "ok")
                else:
                    self._send(404 if not self.path.startswith("/gate/") else 405,
                               "POST Flagger's webhook payload to /gate/<type>")

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                if not path.startswith("/gate/"):
                    self._send(404, "POST Flagger's webhook payload to /gate/<type>")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= flagger.MAX_BODY:
                    self._send(413 if length > 0 else 400,
                               "a Content-Length up to 64 KiB is required")
                    return
                body = self.rfile.read(length)
                try:
                    code, text = gate.answer(path.removeprefix("/gate/").strip("/"), body)
                except Exception as error:  # never open on a fault
                    code, text = 403, f"Forbidden: internal error ({type(error).__name__})"
                self._send(code, text)

        host, port = split_listen(self.listen)
        server_class = ThreadingHTTPServer
        if ":" in host:
            import socket

            class V6(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = V6
        self._server = server_class((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,),
                                        daemon=True, name="warroom-gate")
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host, _ = split_listen(self.listen)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GateServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve(store: RecordStore, incident_id: int, settings: GateSettings, *,
          listen: str | None = None, ready: Callable[[GateServer], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM (the ``warroom gate`` command)."""
    import signal

    stop = threading.Event()

    def log(line: str) -> None:
        from console.model import format_ts

        print(f"{format_ts(utcnow())[11:19]} {line}", file=sys.stdout, flush=True)

    server = GateServer(store, incident_id, settings, listen=listen, log=log)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server.start()
        if ready is not None:
            ready(server)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


__all__ = ["GateServer", "serve", "split_listen"]

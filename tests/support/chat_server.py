"""A chat service on 127.0.0.1 that records what it receives and answers as the real one does.

:class:`ChatServer` serves Mattermost's incoming webhooks (``POST /hooks/<token>``: 200 with the
text body ``ok``; an unknown token 400 with Mattermost's JSON error, ``web.incoming_webhook.
invalid.app_error`` / "Invalid webhook.") and any other path as a plain JSON receiver (apprise's
``json://``; 200 ``{}``). ``status`` forces an answer (a 500 from a proxy, a 429), ``drip`` sends
the answer one byte a second (a target that never finishes answering).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MATTERMOST_INVALID = {"id": "web.incoming_webhook.invalid.app_error",
                      "message": "Invalid webhook.", "detailed_error": "",
                      "request_id": "7xxqg3zn4pfb5jobx8w1wnq6ha", "status_code": 400}


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ChatServer:
    tokens: set[str] = field(default_factory=lambda: {"w8q7a9bmupgjxkhq3w4rf1yj1e"})
    status: int | None = None
    drip: bool = False
    received: list[Received] = field(default_factory=list)

    def start(self) -> ChatServer:
        chat = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                chat.received.append(Received("POST", self.path, dict(self.headers), body))
                code, kind, text = chat.answer(self.path)
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if chat.drip:
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(1.0)
                else:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def answer(self, path: str) -> tuple[int, str, str]:
        if self.status is not None:
            return self.status, "text/html", "<html><body>502 Bad Gateway</body></html>"
        if path.startswith("/hooks/"):
            if path.removeprefix("/hooks/") in self.tokens:
                return 200, "text/plain", "ok"
            return 400, "application/json", json.dumps(MATTERMOST_INVALID)
        return 200, "application/json", "{}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

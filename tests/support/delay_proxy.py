"""A TCP proxy on 127.0.0.1 that holds each connection for a while before forwarding it.

It makes a slow Prometheus out of a real one: a client's connection is accepted at once (so a
connect timeout does not fire), and every chunk the client sends (a GET request, on a new or a
kept-alive connection) is held for ``delay`` seconds before it is forwarded; answers flow back
unchanged. ``delay`` may be changed while the proxy runs. With ``only``, just the chunks that
contain those bytes are held (one slow query among fast ones). It also keeps the first bytes
of what clients sent (``requests_seen``, the latest 100 chunks), so a test can check the headers
that went out.

    with DelayProxy(("127.0.0.1", server.port), delay=2.0) as proxy:
        PrometheusMetrics(PrometheusSettings(url=proxy.url, timeout_s=0.5, retries=0))
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading

#: How much of each chunk a client sent is kept for inspection, and how many chunks.
RECORD_BYTES = 8192
RECORD_CHUNKS = 100


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        client: socket.socket = self.request
        try:
            upstream = socket.create_connection(proxy.upstream, timeout=5)
        except OSError:
            return
        with upstream:
            proxy._pipe(client, upstream)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: DelayProxy


class DelayProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``, each request (or each one containing
    ``only``) ``delay`` seconds late."""

    def __init__(self, upstream: tuple[str, int], delay: float = 0.0,
                 only: bytes | None = None) -> None:
        self.upstream = upstream
        self.delay = delay
        self.only = only
        self.stopping = threading.Event()
        self.requests_seen: list[bytes] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DelayProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
            name=f"delay-proxy-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, release held connections and wait (bounded) for the thread."""
        self.stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until one side closes or the proxy stops."""
        sockets = [client, upstream]
        while not self.stopping.is_set():
            readable, _, _ = select.select(sockets, [], [], 0.1)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if sock is client:
                    with self._lock:
                        self.requests_seen.append(data[:RECORD_BYTES])
                        del self.requests_seen[:-RECORD_CHUNKS]
                    # Hold the request; a stopping proxy cuts the wait short.
                    held = self.only is None or self.only in data
                    if held and self.delay > 0 and self.stopping.wait(self.delay):
                        return
                other = upstream if sock is client else client
                with contextlib.suppress(OSError):
                    other.sendall(data)

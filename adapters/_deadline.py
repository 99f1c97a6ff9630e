"""A total deadline for one adapter call: the whole exchange, not one read.

A per-read timeout does not bound a call: a server that answers one byte a second never lets a
read time out, and a call to it never ends. :class:`Deadline` bounds the whole exchange. The
calling thread opens one (``with Deadline(10) as deadline:``) and makes its HTTP request as usual;
the client libraries hand each socket the request uses to :meth:`Deadline.guard` (httpx through
its ``trace`` extension, :meth:`Deadline.trace`; requests/urllib3 through
:func:`deadline_http_adapter`). When the deadline passes, a timer shuts those sockets down: the
read or write blocked on them returns at once with an error, the library closes the connection,
and the caller sees :attr:`Deadline.expired` and reports "no complete answer within 10 s".

Why sockets are shut down rather than the call abandoned in a thread: an abandoned thread keeps
its connection (and a place in a connection pool) for as long as the server keeps dripping, so a
fault that lasts fills the pool and the adapter stays stuck after the fault ends. A shut-down
connection is gone; the next call starts clean.

``guard`` keeps its own duplicate of the socket's file descriptor until the deadline is closed, so
the timer can never shut down an unrelated socket that reused a closed descriptor's number; and a
duplicate taken before a TLS handshake still reaches the same connection after it (the handshake
is bounded too).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

_local = threading.local()


class Deadline:
    """The moment by which one adapter call must be complete; a context manager."""

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"a deadline must be a positive number of seconds, not {seconds!r}")
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._guarded: list[socket.socket] = []
        self._expired = False
        self._closed = False
        self._timer: threading.Timer | None = None
        self._outer: Deadline | None = None

    # --- the clock -------------------------------------------------------------------------------

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        """The deadline has passed (the guarded sockets are, or are being, shut down)."""
        return self._expired or time.monotonic() >= self.expires_at

    def bound(self, timeout_s: float) -> float:
        """``timeout_s`` cut to the time left (at least a millisecond: 0 means "no timeout")."""
        return max(0.001, min(timeout_s, self.remaining()))

    # --- as a context manager --------------------------------------------------------------------

    def __enter__(self) -> Deadline:
        self._outer = getattr(_local, "deadline", None)
        _local.deadline = self
        self._timer = threading.Timer(self.remaining(), self._expire)
        self._timer.name = "adapter-deadline"
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        _local.deadline = self._outer
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            guarded, self._guarded = self._guarded, []
        for duplicate in guarded:
            with contextlib.suppress(OSError):
                duplicate.close()

    def _expire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._expired = True
            for duplicate in self._guarded:
                _shut(duplicate)

    # --- what the client libraries call ----------------------------------------------------------

    def guard(self, sock: socket.socket | None) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it already has)."""
        if sock is None:
            return
        try:
            duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        except (OSError, ValueError):
            return  # already closed: nothing left to cut
        with self._lock:
            if self._closed:
                duplicate.close()
                return
            self._guarded.append(duplicate)
            if self._expired:
                _shut(duplicate)

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpx/httpcore ``trace`` extension: guard each new connection's socket."""
        if event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            stream = info.get("return_value")
            get_extra_info = getattr(stream, "get_extra_info", None)
            if callable(get_extra_info):
                self.guard(get_extra_info("socket"))


def _shut(sock: socket.socket) -> None:
    # shutdown acts on the connection, not the descriptor: the reader blocked on the original
    # descriptor wakes up with end-of-file at once
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def current_deadline() -> Deadline | None:
    """The deadline the calling thread is inside, if any."""
    return getattr(_local, "deadline", None)


def deadline_http_adapter(**kwargs: Any) -> Any:
    """A ``requests`` transport adapter whose connections obey the caller's :class:`Deadline`.

    Each connection's socket is guarded when it is made (so a TLS handshake is bounded too) and
    again each time a request is sent on it (a kept-alive connection is reused by later calls).
    ``kwargs`` go to :class:`requests.adapters.HTTPAdapter` (``max_retries``...).
    """
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Guarded:
        """Mixed into urllib3's connection classes."""

        sock: socket.socket | None

        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()  # type: ignore[misc]
            deadline = current_deadline()
            if deadline is not None:
                deadline.guard(sock)
            return sock

        def request(self, *args: Any, **kw: Any) -> Any:
            deadline = current_deadline()
            if deadline is not None and self.sock is not None:
                deadline.guard(self.sock)
            return super().request(*args, **kw)  # type: ignore[misc]

    class _HTTPConnection(_Guarded, HTTPConnection):
        pass

    class _HTTPSConnection(_Guarded, HTTPSConnection):
        pass

    class _HTTPPool(HTTPConnectionPool):
        ConnectionCls = _HTTPConnection

    class _HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = _HTTPSConnection

    pools = {"http": _HTTPPool, "https": _HTTPSPool}

    class _DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kw: Any) -> None:
            super().init_poolmanager(*args, **kw)
            self.poolmanager.pool_classes_by_scheme = dict(pools)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if hasattr(manager, "pool_classes_by_scheme"):
                manager.pool_classes_by_scheme = dict(pools)
            return manager

    return _DeadlineAdapter(**kwargs)


_urllib3_guarded = False
_urllib3_lock = threading.Lock()


def guard_urllib3() -> None:
    """Make every new urllib3 connection of this process obey the :class:`Deadline` its thread
    is inside (and nothing else: outside a deadline it is unchanged).

    For libraries that call ``requests.post`` themselves — apprise does, with a new session per
    call — so no transport adapter can be mounted (:func:`deadline_http_adapter` is the way
    where one can). Idempotent; HTTPS connections inherit the hook.
    """
    global _urllib3_guarded
    with _urllib3_lock:
        if _urllib3_guarded:
            return
        from urllib3.connection import HTTPConnection

        original = HTTPConnection._new_conn

        def _new_conn(self: HTTPConnection) -> socket.socket:
            sock = original(self)
            deadline = current_deadline()
            if deadline is not None:
                deadline.guard(sock)
            return sock

        HTTPConnection._new_conn = _new_conn  # type: ignore[method-assign]
        _urllib3_guarded = True


__all__ = ["Deadline", "current_deadline", "deadline_http_adapter", "guard_urllib3"]

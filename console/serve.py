"""``warroom serve ID``: the read-only watch console in browsers, served with textual-serve.

For the people outside the bastion (support, an executive, an engineer in another region),
behind the team's reverse proxy. What a browser can reach, and nothing more:

- Every URL starts with this run's token: ``/<token>/`` (the page), ``/<token>/static/…`` (the
  terminal's script, style and font, from textual-serve's package) and ``/<token>/ws`` (the
  session). Any other URL, a missing token or a wrong one is the same plain 403 page. The token
  is random (256 bits), made at start, printed once, and compared in constant time.
- Each browser session is one ``warroom watch ID`` process: the read-only console, which opens
  the record read-only and refuses every commander key. Its argv is fixed when the server starts
  and it is started without a shell; nothing a browser sends (its URL, its size, its keys)
  chooses the program, its arguments or its environment. A browser's messages are keys for that
  process, its size (clamped), ping, focus and blur; textual-serve's file deliveries and "open
  this URL" messages are not relayed.
- At most ``max_watchers`` sessions at once (each is a process); one more is refused with 503.
  A session ends with its browser, and every session ends with the server (a killed server's
  sessions too: each asks the kernel for SIGTERM when its parent dies).

No Textual import here: the console runs in the child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hmac
import html
import json
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

#: Bytes of randomness in a token (printed as 43 URL-safe characters).
TOKEN_BYTES = 32
#: The largest terminal a browser may ask for, and the smallest.
MAX_COLUMNS, MAX_ROWS = 400, 160
MIN_COLUMNS, MIN_ROWS = 20, 8
#: Characters of one key message a browser may send (a paste is cut here).
MAX_KEYS = 4096
#: Largest websocket message read from a browser.
MAX_MESSAGE_BYTES = 64 * 1024
#: How long a session's console has to quit before it is killed.
STOP_GRACE_S = 5.0

FORBIDDEN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>403 Forbidden</title></head>
<body><h1>403 Forbidden</h1>
<p>This link to a warroom console is not valid. Ask the incident commander for the current
link: it changes each time the console is served.</p></body></html>
"""

BUSY_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>503 Too many watchers</title></head>
<body><h1>503 Too many watchers</h1>
<p>Every browser session this server allows is in use. Try again later.</p></body></html>
"""

INDEX_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="static/css/xterm.css">
<script src="static/js/textual.js"></script>
<style>
@font-face {{ font-family: "Roboto Mono";
  src: url("static/fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }}
body {{ background: #0c181f; margin: 0; color: rgba(255, 255, 255, 0.95);
  font-family: "Roboto Mono", monospace; }}
.notice {{ position: absolute; inset: 0; display: flex; align-items: center;
  justify-content: center; font-size: 16px; text-align: center; z-index: 10; }}
body.-first-byte .connecting {{ display: none; }}
.ended {{ display: none; inset: auto 0 0 0; padding: 8px; background: #12232d; }}
body.-closed .ended {{ display: flex; }}
.textual-terminal {{ opacity: 0; }}
body.-first-byte .textual-terminal {{ opacity: 1; }}
</style>
</head>
<body>
<div class="notice connecting"><p>{title}<br>connecting…</p></div>
<div class="notice ended"><p>The watch session ended.<br>Reload the page to watch again.</p></div>
<div id="terminal" class="textual-terminal" data-font-size="{font_size}"></div>
<script nonce="{nonce}">
// The session's address, relative to this page's (so a reverse proxy may mount it anywhere).
const session = new URL("ws", window.location.href);
session.protocol = session.protocol === "https:" ? "wss:" : "ws:";
session.search = "";
session.hash = "";
document.getElementById("terminal").dataset.sessionWebsocketUrl = session.href;
</script>
</body>
</html>
"""


def new_token() -> str:
    """A fresh token for one run of the server."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_matches(given: str | None, token: str) -> bool:
    """``given`` is ``token``, compared in constant time (for a given length)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def clamp_size(width: object, height: object) -> tuple[int, int]:
    """A browser's terminal size, as numbers within bounds (anything else: 80×24)."""

    def number(value: object, default: int, low: int, high: int) -> int:
        try:
            given = int(value)  # type: ignore[call-overload]  # whatever the browser sent
        except (TypeError, ValueError, OverflowError):
            return default
        return max(low, min(high, given))

    return (number(width, 80, MIN_COLUMNS, MAX_COLUMNS),
            number(height, 24, MIN_ROWS, MAX_ROWS))


def static_dir() -> Path:
    """textual-serve's browser side: its terminal script, style sheet and fonts."""
    import textual_serve

    return Path(textual_serve.__file__).parent / "static"


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """In a session's child, before exec: SIGTERM when the server dies (even by SIGKILL), so no
    console outlives the server that started it."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _security_headers(response: web.StreamResponse, nonce: str | None = None) -> None:
    """What every answer carries: nothing cached, no referrer (the URL holds the token), no
    framing, and a content policy that lets the page load only from this server."""
    script = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    response.headers["Server"] = "warroom"  # not aiohttp's name and version
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src {script}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")


class _WatchSession:
    """One browser's ``warroom watch`` process, driven through textual-serve's AppService."""

    def __init__(self, argv: Sequence[str], *,
                 write_bytes: Callable[[bytes], Awaitable[None]],
                 write_str: Callable[[str], Awaitable[None]],
                 close: Callable[[], Awaitable[object]]) -> None:
        self.service = _service_class()(argv, write_bytes=write_bytes, write_str=write_str,
                                        close=close)

    async def start(self, width: int, height: int) -> None:
        await self.service.start(width, height)

    async def keys(self, text: str) -> None:
        await self.service.send_bytes(text.encode("utf-8", "replace"))

    async def resize(self, width: int, height: int) -> None:
        await self.service.set_terminal_size(width, height)

    async def focus(self, focused: bool) -> None:
        await (self.service.focus() if focused else self.service.blur())

    async def stop(self) -> None:
        await self.service.stop()


class _StderrTail:
    """A stream read as textual-serve reads a console's stderr, keeping the last of it."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._tail = b""

    async def read(self, size: int = -1) -> bytes:
        data = await self._reader.read(size)
        self._tail = (self._tail + data)[-4096:]
        return data

    async def last_line(self) -> str:
        """The last line written (what textual-serve's reader had not read yet included)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._read_rest(), STOP_GRACE_S)
        lines = [line for line in self._tail.decode("utf-8", "replace").splitlines()
                 if line.strip()]
        return lines[-1] if lines else ""

    async def _read_rest(self) -> None:
        while await self.read(4096):
            pass


def failure_text(why: str) -> bytes:
    """What the page's terminal shows when its console could not start: ``why`` as plain text
    (no escape sequence reaches the browser's terminal)."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in why)[:600] or "(no reason given)"
    return f"\r\n  The console could not start:\r\n\r\n  {shown}\r\n".encode()


_SERVICE_CLASS: type[Any] | None = None


def _service_class() -> type[Any]:
    """textual-serve's AppService, started without a shell and relaying only what a watcher
    needs (made on first use: the import is textual-serve's)."""
    global _SERVICE_CLASS
    if _SERVICE_CLASS is not None:
        return _SERVICE_CLASS
    from textual_serve.app_service import AppService
    from textual_serve.download_manager import DownloadManager

    class WatchService(AppService):  # type: ignore[misc]  # untyped base
        drawn = False  # the console has sent the page something to show
        stderr_tail: _StderrTail | None = None
        def __init__(self, argv: Sequence[str], **callbacks: Any) -> None:
            import shlex

            super().__init__(shlex.join(argv), download_manager=DownloadManager(), **callbacks)
            self.argv = tuple(argv)

        async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
            # exec, not textual-serve's shell: the argv is the one fixed at start, word for word
            environment = self._build_environment(width=width, height=height)
            self._process = process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=environment,
                preexec_fn=_die_with_parent if _LIBC is not None else None)
            self._stdin = process.stdin
            # textual-serve's reader reads the console's stderr through this, which keeps its
            # end: a console that cannot start says why there (one line, `warroom: …`)
            assert process.stderr is not None
            tail = _StderrTail(process.stderr)
            process.stderr = tail  # type: ignore[assignment]  # read as a StreamReader is
            self.stderr_tail = tail
            return process

        async def on_data(self, payload: bytes) -> None:
            self.drawn = True
            await super().on_data(payload)

        async def run(self) -> None:
            try:
                await super().run()
            finally:
                # The console has ended (or never started): the page is told, and a console
                # that drew nothing says why in it, instead of a blank page that waits forever.
                if not self.drawn and self.stderr_tail is not None:
                    with contextlib.suppress(Exception):
                        why = await self.stderr_tail.last_line()
                        await self.remote_write_bytes(failure_text(why))
                with contextlib.suppress(Exception):
                    await self.remote_close()

        async def on_meta(self, data: bytes) -> None:
            # Only the console's exit is relayed: a watcher's page opens no URL and receives
            # no file.
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(data).get("type") == "exit":
                    await self.remote_close()

        async def on_packed(self, payload: bytes) -> None:
            """File deliveries: not relayed (see on_meta)."""

        async def stop(self) -> None:
            task, process = self._task, self._process
            if task is None or process is None:
                return
            self._task = None
            await self.send_meta({"type": "quit"})
            # Wait for the process, not for the task reading its output: once the browser is
            # gone that task may have stopped reading, and a console blocked on a full pipe
            # never quits by itself; it is ended instead.
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            try:  # its output has ended: the reader ends too
                await asyncio.wait_for(task, STOP_GRACE_S)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    _SERVICE_CLASS = WatchService
    return WatchService


@dataclass(frozen=True)
class ServePlan:
    """What one ``warroom serve`` run serves, fixed at start."""

    title: str  # the page's title, e.g. "warroom INC-7 (watching)"
    argv: tuple[str, ...]  # each session's console: `warroom watch ID` with its --db/--config
    token: str
    max_watchers: int


class WatchServer:
    """The aiohttp application behind ``warroom serve``; :meth:`start` binds it."""

    def __init__(self, plan: ServePlan, *, log: Callable[[str], None] | None = None) -> None:
        self.plan = plan
        self.sessions: set[_WatchSession] = set()
        self.refused = 0
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._refusals_logged_at = 0.0
        self._runner: web.AppRunner | None = None
        self._static = {path.relative_to(static_dir()).as_posix(): path
                        for path in static_dir().rglob("*") if path.is_file()}

    # --- the application ---------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.add_routes([
            web.get("/{token}", self._to_index),
            web.get("/{token}/", self._index),
            web.get("/{token}/ws", self._websocket),
            web.get("/{token}/static/{name:.+}", self._static_file),
        ])
        return app

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        """The token first, for every URL (an unknown one too): without it, 403."""
        if not token_matches(request.match_info.get("token"), self.plan.token):
            self._refuse(request)
            response: web.StreamResponse = web.Response(
                status=403, text=FORBIDDEN_PAGE, content_type="text/html")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as error:  # aiohttp's own (a bad websocket handshake)
                response = web.Response(status=error.status, text=f"{error.status} {error.reason}")
        if not response.prepared:
            _security_headers(response, getattr(response, "nonce", None))
        return response

    def _refuse(self, request: web.Request) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._refusals_logged_at >= 10.0:  # a scanner does not flood the log
            self._refusals_logged_at = now
            self._log(f"serve: refused a request without the valid token from "
                      f"{request.remote or '?'} ({self.refused} refused so far)")

    async def _to_index(self, request: web.Request) -> web.StreamResponse:
        # relative, so the page stays under whatever path a reverse proxy mounts it at
        return web.Response(status=302, headers={"Location": f"{request.match_info['token']}/"})

    async def _index(self, request: web.Request) -> web.StreamResponse:
        try:
            font_size = max(8, min(40, int(request.query.get("fontsize", "16"))))
        except ValueError:
            font_size = 16
        nonce = secrets.token_urlsafe(16)
        response = web.Response(text=INDEX_PAGE.format(
            title=html.escape(self.plan.title), font_size=font_size, nonce=nonce),
            content_type="text/html")
        response.nonce = nonce  # type: ignore[attr-defined]  # read by _guard's headers
        return response

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        path = self._static.get(request.match_info["name"])  # the package's files, by name
        if path is None:
            return web.Response(status=404, text="404 Not Found")
        return web.FileResponse(path)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if len(self.sessions) >= self.plan.max_watchers:
            self._log(f"serve: refused a browser session: {self.plan.max_watchers} already open")
            return web.Response(status=503, text=BUSY_PAGE, content_type="text/html")
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_MESSAGE_BYTES)
        await websocket.prepare(request)
        width, height = clamp_size(request.query.get("width"), request.query.get("height"))
        session = _WatchSession(self.plan.argv, write_bytes=websocket.send_bytes,
                                write_str=websocket.send_str, close=websocket.close)
        self.sessions.add(session)
        self._log(f"serve: browser session opened from {request.remote or '?'} "
                  f"({len(self.sessions)} watching)")
        try:
            await session.start(width, height)
            try:
                await self._relay(websocket, session)
            finally:
                await session.stop()
        finally:
            self.sessions.discard(session)
            self._log(f"serve: browser session closed ({len(self.sessions)} watching)")
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    async def _relay(self, websocket: web.WebSocketResponse, session: _WatchSession) -> None:
        """The browser's messages, each checked: keys, size, ping, focus, blur; nothing else."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not envelope:
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
            if kind == "stdin" and isinstance(data, str):
                await session.keys(data[:MAX_KEYS])
            elif kind == "resize" and isinstance(data, dict):
                await session.resize(*clamp_size(data.get("width"), data.get("height")))
            elif kind == "ping" and isinstance(data, str | int | float):
                await websocket.send_json(["pong", data])
            elif kind in ("focus", "blur"):
                await session.focus(kind == "focus")

    # --- running -----------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (0: a free port); returns the address bound."""
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
        except OSError:
            listener.close()
            raise
        self._runner = web.AppRunner(self.application(), access_log=None,
                                     handle_signals=False, shutdown_timeout=STOP_GRACE_S)
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()
        bound = listener.getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        """Stop listening; every session's console quits (or is ended)."""
        for session in list(self.sessions):
            with contextlib.suppress(Exception):
                await session.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def page_url(base: str, token: str) -> str:
    """The link people open: ``base`` (``http://host:port`` or the proxy's public URL) with the
    token."""
    return f"{base.rstrip('/')}/{token}/"


def serve(plan: ServePlan, host: str, port: int, public_url: str | None,
          announce: Callable[[str, int], None]) -> int:
    """Serve until SIGINT or SIGTERM; ``announce(host, port)`` is called once listening."""

    async def main() -> None:
        server = WatchServer(plan)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        bound_host, bound_port = await server.start(host, port)
        try:
            announce(bound_host, bound_port)
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(main())
    return 0

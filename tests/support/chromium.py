"""A real headless Chromium (Debian's ``chromium``) driven through its DevTools protocol.

No WebDriver and no browser automation library: Chromium is started with
``--remote-debugging-port=0`` (it writes the port it chose to ``DevToolsActivePort`` in its
profile dir), and the test talks to it over one websocket with aiohttp (a dependency of
textual-serve already): open a page, read its DOM, type keys, take a screenshot.

The browser's profile lives in a temp dir named ``warroom-chromium-…`` with an owner file, and a
watchdog stops the browser if the test process dies (tests/support/watchdog.py), as the other
test servers do. When Chromium is missing, :func:`require_chromium` skips the test, or fails it
under ``CI=true`` (``scripts/ensure-chromium`` installs it as root).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.watchdog import Watchdog, write_owner

MISSING_MESSAGE = ("Chromium not installed: run scripts/ensure-chromium (needs root), or install "
                   "Debian's chromium package")
START_TIMEOUT_S = 60.0

#: Reads the terminal's screen from the page: every xterm.js Terminal object on the heap (found
#: with Runtime.queryObjects, so the page itself is not changed for the test), each line of its
#: active buffer as text.
READ_TERMINAL = """function () {
    const terminals = this.filter(o => {
        try { return o && o.buffer && o.buffer.active && typeof o.buffer.active.getLine
                     === "function" && typeof o.onData === "function"; }
        catch (e) { return false; }
    });
    return terminals.map(t => {
        const buffer = t.buffer.active, lines = [];
        for (let y = 0; y < t.rows; y++) {
            const line = buffer.getLine(buffer.viewportY + y);
            lines.push(line ? line.translateToString(true) : "");
        }
        return {cols: t.cols, rows: t.rows, lines: lines};
    });
}"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    import pytest

    found = find_chromium()
    if found is not None:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{MISSING_MESSAGE} — CI must run the browser tests", pytrace=False)
    pytest.skip(MISSING_MESSAGE)


class DevToolsError(Exception):
    """A DevTools command failed."""


class Chromium:
    """One headless Chromium with one page (a tab) attached over the DevTools protocol."""

    def __init__(self, binary: str, *, width: int = 1280, height: int = 800) -> None:
        self.binary = binary
        self.width, self.height = width, height
        self.profile = Path(tempfile.mkdtemp(prefix="warroom-chromium-"))
        write_owner(self.profile)
        self._watchdog = Watchdog({"marks": [[str(self.profile), "SIGKILL"]],
                                   "remove": [str(self.profile)]})
        self._process: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._session: str | None = None

    async def start(self) -> Chromium:
        args = [self.binary, "--headless", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--mute-audio", "--hide-scrollbars", f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--window-size={self.width},{self.height}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium's sandbox refuses root (CI is root)
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode(errors="replace") \
                    if self._process.stderr else ""
                raise DevToolsError(f"chromium exited ({self._process.returncode}): "
                                    f"{error[-2000:]}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                port_text, path = port_file.read_text().split("\n")[:2]
                if path:
                    break
            if time.monotonic() > deadline:
                raise DevToolsError("chromium did not open its DevTools port in time")
            await asyncio.sleep(0.05)
        # its stderr is not read from here on: keep the pipe from filling up
        assert self._process.stderr is not None
        self._process.stderr.close()
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{int(port_text)}{path}",
                                               max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        target = await self.send("Target.createTarget", {"url": "about:blank"}, browser=True)
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True},
                                   browser=True)
        self._session = attached["sessionId"]
        await self.send("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": 1,
            "mobile": False})
        for domain in ("Page", "Runtime", "Network"):
            await self.send(f"{domain}.enable")
        return self

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self.events.append(data)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(DevToolsError("the DevTools connection closed"))

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   browser: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        """One DevTools command (to the page, or with ``browser`` to the browser itself)."""
        assert self._ws is not None
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if not browser:
            message["sessionId"] = self._session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self._ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, timeout)
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    # --- what a test does with the page ---------------------------------------------------------

    async def open(self, url: str, timeout: float = 30.0) -> int:
        """Navigate to ``url`` and wait for the page to load; returns the document's HTTP
        status."""
        self.events.clear()
        navigated = await self.send("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise DevToolsError(f"navigation to {url} failed: {navigated['errorText']}")
        deadline = time.monotonic() + timeout
        while await self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise DevToolsError(f"{url} did not finish loading in {timeout:g} s")
            await asyncio.sleep(0.05)
        for event in reversed(self.events):
            if (event["method"] == "Network.responseReceived"
                    and event["params"].get("type") == "Document"):
                return int(event["params"]["response"]["status"])
        raise DevToolsError(f"no document response seen for {url}")

    async def evaluate(self, expression: str) -> Any:
        """``expression``'s value in the page (JSON-serialisable values only)."""
        result = await self.send("Runtime.evaluate", {"expression": expression,
                                                      "returnByValue": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def terminals(self) -> list[dict[str, Any]]:
        """Each xterm.js terminal in the page: ``{cols, rows, lines}`` (its screen as text)."""
        prototype = await self.send("Runtime.evaluate", {"expression": "Object.prototype"})
        objects = await self.send("Runtime.queryObjects",
                                  {"prototypeObjectId": prototype["result"]["objectId"]})
        array_id = objects["objects"]["objectId"]
        try:
            result = await self.send("Runtime.callFunctionOn", {
                "objectId": array_id, "functionDeclaration": READ_TERMINAL,
                "returnByValue": True})
        finally:
            with contextlib.suppress(DevToolsError):
                await self.send("Runtime.releaseObject", {"objectId": array_id})
        if "exceptionDetails" in result:
            raise DevToolsError(f"reading the terminal: {result['exceptionDetails']}")
        return list(result["result"].get("value") or [])

    async def screen_text(self) -> str:
        """The page's one terminal screen, as lines of text ("" when it has none yet)."""
        terminals = await self.terminals()
        return "\n".join(terminals[0]["lines"]) if terminals else ""

    async def type(self, text: str) -> None:
        """Type ``text`` as key presses into the focused element, one character at a time."""
        for char in text:
            await self.send("Input.dispatchKeyEvent", {
                "type": "keyDown", "text": char, "unmodifiedText": char, "key": char})
            await self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": char})

    async def screenshot(self, path: Path) -> bytes:
        """A PNG of the page, written to ``path``."""
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        return data

    async def pixels(self, png: bytes, x: int, y: int, width: int, height: int
                     ) -> list[tuple[int, int, int]]:
        """The RGB pixels of a box of a PNG (a screenshot), row by row, decoded by the browser
        itself (no image library in the tests)."""
        data_url = "data:image/png;base64," + base64.b64encode(png).decode()
        expression = f"""(async () => {{
            const image = new Image();
            image.src = {json.dumps(data_url)};
            await image.decode();
            const canvas = document.createElement("canvas");
            canvas.width = image.width; canvas.height = image.height;
            const context = canvas.getContext("2d");
            context.drawImage(image, 0, 0);
            return Array.from(context.getImageData({x}, {y}, {width}, {height}).data);
        }})()"""
        result = await self.send("Runtime.evaluate", {"expression": expression,
                                                      "awaitPromise": True,
                                                      "returnByValue": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"decoding the screenshot: {result['exceptionDetails']}")
        rgba = result["result"]["value"]
        return [(rgba[i], rgba[i + 1], rgba[i + 2]) for i in range(0, len(rgba), 4)]

    async def press_escape(self) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", {
                "type": kind, "key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27})

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self.send("Browser.close", browser=True, timeout=5)
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._http is not None:
            await self._http.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
        self._watchdog.release()

"""`warroom serve`: the real command on a free port, spoken to over HTTP and websockets (aiohttp's
client, no browser: tests/e2e/test_serve_browser.py has the real Chromium).

What is checked: the token is printed once, differs at each start, and nothing is served without
it (the same 403 page for no token, a wrong one, a prefix of it, an unknown path, another
method, the websocket); each browser session is `warroom watch ID` with the argv fixed at start,
whatever the browser's URL or messages say; junk messages are ignored; the number of sessions is
bounded; a closed browser and a stopped server end their consoles; `serve` refuses up front what
`watch` refuses; check-config shows the settings.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import yarl

from console import serve
from tests.conftest import Result
from tests.support.serve import ServeProcess, alive, held_open, serving

Run = Callable[..., Result]
WAIT_S = 30.0


@pytest.fixture
def db(tmp_path: Path, run_warroom: Run) -> Path:
    path = tmp_path / "w.db"
    declared = run_warroom("declare", "--db", str(path), "--title", "Checkout errors",
                           "--priority", "P1", "--category", "incident", "--service",
                           "checkout-api", "--from-version", "1.4.2", "--to-version", "1.4.3")
    assert declared.code == 0, declared.err
    return path


def token_of(server: ServeProcess) -> str:
    return server.link.rstrip("/").rsplit("/", 1)[1]


def base_of(server: ServeProcess) -> str:
    return server.link[: -len(token_of(server)) - 1]


async def wait_until(condition: Callable[[], bool], what: str,
                     server: ServeProcess | None = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what + (f"; its log: {server.stderr()}"
                                                    if server else "")
        await asyncio.sleep(0.05)


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(serve.hmac, "compare_digest", compare)
    token = serve.new_token()
    assert len(token) >= 43 and token != serve.new_token()
    assert serve.token_matches(token, token)
    assert not serve.token_matches(token[:-1], token)
    assert not serve.token_matches(token + "x", token)
    assert not serve.token_matches("é" + token[1:], token)
    assert not serve.token_matches(None, token)
    assert len(calls) == 4  # every comparison went through hmac.compare_digest


def test_a_browser_size_is_clamped() -> None:
    assert serve.clamp_size(100, 30) == (100, 30)
    assert serve.clamp_size(10**9, -5) == (serve.MAX_COLUMNS, serve.MIN_ROWS)
    assert serve.clamp_size("120", "40") == (120, 40)
    assert serve.clamp_size("x;rm -rf /", None) == (80, 24)
    assert serve.clamp_size(float("inf"), [1]) == (80, 24)


async def test_nothing_is_served_without_the_token(db: Path, tmp_path: Path) -> None:
    with held_open(db), serving(["1", "--db", str(db), "--port", "0"], tmp_path) as server:
        token, base = token_of(server), base_of(server)
        assert sum(token in line for line in server.printed) == 1  # printed once
        wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
        async with aiohttp.ClientSession() as http:
            forbidden = None
            for method, path in [("GET", ""), ("GET", "favicon.ico"), ("GET", f"{wrong}/"),
                                 ("GET", f"{token[:-1]}/"), ("GET", f"{token}x/"),
                                 ("GET", f"{wrong}/ws"), ("GET", f"{wrong}/static/js/textual.js"),
                                 ("GET", "static/js/textual.js"), ("POST", f"{wrong}/"),
                                 ("GET", f"{token.upper()}/"), ("HEAD", f"{wrong}/")]:
                async with http.request(method, base + path, allow_redirects=False) as answer:
                    assert answer.status == 403, (method, path)
                    body = await answer.text()
                    assert forbidden is None or body == forbidden or method == "HEAD"
                    forbidden = forbidden or body
                    assert answer.headers["Referrer-Policy"] == "no-referrer"
                    assert answer.headers["Server"] == "warroom"
            assert forbidden is not None and "403 Forbidden" in forbidden
            assert "INC-1" not in forbidden and token not in forbidden
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{base}{wrong}/ws".replace("http", "ws", 1))
            assert refused.value.status == 403
            # with the token: the page, its files, a redirect to the page
            async with http.get(f"{base}{token}", allow_redirects=False) as answer:
                assert answer.status == 302 and answer.headers["Location"] == f"{token}/"
            async with http.get(server.link) as answer:
                assert answer.status == 200
                page = await answer.text()
                assert "warroom INC-1 (watching, read-only)" in page
                assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
                assert "googleapis" not in page  # the page loads nothing from elsewhere
            async with http.get(f"{server.link}static/js/textual.js") as answer:
                assert answer.status == 200
            for path in ("static/%2e%2e/server.py", "static/..%2fserver.py",
                         "static/js/../../server.py", "static/js/nothing.js", "download/x"):
                raw = yarl.URL(server.link + path, encoded=True)  # sent as written
                async with http.get(raw, allow_redirects=False) as answer:
                    assert answer.status in (403, 404), path
                    assert "import" not in await answer.text()
        assert server.children() == []
    # a new run, a new token
    with held_open(db), serving(["1", "--db", str(db), "--port", "0"], tmp_path) as again:
        assert token_of(again) != token


async def test_a_session_is_warroom_watch_whatever_the_browser_sends(
        db: Path, tmp_path: Path) -> None:
    with held_open(db), serving(["1", "--db", str(db), "--port", "0"], tmp_path) as server:
        url = server.link.replace("http", "ws", 1) + "ws"
        async with aiohttp.ClientSession() as http:
            websocket = await http.ws_connect(
                url + "?width=80;touch%20/tmp/x&height=$(id)&argv=open&command=sh")
            first = await websocket.receive(timeout=WAIT_S)  # the console draws
            assert first.type == aiohttp.WSMsgType.BINARY
            await wait_until(lambda: len(server.children()) == 1, "no console started")
            child = server.children()[0]
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[:-1]
            assert [a.decode() for a in argv] == [
                sys.executable, "-m", "console.cli", "watch", "INC-1", "--db", str(db.resolve())]
            # junk is ignored, and the session goes on
            for junk in ("not json", "{}", "[]", '["exec", "sh"]', '["stdin", 5]',
                         '["resize", {"width": 1e9, "height": "x"}]', '["open_url", "x"]',
                         json.dumps(["stdin", "q" * 100_000])[:60_000]):
                await websocket.send_str(junk)
            await websocket.send_str('["ping", "still there?"]')
            while True:
                message = await websocket.receive(timeout=WAIT_S)
                if message.type == aiohttp.WSMsgType.TEXT:
                    assert json.loads(message.data) == ["pong", "still there?"]
                    break
                assert message.type == aiohttp.WSMsgType.BINARY, message
            assert server.children() == [child]
            # the browser goes: its console ends
            await websocket.close()
            await wait_until(lambda: server.children() == [], "the console outlived its browser",
                             server)


async def test_sessions_are_bounded_and_end_with_the_server(db: Path, tmp_path: Path) -> None:
    with held_open(db), serving(["1", "--db", str(db), "--port", "0", "--max-watchers", "1"],
                                tmp_path) as server:
        url = server.link.replace("http", "ws", 1) + "ws"
        async with aiohttp.ClientSession() as http:
            websocket = await http.ws_connect(url)
            assert (await websocket.receive(timeout=WAIT_S)).type == aiohttp.WSMsgType.BINARY
            with pytest.raises(aiohttp.WSServerHandshakeError) as busy:
                await http.ws_connect(url)
            assert busy.value.status == 503
            children = server.children()
            assert len(children) == 1
            assert server.stop() == 0  # SIGTERM, as Ctrl+C or a service manager
            await wait_until(lambda: not alive(children[0]), "a console outlived its server")
            await websocket.close()
    assert "2 watching" not in server.stderr()


def test_serve_refuses_what_watch_refuses(run_warroom: Run, tmp_path: Path, db: Path) -> None:
    missing = run_warroom("serve", "1", "--db", str(tmp_path / "none.db"))
    assert missing.code == 2 and "no incident database" in missing.err
    unknown = run_warroom("serve", "7", "--db", str(db))
    assert unknown.code == 2 and "no incident INC-7" in unknown.err
    bad_port = run_warroom("serve", "1", "--db", str(db), "--port", "70000")
    assert bad_port.code == 2 and bad_port.err.startswith("warroom: --port")
    bad_url = run_warroom("serve", "1", "--db", str(db), "--public-url", "javascript:x")
    assert bad_url.code == 2 and "--public-url" in bad_url.err
    # no console holds the SQLite record open (no -wal/-shm): refused as `watch` refuses it
    watched = run_warroom("watch", "1", "--db", str(db))
    served = run_warroom("serve", "1", "--db", str(db), "--port", "0")
    assert watched.code == served.code == 2
    assert served.err == watched.err
    for result in (missing, unknown, bad_port, bad_url, served):
        assert len(result.err.strip().splitlines()) == 1 and result.out == ""


def test_check_config_shows_the_serve_settings(run_warroom: Run, tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text('[serve]\nhost = "0.0.0.0"\nport = 8443\n'
                      'public_url = "https://ops.example.com/warroom"\nmax_watchers = 5\n')
    shown = run_warroom("check-config", str(config))
    assert shown.code == 0, shown.err
    assert re.search(r"Browser watchers .*0\.0\.0\.0:8443, at most 5 at once.*"
                     r"https://ops\.example\.com/warroom", shown.out)
    assert "WARNING: [serve] host = 0.0.0.0 is not the loopback" in shown.out
    config.write_text('[serve]\nport = 99999\n')
    refused = run_warroom("check-config", str(config))
    assert refused.code == 2 and "port" in refused.err


async def test_a_console_that_cannot_start_says_why_in_the_page(
        db: Path, tmp_path: Path, run_warroom: Run) -> None:
    """The commander's console closed the SQLite record after `serve` started: a new browser's
    `warroom watch` refuses (no -wal/-shm), and the page shows its one line, then closes —
    not a blank page that waits forever."""
    with held_open(db):
        server = ServeProcess(["1", "--db", str(db), "--port", "0"], tmp_path)
    try:
        assert not Path(f"{db}-wal").exists()  # the last connection took its -wal with it
        refusal = run_warroom("watch", "1", "--db", str(db)).err.strip()
        assert refusal.startswith("warroom: ")
        url = server.link.replace("http", "ws", 1) + "ws"
        async with aiohttp.ClientSession() as http:
            websocket = await http.ws_connect(url)
            shown = b""
            while True:
                message = await websocket.receive(timeout=WAIT_S)
                if message.type != aiohttp.WSMsgType.BINARY:
                    break
                shown += message.data
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        text = shown.decode()
        assert "The console could not start" in text and refusal in text
        await wait_until(lambda: server.children() == [], "the failed console lingers", server)
    finally:
        server.stop()

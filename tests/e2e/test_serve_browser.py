"""End to end: `warroom serve` to a real headless Chromium (Debian's), on both stores.

The browser opens the printed link (with its token) and sees the incident: the xterm.js terminal
in the page is read through the DevTools protocol (its screen as text: the service, WATCHING,
the canary and the approvals), and a screenshot is saved as a test artefact
(``test-artefacts/serve-browser-<store>.png``) and asserted on: the WATCHING badge is drawn in
the theme's warning colour at the top left, and the page is a drawn console, not a blank page.

Then the commander's action keys are typed into the page — ``a`` (advance), ``R`` then ``y``
(the rollback), ``!`` (100 % now) — and the record does not change (its verified head is the
same). The keys do reach the console: ``?`` opens its help, before and after them (typed last,
it is also the barrier that says every key before it was handled: a dialog opened by one of
them would have taken the ``?`` instead). A wrong token and no token are refused with the 403
page, and no console process is started for them.

Waits poll a condition against a deadline; nothing sleeps for a fixed time. Skipped without
Chromium (``scripts/ensure-chromium`` installs it as root); under CI=true that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.theme import BUILTIN_THEMES

from tests.conftest import REPO, Result
from tests.support.chromium import Chromium, require_chromium
from tests.support.postgres_server import PostgresServer
from tests.support.serve import held_open, serving

pytestmark = pytest.mark.browser

SERVICE = "checkout-api"
WAIT_S = 60.0
#: Where the screenshots are kept for a person to look at (CI keeps the work tree's files).
ARTEFACTS = Path(os.environ.get("WARROOM_TEST_ARTEFACTS", REPO / "test-artefacts"))
HELP = "KEYS (the ones marked"

Run = Callable[..., Result]


def declare(run_warroom: Run, db: str) -> None:
    declared = run_warroom("declare", "--db", db, "--title", "Checkout errors", "--priority",
                           "P1", "--category", "incident", "--service", SERVICE,
                           "--from-version", "1.4.2", "--to-version", "1.4.3")
    assert declared.code == 0, declared.err
    noted = run_warroom("note", "--db", db, "1", "payments team paged")
    assert noted.code == 0, noted.err


def head(run_warroom: Run, db: str) -> str:
    """The record's verified head (`head #N sha256:…`): any new event changes it."""
    verified = run_warroom("verify", "--db", db, "1")
    assert verified.code == 0, verified.err
    return next(line for line in verified.out.splitlines() if line.startswith("head #"))


async def screen_showing(browser: Chromium, *words: str, absent: str | None = None) -> str:
    """The page's terminal screen once it shows every one of ``words`` (and not ``absent``)."""
    deadline = time.monotonic() + WAIT_S
    screen = ""
    while time.monotonic() < deadline:
        screen = await browser.screen_text()
        if all(word in screen for word in words) and (absent is None or absent not in screen):
            return screen
        await asyncio.sleep(0.1)
    raise AssertionError(f"the page never showed {words} (absent: {absent!r}); it shows:\n"
                         f"{screen}")


def near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))


def read_only_role(request: pytest.FixtureRequest, run_warroom: Run, db: str
                   ) -> tuple[str, dict[str, str]]:
    """On PostgreSQL the server runs as a role granted read access only (`store init
    --grant-read`), as the README says to: the URL it uses, and its password's environment."""
    server: PostgresServer = request.getfixturevalue("postgres_server")
    role = server.ensure_role("warroom_watch", "watch-pw")
    granted = run_warroom("store", "init", "--db", db, "--grant-read", role)
    assert granted.code == 0, granted.err
    url, env = db.replace("warroom_admin@", f"{role}@"), {"PGPASSWORD": "watch-pw"}
    refused = run_warroom("note", "--db", url, "1", "written by the watch role?", env=env)
    assert refused.code == 2 and "permission denied" in refused.err  # the database says no
    return url, env


async def test_a_browser_watches_the_incident_and_its_keys_change_nothing(
        store_location: Path | str, tmp_path: Path, run_warroom: Run,
        request: pytest.FixtureRequest) -> None:
    binary = require_chromium()
    db = str(store_location)
    declare(run_warroom, db)
    before = head(run_warroom, db)
    engine = "sqlite" if isinstance(store_location, Path) else "postgresql"
    serve_db, env = (db, {}) if engine == "sqlite" else read_only_role(request, run_warroom, db)
    with held_open(store_location), \
            serving(["1", "--db", serve_db, "--port", "0"], tmp_path, env) as server:
        browser = await Chromium(binary).start()
        try:
            assert await browser.open(server.link) == 200
            screen = await screen_showing(browser, "WATCHING", "INC-1", SERVICE, "[0%]",
                                          "weight 0%", "0 approved · 2 waiting",
                                          "Note: payments team paged")
            assert "COMMANDER" not in screen
            ARTEFACTS.mkdir(parents=True, exist_ok=True)
            shot = await browser.screenshot(ARTEFACTS / f"serve-browser-{engine}.png")
            (ARTEFACTS / f"serve-browser-{engine}.txt").write_text(screen + "\n")
            # the screenshot is the console: the WATCHING badge in the theme's warning colour
            # at the top left, and a page full of drawn text (not the "connecting…" notice)
            warning = BUILTIN_THEMES["textual-dark"].warning.lstrip("#")
            badge_colour = tuple(int(warning[i:i + 2], 16) for i in (0, 2, 4))
            badge = await browser.pixels(shot, 0, 0, 80, 20)
            assert sum(near(p, badge_colour) for p in badge) > len(badge) // 2  # type: ignore[arg-type]
            page = await browser.pixels(shot, 0, 0, browser.width, browser.height)
            assert len(set(page)) > 200, "the screenshot is not a drawn console"

            # the keys reach the console: ? opens its help, and closes it
            await browser.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
            await browser.type("?")
            await screen_showing(browser, HELP)
            await browser.type("?")
            await screen_showing(browser, "weight 0%", absent=HELP)
            # the commander's action keys: advance, the rollback (R then y), 100 % now
            await browser.type("aRy!")
            await browser.type("?")  # handled after every key before it
            screen = await screen_showing(browser, HELP)
            assert f"ROLL BACK {SERVICE}" not in screen
            await browser.press_escape()
            screen = await screen_showing(browser, "[0%]", "weight 0%", absent=HELP)
            assert len(server.children()) == 1  # one browser, one `warroom watch`
        finally:
            await browser.close()
        assert server.stop() == 0
    assert head(run_warroom, db) == before, "a key typed in the browser changed the record"


async def test_a_wrong_token_or_none_is_refused_and_starts_nothing(
        tmp_path: Path, run_warroom: Run) -> None:
    binary = require_chromium()
    db = tmp_path / "w.db"
    declare(run_warroom, str(db))
    with held_open(db), serving(["1", "--db", str(db), "--port", "0"], tmp_path) as server:
        token = server.link.rstrip("/").rsplit("/", 1)[1]
        wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
        base = server.link[: -len(token) - 1]
        browser = await Chromium(binary).start()
        try:
            for url in (f"{base}{wrong}/", base, f"{base}{token[:-1]}/", f"{base}static/js/"
                        "textual.js", f"{base}{wrong}/static/js/textual.js"):
                assert await browser.open(url) == 403, url
                assert "403 Forbidden" in await browser.evaluate("document.body.innerText")
                assert await browser.terminals() == []
            assert server.children() == []
            assert "session opened" not in server.stderr()
        finally:
            await browser.close()

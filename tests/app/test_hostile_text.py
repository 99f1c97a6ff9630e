"""Hostile text through every pane: user and adapter text is shown literally, never as markup.

The title, notes, approval notes and evidence, waiver reasons, guardrail details and rollback
errors all come from outside; none of them may be parsed as Rich/Textual markup, and control
characters must not reach the terminal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.base import ManualClock
from console.app import AppOptions, make_app
from console.config import Config
from console.demo import demo_config
from console.model import Kind
from console.policy import declaration
from console.store import Store
from tests.app.conftest import still

T0 = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
MARKUP = "[bold]x[/] [link=http://evil]y[/link] [/] [red]"
CONTROL = "esc\x1b[31mred\x1b[0m nul\x00 del\x7f cr\r"


def hostile_incident(path: Path, config: Config) -> None:
    payload = declaration(config, title="PII " + MARKUP, priority="P0", category="security",
                          service="redaction-api", from_version="v1.4.2", to_version="v1.4.3",
                          bypass_specs=["canary=harm " + MARKUP], affects=[], commander="alice")
    with Store(path) as store:
        incident = store.create_incident("alice", payload, ts=T0)[0].incident_id
        ts = T0
        for kind, actor, body in [
            (Kind.APPROVED, "priya", {"role": "security-lead", "user": "priya", "kind": "direct",
                                      "version": "v1.4.3", "note": MARKUP + CONTROL}),
            (Kind.WAIVED, "alice", {"role": "platform-lead", "reason": "unreachable " + MARKUP,
                                    "version": "v1.4.3"}),
            (Kind.NOTE, "alice", {"text": "note " + MARKUP + CONTROL}),
            (Kind.PREFLIGHT_FAILED, "warroom", {"target": "v1.4.2", "checks": [
                {"name": "check " + MARKUP, "ok": False, "detail": CONTROL}],
                "detail": "deployer said " + MARKUP}),
            (Kind.WEIGHT_SET, "alice", {"percent": 1, "stage_index": 0, "action": "advance"}),
            (Kind.GUARDRAIL_CHANGED, "warroom", {"name": "error-ratio", "status": "cant_evaluate",
                                                 "detail": "query failed: " + MARKUP + CONTROL}),
            (Kind.ROLLBACK_REQUESTED, "alice", {"target": "v1.4.2", "weight": 1,
                                                "reason": MARKUP}),
            (Kind.ROLLBACK_FAILED, "warroom", {"target": "v1.4.2",
                                               "error": "HTTP 500: " + MARKUP + CONTROL}),
        ]:
            ts += timedelta(seconds=5)
            store.append(incident, kind, actor, body, ts=ts)


async def test_hostile_text_is_literal_in_every_pane(tmp_path: Path) -> None:
    config = demo_config(Config(), "bad")
    db = tmp_path / "w.db"
    hostile_incident(db, config)
    app = make_app(config, db, 1, ManualClock(T0 + timedelta(minutes=1)),
                   options=AppOptions(live=False))
    # header, canary, rollback, approvals, guardrails and timeline all carry hostile text
    for size, at_least in (((80, 24), 4), ((200, 50), 10)):
        async with app.run_test(size=size) as pilot:
            await still(pilot)
            screen = app.export_screenshot()
            text = "".join(strip.text for strip in app.screen._compositor.render_strips())
            # Literal brackets reach the screen; nothing was interpreted as a link or style.
            assert text.count("[bold]x[/]") >= at_least, size
            assert "[link=http://evil]" in text or "[link=http://e" in text, size
            assert 'href="http://evil"' not in screen
            # No raw control character reaches the terminal.
            assert "\x1b" not in text and "\x00" not in text and "\x7f" not in text
        app = make_app(config, db, 1, ManualClock(T0 + timedelta(minutes=1)),
                       options=AppOptions(live=False))

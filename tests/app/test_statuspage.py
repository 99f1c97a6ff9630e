"""The status page from the console (issue 17, item 4): `s` opens the comms draft's update for
where the incident stands, in a box the commander edits; a draft [blank] left in it is refused;
the confirmation shows exactly what will be posted; `y` posts it to the status page (the
Statuspage API stand-in on 127.0.0.1) and records it; a refusal by the page is recorded too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.widgets import TextArea

from adapters.sim_statuspage import StatuspageStub
from console.model import Kind
from console.screens.confirm import ConfirmModal
from console.screens.statuspage import StatusPageModal
from tests.app.conftest import Rig, RigFactory, screen_text, settle, squash

SIZE = (120, 40)
COMPONENT = "8kbf7d35c070"


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatuspageStub]:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with StatuspageStub() as stub:
        monkeypatch.setenv("WARROOM_STATUSPAGE_KEY", stub.api_key)
        yield stub


@pytest.fixture
def paged(make_rig: RigFactory, page: StatuspageStub) -> Rig:
    return make_rig("bad", statuspage={
        "page_id": page.page_id, "api_key_env": "WARROOM_STATUSPAGE_KEY", "api_url": page.url,
        "components": {"redaction-api": COMPONENT}, "deadline_s": 5},
        export={"customer_names": {"redaction-api": "Support transcripts"}})


async def _open(pilot: Any, app: Any) -> StatusPageModal:
    await pilot.press("s")
    for _ in range(200):
        await settle(pilot)
        if isinstance(app.screen, StatusPageModal):
            return app.screen
    raise AssertionError("the status page form did not open")


def _fill(modal: StatusPageModal) -> str:
    area = modal.query_one(TextArea)
    text = (area.text.replace("[specific issue]", "exported transcripts kept customer e-mail "
                                                  "addresses unredacted")
            .replace(" [impact start not marked: check]", ""))
    area.text = text
    return text


async def test_the_commander_edits_sees_and_posts_the_exact_text(paged: Rig,
                                                                 page: StatuspageStub) -> None:
    app = paged.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        modal = await _open(pilot, app)
        shown = squash(screen_text(app))
        assert "Status page update (create)" in shown
        assert "Status: investigating (nothing posted yet)" in shown
        assert f"Component: {COMPONENT} → major_outage" in shown  # P0
        assert "[specific issue]" in modal.query_one(TextArea).text
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert ("Fill in the draft's blanks first: [impact start not marked: check], "
                "[specific issue]") in squash(screen_text(app))
        assert isinstance(app.screen, StatusPageModal)  # nothing posted, still editing
        text = _fill(modal)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        confirm = squash(screen_text(app))
        assert "Post to the status page: INVESTIGATING?" in confirm
        assert "This posts a NEW incident on the status page" in confirm
        assert "customer e-mail addresses unredacted" in confirm
        assert not page.incidents  # a preview, not a post
        await pilot.press("y")
        for _ in range(200):
            await settle(pilot)
            if paged.events(Kind.STATUSPAGE_POSTED):
                break
        (posted,) = paged.events(Kind.STATUSPAGE_POSTED)
    (incident,) = page.incidents.values()
    assert incident["incident_updates"][0]["body"] == text.strip()
    assert incident["status"] == "investigating"
    assert incident["name"] == "SIMULATED (demo) — Issue affecting Support transcripts"
    assert posted.payload["page_incident"] == incident["id"]
    assert posted.payload["body"] == text.strip()
    assert posted.actor == "alice"
    state = paged.state()
    assert state.statuspage_incident == incident["id"]
    assert state.statuspage_status == "investigating"


async def test_the_next_post_updates_and_a_refusal_is_recorded(paged: Rig,
                                                               page: StatuspageStub) -> None:
    from console.export.comms import status_page_draft
    from console.statuspage import next_post

    assert paged.config.statuspage is not None
    draft = status_page_draft(paged.events(), config=paged.config)
    first = next_post(paged.engine.state, draft, paged.config.statuspage,
                      body="We are investigating.")
    paged.engine.post_status_page(first)
    paged.to_ten_percent()
    draft = status_page_draft(paged.events(), config=paged.config)
    assert draft.status == "identified"
    second = next_post(paged.engine.state, draft, paged.config.statuspage,
                       body="A fix is being deployed.")
    assert second.action == "update" and second.incident_id
    page.rate_limited = True
    failed = paged.engine.post_status_page(second)
    assert failed.kind == Kind.STATUSPAGE_FAILED
    assert failed.payload["error"] == "status page update: HTTP 420: Rate limit exceeded"
    page.rate_limited = False
    ok = paged.engine.post_status_page(second)
    assert ok.kind == Kind.STATUSPAGE_POSTED
    (incident,) = page.incidents.values()
    assert [u["status"] for u in incident["incident_updates"]] == ["identified", "investigating"]
    assert incident["components"][0]["status"] == "major_outage"

"""Every console verifies the chain in the background after it opens, says how far it got, and
says loudly — on every console — where a record was edited; the commander's console records the
break once (DESIGN.md, "The chain is verified in the background")."""

from __future__ import annotations

import sqlite3

import pytest

from console.model import Kind
from console.store import use_chain_key
from tests.app.conftest import Rig, RigFactory, region_text, settle, squash, toasts_text


async def test_an_intact_chain_is_verified_to_the_newest_event(rig: Rig) -> None:
    rig.ready()
    app = rig.app()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        title = squash(region_text(app, app.timeline, border=True).splitlines()[0])
        assert f"chain ✓ verified to #{rig.last_id()}" in title
        assert "CHAIN BROKEN" not in toasts_text(app)


def _edit_the_first_approval(rig: Rig) -> int:
    approval = next(e for e in rig.events(Kind.APPROVED))
    conn = sqlite3.connect(rig.db)
    conn.execute("DROP TRIGGER events_are_append_only_update")
    conn.execute("UPDATE events SET payload = replace(payload, 'looks right', 'LOOKS RIGHT') "
                 "WHERE id = ?", (approval.id,))
    conn.commit()
    conn.close()
    return approval.id


async def test_an_edited_record_is_shown_loudly_and_recorded_once_by_the_commander(
        rig: Rig) -> None:
    rig.ready()
    edited = _edit_the_first_approval(rig)
    app = rig.app()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        await settle(pilot)  # the record of the break comes back through the store
        header = squash(region_text(app, app.header))
        assert f"CHAIN BROKEN at #{edited}" in header
        assert f"CHAIN BROKEN at #{edited}" in region_text(app, app.timeline, border=True)
        assert "the record was edited" in toasts_text(app)
        # The console goes on: a rollback is never blocked by a damaged record.
        await pilot.press("R")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
    breaks = rig.events(Kind.CHAIN_BROKEN)
    assert len(breaks) == 1 and breaks[0].payload["event_id"] == edited
    assert rig.events(Kind.ROLLBACK_REQUESTED)
    # Opening again does not record the same break twice.
    again = rig.app()
    async with again.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await settle(pilot)
    assert len(rig.events(Kind.CHAIN_BROKEN)) == 1


async def test_a_watcher_shows_the_break_and_writes_nothing(rig: Rig) -> None:
    rig.ready()
    edited = _edit_the_first_approval(rig)
    before = rig.last_id()
    app = rig.app(watch=True)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await settle(pilot)
        assert f"CHAIN BROKEN at #{edited}" in squash(region_text(app, app.header))
    assert rig.last_id() == before


async def test_a_keyed_chain_says_so_and_without_the_key_only_its_links(
        make_rig: RigFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyed incident (HMAC-SHA256, issue 12): the console's chain status says "keyed" when
    it verified the hashes with the key, and says that only the links were checked on a console
    that has no key (it cannot tell a rehashed record from the real one)."""
    monkeypatch.setenv("WARROOM_CHAIN_KEY", "a-chain-key-for-the-test")
    use_chain_key(b"a-chain-key-for-the-test")
    try:
        rig = make_rig("bad", store__chain_key_env="WARROOM_CHAIN_KEY")
        assert rig.events()[0].payload["chain"] == "keyed"
        rig.ready()
        app = rig.app()
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            title = squash(region_text(app, app.timeline, border=True).splitlines()[0])
            assert f"chain ✓ keyed (HMAC) verified to #{rig.last_id()}" in title
        monkeypatch.delenv("WARROOM_CHAIN_KEY")
        watcher = rig.app(watch=True)
        async with watcher.run_test(size=(120, 30)) as pilot:
            await settle(pilot)
            title = squash(region_text(watcher, watcher.timeline, border=True).splitlines()[0])
            assert (f"chain keyed (HMAC): links only to #{rig.last_id()}, no chain key here"
                    in title)
            assert "✓ keyed" not in title
    finally:
        use_chain_key(None)

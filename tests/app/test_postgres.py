"""The console on a PostgreSQL record: the commander's actions land, and a watcher — a second
console with its own connections — follows through LISTEN/NOTIFY, with no help from the test."""

from __future__ import annotations

import time

import pytest

from console import commands
from console.app import WATCHING
from console.demo import DEMO_APPROVERS
from console.pgstore import PostgresStore
from console.store import open_store
from tests.app.conftest import Rig, RigFactory, settle
from tests.app.test_console import SIZE, pane
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.postgresql


def approve_as_roles(rig: Rig, server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's approvers sign off as database roles of their own, each on its own
    connection (on PostgreSQL a direct approval must come from the person's own role)."""
    assert isinstance(rig.store, PostgresStore) and isinstance(rig.db, str)
    for user in DEMO_APPROVERS.values():
        rig.store.grant(server.ensure_role(user, f"{user}-pw"))
    for role, user in DEMO_APPROVERS.items():
        monkeypatch.setenv("WARROOM_TEST_APPROVER_PASSWORD", f"{user}-pw")
        url = rig.db.replace("warroom_admin@", f"{user}@")
        with open_store(url, password_env="WARROOM_TEST_APPROVER_PASSWORD") as own:
            commands.approve(own, rig.config, rig.incident_id, user=own.person("root"),
                             role=role)
    rig.engine.preflight()
    rig.engine.acknowledge_checklist()
    rig.engine.refresh()


async def test_the_commander_acts_on_a_postgresql_record(
        make_rig: RigFactory, pg_url: str, postgres_server: PostgresServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rig = make_rig("bad", location=pg_url)
    approve_as_roles(rig, postgres_server, monkeypatch)
    assert [a.kind for a in rig.engine.state.approvals] == ["direct", "direct"]
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await pilot.press("y")
        await settle(pilot)
        assert "[1%]" in pane(app, app.canary)
        assert rig.sim.current_weight() == 1
    assert rig.store.verify(rig.incident_id)[1] is None


async def test_a_live_watcher_follows_through_listen_notify(make_rig: RigFactory,
                                                            pg_url: str) -> None:
    rig = make_rig("bad", location=pg_url)
    app = rig.app(watch=True, live=True)
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 20
        while app.timeline.event_count == 0:
            assert time.monotonic() < deadline, "the watcher never read the record"
            await pilot.pause(0.05)
        assert app.mode == WATCHING
        for n in range(3):
            note = rig.engine.note(f"seen by the watcher? {n}")
            committed = time.monotonic()
            while app.timeline.last_event_id != note.id:
                assert time.monotonic() - committed < 20, "the watcher never showed the note"
                await pilot.pause(0.02)
        await pilot.pause()
        assert "Note: seen by the watcher? 2" in pane(app, app.timeline)
        # its action keys do nothing here either
        before = rig.last_id()
        for key in ("a", "x", "R", "n"):
            await pilot.press(key)
            await pilot.pause()
            assert len(app.screen_stack) == 1
        assert rig.last_id() == before

"""Rollback that stays rolled back (issue 17, item 3), on the console as a person sees it.

After ROLLBACK VERIFIED the engine's poll keeps reading the live version for ``[rollback]
watch_s``. The simulator's ``reapply`` plays a GitOps tool putting the bad version back: the
header and the rollback pane alarm (ROLLBACK UNDONE), the timeline records it, the chat is told.
The stable track then breaching again is escalated to the commander, never rolled back a second
time by warroom. Everything runs on the Rig's ManualClock; waits are conditions with deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adapters.base import Deployer, DeployError, PreflightResult
from console.model import Kind
from tests.app.conftest import Rig, RigFactory, exits_of, region_text, screen_text, settle, squash

SIZE = (100, 30)


class RecordingNotifier:
    """A chat that keeps what it was told."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, message: str) -> None:
        self.messages.append(message)


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {deadline_s:g} s: {what}"
        time.sleep(0.01)


def verified(rig: Rig) -> None:
    """The bad build at 10%, rolled back by hand, VERIFIED."""
    rig.to_ten_percent()
    rig.engine.request_rollback("the bridge decided")
    rig.tick(rig.config.deploy.rollback_seconds + 1)  # type: ignore[union-attr]
    rig.tick(rig.config.rollback.verification_hold_s + 2)
    assert rig.state().rollback_status == "verified"


def pane(app: Any, widget: Any) -> str:
    return squash(region_text(app, widget))


async def test_a_rollback_undone_after_verified_alarms_records_and_notifies(rig: Rig) -> None:
    chat = RecordingNotifier()
    rig.engine.adapters.notifier = chat
    verified(rig)
    rig.tick(rig.config.monitoring.poll_interval_s)
    started = rig.events(Kind.ROLLBACK_WATCH_STARTED)
    assert len(started) == 1 and started[0].payload["target"] == "v1.4.2"
    assert rig.state().watch_status == "watching"
    assert rig.events(Kind.ROLLBACK_REVERTED) == []

    app = rig.app()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert "watching the live version until" in pane(app, app.rollback_pane)
        assert "ROLLBACK UNDONE" not in squash(screen_text(app))

        rig.sim.reapply("v1.4.3")  # Argo CD self-heal puts the bad version back
        rig.tick(rig.config.monitoring.poll_interval_s)
        await settle(pilot)
        reverted = rig.events(Kind.ROLLBACK_REVERTED)
        assert len(reverted) == 1
        assert reverted[0].payload == {"target": "v1.4.2", "live": "v1.4.3"}
        # the badge (its short form when other badges crowd the header at this width)
        assert "ROLLBACK UNDONE" in pane(app, app.header)
        rollback = pane(app, app.rollback_pane)
        assert "✗ ROLLBACK UNDONE: v1.4.3 is live, not v1.4.2 since 22:" in rollback
        assert app.rollback_pane.has_class("-alarm")
        assert "ROLLBACK UNDONE" in str(app.rollback_pane.border_subtitle)
        app.clear_notifications()  # toasts cover the timeline
        await pilot.pause()
        assert "ROLLBACK UNDONE: the live version is v1.4.3" in pane(app, app.timeline)
        wait_for(lambda: any("ROLLBACK UNDONE" in m for m in chat.messages),
                 "the chat is told the rollback was undone")

        # Polls go on: one event for the change, not one per poll.
        rig.tick(3 * rig.config.monitoring.poll_interval_s)
        assert len(rig.events(Kind.ROLLBACK_REVERTED)) == 1

        # The bad build on the stable track breaches; sustained, it is escalated, not rolled back.
        # (the metrics window fills with the bad minutes first, then `consecutive` breaches)
        polls = 0
        while not rig.events(Kind.ESCALATED):
            rig.tick(rig.config.monitoring.poll_interval_s)
            polls += 1
            assert polls <= 80, "no escalation after 80 polls of the bad build on stable"
        assert rig.state().guardrails["error-ratio"].status == "breach"
        rig.tick(5 * rig.config.monitoring.poll_interval_s)  # and it is escalated once
        await settle(pilot)
        escalated = rig.events(Kind.ESCALATED)
        assert len(escalated) == 1
        assert escalated[0].payload["name"] == "error-ratio"
        assert "at most one automatic rollback per incident" in escalated[0].payload["reason"]
        assert len(rig.events(Kind.ROLLBACK_REQUESTED)) == 1
        assert "ESCALATED" in pane(app, app.header)
        assert "✗ ESCALATED: the commander decides" in pane(app, app.rollback_pane)
        wait_for(lambda: any("ESCALATED" in m for m in chat.messages), "the chat is told")

        # Someone fixes the GitOps source: the target is live again, and that is recorded too.
        rig.sim.reapply("v1.4.2")
        rig.tick(rig.config.monitoring.poll_interval_s)
        await settle(pilot)
        assert len(rig.events(Kind.ROLLBACK_RESTORED)) == 1
        assert rig.state().watch_status == "watching"
        assert "ROLLBACK UNDONE" not in pane(app, app.header)
        assert "ESCALATED" in pane(app, app.header)  # until the commander acts


async def test_the_watch_ends_when_its_window_has_passed(make_rig: RigFactory) -> None:
    rig = make_rig("bad", rollback__watch_s=60.0)
    verified(rig)
    rig.tick(30)
    assert rig.state().watch_status == "watching"
    rig.tick(40)
    ended = rig.events(Kind.ROLLBACK_WATCH_ENDED)
    assert len(ended) == 1 and ended[0].payload["target"] == "v1.4.2"
    assert rig.state().watch_status == "held"
    rig.sim.reapply("v1.4.3")  # after the window nobody reads the version any more
    rig.tick(10)
    assert rig.events(Kind.ROLLBACK_REVERTED) == []
    app = rig.app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "watch ended: v1.4.2 stayed live" in pane(app, app.rollback_pane)


async def test_quitting_while_the_live_version_is_watched_asks_first(
        make_rig: RigFactory) -> None:
    """The watch runs in the commander's console: `q` says it stops, and asks; once the window
    has passed, quitting asks nothing."""
    from console.screens.confirm import ConfirmModal

    rig = make_rig("bad", rollback__watch_s=60.0)
    verified(rig)
    rig.tick(rig.config.monitoring.poll_interval_s)
    assert rig.state().watch_status == "watching"
    app = rig.app()
    exits = exits_of(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and not exits
        text = squash(screen_text(app))
        assert "The live version is watched after the verified rollback (until" in text
        assert "(GitOps self-heal), nobody is told" in text
        await pilot.press("escape")
        await settle(pilot)
        assert len(app.screen_stack) == 1 and not exits

        rig.tick(70)  # past the window: the watch ends, and so does the question
        await settle(pilot)
        assert rig.state().watch_status == "held"
        await pilot.press("q")
        await settle(pilot)
        assert exits == [()]


async def test_no_watch_when_watch_s_is_zero(make_rig: RigFactory) -> None:
    rig = make_rig("bad", rollback__watch_s=0.0)
    verified(rig)
    rig.sim.reapply("v1.4.3")
    rig.tick(10)
    assert rig.events(Kind.ROLLBACK_WATCH_STARTED) == []
    assert rig.events(Kind.ROLLBACK_REVERTED) == []


class RefusingDeployer:
    """The simulator's deployer, except that every rollback fails."""

    def __init__(self, inner: Deployer) -> None:
        self.inner = inner
        self.calls = 0

    def current_version(self) -> str:
        return self.inner.current_version()

    def preflight_rollback(self, target: str) -> PreflightResult:
        return self.inner.preflight_rollback(target)

    def rollback(self, target: str, progress: Any = None, **_: Any) -> str:
        self.calls += 1
        raise DeployError("rollback: HTTP 503 from the deploy API")


def test_a_failed_automatic_rollback_is_never_retried_by_later_breaches(rig: Rig) -> None:
    deployer = RefusingDeployer(rig.engine.adapters.deployer)
    rig.engine.adapters.deployer = deployer
    rig.to_ten_percent()
    polls = 0
    while not rig.events(Kind.ROLLBACK_FAILED):
        rig.tick(rig.config.monitoring.poll_interval_s)
        polls += 1
        assert polls <= 30, "no automatic rollback after 30 polls of a breaching build"
    rig.tick(40 * rig.config.monitoring.poll_interval_s)
    requests = rig.events(Kind.ROLLBACK_REQUESTED)
    assert len(requests) == 1 and requests[0].payload["automatic"] is True
    assert deployer.calls == 1
    assert rig.state().automatic_rollbacks == 1

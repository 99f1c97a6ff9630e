"""The small protocols every integration implements, and the values they exchange.

Adapters know nothing of the console, the store or Textual (DESIGN.md, "Adapters"). Every call here
is synchronous and may block: the console runs them in worker threads, never on the UI thread.
Every failure is raised as an :class:`AdapterError` (or a subclass) whose message is short, says
what was attempted and what came back, and never contains a secret.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


class AdapterError(Exception):
    """An integration failed; ``str(error)`` is one line a person can act on."""


class AdapterTimeout(AdapterError):
    """The integration did not answer within its timeout."""


class MetricsError(AdapterError):
    """A metrics query failed (server down, bad query, unreadable answer)."""


class DeployError(AdapterError):
    """A traffic or deploy action failed."""


class Clock(Protocol):
    """Where adapters and the engine read the time; injected so tests are exact."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ManualClock:
    """A clock that moves only when told to: for tests and the deterministic simulator."""

    current: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        from datetime import timedelta

        self.current = self.current + timedelta(seconds=seconds)
        return self.current


@dataclass(frozen=True)
class InstantValue:
    """One element of an instant-vector answer: its labels, timestamp (unix s) and value.

    ``value`` may be NaN or infinite: Prometheus returns such values and callers must judge them.
    """

    labels: dict[str, str]
    ts: float
    value: float

    @property
    def is_finite(self) -> bool:
        return math.isfinite(self.value)


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range answer: labels and ``(unix_ts, value)`` points, oldest first."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@runtime_checkable
class MetricsSource(Protocol):
    """Reads metrics (Prometheus or the simulator)."""

    def query(self, query: str) -> list[InstantValue]:
        """Evaluate ``query`` now; an empty list means the query matched nothing."""
        ...

    def query_range(
        self, query: str, start: datetime, end: datetime, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` over ``[start, end]`` every ``step`` seconds."""
        ...


@runtime_checkable
class TrafficController(Protocol):
    """Moves traffic between the stable (baseline) track and the canary."""

    def set_weight(self, percent: int) -> None:
        """Send ``percent`` (0..100) of traffic to the canary; raises DeployError on failure."""
        ...

    def current_weight(self) -> int:
        """The canary weight the traffic system reports now (0..100)."""
        ...


@dataclass(frozen=True)
class PreflightCheck:
    """One check the deployer ran before a rollback could be trusted."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class PreflightResult:
    """Whether a rollback to ``target`` is possible right now, and why (not)."""

    target: str
    ok: bool
    checks: list[PreflightCheck]
    detail: str = ""


@runtime_checkable
class Deployer(Protocol):
    """The deploy system: reports what runs and rolls back to a known version."""

    def current_version(self) -> str:
        """The version the deploy system reports as live on the stable track."""
        ...

    def preflight_rollback(self, target: str) -> PreflightResult:
        """Check, without changing anything, that a rollback to ``target`` can run."""
        ...

    def rollback(self, target: str, progress: Callable[[str], None] | None = None, *,
                 idempotency_key: str | None = None) -> str:
        """Start (and, where the system allows, complete) a rollback to ``target``.

        Returns a short description of what was done (an operation id, a revision). Completion is
        confirmed separately by reading :meth:`current_version` until it reports ``target``.
        ``progress`` receives short human-readable progress lines, if the system reports any.
        ``idempotency_key`` names this rollback for the deploy system (the console derives it
        from the journalled request, so it is the same after a restart): an adapter that can
        send it (the ``{idempotency_key}`` placeholder) does; the rollback itself is never
        retried inside the call.
        """
        ...


@dataclass(frozen=True)
class RollbackOperation:
    """What a deploy system says about the rollback sent under one idempotency key."""

    known: bool  # the deploy system has an operation under that key: it was received
    detail: str = ""


@runtime_checkable
class RollbackLookup(Protocol):
    """A deployer that can say whether a rollback was received, by its idempotency key.

    Before the console sends a rollback again (after a crash, or a call that timed out), it asks
    this: a rollback the deploy system already has is never sent twice.
    """

    def find_rollback(self, idempotency_key: str) -> RollbackOperation | None:
        """The operation under ``idempotency_key``; None when this deploy system cannot be asked
        (nothing configured to ask it). Raises AdapterError when it could not answer."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """Sends a message to people (chat webhook, status page)."""

    def send(self, message: str) -> None: ...

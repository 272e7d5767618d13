"""What the dashboard and the probes read: the controller's status, a snapshot of the apps table taken
after each reconcile and action (so a page view costs no git or registry read and never waits for a
deploy), and the live-update fan-out to open pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail.build import source_url
from tagtrail.config import Config
from tagtrail.errors import GitError, TagtrailError
from tagtrail.gitrepo import GitRepo
from tagtrail.history import DecisionRecord, HistoryEntry
from tagtrail.reconcile import Planned, Reconciler

log = logging.getLogger("tagtrail.controller")


@dataclass
class Status:
    """The controller's own state."""

    planned: dict[str, Planned] = field(default_factory=dict)
    last_reconcile: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_commit: str | None = None
    config_error: str | None = None

    def ready(self, interval: timedelta, now: datetime | None = None) -> tuple[bool, str]:
        """Config loaded and a recent successful reconcile."""
        if self.last_success is None:
            return False, "no reconcile has succeeded yet"
        limit = 3 * interval.total_seconds() + 60
        age = ((now or datetime.now(UTC)) - self.last_success).total_seconds()
        if age > limit:
            return False, f"the last successful reconcile was {int(age)} s ago"
        return True, "ready"


@dataclass
class Snapshot:
    """The dashboard's table."""

    planned: list[Planned] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)
    last_deploy: dict[str, HistoryEntry] = field(default_factory=dict)
    last_decision: dict[str, DecisionRecord] = field(default_factory=dict)
    last_result: dict[str, DecisionRecord] = field(default_factory=dict)  # the last decision that acted


async def take(reconciler: Reconciler, planned: list[Planned]) -> Snapshot:
    snapshot = Snapshot(planned, dict(reconciler.config.deploy.pins))
    try:
        for entry in await reconciler.target.history(until=[p.app for p in planned]):
            snapshot.last_deploy.setdefault(entry.app, entry)
    except TagtrailError as exc:
        log.warning("the deploy history could not be read: %s", exc)
    decisions = reconciler.log
    snapshot.last_decision = await asyncio.to_thread(decisions.last_each)
    snapshot.last_result = await asyncio.to_thread(decisions.last_each, acted=True)
    return snapshot


def commit_url(config: Config, config_path: Path) -> str | None:
    """Where the dashboard links a commit: serve.commit_url, else the web page of the source repository."""
    if config.serve.commit_url:
        return config.serve.commit_url
    try:
        web = source_url(GitRepo.discover(config_path.parent).remote_url())
    except GitError:
        return None
    return f"{web}/commit/{{sha}}" if web else None


class Broadcast:
    """'Something changed' to every open page, never blocking the sender (a slow page misses events)."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[str]] = set()

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: str) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

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
from typing import Any

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.history import DecisionRecord, HistoryEntry
from tagtrail.adapters.kube.view import AppView, observe
from tagtrail.config import Config
from tagtrail.errors import GitError, TagtrailError
from tagtrail.features.build import source_url
from tagtrail.reconcile import Planned, Reconciler, commit_times
from tagtrail.reconcile.applied import Applying, applied_states
from tagtrail.serve.controller.decisions import Decisions
from tagtrail.serve.metrics import Metrics
from tagtrail.targets.project import Project

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
    cluster: dict[str, AppView] = field(default_factory=dict)  # what runs, where kubernetes: is set
    drift: dict[str, str] = field(default_factory=dict)  # app → why what runs is not what is declared
    lead_time: dict[str, timedelta] = field(
        default_factory=dict
    )  # app → from its commit to the cluster running it
    cluster_error: str | None = None
    applying: dict[str, Applying] = field(default_factory=dict)  # app → did applied_by apply its commit


async def observe_cluster(project: Project[Any], snapshot: Snapshot) -> None:
    """What the cluster runs, per app, and where it drifts from what is declared."""
    cluster = project.cluster()
    if cluster is None:
        return
    try:
        views = await observe(cluster)
    except TagtrailError as exc:
        snapshot.cluster_error = str(exc)
        log.warning("what the cluster runs could not be read: %s", exc)
        return
    commits = await commit_times(project, snapshot.planned)
    for planned in snapshot.planned:
        view = snapshot.cluster[planned.app] = views.get(planned.app, AppView(planned.app))
        running = planned.decision.running_parsed
        committed = commits.get(running.sha) if running else None
        if committed is not None and view.finished is not None:
            snapshot.lead_time[planned.app] = view.finished - committed
        why = view.drift(planned.decision.running.digest, annotated=project.direct)
        if why:
            snapshot.drift[planned.app] = why
        pinned = next((p for w in view.workloads if (p := w.workload.pin(planned.app))), None)
        if pinned:  # direct mode keeps pins on the workloads
            snapshot.pins[planned.app] = pinned


def replicas(snapshot: Snapshot) -> dict[str, tuple[int, int, bool, float | None]]:
    """Per observed app: ready, wanted, whether it drifts, and its lead time in seconds (for /metrics)."""
    lead = {app: t.total_seconds() for app, t in snapshot.lead_time.items()}
    return {
        app: (v.ready, v.total, app in snapshot.drift, lead.get(app)) for app, v in snapshot.cluster.items()
    }


async def take(
    reconciler: Reconciler, planned: list[Planned], decisions: Decisions | None = None
) -> Snapshot:
    snapshot = Snapshot(planned, dict(reconciler.project.config.deploy.pins))
    try:
        for entry in await reconciler.project.target.history(until=[p.app for p in planned]):
            snapshot.last_deploy.setdefault(entry.app, entry)
    except TagtrailError as exc:
        log.warning("the deploy history could not be read: %s", exc)
    if decisions is not None:  # the leader's, on a follower
        snapshot.last_decision = await decisions.last_each()
        snapshot.last_result = await decisions.last_each(acted=True)
    else:
        snapshot.last_decision = await asyncio.to_thread(reconciler.project.log.last_each)
        snapshot.last_result = await asyncio.to_thread(reconciler.project.log.last_each, acted=True)
    await observe_cluster(reconciler.project, snapshot)
    try:
        snapshot.applying = await applied_states(reconciler, snapshot.last_deploy)
    except TagtrailError as exc:
        snapshot.cluster_error = str(exc)
        log.warning("the Stack applying the deploy commits could not be read: %s", exc)
    return snapshot


def measured(snapshot: Snapshot, metrics: Metrics, config: Config) -> None:
    """What /metrics reads of a snapshot: per observed app its replicas, drift and lead time; and what the
    Stack says of the newest deploy commit, where deploy.git.applied_by is set."""
    metrics.observe_cluster(replicas(snapshot))
    shown = [(snapshot.last_deploy[app].time, a.state) for app, a in snapshot.applying.items()]
    settings = config.deploy.git.applied_by if config.deploy.git is not None else None
    if shown and settings is not None:
        metrics.observe_applying(settings.pulumi_stack.ref, max(shown)[1], judged=False)


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

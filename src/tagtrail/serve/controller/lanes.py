"""The environments `tagtrail serve` deploys to: a reconciler per environment (long-lived, fenced by the
lease, one claims memory), and the turn of each environment after the first, run right after it on the
same triggers so that a soak of 0 promotes in the same turn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tagtrail.adapters.history import HistoryEntry
from tagtrail.adapters.registry import RegistryClient
from tagtrail.config import Config
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Planned, Reconciler, history
from tagtrail.reconcile.observe import Registry
from tagtrail.reconcile.reconciler import share_memory
from tagtrail.serve.controller.rollouts import Rollouts
from tagtrail.serve.controller.schedule import Schedule
from tagtrail.targets.factory import open_lanes
from tagtrail.targets.project import Project

if TYPE_CHECKING:  # lightkube: loaded only where leader election is configured
    from tagtrail.adapters.kube.lease import Elector

log = logging.getLogger("tagtrail.controller")


def reconcilers(
    config: Config, config_path: Path, client: RegistryClient, elector: Elector | None
) -> list[Reconciler]:
    """A kept reconciler per environment, in the order builds go through them."""
    projects: list[Project[Registry]] = open_lanes(config, config_path, client, keep=True)
    lanes = share_memory([Reconciler(project) for project in projects])
    for lane in lanes:
        lane.project.fence.by = elector.check if elector is not None else None
    return lanes


class Lanes:
    """The environments after the first (the first is the controller's own reconciler): their reconcilers,
    in order, and each one's latest decision per app, for the dashboard's row across environments."""

    def __init__(self, after: list[Reconciler] | None = None) -> None:
        self.after = after or []
        self.planned: dict[str, dict[str, Planned]] = {}  # environment → app → its latest decision

    def of(self, environment: str) -> Reconciler | None:
        return next((lane for lane in self.after if lane.project.environment == environment), None)

    def gated(self) -> list[str]:
        """The environments a person may promote to (each takes builds from another)."""
        return [lane.project.environment for lane in self.after if lane.project.upstream is not None]

    def row(self, app: str) -> list[tuple[str, Planned | None]]:
        """Each later environment's latest decision for `app`, in order (None: not decided yet)."""
        return [
            (lane.project.environment, self.planned.get(lane.project.environment, {}).get(app))
            for lane in self.after
        ]

    async def histories(self, app: str, lock: asyncio.Lock) -> list[tuple[str, list[HistoryEntry]]]:
        """Each later environment's deploy history of `app`, newest first (one that cannot be read: empty,
        with a warning), read under the write lock as the first environment's is."""
        found = []
        for lane in self.after:
            try:
                async with lock:
                    entries = await history(lane, app)
            except TagtrailError as exc:
                log.warning("history of %s in %s could not be read: %s", app, lane.project.environment, exc)
                entries = []
            found.append((lane.project.environment, entries))
        return found

    async def run(
        self,
        chosen: list[str] | None,
        actor: str,
        automatic: bool,
        rollouts: Rollouts,
        done: Callable[[], Awaitable[None]],
        schedule: Schedule,
    ) -> None:
        """Each environment in order, on what the one before has just done (a soak of 0 promotes in the
        same turn): its decisions recorded in its own log, its promotions logged and followed into the
        cluster, an app held by a soak looked at again when it ends; a failure is told and left to the
        next turn."""
        for lane in self.after:
            where = lane.project.environment
            try:
                report = await lane.run(chosen, actor=actor, automatic=automatic, prefetch=True)
            except Exception:  # a bug too must not end the loop, nor stop the first environment's deploys
                log.exception("the reconcile of environment %s failed", where)
                continue
            self.planned.setdefault(where, {}).update({p.app: p for p in report.planned})
            for item in report.planned:
                if item.soak_left is not None:
                    # a little after: a look a moment early would find it still soaking, and wait an interval
                    schedule.sooner(item.app, item.soak_left.total_seconds() + 0.5)
            if report.changed:
                log.info("%s: deployed %s (%s)", where, ", ".join(report.changed), report.commit)
            rollouts.follow(lane, report, done)


async def close(lanes: list[Reconciler], client: RegistryClient | None = None) -> None:
    """Close each environment's target, and `client` (the registry client they shared) after them."""
    for lane in lanes:
        await lane.project.target.aclose()
    if client is not None:
        await client.aclose()

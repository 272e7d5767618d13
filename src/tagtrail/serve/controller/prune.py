"""`tagtrail serve`'s retention: with `retention.schedule` set, prune (and delete) on that schedule.

Off by default. Each run takes the controller's write lock (a prune never overlaps a deploy, so what runs
is read as it is), counts the bytes freed and the deletions in the metrics, and notifies. The schedule is
read from the config at every turn, so a reload that sets or clears it takes effect at the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from tagtrail.adapters.notify import Message, Notifier
from tagtrail.domain.humanize import size
from tagtrail.errors import TagtrailError
from tagtrail.features.retention.prune import PruneReport
from tagtrail.features.retention.run import prune
from tagtrail.reconcile import Reconciler
from tagtrail.serve.controller.periodic import scheduled
from tagtrail.serve.metrics import Metrics

log = logging.getLogger("tagtrail.controller.prune")
ACTOR = "tagtrail serve (retention)"


async def _apply(reconciler: Reconciler) -> PruneReport:
    return await prune(reconciler, delete=True, actor=ACTOR)


class Pruner:
    """Runs prunes on the schedule. Wire it into the controller with
    `asyncio.create_task(Pruner(self.metrics, self.notifier).loop(lambda: self.reconciler, self.lock))`
    in `start`, and cancel that task in `stop`."""

    def __init__(
        self,
        metrics: Metrics,
        notifier: Notifier,
        *,
        work: Callable[[Reconciler], Awaitable[PruneReport]] = _apply,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.metrics = metrics
        self.notifier = notifier
        self._work = work
        self._clock = clock
        self._sleep = sleep
        self.last: float | None = None  # when the last prune ran (clock time)

    def wait(self, reconciler: Reconciler) -> float | None:
        """Seconds until the next prune is due; None when no schedule is set."""
        schedule = reconciler.project.config.retention.schedule
        if schedule is None:
            return None
        if self.last is None:
            return 0.0
        return max(0.0, self.last + schedule.total_seconds() - self._clock())

    async def run_once(self, reconciler: Reconciler, lock: asyncio.Lock) -> PruneReport | None:
        """One prune under the write lock; a TagtrailError is told (a notification), the next prune comes on
        schedule (anything else raised: `periodic.every`)."""
        self.last = self._clock()
        if not reconciler.leads():
            return None  # another replica leads: it prunes
        try:
            async with lock:
                report = await self._work(reconciler)
        except TagtrailError as exc:
            log.warning("a scheduled prune failed: %s", exc)
            await self.notifier.send_async(Message("tagtrail: a scheduled prune failed", str(exc), "failure"))
            return None
        await self.record(report)
        return report

    async def record(self, report: PruneReport) -> None:
        deleted = 0
        for item in report.plans:
            freed = item.freed if item.deleted else 0
            self.metrics.prune_bytes_freed.labels(item.app).inc(freed)
            for deletion in item.deleted:
                self.metrics.prune_deletions.labels(item.app, str(deletion.why)).inc()
            deleted += len(item.deleted)
        problems = [f"{p.app}: {p.problem}" for p in report.plans if p.problem]
        if report.stopped:
            problems.append(report.stopped)
        if deleted or problems:
            body = f"deleted {deleted} manifests, {size(report.freed)}"
            hints = report.hints() if deleted else []
            text = "\n".join([body, *hints, *problems])
            title = "tagtrail pruned the registry"
            await self.notifier.send_async(Message(title, text, "warning" if problems else "success"))

    async def loop(self, reconciler: Callable[[], Reconciler], lock: asyncio.Lock) -> None:
        """Until cancelled: wait for the schedule, prune, repeat (a turn that raises: `periodic.every`)."""

        due, run = lambda: self.wait(reconciler()), lambda: self.run_once(reconciler(), lock)
        await scheduled("prune", due, run, self.metrics, sleep=self._sleep)

"""`tagtrail serve`'s base-image watch: every `base_images.interval`, whether the base of each running
build has moved (one HEAD per distinct base), and what a move does.

- Every move is told once per (app, new base digest) and counted in a gauge; the dashboard shows it.
- Apps set to `rebuild` are rebuilt at most once per (app, base digest), recorded in a ledger that
  survives restarts: through the GitHub workflow (workflow_dispatch, its `apps` input) or `tagtrail build
  --push` here. A local build is deployed at once (a reconcile of those apps); a GitHub build arrives as
  any build does (webhook or poll). Either way the policy decides, and says `base-image` in the history
  because the reconciler knows which apps' bases moved.
- A check that fails is a warning and a retry at the next turn, never the end of the loop.
- With more than one replica (serve.leader_election) every replica checks and shows; only the leader
  tells and rebuilds. The ledger is the leader's decision log: after a failover, the new leader may start
  one more rebuild of a digest the old one had already rebuilt (never a loop: one per replica at most).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from tagtrail.adapters.baseimages import AppBase, Memory
from tagtrail.adapters.baseimages.rebuild import Ledger, build_locally, dispatch
from tagtrail.adapters.notify import Message, Notifier
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Reconciler
from tagtrail.reconcile.bases import check_running, running_apps
from tagtrail.serve.controller.periodic import scheduled
from tagtrail.serve.metrics import Metrics

log = logging.getLogger("tagtrail.controller.bases")
FIRST = 30.0  # seconds from start to the first check (at most the interval)

Deploy = Callable[[set[str]], Awaitable[object]]  # reconcile these apps now


class BaseWatch:
    """Wired into the controller: `start(…)` in its `start`, `task` cancelled under its write lock in `stop`,
    and each new reconciler passed through `applied` (it knows the apps on a moved base)."""

    def __init__(
        self,
        metrics: Metrics,
        notifier: Callable[[], Notifier],  # the controller's, as it is after a reload
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.metrics = metrics
        self.notifier = notifier
        self.task: asyncio.Task[None] | None = None
        self.memory = Memory()
        self.rows: dict[str, AppBase] = {}
        self.told: set[tuple[str, str]] = set()  # (app, base digest) moves already notified
        self.last: float | None = None
        self._clock = clock
        self._sleep = sleep

    @property
    def moved(self) -> frozenset[str]:
        return frozenset(app for app, row in self.rows.items() if row.moved)

    def applied(self, reconciler: Reconciler) -> Reconciler:
        """`reconciler`, told which apps' bases have moved (what the watch knows survives a reload)."""
        reconciler.bases_moved = self.moved
        return reconciler

    def start(self, reconciler: Callable[[], Reconciler], lock: asyncio.Lock, deploy: Deploy) -> None:
        self.task = asyncio.create_task(self.loop(reconciler, lock, deploy), name="tagtrail-base-images")

    def wait(self, reconciler: Reconciler) -> float | None:
        """Seconds until the next check; None when checks are off."""
        interval = reconciler.project.config.base_images.interval
        if interval is None:
            return None
        if self.last is None:  # the first check lets serve's first reconcile go first
            self.last = self._clock() - interval.total_seconds() + min(interval.total_seconds(), FIRST)
        return max(0.0, self.last + interval.total_seconds() - self._clock())

    async def run_once(self, reconciler: Reconciler, lock: asyncio.Lock, deploy: Deploy) -> list[AppBase]:
        """One check (what runs read under the write lock, as it is; the registry asked outside it, so a
        slow registry never holds a deploy back), then what the moves call for."""
        self.last = self._clock()
        try:
            async with lock:
                running = await running_apps(reconciler)
            rows = await check_running(reconciler, running, memory=self.memory)
        except TagtrailError as exc:
            log.warning("the base images could not be checked: %s", exc)
            return []
        self.rows = {row.app: row for row in rows}
        reconciler.bases_moved = self.moved
        self.metrics.base_moved.set(len(self.moved))
        moved = [row for row in rows if row.moved and row.current]
        if not reconciler.leads():  # a follower shows what it sees; the leader tells and rebuilds
            return rows
        await self._tell([row for row in moved if (row.app, row.current) not in self.told], reconciler)
        await self._rebuild(reconciler, moved, deploy)
        return rows

    async def _tell(self, rows: list[AppBase], reconciler: Reconciler) -> None:
        if not rows:
            return
        lines = [
            f"{row.app}: {row.base} moved from {str(row.used)[:19]}… to {str(row.current)[:19]}…"
            f" ({reconciler.project.config.base_images.on_change_of(row.app)})"
            for row in rows
        ]
        for row in rows:
            self.told.add((row.app, str(row.current)))
        log.info("base images moved: %s", "; ".join(lines))
        await self.notifier().send_async(Message("tagtrail: base images moved", "\n".join(lines), "warning"))

    async def _rebuild(self, reconciler: Reconciler, moved: list[AppBase], deploy: Deploy) -> None:
        project = reconciler.project
        settings = project.config.base_images
        ledger = Ledger(project.log.path)
        via = "github" if settings.github is not None else "local"
        claimed = [
            row
            for row in moved
            if settings.on_change_of(row.app) == "rebuild"
            and await asyncio.to_thread(ledger.claim, row.app, str(row.current), via)
        ]
        if not claimed:
            return
        started: list[str] = []
        for names, commit in _batches(claimed, github=settings.github is not None):
            try:
                if settings.github is not None:
                    await dispatch(settings.github, names)
                elif settings.local is not None:
                    branch = project.config.deploy.branches_of(names[0])[0]
                    await build_locally(settings.local, project.config_path, names, commit, branch)
            except TagtrailError as exc:  # not started: the next check may try again
                for row in claimed:
                    if row.app in names:
                        await asyncio.to_thread(ledger.release, row.app, str(row.current))
                log.warning("a rebuild on a moved base could not be started: %s", exc)
                await self.notifier().send_async(
                    Message("tagtrail: a base-image rebuild failed", str(exc), "failure")
                )
                continue
            started += names
        for app in started:
            self.metrics.base_rebuilds.labels(app, via).inc()
        if started:
            log.info("rebuilding %s on their moved base images (%s)", ", ".join(started), via)
        if started and via == "local":
            await deploy(set(started))

    async def loop(self, reconciler: Callable[[], Reconciler], lock: asyncio.Lock, deploy: Deploy) -> None:
        """Until cancelled: wait for the interval, check, act, repeat (a turn that raises: `periodic.every`)."""

        due, run = lambda: self.wait(reconciler()), lambda: self.run_once(reconciler(), lock, deploy)
        await scheduled("base-images", due, run, self.metrics, sleep=self._sleep)


def _batches(rows: list[AppBase], *, github: bool) -> list[tuple[list[str], str | None]]:
    """The rebuilds to start: one workflow run for every app (it builds the branch's head), or one local
    build per commit that runs (a worktree each)."""
    if github:
        return [(sorted(row.app for row in rows), None)]
    found: dict[str | None, list[str]] = {}
    for row in sorted(rows, key=lambda r: r.app):
        found.setdefault(row.commit, []).append(row.app)
    return [(names, commit) for commit, names in found.items()]

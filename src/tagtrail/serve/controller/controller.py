"""The reconcile loop of `tagtrail serve`: polls on an interval, acts at once on webhook hints.

- Every app is polled on its interval (`Schedule`); a transient failure backs off, a permanent one waits.
- A webhook is only a hint that an app may have a new image: the registry is read again and the policy
  decides, so a forged or stale payload can never deploy an older or foreign tag. Hints of one commit
  coalesce (`Coalescer`), so one CI run becomes one deploy commit.
- One reconcile at a time (one deploy repository). Stopping waits for the write in progress, so a deploy is
  never half made. The config is reloaded on request (SIGHUP) or when the file changed; a bad new config
  keeps the old one running. Loading, git and SQLite run in worker threads: the event loop keeps serving
  webhooks and the dashboard while a reconcile runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tagtrail.adapters.history import DecisionRecord, HistoryEntry
from tagtrail.adapters.notify import Notifier
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import Config, load_config
from tagtrail.errors import ConfigError, GitError, TagtrailError
from tagtrail.reconcile import Reconciler, Report, history
from tagtrail.reconcile.outcome import Outcome, outcome_of
from tagtrail.serve.controller import announce, leadership, snapshot
from tagtrail.serve.controller import lanes as environments
from tagtrail.serve.controller.bases import BaseWatch
from tagtrail.serve.controller.decisions import Decisions
from tagtrail.serve.controller.hints import Hints
from tagtrail.serve.controller.periodic import every
from tagtrail.serve.controller.prune import Pruner
from tagtrail.serve.controller.results import Results
from tagtrail.serve.controller.rollouts import Rollouts
from tagtrail.serve.controller.schedule import WHOLE, Schedule
from tagtrail.serve.controller.triggers import Coalescer
from tagtrail.serve.metrics import Metrics

log = logging.getLogger("tagtrail.controller")
ACTOR = "tagtrail serve"


class Controller:
    def __init__(
        self,
        config_path: Path,
        *,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        reconcilers: Callable[[Config, Path], Reconciler] | None = None,
    ) -> None:
        self.config_path = config_path.resolve()
        self.config: Config = load_config(self.config_path)
        self._config_text = _read_bytes(self.config_path)
        self.notifier = notifier or Notifier.from_config(self.config)
        self.metrics = metrics or Metrics()
        self.status = snapshot.Status()
        self.results = Results(self.status, self.metrics, self.notifier)
        self.pruner = Pruner(self.metrics, self.notifier)  # retention.schedule: off unless set
        self.lock = asyncio.Lock()  # one write at a time to the deploy repository
        self.rollouts = Rollouts(self.results, self.lock)  # deploy commits followed: applied_by, cluster
        self.bases = BaseWatch(self.metrics, lambda: self.notifier)  # base_images.interval
        self.snapshot = snapshot.Snapshot()
        self.live = snapshot.Broadcast()
        self.triggers = Coalescer(clock)
        self.schedule = Schedule(clock)
        self.closing = asyncio.Event()  # set when the server starts to stop: live-update streams end
        self._wake = asyncio.Event()
        self.hints = Hints(self)
        self._task: asyncio.Task[None] | None = None
        self._prunes: asyncio.Task[None] | None = None
        self._stopping = False
        self._pull_error: str | None = None
        self._reconcilers = reconcilers  # how a config becomes a Reconciler (fast tests use fakes)
        # serve.leader_election: one of several replicas
        self.elector = leadership.elector_for(self.config, self.metrics, self.hint_all)
        self._lease: asyncio.Task[None] | None = None
        self.reconciler = self._new_reconciler()
        self.decisions = Decisions(lambda: self.reconciler.project.log, self.elector)  # the leader's
        self.commit_url = snapshot.commit_url(self.config, self.config_path)

    def _new_reconciler(self) -> Reconciler:
        self.client = RegistryClient(self.config.registries)
        self.lanes = environments.Lanes()  # the environments after the first (the dashboard's), in order
        if self._reconcilers is not None:
            return self._reconcilers(self.config, self.config_path)
        self.client.stats.subscribe(
            lambda registry, status: self.metrics.registry_requests.labels(registry, status).inc()
        )
        lanes = environments.reconcilers(self.config, self.config_path, self.client, self.elector)
        self.lanes = environments.Lanes(lanes[1:])
        return self.bases.applied(lanes[0])

    # Lifecycle and config -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self.elector is not None:
            lease = leadership.lead(self.elector, self.metrics)
            self._lease = asyncio.create_task(lease, name="tagtrail-lease")
        poll = every("poll", self._poll, self.metrics, until=lambda: self._stopping)
        self._task = asyncio.create_task(poll, name="tagtrail-reconcile")
        prunes = self.pruner.loop(lambda: self.reconciler, self.lock)
        self._prunes = asyncio.create_task(prunes, name="tagtrail-prune")
        self.bases.start(lambda: self.reconciler, self.lock, self.reconcile)
        self.rollouts.resume(self.reconciler, self._rolled_out)

    async def stop(self) -> None:
        """Finish the write in progress (never half a deploy), then stop."""
        self._stopping = True
        self._wake.set()
        await self.hints.settle()
        await self.rollouts.stop()
        async with self.lock:
            for task in (self._task, self._prunes, self._lease, self.bases.task):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        await environments.close([self.reconciler, *self.lanes.after], self.client)

    async def reload(self, *, hint: bool = True) -> bool:
        """Read the config again (in a worker thread); a bad one is reported and the running one kept."""
        text = await asyncio.to_thread(_read_bytes, self.config_path)
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            self._config_text = text  # reported once; the next change is read again
            self.status.config_error = str(exc).splitlines()[0]
            log.error(  # noqa: TRY400 (one line for a user's mistake, not a traceback)
                "the new config is not valid, keeping the running one: %s", self.status.config_error
            )
            self.live.publish("config")
            return False
        old, old_lanes = self.client, [self.reconciler, *self.lanes.after]
        self.status.config_error = None
        self.config, self._config_text = config, text
        self.notifier = self.results.notifier = self.pruner.notifier = Notifier.from_config(config)
        self.reconciler = self._new_reconciler()
        self.hints.forget_commits()
        self.commit_url = snapshot.commit_url(self.config, self.config_path)
        await old.aclose()
        await environments.close(old_lanes)
        log.info("config reloaded from %s", self.config_path)
        self.live.publish("config")
        if hint:
            self.hint_all("config reloaded")
        return True

    async def reload_if_changed(self) -> None:
        """tagtrail.yaml changed on disk (a pin committed from the CLI, a git pull, an edit): read it again."""
        if await asyncio.to_thread(_read_bytes, self.config_path) != self._config_text:
            await self.reload(hint=False)

    @property
    def ready(self) -> tuple[bool, str]:
        return self.status.ready(self.config.serve.interval)

    # Triggers -----------------------------------------------------------------------------------------

    def hint_all(self, why: str) -> None:
        log.info("reconciling every app: %s", why)
        self.schedule.everything_now()
        self.triggers.hint_all()
        self._wake.set()

    async def hint(self, image: str, tag: str | None, source: str) -> str | None:
        """A webhook says `image:tag` was pushed: schedule its app (coalescing the images of one commit).
        Returns the app, or None when the image is not managed or the tag is not a build it deploys."""
        if self.elector is not None and not self.elector.leading:
            return await leadership.forward(self.elector, self.reconciler.project.matcher, image, tag, source)
        return self.hints.hint(image, tag, source)

    def wake(self) -> None:
        self._wake.set()

    # The loop -----------------------------------------------------------------------------------------

    async def _poll(self) -> None:
        """One turn of the loop: reconcile what is hinted or due, else wait for a hint or the next deadline."""
        hinted, everything = self.triggers.take()
        due = self.schedule.due()
        if everything or not self.schedule.known or hinted or due:
            if (everything or due or not self.schedule.known) and self.config.serve.pull:
                await self._pull()
            whole = everything or not self.schedule.known or WHOLE in due
            await self.reconcile(None if whole else hinted | due)
            return
        deadlines = [
            d for d in (self.triggers.next_deadline(), self.schedule.next_deadline()) if d is not None
        ]
        self._wake.clear()
        if self.triggers.pending:
            return
        sleep = max(0.0, min(deadlines) - self.triggers.clock()) if deadlines else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=sleep)

    async def _pull(self) -> None:
        """Fast-forward the checkout from its remote (config, pins and commits pushed by others)."""
        try:
            await self.reconciler.project.target.sync()
        except TagtrailError as exc:
            if str(exc) != self._pull_error:
                log.warning("the checkout could not be brought up to date: %s", exc)
            self._pull_error = str(exc)
        else:
            self._pull_error = None

    async def reconcile(self, apps: set[str] | None = None, actor: str = ACTOR) -> Report | None:
        """Plan and deploy (one commit) the given apps, or every app. A person's deploy (another actor) skips
        the soak time and cooldown that hold automatic deploys back."""
        async with self.lock:
            if self._stopping and self._task is not None and asyncio.current_task() is self._task:
                return None
            started = time.monotonic()
            await self.reload_if_changed()
            automatic = actor == ACTOR
            known = set(self.status.planned)
            held = self.triggers.held() if automatic else set()
            chosen = (
                None if not known or (apps is None and not held) else sorted((apps or known) & known - held)
            )
            if chosen is not None and not chosen:
                ok = sorted((apps or known) & known)
                self.schedule.succeeded(ok, interval_of(self.config), self.config.serve.jitter)
                return None
            report = await self._run(chosen, actor, automatic)
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)
            await self._refresh_snapshot()
            self.live.publish("reconciled")
            return report

    async def _run(self, chosen: list[str] | None, actor: str, automatic: bool) -> Report | None:
        """One reconcile, its outcome told to the schedule and (Results) to the status, metrics and people."""
        names = chosen or sorted(self.status.planned) or [WHOLE]  # no app known yet: the whole run backs off
        counted = self.reconciler.leads()  # a follower only plans: its metrics count no reconcile
        try:
            report = await self.reconciler.run(chosen, actor=actor, automatic=automatic, prefetch=True)
        except Exception as error:  # a bug too must not end the loop: told, and polled again later
            await self.results.failed(error, counted=counted)
            if outcome_of(error) is Outcome.RETRY:
                self.schedule.retry(names, interval_of(self.config))
            else:
                self.schedule.stalled(names, interval_of(self.config))
            return None
        await self.results.succeeded(report, self.config.notify.registry_errors, counted=counted)
        self.rollouts.follow(self.reconciler, report, self._rolled_out)
        self.schedule.reported(report.outcomes(), interval_of(self.config), self.config.serve.jitter)
        await self.lanes.run(chosen, actor, automatic, self.rollouts, self._rolled_out, self.schedule)
        return report

    # Dashboard actions (recorded with their actor) ----------------------------------------------------

    async def act(self, work: Callable[[Reconciler], Awaitable[Report]], actor: str) -> Report:
        """Run a rollback, pin or unpin from the dashboard, between reconciles, and notify."""
        async with self.lock:
            try:
                report = await work(self.reconciler)
            except GitError as exc:
                await self.results.send([announce.action_failed(str(exc))])
                raise
            finally:
                await self.reload_if_changed()  # a pin or unpin changed tagtrail.yaml
                await self._refresh_snapshot()
        await self.results.acted(report, actor)
        self.hint_all(f"{actor} changed the deploy repository")
        return report

    async def deploy_now(self, app: str, actor: str) -> Report | None:
        """Deploy the newest eligible build of one app now (a person asked: no soak time, no cooldown)."""
        if app not in self.status.planned:
            raise TagtrailError(f"{app} is not an app this controller deploys")
        return await self.reconcile({app}, actor=actor)

    async def _refresh_snapshot(self) -> None:
        planned = [self.status.planned[a] for a in sorted(self.status.planned)]
        self.snapshot = await snapshot.take(self.reconciler, planned, self.decisions)
        snapshot.measured(self.snapshot, self.metrics, self.config)

    async def _rolled_out(self) -> None:
        async with self.lock:
            await self._refresh_snapshot()
        self.live.publish("rollout")

    async def app_detail(
        self, app: str, decisions: int = 50
    ) -> tuple[list[HistoryEntry], list[DecisionRecord]]:
        """An app's deploy history (newest first) and its recent decisions."""
        async with self.lock:
            entries = await history(self.reconciler, app)
        return entries, await self.decisions.recent(app, decisions)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def interval_of(config: Config) -> Callable[[str], float]:
    """Seconds between polls of each app, as the config says (the app's, its registry's, or serve's)."""

    def seconds(app: str) -> float:
        if app == WHOLE:
            return config.serve.interval.total_seconds()
        return config.poll_interval(app, ImageRef.parse(config.image_for(app)).registry).total_seconds()

    return seconds

"""The reconcile loop of `tagtrail serve`: polls on an interval, acts at once on webhook hints.

- Every app is polled on its interval (serve.interval, or the app's or its registry's), spread by jitter.
- A webhook is only a hint that an app may have a new image: the registry is read again and the policy
  decides, so a forged or stale payload can never deploy an older or foreign tag.
- Hints of one commit coalesce: when a pushed tag names commit S and S changed several apps (as the CI
  build matrix sees it), the controller waits (up to serve.coalesce_max) for the images of all of them, so
  one CI run becomes one deploy commit. Hints that arrive while a reconcile runs join the next one.
- One reconcile at a time (one deploy repository). Stopping waits for the write in progress, so a deploy is
  never half made. The config is reloaded on request (SIGHUP); a bad new config keeps the old one running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tagtrail import apps as app_discovery
from tagtrail.build import source_url
from tagtrail.config import CONFIG_NAME, Config, load_config
from tagtrail.deployer import DeployReport, Session, deploy_async, history
from tagtrail.errors import ConfigError, GitError, TagtrailError
from tagtrail.gitrepo import GitRepo
from tagtrail.history import DecisionRecord, HistoryEntry, deploy_history
from tagtrail.metrics import Metrics
from tagtrail.notify import Message, Notifier
from tagtrail.planner import Planned, matcher_for
from tagtrail.registry import ImageRef, RegistryClient
from tagtrail.scheme import ParsedTag

log = logging.getLogger("tagtrail.controller")
ACTOR = "tagtrail serve"


@dataclass
class _Waiting:
    """Hints for one commit, waiting for the images of the other apps it changed."""

    expected: set[str]
    seen: set[str] = field(default_factory=set)
    deadline: float = 0.0


@dataclass
class Status:
    """What the dashboard and /readyz read."""

    planned: dict[str, Planned] = field(default_factory=dict)
    last_reconcile: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_commit: str | None = None
    config_error: str | None = None


@dataclass
class Snapshot:
    """The dashboard's table, taken after each reconcile and action (so a page view costs no git or registry
    reads and never waits for a deploy)."""

    planned: list[Planned] = field(default_factory=list)
    pins: dict[str, str] = field(default_factory=dict)
    last_deploy: dict[str, HistoryEntry] = field(default_factory=dict)
    last_decision: dict[str, DecisionRecord] = field(default_factory=dict)
    last_result: dict[str, DecisionRecord] = field(default_factory=dict)  # the last decision that acted


class Controller:
    def __init__(
        self,
        config_path: Path,
        *,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_path = config_path.resolve()
        self.config: Config = load_config(self.config_path)
        self._config_text = self._read_config_text()
        self.notifier = notifier or Notifier.from_config(self.config)
        self.metrics = metrics or Metrics()
        self.status = Status()
        self.clock = clock
        self.lock = asyncio.Lock()  # one write at a time to the deploy repository
        self._wake = asyncio.Event()
        self._hinted: set[str] = set()
        self._waiting: dict[str, _Waiting] = {}
        self._due: dict[str, float] = {}
        self._expected: dict[str, set[str] | None] = {}
        self._registry_failures: dict[str, int] = {}
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._periodic = False
        self._source: GitRepo | Literal[False] | None = None  # the monorepo checkout (False: none here)
        self._pull_error: str | None = None
        self.closing = asyncio.Event()  # set when the server starts to stop: live-update streams end
        self.client = self._new_client()
        self.snapshot = Snapshot()
        self.commit_url = self._commit_url()

    # Lifecycle ----------------------------------------------------------------------------------------

    def _new_client(self) -> RegistryClient:
        client = RegistryClient(self.config.registries)
        client.stats.subscribe(
            lambda registry, status: self.metrics.registry_requests.labels(registry, status).inc()
        )
        return client

    def session(self, actor: str = ACTOR) -> Session:
        return Session(self.config, self.config_path, actor, shared_client=self.client, keep_worktree=True)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="tagtrail-reconcile")

    async def stop(self) -> None:
        """Finish the write in progress (never half a deploy), then stop."""
        self._stopping = True
        self._wake.set()
        async with self.lock:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self.client.aclose()

    def reload(self, *, hint: bool = True) -> bool:
        """Read the config again; a bad one is reported and the running one kept."""
        text = self._read_config_text()
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self._config_text = text  # reported once; the next change is read again
            self._config_rejected(str(exc).splitlines()[0])
            return False
        self.status.config_error = None
        old_client = self.client
        self.config = config
        self._config_text = text
        self.notifier = Notifier.from_config(config)
        self.client = self._new_client()
        self._expected.clear()
        self._source = None
        self.commit_url = self._commit_url()
        asyncio.get_running_loop().create_task(old_client.aclose())
        log.info("config reloaded from %s", self.config_path)
        self._publish("config")
        if hint:
            self.hint_all("config reloaded")
        return True

    def _read_config_text(self) -> bytes | None:
        try:
            return self.config_path.read_bytes()
        except OSError:
            return None

    def reload_if_changed(self) -> None:
        """tagtrail.yaml changed on disk (a pin committed from the CLI, a git pull, an edit): read it again."""
        if self._read_config_text() != self._config_text:
            self.reload(hint=False)

    def _config_rejected(self, error: str) -> None:
        self.status.config_error = error
        log.error("the new config is not valid, keeping the running one: %s", error)
        self._publish("config")

    def _commit_url(self) -> str | None:
        """Where the dashboard links a commit: serve.commit_url, else the web page of the source repository."""
        if self.config.serve.commit_url:
            return self.config.serve.commit_url
        try:
            web = source_url(GitRepo.discover(self.config_path.parent).remote_url())
        except GitError:
            return None
        return f"{web}/commit/{{sha}}" if web else None

    # Triggers -----------------------------------------------------------------------------------------

    def app_of(self, image: str) -> str | None:
        """The app an image repository belongs to, if it is managed."""
        return matcher_for(self.config).app_of_pushed(image)

    def hint_all(self, why: str) -> None:
        log.info("reconciling every app: %s", why)
        self._due = dict.fromkeys(self._due, 0.0)
        self._hinted.add("*")
        self._wake.set()

    async def hint(self, image: str, tag: str | None, source: str) -> str | None:
        """A webhook says `image:tag` was pushed: schedule its app (coalescing the images of one commit).
        Returns the app, or None when the image is not managed."""
        app = self.app_of(image)
        if app is None:
            return None
        sha = None
        if tag:
            parsed = self.config.tag_scheme.parse(tag)
            branches = {self.config.tag_scheme.branch_token(b) for b in self.config.deploy.branches_of(app)}
            if not isinstance(parsed, ParsedTag) or parsed.branch not in branches:
                # only builds of the scheme on a deploy branch are ever deployed: nothing to look at
                log.debug("%s: %s:%s is not a build tagtrail deploys; ignored", source, app, tag)
                return None
            sha = parsed.sha
        expected = await self._apps_of_commit(sha) if sha else None
        if sha and expected and len(expected) > 1 and app in expected:
            waiting = self._waiting.setdefault(
                sha,
                _Waiting(expected, deadline=self.clock() + self.config.serve.coalesce_max.total_seconds()),
            )
            waiting.seen.add(app)
            log.info(
                "%s: %s:%s pushed (%s); waiting for %s",
                source,
                app,
                tag,
                sha,
                ", ".join(sorted(waiting.expected - waiting.seen)) or "nothing more",
            )
        else:
            self._hinted.add(app)
            log.info("%s: %s:%s pushed", source, app, tag or "?")
        self._wake.set()
        return app

    async def _apps_of_commit(self, sha: str) -> set[str] | None:
        """The apps commit `sha` changed (as `tagtrail apps --changed` sees it), among those deployed."""
        if sha in self._expected:
            return self._expected[sha]

        session = self.session()
        config = self.config

        def changed_in(repo: GitRepo) -> set[str] | None:
            # one git call: the paths the commit changed (against its first parent), as CI's diff sees them
            args = (
                "diff-tree",
                "-r",
                "-m",
                "--first-parent",
                "--root",
                "--no-commit-id",
                "--name-only",
                "-z",
                sha,
            )
            try:
                out = repo.run(*args)
            except GitError:
                repo.try_run("fetch", "--quiet")  # pushed after our last look
                try:
                    out = repo.run(*args)
                except GitError:
                    return None
            paths = [path for path in out.split("\0") if path]
            apps = app_discovery.discover(repo.root, config)
            if CONFIG_NAME in paths:  # the build settings may have changed: CI builds every app
                return {a.name for a in apps}
            return {a.name for a in apps if any(a.owns(path) for path in paths)}

        def compute() -> set[str] | None:
            try:
                if self._source is None:
                    self._source = session.source() or False
                if self._source:
                    return changed_in(self._source)
                # no checkout of the monorepo here (in a cluster): the deploy repository may be the monorepo
                with session.target.working_copy(for_commit=False) as copy:
                    return changed_in(copy.repo)
            except TagtrailError:
                return None

        found = await asyncio.to_thread(compute)
        deployed = set(self.status.planned)
        if found is not None and deployed:
            found &= deployed
        self._expected[sha] = found
        return found

    def _held(self) -> set[str]:
        """Apps whose newest pushed build waits for the images of the other apps of its commit: no other
        reconcile deploys them before the commit's images are all there (or its wait ran out)."""
        now = self.clock()
        return {
            app
            for waiting in self._waiting.values()
            if now < waiting.deadline and not waiting.seen >= waiting.expected
            for app in waiting.seen
        }

    # The loop -----------------------------------------------------------------------------------------

    def _batch(self) -> tuple[set[str] | None, float | None]:
        """The apps to reconcile now (None: all), and how long to sleep when there are none. Sets
        `_periodic` when the interval (not only a hint) asks for it."""
        now = self.clock()
        apps: set[str] = set()
        everything = "*" in self._hinted
        apps |= self._hinted - {"*"}
        self._hinted.clear()
        for sha, waiting in list(self._waiting.items()):
            if waiting.seen >= waiting.expected or now >= waiting.deadline:
                apps |= waiting.seen
                del self._waiting[sha]
        due = [app for app, when in self._due.items() if when <= now]
        self._periodic = bool(due) or everything or not self._due
        apps |= set(due)
        if everything or not self._due:
            return None, None
        if apps:
            return apps, None
        deadlines = [w.deadline for w in self._waiting.values()] + list(self._due.values())
        return set(), max(0.0, min(deadlines) - now) if deadlines else None

    async def _loop(self) -> None:
        while not self._stopping:
            apps, sleep = self._batch()
            if apps is None or apps:
                if self._periodic and self.config.serve.pull:
                    await self._pull()
                await self.reconcile(apps)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=sleep)

    async def _pull(self) -> None:
        """Fast-forward the checkout from its remote (config, pins and commits pushed by others)."""
        target = self.session().target
        try:
            await asyncio.to_thread(target.sync_checkout)
        except TagtrailError as exc:
            if str(exc) != self._pull_error:
                log.warning("the checkout could not be brought up to date: %s", exc)
            self._pull_error = str(exc)
        else:
            self._pull_error = None

    def _schedule(self, apps: list[str]) -> None:
        now = self.clock()
        for app in apps:
            registry = ImageRef.parse(self.config.image_for(app)).registry
            interval = self.config.poll_interval(app, registry).total_seconds()
            spread = interval * self.config.serve.jitter
            self._due[app] = now + interval + random.uniform(-spread, spread)  # noqa: S311 (spreading load)

    async def reconcile(self, apps: set[str] | None = None, actor: str = ACTOR) -> DeployReport | None:
        """Plan and deploy (one commit) the given apps, or every app. A person's deploy (another actor) skips
        the soak time and cooldown that hold automatic deploys back."""
        async with self.lock:
            if self._stopping and self._task is not None and asyncio.current_task() is self._task:
                return None
            started = time.monotonic()
            self.reload_if_changed()
            known = set(self.status.planned)
            held = self._held() if actor == ACTOR else set()
            if not known:
                chosen = None  # the first reconcile: every app, to learn them
            elif apps is None:
                chosen = sorted(known - held) if held else None
            else:
                chosen = sorted((apps & known) - held)
            if chosen is not None and not chosen:
                self._schedule(sorted((apps or known) & known))
                return None
            report: DeployReport | None = None
            try:
                report = await deploy_async(self.session(actor), chosen, automatic=actor == ACTOR)
            except GitError as exc:  # a rejected push after its retries, a remote that cannot be reached
                await self._failed(str(exc), notify=True)
            except TagtrailError as exc:
                await self._failed(str(exc))
            except Exception as exc:  # a bug must not end the loop: report it, poll again later
                log.exception("reconcile failed")
                await self._failed(f"internal error: {type(exc).__name__}: {exc}")
            if report is not None:
                await self._succeeded(report)
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)
            self._schedule(list(self.status.planned) if chosen is None else chosen)
            await self._take_snapshot()
            self._publish("reconciled")
            return report

    async def _failed(self, error: str, *, notify: bool = False) -> None:
        self.status.last_reconcile = datetime.now(UTC)
        self.status.last_error = error
        self.metrics.reconciles.labels("failed").inc()
        log.error("reconcile failed: %s", error)
        if notify:
            await self.notifier.send_async(Message("tagtrail: a deploy failed", error, "failure"))

    async def _succeeded(self, report: DeployReport) -> None:
        now = datetime.now(UTC)
        self.status.last_reconcile = now
        self.status.last_success = now
        self.status.last_error = None
        self.metrics.reconciles.labels("ok").inc()
        self.metrics.last_success.set(now.timestamp())
        for item in report.planned:
            self.status.planned[item.app] = item
        self.metrics.pending.set(
            sum(
                1
                for p in self.status.planned.values()
                if (p.decision.behind or 0) > 0 and p.app not in report.changed
            )
        )
        outcome = report.outcome
        if outcome is not None and outcome.commit:
            self.status.last_commit = outcome.commit
            result = "pushed" if outcome.pushed else "committed"
            log.info("deployed %s: commit %s %s", ", ".join(report.changed), outcome.commit[:12], result)
            for app in report.changed:
                self.metrics.deploys.labels(app, result).inc()
            targets = {p.app: p.target.tag for p in report.planned if p.target is not None}
            lines = [
                f"{a}: {report.previous.get(a) or 'nothing'} → {targets.get(a, '?')}" for a in report.changed
            ]
            await self.notifier.send_async(
                Message(
                    f"tagtrail deployed {', '.join(report.changed)}",
                    "\n".join(lines) + f"\ncommit {outcome.commit[:12]}",
                    "success",
                )
            )
            if outcome.then_exit not in (None, 0):
                await self.notifier.send_async(
                    Message(
                        "tagtrail: the command after a deploy failed",
                        f"deploy.git.then exited {outcome.then_exit} after commit {outcome.commit[:12]}",
                        "failure",
                    )
                )
        await self._registry_errors(report)

    async def _registry_errors(self, report: DeployReport) -> None:
        threshold = self.config.notify.registry_errors
        for item in report.planned:
            if item.decision.reason != "registry-error":
                self._registry_failures.pop(item.app, None)
                continue
            count = self._registry_failures.get(item.app, 0) + 1
            self._registry_failures[item.app] = count
            if count == threshold:
                await self.notifier.send_async(
                    Message(
                        f"tagtrail: cannot read the registry for {item.app}",
                        f"{count} polls in a row failed: {item.decision.sentence}",
                        "warning",
                    )
                )

    # Dashboard actions (recorded with their actor) ----------------------------------------------------

    async def act(self, action: Callable[[Session], DeployReport], actor: str) -> DeployReport:
        """Run a rollback, pin or unpin from the dashboard, between reconciles, and notify."""
        async with self.lock:
            try:
                report = await asyncio.to_thread(action, Session(self.config, self.config_path, actor))
            except GitError as exc:
                await self.notifier.send_async(Message("tagtrail: an action failed", str(exc), "failure"))
                raise
            finally:
                self.reload_if_changed()  # a pin or unpin changed tagtrail.yaml
                await self._take_snapshot()
        verb = "rolled back" if any(p.decision.reason == "rollback" for p in report.planned) else "changed"
        if report.outcome is not None and report.outcome.commit:
            await self.notifier.send_async(
                Message(
                    f"tagtrail: {', '.join(report.changed) or 'pins'} {verb}",
                    f"{actor}; commit {report.outcome.commit[:12]}",
                    "info",
                )
            )
        self.hint_all(f"{actor} changed the deploy repository")
        return report

    async def deploy_now(self, app: str, actor: str) -> DeployReport | None:
        """Deploy the newest eligible build of one app now (a person asked: no soak time, no cooldown)."""
        if app not in self.status.planned:
            raise TagtrailError(f"{app} is not an app this controller deploys")
        return await self.reconcile({app}, actor=actor)

    async def _take_snapshot(self) -> None:
        session = self.session()
        planned = [self.status.planned[a] for a in sorted(self.status.planned)]

        def take() -> Snapshot:
            apps = [item.app for item in planned]
            snapshot = Snapshot(planned, dict(self.config.deploy.pins))
            try:
                with session.target.working_copy(for_commit=False) as copy:
                    files, matcher = session.target.files, matcher_for(self.config)
                    for entry in deploy_history(copy.repo, files, matcher, until=apps):
                        snapshot.last_deploy.setdefault(entry.app, entry)
            except TagtrailError as exc:
                log.warning("the deploy history could not be read: %s", exc)
            snapshot.last_decision = session.log.last_each()
            snapshot.last_result = session.log.last_each(acted=True)
            return snapshot

        self.snapshot = await asyncio.to_thread(take)

    async def app_detail(
        self, app: str, decisions: int = 50
    ) -> tuple[list[HistoryEntry], list[DecisionRecord]]:
        """An app's deploy history (newest first) and its recent decisions."""
        session = self.session()
        async with self.lock:
            entries = await asyncio.to_thread(history, session, app)
        return entries, await asyncio.to_thread(session.log.recent, app, decisions)

    # Live updates -------------------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.discard(queue)

    def _publish(self, event: str) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    @property
    def ready(self) -> tuple[bool, str]:
        """Config loaded and a recent successful reconcile."""
        if self.status.last_success is None:
            return False, "no reconcile has succeeded yet"
        limit = 3 * self.config.serve.interval.total_seconds() + 60
        age = (datetime.now(UTC) - self.status.last_success).total_seconds()
        if age > limit:
            return False, f"the last successful reconcile was {int(age)} s ago"
        return True, "ready"

"""The reconciler: observe → decide → act → record, for one project, async from the top.

- observe: what the target declares, the registry's tags and the source repository's facts (Observer);
- decide: the pure policy, asked again with each fact it needs (evaluate);
- act: the target applies the change atomically; after a concurrent write it reads again, and the policy
  decides again on what is there now, with the config as it is there now (a pin that landed wins);
- record: every decision, with what came of it, in the decision log, in one transaction.

It returns a Report whose outcomes say, per app, deployed / held / nothing / stalled / retry. The CLI
wraps each call in `asyncio.run`; `tagtrail serve` keeps one Reconciler (and so its caches) per config.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tagtrail.config import Config, parse_config
from tagtrail.errors import GitError, NotLeader, TagtrailError
from tagtrail.gitrepo import GitRepo
from tagtrail.history import DecisionLog, default_log_path
from tagtrail.reconcile.claims import Memory, source_clone
from tagtrail.reconcile.evaluate import Round, evaluate
from tagtrail.reconcile.moved import MovedBase
from tagtrail.reconcile.observe import Observer, Registry
from tagtrail.reconcile.outcome import Planned, Report
from tagtrail.reconcile.record import records
from tagtrail.refs import Matcher
from tagtrail.registry import ImageRef, RegistryClient
from tagtrail.targets.base import Applied, AppState, Change, Decide, Declared, ImageChange, Narrows, Target
from tagtrail.targets.gitops import GitOpsTarget

if TYPE_CHECKING:  # lightkube is loaded only where a cluster is configured
    from tagtrail.kube.cluster import Cluster
    from tagtrail.targets.kubernetes import KubernetesTarget

Clock = Callable[[], datetime]


def matcher_for(config: Config) -> Matcher:
    return Matcher.from_config(config)


def target_for(config: Config, config_path: Path, matcher: Matcher, *, keep: bool = False) -> Target:
    """Where deploys land: the cluster (deploy.kubernetes, direct mode), else files in git."""
    if config.deploy.kubernetes is not None:
        from tagtrail.targets.kubernetes import KubernetesTarget  # noqa: PLC0415

        return KubernetesTarget(config, matcher)
    return GitOpsTarget(config, config_path, matcher, keep=keep)


def with_pins(config: Config, declared: Declared) -> Config:
    """The config with the pins the target keeps itself (cluster annotations) added to tagtrail.yaml's."""
    if not declared.pins:
        return config
    pins = {**config.deploy.pins, **declared.pins}
    return config.model_copy(update={"deploy": config.deploy.model_copy(update={"pins": pins})})


def decision_log(config: Config) -> DecisionLog:
    path = config.deploy.decision_log
    return DecisionLog(Path(path).expanduser() if path else default_log_path())


class Reconciler:
    """One project's deploys. Built per command by the CLI (`open`), kept for its config's lifetime by
    the controller, which passes its long-lived client and a target that keeps its worktree."""

    def __init__(
        self,
        config: Config,
        config_path: Path,
        client: Registry,
        *,
        target: Target | None = None,
        log: DecisionLog | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.client = client
        self.matcher = matcher_for(config)
        self.target: Target = target or target_for(config, config_path, self.matcher)
        self.log = log or decision_log(config)
        self.clock = clock
        self._source: GitRepo | bool | None = False  # False: not looked for yet
        self.memory = Memory()  # what the claims checks learned that cannot change (kept by serve)
        self._remembered = False  # the decision log's digests read into memory
        self._cluster: Cluster | None = None  # observing what runs (GitOps + observe)
        self._fence: Callable[[], None] | None = None
        self.bases_moved: frozenset[str] = frozenset()  # set by tagtrail serve's base-image watch
        # asked of an app whose winner is its running code rebuilt, where no base watch said its base moved
        self.moved_base = MovedBase(client, config, config_path.parent, self.matcher)

    @classmethod
    @asynccontextmanager
    async def open(cls, config: Config, config_path: Path) -> AsyncIterator[Reconciler]:
        """A reconciler with a registry client of its own, closed afterwards."""
        async with RegistryClient(config.registries) as client:
            reconciler = cls(config, config_path, client)
            try:
                yield reconciler
            finally:
                await reconciler.aclose()

    def direct(self) -> KubernetesTarget | None:
        """The target when it is the cluster itself (direct mode, `deploy.kubernetes`), else None."""
        if self.config.deploy.kubernetes is None:
            return None
        from tagtrail.targets.kubernetes import KubernetesTarget  # noqa: PLC0415

        return self.target if isinstance(self.target, KubernetesTarget) else None

    def cluster(self) -> Cluster | None:
        """The cluster whose workloads say what runs (`kubernetes:`), or None where none is configured."""
        direct = self.direct()
        if direct is not None:
            return direct.cluster
        if self._cluster is None and self.config.kubernetes is not None:
            from tagtrail.kube.cluster import Cluster  # noqa: PLC0415

            self._cluster = Cluster(self.config.kubernetes, self.matcher)
        return self._cluster

    async def aclose(self) -> None:
        await self.target.aclose()
        if self._cluster is not None:
            await self._cluster.aclose()

    async def source(self) -> GitRepo | None:
        """The repository the images are built from, for the ancestry guard and the commit checks: a clone
        of `deploy.source.url`, else the checkout tagtrail.yaml is in (None: not a git repository)."""
        if self._source is False:
            settings = self.config.deploy.source
            if settings is not None:  # a clone that cannot be made is an error, never "unchecked"
                self._source = await asyncio.to_thread(source_clone, settings)
            else:
                self._source = await asyncio.to_thread(_discover, self.config_path.parent)
        return self._source if isinstance(self._source, GitRepo) else None

    async def observer(self) -> Observer:
        """An observer for one run, with this reconciler's memory and every deploy branch (one fetch)."""
        deploy = self.config.deploy
        branches = [*deploy.branches, *(b for app in deploy.apps for b in deploy.branches_of(app))]
        if not self._remembered:  # the digests chosen before, by any process: a tag moved since shows
            self._remembered = True
            self.memory.remember(await asyncio.to_thread(self.log.digests_seen))
        return Observer(self.client, await self.source(), self.memory, branches)

    # Plan and deploy ----------------------------------------------------------------------------------

    async def plan(
        self,
        apps: list[str] | None = None,
        *,
        actor: str,
        record: bool = True,
        automatic: bool = False,
        declared: Declared | None = None,
    ) -> list[Planned]:
        """What a deploy would do, per app, writing nothing (but the decision log). `declared`: the target
        as the caller has just read it, not read again."""
        if declared is None:
            declared = await self.target.declared()
        observer = await self.observer()
        try:
            config = with_pins(self.config, declared)
            planned = await self._evaluate(
                config, observer, select(declared.states, apps, self.target.where), automatic
            )
        finally:
            await observer.close()
        if record:
            await self.record(Report(planned), actor, automatic=automatic)
        return planned

    async def run(
        self,
        apps: list[str] | None = None,
        *,
        actor: str,
        automatic: bool = False,
        dry_run: bool = False,
        skip_ci: bool | None = None,
        prefetch: bool = False,
    ) -> Report:
        """Apply every pending update in one atomic change. With `prefetch` (named apps), their tag lists
        are asked for while the target gets ready (git fetches). A replica that does not lead plans only."""
        if not self.leads():
            return Report(await self.plan(apps, actor=actor, record=False, automatic=automatic))
        observer = await self.observer()
        if prefetch and apps:
            observer.prefetch(ImageRef.parse(self.matcher.canonical(app)) for app in apps)
        report = Report([])
        first_config: list[str | None] = []

        async def decide(declared: Declared) -> Change:
            config = with_pins(self._config_now(declared, first_config), declared)
            states = select(declared.states, apps, self.target.where)
            report.planned = await self._evaluate(config, observer, states, automatic, prove=not dry_run)
            git = config.deploy.git
            skip = bool(skip_ci) if skip_ci is not None else bool(git and git.skip_ci)
            images = tuple(
                ImageChange(p.app, target, p.decision.reason, p.decision.sentence, p.built_from)
                for p in report.planned
                if (target := p.target) is not None
            )
            self.check_fence()  # the last moment before the target writes
            return Change("deploy", actor, images, skip_ci=skip)

        try:
            report.applied = await self._apply(decide, apps, dry_run)
        finally:
            await observer.close()
        if not dry_run:
            await self.record(report, actor, automatic=automatic)
        return report

    async def _apply(self, decide: Decide, apps: list[str] | None, dry_run: bool) -> Applied:
        """The target applies the change; for named apps (a webhook hint), a target that can reads and writes
        only what holds them, so a push costs the same whatever the number of apps (issue 25)."""
        if apps and isinstance(self.target, Narrows):
            return await self.target.apply_for(apps, decide, dry_run=dry_run)
        return await self.target.apply(decide, dry_run=dry_run)

    @property
    def fence(self) -> Callable[[], None] | None:
        """With more than one replica: raises NotLeader unless this one leads; checked right before every
        write (the target's own later writes, a cluster rollback, check it too)."""
        return self._fence

    @fence.setter
    def fence(self, check: Callable[[], None] | None) -> None:
        self._fence = check
        direct = self.direct()
        if direct is not None:
            direct.fence = check

    def leads(self) -> bool:
        """Whether this replica may write (always, without leader election)."""
        try:
            self.check_fence()
        except NotLeader:
            return False
        return True

    def check_fence(self) -> None:
        if self.fence is not None:
            self.fence()

    def _config_now(self, declared: Declared, seen: list[str | None]) -> Config:
        """The config to decide with: the one loaded, unless tagtrail.yaml changed where the target keeps
        it since the first attempt (a pin or rollback pushed while we retried): then that one."""
        if not seen:
            seen.append(declared.config_text)
            return self.config
        if declared.config_text is None or declared.config_text == seen[0]:
            return self.config
        return parse_config(declared.config_text, str(self.config_path))

    async def _evaluate(
        self,
        config: Config,
        observer: Observer,
        states: dict[str, AppState],
        automatic: bool,
        *,
        prove: bool = False,
    ) -> list[Planned]:
        last = await asyncio.to_thread(self.log.last_automatic_deploys) if automatic else {}
        run = Round(
            config,
            self.matcher,
            observer,
            self.clock(),
            automatic,
            last,
            prove,
            self.config_path.parent,
            bases_moved=self.bases_moved,
            base_moved=self.moved_base,
        )
        return await evaluate(run, states)

    # Record -------------------------------------------------------------------------------------------

    async def record(self, report: Report, actor: str, *, automatic: bool = False) -> None:
        """Every decision of `report`, with what came of it, in the decision log in one transaction."""
        await asyncio.to_thread(self.log.record, *records(report, actor, automatic=automatic))


def select(
    states: Mapping[str, AppState], apps: list[str] | None, where: str = "the deploy files"
) -> dict[str, AppState]:
    """The states of the apps asked for (all when none are named); an unknown app is an error."""
    if not apps:
        return dict(states)
    unknown = [a for a in apps if a not in states]
    if unknown:
        known = ", ".join(states) or "none"
        raise TagtrailError(f"no reference to app '{unknown[0]}' in {where} (apps there: {known})")
    return {a: states[a] for a in apps}


def _discover(folder: Path) -> GitRepo | None:
    try:
        return GitRepo.discover(folder)
    except GitError:
        return None

"""The reconciler: observe → decide → act → record, for one project, async from the top.

- observe: what the target declares, the registry's tags and the source repository's facts (Observer);
- decide: the pure policy, asked again with each fact it needs (evaluate);
- act: the target writes the change atomically (`write`: read → decide → write, and on a conflict refresh
  and decide again on what is there now, with the config as it is there now, so a pin that landed wins;
  the one loop for every target);
- record: every decision, with what came of it, in the decision log, in one transaction.

It returns a Report whose outcomes say, per app, deployed / held / nothing / stalled / retry. The project
(config, clients, decision log, target) is given: `targets.factory.open_project` builds it. The CLI wraps
each call in `asyncio.run`; `tagtrail serve` keeps one Reconciler (and so its caches) per config.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import Config, parse_config
from tagtrail.config.environments import view
from tagtrail.errors import NotLeader, TagtrailError
from tagtrail.reconcile.claims import Memory
from tagtrail.reconcile.evaluate import Round, evaluate
from tagtrail.reconcile.lanes import evidence_reader
from tagtrail.reconcile.moved import MovedBase
from tagtrail.reconcile.observe import Observer, Registry
from tagtrail.reconcile.outcome import Planned, Report
from tagtrail.reconcile.record import records
from tagtrail.reconcile.reviews import proposed, reviewed
from tagtrail.targets.base import Applied, AppState, Change, Conflict, Decide, Declared, ImageChange
from tagtrail.targets.capabilities import NARROWS
from tagtrail.targets.factory import open_lanes, open_project
from tagtrail.targets.project import Project

Clock = Callable[[], datetime]


def with_pins(config: Config, declared: Declared) -> Config:
    """The config with the pins the target keeps itself (cluster annotations) added to tagtrail.yaml's."""
    if not declared.pins:
        return config
    pins = {**config.deploy.pins, **declared.pins}
    return config.model_copy(update={"deploy": config.deploy.model_copy(update={"pins": pins})})


class Reconciler:
    """The algorithm, for one project. Built per command by the CLI (`open`), kept for its config's lifetime
    by the controller, whose project has a long-lived client and a target that keeps its worktree."""

    def __init__(self, project: Project[Registry], *, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.project = project
        self.clock = clock
        self.memory = Memory()  # what the claims checks learned that cannot change (kept by serve)
        self._remembered = False  # the decision log's digests read into memory
        self.bases_moved: frozenset[str] = frozenset()  # set by tagtrail serve's base-image watch
        # asked of an app whose winner is its running code rebuilt, where no base watch said its base moved
        self.moved_base = MovedBase(
            project.client, project.config, project.config_path.parent, project.matcher
        )

    @classmethod
    @asynccontextmanager
    async def open(cls, config: Config, config_path: Path) -> AsyncIterator[Reconciler]:
        """A reconciler with a registry client of its own, closed afterwards."""
        async with RegistryClient(config.registries) as client:
            reconciler = cls(open_project(config, config_path, client))
            try:
                yield reconciler
            finally:
                await reconciler.project.aclose()

    @classmethod
    @asynccontextmanager
    async def open_lanes(cls, config: Config, config_path: Path) -> AsyncIterator[list[Reconciler]]:
        """A reconciler per environment, in the order builds go through them, sharing one registry client."""
        async with RegistryClient(config.registries) as client:
            projects: list[Project[Registry]] = open_lanes(config, config_path, client)
            lanes = share_memory([cls(project) for project in projects])
            try:
                yield lanes
            finally:
                for lane in lanes:
                    await lane.project.aclose()

    async def observer(self) -> Observer:
        """An observer for one run, with this reconciler's memory and every deploy branch (one fetch)."""
        deploy = self.project.config.deploy
        branches = [*deploy.branches, *(b for app in deploy.apps for b in deploy.branches_of(app))]
        if not self._remembered:  # the digests chosen before, by any process: a tag moved since shows
            self._remembered = True
            self.memory.remember(await asyncio.to_thread(self.project.log.digests_seen))
        return Observer(self.project.client, await self.project.source(), self.memory, branches)

    # Plan and deploy ----------------------------------------------------------------------------------

    async def plan(
        self,
        apps: list[str] | None = None,
        *,
        actor: str,
        record: bool = True,
        automatic: bool = False,
        declared: Declared | None = None,
        promote: Collection[str] = (),
    ) -> list[Planned]:
        """What a deploy would do, per app, writing nothing (but the decision log). `declared`: the target
        as the caller has just read it, not read again."""
        if declared is None:
            declared = await self.project.target.declared()
        observer = await self.observer()
        try:
            config = with_pins(self.project.config, declared)
            states = select(declared.states, apps, self.project.target.where)
            planned = await self._evaluate(config, observer, states, automatic, promote=promote)
            planned = reviewed(planned, declared.reviews)
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
        promote: Collection[str] = (),
    ) -> Report:
        """Apply every pending update in one atomic change. With `prefetch` (named apps), their tag lists
        are asked for while the target gets ready (git fetches); `promote`: apps whose manual gate a person
        opens. A replica that does not lead plans only."""
        if not self.leads():
            return Report(await self.plan(apps, actor=actor, record=False, automatic=automatic))
        observer = await self.observer()
        guess = None
        if prefetch and apps:
            observer.prefetch(ImageRef.parse(self.project.matcher.canonical(app)) for app in apps)
            guess = self._guess(apps, observer, automatic, prove=not dry_run, promote=promote)
        report = Report([])
        first_config: list[str | None] = []

        async def decide(declared: Declared) -> Change:
            nonlocal guess
            config = with_pins(self._config_now(declared, first_config), declared)
            states = select(declared.states, apps, self.project.target.where)
            taken, guess = guess, None  # a guess is for the first read only
            if taken is not None and taken.holds(declared, states):
                planned = await taken.task
            else:
                if taken is not None:
                    await taken.settle(cancel=False)  # its questions end before the same observer's next
                planned = await self._evaluate(
                    config, observer, states, automatic, prove=not dry_run, promote=promote
                )
            report.planned = reviewed(planned, declared.reviews, say=False)
            git = config.deploy.git
            skip = bool(skip_ci) if skip_ci is not None else bool(git and git.skip_ci)
            images = tuple(
                ImageChange(
                    p.app,
                    target,
                    p.decision.reason,
                    p.decision.sentence,
                    p.built_from,
                    promoted_from=p.promoted[0] if p.promoted else None,
                    evidence=p.promoted[1] if p.promoted else None,
                    proof=p.proof,
                )
                for p in report.planned
                if (target := p.target) is not None
            )
            self.project.fence.check()  # the last moment before the target writes
            return Change("deploy", actor, images, skip_ci=skip)

        try:
            report.applied = await self.write(decide, dry_run=dry_run, apps=apps)
            report.planned = proposed(report.planned, report.applied)
        finally:
            if guess is not None:  # the write failed before it decided
                await guess.settle(cancel=True)
            await observer.close()
        if not dry_run:
            await self.record(report, actor, automatic=automatic)
        return report

    async def write(
        self, decide: Decide, *, dry_run: bool = False, apps: Collection[str] | None = None
    ) -> Applied:
        """Read, decide, write; on a conflict (a concurrent write won) refresh, read and decide again on
        what is there now, a bounded number of times. The same loop for every target. For named `apps` (a
        webhook hint's), a target that can narrows its first read to what holds them."""
        target = self.project.target
        narrows = target.offers(NARROWS) if apps else None
        opened = narrows.writing_for(apps, dry_run=dry_run) if narrows else target.writing(dry_run=dry_run)
        async with opened as writing:
            attempts = 0
            while True:
                attempts += 1
                declared = await writing.read()
                written = await writing.write(declared, await decide(declared))
                if not isinstance(written, Conflict):
                    written.attempts = attempts
                    return written
                if attempts > writing.retries:
                    raise written.give_up(attempts)
                await writing.refresh()

    def _guess(
        self, apps: list[str], observer: Observer, automatic: bool, *, prove: bool, promote: Collection[str]
    ) -> _Guess | None:
        """A hint's apps decided on what the target kept of its last read, while the write opens (a fetch
        and a checkout that take as long as deciding does), where the target can tell."""
        narrows = self.project.target.offers(NARROWS)
        peeked = narrows.peek(apps) if narrows is not None else None
        if peeked is None or not set(apps) <= set(peeked.states):
            return None
        states = select(peeked.states, apps)
        config = with_pins(self.project.config, peeked)
        decided = self._evaluate(config, observer, states, automatic, prove=prove, promote=promote)
        return _Guess(peeked, states, asyncio.ensure_future(decided))

    def leads(self) -> bool:
        """Whether this replica may write (always, without leader election)."""
        try:
            self.project.fence.check()
        except NotLeader:
            return False
        return True

    def _config_now(self, declared: Declared, seen: list[str | None]) -> Config:
        """The config to decide with: the one loaded, unless tagtrail.yaml changed where the target keeps
        it since the first attempt (a pin or rollback pushed while we retried): then that one."""
        if not seen:
            seen.append(declared.config_text)
            return self.project.config
        if declared.config_text is None or declared.config_text == seen[0]:
            return self.project.config
        return view(
            parse_config(declared.config_text, str(self.project.config_path)), self.project.environment
        )

    async def _evaluate(
        self,
        config: Config,
        observer: Observer,
        states: dict[str, AppState],
        automatic: bool,
        *,
        prove: bool = False,
        promote: Collection[str] = (),
    ) -> list[Planned]:
        last = await asyncio.to_thread(self.project.log.last_automatic_deploys) if automatic else {}
        run = Round(
            config,
            self.project.matcher,
            observer,
            self.clock(),
            automatic,
            last,
            prove,
            self.project.config_path.parent,
            bases_moved=self.bases_moved,
            base_moved=self.moved_base,
            evidence=evidence_reader(upstream) if (upstream := self.project.upstream) else None,
            approved=frozenset(promote),
        )
        return await evaluate(run, states)

    # Record -------------------------------------------------------------------------------------------

    async def record(self, report: Report, actor: str, *, automatic: bool = False) -> None:
        """Every decision of `report`, with what came of it, in the decision log in one transaction."""
        await asyncio.to_thread(self.project.log.record, *records(report, actor, automatic=automatic))


@dataclass
class _Guess:
    """Decisions made on what the target kept (`Narrows.peek`): taken where the write's first read holds the
    same, for the same config; else let go, and the apps decided again on what was read."""

    declared: Declared
    states: dict[str, AppState]
    task: asyncio.Future[list[Planned]]

    def holds(self, declared: Declared, states: Mapping[str, AppState]) -> bool:
        same = (declared.config_text, declared.pins) == (self.declared.config_text, self.declared.pins)
        return same and states == self.states

    async def settle(self, *, cancel: bool) -> None:
        """Wait until it has ended (cancelled first, where `cancel`); what it raised is not this run's."""
        if cancel:
            self.task.cancel()
        await asyncio.wait([self.task])
        if not self.task.cancelled():
            self.task.exception()  # retrieved: it was a guess


def share_memory(lanes: list[Reconciler]) -> list[Reconciler]:
    """The environments' reconcilers with one memory: what the claims checks learned of a digest cannot
    change, so the build staging proved is not read again for prod."""
    for lane in lanes[1:]:
        lane.memory = lanes[0].memory
    return lanes


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

"""deploy.git.applied_by: after a deploy commit, follow whoever applies the deploy branch (the Pulumi
Kubernetes Operator's Stack) until it applied that commit or a later one (`applied`), failed on it
(`failed`, with the operator's message) or did not move within `applied_by.timeout` (`not-applied`).

A later commit counts when it descends from the deploy commit in the deploy repository. Each judgement is
one decision-log row per app (action `apply`); a failed apply is rolled back in git and pinned where
`applied_by.rollback` says so. What is pending is derived from the deploy history and the Stack (`pending`),
so a restart of serve picks a deploy commit up again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.history import DecisionRecord, HistoryEntry
from tagtrail.adapters.registry import ImageRef
from tagtrail.config.appliedby import AppliedByConfig
from tagtrail.domain.humanize import span
from tagtrail.domain.reasons import Reason
from tagtrail.errors import GitError, TagtrailError
from tagtrail.reconcile.manual import rollback
from tagtrail.reconcile.outcome import Report
from tagtrail.reconcile.reconciler import Reconciler
from tagtrail.targets.capabilities import CHECKOUT

if TYPE_CHECKING:
    from tagtrail.adapters.kube.stacks import LastUpdate

State = Literal["applied", "pending", "failed", "not-applied"]
_REASONS = {"applied": Reason.APPLIED, "failed": Reason.APPLY_FAILED, "not-applied": Reason.NOT_APPLIED}
_OUTCOMES = {"applied": "applied", "failed": "failed", "not-applied": "not applied"}


@dataclass(frozen=True)
class Deployed:
    """A deploy commit and what it changed: app → (reference before, reference after)."""

    commit: str
    time: datetime
    apps: Mapping[str, tuple[str | None, str | None]]

    @classmethod
    def of_report(cls, report: Report) -> Deployed | None:
        commit = report.commit
        if commit is None or not report.changed:
            return None
        after = {p.app: p.target.reference for p in report.planned if p.target is not None}
        before = report.applied.previous
        return cls(commit, datetime.now(UTC), {a: (before.get(a), after.get(a)) for a in report.changed})


@dataclass(frozen=True)
class Applying:
    """Whether the deploy commit was applied: its state, the operator's message, the update's permalink."""

    commit: str
    state: State
    message: str = ""
    permalink: str | None = None
    rolled_back: dict[str, str] = field(default_factory=dict)  # app → the tag it was rolled back to

    @property
    def sentence(self) -> str:
        return {
            "applied": "the Stack applied it",
            "pending": "the Stack has not applied it yet",
            "failed": f"the Stack failed to apply it: {self.message or 'no message'}",
            "not-applied": self.message,
        }[self.state]


def judged(update: LastUpdate, commit: str, descends: Callable[[str], bool]) -> Applying | None:
    """Pure: what the Stack's last update says of `commit` (None: not got to it yet). `descends(c)`: whether
    `c` is `commit` or a later commit of the deploy branch."""
    if update.applied is not None and descends(update.applied):
        return Applying(commit, "applied", update.message, update.permalink)
    if update.state == "failed" and update.attempted is not None and descends(update.attempted):
        return Applying(commit, "failed", update.message, update.permalink)
    return None


def settings_of(reconciler: Reconciler) -> AppliedByConfig | None:
    git = reconciler.project.config.deploy.git
    return git.applied_by if git is not None and reconciler.project.cluster() is not None else None


async def follow_applied(
    reconciler: Reconciler, deployed: Deployed, *, actor: str, lock: asyncio.Lock | None = None
) -> Applying | None:
    """Follow the Stack (one watch) until it judges `deployed`, or applied_by.timeout after its commit; the
    judgement recorded per app, a failed one rolled back where configured (holding `lock`, serve's one write
    at a time). None where not configured."""
    from tagtrail.adapters.kube.stacks import Stacks  # noqa: PLC0415 (lightkube: only where configured)

    settings, cluster = settings_of(reconciler), reconciler.project.cluster()
    if settings is None or cluster is None:
        return None
    left = settings.timeout - (datetime.now(UTC) - deployed.time)

    async def judge(update: LastUpdate) -> Applying | None:
        return await asyncio.to_thread(_judged_here, reconciler, update, deployed.commit)

    found, last = await Stacks(cluster).follow(settings.pulumi_stack, judge, left.total_seconds())
    result = found or _not_applied(deployed.commit, settings, last)
    await asyncio.to_thread(reconciler.project.log.record, *_records(deployed, result, actor))
    if result.state == "failed" and settings.rollback:
        async with lock or contextlib.nullcontext():
            result = await _rolled_back(reconciler, deployed, result, actor)
    return result


async def pending(reconciler: Reconciler) -> Deployed | None:
    """The newest deploy commit tagtrail made that no `apply` row of the decision log judges yet: from the
    deploy history and the log, never from memory, so a restarted serve follows it again."""
    if settings_of(reconciler) is None:
        return None
    entries = [e for e in await reconciler.project.target.history() if e.by_tagtrail]
    if not entries:
        return None
    newest = max(entries, key=lambda e: e.time)
    judged_already = await asyncio.to_thread(reconciler.project.log.last_applies)
    if any(r.commit == newest.commit for r in judged_already.values()):
        return None
    return _deployed(newest.commit, [e for e in entries if e.commit == newest.commit])


def _deployed(commit: str, entries: list[HistoryEntry]) -> Deployed:
    return Deployed(commit, min(e.time for e in entries), {e.app: (e.before, e.after) for e in entries})


def _judged_here(reconciler: Reconciler, update: LastUpdate, commit: str) -> Applying | None:
    checkout = reconciler.project.target.offers(CHECKOUT)
    if checkout is None:
        raise TagtrailError("deploy.git.applied_by needs the deploy files in git (deploy.git)")
    git = reconciler.project.config.deploy.git
    branch = git.branch if git is not None else None
    with checkout.checked_out() as repo:
        return judged(update, commit, lambda later: _descends(repo, later, commit, branch))


def _descends(repo: GitRepo, later: str, commit: str, branch: str | None) -> bool:
    """Whether `later` is `commit` or a descendant of it; a commit not known here is fetched first (the
    operator may have applied a commit pushed after tagtrail's)."""
    if later == commit:
        return True
    if not repo.has_commit(later) and branch is not None:
        try:
            repo.fetch_branches("origin", [branch])
        except GitError:
            return False
    return repo.has_commit(later) and repo.reaches(later, commit)


def _not_applied(commit: str, settings: AppliedByConfig, last: LastUpdate) -> Applying:
    where = f"it last applied {last.applied[:12]}" if last.applied else "it has applied no commit yet"
    waited = span(timedelta(seconds=settings.timeout.total_seconds()))
    message = f"the Stack did not apply it within deploy.git.applied_by.timeout ({waited}); {where}"
    return Applying(commit, "not-applied", message, last.permalink)


def _records(deployed: Deployed, result: Applying, actor: str) -> list[DecisionRecord]:
    return [
        DecisionRecord(
            app,
            "apply",
            _REASONS[result.state],
            result.sentence + (f" ({result.permalink})" if result.permalink else ""),
            after,
            after,
            actor,
            commit=deployed.commit,
            outcome=_OUTCOMES[result.state],
        )
        for app, (_, after) in deployed.apps.items()
    ]


async def _rolled_back(reconciler: Reconciler, deployed: Deployed, failed: Applying, actor: str) -> Applying:
    """Each app of a failed apply back at its reference before, pinned (as a failed rollout is)."""
    back: dict[str, str] = {}
    for app, (before, _) in deployed.apps.items():
        tag = ImageRef.parse(before).tag if before else None
        if tag is None:
            continue
        report = await rollback(reconciler, app, tag, actor=actor)
        if report.commit is not None:
            back[app] = tag
    return Applying(failed.commit, failed.state, failed.message, failed.permalink, back)


async def applied_states(
    reconciler: Reconciler, last_deploy: Mapping[str, HistoryEntry]
) -> dict[str, Applying]:
    """Per app, whether its last deploy commit was applied, as the Stack says now (one read), else as the
    decision log judged it (not-applied), else pending. Empty where applied_by is not configured."""
    if settings_of(reconciler) is None or not last_deploy:
        return {}
    from tagtrail.adapters.kube.stacks import Stacks  # noqa: PLC0415 (lightkube: only where configured)

    settings, cluster = settings_of(reconciler), reconciler.project.cluster()
    assert settings is not None and cluster is not None  # noqa: PT018,S101 (checked above)
    update, _ = await Stacks(cluster).get(settings.pulumi_stack)
    logged = await asyncio.to_thread(reconciler.project.log.last_applies)
    states: dict[str, Applying] = {}
    for commit in {e.commit for e in last_deploy.values()}:
        found = await asyncio.to_thread(_judged_here, reconciler, update, commit)
        if found is None:
            said = [r for r in logged.values() if r.commit == commit and r.reason == Reason.NOT_APPLIED]
            found = (
                Applying(commit, "not-applied", said[0].sentence, update.permalink)
                if said
                else Applying(commit, "pending", "", update.permalink)
            )
        states[commit] = found
    return {app: states[entry.commit] for app, entry in last_deploy.items()}

"""The Kubernetes target (direct mode): a deploy patches the container images of the workloads that run an
app, and watches the rollout.

- Declared: what the workloads' specs say (every container and init container of the app's image, under
  any alias); pins are annotations on the workloads (`tagtrail.dev/pin.APP`), so the cluster alone says
  what runs and why, and losing the decision log loses nothing of it.
- Write: one JSON patch per workload, each image and each pin `test`ed against what was read before
  anything is written (annotations are added key by key, never as a whole map): a concurrent change (a
  person's `kubectl set image` or pin, another controller) makes the API server refuse the patch, and the
  reconciler reads and decides again. The patch also annotates the workload (tag, commit, reason, actor;
  `kubernetes.io/change-cause`), and an Event says what happened.
- Rollout: followed with a watch until complete, failed (ProgressDeadlineExceeded) or past
  `deploy.kubernetes.rollout_timeout`. A failed one is rolled back to the images before it and the app is
  pinned there (unless `rollback: false`), so automation does not retry the bad build in a loop.
- History: a Deployment's ReplicaSets (its rollout revisions), with the annotations each carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tagtrail.adapters.history import HistoryEntry
from tagtrail.adapters.kube.cluster import Cluster
from tagtrail.adapters.kube.cluster import Conflict as PatchConflict
from tagtrail.adapters.kube.revisions import revisions
from tagtrail.adapters.kube.rollout import Progress
from tagtrail.adapters.kube.workloads import CHANGE_CAUSE, Workload, annotation, guarded, patch, swap
from tagtrail.adapters.refs import Image, Matcher, Reference, normalise, split_written
from tagtrail.config import Config
from tagtrail.config.kubernetes import KubeTargetConfig
from tagtrail.domain.scheme import Scheme
from tagtrail.errors import KubeError, TagtrailError
from tagtrail.targets.base import Applied, C, Capability, Change, Conflict, Declared, Rollouts, offered
from tagtrail.targets.capabilities import IN_CLUSTER
from tagtrail.targets.files import state_of

RETRIES = 5


@dataclass(frozen=True)
class Seen(Declared):
    """What this target read: the workloads, by app."""

    workloads: tuple[Workload, ...] = ()


class KubernetesTarget:
    """Workloads in the namespaces of `kubernetes:`. Close it (`aclose`) when done."""

    def __init__(
        self,
        config: Config,
        matcher: Matcher,
        *,
        cluster: Cluster | None = None,
        fence: Callable[[], None] | None = None,
    ) -> None:
        settings = config.deploy.kubernetes
        if config.kubernetes is None or settings is None:
            raise TagtrailError(
                "tagtrail.yaml has no deploy.kubernetes section (and kubernetes: to reach the cluster)"
            )
        self.settings: KubeTargetConfig = settings
        self.scheme = config.tag_scheme
        self.cluster = cluster or Cluster(config.kubernetes, matcher)
        self.fence = fence  # with leader election: raises unless this replica leads
        spaces = config.kubernetes.namespaces
        self.where = f"the workloads of namespace{'s' if len(spaces) > 1 else ''} {', '.join(spaces)}"

    async def aclose(self) -> None:
        await self.cluster.aclose()

    # The Target protocol ------------------------------------------------------------------------------

    async def declared(self) -> Seen:
        return seen(await self.cluster.workloads(), self.scheme)

    @asynccontextmanager
    async def writing(self, *, dry_run: bool = False) -> AsyncIterator[_Writing]:
        yield _Writing(self, dry_run)

    def offers(self, capability: Capability[C]) -> C | None:
        return offered(self, capability, IN_CLUSTER)

    async def history(self, app: str | None = None, *, until: list[str] | None = None) -> list[HistoryEntry]:
        declared = await self.declared()
        apps = [app] if app is not None else sorted(declared.states)
        entries: list[HistoryEntry] = []
        runs = {name: [w for w in declared.workloads if w.of(name)] for name in apps}
        deployments = {
            name: next((w for w in ws if w.kind == "Deployment"), None) for name, ws in runs.items()
        }
        sets = await self.cluster.revisions(d for d in deployments.values() if d is not None)
        for name, workloads in runs.items():
            deployment = deployments[name]
            if deployment is not None:
                entries += _revisions(name, sets[deployment.uid], self.cluster.matcher)
            elif workloads:
                entries.append(_current(name, workloads[0]))
        if app is not None:
            return entries  # a Deployment's revisions, newest first (a rollback reuses an older ReplicaSet)
        return sorted(entries, key=lambda e: e.time, reverse=True)

    async def sync(self) -> bool:
        return False  # nothing kept locally: every read asks the API server

    # Steps ---------------------------------------------------------------------------------------------

    async def _patch(self, plans: list[_Plan], applied: Applied) -> list[_Plan]:
        """Patch each workload; a Conflict on any means reading and deciding again (those already patched
        then read as current)."""
        done = []
        for plan in plans:
            plan.after = await self.cluster.patch(plan.workload, plan.ops)
            done.append(plan)
            if applied.commit is None:
                applied.commit = f"{plan.workload.ref}@{plan.after.resource_version}"
                applied.kind = "patch"
        applied.pushed = True
        return done

    async def _announce(self, done: list[_Plan], change: Change) -> None:
        for plan in done:
            await self.cluster.event(plan.workload, f"Tagtrail{change.verb.title()}", plan.cause)

    async def _roll_out(self, done: list[_Plan], change: Change, rollouts: Rollouts) -> None:
        """Follow each changed workload's rollout; roll a failed one back (and pin) when configured."""
        moving = [p for p in done if p.images]
        timeout = self.settings.rollout_timeout.total_seconds()
        results = await asyncio.gather(*(self.cluster.follow(p.after or p.workload, timeout) for p in moving))
        failed: dict[str, tuple[_Plan, Progress]] = {}
        for plan, result in zip(moving, results, strict=True):
            for app in plan.images:
                rollouts.ended[app] = result.text
                if result.state == "failed":
                    failed.setdefault(app, (plan, result))
        for app, (_, result) in sorted(failed.items()):
            reason = f"the rollout of {app} failed: {result.detail}"
            if not self.settings.rollback:
                rollouts.failed[app] = reason
                continue
            await self._roll_back(app, [p for p in moving if app in p.images], reason, rollouts)

    async def _roll_back(self, app: str, plans: list[_Plan], reason: str, rollouts: Rollouts) -> None:
        """Put the app's containers back to the images they had, guarded as a deploy is, and pin the app.
        Every annotation of the app then says what the spec runs again: the good build's commit where
        tagtrail had recorded it, none rather than the bad build's."""
        tags = {split_written(old)[1] for p in plans for c, old in p.before.items() if c[0] == app}
        pin = next(iter(tags)) if len(tags) == 1 else None
        bad = plans[0].images[app]
        told = f"rolled {app} back from {bad.tag}@{bad.digest} to {pin or 'the images before'}: {reason}"
        notes = {
            annotation("pin", app): pin,
            annotation("tag", app): pin,
            annotation("by", app): "tagtrail",
            annotation("at", app): _now(),
            annotation("reason", app): "rollout-failed",
            CHANGE_CAUSE: f"tagtrail {told}",
        }
        undone = 0
        if self.fence is not None:
            self.fence()
        for plan in plans:
            now = await self.cluster.get(plan.workload)
            if now is None:
                continue  # deleted: nothing of it runs the bad build
            ops = [
                op
                for container in now.of(app)
                if (old := plan.before.get((app, container.pointer))) is not None
                for op in swap(container, old)
            ]
            known = plan.workload.annotations  # as read before the deploy
            good = (
                known.get(annotation("commit", app))
                if pin and known.get(annotation("tag", app)) == pin
                else None
            )
            undo = {**notes, annotation("commit", app): good}
            try:
                await self.cluster.patch(now, guarded(now, ops, undo))
            except PatchConflict:
                rollouts.failed[app] = f"{reason}; not rolled back: {now.ref} changed meanwhile"
                return
            await self.cluster.event(now, "TagtrailRollback", told, warning=True)
            undone += 1
        if not undone:
            rollouts.failed[app] = f"{reason}; nothing to roll back"
            return
        rollouts.rolled_back[app] = reason + (f"; pinned to {pin}" if pin else "")


class _Writing:
    """A deploy's patches: every read asks the API server, so there is nothing to refresh."""

    def __init__(self, target: KubernetesTarget, dry_run: bool) -> None:
        self.target, self.dry_run = target, dry_run
        self.retries = RETRIES

    async def read(self) -> Declared:
        return await self.target.declared()

    async def write(self, declared: Declared, change: Change) -> Applied | Conflict:
        target = self.target
        plans = _plan(declared, change)
        applied = _applied(declared, change, plans)
        if self.dry_run or not plans:
            return applied
        try:
            done = await target._patch(plans, applied)
        except PatchConflict:
            return Conflict("a workload changed since it was read", _changed_under)
        await target._announce(done, change)
        rollouts = Rollouts()
        applied.details.add(rollouts)
        await target._roll_out(done, change, rollouts)
        return applied

    async def refresh(self) -> None:
        return None


def _changed_under(attempts: int) -> KubeError:
    """Transient: the next reconcile backs off and tries again, as it does when a push is rejected again and
    again."""
    return KubeError(
        f"the workloads changed under every one of {attempts} attempts; nothing was overwritten."
        " Someone else changes them constantly: try again later",
        transient=True,
    )


@dataclass
class _Plan:
    """One workload's patch."""

    workload: Workload
    ops: list[dict[str, object]]
    images: dict[str, Image]
    cause: str
    before: dict[tuple[str, str], str] = field(default_factory=dict)  # (app, pointer) → image before
    after: Workload | None = None


def seen(workloads: list[Workload], scheme: Scheme) -> Seen:
    """Per app: its containers as references, and what runs by them (the newest readable build, as with
    files, so a newer image set by hand is never taken for older); pins from the annotations."""
    by_app: dict[str, list[Reference]] = {}
    pins: dict[str, str] = {}
    for workload in workloads:
        for container in workload.containers:
            name, tag, digest = split_written(container.image)
            ref = Reference(workload.ref, container.app, "image", 0, normalise(name), tag, digest)
            by_app.setdefault(container.app, []).append(ref)
            pin = workload.pin(container.app)
            if pin:
                pins[container.app] = pin
    states = {app: state_of(app, refs, scheme) for app, refs in sorted(by_app.items())}
    return Seen(states, None, pins, tuple(workloads))


def _plan(declared: Declared, change: Change) -> list[_Plan]:
    assert isinstance(declared, Seen)  # noqa: S101 (this target reads what it declares)
    images = {c.app: c.image for c in change.images}
    reasons = {c.app: c for c in change.images}
    plans = []
    for workload in declared.workloads:
        moving = {app: images[app] for app in workload.apps if app in images}
        moving = {a: i for a, i in moving.items() if any(c.retarget(i) != c.image for c in workload.of(a))}
        notes: dict[str, str | None] = {}
        causes = []
        for app, image in moving.items():
            item = reasons[app]
            notes[annotation("tag", app)] = image.tag
            notes[annotation("reason", app)] = item.reason
            notes[annotation("by", app)] = change.actor
            notes[annotation("at", app)] = _now()
            notes[annotation("commit", app)] = item.built_from  # unknown: none, never the last build's
            # a promotion: the environment it came from and its evidence (any other deploy removes them)
            notes[annotation("promoted", app)] = item.promoted_from
            notes[annotation("evidence", app)] = item.evidence
            causes.append(f"{app} {image.tag} ({item.reason})")
        for app, pin in change.pins.items():
            if app in workload.apps and workload.pin(app) != pin:
                notes[annotation("pin", app)] = pin
                causes.append(f"{app} pinned to {pin}" if pin else f"{app} unpinned")
        if not notes:
            continue
        cause = f"tagtrail {change.verb}: " + ", ".join(causes)
        notes[CHANGE_CAUSE] = cause
        before = {(c.app, c.pointer): c.image for c in workload.containers if c.app in moving}
        plans.append(_Plan(workload, patch(workload, moving, notes), moving, cause, before))
    return plans


def _applied(declared: Declared, change: Change, plans: list[_Plan]) -> Applied:
    changed = sorted(
        {app for p in plans for app in p.images}
        | {a for a in change.pins if any(a in p.workload.apps for p in plans)}
    )
    previous = {app: declared.states[app].shown for app in changed if app in declared.states}
    files = {p.workload.ref: _describe(p.workload, p.images) for p in plans}
    before: dict[str, str | None] = {p.workload.ref: _describe(p.workload, {}) for p in plans}
    return Applied(change, changed=changed, previous=previous, files=files, before=before)


def _describe(workload: Workload, images: Mapping[str, Image]) -> str:
    """A workload's managed containers as text, for a dry run's diff."""
    lines = []
    for c in workload.containers:
        image = c.retarget(images[c.app]) if c.app in images else c.image
        lines.append(f"{'initContainer' if c.init else 'container'} {c.name}: {image}\n")
    return "".join(lines)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _revisions(app: str, sets: list[dict[str, Any]], matcher: Matcher) -> list[HistoryEntry]:
    """One entry per revision of the Deployment whose image of `app` differs from the one before."""
    entries = []
    previous: str | None = None
    for revision in revisions(app, sets, matcher):
        image = revision.images[0]
        if image != previous:
            entries.append(
                _entry(app, f"revision {revision.number}", revision.when, previous, image, revision.notes)
            )
        previous = image
    return entries[::-1]  # newest first, as every history is


def _current(app: str, workload: Workload) -> HistoryEntry:
    image = workload.of(app)[0].image
    created = datetime.now(UTC)
    return _entry(app, f"{workload.kind.lower()} {workload.name}", created, None, image, workload.annotations)


def _entry(
    app: str, commit: str, when: datetime, before: str | None, after: str, notes: Mapping[str, str]
) -> HistoryEntry:
    _, tag, digest = split_written(after)
    by_tagtrail = notes.get(annotation("tag", app)) == tag
    return HistoryEntry(
        commit,
        when,
        notes.get(annotation("by", app), "") if by_tagtrail else "kubectl or another tool",
        app,
        before,
        after,
        tag,
        digest,
        by_tagtrail,
        notes.get(annotation("reason", app)) if by_tagtrail else None,
        notes.get(annotation("by", app)) if by_tagtrail else None,
        notes.get(annotation("commit", app)) if by_tagtrail else None,
    )

"""What runs, per app: the workloads using its image, what their specs say, the digests their Pods report
(`imageID`), ready/total, the rollout's progress, and when it last finished. One list request per kind and
namespace plus one for Pods, however many apps (a 50-app reconcile in one namespace: 5 requests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tagtrail.adapters.kube.rollout import Progress, progress
from tagtrail.adapters.kube.workloads import Workload, annotation, matches

if TYPE_CHECKING:  # lightkube: loaded by whoever makes a Cluster
    from tagtrail.adapters.kube.cluster import Cluster


@dataclass(frozen=True)
class WorkloadView:
    workload: Workload
    progress: Progress
    pods: Mapping[str, int]  # digest → containers of the app's image reporting it
    finished: datetime | None = None  # when its current rollout completed, where the status says


@dataclass(frozen=True)
class AppView:
    """One app in the cluster."""

    app: str
    workloads: tuple[WorkloadView, ...] = ()

    @property
    def images(self) -> list[str]:
        """The images the workloads' specs name, as written (one, unless they disagree)."""
        return sorted({c.image for w in self.workloads for c in w.workload.of(self.app)})

    @property
    def running(self) -> dict[str, int]:
        """digest → number of containers running it, over every workload."""
        total: Counter[str] = Counter()
        for w in self.workloads:
            total.update(w.pods)
        return dict(total)

    @property
    def ready(self) -> int:
        return sum(w.progress.ready for w in self.workloads)

    @property
    def total(self) -> int:
        return sum(w.progress.total for w in self.workloads)

    @property
    def rollout(self) -> str:
        """failed, progressing or complete: the worst of its workloads'."""
        states = {w.progress.state for w in self.workloads}
        return next((s for s in ("failed", "progressing") if s in states), "complete")

    @property
    def finished(self) -> datetime | None:
        times = [w.finished for w in self.workloads if w.finished is not None]
        return max(times) if times else None

    def drift(self, declared_digest: str | None, *, annotated: bool = False) -> str | None:
        """Why what runs is not what is declared (None: it is). Pods still rolling out are not drift.

        `annotated` (direct mode): the declaration is also what tagtrail last wrote on each workload, its
        `tag.APP` annotation, so a spec changed by hand since (`kubectl set image`) is drift."""
        if not self.workloads:
            return "no workload in the cluster uses this image"
        if annotated and (by_hand := self._by_hand()):
            return by_hand
        if declared_digest is None:
            return None
        specs = {c.digest for w in self.workloads for c in w.workload.of(self.app)}
        if specs != {declared_digest}:
            shown = ", ".join(sorted(self.images))
            return f"the cluster's spec says {shown}"
        stale = [d for d in self.running if d != declared_digest]
        if stale and self.rollout == "complete":
            return f"pods run {', '.join(d[:19] for d in stale)}"
        return None

    def _by_hand(self) -> str | None:
        for view in self.workloads:
            wrote = view.workload.annotations.get(annotation("tag", self.app))
            if not wrote:
                continue  # never deployed by tagtrail (or its builds disagreed): nothing declared
            other = sorted({c.image for c in view.workload.of(self.app) if c.tag != wrote})
            if other:
                return f"the spec of {view.workload.ref} says {', '.join(other)}, not {wrote} as tagtrail set"
        return None


async def observe(cluster: Cluster) -> dict[str, AppView]:
    """Every managed app the cluster runs, by app."""
    workloads = await cluster.workloads()
    pods = await cluster.pods() if any(w.kind != "CronJob" for w in workloads) else []
    views: dict[str, list[WorkloadView]] = {}
    for workload in workloads:
        state, finished = progress(workload.kind, workload.body), _finished(workload.body)
        for app in workload.apps:
            running = _pods_of(workload, pods, app)
            views.setdefault(app, []).append(WorkloadView(workload, state, running, finished))
    return {app: AppView(app, tuple(found)) for app, found in sorted(views.items())}


def _pods_of(workload: Workload, pods: list[dict[str, Any]], app: str) -> dict[str, int]:
    """digest → containers of `app`'s image reporting it, in the workload's running Pods."""
    if workload.kind == "CronJob":
        return {}
    names = {c.name for c in workload.containers if c.app == app}
    found: Counter[str] = Counter()
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("namespace") != workload.namespace or meta.get("deletionTimestamp"):
            continue  # a terminating Pod is on its way out, not what runs
        if not matches(workload.selector, meta.get("labels") or {}):
            continue
        status = pod.get("status") or {}
        for each in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            _, at, digest = str(each.get("imageID") or "").rpartition("@")
            if each.get("name") in names and at and digest:
                found[digest] += 1
    return dict(found)


def _finished(body: Mapping[str, Any]) -> datetime | None:
    """When a Deployment's current rollout completed: its Progressing condition's NewReplicaSetAvailable."""
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "NewReplicaSetAvailable":
            stamp = condition.get("lastUpdateTime") or condition.get("lastTransitionTime")
            return _time(stamp)
    return None


def _time(stamp: Any) -> datetime | None:
    if isinstance(stamp, datetime):
        return stamp
    if not stamp:
        return None
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))

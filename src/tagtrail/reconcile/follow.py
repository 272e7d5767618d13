"""GitOps + observe: after a deploy commit, follow the cluster until it runs what was committed (whoever
applies it: Flux, Argo CD, Pulumi, deploy.git.then), and record when it did, or that it did not, in the
decision log (action `rollout`, reason rolled-out or rollout-failed). Direct mode follows its own patches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tagtrail.adapters.history import DecisionRecord
from tagtrail.adapters.kube.view import AppView, observe
from tagtrail.adapters.refs import Image
from tagtrail.domain.humanize import span
from tagtrail.domain.policy import Reason
from tagtrail.reconcile.outcome import Report
from tagtrail.reconcile.reconciler import Reconciler

if TYPE_CHECKING:
    from tagtrail.adapters.kube.cluster import Cluster

POLL = 2.0


@dataclass(frozen=True)
class Followed:
    app: str
    ok: bool
    sentence: str
    reference: str


async def follow(reconciler: Reconciler, report: Report, *, actor: str, poll: float = POLL) -> list[Followed]:
    """Wait (up to kubernetes.follow) for every app the report deployed to run in the cluster; record each."""
    cluster = reconciler.project.cluster()
    settings = reconciler.project.config.kubernetes
    if cluster is None or settings is None or reconciler.project.direct:
        return []
    timeout = settings.follow.total_seconds()
    wanted = {p.app: p.target for p in report.planned if p.target is not None and p.app in report.changed}
    if not wanted or timeout <= 0:
        return []
    results = await _until_running(cluster, wanted, timeout, poll)
    records = [
        DecisionRecord(
            f.app,
            "rollout",
            Reason.ROLLED_OUT if f.ok else Reason.ROLLOUT_FAILED,
            f.sentence,
            f.reference,
            f.reference,
            actor,
            commit=report.commit,
            outcome="rolled out" if f.ok else "failed",
        )
        for f in results
    ]
    await asyncio.to_thread(reconciler.project.log.record, *records)
    return list(results)


async def _until_running(
    cluster: Cluster, wanted: Mapping[str, Image], timeout: float, poll: float
) -> list[Followed]:
    """Each app's outcome, reading what runs once per poll for all of them."""
    started, deadline = datetime.now(UTC), time.monotonic() + timeout
    done: dict[str, Followed] = {}
    while True:
        views = await observe(cluster)
        for app, image in wanted.items():
            if app not in done and (found := _judged(app, views.get(app), image, started)) is not None:
                done[app] = found
        if len(done) == len(wanted):
            return [done[app] for app in wanted]
        if time.monotonic() >= deadline:
            for app, image in wanted.items():
                where = (
                    "no workload uses its image" if app not in views else "the cluster does not run it yet"
                )
                done.setdefault(
                    app,
                    Followed(
                        app, False, f"{where} after kubernetes.follow ({timeout:.0f} s)", image.reference
                    ),
                )
            return [done[app] for app in wanted]
        await asyncio.sleep(poll)


def _judged(app: str, view: AppView | None, image: Image, started: datetime) -> Followed | None:
    """Whether the cluster runs `image` for `app` (or failed to), or None while it is not decided yet."""
    if view is None or not view.workloads:
        return None
    if {c.digest for w in view.workloads for c in w.workload.of(app)} != {image.digest}:
        return None  # whoever applies the commit has not yet
    if view.rollout == "failed":
        detail = next(w.progress.detail for w in view.workloads if w.progress.state == "failed")
        return Followed(app, False, f"the cluster's rollout failed: {detail}", image.reference)
    if view.rollout == "complete" and set(view.running) <= {image.digest}:
        took = datetime.now(UTC) - started
        return Followed(
            app, True, f"the cluster runs it, {span(took)} after the deploy commit", image.reference
        )
    return None

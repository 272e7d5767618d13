"""Read-only views of a project: status (declared, newest eligible, pins, last deploy) and history."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tagtrail.adapters.history import DecisionRecord, HistoryEntry
from tagtrail.adapters.kube.view import AppView, observe
from tagtrail.errors import TagtrailError
from tagtrail.reconcile.applied import Applying, applied_states
from tagtrail.reconcile.outcome import Planned
from tagtrail.reconcile.reconciler import Reconciler
from tagtrail.targets.project import Project


@dataclass
class AppStatus:
    app: str
    planned: Planned
    pinned: str | None
    last_deploy: HistoryEntry | None
    last_decision: DecisionRecord | None
    cluster: AppView | None = None  # what runs, where the cluster is observed
    drift: str | None = None  # why what runs is not what is declared
    lead_time: timedelta | None = None  # from the running build's commit to the cluster running it
    applying: Applying | None = None  # whether deploy.git.applied_by applied the last deploy commit


async def status(reconciler: Reconciler, apps: list[str] | None = None, *, actor: str) -> list[AppStatus]:
    """What the target declares for each app, the newest eligible build, how far behind, pins, the last
    deploy and the last decision."""
    declared = await reconciler.project.target.declared()  # read once: the plan and the pins both need it
    planned = await reconciler.plan(apps, actor=actor, record=False, declared=declared)
    names = [p.app for p in planned]
    history = await reconciler.project.target.history(until=names)
    last_deploy: dict[str, HistoryEntry] = {}
    for entry in history:
        last_deploy.setdefault(entry.app, entry)
    decisions = await asyncio.to_thread(reconciler.project.log.last_each)
    pins = {**reconciler.project.config.deploy.pins, **(declared.pins or {})}
    cluster = reconciler.project.cluster()
    views = await observe(cluster) if cluster is not None else None
    commits = await commit_times(reconciler.project, planned) if views else {}
    direct = reconciler.project.direct  # tagtrail's annotations declare what should run
    applying = await applied_states(reconciler, last_deploy)
    rows = []
    for p in planned:
        row = AppStatus(p.app, p, pins.get(p.app), last_deploy.get(p.app), decisions.get(p.app))
        row.applying = applying.get(p.app)
        if views is not None:
            row.cluster = views.get(p.app, AppView(p.app))
            row.drift = row.cluster.drift(p.decision.running.digest, annotated=direct)
            running = p.decision.running_parsed
            committed = commits.get(running.sha) if running else None
            if committed is not None and row.cluster.finished is not None and row.drift is None:
                row.lead_time = row.cluster.finished - committed
        rows.append(row)
    return rows


async def commit_times(project: Project[Any], planned: list[Planned]) -> dict[str, datetime]:
    """When each running build's commit was made, from the source repository (one git process)."""
    source = await project.source()
    shas = [r.sha for p in planned if (r := p.decision.running_parsed) is not None]
    if source is None or not shas:
        return {}
    found = await asyncio.to_thread(source.commits, shas)
    return {sha: info.time for sha, info in found.items()}


async def history(reconciler: Reconciler, app: str) -> list[HistoryEntry]:
    """Every change of the app's reference, newest first; an app the target does not know is an error."""
    entries = await reconciler.project.target.history(app)
    if not entries:
        declared = await reconciler.project.target.declared()
        if app not in declared.states:
            raise TagtrailError(f"no reference to app '{app}' in {reconciler.project.target.where}")
    return entries

"""Read-only views of a project: status (declared, newest eligible, pins, last deploy) and history."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tagtrail.errors import TagtrailError
from tagtrail.history import DecisionRecord, HistoryEntry
from tagtrail.reconcile.outcome import Planned
from tagtrail.reconcile.reconciler import Reconciler


@dataclass
class AppStatus:
    app: str
    planned: Planned
    pinned: str | None
    last_deploy: HistoryEntry | None
    last_decision: DecisionRecord | None


async def status(reconciler: Reconciler, apps: list[str] | None = None, *, actor: str) -> list[AppStatus]:
    """What the target declares for each app, the newest eligible build, how far behind, pins, the last
    deploy and the last decision."""
    planned = await reconciler.plan(apps, actor=actor, record=False)
    names = [p.app for p in planned]
    history = await reconciler.target.history(until=names)
    last_deploy: dict[str, HistoryEntry] = {}
    for entry in history:
        last_deploy.setdefault(entry.app, entry)
    decisions = await asyncio.to_thread(reconciler.log.last_each)
    pins = reconciler.config.deploy.pins
    return [
        AppStatus(p.app, p, pins.get(p.app), last_deploy.get(p.app), decisions.get(p.app)) for p in planned
    ]


async def history(reconciler: Reconciler, app: str) -> list[HistoryEntry]:
    """Every change of the app's reference, newest first; an app the target does not know is an error."""
    entries = await reconciler.target.history(app)
    if not entries:
        declared = await reconciler.target.declared()
        if app not in declared.states:
            raise TagtrailError(f"no reference to app '{app}' in the deploy files")
    return entries

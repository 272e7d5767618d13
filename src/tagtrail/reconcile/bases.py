"""The base image of what runs, per app: what the target declares, checked by `baseimages.check` (one HEAD
per distinct base). `tagtrail base-images` asks once; `tagtrail serve` keeps the memory across polls."""

from __future__ import annotations

from tagtrail.adapters.baseimages import AppBase, Memory, Running, check
from tagtrail.reconcile.moved import running_of
from tagtrail.reconcile.reconciler import Reconciler, select


async def base_images(
    reconciler: Reconciler, apps: list[str] | None = None, *, memory: Memory | None = None
) -> list[AppBase]:
    """Per app (every app the target declares, or those named), its base and whether it moved."""
    return await check_running(reconciler, await running_apps(reconciler, apps), memory=memory)


async def check_running(
    reconciler: Reconciler, running: list[Running], *, memory: Memory | None = None
) -> list[AppBase]:
    """The check of what runs (registry reads, and git for images that record no base)."""
    source = await reconciler.project.source()
    root = reconciler.project.config_path.parent
    return await check(reconciler.project.client, running, memory=memory, source=source, root=root)


async def running_apps(reconciler: Reconciler, apps: list[str] | None = None) -> list[Running]:
    """What runs, per app, as the target declares it (serve reads it under its write lock)."""
    project = reconciler.project
    declared = select((await project.target.declared()).states, apps)
    return running_of(project.config, project.config_path.parent, project.matcher, declared)

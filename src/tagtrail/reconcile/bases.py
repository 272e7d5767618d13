"""The base image of what runs, per app: what the target declares, checked by `baseimages.check` (one HEAD
per distinct base). `tagtrail base-images` asks once; `tagtrail serve` keeps the memory across polls."""

from __future__ import annotations

from collections.abc import Mapping

from tagtrail import apps as discovery
from tagtrail.baseimages import AppBase, Memory, Running, check
from tagtrail.reconcile.reconciler import Reconciler, select
from tagtrail.scheme import ParsedTag
from tagtrail.targets.base import AppState


async def base_images(
    reconciler: Reconciler, apps: list[str] | None = None, *, memory: Memory | None = None
) -> list[AppBase]:
    """Per app (every app the target declares, or those named), its base and whether it moved."""
    return await check_running(reconciler, await running_apps(reconciler, apps), memory=memory)


async def check_running(
    reconciler: Reconciler, running: list[Running], *, memory: Memory | None = None, dockerfiles: bool = True
) -> list[AppBase]:
    """The check of what runs (registry reads, and git for images that record no base, unless only whether
    a base moved is asked: an image that records no base digest cannot say it moved)."""
    source = await reconciler.source() if dockerfiles else None
    root = reconciler.config_path.parent
    return await check(reconciler.client, running, memory=memory, source=source, root=root)


async def running_apps(reconciler: Reconciler, apps: list[str] | None = None) -> list[Running]:
    """What runs, per app, as the target declares it (serve reads it under its write lock)."""
    return running_of(reconciler, select((await reconciler.target.declared()).states, apps))


def running_of(reconciler: Reconciler, declared: Mapping[str, AppState]) -> list[Running]:
    """What the base check needs of each app in `declared`: what runs, and where its Dockerfile is."""
    config, root = reconciler.config, reconciler.config_path.parent
    found = {app.name: app for app in discovery.discover(root, config)}
    running = []
    for name, state in sorted(declared.items()):
        parsed = config.tag_scheme.parse(state.running.tag) if state.running.tag else None
        app = found.get(name)
        running.append(
            Running(
                name,
                reconciler.matcher.canonical(name),
                state.running.tag,
                state.running.digest,
                app.dockerfile if app is not None else f"{config.apps.root}/{name}/Dockerfile",
                parsed.sha if isinstance(parsed, ParsedTag) else None,
            )
        )
    return running

"""One prune of a project, as the CLI and the controller run it: facts from the target, a store per app,
the plan, and (when asked) the deletions."""

from __future__ import annotations

from pathlib import Path

from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import Config
from tagtrail.errors import TagtrailError
from tagtrail.features.retention.facts import protected
from tagtrail.features.retention.github import GitHubStore
from tagtrail.features.retention.prune import PruneReport, apply, plan
from tagtrail.features.retention.stores import DistributionStore, Store
from tagtrail.reconcile import Reconciler
from tagtrail.reconcile.reconciler import select


def store_for(config: Config, client: RegistryClient, ref: ImageRef) -> Store:
    """GitHub Packages for the registries it serves (ghcr.io), the distribution API for the rest."""
    if ref.registry in config.retention.github.registries:
        return GitHubStore(config.retention.github, client, ref)
    return DistributionStore(client, ref)


async def prune(
    reconciler: Reconciler, apps: list[str] | None = None, *, delete: bool = False, actor: str
) -> PruneReport:
    """Plan retention for `apps` (default: every app the deploy files name); with `delete`, apply it."""
    project = reconciler.project
    config = project.config
    declared = await project.target.declared()
    names = sorted(select(declared.states, apps))
    keep = await protected(config, project.target, names, project.cluster(), declared=declared)
    for other in project.others:  # what any environment runs, pins or may roll back to
        theirs = await protected(other.config, other.target, names, other.cluster())
        for app, kept in theirs.items():
            keep[app].merge(kept)
    client = project.client
    if not isinstance(client, RegistryClient):  # a fake registry of the fast tests cannot delete
        raise TagtrailError("prune needs a registry client that can delete (RegistryClient)")
    stores = {app: store_for(config, client, ImageRef.parse(project.matcher.canonical(app))) for app in names}
    report = await plan(config, stores, keep, reconciler.clock())
    if delete:
        await apply(report, project.log, actor=actor, clock=reconciler.clock)
    return report


async def prune_project(
    config: Config, config_path: Path, apps: list[str] | None = None, *, delete: bool = False, actor: str
) -> tuple[PruneReport, int]:
    """`prune` with a reconciler and a client of its own; also returns the requests spent."""
    async with Reconciler.open_lanes(config, config_path) as lanes:
        reconciler = lanes[0]
        report = await prune(reconciler, apps, delete=delete, actor=actor)
        client = reconciler.project.client
        assert isinstance(client, RegistryClient)  # noqa: S101 (Reconciler.open makes one)
        spent = sum(sum(by_status.values()) for by_status in client.stats.snapshot().values())
        return report, spent

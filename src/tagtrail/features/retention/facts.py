"""What retention must never delete, gathered from every place that holds the fact: what runs, every pin,
the rollback targets.

- The target: what it declares (every reference of each app, by tag and by digest), the pins it keeps
  (cluster annotations), the builds of each app's last `rollback` deploys in its history.
- The deploy branch at its head, for a target that lives on one (`AtHead`, GitOps): its deploy files, its
  history and the pins of its own tagtrail.yaml, fetched, so pins and deploys pushed since this checkout
  was pulled count.
- tagtrail.yaml as loaded: `deploy.pins`.
- The cluster, wherever `kubernetes:` is configured (direct mode, where it is the target and is read only
  here, or GitOps + observe): what every workload runs, the pins annotated on it (`tagtrail.dev/pin.APP`),
  and the images of every revision it can roll back to (`kubectl rollout undo`: a Deployment's
  ReplicaSets, a StatefulSet's or DaemonSet's ControllerRevisions), however many.
A place that cannot be read stops the plan: nothing is deleted blind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from tagtrail.adapters.history import HistoryEntry
from tagtrail.adapters.kube.revisions import containers
from tagtrail.config import Config, parse_config
from tagtrail.config.retention import AppRetentionConfig, RetentionConfig
from tagtrail.features.retention.rules import Rules
from tagtrail.targets.base import Declared, Target
from tagtrail.targets.capabilities import IN_CLUSTER

if TYPE_CHECKING:  # lightkube: loaded by whoever makes a Cluster
    from tagtrail.adapters.kube.cluster import Cluster

T = TypeVar("T")


@dataclass
class Protected:
    """Per app: the tags and digests always kept, by why."""

    running: set[str] = field(default_factory=set)
    pins: set[str] = field(default_factory=set)
    rollback: set[str] = field(default_factory=set)
    digests: set[str] = field(default_factory=set)  # running and rollback builds, by digest

    def merge(self, other: Protected) -> None:
        """Keep what `other` keeps too (another environment's)."""
        self.running |= other.running
        self.pins |= other.pins
        self.rollback |= other.rollback
        self.digests |= other.digests

    def add(self, kind: set[str], tag: str | None, digest: str | None) -> None:
        if tag:
            kind.add(tag)
        if digest:
            self.digests.add(digest)


@runtime_checkable
class AtHead(Protocol):
    """A target that lives on a branch, read at the branch's head as a deploy would read it."""

    async def at_head(self) -> tuple[Declared, list[HistoryEntry]] | None:
        """None where the target's own reads are at the head; the history only where `history` does not
        read it already."""
        ...


async def protected(
    config: Config,
    target: Target,
    apps: list[str],
    cluster: Cluster | None = None,
    *,
    declared: Declared | None = None,
) -> dict[str, Protected]:
    """What each app keeps whatever the rules say; `declared`: what the target declares, when the caller
    has just read it."""
    found: dict[str, Protected] = defaultdict(Protected)
    views = []
    # direct mode: the target is the cluster, whose reading below holds all the target declares and its
    # history (every revision, not the last few), so it is not read twice more
    in_cluster = target.offers(IN_CLUSTER)
    if cluster is None or in_cluster is None or in_cluster.cluster is not cluster:
        views.append((declared if declared is not None else await target.declared(), await target.history()))
    if isinstance(target, AtHead) and (head := await target.at_head()) is not None:
        views.append(head)
    texts = {d.config_text for d, _ in views if d.config_text is not None}
    for view, history in views:
        _declared(view, apps, found)
        _rollback(config, history, apps, found)
    branch = "tagtrail.yaml on the deploy branch"  # a pin there that does not parse stops the prune
    for pins in [*_pins(config), *(p for t in sorted(texts) for p in _pins(parse_config(t, branch)))]:
        for app in apps:
            if pins.get(app):
                found[app].pins.add(pins[app])
    if cluster is not None:
        await _cluster(cluster, apps, found)
    return {app: found[app] for app in apps}


def _pins(config: Config) -> list[Mapping[str, str]]:
    """deploy.pins and every environment's own."""
    return [config.deploy.pins, *(lane.pins for lane in config.environments.values())]


def _declared(declared: Declared, apps: Iterable[str], found: dict[str, Protected]) -> None:
    for app in apps:
        state = declared.states.get(app)
        keep = found[app]
        if state is not None:
            for ref in state.refs:
                keep.add(keep.running, ref.tag, ref.digest)
            keep.add(keep.running, state.running.tag, state.running.digest)
        pin = (declared.pins or {}).get(app)
        if pin:
            keep.pins.add(pin)


def _rollback(
    config: Config, history: list[HistoryEntry], apps: list[str], found: dict[str, Protected]
) -> None:
    counts: dict[str, int] = defaultdict(int)
    for entry in history:  # newest first
        if entry.app not in apps or counts[entry.app] >= rules_for(config.retention, entry.app).rollback:
            continue
        counts[entry.app] += 1
        keep = found[entry.app]
        keep.add(keep.rollback, entry.tag, entry.digest)


async def _cluster(cluster: Cluster, apps: list[str], found: dict[str, Protected]) -> None:
    """What the cluster runs, pins and can roll back to (a revision whose annotations history skips is a
    rollback target all the same)."""
    workloads = [w for w in await cluster.workloads() if set(w.apps) & set(apps)]
    revisions = await cluster.revisions(workloads)
    for workload in workloads:
        for app in set(workload.apps) & set(apps):
            keep = found[app]
            for container in workload.of(app):
                keep.add(keep.running, container.tag, container.digest)
            pin = workload.pin(app)
            if pin:
                keep.pins.add(pin)
            for body in revisions[workload.uid]:
                for container in containers(app, body, cluster.matcher):
                    keep.add(keep.rollback, container.tag, container.digest)


@dataclass(frozen=True)
class AppRules:
    rules: Rules
    rollback: int


def rules_for(settings: RetentionConfig, app: str) -> AppRules:
    """One app's rules: its own settings where it has them, else retention's."""
    own = settings.apps.get(app) or AppRetentionConfig()
    rules = Rules(
        _or(own.keep_deploy, settings.keep_deploy),
        _or(own.keep_other, settings.keep_other),
        _or(own.max_age_other, settings.max_age_other),
        _or(own.max_age_dirty, settings.max_age_dirty),
        settings.min_age,
        tuple(settings.delete_unscheme),
    )
    return AppRules(rules, _or(own.rollback, settings.rollback))


def _or(value: T | None, default: T) -> T:
    return default if value is None else value

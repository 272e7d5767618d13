"""`tagtrail prune`: plan per app (the default, a dry run), then apply one manifest at a time.

Safety, in the order it acts:
- a tag list that could not be read completely plans nothing for that repository (it is reported unread);
- so does a kept manifest that could not be read (a kept tag's, or a child a kept index lists): its
  platform images would look unlisted, and an old tag on one would delete it from the kept image;
- what runs, pins and rollback targets are kept whatever the rules say (`rules.py`), and so is every digest
  they reach (`graph.py`), a build they name by digest alone included (its manifest is read for that);
- before each deletion the tag list is read again, with the digest of every tag new since the plan and of
  every kept tag outside the scheme (prod, latest: names people move), and before a repository's first
  deletion the digest of every kept tag: a tag that now names, or whose index lists, a digest about to go
  blocks that deletion (a build pushed, or a kept tag moved onto an old build, is never deleted). A build
  tag moved while its repository's deletions run is not seen on a distribution registry (it costs a HEAD per
  tag; build tags name one build); GitHub's version list names every tag's digest each time;
- referrers go before their subject and children after their index, so an interrupted run leaves only
  what a re-run plans again (or what the registry's garbage collection reclaims);
- a registry that refuses a DELETE stops every deletion after it, with one line saying why.
Every deletion is recorded in the decision log with the rule that allowed it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tagtrail.adapters.history import DecisionLog, DecisionRecord
from tagtrail.config import Config
from tagtrail.config.environments import branches_of_any
from tagtrail.domain.scheme import ParsedTag, Scheme
from tagtrail.errors import RegistryError
from tagtrail.features.retention.facts import Protected, rules_for
from tagtrail.features.retention.graph import (
    Deletion,
    Graph,
    Inventory,
    Node,
    freed_bytes,
    kept_blobs,
    resolve,
)
from tagtrail.features.retention.rules import Facts, NeedCreated, Why, judge
from tagtrail.features.retention.stores import Store

Clock = Callable[[], datetime]


@dataclass
class AppPlan:
    """One app's plan, and after `apply` what came of it."""

    app: str
    store: Store
    graph: Graph | None = None
    inventory: Inventory | None = None
    problem: str | None = None  # the repository could not be read: nothing is deleted there
    deleted: list[Deletion] = field(default_factory=list)
    blocked: list[tuple[Deletion, str]] = field(default_factory=list)  # not deleted, and why
    elsewhere: set[str] = field(default_factory=set)  # blobs other repositories of the registry keep
    movable: frozenset[str] = frozenset()  # tags outside the scheme: names people move (prod, latest)

    @property
    def image(self) -> str:
        return self.store.ref.name

    @property
    def freed(self) -> int:
        return self.graph.freed if self.graph else 0


@dataclass
class PruneReport:
    plans: list[AppPlan]
    applied: bool = False
    stopped: str | None = None  # why deleting stopped early (one line)

    @property
    def freed(self) -> int:
        """Bytes the plan frees (after apply: the deletions done)."""
        return sum(p.freed for p in self.plans)

    def hints(self) -> list[str]:
        return sorted({p.store.reclaim_hint() for p in self.plans})


async def plan_app(config: Config, app: str, store: Store, keep: Protected, now: datetime) -> AppPlan:
    """Read the tags, judge them, and read further only when something may be deleted."""
    result = AppPlan(app, store)
    rules = rules_for(config.retention, app).rules
    try:
        tags = await store.tags()
        facts = Facts(
            now,
            branches_of_any(config, app),
            frozenset(keep.running),
            frozenset(keep.pins),
            frozenset(keep.rollback),
        )
        verdicts = judge(config.tag_scheme, tags, rules, facts)
        if isinstance(verdicts, NeedCreated):
            created = {t: (await store.created(t)) or now for t in verdicts.tags}
            verdicts = judge(config.tag_scheme, tags, rules, Facts(**{**vars(facts), "created": created}))
            assert not isinstance(verdicts, NeedCreated)  # noqa: S101 (every time asked for was given)
        if all(v.kept for v in verdicts):
            result.graph = Graph(verdicts)  # the tags alone decided: nothing more to read
            return result
        result.inventory = await _with_protected(store, await store.inventory(tags), keep.digests)
        pushed = result.inventory.created
        orphans = [d for d in result.inventory.untagged if d in pushed and now - pushed[d] >= rules.min_age]
        graph = resolve(verdicts, result.inventory, keep.digests, orphans)
        unread = _unread_kept(graph, result.inventory)
        if unread:
            result.inventory = None
            result.problem = f"{unread}; nothing is deleted in this repository until it reads"
            return result
        result.graph = graph
        result.movable = frozenset(t for t in tags if _movable(config.tag_scheme, t))  # for apply's checks
    except RegistryError as exc:
        result.problem = f"{exc} (nothing is deleted in this repository)"
    return result


async def _with_protected(store: Store, inventory: Inventory, digests: set[str]) -> Inventory:
    """The inventory with the manifests of protected builds no tag names (a ReplicaSet or deploy file that
    names an index by digest alone): the platform images they list must be seen to be kept. One this
    repository does not have is not read, and protects nothing here."""
    missing = digests - inventory.nodes.keys()
    if not missing:
        return inventory
    return replace(inventory, nodes={**inventory.nodes, **await store.nodes(missing)})


def _unread_kept(graph: Graph, inventory: Inventory) -> str | None:
    """What kept could not be read, in words, or None. A kept index not read is a kept image whose platform
    images look unlisted: an old tag on one of them would delete it, so its repository fails closed."""
    tags, nodes = inventory.tags, inventory.nodes
    for verdict in graph.verdicts:
        if verdict.kept and verdict.tag not in tags:
            return f"kept {verdict.tag} was listed but its manifest could not be read"
    listed = {c for node in nodes.values() for c in node.children}
    for digest in sorted((set(tags.values()) | set(inventory.untagged) | listed) - nodes.keys()):
        if digest in graph.kept_digests:
            named = sorted(t for t, d in tags.items() if d == digest)
            of = f" ({named[0]})" if named else ", listed by a kept index"
            return f"the kept manifest {digest[:19]}…{of} could not be read"
    return None


def _movable(scheme: Scheme, tag: str) -> bool:
    """A name people move (prod, latest, a signature tag), not a build of the scheme (-dirty ones too)."""
    parsed = scheme.parse(tag)
    return not isinstance(parsed, ParsedTag) and parsed.code != "dirty"


async def plan(
    config: Config, stores: Mapping[str, Store], protected: Mapping[str, Protected], now: datetime
) -> PruneReport:
    """Every app's plan; apps are read concurrently (the client bounds requests per registry)."""
    plans = await asyncio.gather(
        *(plan_app(config, app, store, protected[app], now) for app, store in stores.items())
    )
    # a blob is freed only when no repository of the registry keeps it (a shared base layer stays)
    kept: dict[str, set[str]] = defaultdict(set)
    for item in plans:
        if item.graph is not None and item.inventory is not None:
            kept[item.store.ref.registry] |= kept_blobs(item.graph, item.inventory.nodes)
    for item in plans:
        if item.graph is not None and item.inventory is not None and item.graph.deletions:
            item.elsewhere = kept[item.store.ref.registry]
            item.graph.freed = _freed_by(item, {d for x in item.graph.deletions for d in x.digests})
    return PruneReport(list(plans))


async def apply(
    report: PruneReport, log: DecisionLog, *, actor: str, clock: Clock | None = None
) -> PruneReport:
    """Delete what the plan says, one manifest at a time, each after reading the tag list again."""
    now = clock or (lambda: datetime.now(UTC))
    report.applied = True
    for item in report.plans:
        if item.graph is None or item.inventory is None or report.stopped:
            continue
        doomed_tags = {v.tag for v in item.graph.verdicts if not v.kept}
        seen = _Seen(dict(item.inventory.tags), item.inventory.nodes)
        for index, deletion in enumerate(item.graph.deletions):
            try:
                blocker = await _named_since(item, deletion, seen, doomed_tags, every=index == 0)
                if blocker:
                    item.blocked.append((deletion, blocker))
                    continue
                for digest in deletion.digests:
                    await item.store.delete(digest)
            except RegistryError as exc:
                report.stopped = f"{exc}; nothing more was deleted"
                break
            item.deleted.append(deletion)
            await asyncio.to_thread(log.record, _record(item, deletion, actor, now()))
        if item.graph.deletions:
            item.graph.freed = _freed_by(item, {d for x in item.deleted for d in x.digests})
    return report


@dataclass
class _Seen:
    """The repository as apply last read it: every tag's digest, and what the manifests tags name since the
    plan reach (an index pushed meanwhile may list a platform image about to go; None: it did not read)."""

    tags: dict[str, str]
    nodes: Mapping[str, Node]  # the manifests the plan read
    reach: dict[str, set[str] | None] = field(default_factory=dict)


async def _named_since(
    item: AppPlan, deletion: Deletion, seen: _Seen, doomed: set[str], *, every: bool
) -> str | None:
    """A tag the plan did not delete that names, or whose index lists, a digest of this deletion. The tag
    list is read each time, with the digests of the tags new since the plan and of the kept tags outside
    the scheme (names people move: prod, latest); with `every` (before a repository's first deletion, or
    always where the tag list names the digests), of every kept tag."""
    current = await item.store.tags()
    for gone in set(seen.tags) - set(current):
        del seen.tags[gone]
    every = every or item.store.listed_digests
    ask = [t for t in current if t not in seen.tags or (t not in doomed and (every or t in item.movable))]
    if ask:
        found = await item.store.digests(ask)
        for tag in set(ask) - set(found):  # deleted between the list and its HEAD: it names nothing now
            seen.tags.pop(tag, None)
        moved = {d for t, d in found.items() if seen.tags.get(t) != d} - set(seen.reach)
        seen.tags.update(found)
        reached = {d: _reached(d, seen.nodes) for d in moved}
        unknown = {d for d, r in reached.items() if r is None}  # a manifest the plan did not read
        if unknown:
            nodes = {**seen.nodes, **await item.store.nodes(unknown)}
            reached.update((d, _reached(d, nodes)) for d in unknown)
        seen.reach.update(reached)
    wanted = set(deletion.digests)
    for tag, digest in seen.tags.items():
        if tag in doomed:
            continue
        reach = seen.reach.get(digest, {digest})
        if reach is None:
            return f"{tag} names {digest[:19]}…, whose manifest could not be read"
        hit = reach & wanted
        if hit:
            return f"{tag} was pushed or moved since the plan and uses {sorted(hit)[0][:19]}…"
    return None


def _reached(digest: str, nodes: Mapping[str, Node]) -> set[str] | None:
    """The digest and every manifest it lists, transitively; None when one of them was not read."""
    found, stack = set(), [digest]
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            node = nodes.get(current)
            if node is None:
                return None
            stack.extend(node.children)
    return found


def _freed_by(item: AppPlan, digests: set[str]) -> int:
    """The bytes deleting these digests frees (after apply: what was deleted; blocked frees nothing)."""
    if item.graph is None or item.inventory is None:
        return 0
    return freed_bytes(digests, item.graph.kept_digests, item.inventory.nodes, item.elsewhere)[0]


def _record(item: AppPlan, deletion: Deletion, actor: str, when: datetime) -> DecisionRecord:
    tags = ", ".join(deletion.tags) or "untagged"
    extra = len(deletion.digests) - 1
    return DecisionRecord(
        item.app,
        "delete",
        str(deletion.why),
        f"deleted {tags} ({deletion.sentence})" + (f" with {extra} referrers/children" if extra else ""),
        None,
        f"{item.image}@{deletion.digest}",
        actor,
        outcome="deleted",
        time=when,
    )


__all__ = ["AppPlan", "PruneReport", "Why", "apply", "plan", "plan_app"]

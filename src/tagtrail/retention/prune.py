"""`tagtrail prune`: plan per app (the default, a dry run), then apply one manifest at a time.

Safety, in the order it acts:
- a tag list that could not be read completely plans nothing for that repository (it is reported unread);
- what runs, pins and rollback targets are kept whatever the rules say (`rules.py`), and so is every digest
  they reach (`graph.py`);
- before each deletion the tag list is read again: a tag pushed since the plan that names, or whose index
  lists, a digest about to go blocks that deletion (a build pushed meanwhile is never deleted);
- referrers go before their subject and children after their index, so an interrupted run leaves only
  what a re-run plans again (or what the registry's garbage collection reclaims);
- a registry that refuses a DELETE stops every deletion after it, with one line saying why.
Every deletion is recorded in the decision log with the rule that allowed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tagtrail.config import Config
from tagtrail.errors import RegistryError
from tagtrail.history import DecisionLog, DecisionRecord
from tagtrail.retention.facts import Protected, rules_for
from tagtrail.retention.graph import Deletion, Graph, Inventory, Node, freed_bytes, resolve
from tagtrail.retention.rules import Facts, NeedCreated, Why, judge
from tagtrail.retention.stores import Store

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
            tuple(config.deploy.branches_of(app)),
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
        result.inventory = await store.inventory(tags)
        pushed = result.inventory.created
        orphans = [d for d in result.inventory.untagged if d in pushed and now - pushed[d] >= rules.min_age]
        result.graph = resolve(verdicts, result.inventory, keep.digests, orphans)
    except RegistryError as exc:
        result.problem = f"{exc} (nothing is deleted in this repository)"
    return result


async def plan(
    config: Config, stores: Mapping[str, Store], protected: Mapping[str, Protected], now: datetime
) -> PruneReport:
    """Every app's plan; apps are read concurrently (the client bounds requests per registry)."""
    plans = await asyncio.gather(
        *(plan_app(config, app, store, protected[app], now) for app, store in stores.items())
    )
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
        known = dict(item.inventory.tags)
        for deletion in item.graph.deletions:
            try:
                blocker = await _pushed_since(item, deletion, known, doomed_tags)
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
            item.graph.freed = _freed_by(item)
    return report


async def _pushed_since(
    item: AppPlan, deletion: Deletion, known: dict[str, str], doomed: set[str]
) -> str | None:
    """A tag that names, or whose index lists, a digest of this deletion and was not planned to go."""
    current = await item.store.tags()
    for gone in set(known) - set(current):
        del known[gone]
    new = [t for t in current if t not in known]
    if new:
        found = await item.store.digests(new)
        known.update(found)
        fresh = await item.store.nodes(set(found.values()))
        reach = {c for n in fresh.values() for c in n.children} | set(found.values())
        hit = set(deletion.digests) & reach
        if hit:
            tag = next(t for t, d in found.items() if d in hit or any(c in hit for c in _children(fresh, d)))
            return f"{tag} was pushed since the plan and uses {sorted(hit)[0][:19]}…"
    for tag, digest in known.items():
        if digest in deletion.digests and tag not in doomed:
            return f"{tag} now names {digest[:19]}…"
    return None


def _children(nodes: Mapping[str, Node], digest: str) -> tuple[str, ...]:
    node = nodes.get(digest)
    return node.children if node else ()


def _freed_by(item: AppPlan) -> int:
    """The bytes of what was deleted (a deletion blocked or not reached frees nothing)."""
    if item.graph is None or item.inventory is None:
        return 0
    done = {d for x in item.deleted for d in x.digests}
    return freed_bytes(done, item.graph.kept_digests, item.inventory.nodes)[0]


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

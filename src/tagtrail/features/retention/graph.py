"""From tag verdicts to digests: what may be deleted without breaking anything kept. Pure: no I/O.

A registry deletes manifests, not tags: deleting a digest removes every tag on it. So, over the graph of
manifests (index → children, referrer → subject):
- a digest is kept when any tag on it is kept, when it runs or is a rollback target, when a kept index lists
  it, or when it refers (signature, attestation, `subject`) to a kept image; all of this transitively;
- a digest is deleted only when every tag on it is to go and nothing kept reaches it;
- an index's children are never deleted on their own: they go after their index, and only if no kept
  manifest lists them too;
- referrers (cosign's `sha256-<hex>.sig`/`.att` tags, manifests whose `subject` names an image) go with
  their subject, before it, and only with it.
The bytes freed are the unique blobs no kept manifest uses, plus the deleted manifests themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from tagtrail.features.retention.rules import Verdict, Why, referrer_subject


@dataclass(frozen=True)
class Node:
    """A manifest as retention needs it: its size, what it lists, the blobs it uses, what it refers to."""

    digest: str
    size: int
    children: tuple[str, ...] = ()
    blobs: tuple[tuple[str, int], ...] = ()
    subject: str | None = None


@dataclass(frozen=True)
class Inventory:
    """A repository as read: every tag with its digest, and the manifests reached from them."""

    tags: Mapping[str, str]
    nodes: Mapping[str, Node]
    untagged: tuple[str, ...] = ()  # manifests known without a tag (GitHub's untagged versions)
    created: Mapping[str, datetime] = field(default_factory=dict)  # when those were pushed


@dataclass(frozen=True)
class Deletion:
    """One manifest to delete with its tags, and what goes with it: referrers first, children after."""

    digest: str
    tags: tuple[str, ...]
    why: Why
    sentence: str
    referrers: tuple[str, ...] = ()
    children: tuple[str, ...] = ()

    @property
    def digests(self) -> tuple[str, ...]:
        """In the order they are deleted: referrers, the manifest, then its children."""
        return (*self.referrers, self.digest, *self.children)


@dataclass
class Graph:
    """The digest-level plan of one repository."""

    verdicts: list[Verdict]
    deletions: list[Deletion] = field(default_factory=list)
    kept_digests: frozenset[str] = frozenset()
    freed: int = 0
    exact: bool = True  # False when a manifest could not be read: freed is then a lower bound


def resolve(
    verdicts: list[Verdict], inventory: Inventory, protected: Iterable[str] = (), orphans: Iterable[str] = ()
) -> Graph:
    """The deletions that honour every rule above; tags whose digest is kept say why. `orphans` are
    untagged manifests old enough to go if nothing kept reaches them (an interrupted run's children)."""
    tags, nodes = inventory.tags, inventory.nodes
    on_digest: dict[str, list[str]] = defaultdict(list)
    for tag, digest in tags.items():
        on_digest[digest].append(tag)
    refers = _referrers(inventory)

    roots = {tags[v.tag] for v in verdicts if v.kept and v.tag in tags} | set(protected)
    kept = _closure(roots, nodes, refers)
    final: list[Verdict] = []
    doomed: dict[str, list[Verdict]] = defaultdict(list)
    for verdict in verdicts:
        found = tags.get(verdict.tag)
        if verdict.kept or found is None:
            final.append(verdict)
            continue
        digest = found
        if digest in kept:
            final.append(_kept_anyway(verdict, digest, on_digest, verdicts))
        elif verdict.why is Why.REFERRER:
            final.append(Verdict(verdict.tag, Why.WITH_SUBJECT, "goes with the image it refers to"))
        else:
            final.append(verdict)
            doomed[digest].append(verdict)

    graph = Graph(final, kept_digests=frozenset(kept))
    taken: set[str] = set()
    referring = {r for found in refers.values() for r in found}
    for digest, reasons in sorted(doomed.items(), key=lambda item: item[0] in referring):
        if digest in taken:  # it goes already, as a referrer or child of another
            continue
        children = [c for c in _reach(digest, nodes) if c != digest and c not in kept and c not in taken]
        subjects = {digest, *children}
        referrers = [
            r
            for r in _reach_referrers(subjects, nodes, refers)
            if r not in kept and r not in taken and r not in subjects
        ]
        taken.update((digest, *children, *referrers))
        graph.deletions.append(
            Deletion(
                digest,
                tuple(sorted(on_digest[digest])),
                reasons[0].why,
                reasons[0].sentence,
                tuple(referrers),
                tuple(children),
            )
        )
    # referrers of images that are already gone (an interrupted run): nothing kept needs them
    for verdict in final:
        orphan = tags.get(verdict.tag)
        if verdict.why is Why.WITH_SUBJECT and orphan is not None and orphan not in taken:
            taken.add(orphan)
            graph.deletions.insert(
                0, Deletion(orphan, tuple(sorted(on_digest[orphan])), verdict.why, verdict.sentence)
            )
    for orphan in orphans:
        if orphan not in kept and orphan not in taken:
            taken.add(orphan)
            graph.deletions.append(Deletion(orphan, (), Why.ORPHAN, "untagged, and nothing kept lists it"))
    graph.freed, graph.exact = freed_bytes(taken, kept, nodes)
    return graph


def _referrers(inventory: Inventory) -> dict[str, set[str]]:
    """Subject digest → the digests that refer to it: by a cosign-style tag, or by their `subject`."""
    refers: dict[str, set[str]] = defaultdict(set)
    for tag, digest in inventory.tags.items():
        subject = referrer_subject(tag)
        if subject:
            refers[subject].add(digest)
    for node in inventory.nodes.values():
        if node.subject:
            refers[node.subject].add(node.digest)
    return refers


def _closure(roots: set[str], nodes: Mapping[str, Node], refers: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        node = nodes.get(digest)
        if node is not None:
            stack.extend(node.children)
        stack.extend(refers.get(digest, ()))
    return seen


def _reach(digest: str, nodes: Mapping[str, Node]) -> list[str]:
    """The digest and everything it lists, transitively, parents before children."""
    order: list[str] = []
    stack = [digest]
    while stack:
        current = stack.pop(0)
        if current in order:
            continue
        order.append(current)
        node = nodes.get(current)
        if node is not None:
            stack.extend(node.children)
    return order


def _reach_referrers(
    subjects: set[str], nodes: Mapping[str, Node], refers: Mapping[str, set[str]]
) -> list[str]:
    """Referrers of the subjects (and of those referrers, and their children), outermost first."""
    found: list[str] = []
    frontier = sorted(subjects)
    while frontier:
        layer = sorted(
            {r for s in frontier for r in refers.get(s, ()) if r not in found and r not in subjects}
        )
        expanded = [d for r in layer for d in _reach(r, nodes) if d not in found]
        found = expanded + found  # a referrer of a referrer is deleted before the one it refers to
        frontier = layer
    return list(dict.fromkeys(found))


def _kept_anyway(
    verdict: Verdict, digest: str, on_digest: Mapping[str, list[str]], verdicts: list[Verdict]
) -> Verdict:
    kept_tags = {v.tag for v in verdicts if v.kept}
    sharing = sorted(t for t in on_digest[digest] if t in kept_tags)
    if sharing:
        return Verdict(
            verdict.tag, Why.SHARES_DIGEST, f"shares its digest with kept {sharing[0]} ({verdict.sentence})"
        )
    return Verdict(verdict.tag, Why.REFERENCED, f"a kept image lists or refers to it ({verdict.sentence})")


def freed_bytes(
    deleted: set[str], kept: Iterable[str], nodes: Mapping[str, Node], elsewhere: Iterable[str] = ()
) -> tuple[int, bool]:
    """Bytes deleting `deleted` frees: those manifests, and their blobs no kept manifest uses (here, or
    `elsewhere`: blobs other repositories of the registry keep); and whether every manifest involved was
    read (else it is a lower bound)."""
    kept = set(kept)
    exact = all(d in nodes for d in deleted | kept)
    kept_blobs = {b for d in kept if d in nodes for b, _ in nodes[d].blobs} | set(elsewhere)
    gone: dict[str, int] = {}
    for digest in deleted:
        node = nodes.get(digest)
        if node is None:
            continue
        gone[digest] = node.size
        for blob, size in node.blobs:
            if blob not in kept_blobs:
                gone[blob] = size
    return sum(gone.values()), exact


def kept_blobs(graph: Graph, nodes: Mapping[str, Node]) -> set[str]:
    """The blobs the kept manifests of one repository use."""
    return {b for d in graph.kept_digests if d in nodes for b, _ in nodes[d].blobs}

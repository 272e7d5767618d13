"""Where an app's images live, as retention reads and deletes them: the `Store` protocol, and the OCI
distribution store (docker-registry, Harbor, zot, a cluster add-on's registry).

Reads go through `RegistryClient`'s public methods only: the tag list, one HEAD per tag (only when the
plan deletes something: a digest shared with a kept tag must be seen), one GET per distinct manifest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from tagtrail.adapters.registry import ImageRef, Manifest, RegistryClient
from tagtrail.errors import RegistryNotFound
from tagtrail.features.retention.graph import Inventory, Node

T = TypeVar("T")


class Store(Protocol):
    """One repository's images: read them, and delete one manifest (every tag on it goes with it)."""

    ref: ImageRef
    kind: str
    listed_digests: bool  # the tag list carries every tag's digest: `digests` after `tags` costs nothing

    async def tags(self) -> list[str]:
        """Every tag, all pages, or a RegistryError: never a part."""
        ...

    async def inventory(self, tags: Sequence[str]) -> Inventory:
        """The digest of each tag and every manifest reached from them."""
        ...

    async def digests(self, tags: Iterable[str]) -> dict[str, str]:
        """The digest of each tag that still exists."""
        ...

    async def nodes(self, digests: Iterable[str]) -> dict[str, Node]:
        """The manifests of these digests and everything they list."""
        ...

    async def created(self, tag: str) -> datetime | None:
        """When the image of a tag says it was made."""
        ...

    async def delete(self, digest: str) -> None:
        """Delete one manifest by digest."""
        ...

    def reclaim_hint(self) -> str:
        """How the space comes back after deleting."""
        ...


def node_of(manifest: Manifest) -> Node:
    """What retention needs of a manifest: its children, its blobs and their sizes, its `subject`."""
    blobs = [(d.digest, d.size) for d in (manifest.config, *manifest.layers) if d is not None]
    try:
        subject = json.loads(manifest.raw).get("subject", {}).get("digest")
    except (ValueError, AttributeError):
        subject = None
    return Node(
        manifest.digest,
        len(manifest.raw),
        tuple(d.digest for d in manifest.manifests),
        tuple(blobs),
        subject if isinstance(subject, str) else None,
    )


async def gather(jobs: Iterable[Awaitable[T]]) -> list[T]:
    return list(await asyncio.gather(*jobs))


async def read_nodes(client: RegistryClient, ref: ImageRef, roots: Iterable[str]) -> dict[str, Node]:
    """Every manifest reached from `roots` (index children, transitively), one GET each. A child the
    registry no longer has is left out: the plan then says its bytes are a lower bound."""
    nodes: dict[str, Node] = {}
    frontier = set(roots)

    async def read(digest: str) -> Node | None:
        try:
            return node_of(await client.manifest(ref.with_digest(digest)))
        except RegistryNotFound:
            return None

    while frontier:
        found = await gather(read(d) for d in sorted(frontier))
        for node in found:
            if node is not None:
                nodes[node.digest] = node
        frontier = {c for n in found if n is not None for c in n.children} - nodes.keys()
        frontier -= {d for d in frontier if d in nodes}
    return nodes


class DistributionStore:
    """A repository of an OCI distribution registry: DELETE of a manifest by digest."""

    kind = "distribution"
    listed_digests = False  # one HEAD per tag

    def __init__(self, client: RegistryClient, ref: ImageRef) -> None:
        self.client = client
        self.ref = ref

    async def tags(self) -> list[str]:
        return list(await self.client.list_tags(self.ref))

    async def digests(self, tags: Iterable[str]) -> dict[str, str]:
        async def one(tag: str) -> tuple[str, str | None]:
            try:
                return tag, (await self.client.head(self.ref.with_tag(tag))).digest
            except RegistryNotFound:  # deleted since it was listed: it names nothing now
                return tag, None

        return {tag: digest for tag, digest in await gather(one(t) for t in tags) if digest}

    async def nodes(self, digests: Iterable[str]) -> dict[str, Node]:
        return await read_nodes(self.client, self.ref, digests)

    async def inventory(self, tags: Sequence[str]) -> Inventory:
        found = await self.digests(tags)
        return Inventory(found, await self.nodes(set(found.values())))

    async def created(self, tag: str) -> datetime | None:
        return (await self.client.image_config(self.ref.with_tag(tag))).created

    async def delete(self, digest: str) -> None:
        try:
            await self.client.delete(self.ref.with_digest(digest))
        except RegistryNotFound:  # gone already (a re-run after an interruption): what was wanted
            return

    def reclaim_hint(self) -> str:
        # Not --delete-untagged: distribution 2.8 then also deletes the (untagged) children of every kept
        # multi-arch image and the OCI referrer indexes' entries, so kept images no longer pull. tagtrail
        # deletes children and referrers itself, so a plain collection frees everything it deleted.
        return (
            "the registry frees the space when it collects garbage; for docker-registry (distribution) run,"
            " with the registry stopped or read-only: docker-registry garbage-collect"
            " /etc/docker/registry/config.yml (not --delete-untagged: in distribution 2.8 it also deletes"
            " the platform images of kept multi-arch images)"
        )

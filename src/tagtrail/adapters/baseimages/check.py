"""Has the base of what runs moved? Per app: the base its running image was built on (its annotations, or
the Dockerfile at its commit when the image has none), the digest that base's tag points to now, and so
whether it moved and since when.

Requests per check: one HEAD per distinct base, shared by every app built on it. What cannot change is
remembered (`Memory`): a running image's recorded base (by the image's digest), a base image's created
time (by its digest), a commit's Dockerfile. So a poll where nothing moved costs exactly those HEADs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from tagtrail.adapters import dockerfiles
from tagtrail.adapters.baseimages.record import Recorded, base_name
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import ImageConfig, ImageRef, Manifest, ManifestHead
from tagtrail.adapters.registry.media import parse_config
from tagtrail.errors import RegistryError, TagtrailError

Source = Literal["annotations", "dockerfile", "none"]


class Reads(Protocol):
    """The registry reads a check makes (RegistryClient)."""

    async def head(self, ref: ImageRef) -> ManifestHead: ...

    async def manifest(self, ref: ImageRef) -> Manifest: ...

    async def blob(self, ref: ImageRef, digest: str) -> bytes: ...

    async def image_config(self, ref: ImageRef) -> ImageConfig: ...


def _annotations(manifest: Manifest) -> dict[str, str]:
    try:
        found = json.loads(manifest.raw).get("annotations")
    except (ValueError, AttributeError):
        return {}
    return {k: v for k, v in found.items() if isinstance(v, str)} if isinstance(found, dict) else {}


def _child(index: Manifest) -> str | None:
    """The image of an index a check reads the record of: linux/amd64's, else the first platform's."""
    usable = [(d.digest, d.platform) for d in index.manifests if d.platform in index.platforms]
    preferred = [
        digest for digest, p in usable if p is not None and (p.os, p.architecture) == ("linux", "amd64")
    ]
    return next(iter(preferred or [digest for digest, _ in usable]), None)


@dataclass(frozen=True)
class Running:
    """What the check needs of one app: what runs, and where its Dockerfile is."""

    app: str
    image: str  # repository
    tag: str | None
    digest: str | None
    dockerfile: str  # relative to the repository root
    commit: str | None = None  # the running tag's commit (short or full), for the Dockerfile fallback


@dataclass
class AppBase:
    """One app's base: what the running build used, what its tag points to now."""

    app: str
    running: str | None
    base: str | None = None  # full reference with tag; None: scratch, or not known
    scratch: bool = False  # the Dockerfile at the running commit builds FROM scratch: no base to move
    used: str | None = None  # the digest the running build used (None: not recorded)
    current: str | None = None  # the digest the base's tag points to now
    source: Source = "none"
    pinned: bool = False  # the Dockerfile names the base by digest: a Dependabot pull request moves it
    since: datetime | None = None  # when the current base was made (its image's created time)
    problem: str | None = None
    commit: str | None = None  # the running build's commit (from its tag), where the scheme has one

    @property
    def moved(self) -> bool | None:
        """True: the tag points elsewhere than the build used; None: cannot be told."""
        if self.pinned or self.scratch:
            return False
        if self.used is None or self.current is None:
            return None
        return self.used != self.current

    def as_json(self) -> dict[str, object]:
        return {
            "app": self.app,
            "running": self.running,
            "base": self.base,
            "used": self.used,
            "current": self.current,
            "moved": self.moved,
            "since": self.since.isoformat() if self.since else None,
            "pinned": self.pinned,
            "scratch": self.scratch,
            "source": self.source,
            "problem": self.problem,
        }


@dataclass
class Memory:
    """What a check learned that cannot change; `tagtrail serve` keeps one across polls."""

    recorded: dict[str, Recorded | None] = field(default_factory=dict)  # image digest → its base
    created: dict[str, datetime | None] = field(default_factory=dict)  # base digest → created
    written: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (commit, file) → FROM
    # ("" for scratch, None when the Dockerfile cannot be read there)


@dataclass
class Check:
    """One check of many apps: the client, what is remembered, and the source repository (or None)."""

    client: Reads
    memory: Memory = field(default_factory=Memory)
    source: GitRepo | None = None
    root: Path | None = None  # the work tree whose Dockerfiles say whether a base is pinned

    async def run(self, apps: Sequence[Running]) -> list[AppBase]:
        rows = list(await asyncio.gather(*(self._recorded(app) for app in apps)))
        names = sorted({r.base for r in rows if r.base and not r.pinned})
        heads = await asyncio.gather(*(self._head(name) for name in names), return_exceptions=True)
        now = dict(zip(names, heads, strict=True))
        for row in rows:
            found = now.get(row.base or "")
            if isinstance(found, TagtrailError):  # this base cannot be read now: its apps are "unknown"
                row.problem = str(found)
            elif isinstance(found, BaseException):
                raise found  # a bug is not a registry's answer
            elif found is not None:
                row.current = found
        moved = {(r.base, r.current) for r in rows if r.moved and r.base and r.current}
        await asyncio.gather(*(self._created(base, digest) for base, digest in sorted(moved)))
        for row in rows:
            row.since = self.memory.created.get(row.current or "") if row.moved else None
        return rows

    async def _head(self, name: str) -> str:
        return (await self.client.head(ImageRef.parse(name))).digest

    async def _recorded(self, app: Running) -> AppBase:
        running = f"{app.image}:{app.tag}" if app.tag else None
        row = AppBase(app.app, running + (f"@{app.digest}" if app.digest else "") if running else None)
        row.commit = app.commit
        row.pinned = self._pinned(app)
        if running is None:
            row.problem = "nothing runs (no reference in the deploy files)"
            return row
        try:
            recorded = await self.recorded(ImageRef.parse(running), app.digest)
        except TagtrailError as exc:  # the registry's answer, or a malformed one
            row.problem = str(exc)
            return row
        if recorded is not None:
            row.base, row.used, row.source = recorded.name, recorded.digest, "annotations"
            return row
        written = await asyncio.to_thread(self._written, app)
        if written == "":
            row.scratch, row.source = True, "dockerfile"
        elif written is not None:
            row.base, row.source = base_name(written), "dockerfile"
            row.problem = (
                "the image records no base digest: rebuild it with `tagtrail build` or the generated workflow"
            )
        return row

    async def recorded(self, ref: ImageRef, digest: str | None) -> Recorded | None:
        """The running image's record: its manifest's annotations (buildah and podman write them by
        themselves), else its config's labels (docker's builds keep only those): a manifest and at most a
        config, read once per digest."""
        if digest is not None and digest in self.memory.recorded:
            return self.memory.recorded[digest]
        target = ref.with_digest(digest) if digest else ref
        top = image = await self.client.manifest(target)
        if top.is_index and (child := _child(top)) is not None:
            image = await self.client.manifest(target.with_digest(child))
        recorded = Recorded.from_labels(_annotations(top)) or Recorded.from_labels(_annotations(image))
        if recorded is None and image.config is not None:
            raw = await self.client.blob(target, image.config.digest)
            recorded = Recorded.from_labels(parse_config(raw, image.config.digest).labels)
        if digest is not None:
            self.memory.recorded[digest] = recorded
        return recorded

    def _written(self, app: Running) -> str | None:
        """The final FROM at the running commit (images built without tagtrail record no base)."""
        if self.source is None or not app.commit:
            return None
        key = (app.commit, app.dockerfile)
        if key not in self.memory.written:
            text = self.source.show(app.commit, app.dockerfile)
            try:
                base = dockerfiles.final_base(text, f"{app.commit}:{app.dockerfile}") if text else None
            except TagtrailError:
                base = None
            self.memory.written[key] = (base.image or "") if base is not None else None
        return self.memory.written[key]

    def _pinned(self, app: Running) -> bool:
        if self.root is None:
            return False
        try:
            return dockerfiles.read(self.root / app.dockerfile, shown=app.dockerfile).pinned
        except TagtrailError:
            return False

    async def _created(self, base: str, digest: str) -> None:
        """When a base's current image was made: one config read per new base digest, remembered."""
        if digest in self.memory.created:
            return
        try:
            config = await self.client.image_config(ImageRef.parse(base).with_digest(digest))
        except RegistryError:
            return  # unknown for now; asked again at the next check
        self.memory.created[digest] = config.created


async def check(
    client: Reads,
    apps: Sequence[Running],
    *,
    memory: Memory | None = None,
    source: GitRepo | None = None,
    root: Path | None = None,
) -> list[AppBase]:
    """Every app's base, checked once (see `Check`)."""
    return await Check(client, memory or Memory(), source, root).run(apps)

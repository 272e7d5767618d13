"""Recording a build's base: the final stage's `FROM` resolved to the digest its tag points to, as the OCI
annotations `org.opencontainers.image.base.name` and `…base.digest` (also as labels, which every builder
keeps in the image config), and a build context that makes the builder use exactly that digest.

Resolving costs one HEAD per distinct base, whatever the number of apps built on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tagtrail.adapters import dockerfiles
from tagtrail.adapters.apps import App
from tagtrail.adapters.dockerfiles import DockerfileError
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.adapters.registry.media import BASE_DIGEST, BASE_NAME, base_of
from tagtrail.config import Config
from tagtrail.errors import TagtrailError


@dataclass(frozen=True)
class Recorded:
    """A base as an image records it: its reference (with tag) and the digest used."""

    name: str
    digest: str

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Recorded | None:
        found = base_of(labels)
        return cls(*found) if found is not None else None

    def labels(self) -> dict[str, str]:
        return {BASE_NAME: self.name, BASE_DIGEST: self.digest}


@dataclass(frozen=True)
class ResolvedBase:
    """An app's base for a build: what the Dockerfile says and what its tag points to now."""

    written: str  # the FROM's image as the Dockerfile names it (ARGs expanded): what a build context replaces
    recorded: Recorded
    pinned: bool  # the Dockerfile names a digest
    insecure: bool  # its registry is reached over plain HTTP

    @property
    def build_context(self) -> str:
        """`NAME=docker-image://REPO@DIGEST`: the builder uses this digest for that FROM, whatever the tag
        points to by the time it pulls."""
        ref = ImageRef.parse(self.recorded.name)
        return f"{self.written}=docker-image://{ref.name}@{self.recorded.digest}"


def base_name(image: str) -> str:
    """A FROM's image as a full reference with its tag (docker's defaults: Docker Hub, library/, latest)."""
    ref = ImageRef.parse(image)
    return f"{ref.name}:{ref.tag or ('latest' if not ref.digest else '')}".rstrip(":")


@dataclass(frozen=True)
class Resolution:
    """Per app, its base resolved (None: `FROM scratch`, or a base that could not be resolved); and why,
    for each app whose base could not be (the registry said no, or cannot be reached)."""

    bases: dict[str, ResolvedBase | None]
    unresolved: dict[str, str]


async def resolve_bases(
    client: RegistryClient,
    config: Config,
    root: Path,
    apps: Sequence[App],
    build_args: Mapping[str, str] | None = None,
) -> Resolution:
    """Each app's base, one HEAD per distinct base. A Dockerfile that cannot be read, or whose FROM is not
    an image reference, raises DockerfileError (file:line); a base the registry does not give is reported
    in `unresolved` (a base that lives only in the builder's local storage builds, unrecorded)."""
    bases = {
        app.name: dockerfiles.read(root / app.dockerfile, build_args, shown=app.dockerfile) for app in apps
    }
    refs: dict[str, ImageRef] = {}
    for app in apps:
        base = bases[app.name]
        if base.image is not None:
            try:
                refs[base.image] = ImageRef.parse(base.image)
            except TagtrailError as exc:
                raise DockerfileError(app.dockerfile, base.line, str(exc)) from None
    names = sorted({b.image for b in bases.values() if b.image is not None and not b.pinned})
    heads = await asyncio.gather(*(client.head(refs[name]) for name in names), return_exceptions=True)
    found = dict(zip(names, heads, strict=True))
    resolution = Resolution({}, {})
    for name, base in bases.items():
        head = found.get(base.image or "")
        if isinstance(head, TagtrailError):
            resolution.unresolved[name] = f"{base.image}: {head}"
        elif isinstance(head, BaseException):
            raise head  # a bug, not a registry's answer
        if base.image is None or isinstance(head, BaseException):
            resolution.bases[name] = None
            continue
        digest = base.digest or (head.digest if head is not None else "")
        settings = config.registries.get(refs[base.image].registry)
        resolution.bases[name] = ResolvedBase(
            base.image,
            Recorded(base_name(base.image), digest),
            base.pinned,
            bool(settings and settings.insecure),
        )
    return resolution

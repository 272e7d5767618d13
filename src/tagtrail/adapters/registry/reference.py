"""Image references (`host[:port]/path[:tag][@sha256:…]`), normalised the way docker reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from tagtrail.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


@dataclass(frozen=True)
class ImageRef:
    """A repository in a registry, optionally with a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Read `text` as docker does: no host means Docker Hub, one path component there means `library/`."""
        rest = text.strip()
        if not rest:
            raise InvalidReference("empty image reference")
        digest = None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise InvalidReference(f"'{text}': '{digest}' is not a digest (sha256:<64 hex>)")
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG.fullmatch(tag):
                raise InvalidReference(
                    f"'{text}': '{tag}' is not a tag (letters, digits, _ . -; at most 128)"
                )
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
            registry, path = first, remainder
        else:
            registry, path = DOCKER_HUB, rest
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in path:
                path = f"library/{path}"
        if not _PATH.fullmatch(path):
            raise InvalidReference(
                f"'{text}': '{path}' is not a repository path (lowercase letters, digits, separators . _ - /)"
            )
        return cls(registry, path, tag, digest)

    @property
    def api_host(self) -> str:
        """Where the distribution API answers for this registry (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the manifest endpoint for: the digest when there is one, else the tag."""
        if self.digest:
            return self.digest
        if self.tag:
            return self.tag
        raise InvalidReference(f"'{self}' names no tag or digest")

    def with_tag(self, tag: str) -> ImageRef:
        """This repository at `tag`; a tag outside the distribution grammar (a newline, `../`, a space)
        never reaches a URL."""
        if not _TAG.fullmatch(tag):
            raise InvalidReference(
                f"{tag[:80]!r} is not a tag (letters, digits, _ . -; at most 128, not starting with . or -)"
            )
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"{digest[:80]!r} is not a digest (sha256:<64 hex>)")
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

"""Manifests, indexes and image configs: their media types, and reading them with checks.

Everything read from a registry is validated before anyone acts on it: the JSON must have the shape its
media type promises, or the read fails (DESIGN invariant 4).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tagtrail.errors import TagtrailError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

REVISION_LABEL = "org.opencontainers.image.revision"
SOURCE_LABEL = "org.opencontainers.image.source"
CREATED_LABEL = "org.opencontainers.image.created"
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


class MalformedError(TagtrailError, ValueError):
    """The document does not have the shape its media type promises."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"'{text}' is not a platform such as linux/amd64 or linux/arm/v7")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None


@dataclass(frozen=True)
class Manifest:
    """An image manifest or an index, as read (the raw bytes are what the digest covers)."""

    media_type: str
    digest: str
    raw: bytes
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def platforms(self) -> list[Platform]:
        """The platforms an index offers, without buildx's attestation entries (unknown/unknown)."""
        return [
            d.platform
            for d in self.manifests
            if d.platform is not None and d.platform.os != "unknown" and d.platform.architecture != "unknown"
        ]

    @property
    def revision(self) -> str | None:
        """The commit the image was built from, where the manifest says it (the OCI `revision` annotation,
        which `tagtrail build` and docker/metadata-action write): unlike a label, never inherited from
        the base image, and read without fetching the config."""
        return self.annotations.get(REVISION_LABEL) or None


@dataclass(frozen=True)
class ImageConfig:
    """What an image says about itself: when it was made, for which platform, and its labels."""

    digest: str
    created: datetime | None
    os: str | None
    architecture: str | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def revision(self) -> str | None:
        """The commit the image was built from (OCI `revision` label), if it says."""
        return self.labels.get(REVISION_LABEL)


def base_of(said: Mapping[str, str]) -> tuple[str, str] | None:
    """The base an image records in its annotations or labels (`…base.name`, `…base.digest`): the name with
    its tag and the digest used, or None."""
    name, digest = said.get(BASE_NAME, ""), said.get(BASE_DIGEST, "")
    return (name, digest) if name and digest.startswith("sha256:") else None


def _descriptor(data: Any, where: str) -> Descriptor:
    if not isinstance(data, dict):
        raise MalformedError(f"{where} is not an object")
    media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise MalformedError(f"{where} has no sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedError(f"{where} has no size")
    platform = None
    if isinstance(data.get("platform"), dict):
        p = data["platform"]
        if not isinstance(p.get("os"), str) or not isinstance(p.get("architecture"), str):
            raise MalformedError(f"{where} has a platform without os and architecture")
        variant = p.get("variant")
        platform = Platform(p["os"], p["architecture"], variant if isinstance(variant, str) else None)
    return Descriptor(media_type if isinstance(media_type, str) else "", digest, size, platform)


def parse_manifest(raw: bytes, media_type: str, digest: str) -> Manifest:
    """Read a manifest or index body; the media type comes from the response header or the body."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedError(f"the manifest is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedError("the manifest is not a JSON object")
    body_type = data.get("mediaType")
    found = data.get("annotations")
    annotations = (
        {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}
        if isinstance(found, dict)
        else {}
    )
    kind = media_type if media_type in INDEX_TYPES | MANIFEST_TYPES else body_type
    if kind not in INDEX_TYPES | MANIFEST_TYPES:
        raise MalformedError(f"unsupported manifest media type '{media_type or body_type}'")
    if data.get("schemaVersion") != 2:
        raise MalformedError("only schemaVersion 2 manifests are supported")
    if kind in INDEX_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise MalformedError("the index has no manifests list")
        return Manifest(
            kind,
            digest,
            raw,
            manifests=tuple(_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries)),
            annotations=annotations,
        )
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise MalformedError("the manifest has no layers list")
    return Manifest(
        kind,
        digest,
        raw,
        config=_descriptor(data.get("config"), "config"),
        layers=tuple(_descriptor(e, f"layers[{i}]") for i, e in enumerate(layers)),
        annotations=annotations,
    )


def parse_config(raw: bytes, digest: str) -> ImageConfig:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedError(f"the image config is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedError("the image config is not a JSON object")
    inner = _object(data.get("config"))
    labels = _object(inner.get("Labels"))
    created = _timestamp(data.get("created"))
    return ImageConfig(
        digest,
        created,
        data.get("os") if isinstance(data.get("os"), str) else None,
        data.get("architecture") if isinstance(data.get("architecture"), str) else None,
        {str(k): str(v) for k, v in labels.items()},
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _timestamp(value: Any) -> datetime | None:
    """An RFC 3339 time as Go writes it (nanoseconds, `Z`); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    # Python reads at most microseconds: cut a longer fraction to six digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None

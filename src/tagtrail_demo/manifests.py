"""The bytes of small synthetic images, made without a registry: an image's config blob, its one layer and
its manifest; an index over platform images; an artifact about an image (a signature) and the OCI 1.1
fallback index of an image's referrers. OCI and Docker v2 media types. Pure: `images.py` pushes them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"

MediaFamily = Literal["oci", "docker"]
Descriptor = Mapping[str, Any]  # what a manifest says of another: mediaType, digest, size


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Built:
    """A manifest, and the blobs it names (uploaded before it)."""

    body: bytes
    media_type: str
    blobs: tuple[bytes, ...] = ()

    @property
    def digest(self) -> str:
        return sha256_digest(self.body)


def image(
    tag: str | None,
    *,
    labels: Mapping[str, str],
    created: datetime,
    platform: str,
    media: MediaFamily,
    content: bytes,
    annotations: Mapping[str, str] | None,
) -> Built:
    """One single-platform image: its config carries the tag, `created` and the labels, so each build has
    a digest of its own; `annotations` go on its manifest (OCI only)."""
    os_name, arch = platform.split("/", 1)
    layer, diff_id = _layer(content)
    stamp = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    config = _json(
        {
            "architecture": arch,
            "os": os_name,
            "created": stamp,
            "config": {"Labels": dict(labels)},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": stamp, "comment": f"tagtrail synthetic image {tag or ''}".strip()}],
        }
    )
    oci = media == "oci"
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": _descriptor(OCI_CONFIG if oci else DOCKER_CONFIG, config),
            "layers": [_descriptor(OCI_LAYER if oci else DOCKER_LAYER, layer)],
        }
        | ({"annotations": dict(annotations)} if annotations and oci else {})
    )
    return Built(manifest, media_type, (layer, config))


def index(children: Sequence[tuple[Descriptor, str]], media: MediaFamily) -> Built:
    """An index over platform images: each child's descriptor and its platform (`os/arch`)."""
    media_type = OCI_INDEX if media == "oci" else DOCKER_LIST
    manifests = [
        {**child, "platform": dict(zip(("os", "architecture"), p.split("/", 1), strict=True))}
        for child, p in children
    ]
    return Built(_json({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}), media_type)


def referrer(subject: Descriptor, tag: str | None, artifact_type: str, *, with_subject: bool) -> Built:
    """An artifact about `subject`: an OCI manifest with one payload layer and the empty config, naming its
    subject in a `subject` descriptor `with_subject` (OCI 1.1), else only by the tag it is pushed under."""
    claim = {"critical": {"image": {"docker-manifest-digest": subject["digest"]}}, "tag": tag}
    payload = json.dumps(claim).encode()
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": _descriptor(OCI_EMPTY, EMPTY_JSON),
        "layers": [_descriptor(artifact_type, payload)],
    }
    if with_subject:
        body["subject"] = dict(subject)
    return Built(_json(body), OCI_MANIFEST, (payload, EMPTY_JSON))


def referrers_index(referrers: Sequence[Descriptor]) -> Built:
    """The OCI 1.1 fallback for registries without the referrers API: an index of an image's referrers."""
    listed = [dict(r) for r in referrers]
    return Built(_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}), OCI_INDEX)


def _descriptor(media_type: str, blob: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256_digest(blob), "size": len(blob)}


def _json(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _layer(content: bytes) -> tuple[bytes, str]:
    """A gzip'd tar with one file; returns the blob and its diff_id (digest of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("tagtrail-synthetic")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256_digest(tar_bytes)

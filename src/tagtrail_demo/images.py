"""Push small synthetic images through a registry's real API: a config blob, one layer, a manifest.

Each image has its own digest (its config carries the tag, the `created` time and the labels given), so a
test can push hundreds of distinct builds quickly; `push_index` makes a multi-arch index over per-platform
images, as `docker buildx --platform a,b` does. OCI and Docker v2 media types are both available. What is
pushed is made in `manifests.py`; this module speaks the registry's API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urljoin

import httpx

from tagtrail.errors import SandboxError
from tagtrail_demo import manifests
from tagtrail_demo.manifests import (
    COSIGN_SIGNATURE,
    OCI_INDEX,
    OCI_MANIFEST,
    Built,
    MediaFamily,
    sha256_digest,
)


@dataclass(frozen=True)
class PushedImage:
    """What was pushed: where, under which tag, and the digest a client must see for it."""

    repository: str
    tag: str
    digest: str
    media_type: str
    created: datetime
    labels: dict[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()


class ImagePusher:
    """Pushes synthetic images to one registry, with basic auth or none."""

    def __init__(self, base_url: str, *, auth: tuple[str, str] | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(auth=auth, timeout=timeout)
        self._sizes: dict[str, int] = {}  # manifest digest → size, for the index descriptors
        self._bodies: dict[str, bytes] = {}  # manifest digest → bytes, to tag again without reading it

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ImagePusher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def push_image(
        self,
        repository: str,
        tag: str | None,
        *,
        labels: dict[str, str] | None = None,
        created: datetime | None = None,
        platform: str = "linux/amd64",
        media: MediaFamily = "oci",
        content: bytes | None = None,
        annotations: dict[str, str] | None = None,
    ) -> PushedImage:
        """Push one single-platform image; with `tag=None` it is pushed by digest only (for an index).
        `annotations` go on its manifest (OCI only), as `buildah bud --annotation` writes them."""
        created = created or datetime.now(UTC)
        labels = dict(labels or {})
        built = manifests.image(
            tag,
            labels=labels,
            created=created,
            platform=platform,
            media=media,
            content=content if content is not None else f"{repository}:{tag}:{platform}".encode(),
            annotations=annotations,
        )
        digest = self._push(repository, tag, built)
        return PushedImage(repository, tag or "", digest, built.media_type, created, labels, (platform,))

    def push_index(
        self,
        repository: str,
        tag: str,
        *,
        platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
        labels: dict[str, str] | None = None,
        created: datetime | None = None,
        media: MediaFamily = "oci",
        annotations: dict[str, str] | None = None,
    ) -> PushedImage:
        """Push one image per platform by digest, then an index over them under `tag`; `annotations` on
        each platform's manifest, as buildx writes docker/metadata-action's by default."""
        created = created or datetime.now(UTC)
        children = [
            self.push_image(
                repository,
                None,
                labels=labels,
                created=created,
                platform=p,
                media=media,
                content=f"{repository}:{tag}:{p}".encode(),
                annotations=annotations,
            )
            for p in platforms
        ]
        built = manifests.index([(self._descriptor(c), c.platforms[0]) for c in children], media)
        digest = self._push(repository, tag, built)
        return PushedImage(
            repository, tag, digest, built.media_type, created, dict(labels or {}), tuple(platforms)
        )

    def push_referrer(
        self,
        subject: PushedImage,
        tag: str | None,
        *,
        artifact_type: str = COSIGN_SIGNATURE,
        with_subject: bool = True,
    ) -> PushedImage:
        """An artifact about `subject` (a signature, an attestation, an SBOM): an OCI manifest with one
        payload layer and the empty config. cosign's tag scheme names its subject in the tag
        (`sha256-<hex>.sig`, `with_subject=False`); OCI 1.1 referrers carry a `subject` descriptor."""
        about = self._descriptor(subject) if with_subject else {"digest": subject.digest}
        built = manifests.referrer(about, tag, artifact_type, with_subject=with_subject)
        digest = self._push(subject.repository, tag, built)
        return PushedImage(subject.repository, tag or "", digest, OCI_MANIFEST, subject.created)

    def push_referrers_index(self, subject: PushedImage, referrers: Sequence[PushedImage]) -> PushedImage:
        """The OCI 1.1 fallback for registries without the referrers API: an index of `subject`'s
        referrers under the tag `sha256-<hex>`."""
        tag = subject.digest.replace(":", "-")
        digest = self._push(
            subject.repository, tag, manifests.referrers_index([self._descriptor(r) for r in referrers])
        )
        return PushedImage(subject.repository, tag, digest, OCI_INDEX, subject.created)

    def tag(self, image: PushedImage, tag: str) -> PushedImage:
        """Put an already pushed manifest under one more tag (one request when this pusher pushed it)."""
        body = self._bodies.get(image.digest) or self.get_manifest(
            image.repository, image.digest, image.media_type
        )
        self.put_manifest(image.repository, tag, body, image.media_type)
        return PushedImage(
            image.repository,
            tag,
            image.digest,
            image.media_type,
            image.created,
            image.labels,
            image.platforms,
        )

    def upload_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        blob_url = f"{self.base_url}/v2/{repository}/blobs/{digest}"
        if self._client.head(blob_url).status_code == 200:
            return digest
        start = self._client.post(f"{self.base_url}/v2/{repository}/blobs/uploads/")
        self._check(start, 202, f"start a blob upload to {repository}")
        # The Location carries the upload's state in its query (`?_state=…`): append, never replace it.
        location = urljoin(self.base_url + "/", start.headers["Location"])
        separator = "&" if "?" in location else "?"
        done = self._client.put(
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._check(done, 201, f"upload blob {digest[:19]} to {repository}")
        return digest

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        response = self._client.put(
            f"{self.base_url}/v2/{repository}/manifests/{reference}",
            content=body,
            headers={"Content-Type": media_type},
        )
        self._check(response, 201, f"push manifest {repository}:{reference}")
        digest = sha256_digest(body)
        if response.headers.get("Docker-Content-Digest", digest) != digest:
            raise SandboxError(f"the registry stored {repository}:{reference} under another digest")
        self._sizes[digest] = len(body)
        self._bodies[digest] = body
        return digest

    def get_manifest(self, repository: str, reference: str, media_type: str) -> bytes:
        response = self._client.get(
            f"{self.base_url}/v2/{repository}/manifests/{reference}", headers={"Accept": media_type}
        )
        self._check(response, 200, f"read manifest {repository}@{reference}")
        return response.content

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of a repository (following pagination), for tests that read back what they pushed."""
        tags: list[str] = []
        url: str | None = f"{self.base_url}/v2/{repository}/tags/list?n=1000"
        while url:
            response = self._client.get(url)
            self._check(response, 200, f"list tags of {repository}")
            tags.extend(response.json().get("tags") or [])
            link = response.links.get("next", {}).get("url")
            url = urljoin(self.base_url + "/", link) if link else None
        return tags

    def _push(self, repository: str, tag: str | None, built: Built) -> str:
        """Upload a manifest's blobs, then the manifest under `tag` (by its digest when None)."""
        for blob in built.blobs:
            self.upload_blob(repository, blob)
        return self.put_manifest(repository, tag or built.digest, built.body, built.media_type)

    def _descriptor(self, image: PushedImage) -> dict[str, object]:
        """How a manifest names one this pusher pushed."""
        return {"mediaType": image.media_type, "digest": image.digest, "size": self._sizes[image.digest]}

    @staticmethod
    def _check(response: httpx.Response, expected: int, what: str) -> None:
        if response.status_code != expected:
            raise SandboxError(f"could not {what}: HTTP {response.status_code} {response.text[:200]}")

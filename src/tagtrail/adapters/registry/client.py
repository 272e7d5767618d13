"""An async client for the OCI distribution API that reads at the physical minimum of requests.

Listing a repository's tags costs one request per page; the digest of a tag costs one HEAD; an image's
config is read only when asked for. Every read is checked (status, content type, size, JSON shape, digest
against the bytes received) and any doubt becomes a RegistryError: a partial or malformed answer is never
passed on as if it were complete (DESIGN invariant 4).

The reads are here; how a request is sent (limits, pace, one timeout over a request and its authentication,
retries, error translation) is `registry.transport`, and how a tag list's pages are checked is
`registry.taglist`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from tagtrail.adapters.registry.credentials import CredentialResolver
from tagtrail.adapters.registry.media import (
    ACCEPT,
    INDEX_TYPES,
    MANIFEST_TYPES,
    ImageConfig,
    MalformedError,
    Manifest,
    Platform,
    base_of,
    parse_config,
    parse_manifest,
)
from tagtrail.adapters.registry.reference import ImageRef
from tagtrail.adapters.registry.stats import RequestStats
from tagtrail.adapters.registry.taglist import TagWalk
from tagtrail.adapters.registry.transport import ERROR_CAP, Endpoint, Transport, status_error
from tagtrail.config.model import RegistryConfig
from tagtrail.domain.scheme import CheckedTags
from tagtrail.errors import RegistryError, RegistryNotFound

MANIFEST_CAP = 4 * 1024 * 1024  # the OCI distribution spec lets registries refuse larger manifests
CONFIG_CAP = 8 * 1024 * 1024
TAGS_PAGE_CAP = 32 * 1024 * 1024
DEFAULT_PLATFORM = Platform("linux", "amd64")


@dataclass(frozen=True)
class ManifestHead:
    """What a HEAD of a manifest tells: its digest, media type and size."""

    digest: str
    media_type: str
    size: int | None


@dataclass(frozen=True)
class Inspection:
    """An image as `registry inspect` shows it."""

    ref: ImageRef
    digest: str
    media_type: str
    platforms: list[Platform]
    config: ImageConfig


@dataclass(frozen=True)
class Revision:
    """An image's digest and the commit it says it was built from (None: it does not say), and where it
    says so: the manifest's annotation or the config's label. And the base it records (name with tag,
    digest), read where the revision was: an image that annotates its revision annotates its base too
    (`tagtrail build`, buildah and the generated workflow write both), so no config is read for it."""

    digest: str
    commit: str | None
    said_by: Literal["annotation", "label"]
    base: tuple[str, str] | None = None


class RegistryClient:
    """Reads any OCI registry. Use `async with RegistryClient(...) as client:`; one client is meant to live
    long (the controller keeps one), so tokens and connections are reused."""

    def __init__(
        self,
        registries: Mapping[str, RegistryConfig] | None = None,
        *,
        credentials: CredentialResolver | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        settings = dict(registries or {})
        self.stats = RequestStats()
        self._transport = Transport(
            settings,
            credentials or CredentialResolver({host: cfg.credentials for host, cfg in settings.items()}),
            self.stats,
            retries=retries,
            backoff=backoff,
            max_retry_after=max_retry_after,
            transport=transport,
        )

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    # Reads --------------------------------------------------------------------------------------------

    async def ping(self, registry: str) -> None:
        """Check that the registry speaks the distribution API and that we may use it."""
        ep = self._transport.endpoint(registry)
        response, _ = await self._transport.call(ep, "GET", f"{ep.base}/v2/", None, scope="", cap=ERROR_CAP)
        if response.status_code != 200:
            raise status_error(ep, None, response, b"", "answer the API check (GET /v2/)")

    async def list_tags(self, ref: ImageRef) -> CheckedTags:
        """Every tag of a repository, following pagination to the end, or a RegistryError: never a part."""
        ep = self._transport.endpoint(ref.registry)
        walk = TagWalk(ep, ref)
        while (url := walk.next_url()) is not None:
            response, body = await self._transport.call(
                ep, "GET", url, ref.repository, scope=_pull(ref), cap=TAGS_PAGE_CAP
            )
            if response.status_code != 200:
                raise status_error(ep, ref.repository, response, body, "list tags")
            walk.take(response, body)
        return walk.tags

    async def head(self, ref: ImageRef) -> ManifestHead:
        """The digest of a tag (or a check that a digest exists): one HEAD request."""
        ep = self._transport.endpoint(ref.registry)
        url = f"{ep.base}/v2/{ref.repository}/manifests/{ref.reference}"
        response, body = await self._transport.call(
            ep, "HEAD", url, ref.repository, scope=_pull(ref), cap=ERROR_CAP, headers={"Accept": ACCEPT}
        )
        if response.status_code != 200:
            raise status_error(ep, ref.repository, response, body, f"find {ref.reference}")
        digest = response.headers.get("Docker-Content-Digest", "")
        if not digest:  # some registries leave it out of HEAD answers: read the manifest and hash it
            manifest = await self.manifest(ref)
            return ManifestHead(manifest.digest, manifest.media_type, len(manifest.raw))
        _check_digest_form(ep, ref, digest)
        if ref.digest and digest != ref.digest:
            raise RegistryError(ep.host, ref.repository, f"asked for {ref.digest} and was told {digest}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        length = response.headers.get("Content-Length")
        return ManifestHead(digest, media_type, int(length) if length and length.isdigit() else None)

    async def manifest(self, ref: ImageRef) -> Manifest:
        """The manifest or index of a tag or digest, its bytes checked against its digest."""
        ep = self._transport.endpoint(ref.registry)
        url = f"{ep.base}/v2/{ref.repository}/manifests/{ref.reference}"
        response, body = await self._transport.call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=MANIFEST_CAP, headers={"Accept": ACCEPT}
        )
        if response.status_code != 200:
            raise status_error(ep, ref.repository, response, body, f"read the manifest of {ref.reference}")
        computed = "sha256:" + hashlib.sha256(body).hexdigest()
        header = response.headers.get("Docker-Content-Digest")
        for claimed, what in (
            (header, "the registry's Docker-Content-Digest"),
            (ref.digest, "the digest asked for"),
        ):
            if claimed and claimed.startswith("sha256:") and claimed != computed:
                raise RegistryError(
                    ep.host,
                    ref.repository,
                    f"the manifest of {ref.reference} does not match {what} (got {computed[:19]}…, expected {claimed[:19]}…)",
                )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in INDEX_TYPES | MANIFEST_TYPES | {"application/json", ""}:
            raise RegistryError(
                ep.host,
                ref.repository,
                f"the manifest of {ref.reference} came as '{media_type}', not a manifest type",
            )
        try:
            return parse_manifest(body, media_type, computed)
        except MalformedError as exc:
            raise RegistryError(
                ep.host, ref.repository, f"the manifest of {ref.reference} is malformed: {exc}"
            ) from None

    async def image_config(self, ref: ImageRef, platform: Platform | None = None) -> ImageConfig:
        """An image's config (created, labels, platform). For an index, the config of `platform`
        (default linux/amd64, else the first platform the index offers)."""
        return (await self.inspect(ref, platform)).config

    async def inspect(self, ref: ImageRef, platform: Platform | None = None) -> Inspection:
        top = await self.manifest(ref)
        image = await self._platform_manifest(ref, top, platform)
        return await self._inspection(ref, top, image)

    async def revision(self, ref: ImageRef) -> Revision:
        """The digest of an image and the commit it says it was built from, in as few reads as it allows:
        the manifest alone when it carries the OCI revision annotation, else also its config's label (for
        an index, the default platform's manifest first: the annotation may be there); the base it records
        from the same reads."""
        top = await self.manifest(ref)
        image = top if top.revision is not None else await self._platform_manifest(ref, top, None)
        base = base_of(image.annotations) or base_of(top.annotations)
        if image.revision is not None:
            return Revision(top.digest, image.revision, "annotation", base)
        config = (await self._inspection(ref, top, image)).config
        return Revision(top.digest, config.revision, "label", base or base_of(config.labels))

    async def _platform_manifest(self, ref: ImageRef, top: Manifest, platform: Platform | None) -> Manifest:
        """The image manifest itself: `top`, or for an index the child for `platform`."""
        if not top.is_index:
            return top
        ep = self._transport.endpoint(ref.registry)
        child = _choose(top, platform)
        if child is None:
            wanted = platform or DEFAULT_PLATFORM
            offered = ", ".join(str(p) for p in top.platforms) or "none"
            raise RegistryNotFound(
                ep.host,
                ref.repository,
                f"{ref.reference} has no image for {wanted} (it offers {offered})",
            )
        image = await self.manifest(ref.with_digest(child))
        if image.is_index:
            raise RegistryError(
                ep.host, ref.repository, "an index points at another index; tagtrail reads one level"
            )
        return image

    async def _inspection(self, ref: ImageRef, top: Manifest, image: Manifest) -> Inspection:
        ep = self._transport.endpoint(ref.registry)
        if image.config is None:
            raise RegistryError(ep.host, ref.repository, f"the manifest of {ref.reference} has no config")
        config = await self._blob_config(ep, ref, image.config.digest)
        return Inspection(ref, top.digest, top.media_type, top.platforms, config)

    async def delete(self, ref: ImageRef) -> None:
        """Delete a manifest by digest. Every tag that points at that digest goes with it."""
        ep = self._transport.endpoint(ref.registry)
        if not ref.digest:
            raise RegistryError(ep.host, ref.repository, "deleting needs a digest (repo@sha256:…), not a tag")
        url = f"{ep.base}/v2/{ref.repository}/manifests/{ref.digest}"
        scope = f"repository:{ref.repository}:delete"
        response, body = await self._transport.call(
            ep, "DELETE", url, ref.repository, scope=scope, cap=ERROR_CAP
        )
        if response.status_code == 405:
            raise RegistryError(
                ep.host,
                ref.repository,
                "deleting is disabled on this registry (distribution: storage.delete.enabled)",
            )
        if response.status_code not in (200, 202):
            raise status_error(ep, ref.repository, response, body, f"delete {ref.digest}")

    # Plumbing -----------------------------------------------------------------------------------------

    async def _blob_config(self, ep: Endpoint, ref: ImageRef, digest: str) -> ImageConfig:
        url = f"{ep.base}/v2/{ref.repository}/blobs/{digest}"
        response, body = await self._transport.call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=CONFIG_CAP, follow=True
        )
        if response.status_code != 200:
            raise status_error(ep, ref.repository, response, body, f"read the config blob {digest[:19]}…")
        computed = "sha256:" + hashlib.sha256(body).hexdigest()
        if computed != digest:
            raise RegistryError(
                ep.host,
                ref.repository,
                f"the config blob does not match its digest (got {computed[:19]}…, expected {digest[:19]}…)",
            )
        try:
            return parse_config(body, digest)
        except MalformedError as exc:
            raise RegistryError(ep.host, ref.repository, f"the image config is malformed: {exc}") from None

    # Reads for provenance (signatures): kept together, at the end, self-contained.

    async def blob(self, ref: ImageRef, digest: str, cap: int = CONFIG_CAP) -> bytes:
        """A blob's bytes (a signature's payload), checked against its digest."""
        ep = self._transport.endpoint(ref.registry)
        _check_digest_form(ep, ref, digest)
        url = f"{ep.base}/v2/{ref.repository}/blobs/{digest}"
        response, body = await self._transport.call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=cap, follow=True
        )
        if response.status_code != 200:
            raise status_error(ep, ref.repository, response, body, f"read the blob {digest[:19]}…")
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(ep.host, ref.repository, f"the blob {digest[:19]}… does not match its digest")
        return body

    async def referrers(self, ref: ImageRef) -> list[dict[str, Any]] | None:
        """The OCI 1.1 referrers of a digest (descriptors of the manifests whose `subject` it is); None
        where the registry does not offer the API (404 as the spec says, or 400/405/406/501 as some do)."""
        ep = self._transport.endpoint(ref.registry)
        if not ref.digest:
            raise RegistryError(ep.host, ref.repository, "referrers are asked for by digest, not by tag")
        url = f"{ep.base}/v2/{ref.repository}/referrers/{ref.digest}"
        headers = {"Accept": "application/vnd.oci.image.index.v1+json"}
        response, body = await self._transport.call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=MANIFEST_CAP, headers=headers
        )
        if response.status_code in (400, 404, 405, 406, 501):  # registries without the API answer these
            return None
        if response.status_code != 200:
            raise status_error(ep, ref.repository, response, body, f"list the referrers of {ref.digest}")
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        entries = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise RegistryError(ep.host, ref.repository, f"the referrers of {ref.digest} are not an index")
        return entries


def _pull(ref: ImageRef) -> str:
    return f"repository:{ref.repository}:pull"


def _choose(index: Manifest, platform: Platform | None) -> str | None:
    wanted = platform or DEFAULT_PLATFORM
    for descriptor in index.manifests:
        if (
            descriptor.platform is not None
            and (descriptor.platform.os, descriptor.platform.architecture) == (wanted.os, wanted.architecture)
            and (wanted.variant is None or descriptor.platform.variant == wanted.variant)
        ):
            return descriptor.digest
    if platform is None and index.platforms:
        first = index.platforms[0]
        return next(d.digest for d in index.manifests if d.platform == first)
    return None


def _check_digest_form(ep: Endpoint, ref: ImageRef, digest: str) -> None:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise RegistryError(
            ep.host, ref.repository, f"answered a digest that is not sha256:<64 hex>: {digest[:80]!r}"
        )

"""ghcr.io: images deleted through the GitHub Packages REST API, read through the registry API.

ghcr.io does not take a DELETE of a manifest; GitHub deletes *package versions*: each version of a
container package is one manifest (its `name` is the digest) listing its tags in
`metadata.container.tags`. Multi-arch children and signatures are untagged versions. The endpoints
(GitHub's published REST description, API version 2022-11-28):

    GET    /user/packages/container/{package}/versions?per_page=100&page=N   (or /orgs/{org}/…)
    DELETE /user/packages/container/{package}/versions/{version_id}           204; 404 when gone

Pages follow the `Link: <…>; rel="next"` header. The token needs `read:packages` and `delete:packages`;
GitHub answers 403 to a token without them. `{package}` is the image path below the owner, URL-encoded
(`ghcr.io/o/r/web` → owner `o`, package `r%2Fweb`). Tested against a local stand-in that answers as that
description and GitHub's examples say; never against GitHub itself (it cannot be reached from here).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from tagtrail import __version__
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config.retention import GitHubPackagesConfig
from tagtrail.errors import RegistryAuthError, RegistryError
from tagtrail.features.retention.graph import Inventory, Node
from tagtrail.features.retention.stores import read_nodes

API_VERSION = "2022-11-28"
MAX_PAGES = 1000


@dataclass(frozen=True)
class Version:
    """One package version: a manifest, its tags, when it was made."""

    id: int
    digest: str
    tags: tuple[str, ...]
    created: datetime | None


class GitHubStore:
    """A ghcr.io repository: reads tags and digests from package versions in one walk, manifests from
    the registry API, and deletes versions."""

    kind = "github-packages"
    listed_digests = True  # the version list names each tag's digest

    def __init__(
        self,
        settings: GitHubPackagesConfig,
        client: RegistryClient,
        ref: ImageRef,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.ref = ref
        owner, _, package = ref.repository.partition("/")
        if not package:
            raise RegistryError(ref.registry, ref.repository, "a GitHub package image is ghcr.io/OWNER/NAME")
        self.owner = settings.owner or owner
        self.package = quote(package, safe="")
        self._transport = transport
        self._versions: list[Version] = []

    @property
    def _base(self) -> str:
        where = "user" if self.settings.owner_kind == "user" else f"orgs/{quote(self.owner, safe='')}"
        return f"{self.settings.api_url.rstrip('/')}/{where}/packages/container/{self.package}/versions"

    def _http(self) -> httpx.AsyncClient:
        token = os.environ.get(self.settings.token_env, "")
        if not token:
            raise RegistryAuthError(
                self.ref.registry,
                self.ref.repository,
                f"deleting from GitHub Packages needs a token with delete:packages in ${self.settings.token_env}",
            )
        return httpx.AsyncClient(
            transport=self._transport,
            timeout=30.0,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"tagtrail/{__version__}",
            },
        )

    async def versions(self) -> list[Version]:
        """Every version, all pages, or a RegistryError: never a part."""
        found: list[Version] = []
        url: str | None = f"{self._base}?per_page=100"
        seen: set[str] = set()
        async with self._http() as http:
            while url is not None:
                if url in seen or len(seen) >= MAX_PAGES:
                    raise self._error("the version list's next link loops or never ends")
                seen.add(url)
                response = await self._send(http, "GET", url)
                found.extend(self._page(response))
                url = self._next(response)
        self._versions = found
        return found

    async def tags(self) -> list[str]:
        return [t for v in await self.versions() for t in v.tags]

    async def digests(self, tags: Iterable[str]) -> dict[str, str]:
        wanted = set(tags)
        return {t: v.digest for v in self._versions for t in v.tags if t in wanted}

    async def nodes(self, digests: Iterable[str]) -> dict[str, Node]:
        return await read_nodes(self.client, self.ref, digests)

    async def inventory(self, tags: Sequence[str]) -> Inventory:
        wanted = set(tags)
        found = {t: v.digest for v in self._versions for t in v.tags if t in wanted}
        untagged = tuple(v.digest for v in self._versions if not v.tags)
        nodes = await self.nodes({v.digest for v in self._versions})
        created = {v.digest: v.created for v in self._versions if v.created is not None}
        return Inventory(found, nodes, untagged, created)

    async def created(self, tag: str) -> datetime | None:
        return next((v.created for v in self._versions if tag in v.tags), None)

    async def delete(self, digest: str) -> None:
        version = next((v for v in self._versions if v.digest == digest), None)
        if version is None:
            return  # not a version (any more): nothing to delete
        async with self._http() as http:
            await self._send(http, "DELETE", f"{self._base}/{version.id}", gone_ok=True)
        self._versions = [v for v in self._versions if v.id != version.id]

    def reclaim_hint(self) -> str:
        return "GitHub frees the space of deleted package versions itself (an owner can restore them for 30 days)"

    # Plumbing -------------------------------------------------------------------------------------------

    async def _send(
        self, http: httpx.AsyncClient, method: str, url: str, *, gone_ok: bool = False
    ) -> httpx.Response:
        try:
            response = await http.request(method, url)
        except httpx.TransportError as exc:
            raise self._error(
                f"{method} {urlsplit(url).path} failed ({type(exc).__name__})", transient=True
            ) from None
        if response.status_code in (401, 403):
            needs = "delete:packages" if method == "DELETE" else "read:packages"
            raise RegistryAuthError(
                self.ref.registry,
                self.ref.repository,
                f"GitHub refused {method} {urlsplit(url).path} (HTTP {response.status_code}: {_message(response)});"
                f" the token in ${self.settings.token_env} needs {needs}",
            )
        if response.status_code == 404 and gone_ok:
            return response
        if response.status_code == 404:
            raise self._error(f"GitHub has no package '{self.ref.repository}' for this owner (HTTP 404)")
        if response.status_code >= 300:
            raise self._error(
                f"GitHub answered {method} {urlsplit(url).path} with HTTP {response.status_code} ({_message(response)})",
                transient=response.status_code >= 500,
            )
        return response

    def _page(self, response: httpx.Response) -> list[Version]:
        try:
            data: Any = response.json()
        except ValueError:
            raise self._error("GitHub answered a version list that is not JSON") from None
        if not isinstance(data, list):
            raise self._error("GitHub answered a version list that is not a list")
        return [self._version(item) for item in data]

    def _version(self, item: Any) -> Version:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            raise self._error("GitHub answered a package version without an id")
        name = item.get("name")
        if not isinstance(name, str) or not name.startswith("sha256:") or len(name) != 71:
            raise self._error(
                f"GitHub answered a package version whose name is not a digest: {str(name)[:80]!r}"
            )
        container = (item.get("metadata") or {}).get("container") or {}
        tags = container.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise self._error("GitHub answered a package version whose tags are not a list of strings")
        created = item.get("created_at")
        when = datetime.fromisoformat(created.replace("Z", "+00:00")) if isinstance(created, str) else None
        return Version(item["id"], name, tuple(tags), when)

    def _next(self, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        target = urljoin(str(response.url), link)
        if urlsplit(target).netloc != urlsplit(self.settings.api_url).netloc:
            raise self._error("the version list's next link points at another host")
        return target

    def _error(self, message: str, *, transient: bool = False) -> RegistryError:
        return RegistryError(self.ref.registry, self.ref.repository, message, transient=transient)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return "no message"
    text = data.get("message") if isinstance(data, dict) else None
    return str(text)[:200] if text else "no message"

"""An async client for the OCI distribution API that reads at the physical minimum of requests.

Listing a repository's tags costs one request per page; the digest of a tag costs one HEAD; an image's
config is read only when asked for. Every read is checked (status, content type, size, JSON shape, digest
against the bytes received) and any doubt becomes a RegistryError: a partial or malformed answer is never
passed on as if it were complete (DESIGN invariant 4).

Per registry there is a concurrency limit, an optional requests-per-second pace, one timeout that covers a
request and its authentication, and retries with exponential backoff and jitter on connection errors and
5xx; a 429 waits for its Retry-After.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import json
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tagtrail import __version__
from tagtrail.config.model import RegistryConfig
from tagtrail.errors import RegistryAuthError, RegistryError, RegistryNotFound, TagtrailError
from tagtrail.registry.auth import Authenticator
from tagtrail.registry.credentials import CredentialResolver
from tagtrail.registry.media import (
    ACCEPT,
    INDEX_TYPES,
    MANIFEST_TYPES,
    ImageConfig,
    MalformedError,
    Manifest,
    Platform,
    parse_config,
    parse_manifest,
)
from tagtrail.registry.reference import ImageRef
from tagtrail.registry.stats import NO_ANSWER, RequestStats
from tagtrail.scheme import CheckedTags, first_invalid_tag

MANIFEST_CAP = 4 * 1024 * 1024  # the OCI distribution spec lets registries refuse larger manifests
CONFIG_CAP = 8 * 1024 * 1024
TAGS_PAGE_CAP = 32 * 1024 * 1024
ERROR_CAP = 64 * 1024  # an error answer, a HEAD, a token: small
MAX_PAGES = 10_000
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


class _TooLarge(TagtrailError):
    """A response over the size cap (translated into a RegistryError where it is caught)."""


class _Pace:
    """At most `rps` request starts per second, spread evenly."""

    def __init__(self, rps: float) -> None:
        self._interval = 1.0 / rps
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)


@dataclass
class _Endpoint:
    host: str
    base: str
    settings: RegistryConfig
    http: httpx.AsyncClient
    gate: asyncio.Semaphore
    pace: _Pace | None
    auth: Authenticator


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
        self._settings = dict(registries or {})
        self._credentials = credentials or CredentialResolver(
            {host: cfg.credentials for host, cfg in self._settings.items()}
        )
        self._retries = retries
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._transport = transport
        self._endpoints: dict[str, _Endpoint] = {}
        self.stats = RequestStats()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for endpoint in self._endpoints.values():
            await endpoint.http.aclose()
        self._endpoints.clear()

    # Reads --------------------------------------------------------------------------------------------

    async def ping(self, registry: str) -> None:
        """Check that the registry speaks the distribution API and that we may use it."""
        ep = self._endpoint(registry)
        response, _ = await self._call(ep, "GET", f"{ep.base}/v2/", None, scope="", cap=ERROR_CAP)
        if response.status_code != 200:
            raise self._status_error(ep, None, response, b"", "answer the API check (GET /v2/)")

    async def list_tags(self, ref: ImageRef) -> CheckedTags:
        """Every tag of a repository, following pagination to the end, or a RegistryError: never a part."""
        ep = self._endpoint(ref.registry)
        url: str | None = f"{ep.base}/v2/{ref.repository}/tags/list?n={ep.settings.page_size}"
        tags: list[str] = []
        seen_tags: set[str] = set()
        seen_urls: set[str] = set()
        previous: list[str] | None = None
        while url is not None:
            if url in seen_urls:
                raise RegistryError(
                    ep.host,
                    ref.repository,
                    f"the tag list's next link leads back to a page already read ({_path(url)}); refusing to walk in a loop",
                )
            if len(seen_urls) >= MAX_PAGES:
                raise RegistryError(ep.host, ref.repository, f"the tag list goes on past {MAX_PAGES} pages")
            seen_urls.add(url)
            response, body = await self._call(
                ep, "GET", url, ref.repository, scope=_pull(ref), cap=TAGS_PAGE_CAP
            )
            if response.status_code != 200:
                raise self._status_error(ep, ref.repository, response, body, "list tags")
            page = self._tags_page(ep, ref, response, body)
            if previous is not None:  # from the second page on: the walk must make progress
                if page == previous and page:
                    raise RegistryError(
                        ep.host, ref.repository, "the registry sent the same page of tags twice"
                    )
                seen_tags = seen_tags or set(tags)
                repeated = seen_tags.intersection(page)
                if repeated:
                    raise RegistryError(
                        ep.host,
                        ref.repository,
                        f"the tag list changed while it was read ('{sorted(repeated)[0]}' came on two pages); try again",
                    )
                seen_tags.update(page)
            url = self._next_page(ep, ref, response, page)
            tags.extend(page)
            previous = page
        return CheckedTags(tags)  # every page was checked by first_invalid_tag

    async def head(self, ref: ImageRef) -> ManifestHead:
        """The digest of a tag (or a check that a digest exists): one HEAD request."""
        ep = self._endpoint(ref.registry)
        url = f"{ep.base}/v2/{ref.repository}/manifests/{ref.reference}"
        response, body = await self._call(
            ep, "HEAD", url, ref.repository, scope=_pull(ref), cap=ERROR_CAP, headers={"Accept": ACCEPT}
        )
        if response.status_code != 200:
            raise self._status_error(ep, ref.repository, response, body, f"find {ref.reference}")
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
        ep = self._endpoint(ref.registry)
        url = f"{ep.base}/v2/{ref.repository}/manifests/{ref.reference}"
        response, body = await self._call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=MANIFEST_CAP, headers={"Accept": ACCEPT}
        )
        if response.status_code != 200:
            raise self._status_error(
                ep, ref.repository, response, body, f"read the manifest of {ref.reference}"
            )
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
        ep = self._endpoint(ref.registry)
        top = await self.manifest(ref)
        image = top
        if top.is_index:
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
        if image.config is None:
            raise RegistryError(ep.host, ref.repository, f"the manifest of {ref.reference} has no config")
        config = await self._blob_config(ep, ref, image.config.digest)
        return Inspection(ref, top.digest, top.media_type, top.platforms, config)

    async def delete(self, ref: ImageRef) -> None:
        """Delete a manifest by digest. Every tag that points at that digest goes with it."""
        ep = self._endpoint(ref.registry)
        if not ref.digest:
            raise RegistryError(ep.host, ref.repository, "deleting needs a digest (repo@sha256:…), not a tag")
        url = f"{ep.base}/v2/{ref.repository}/manifests/{ref.digest}"
        scope = f"repository:{ref.repository}:delete"
        response, body = await self._call(ep, "DELETE", url, ref.repository, scope=scope, cap=ERROR_CAP)
        if response.status_code == 405:
            raise RegistryError(
                ep.host,
                ref.repository,
                "deleting is disabled on this registry (distribution: storage.delete.enabled)",
            )
        if response.status_code not in (200, 202):
            raise self._status_error(ep, ref.repository, response, body, f"delete {ref.digest}")

    # Plumbing -----------------------------------------------------------------------------------------

    def _endpoint(self, registry: str) -> _Endpoint:
        ref_host = ImageRef(registry, "x").api_host
        if registry in self._endpoints:
            return self._endpoints[registry]
        settings = self._settings.get(registry) or RegistryConfig()
        verify: ssl.SSLContext = _default_tls()
        if settings.ca_file:
            try:
                verify = ssl.create_default_context(cafile=settings.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise RegistryError(registry, None, f"cannot use ca_file {settings.ca_file}: {exc}") from None
        http = httpx.AsyncClient(
            transport=self._transport,
            verify=verify,
            timeout=settings.timeout,
            limits=httpx.Limits(
                max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
            ),
            headers={"User-Agent": f"tagtrail/{__version__}"},
        )
        endpoint = _Endpoint(
            registry,
            f"{'http' if settings.insecure else 'https'}://{ref_host}",
            settings,
            http,
            asyncio.Semaphore(settings.concurrency),
            _Pace(settings.rps) if settings.rps else None,
            Authenticator(
                registry, self._credentials.resolve(registry), lambda r: self._send_auth(registry, r)
            ),
        )
        self._endpoints[registry] = endpoint
        return endpoint

    async def _send_auth(self, registry: str, request: httpx.Request) -> httpx.Response:
        ep = self._endpoints[registry]
        request = ep.http.build_request(
            request.method, request.url, headers=request.headers, content=request.read()
        )
        response, body = await self._send(ep, request, cap=ERROR_CAP, follow=False)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    async def _call(
        self,
        ep: _Endpoint,
        method: str,
        url: str,
        repository: str | None,
        *,
        scope: str,
        cap: int,
        headers: dict[str, str] | None = None,
        follow: bool = False,
    ) -> tuple[httpx.Response, bytes]:
        """One logical request: authenticated, retried on what retrying can fix, bounded in time and size."""
        problem = ""
        for attempt in range(1, self._retries + 2):
            delay = self._backoff_delay(attempt)
            try:
                async with asyncio.timeout(ep.settings.timeout):
                    response, body = await self._authorized(
                        ep, method, url, repository, scope, headers or {}, cap, follow
                    )
            except TimeoutError:
                problem = f"no answer within {ep.settings.timeout:g} s"
            except httpx.TransportError as exc:
                tls = _tls_problem(ep.host, exc)
                if tls is not None:  # retrying cannot fix a handshake
                    raise RegistryError(ep.host, repository, tls) from None
                problem = _describe_transport(exc)
            except _TooLarge:
                raise RegistryError(
                    ep.host,
                    repository,
                    f"answered more than {cap // 1024} KiB for {_path(url)}; refusing to read it",
                ) from None
            else:
                if response.status_code == 429:
                    wait = _retry_after(response)
                    if wait is not None and wait > self._max_retry_after:
                        raise RegistryError(
                            ep.host,
                            repository,
                            f"is rate limiting us for {wait:g} s (HTTP 429)",
                            transient=True,
                        )
                    problem, delay = "rate limited (HTTP 429)", wait if wait is not None else delay
                elif response.status_code in (500, 502, 503, 504) or response.status_code >= 520:
                    problem = f"HTTP {response.status_code}"
                else:
                    return response, body
            if attempt > self._retries:
                break
            await asyncio.sleep(delay)
        raise RegistryError(
            ep.host,
            repository,
            f"{method} {_path(url)} failed {self._retries + 1} times ({problem})",
            transient=True,
        )

    async def _authorized(
        self,
        ep: _Endpoint,
        method: str,
        url: str,
        repository: str | None,
        scope: str,
        headers: dict[str, str],
        cap: int,
        follow: bool,
    ) -> tuple[httpx.Response, bytes]:
        async with ep.gate:
            auth = await ep.auth.headers(scope)
            response, body = await self._send(
                ep, ep.http.build_request(method, url, headers={**headers, **auth}), cap=cap, follow=follow
            )
        if response.status_code == 401:
            auth = await ep.auth.answer(response.headers.get("WWW-Authenticate", ""), scope, repository)
            async with ep.gate:
                response, body = await self._send(
                    ep,
                    ep.http.build_request(method, url, headers={**headers, **auth}),
                    cap=cap,
                    follow=follow,
                )
            if response.status_code == 401:
                raise ep.auth.refused(repository)
        if response.status_code == 403:
            raise RegistryAuthError(ep.host, repository, f"denied access ({_error_text(body) or 'HTTP 403'})")
        return response, body

    async def _send(
        self, ep: _Endpoint, request: httpx.Request, *, cap: int, follow: bool
    ) -> tuple[httpx.Response, bytes]:
        if ep.pace is not None:
            await ep.pace.wait()
        try:
            response = await ep.http.send(request, stream=True, follow_redirects=follow)
        except httpx.TransportError:
            self.stats.count(ep.host, NO_ANSWER)
            raise
        self.stats.count(ep.host, response.status_code)
        try:
            length = response.headers.get("Content-Length")
            if request.method != "HEAD" and length and length.isdigit() and int(length) > cap:
                raise _TooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise _TooLarge
                chunks.append(chunk)
        finally:
            await response.aclose()
        return response, b"".join(chunks)

    def _backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many clients over time."""
        return random.uniform(0, min(30.0, self._backoff * 2 ** (attempt - 1)))  # noqa: S311 (not for security)

    def _tags_page(self, ep: _Endpoint, ref: ImageRef, response: httpx.Response, body: bytes) -> list[str]:
        kind = response.headers.get("Content-Type", "").split(";")[0].strip()
        if kind != "application/json":
            raise RegistryError(
                ep.host, ref.repository, f"answered the tag list as '{kind or 'no content type'}', not JSON"
            )
        try:
            data: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(
                ep.host, ref.repository, "answered a tag list that is not valid JSON (truncated or malformed)"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("tags", []), list | type(None)):
            raise RegistryError(ep.host, ref.repository, "answered a tag list without a 'tags' array")
        name = data.get("name")
        if isinstance(name, str) and name and name != ref.repository:
            raise RegistryError(
                ep.host, ref.repository, f"answered the tag list of another repository ('{name}')"
            )
        page = data.get("tags") or []
        bad = first_invalid_tag(page)
        if bad is not None:
            raise RegistryError(
                ep.host, ref.repository, f"listed something that is not a tag: {str(bad)[:80]!r}"
            )
        return list(page)

    def _next_page(
        self, ep: _Endpoint, ref: ImageRef, response: httpx.Response, page: list[str]
    ) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        if not page:
            raise RegistryError(
                ep.host, ref.repository, "sent an empty page of tags with a link to another page"
            )
        target = urljoin(f"{ep.base}/", link)
        if urlsplit(target).netloc != urlsplit(ep.base).netloc:
            raise RegistryError(
                ep.host,
                ref.repository,
                f"the tag list's next link points at another host ({urlsplit(target).netloc})",
            )
        last = parse_qs(urlsplit(target).query).get("last", [None])[0]
        if last is not None and last != page[-1]:
            raise RegistryError(
                ep.host,
                ref.repository,
                f"the tag list changed shape while it was read (the next page starts after '{last}', but this page ended with '{page[-1]}'); try again",
            )
        return target

    async def _blob_config(self, ep: _Endpoint, ref: ImageRef, digest: str) -> ImageConfig:
        url = f"{ep.base}/v2/{ref.repository}/blobs/{digest}"
        response, body = await self._call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=CONFIG_CAP, follow=True
        )
        if response.status_code != 200:
            raise self._status_error(
                ep, ref.repository, response, body, f"read the config blob {digest[:19]}…"
            )
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

    def _status_error(
        self, ep: _Endpoint, repository: str | None, response: httpx.Response, body: bytes, what: str
    ) -> RegistryError:
        detail = _error_text(body) or f"HTTP {response.status_code}"
        if response.status_code == 404:
            return RegistryNotFound(ep.host, repository, f"cannot {what}: not found ({detail})")
        return RegistryError(ep.host, repository, f"cannot {what}: HTTP {response.status_code} ({detail})")

    # Reads for provenance (signatures): kept together, at the end, self-contained.

    async def blob(self, ref: ImageRef, digest: str, cap: int = CONFIG_CAP) -> bytes:
        """A blob's bytes (a signature's payload), checked against its digest."""
        ep = self._endpoint(ref.registry)
        _check_digest_form(ep, ref, digest)
        url = f"{ep.base}/v2/{ref.repository}/blobs/{digest}"
        response, body = await self._call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=cap, follow=True
        )
        if response.status_code != 200:
            raise self._status_error(ep, ref.repository, response, body, f"read the blob {digest[:19]}…")
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(ep.host, ref.repository, f"the blob {digest[:19]}… does not match its digest")
        return body

    async def referrers(self, ref: ImageRef) -> list[dict[str, Any]] | None:
        """The OCI 1.1 referrers of a digest (descriptors of the manifests whose `subject` it is); None
        where the registry does not offer the API (404 as the spec says, or 400/405/406/501 as some do)."""
        ep = self._endpoint(ref.registry)
        if not ref.digest:
            raise RegistryError(ep.host, ref.repository, "referrers are asked for by digest, not by tag")
        url = f"{ep.base}/v2/{ref.repository}/referrers/{ref.digest}"
        headers = {"Accept": "application/vnd.oci.image.index.v1+json"}
        response, body = await self._call(
            ep, "GET", url, ref.repository, scope=_pull(ref), cap=MANIFEST_CAP, headers=headers
        )
        if response.status_code in (400, 404, 405, 406, 501):  # registries without the API answer these
            return None
        if response.status_code != 200:
            raise self._status_error(
                ep, ref.repository, response, body, f"list the referrers of {ref.digest}"
            )
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        entries = data.get("manifests") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise RegistryError(ep.host, ref.repository, f"the referrers of {ref.digest} are not an index")
        return entries


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The system's trust store, loaded once per process (loading it costs more than a request)."""
    return ssl.create_default_context()


def _pull(ref: ImageRef) -> str:
    return f"repository:{ref.repository}:pull"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


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


def _check_digest_form(ep: _Endpoint, ref: ImageRef, digest: str) -> None:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise RegistryError(
            ep.host, ref.repository, f"answered a digest that is not sha256:<64 hex>: {digest[:80]!r}"
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(body: bytes) -> str:
    """The registry's own error codes and messages, short; never the whole body."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = [
        f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors[:3] if isinstance(e, dict)
    ]
    return "; ".join(parts)[:200]


def _tls_problem(host: str, exc: httpx.TransportError) -> str | None:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (
            f'its TLS certificate is not trusted ({cause.verify_message}); set registries."{host}".ca_file'
            " in tagtrail.yaml to the CA bundle that signed it"
        )
    return (
        f"the TLS handshake failed ({cause.reason or cause}); if this registry speaks plain HTTP, set"
        f' registries."{host}".insecure: true in tagtrail.yaml (or pass --insecure)'
    )


def _describe_transport(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection broke mid-answer (truncated body)"
    return type(exc).__name__

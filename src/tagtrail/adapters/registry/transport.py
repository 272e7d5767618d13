"""One logical request to a registry: authenticated, paced, retried, bounded in time and size.

Per registry there is one endpoint: its connections (at most `concurrency`, each its own httpx client), an
optional requests-per-second pace and an authenticator. A request is retried with exponential backoff and jitter on connection errors
and 5xx; a 429 waits for its Retry-After. Every httpx error, TLS failure and refused status is translated
here into a RegistryError, so nothing raw reaches the client's reads (STYLE: translate at the boundary).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import random
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from tagtrail import __version__
from tagtrail.adapters.registry.auth import Authenticator
from tagtrail.adapters.registry.credentials import CredentialResolver
from tagtrail.adapters.registry.reference import ImageRef
from tagtrail.adapters.registry.stats import NO_ANSWER, RequestStats
from tagtrail.config.model import RegistryConfig
from tagtrail.errors import RegistryAuthError, RegistryError, RegistryNotFound, TagtrailError

ERROR_CAP = 64 * 1024  # an error answer, a HEAD, a token: small
Sender = httpx.AsyncBaseTransport


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


class _Line:
    """One connection: its httpx client, and the transport under it that skips the client's layers (cookies,
    auth and redirect flows: a quarter of a steady poll's CPU), None where only the client routes (a proxy)."""

    def __init__(self, client: httpx.AsyncClient, direct: Sender | None) -> None:
        self.client = client
        self._direct = direct

    async def send(self, request: httpx.Request, *, follow: bool) -> httpx.Response:
        """The answer, its body not read yet (close it). A redirect is followed only through the client."""
        if self._direct is None or follow:
            return await self.client.send(request, stream=True, follow_redirects=follow)
        response = await self._direct.handle_async_request(request)
        response.request = request
        return response


class _Connections:
    """At most `limit` requests in flight to one registry, each on an httpx client of its own that keeps one
    connection alive (made when first needed). httpcore's pool works in the square of its connections on
    every request it sends or finishes (each connection checked for being idle once per connection): at 8
    connections, half the CPU of a steady poll. The limit here already bounds what is in flight, so each
    pool holds one connection and has nothing to decide."""

    def __init__(self, limit: int, make: Callable[[], _Line]) -> None:
        self._make = make
        self._made: list[_Line] = []
        self._free: asyncio.Queue[_Line | None] = asyncio.Queue()
        for _ in range(limit):
            self._free.put_nowait(None)

    @contextlib.asynccontextmanager
    async def line(self) -> AsyncIterator[_Line]:
        """A connection to send one request on, held until the block ends (waits for one to be free)."""
        held = await self._free.get()
        if held is None:
            held = self._make()
            self._made.append(held)
        try:
            yield held
        finally:
            self._free.put_nowait(held)

    async def aclose(self) -> None:
        for line in self._made:
            await line.client.aclose()


@dataclass
class Endpoint:
    """One registry as requests see it: where it is, its settings, and what every request to it shares."""

    host: str
    base: str
    settings: RegistryConfig
    http: _Line  # builds requests; sends those to the token service (another host)
    connections: _Connections
    pace: _Pace | None
    auth: Authenticator


class Transport:
    """Sends requests to any number of registries, one endpoint each, made on first use and kept (tokens
    and connections are reused); counts every request in `stats`."""

    def __init__(
        self,
        settings: Mapping[str, RegistryConfig],
        credentials: CredentialResolver,
        stats: RequestStats,
        *,
        retries: int,
        backoff: float,
        max_retry_after: float,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._stats = stats
        self._retries = retries
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._transport = transport
        self._endpoints: dict[str, Endpoint] = {}

    async def aclose(self) -> None:
        for endpoint in self._endpoints.values():
            await endpoint.connections.aclose()
            await endpoint.http.client.aclose()
        self._endpoints.clear()

    def endpoint(self, registry: str) -> Endpoint:
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

        def client(connections: int, transport: Sender | None) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=transport,
                verify=verify,
                timeout=settings.timeout,
                limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
                headers={"User-Agent": f"tagtrail/{__version__}"},
            )

        endpoint = Endpoint(
            registry,
            f"{'http' if settings.insecure else 'https'}://{ref_host}",
            settings,
            _Line(client(settings.concurrency, self._transport), None),
            _Connections(settings.concurrency, lambda: self._line(verify, client)),
            _Pace(settings.rps) if settings.rps else None,
            Authenticator(
                registry, self._credentials.resolve(registry), lambda r: self._send_auth(registry, r)
            ),
        )
        self._endpoints[registry] = endpoint
        return endpoint

    def _line(
        self, verify: ssl.SSLContext, client: Callable[[int, Sender | None], httpx.AsyncClient]
    ) -> _Line:
        """One connection: sent on directly unless the environment names a proxy (only the client routes)."""
        if self._transport is None and urllib.request.getproxies():
            return _Line(client(1, None), None)
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        direct = self._transport or httpx.AsyncHTTPTransport(verify=verify, limits=one)
        return _Line(client(1, direct), direct)

    async def _send_auth(self, registry: str, request: httpx.Request) -> httpx.Response:
        ep = self._endpoints[registry]
        request = ep.http.client.build_request(
            request.method, request.url, headers=request.headers, content=request.read()
        )
        response, body = await self._send(ep, ep.http, request, cap=ERROR_CAP, follow=False)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

    async def call(
        self,
        ep: Endpoint,
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

        def build(auth: dict[str, str]) -> httpx.Request:
            return ep.http.client.build_request(method, _url(url), headers={**(headers or {}), **auth})

        problem = ""
        for attempt in range(1, self._retries + 2):
            delay = self._backoff_delay(attempt)
            try:
                response, body = await self._authorized(ep, build, repository, scope, cap, follow)
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
                    f"answered more than {cap // 1024} KiB for {url_path(url)}; refusing to read it",
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
            f"{method} {url_path(url)} failed {self._retries + 1} times ({problem})",
            transient=True,
        )

    async def _authorized(
        self,
        ep: Endpoint,
        build: Callable[[dict[str, str]], httpx.Request],
        repository: str | None,
        scope: str,
        cap: int,
        follow: bool,
    ) -> tuple[httpx.Response, bytes]:
        """Send with the credentials at hand; on a 401, answer the challenge and send once more. The timeout
        runs from when the request may go (its turn under the concurrency limit), never while it waits for
        that turn: 50,000 reads queued behind 8 connections are slow, not unanswered."""
        limit = ep.settings.timeout
        async with ep.connections.line() as http, asyncio.timeout(limit):
            auth = await ep.auth.headers(scope)
            response, body = await self._send(ep, http, build(auth), cap=cap, follow=follow)
        if response.status_code == 401:
            async with asyncio.timeout(limit):
                auth = await ep.auth.answer(response.headers.get("WWW-Authenticate", ""), scope, repository)
            async with ep.connections.line() as http, asyncio.timeout(limit):
                response, body = await self._send(ep, http, build(auth), cap=cap, follow=follow)
            if response.status_code == 401:
                raise ep.auth.refused(repository)
        if response.status_code == 403:
            raise RegistryAuthError(ep.host, repository, f"denied access ({_error_text(body) or 'HTTP 403'})")
        return response, body

    async def _send(
        self, ep: Endpoint, http: _Line, request: httpx.Request, *, cap: int, follow: bool
    ) -> tuple[httpx.Response, bytes]:
        if ep.pace is not None:
            await ep.pace.wait()
        try:
            response = await http.send(request, follow=follow)
        except httpx.TransportError:
            self._stats.count(ep.host, NO_ANSWER)
            raise
        self._stats.count(ep.host, response.status_code)
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


def status_error(
    ep: Endpoint, repository: str | None, response: httpx.Response, body: bytes, what: str
) -> RegistryError:
    """The error for an answer that is not the one a read expects, with the registry's own words."""
    detail = _error_text(body) or f"HTTP {response.status_code}"
    if response.status_code == 404:
        return RegistryNotFound(ep.host, repository, f"cannot {what}: not found ({detail})")
    return RegistryError(ep.host, repository, f"cannot {what}: HTTP {response.status_code} ({detail})")


def url_path(url: str) -> str:
    """The path and query of a URL: what messages show (the host is already in every RegistryError)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


_url = functools.lru_cache(maxsize=4096)(httpx.URL)  # parsed once: a steady poll asks the same URLs


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """The system's trust store, loaded once per process (loading it costs more than a request)."""
    return ssl.create_default_context()


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

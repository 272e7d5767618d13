"""Registry authentication: basic, and the bearer-token challenge flow ghcr.io and Docker Hub use.

A registry answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client fetches a
token for that scope from the realm (with its credentials, or anonymously), caches it until it expires,
and retries once. Once a registry is known to want bearer tokens, a token for a new scope is fetched before
the first request, so each repository costs one token request and no 401.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tagtrail.adapters.registry.credentials import Credentials
from tagtrail.errors import RegistryAuthError, RegistryError

_SCHEME = re.compile(r"(?:^|,)\s*(basic|bearer)(?:\s+|$)", re.IGNORECASE)
_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_DEFAULT_TOKEN_LIFETIME = 60.0  # seconds, the token spec's default when `expires_in` is absent

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Challenge:
    """One parsed `WWW-Authenticate` challenge."""

    scheme: str  # "basic" or "bearer"
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str) -> Challenge | None:
    """The Bearer challenge in a header if there is one, else the Basic one, else None."""
    found: dict[str, Challenge] = {}
    starts = list(_SCHEME.finditer(header))
    for match, following in zip(starts, [*starts[1:], None], strict=False):
        segment = header[match.end() : following.start() if following else len(header)]
        params = {key.lower(): quoted or bare for key, quoted, bare in _PARAM.findall(segment)}
        found.setdefault(match[1].lower(), Challenge(match[1].lower(), params))
    return found.get("bearer") or found.get("basic")


def basic_header(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password.reveal()}".encode()
    return "Basic " + base64.b64encode(pair).decode()


@dataclass
class _Token:
    value: str
    expires: float  # monotonic


class Authenticator:
    """The authentication state of one registry: its scheme once known, and bearer tokens per scope."""

    def __init__(self, registry: str, credentials: Credentials | None, send: Send) -> None:
        self.registry = registry
        self.credentials = credentials
        self._send = send
        self._scheme: str | None = None
        self._bearer: Challenge | None = None
        self._tokens: dict[str, _Token] = {}

    async def headers(self, scope: str) -> dict[str, str]:
        """Authorization for a request in `scope`, known before sending it (empty when none is known)."""
        if self._scheme == "basic" and self.credentials is not None:
            return {"Authorization": basic_header(self.credentials)}
        if self._scheme == "bearer" and self._bearer is not None:
            token = self._tokens.get(scope)
            if token is None or token.expires <= time.monotonic():
                token = await self._fetch_token(self._bearer, scope)
            return {"Authorization": f"Bearer {token.value}"}
        return {}

    async def answer(self, header: str, scope: str, repository: str | None) -> dict[str, str]:
        """After a 401: authorization that answers its challenge. The registry's own scope wins, so a
        token for the wrong scope is replaced by one for the scope it asked for."""
        challenge = parse_challenge(header)
        if challenge is None:
            raise RegistryAuthError(
                self.registry,
                repository,
                f"answered 401 with a challenge tagtrail cannot read: {header[:120]!r}",
            )
        self._scheme = challenge.scheme
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise RegistryAuthError(
                    self.registry, repository, f"needs credentials and none are configured; {_HOW_TO}"
                )
            return {"Authorization": basic_header(self.credentials)}
        if not challenge.realm.startswith(("https://", "http://")):
            raise RegistryAuthError(
                self.registry, repository, "sent a bearer challenge without a usable realm"
            )
        self._bearer = challenge
        wanted = challenge.params.get("scope") or scope
        self._tokens.pop(wanted, None)
        token = await self._fetch_token(challenge, wanted)
        self._tokens[scope] = token
        return {"Authorization": f"Bearer {token.value}"}

    def refused(self, repository: str | None) -> RegistryAuthError:
        """The error for a second 401: credentials were sent and refused, or none were there to send."""
        if self.credentials is None:
            return RegistryAuthError(
                self.registry, repository, f"needs credentials and none are configured; {_HOW_TO}"
            )
        return RegistryAuthError(
            self.registry,
            repository,
            f"refused the credentials of user '{self.credentials.username}' from {self.credentials.source}",
        )

    async def _fetch_token(self, challenge: Challenge, scope: str) -> _Token:
        params = {"service": challenge.params.get("service", "")}
        if scope:
            params["scope"] = scope
        creds = self.credentials
        if creds is not None and creds.identity_token:
            form = {
                **params,
                "grant_type": "refresh_token",
                "client_id": "tagtrail",
                "refresh_token": creds.identity_token.reveal(),
            }
            request = httpx.Request("POST", challenge.realm, data=form)
        else:
            headers = {}
            if creds is not None:
                params["account"] = creds.username
                headers["Authorization"] = basic_header(creds)
            request = httpx.Request("GET", challenge.realm, params=params, headers=headers)
        response = await self._send(request)
        if response.status_code in (401, 403):
            raise (
                self.refused(None)
                if creds
                else RegistryAuthError(
                    self.registry, None, f"its token service refused anonymous access to {scope}; {_HOW_TO}"
                )
            )
        if response.status_code != 200:
            raise RegistryError(
                self.registry,
                None,
                f"its token service answered HTTP {response.status_code}",
                transient=response.status_code >= 500,
            )
        return _parse_token(self.registry, response)


_HOW_TO = "configure them with `docker login`, a credentials file, or registries.<host>.credentials in tagtrail.yaml"


def _parse_token(registry: str, response: httpx.Response) -> _Token:
    try:
        data: Any = response.json()
    except ValueError:
        raise RegistryError(registry, None, "its token service answered something that is not JSON") from None
    value = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise RegistryError(registry, None, "its token service answered without a token")
    lifetime = data.get("expires_in")
    lifetime = (
        float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else _DEFAULT_TOKEN_LIFETIME
    )
    issued = data.get("issued_at")
    if isinstance(issued, str):
        try:
            age = max(0.0, time.time() - datetime.fromisoformat(issued.replace("Z", "+00:00")).timestamp())
        except ValueError:
            age = 0.0
        lifetime = max(0.0, lifetime - min(age, lifetime))
    margin = min(lifetime * 0.1, 30.0)  # renew a little early: the clock of the token service is not ours
    return _Token(value, time.monotonic() + lifetime - margin)

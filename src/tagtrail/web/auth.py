"""Dashboard sign-in: a token from the environment, exchanged for a session cookie; CSRF tokens for actions.

Sessions live in memory (a restart signs everyone out, which is the safe direction). The cookie is HttpOnly
and SameSite=Strict, Secure when `serve.secure_cookies` is set (behind TLS). Every action form carries the
session's CSRF token, and a POST whose Origin names another site is refused before that.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tagtrail.web.hooks import RateLimiter, secret_ok

COOKIE = "tagtrail_session"
SESSION_SECONDS = 12 * 3600
MIN_TOKEN_LENGTH = 32
_NAME = re.compile(r"[\w .@+-]{1,40}")
# Failed sign-ins: per client, a burst of 5 then one every 10 s; for everyone together, 20 then one a
# second. Guessing a 32-character token at that pace is hopeless; a person who mistyped waits seconds.
CLIENT_RATE, CLIENT_BURST = 0.1, 5.0
GLOBAL_RATE, GLOBAL_BURST = 1.0, 20.0
FLASHES_KEPT = 256


def weak_token(token: str | None) -> str | None:
    """Why a dashboard token is too weak to start with, or None."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        return (
            f"is {len(token)} characters; use at least {MIN_TOKEN_LENGTH} (for example the output of"
            " `openssl rand -hex 32`)"
        )
    return None


@dataclass
class Login:
    id: str
    actor: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, token: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.token = token or None
        self._clock = clock
        self._sessions: dict[str, Login] = {}

    @property
    def enabled(self) -> bool:
        """Actions need a token; without one configured nobody can sign in."""
        return self.token is not None

    def sign_in(self, token: str, name: str) -> Login | None:
        if self.token is None or not secret_ok(self.token, token):
            return None
        name = name.strip() or "dashboard"
        if not _NAME.fullmatch(name):
            name = "dashboard"
        login = Login(
            secrets.token_urlsafe(32), name, secrets.token_urlsafe(32), self._clock() + SESSION_SECONDS
        )
        self._sessions[login.id] = login
        return login

    def get(self, session_id: str | None) -> Login | None:
        if not session_id:
            return None
        login = self._sessions.get(session_id)
        if login is None:
            return None
        if login.expires < self._clock():
            del self._sessions[session_id]
            return None
        return login

    def sign_out(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)


class SignInGuard:
    """Failed sign-ins slow down, per client and for everyone: a token is never guessed at line speed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients = RateLimiter(CLIENT_RATE, CLIENT_BURST, clock)
        self.everyone = RateLimiter(GLOBAL_RATE, GLOBAL_BURST, clock)

    def blocked(self, client: str) -> bool:
        return self.clients.blocked(client) or self.everyone.blocked("*")

    def failed(self, client: str) -> None:
        self.clients.charge(client)
        self.everyone.charge("*")


class Flashes:
    """Messages the server made for the next page, by a random id: the page shows only what is found here,
    so a link with `?error=…` cannot put words on the dashboard."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, str] = OrderedDict()

    def keep(self, message: str) -> str:
        key = secrets.token_urlsafe(12)
        self._kept[key] = message
        while len(self._kept) > FLASHES_KEPT:
            self._kept.popitem(last=False)
        return key

    def take(self, key: str | None) -> str | None:
        return self._kept.pop(key, None) if key else None


def csrf_ok(login: Login, given: str | None) -> bool:
    return given is not None and secrets.compare_digest(login.csrf.encode(), given.encode())


def same_origin(origin: str | None, host: str | None) -> bool:
    """A browser's POST names the page it came from in Origin; refuse another site's. No Origin: not a browser
    form post from another site (those always send one), so the CSRF token alone decides."""
    if origin is None:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc == host

"""Dashboard sign-in: a token from the environment, exchanged for a session cookie; CSRF tokens for actions.

Sessions live in memory (a restart signs everyone out, which is the safe direction). The cookie is HttpOnly
and SameSite=Strict, Secure when `serve.secure_cookies` is set (behind TLS). Every action form carries the
session's CSRF token, and a POST whose Origin names another site is refused before that.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tagtrail.web.hooks import secret_ok

COOKIE = "tagtrail_session"
SESSION_SECONDS = 12 * 3600
_NAME = re.compile(r"[\w .@+-]{1,40}")


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

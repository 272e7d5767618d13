"""Dashboard sign-in: a token from the environment, exchanged for a session cookie; CSRF tokens for actions.

Sessions are signed tokens (an HMAC keyed by the dashboard token), so they survive a restart and work on
every replica; changing the token signs everyone out, and signing out signs that name out on every replica.
The cookie is HttpOnly and SameSite=Strict, Secure when `serve.secure_cookies` is set (behind TLS). Every action form carries the
session's CSRF token, and a POST whose Origin names another site is refused before that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tagtrail.serve.controller.signouts import SignedOut, Store
from tagtrail.serve.web.hooks import RateLimiter, secret_ok

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
    """Signed, expiring session tokens: `payload.signature`, the payload saying who, since and until when,
    the signature an HMAC keyed by the dashboard token. Nothing is kept per session, so a sign-in survives a
    restart and works on every replica (no sticky sessions); changing the dashboard token signs everyone
    out. Signing out signs that name out everywhere: the moment is recorded where every replica reads it
    (`store`, tagtrail.serve.controller.signouts) and every session of that name issued before it is refused."""

    def __init__(
        self, token: str | None, clock: Callable[[], float] = time.time, store: Store | None = None
    ) -> None:
        self.token = token or None
        self._clock = clock
        key = (token or "").encode()
        self._key = hmac.new(key, b"tagtrail dashboard session v1", hashlib.sha256).digest()
        self.signed_out = SignedOut(store, SESSION_SECONDS * 1000)

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
        now = self._clock()
        expires = int(now + SESSION_SECONDS)
        data = {"n": name, "e": expires, "i": int(now * 1000), "r": secrets.token_urlsafe(16)}
        payload = _b64(json.dumps(data).encode())
        session_id = f"{payload}.{self._sign(payload)}"
        return Login(session_id, name, self._sign("csrf:" + payload), expires)

    def get(self, session_id: str | None) -> Login | None:
        if not session_id or self.token is None:
            return None
        payload, dot, signature = session_id.partition(".")
        if not dot or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            name, expires = str(data["n"]), float(data["e"])
            issued = int(data.get("i", (expires - SESSION_SECONDS) * 1000))  # a session from before "i"
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if expires < self._clock() or self.signed_out.refuses(name, issued, self._millis()):
            return None
        return Login(session_id, name, self._sign("csrf:" + payload), expires)

    def sign_out(self, session_id: str | None) -> bool:
        """Signs the session's name out on this replica at once; `publish` tells the others."""
        login = self.get(session_id)
        if login is None:
            return False
        self.signed_out.add(login.actor, self._millis())
        return True

    async def publish(self) -> None:
        """This replica's sign-outs merged into the record every replica reads."""
        await self.signed_out.publish(self._millis())

    def _millis(self) -> int:
        return int(self._clock() * 1000)

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class SignInGuard:
    """Failed sign-ins slow down, per client and for everyone: no client guesses at line speed, and
    nobody else's failures lock out a person who has the token. A client over its own budget waits whatever
    it sends; the budget of everyone together only holds back wrong tokens (a right one is let through, so a
    flood from elsewhere denies nobody), and every refusal says how long to wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients = RateLimiter(CLIENT_RATE, CLIENT_BURST, clock)
        self.everyone = RateLimiter(GLOBAL_RATE, GLOBAL_BURST, clock)

    def before(self, client: str) -> int:
        """Seconds this client must wait before its token is even looked at (0: look)."""
        return _seconds(self.clients.wait(client))

    def refused(self, client: str) -> int:
        """A wrong token, charged to the client and to everyone: seconds to wait when everyone's budget was
        spent already (0: say the token was wrong; the client's own budget answers its next try)."""
        crowded = self.everyone.wait("*")
        self.clients.charge(client)
        self.everyone.charge("*")
        return _seconds(crowded)


def _seconds(wait: float) -> int:
    return math.ceil(wait) if wait > 0 else 0


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

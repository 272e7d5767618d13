"""A token issuer for distribution's `auth: token`: the registry itself checks the JWTs it signs.

This stands in for ghcr.io's or Docker Hub's token service, which cannot be reached from here; the registry
that validates the tokens is the real one. It grants every action asked for to known users, and nothing to
anonymous callers; `wrong_scope_next` makes the next token name another repository, so a client must
re-read the registry's challenge to recover.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt

from bench.httpserver import serve, stop
from bench.pki import KeyPair, certificate_authority, libtrust_key_id

ISSUER = "tagtrail-test-issuer"
SERVICE = "tagtrail-test-registry"


@dataclass
class TokenIssuer:
    users: dict[str, str]
    lifetime: int = 300
    identity_tokens: dict[str, str] = field(default_factory=dict)  # refresh token → user
    wrong_scope_next: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)
    signer: KeyPair = field(default_factory=certificate_authority)
    _server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def registry_config(self, folder: Path) -> str:
        """The `auth:` section for a distribution config that trusts this issuer."""
        bundle = folder / "token-signer.crt"
        bundle.parent.mkdir(parents=True, exist_ok=True)
        bundle.write_bytes(self.signer.cert_pem())
        return (
            f"auth:\n  token:\n    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {bundle}\n"
        )

    def start(self) -> TokenIssuer:
        self._server = serve(_handler(self), "token-issuer")
        return self

    def stop(self) -> None:
        stop(self._server)
        self._server = None

    def issue(self, user: str | None, scopes: list[str]) -> dict[str, object]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if user is None or kind != "repository":
                continue
            if self.wrong_scope_next > 0:
                self.wrong_scope_next -= 1
                name = "someone/else"
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.lifetime,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        headers = {"kid": libtrust_key_id(self.signer.key.public_key())}
        token = jwt.encode(claims, self.signer.key, algorithm="ES256", headers=headers)
        issued = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return {"token": token, "access_token": token, "expires_in": self.lifetime, "issued_at": issued}


def _handler(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _user(self) -> str | bool | None:
            header = self.headers.get("Authorization", "")
            if not header:
                return None
            if not header.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            expected = issuer.users.get(user)
            return user if expected is not None and hmac.compare_digest(expected, password) else False

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            user = self._user()
            issuer.requests.append(
                {
                    "method": "GET",
                    "scope": ",".join(query.get("scope", [])),
                    "account": ",".join(query.get("account", [])),
                }
            )
            if user is False:
                self._reply(401, {"details": "incorrect username or password"})
                return
            self._reply(200, issuer.issue(user or None, query.get("scope", [])))  # type: ignore[arg-type]

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            issuer.requests.append(
                {"method": "POST", "scope": ",".join(form.get("scope", [])), "account": ""}
            )
            user = issuer.identity_tokens.get(form.get("refresh_token", [""])[0])
            if form.get("grant_type") != ["refresh_token"] or user is None:
                self._reply(401, {"error": "invalid_grant"})
                return
            self._reply(200, issuer.issue(user, form.get("scope", [])))

    return Handler

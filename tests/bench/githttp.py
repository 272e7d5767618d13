"""A git smart-HTTP server for tests: `git http-backend` (the real server side of git) behind a small
threaded HTTP front that checks basic auth, as a forge or an nginx + fcgiwrap setup would.

Only the HTTP front is test code; everything git-specific is done by git itself.
"""

from __future__ import annotations

import base64
import hmac
import os
import subprocess
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from bench.httpserver import serve, stop


@dataclass
class GitHTTPServer:
    """Serves every repository below `root` at http://127.0.0.1:PORT/<name>.git, all behind basic auth."""

    root: Path
    users: dict[str, str]
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, name: str, *, user: str | None = None, password: str | None = None) -> str:
        creds = f"{user}:{password}@" if user is not None else ""
        return f"http://{creds}127.0.0.1:{self.port}/{name}"

    def start(self) -> GitHTTPServer:
        self._server = serve(_handler(self), "git-http")
        return self

    def stop(self) -> None:
        stop(self._server)
        self._server = None


def _handler(server: GitHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _authorised(self) -> str | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None
            expected = server.users.get(user)
            if expected is None or not hmac.compare_digest(expected, password):
                return None
            return user

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            user = self._authorised()
            if user is None:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.end_headers()
                server.requests.append((self.command, self.path, 401))
                return
            parts = urlsplit(self.path)
            body = self._body() if self.command == "POST" else b""
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": parts.path,
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": user,
                "REMOTE_ADDR": self.client_address[0],
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            }
            result = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
            )
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            server.requests.append((self.command, self.path, status))

    return Handler

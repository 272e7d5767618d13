"""A stand-in for GitHub's Packages REST API over a real registry (test code).

api.github.com cannot be reached from here. This server answers the container-package endpoints as GitHub's
published REST description (API version 2022-11-28) and its documented examples say, over the storage of a
real docker-registry, so that the registry API (what skopeo pulls) and the package versions agree:

    GET    /user/packages/container/{package}/versions          (and /orgs/{org}/packages/container/…)
           ?per_page (default 30, at most 100) &page (from 1); newest first; `Link` with rel="next"/"last"
    DELETE /user/packages/container/{package}/versions/{id}     204; 404 for a version that is not there

A version is one manifest of the repository `{owner}/{package}` (its `name` is the digest; its tags are in
`metadata.container.tags`; children and referrers pushed by digest are untagged versions). Deleting a
version deletes that manifest in the registry, as GitHub does. Tokens map to scopes: none or an unknown
token is 401 ("Requires authentication"); a token without read:packages (GET) or delete:packages (DELETE)
is 403. `page_cap` makes pages smaller than asked, to exercise pagination with few versions.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from bench.httpserver import serve, stop

_ROUTE = re.compile(
    r"^/(?:user|orgs/(?P<org>[^/]+))/packages/container/(?P<package>[^/]+)/versions(?:/(?P<id>\d+))?$"
)
DOCS = "https://docs.github.com/rest/packages/packages"


@dataclass
class GitHubPackages:
    registry_url: str
    storage: Path  # the registry's storage root
    owner: str  # the authenticated user's login (for /user/…)
    tokens: dict[str, set[str]] = field(default_factory=dict)
    page_cap: int = 100
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    _ids: dict[tuple[str, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GitHubPackages:
        self._server = serve(self._handler(), "github-packages")
        return self

    def stop(self) -> None:
        stop(self._server)

    def versions(self, repository: str) -> list[dict[str, object]] | None:
        """The package's versions, newest first, as GitHub lists them; None when there is no package."""
        base = self.storage / "docker/registry/v2/repositories" / repository / "_manifests"
        if not base.is_dir():
            return None
        tags: dict[str, list[str]] = {}
        for link in sorted((base / "tags").glob("*/current/link")):
            tags.setdefault(link.read_text().strip(), []).append(link.parent.parent.name)
        found = []
        for link in (base / "revisions/sha256").glob("*/link"):
            digest = "sha256:" + link.parent.name
            when = datetime.fromtimestamp(link.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            with self._lock:
                version = self._ids.setdefault((repository, digest), len(self._ids) + 1)
            found.append((when, version, digest))
        found.sort(reverse=True)
        return [
            {
                "id": version,
                "name": digest,
                "url": f"{self.url}/user/packages/container/{repository}/versions/{version}",
                "package_html_url": f"https://github.com/users/{self.owner}/packages/container/package/{repository}",
                "created_at": when,
                "updated_at": when,
                "html_url": f"https://github.com/users/{self.owner}/packages/container/{repository}/{version}",
                "metadata": {
                    "package_type": "container",
                    "container": {"tags": sorted(tags.get(digest, []))},
                },
            }
            for when, version, digest in found
        ]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_DELETE(self) -> None:
                self._serve()

            def _answer(
                self, status: int, body: object = None, headers: dict[str, str] | None = None
            ) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                api.requests.append((self.command, self.path, status))  # before the client can see it
                self.send_response(status)
                for name, value in {
                    "Content-Type": "application/json; charset=utf-8",
                    **(headers or {}),
                }.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                route = _ROUTE.match(parts.path)
                if route is None:
                    self._answer(404, {"message": "Not Found", "documentation_url": DOCS})
                    return
                token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                scopes = api.tokens.get(token)
                if scopes is None:
                    self._answer(401, {"message": "Requires authentication", "documentation_url": DOCS})
                    return
                needed = "delete:packages" if self.command == "DELETE" else "read:packages"
                if needed not in scopes:
                    self._answer(
                        403,
                        {"message": f"Token does not have the {needed} scope", "documentation_url": DOCS},
                        {"X-OAuth-Scopes": ", ".join(sorted(scopes)), "X-Accepted-OAuth-Scopes": needed},
                    )
                    return
                repository = f"{route['org'] or api.owner}/{unquote(route['package'])}"
                versions = api.versions(repository)
                if versions is None:
                    self._answer(404, {"message": "Package not found.", "documentation_url": DOCS})
                    return
                if route["id"] is None:
                    self._list(parts.path, parse_qs(parts.query), versions)
                else:
                    self._delete(repository, int(route["id"]), versions)

            def _list(
                self, path: str, query: dict[str, list[str]], versions: list[dict[str, object]]
            ) -> None:
                per_page = min(int(query.get("per_page", ["30"])[0]), 100, api.page_cap)
                page = int(query.get("page", ["1"])[0])
                last = max(1, -(-len(versions) // per_page))
                links = []
                if page < last:
                    links.append(f'<{api.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
                    links.append(f'<{api.url}{path}?per_page={per_page}&page={last}>; rel="last"')
                chunk = versions[(page - 1) * per_page : page * per_page]
                self._answer(200, chunk, {"Link": ", ".join(links)} if links else None)

            def _delete(self, repository: str, version: int, versions: list[dict[str, object]]) -> None:
                found = next((v for v in versions if v["id"] == version), None)
                if found is None:
                    self._answer(404, {"message": "Not Found", "documentation_url": DOCS})
                    return
                gone = httpx.delete(
                    f"{api.registry_url}/v2/{repository}/manifests/{found['name']}", timeout=30
                )
                self._answer(204 if gone.status_code == 202 else 500)

        return Handler

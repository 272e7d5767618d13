"""The stand-in's front door: the GHES prefix, rate limits, the token, then REST or GraphQL; every answer
checked against GitHub's description and recorded as an exchange."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from bench import githubpulls_graphql, githubpulls_rest
from bench.githubpulls_json import Exchange, Reply, error

if TYPE_CHECKING:
    from bench.githubpulls import GitHubPulls

LIMIT = 5000
RATE_DOCS = "overview/rate-limits-for-the-rest-api"
NO_AGENT = (
    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header "
    "(https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). "
    "Check https://developer.github.com for other possible causes."
)


def answer(gh: GitHubPulls, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
    parts = urlsplit(target)
    path = parts.path.removeprefix("/api/v3")
    query = dict(parse_qsl(parts.query))
    graphql = path in ("/graphql", "/api/graphql")
    with gh.lock:
        gh.used += 1
        gh.sync()
        reply = _limited(gh)
        if reply is None:
            who = _token(gh, headers)
            if not headers.get("user-agent"):
                reply = Reply(403, error(NO_AGENT, "overview/resources-in-the-rest-api#user-agent-required"))
            elif who is None:
                reply = Reply(401, error("Bad credentials", "overview/troubleshooting", status="401"))
            elif graphql and method == "POST":
                reply = githubpulls_graphql.answer(gh, who == "write", body)
            else:
                reply = githubpulls_rest.answer(gh, method, path, query, who == "write", body)
        reply.headers |= _rate_headers(gh, graphql)
        payload = b"" if reply.payload is None else json.dumps(reply.payload).encode()
        if reply.described and not graphql:
            reply.violations += gh.description.response(
                method, path, query, payload, reply.status, reply.headers
            )
        gh.violations.extend(reply.violations)
        gh.exchanges.append(_exchange(method, path, query, body, reply))
    return reply


def _token(gh: GitHubPulls, headers: dict[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token"):
        return None
    return {gh.token: "write", gh.weak_token: "read"}.get(value.strip())


def _limited(gh: GitHubPulls) -> Reply | None:
    limit = gh.limit
    if limit is None:
        return None
    now = int(time.time())
    if limit.after > 0:
        limit.after -= 1
        return None
    if now >= limit.reset_at:
        gh.limit = None
        return None
    if limit.status == 429:
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        reply = Reply(429, error(message, RATE_DOCS + "#about-secondary-rate-limits"))
        reply.headers["retry-after"] = str(limit.reset_at - now)
        return reply
    message = "API rate limit exceeded for user ID 41898282."
    return Reply(403, error(message, RATE_DOCS), {"x-ratelimit-remaining": "0"})


def _rate_headers(gh: GitHubPulls, graphql: bool) -> dict[str, str]:
    limit = gh.limit
    reset = limit.reset_at if limit else int(time.time()) + 3600
    exhausted = limit is not None and limit.after <= 0
    remaining = 0 if exhausted else max(LIMIT - gh.used, 1)
    return {
        "x-ratelimit-limit": str(LIMIT),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": str(reset),
        "x-ratelimit-used": str(LIMIT - remaining),
        "x-ratelimit-resource": "graphql" if graphql else "core",
    }


def _exchange(method: str, path: str, query: dict[str, str], body: bytes, reply: Reply) -> Exchange:
    try:
        request = json.loads(body) if body else None
    except ValueError:
        request = body.decode(errors="replace")
    return Exchange(method, path, query, request, reply.status, reply.payload, list(reply.violations))


def handler(gh: GitHubPulls) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                reply = answer(gh, self.command, self.path, headers, body)
            except Exception as failure:  # a bug of the stand-in must fail the test, not reset a connection
                gh.violations.append(f"{self.command} {self.path}: the stand-in failed: {failure!r}")
                reply = Reply(500, error("Server Error", "", status="500"))
            payload = b"" if reply.payload is None else json.dumps(reply.payload).encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if payload:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: `.exchanges` is the log."""

    return Handler

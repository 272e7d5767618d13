"""A fault-injecting HTTP proxy between a client and the real registry (test code).

Requests are forwarded to the registry unchanged unless a fault matches: then the proxy answers with a
5xx, a 429 with Retry-After, a stall, a truncated or malformed body, a wrong content type, or a tag list
paginated the way ghcr.io and Docker Hub paginate (distribution 2.8, the registry here, ignores `n`),
optionally with a loop, a repeated page or a list that changes mid-walk. It records every request and the
most requests it had in flight at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bench.httpserver import serve, stop

Kind = Literal[
    "status", "retry_after", "stall", "truncate", "malformed", "content_type", "paginate", "huge", "digest"
]


@dataclass
class Fault:
    """Apply `kind` to requests whose path matches `path` (a regex), `times` times (-1: always)."""

    kind: Kind
    path: str = ".*"
    times: int = -1
    status: int = 503
    seconds: float = 0.0
    page: int = 2
    mode: Literal["honest", "loop", "repeat", "shift"] = "honest"
    value: str = ""  # "digest": the Docker-Content-Digest to claim instead of the registry's
    skip: int = 0  # matching requests passed through untouched before the fault applies
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.times != 0 and re.search(self.path, path) is not None


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    max_in_flight: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def start(self) -> FaultProxy:
        self._server = serve(_handler(self), "fault-proxy")
        return self

    def stop(self) -> None:
        stop(self._server)
        self._server = None

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    if fault.times > 0:
                        fault.times -= 1
                    fault.hits += 1
                    return fault
        return None


def _paginate(proxy: FaultProxy, fault: Fault, path: str, body: bytes) -> tuple[bytes, dict[str, str]]:
    """Serve a page of the full (sorted) list the way paginating registries do, with an optional defect."""
    data = json.loads(body)
    tags = sorted(data.get("tags") or [])
    query = parse_qs(urlsplit(path).query)
    size = int(query.get("n", [str(fault.page)])[0])
    size = min(size, fault.page)
    last = query.get("last", [None])[0]
    start = 0 if last is None else next((i + 1 for i, t in enumerate(tags) if t == last), len(tags))
    if fault.mode == "repeat" and last is not None:
        start = 0  # the registry ignores `last`: page two is page one again
    page = tags[start : start + size]
    headers: dict[str, str] = {}
    if start + size < len(tags):
        base = urlsplit(path).path
        if fault.mode == "loop" and last is not None:
            target = f"{base}?{urlencode({'n': size})}"  # back to the first page
        elif fault.mode == "shift" and last is not None:
            target = (
                f"{base}?{urlencode({'n': size, 'last': tags[max(0, start - 1)]})}"  # list moved under us
            )
        else:
            target = f"{base}?{urlencode({'n': size, 'last': page[-1]})}"
        headers["Link"] = f'<{target}>; rel="next"'
    return json.dumps({"name": data.get("name"), "tags": page}).encode(), headers


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            proxy.requests.append((self.command, self.path, status))

        def _handle(self) -> None:
            with proxy._lock:
                proxy._in_flight += 1
                proxy.max_in_flight = max(proxy.max_in_flight, proxy._in_flight)
            try:
                self._serve()
            finally:
                with proxy._lock:
                    proxy._in_flight -= 1

        def _serve(self) -> None:
            fault = proxy.take(self.command, self.path)
            if fault is not None and fault.kind == "status":
                self._send(
                    fault.status,
                    b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}',
                    {"Content-Type": "application/json"},
                )
                return
            if fault is not None and fault.kind == "retry_after":
                self._send(429, b"", {"Retry-After": f"{fault.seconds:g}"})
                return
            if fault is not None and fault.kind == "stall":
                time.sleep(fault.seconds)
            length = int(self.headers.get("Content-Length") or 0)
            forward = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection")
            }
            upstream = httpx.request(
                self.command,
                proxy.upstream + self.path,
                headers=forward,
                content=self.rfile.read(length) if length else None,
                timeout=30,
            )
            body = upstream.content
            headers = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
            }
            if self.command == "HEAD":
                headers["Content-Length"] = upstream.headers.get("Content-Length", "0")
            if fault is not None and fault.kind == "paginate" and upstream.status_code == 200:
                body, extra = _paginate(proxy, fault, self.path, body)
                headers.update(extra)
            elif fault is not None and fault.kind == "malformed":
                body = body[: len(body) // 2]
            elif fault is not None and fault.kind == "content_type":
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
                headers["Content-Type"] = "text/html"
                body = b"<html>captive portal</html>"
            elif fault is not None and fault.kind == "digest":
                headers = {k: v for k, v in headers.items() if k.lower() != "docker-content-digest"}
                headers["Docker-Content-Digest"] = fault.value
            elif fault is not None and fault.kind == "huge":
                body = b'{"tags": [' + b'"x",' * 200_000 + b'"y"]}'
            elif fault is not None and fault.kind == "truncate":
                self.send_response(upstream.status_code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                proxy.requests.append((self.command, self.path, upstream.status_code))
                return
            self._send(upstream.status_code, body, headers)

    return Handler

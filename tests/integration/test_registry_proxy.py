"""A proxy named in the environment (HTTP_PROXY) carries every registry request, as httpx's client routes
it: requests that skip the client's layers (the steady poll's tag lists) must not skip the proxy."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import RegistryConfig
from tagtrail_demo import ImagePusher, RegistryServer

pytestmark = pytest.mark.anyio

UNRESOLVABLE = "registry.tagtrail-proxy.invalid:5000"  # reachable only through the proxy


class _Forward(BaseHTTPRequestHandler):
    """A forward proxy for plain HTTP: the registry behind the made-up host, every request line kept."""

    upstream = ""
    seen: list[str] = []  # noqa: RUF012 (set per server)

    def _forward(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        url = self.path.replace(f"http://{UNRESOLVABLE}", self.upstream, 1)
        request = urllib.request.Request(url, method=self.command, headers=dict(self.headers))  # noqa: S310 (the test's own registry)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request) as answer:
            body = answer.read()
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                if name.lower() not in ("transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    do_GET = do_HEAD = _forward

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_Forward,), {"upstream": registry.url, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_a_proxy_from_the_environment_carries_tag_lists_and_heads(
    proxy: tuple[str, list[str]],
    pusher: ImagePusher,
    repo_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address, seen = proxy
    image = pusher.push_image(repo_name, "main.20251014-051038.185c95c")
    monkeypatch.setenv("HTTP_PROXY", address)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    ref = ImageRef.parse(f"{UNRESOLVABLE}/{repo_name}")
    async with RegistryClient({UNRESOLVABLE: RegistryConfig(insecure=True)}, retries=0) as client:
        assert await client.list_tags(ref) == ["main.20251014-051038.185c95c"]
        assert (await client.head(ref.with_tag("main.20251014-051038.185c95c"))).digest == image.digest
    assert seen == [
        f"GET http://{UNRESOLVABLE}/v2/{repo_name}/tags/list?n=1000",
        f"HEAD http://{UNRESOLVABLE}/v2/{repo_name}/manifests/main.20251014-051038.185c95c",
    ]

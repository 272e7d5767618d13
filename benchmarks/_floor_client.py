"""The floor under `tagtrail plan` as a whole process: a bare Python script (standard library only, eight
threads each with a kept-alive connection) that makes the same registry requests and nothing else: per
repository the tag list, then the newest main tag's manifest, and its config only where the manifest
carries no revision annotation. No config, git, policy, checks or decision log. No Python program that
reads these registries can be much faster than this, so it tells what a goal in multiples of the skopeo
loop asks of Python itself. With --httpx, the same through httpx's AsyncClient (eight connections), the
HTTP library tagtrail uses: what the library costs, apart from tagtrail.

    python benchmarks/_floor_client.py [--httpx] HOST REPO [REPO …]   (prints REPO TAG DIGEST REVISION)
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import sys
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
REVISION = "org.opencontainers.image.revision"
_local = threading.local()


def _get(host: str, path: str, accept: str = "*/*") -> bytes:
    if getattr(_local, "connection", None) is None:
        _local.connection = http.client.HTTPConnection(host, timeout=30)
    _local.connection.request("GET", path, headers={"User-Agent": "floor/1", "Accept": accept})
    response = _local.connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status}")
    return body


def _reads(repo: str) -> Generator[tuple[str, str], bytes, str]:
    """One repository's requests, each yielded as (path, accept) and answered by the caller (threads or
    httpx), and its line: the tag list, the newest main tag's manifest, its config only without the
    annotation."""
    tags = json.loads((yield f"/v2/{repo}/tags/list?n=10000", "*/*"))["tags"]
    winner = max((t for t in tags if t.startswith("main.")), key=lambda t: (t.split(".")[1], t))
    raw = yield f"/v2/{repo}/manifests/{winner}", ACCEPT
    manifest = json.loads(raw)
    revision = manifest.get("annotations", {}).get(REVISION)
    if revision is None:
        config = json.loads((yield f"/v2/{repo}/blobs/{manifest['config']['digest']}", "*/*"))
        revision = config["config"].get("Labels", {}).get(REVISION)
    return f"{repo} {winner} sha256:{hashlib.sha256(raw).hexdigest()} {revision}"


def newest(host: str, repo: str) -> str:
    reads = _reads(repo)
    request = next(reads)
    try:
        while True:
            request = reads.send(_get(host, *request))
    except StopIteration as done:
        return str(done.value)


async def _newest_httpx(client: Any, host: str, repo: str) -> str:
    reads = _reads(repo)
    request = next(reads)
    try:
        while True:
            path, accept = request
            response = await client.get(f"http://{host}{path}", headers={"Accept": accept})
            request = reads.send(response.content)
    except StopIteration as done:
        return str(done.value)


async def _all_httpx(host: str, repos: list[str]) -> list[str]:
    import httpx  # noqa: PLC0415

    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    async with httpx.AsyncClient(limits=limits, headers={"User-Agent": "floor/1"}) as client:
        return await asyncio.gather(*(_newest_httpx(client, host, repo) for repo in repos))


def main() -> None:
    if sys.argv[1] == "--httpx":
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # as tagtrail does
        for line in asyncio.run(_all_httpx(sys.argv[2], sys.argv[3:])):
            print(line)
        return
    host, repos = sys.argv[1], sys.argv[2:]
    with ThreadPoolExecutor(8) as pool:
        for line in pool.map(lambda repo: newest(host, repo), repos):
            print(line)


if __name__ == "__main__":
    main()

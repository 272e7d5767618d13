"""Benchmark: registry requests of one base-image check, as `tagtrail serve` polls and `tagtrail base-images`
asks, against a real local registry (CNCF distribution).

A apps run, each built on one of B base images (many apps share a base, as in a monorepo on one Python or
distroless image). Each app's running image records its base (org.opencontainers.image.base.* labels).
Requests are counted by HTTP method as the client sends them.

The claim: a poll costs one HEAD per distinct base, shared across apps: B requests, whatever A is. The
first poll also reads each running image's record once (a manifest and a config per app, remembered by
digest); a poll after a base moved reads that base's created time once (remembered by digest). The
baseline is the check written per app: a HEAD of its base for every app, every poll (A requests).

Run it with `./scripts/bench base_images` (add `--quick` for the small case only).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from tagtrail.adapters.baseimages import BASE_DIGEST, BASE_NAME, Memory, Running, check
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import RegistryConfig
from tagtrail_demo import ImagePusher, RegistryServer


class Counting(httpx.AsyncBaseTransport):
    """Counts requests by method on their way to the registry."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.methods: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods[request.method] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def take(self) -> Counter[str]:
        taken, self.methods = self.methods, Counter()
        return taken


@dataclass
class Row:
    poll: str
    apps: int
    bases: int
    heads: int
    gets: int
    moved: int
    seconds: float


def seed(pusher: ImagePusher, host: str, apps: int, bases: int) -> list[Running]:
    """B bases, A apps each recording one of them (round robin), as `tagtrail build` labels them."""
    digests = [
        pusher.push_image(f"bench/base{b}", "1", content=f"base {b}".encode()).digest for b in range(bases)
    ]
    running = []
    for a in range(apps):
        b = a % bases
        labels = {BASE_NAME: f"{host}/bench/base{b}:1", BASE_DIGEST: digests[b]}
        image = pusher.push_image(f"bench/app{a:03d}", "main.1", labels=labels)
        running.append(
            Running(f"app{a:03d}", f"{host}/bench/app{a:03d}", "main.1", image.digest, "Dockerfile")
        )
    return running


async def polls(host: str, pusher: ImagePusher, running: list[Running], bases: int, warm: int) -> list[Row]:
    counting = Counting()
    memory = Memory()
    rows = []
    async with RegistryClient({host: RegistryConfig(insecure=True)}, transport=counting) as client:

        async def poll(name: str) -> None:
            started = time.perf_counter()
            found = await check(client, running, memory=memory)
            seconds = time.perf_counter() - started
            methods = counting.take()
            moved = sum(1 for row in found if row.moved)
            rows.append(Row(name, len(running), bases, methods["HEAD"], methods["GET"], moved, seconds))

        await poll("first")
        for n in range(warm):
            await poll(f"steady {n + 1}")
        pusher.push_image("bench/base0", "1", content=b"base 0, patched")
        await poll("base0 moved")
        await poll("steady after")
        started = time.perf_counter()
        await asyncio.gather(*(client.head(_base_of(r, host, bases)) for r in running))
        methods = counting.take()
        rows.append(
            Row(
                "per-app HEADs",
                len(running),
                bases,
                methods["HEAD"],
                methods["GET"],
                0,
                time.perf_counter() - started,
            )
        )
    return rows


def _base_of(running: Running, host: str, bases: int) -> ImageRef:
    return ImageRef.parse(f"{host}/bench/base{int(running.app[3:]) % bases}:1")


def run_case(apps: int, bases: int, warm: int, workdir: Path) -> list[Row]:
    with RegistryServer(workdir / f"registry-{apps}-{bases}") as server, ImagePusher(server.url) as pusher:
        running = seed(pusher, server.host, apps, bases)
        return asyncio.run(polls(server.host, pusher, running, bases, warm))


def show(rows: list[Row]) -> None:
    print(f"{'poll':<16} {'apps':>5} {'bases':>5} {'HEAD':>5} {'GET':>5} {'moved':>5} {'ms':>8}")
    for r in rows:
        print(
            f"{r.poll:<16} {r.apps:>5} {r.bases:>5} {r.heads:>5} {r.gets:>5} {r.moved:>5} {1000 * r.seconds:>8.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small case only")
    args = parser.parse_args()
    cases = [(12, 3)] if args.quick else [(12, 3), (100, 4), (300, 10)]
    ok = True
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-bases-") as scratch:
        for apps, bases in cases:
            rows = run_case(apps, bases, 3, Path(scratch))
            print(f"\n{apps} apps on {bases} bases")
            show(rows)
            steady = [r for r in rows if r.poll.startswith("steady")]
            baseline = rows[-1]
            first, moved = rows[0], next(r for r in rows if r.poll == "base0 moved")
            holds = (
                all(r.heads == bases and r.gets == 0 for r in steady)  # one HEAD per distinct base
                and first.gets == 2 * apps  # each running image's record read once (manifest, config)
                and (moved.heads, moved.gets) == (bases, 2)  # the moved base's created time, read once
            )
            print(
                f"steady poll: {steady[0].heads} HEAD for {apps} apps (one per distinct base, and the reads above as stated: {'yes' if holds else 'NO'});"
                f" per-app check: {baseline.heads} HEAD, {baseline.heads / max(steady[0].heads, 1):.1f}x as many"
            )
            ok = ok and holds
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

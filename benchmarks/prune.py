"""Benchmark: `tagtrail prune`'s plan for R repositories × T tags in a real registry, requests counted.

Each repository holds a pool of T/100 real images (pushed through the API, a third of them multi-arch
indexes) and T tags written as the registry's own tag links onto that pool in time order, so tags share
digests as rebuilds and re-tags make them do: 60% main builds over 300 days, 30% other branches, 5% `-dirty`, the rest outside the
scheme. One main build per repository runs. The plan is what `tagtrail prune` does without --apply: the
tag list; when anything may go, one HEAD per tag (a digest shared with a kept tag must be seen: distribution
has no lookup from digest to tags) and one GET per distinct manifest; when the tags alone decide (every tag
kept), the tag list only. Requests are counted at the registry (its access log). The facts read from git
(what runs, rollback targets) are given, not read: that cost is the deploy benchmark's.

Run it with `./scripts/bench prune` (`--quick`: R=2, T=50).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import RegistryConfig, parse_config
from tagtrail.domain.scheme import Scheme
from tagtrail.features.retention.facts import Protected
from tagtrail.features.retention.prune import PruneReport, plan
from tagtrail.features.retention.stores import DistributionStore
from tagtrail_demo import ImagePusher, RegistryServer

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
NOW = datetime.now(UTC)


@dataclass
class Row:
    case: str
    seconds: float
    requests: int
    by_kind: dict[str, int]
    repos: int
    tags: int
    deletions: int

    @property
    def per_repo(self) -> float:
        return self.requests / self.repos


def seed(server: RegistryServer, repos: int, tags: int, rng: random.Random) -> dict[str, Protected]:
    """Per repository a pool of real images, and T tags onto them in time order (each image carries a run
    of consecutive builds, as rebuilds of one commit would); the pool's own tags are removed."""
    running: dict[str, Protected] = {}
    pool_size = max(5, tags // 100)
    with ImagePusher(server.url) as pusher:
        for r in range(repos):
            name = f"bench/app{r:03d}"
            pool = [
                (pusher.push_index if n % 3 == 0 else pusher.push_image)(name, f"pool-{n}")
                for n in range(pool_size)
            ]
            root = server.storage / "docker/registry/v2/repositories" / name / "_manifests/tags"
            for n in range(pool_size):
                shutil.rmtree(root / f"pool-{n}")
            made: list[tuple[datetime, str]] = []
            for _ in range(tags):
                roll = rng.random()
                when = NOW - timedelta(seconds=rng.randrange(3600, 300 * 86400))
                sha = f"{rng.getrandbits(28):07x}"
                branch = (
                    "main"
                    if roll < 0.6 or 0.9 <= roll < 0.95
                    else rng.choice(("feature/a", "fix/b", "dep/x"))
                )
                tag = SCHEME.format(branch=branch, sha=sha, time=when) + (
                    "-dirty" if 0.9 <= roll < 0.95 else ""
                )
                made.append((when, tag if roll < 0.95 else f"v{rng.randrange(1000)}.{rng.randrange(1000)}"))
            made.sort()
            for i, (_, tag) in enumerate(made):
                link = root / tag / "current"
                link.mkdir(parents=True, exist_ok=True)
                image = (
                    pool[-1] if tag.startswith("v") else pool[i * pool_size // len(made)]
                )  # releases: newest
                (link / "link").write_text(image.digest)
            main = [t for _, t in made if t.startswith("main.") and not t.endswith("-dirty")]
            running[name] = Protected(running={rng.choice(main[-40:])})
    return running


def count(log: Path, offset: int) -> tuple[dict[str, int], int]:
    data = log.read_bytes()
    kinds = {"tag list": 0, "HEAD": 0, "manifest GET": 0, "other": 0}
    for line in data[offset:].splitlines():
        if b'"tagtrail/' not in line:
            continue
        if b"/tags/list" in line:
            kinds["tag list"] += 1
        elif b'"HEAD ' in line:
            kinds["HEAD"] += 1
        elif b"/manifests/" in line:
            kinds["manifest GET"] += 1
        else:
            kinds["other"] += 1
    return kinds, len(data)


async def run_plan(host: str, running: dict[str, Protected], config_text: str) -> PruneReport:
    config = parse_config(config_text, "tagtrail.yaml")
    async with RegistryClient({host: RegistryConfig(insecure=True)}) as client:
        stores = {name: DistributionStore(client, ImageRef.parse(f"{host}/{name}")) for name in running}
        return await plan(config, stores, running, NOW)


DELETING = "retention: {keep_deploy: 20, keep_other: 3, max_age_other: 30d, max_age_dirty: 2d}\n"
KEEP_ALL = (
    "retention: {keep_deploy: 100000, keep_other: 100000, max_age_other: 1000d, max_age_dirty: 1000d}\n"
)


class Watchdog(threading.Thread):
    """Starts the registry again (same port, same storage) when something outside kills it: on a shared
    machine other test runs stop registries by name. Each restart is counted and printed with the table."""

    def __init__(self, server: RegistryServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.restarts = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            process = self.server.process
            if process is not None and process.poll() is not None:
                self.restarts += 1
                self.server.start(same_port=True)


def run_case(repos: int, tags: int, workdir: Path) -> list[Row]:
    """One seeding, two plans: with rules that delete, and with rules that keep every tag."""
    case = f"R={repos} T={tags}"
    server = RegistryServer(workdir / case.replace(" ", "_").replace("=", ""), access_log=True)
    rows = []
    with server:
        watchdog = Watchdog(server)
        watchdog.start()
        print(f"[{case}] seeding {repos * tags:,} tags …", file=sys.stderr, flush=True)
        running = seed(server, repos, tags, random.Random(case))
        for name, retention in (("", DELETING), (" all kept", KEEP_ALL)):
            config = f"image: {server.host}/bench/{{app}}\n{retention}"
            offset = server.log_path.stat().st_size
            started = time.perf_counter()
            report = asyncio.run(run_plan(server.host, running, config))
            seconds = time.perf_counter() - started
            kinds, _ = count(server.log_path, offset)
            problems = [p.problem for p in report.plans if p.problem]
            assert not problems, problems
            deletions = sum(len(p.graph.deletions) for p in report.plans if p.graph)
            rows.append(Row(case + name, seconds, sum(kinds.values()), kinds, repos, tags, deletions))
        watchdog.done.set()
        if watchdog.restarts:
            print(
                f"[{case}] the registry was killed from outside and restarted {watchdog.restarts} times",
                file=sys.stderr,
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="R=2, T=50 only")
    parser.add_argument("--repos", type=int, default=50, help="repositories (default 50)")
    parser.add_argument("--tags", type=int, default=1000, help="tags per repository (default 1000)")
    args = parser.parse_args()
    repos, tags = (2, 50) if args.quick else (args.repos, args.tags)
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-", dir=os.environ.get("TMPDIR")) as folder:
        rows = run_case(repos, tags, Path(folder))
    print(
        f"\n{'case':<22} {'wall s':>7} {'requests':>9} {'req/repo':>9} {'tag lists':>10} {'HEADs':>7}"
        f" {'manifest GETs':>14} {'deletions':>10}"
    )
    for row in rows:
        k = row.by_kind
        print(
            f"{row.case:<22} {row.seconds:>7.2f} {row.requests:>9} {row.per_repo:>9.1f} {k['tag list']:>10}"
            f" {k['HEAD']:>7} {k['manifest GET']:>14} {row.deletions:>10}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

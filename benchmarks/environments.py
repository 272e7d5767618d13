"""Benchmark: two environments, 50 apps, soak 0: how many reconciles a push takes to reach prod, and what
each reconcile asks of the registry, per repository and per environment.

A monorepo of 50 apps deploys to staging (deploy/staging.yaml) and, from staging with `soak: 0s`, to prod
(deploy/prod.yaml), both in one git repository pushed to a bare remote, against the real registry (its access
log counts the requests, by repository and kind). After a first reconcile that brings both environments to
the current builds, every app gets a new build (a push of the whole monorepo); reconciles then run, as
`tagtrail serve` runs them (the reconcilers kept, staging then prod), until prod runs every new build; then
one more, the steady state. Goals: prod has the push after at most two reconciles; each reconcile asks, per
repository and environment, at most one tag list and one HEAD.

Run it with `./scripts/bench environments` (`--apps N`, `--tags N`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench.git import commit, git, init_repo
from bench.homelab import SCHEME
from bench.isolate import isolate
from bench.lanes import lanes_files
from tagtrail.config import load_config
from tagtrail.reconcile import Reconciler
from tagtrail_demo import ImagePusher, RegistryServer

START = datetime(2026, 1, 1, tzinfo=UTC)
_REQUEST = re.compile(rb'"(GET|HEAD) /v2/(.+?)/(tags/list|manifests|blobs)[^"]*"')


def requests(log: Path, offset: int) -> tuple[Counter[tuple[str, str]], int]:
    """tagtrail's requests since `offset`, by (kind, repository): tag list, HEAD, GET (manifests, blobs)."""
    data = log.read_bytes()
    seen: Counter[tuple[str, str]] = Counter()
    for line in data[offset:].splitlines():
        found = _REQUEST.search(line)
        if found is None or b'"tagtrail/' not in line:
            continue
        method, repo, what = (part.decode() for part in found.groups())
        kind = "tag list" if what == "tags/list" else "HEAD" if method == "HEAD" else "GET"
        seen[kind, repo] += 1
    return seen, len(data)


def push_all(root: Path, pusher: ImagePusher, apps: list[str], round_: int, tags: int) -> dict[str, str]:
    """A commit of every app and its build (plus `tags` older builds the first time): app → newest tag."""
    sha = commit(root, {f"apps/{app}/r{round_}.txt": f"{round_}\n" for app in apps}, f"round {round_}")
    newest = {}
    for app in apps:
        for n in range(tags if round_ == 0 else 1):
            when = START + timedelta(hours=round_ * 1000 + n)
            tag = SCHEME.format(branch="main", sha=sha, time=when)
            pusher.push_image(
                f"bench/{app}", tag, created=when, labels={"org.opencontainers.image.revision": sha}
            )
            newest[app] = tag
    return newest


def lab(root: Path, registry: RegistryServer, apps: list[str]) -> None:
    files = lanes_files(f"{registry.host}/bench", registry.host, apps, "    soak: 0s\n")
    init_repo(root, files, "the monorepo")
    remote = root.parent / "remote.git"
    git(root.parent, "init", "-q", "--bare", "-b", "main", remote.name)
    git(root, "remote", "add", "origin", remote.as_uri())
    git(root, "push", "-q", "-u", "origin", "main")


async def reconciles(
    path: Path, registry: RegistryServer, pusher: ImagePusher, apps: list[str], tags: int
) -> list[tuple[str, float, dict[str, Counter[tuple[str, str]]], int]]:
    """(what, seconds, requests by environment, apps prod runs at the push) per reconcile."""
    rows = []
    offset = 0
    async with Reconciler.open_lanes(load_config(path), path) as lanes:

        async def reconcile(what: str, pushed: dict[str, str]) -> int:
            nonlocal offset
            started, by_env = time.perf_counter(), {}
            for lane in lanes:
                await lane.run(actor="tagtrail bench", automatic=True)
                by_env[lane.project.environment], offset = requests(registry.log_path, offset)
            declared = await lanes[-1].project.target.declared()
            there = sum(1 for app in apps if declared.states[app].running.tag == pushed.get(app))
            rows.append((what, time.perf_counter() - started, by_env, there))
            return there

        current = push_all(path.parent, pusher, apps, 0, tags)
        git(path.parent, "push", "-q", "origin", "main")
        offset = registry.log_path.stat().st_size
        await reconcile("first (bootstrap → current)", current)
        pushed = push_all(path.parent, pusher, apps, 1, tags)
        git(path.parent, "push", "-q", "origin", "main")
        offset = registry.log_path.stat().st_size
        for n in range(1, 4):
            if await reconcile(f"after the push, #{n}", pushed) == len(apps):
                break
        await reconcile("steady (nothing new)", pushed)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--tags", type=int, default=20, help="builds per app before the push")
    args = parser.parse_args()
    apps = [f"app{n:02d}" for n in range(args.apps)]
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-environments-") as folder:
        work = Path(folder)
        isolate(work)
        with (
            RegistryServer(work / "registry", access_log=True) as registry,
            ImagePusher(registry.url) as pusher,
        ):
            lab(work / "repo", registry, apps)
            rows = asyncio.run(reconciles(work / "repo" / "tagtrail.yaml", registry, pusher, apps, args.tags))
    print(
        f"\n{'reconcile':<30} {'wall s':>7} {'env':<8} {'tag lists':>9} {'HEADs':>6} {'GETs':>5} {'max/repo':>9}  prod"
    )
    ok = True
    for what, seconds, by_env, there in rows:
        for env, seen in by_env.items():
            kinds = Counter[str]()
            for (kind, _), n in seen.items():
                kinds[kind] += n
            worst = max((n for (kind, _), n in seen.items() if kind != "GET"), default=0)
            ok &= worst <= 1
            print(
                f"{what:<30} {seconds:>7.2f} {env:<8} {kinds['tag list']:>9} {kinds['HEAD']:>6}"
                f" {kinds['GET']:>5} {worst:>9}  {there}/{len(apps)}"
            )
    to_prod = sum(1 for what, *_ in rows if what.startswith("after the push"))
    reached = rows[-2][3] == len(apps)
    print(
        f"\n{len(apps)} apps, 2 environments, soak 0: the push reached prod in {to_prod} reconcile(s)"
        f" ({'goal met' if reached and to_prod <= 2 else 'GOAL MISSED'}: at most 2); per repository and"
        f" environment at most one tag list and one HEAD per reconcile: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok and reached and to_prod <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())

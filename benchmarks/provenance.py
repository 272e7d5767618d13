"""Benchmark: what checking a tag's claims (DESIGN invariant 9) costs per reconcile, for 50 apps.

A monorepo of 50 apps with a remote (file://), their builds in the real registry (each tag of main names a
real commit, with its revision label), and one long-lived reconciler, as `tagtrail serve` keeps one. Each
scenario runs once with the checks and once without (the reconciler as it was before them: no commit, label,
moved-tag or date checks). Requests are counted at the registry's access log; git fetches where tagtrail
runs them.

Run it with `./scripts/bench provenance` (`--apps N`, `--quick` for 5 apps).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench.git import commit, git, init_repo
from bench.isolate import isolate
from tagtrail.config import load_config
from tagtrail.gitrepo import GitRepo
from tagtrail.provenance import Claims
from tagtrail.reconcile import Reconciler, evaluate
from tagtrail.registry import RegistryClient
from tagtrail.sandbox import ImagePusher, RegistryServer
from tagtrail.scheme import Scheme
from tagtrail.targets.factory import open_project

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
REVISION = "org.opencontainers.image.revision"


@dataclass
class Row:
    scenario: str
    checks: bool
    requests: int
    fetches: int
    seconds: float
    outcome: str


class Counter:
    """Requests at the registry (its access log) and git fetches (where tagtrail runs them)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size
        self.fetches = 0
        original = GitRepo.fetch_branches

        def counted(repo: GitRepo, remote: str, branches: list[str]) -> None:
            self.fetches += 1
            original(repo, remote, branches)

        GitRepo.fetch_branches = counted  # type: ignore[method-assign]

    def take(self) -> tuple[int, int]:
        data = self.log.read_bytes()
        requests = sum(1 for line in data[self.offset :].splitlines() if b'"tagtrail/' in line)
        self.offset, fetches, self.fetches = len(data), self.fetches, 0
        return requests, fetches


@contextmanager
def checks_off() -> Iterator[None]:
    """The reconciler without the claims checks: every Claims is the neutral one."""
    original = evaluate.Claims

    def neutral(*args: Any, **kwargs: Any) -> Claims:
        return Claims(timedelta(days=365_000))

    evaluate.Claims = neutral  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        evaluate.Claims = original  # type: ignore[misc]


def seed(work: Path, registry: RegistryServer, pusher: ImagePusher, apps: int) -> tuple[Path, list[str]]:
    names = [f"app{n:02d}" for n in range(apps)]
    image = f"{registry.host}/bench"
    files = {f"apps/{a}/Dockerfile": "FROM scratch\n" for a in names}
    files["deploy.yaml"] = "".join(f"{a}:\n  image: {image}/{a}:bootstrap\n" for a in names)
    files["tagtrail.yaml"] = (
        f'image: {image}/{{app}}\nregistries:\n  "{registry.host}": {{insecure: true}}\n'
        "deploy:\n  branch: main\n  cooldown: 0s\n  git:\n    files: [deploy.yaml]\n"
    )
    root = init_repo(work / "mono", files, "fifty apps")
    commits = [git(root, "rev-parse", "HEAD")]
    for n in range(3):
        commits.append(commit(root, {"apps/app00/v.txt": f"{n}\n"}, f"change {n}"))
    remote = work / "origin.git"
    git(work, "init", "-q", "--bare", "-b", "main", str(remote))
    git(root, "remote", "add", "origin", remote.as_uri())
    git(root, "push", "-q", "-u", "origin", "main")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    for app in names:
        for index, sha in enumerate(commits):
            when = start + timedelta(days=index)
            tag = SCHEME.format(branch="main", sha=sha, time=when)
            first = pusher.push_image(f"bench/{app}", tag, created=when, labels={REVISION: sha})
        for n in range(6):  # builds of other branches and other schemes: listed, never candidates
            pusher.tag(first, SCHEME.format(branch="feature/x", sha=f"{n:07x}", time=start))
    return root, names


async def reconcile(reconciler: Reconciler) -> str:
    report = await reconciler.run(actor="bench", automatic=True)
    return f"{len(report.changed)} deployed" if report.changed else "nothing to do"


async def measure(
    rows: list[Row], counter: Counter, scenario: str, reconciler: Reconciler, checks: bool
) -> None:
    started = time.perf_counter()
    if checks:
        outcome = await reconcile(reconciler)
    else:
        with checks_off():
            outcome = await reconcile(reconciler)
    seconds = time.perf_counter() - started
    requests, fetches = counter.take()
    rows.append(Row(scenario, checks, requests, fetches, seconds, outcome))


async def plan(
    rows: list[Row], counter: Counter, scenario: str, reconciler: Reconciler, checks: bool
) -> None:
    started = time.perf_counter()
    with checks_off() if not checks else nullcontext():
        planned = await reconciler.plan(actor="bench")
    seconds = time.perf_counter() - started
    requests, fetches = counter.take()
    pending = sum(1 for p in planned if p.decision.action == "deploy")
    rows.append(Row(scenario, checks, requests, fetches, seconds, f"{pending} to deploy"))


async def run(apps: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-provenance-") as folder:
        work = Path(folder)
        isolate(work)
        with (
            RegistryServer(work / "registry", access_log=True) as registry,
            ImagePusher(registry.url) as pusher,
        ):
            print(f"seeding {apps} apps …", file=sys.stderr, flush=True)
            root, names = seed(work, registry, pusher, apps)
            path = (root / "tagtrail.yaml").resolve()
            config = load_config(path)
            rows: list[Row] = []
            counter = Counter(registry.log_path)

            client = RegistryClient(config.registries)
            on = Reconciler(open_project(config, path, client))  # one per config, as serve keeps it
            off = Reconciler(open_project(config, path, client))
            # both read the same files; `off` never finds anything to write after `on` deployed
            await measure(rows, counter, "first reconcile (deploys every app)", on, True)
            for checks, reconciler in ((False, off), (True, on)):
                await measure(rows, counter, "steady state (nothing new)", reconciler, checks)
            for checks, reconciler in ((False, off), (True, on)):
                await measure(rows, counter, "steady state, again", reconciler, checks)
            fresh = Reconciler(open_project(config, path, client))  # a new process: nothing remembered
            await measure(rows, counter, "a new process's first look (CLI)", fresh, True)
            # one new build: a commit pushed by CI's checkout, its image pushed
            other = work / "ci-clone"
            git(work, "clone", "-q", (work / "origin.git").as_uri(), other.name)
            sha = commit(other, {"apps/app00/v.txt": "new\n"}, "web: new")
            git(other, "push", "-q", "origin", "main")
            tag = SCHEME.format(branch="main", sha=sha, time=datetime.now(UTC) - timedelta(minutes=10))
            pusher.push_image(f"bench/{names[0]}", tag, labels={REVISION: sha})
            counter.take()
            for checks, reconciler in ((False, off), (True, on)):
                await plan(rows, counter, "one new build: plan", reconciler, checks)
            # the deploy's own pull of the deploy repository (here the source too) brings the commit
            await measure(rows, counter, "one new build: deploy", on, True)
            await measure(rows, counter, "steady state after it", on, True)
            await client.aclose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="5 apps")
    args = parser.parse_args()
    apps = 5 if args.quick else args.apps
    rows = asyncio.run(run(apps))
    print(
        f"\n{'scenario (' + str(apps) + ' apps)':<40} {'checks':>6} {'requests':>9} {'fetches':>8} {'wall s':>7}  outcome"
    )
    for r in rows:
        print(
            f"{r.scenario:<40} {'on' if r.checks else 'off':>6} {r.requests:>9} {r.fetches:>8} {r.seconds:>7.2f}  {r.outcome}"
        )
    steady = [r for r in rows if r.scenario.startswith("steady state") and r.checks]
    extra = max(r.requests for r in steady) - apps
    fetches = max(r.fetches for r in steady)
    print(
        f"\nSteady state with the checks: {extra} request(s) beyond the {apps} tag lists, {fetches} git fetch(es)"
        " per reconcile (the issue allows one config request and one fetch)."
    )
    return 0 if extra <= 1 and fetches <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())

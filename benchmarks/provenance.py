"""Benchmark: what checking a tag's claims (DESIGN invariant 9) costs per reconcile, for 50 apps.

A monorepo of 50 apps with a remote (file://), their builds in the real registry (each tag of main names a
real commit, with its revision label), and one long-lived reconciler, as `tagtrail serve` keeps one. Each
scenario runs once with the checks and once without (the reconciler as it was before them: no commit, label,
moved-tag or date checks). Requests are counted at the registry's access log; git fetches where tagtrail
runs them.

With `--keyless`, every app's images must be attested by the deploy branch's workflow (deploy.verify.github,
the bundles made by a local Sigstore instance and attached as OCI referrers): what verifying a new build
costs (requests, time) against the same reconciler not asked to verify, and that a build already verified
costs nothing more.

Run it with `./scripts/bench provenance` (`--apps N`, `--quick` for 5 apps, `--keyless`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from bench.git import commit, git, init_repo
from bench.isolate import isolate
from bench.sigstore_local import LocalSigstore, Run, attach
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.adapters.verify.attached import expected, verify_attached
from tagtrail.config import Config, load_config
from tagtrail.domain.provenance import Claims
from tagtrail.domain.scheme import Scheme
from tagtrail.reconcile import Reconciler, evaluate
from tagtrail.targets.factory import open_project
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer

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


@contextmanager
def keyless_off() -> Iterator[None]:
    """The reconciler not asked to verify keyless provenance (deploy.verify.github ignored)."""
    original = evaluate.Round.attesting_of
    evaluate.Round.attesting_of = lambda self, app: None  # type: ignore[method-assign,assignment,misc]
    try:
        yield
    finally:
        evaluate.Round.attesting_of = original  # type: ignore[method-assign]


def seed(
    work: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    apps: int,
    extra: str = "",
    pushed: Callable[[PushedImage, str], None] | None = None,
) -> tuple[Path, list[str]]:
    names = [f"app{n:02d}" for n in range(apps)]
    image = f"{registry.host}/bench"
    files = {f"apps/{a}/Dockerfile": "FROM scratch\n" for a in names}
    files["deploy.yaml"] = "".join(f"{a}:\n  image: {image}/{a}:bootstrap\n" for a in names)
    files["tagtrail.yaml"] = (
        f'image: {image}/{{app}}\nregistries:\n  "{registry.host}": {{insecure: true}}\n'
        "deploy:\n  branch: main\n  cooldown: 0s\n  git:\n    files: [deploy.yaml]\n"
    ) + extra
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
            if pushed is not None:
                pushed(first, sha)
        for n in range(6):  # builds of other branches and other schemes: listed, never candidates
            pusher.tag(first, SCHEME.format(branch="feature/x", sha=f"{n:07x}", time=start))
    return root, names


def new_build(work: Path, pusher: ImagePusher, app: str) -> tuple[PushedImage, str]:
    """One new build: a commit pushed by CI's checkout, its image pushed."""
    other = work / "ci-clone"
    git(work, "clone", "-q", (work / "origin.git").as_uri(), other.name)
    sha = commit(other, {"apps/app00/v.txt": "new\n"}, "web: new")
    git(other, "push", "-q", "origin", "main")
    tag = SCHEME.format(branch="main", sha=sha, time=datetime.now(UTC) - timedelta(minutes=10))
    return pusher.push_image(f"bench/{app}", tag, labels={REVISION: sha}), sha


def _reconciler(config: Config, path: Path, client: RegistryClient) -> Reconciler:
    return Reconciler(open_project(config, path, client))


def _on_and_off(config: Config, path: Path, client: RegistryClient) -> tuple[Reconciler, Reconciler]:
    """Two reconcilers of one config, each kept as serve keeps one: `on` asked to verify, `off` never (it reads
    the same files; after `on` deployed it finds nothing to write)."""
    return _reconciler(config, path, client), _reconciler(config, path, client)


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
            on, off = _on_and_off(config, path, client)
            await measure(rows, counter, "first reconcile (deploys every app)", on, True)
            for checks, reconciler in ((False, off), (True, on)):
                await measure(rows, counter, "steady state (nothing new)", reconciler, checks)
            for checks, reconciler in ((False, off), (True, on)):
                await measure(rows, counter, "steady state, again", reconciler, checks)
            fresh = _reconciler(config, path, client)  # a new process: nothing remembered
            await measure(rows, counter, "a new process's first look (CLI)", fresh, True)
            new_build(work, pusher, names[0])
            counter.take()
            for checks, reconciler in ((False, off), (True, on)):
                await plan(rows, counter, "one new build: plan", reconciler, checks)
            # the deploy's own pull of the deploy repository (here the source too) brings the commit
            await measure(rows, counter, "one new build: deploy", on, True)
            await measure(rows, counter, "steady state after it", on, True)
            await client.aclose()
    return rows


async def keyless(apps: int) -> list[Row]:
    """Every build attested by the deploy branch's workflow; a new build verified, then remembered."""
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-keyless-") as folder:
        work = Path(folder)
        isolate(work)
        sigstore = LocalSigstore()
        root_file = sigstore.write_trusted_root(work / "trusted_root.json")
        extra = f"  verify:\n    github:\n      repository: acme/homelab\n      trusted_root: {root_file}\n"
        with (
            RegistryServer(work / "registry", access_log=True) as registry,
            ImagePusher(registry.url) as pusher,
        ):

            def attested(image: PushedImage, sha: str) -> None:
                bundle = sigstore.attest(Run(commit=sha), image.repository, image.digest)
                attach(pusher, image, bundle)

            print(f"seeding {apps} apps, their builds attested …", file=sys.stderr, flush=True)
            root, names = seed(work, registry, pusher, apps, extra, attested)
            path = (root / "tagtrail.yaml").resolve()
            config = load_config(path)
            rows: list[Row] = []
            counter = Counter(registry.log_path)
            client = RegistryClient(config.registries)
            on, off = _on_and_off(config, path, client)
            await measure(rows, counter, "first reconcile (deploys every app)", on, True)
            with keyless_off():
                await off.plan(actor="bench")  # its first look (a HEAD per running tag), not measured
            counter.take()
            for verify, reconciler in ((False, off), (True, on)):
                with nullcontext() if verify else keyless_off():
                    await measure(rows, counter, "steady state (nothing new)", reconciler, True)
                rows[-1].checks = verify
            image, _ = new_build(work, pusher, names[0])
            attested(image, _)
            counter.take()
            await verification_alone(rows, counter, config, path, image)
            for scenario in ("one new build: plan", "the same build: plan again"):
                for verify, reconciler in ((False, off), (True, on)):
                    with nullcontext() if verify else keyless_off():
                        await plan(rows, counter, scenario, reconciler, True)  # the other checks on
                    rows[-1].checks = verify
            await measure(rows, counter, "one new build: deploy (after those)", on, True)
            await measure(rows, counter, "steady state after it", on, True)
            await client.aclose()
    return rows


async def verification_alone(
    rows: list[Row], counter: Counter, config: Any, path: Path, image: PushedImage
) -> None:
    """The verification step by itself, as the reconciler makes it for a new build (median of 5): its
    requests and time, without the rest of a reconcile's noise."""
    settings = config.deploy.verify.github
    wanted = expected(settings, config.deploy.verify.require, path.parent, lambda: None)
    ref = ImageRef.parse(f"{config.image_for(image.repository.rsplit('/', 1)[-1])}")
    times = []
    async with RegistryClient(config.registries) as client:
        for _ in range(5):
            started = time.perf_counter()
            found = await verify_attached(
                client, ref, image.digest, wanted.root, wanted.identity, wanted.require
            )
            times.append(time.perf_counter() - started)
            assert found.answer.refused is None, found.answer.detail
    requests, _ = counter.take()
    outcome = "proven" if found.answer.refused is None else str(found.answer.refused)
    rows.append(
        Row("its verification alone (median of 5)", True, requests // 5, 0, sorted(times)[2], outcome)
    )


def keyless_main(apps: int) -> int:
    rows = asyncio.run(keyless(apps))
    print(f"\n{'scenario (' + str(apps) + ' apps)':<40} {'verify':>6} {'requests':>9} {'wall s':>7}  outcome")
    for r in rows:
        print(
            f"{r.scenario:<40} {'on' if r.checks else 'off':>6} {r.requests:>9} {r.seconds:>7.2f}  {r.outcome}"
        )
    off, on = (r for r in rows if r.scenario == "one new build: plan")
    off_again, on_again = (r for r in rows if r.scenario == "the same build: plan again")
    [alone] = (r for r in rows if r.scenario.startswith("its verification alone"))
    steady = [r for r in rows if r.scenario.startswith("steady state") and r.checks]
    extra = max(r.requests for r in steady) - apps
    print(
        f"\nVerifying a new build adds {on.requests - off.requests} request(s) to its first plan; the"
        f" verification alone makes {alone.requests} and takes {alone.seconds * 1000:.0f} ms; once verified, a build costs"
        f" {on_again.requests - off_again.requests} request(s) more than without; the steady state"
        f" {extra} request(s) beyond the {apps} tag lists."
    )
    return 0 if extra <= 0 and on_again.requests <= off_again.requests else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="5 apps")
    parser.add_argument("--keyless", action="store_true", help="every build attested (deploy.verify.github)")
    args = parser.parse_args()
    apps = 5 if args.quick else args.apps
    if args.keyless:
        return keyless_main(apps)
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

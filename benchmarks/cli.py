"""Benchmark: tagtrail's CLI as a whole process, the way CI and people run it (issue 15).

1. `tagtrail plan --json` in a monorepo of A apps, each image repository in a real local registry (CNCF
   distribution) holding T tags (a share from other branches and older rebuilds), a deploy file naming every
   app, a git history the tags' commits are on. The baseline is the loop a user writes today, run in the
   same process tree: per repository `skopeo list-tags`, pick the newest main tag, `skopeo inspect` it.
   Both are timed from process start to exit (import included); requests are counted at the registry's
   access log. Peak RSS of plan is read from the kernel (the child's ru_maxrss). Beside them, the floor:
   a bare Python script (`_floor_client.py`) making the same requests and nothing else, with the standard
   library and with httpx (the HTTP library tagtrail uses). The images carry
   their revision as tagtrail build writes it, label and manifest annotation.
2. Start-up of the light commands (`--version`, `tag`, `tag parse`, `apps`, `config check`) against
   `python -c pass`, the interpreter's floor, in the same run; and, for reference, importing typer and
   pydantic alone, the least a command that validates tagtrail.yaml imports.
3. As `tagtrail serve` reconciles the larger case (one reconciler kept across polls): the first poll, which
   deploys every app, and the steady state, with the CPU seconds of each (the process's and its git's);
   then a `tagtrail serve` process on it, and its resident memory once idle after a reconcile.

Bytecode is compiled first, as `pip install` does for an installed package (this tree is an editable install,
and the machine may set PYTHONDONTWRITEBYTECODE, which would make every run compile tagtrail again).

Run it with `./scripts/bench cli` (`--quick` for 8 apps × 200 tags and fewer runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from registry_scan import count_requests, skopeo_loop  # the same baseline loop, counted the same way

from bench.isolate import isolate
from bench.serve import ServeProcess, wait_for
from tagtrail.adapters.registry import RegistryClient
from tagtrail.config import load_config
from tagtrail.domain.scheme import Scheme
from tagtrail.reconcile import Reconciler, Report
from tagtrail.targets.factory import open_project
from tagtrail_demo import ImagePusher, RegistryServer

ROOT = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)
TAGTRAIL = PYTHON.parent / "tagtrail"
FLOOR = Path(__file__).parent / "_floor_client.py"  # the same requests from a bare Python script
FLOOR_TOOL = "floor: bare Python script"
HTTPX_FLOOR_TOOL = "floor: bare httpx script"  # the same, through the HTTP library tagtrail uses
IMPORT_FLOOR = "floor: import typer+pydantic"  # what a command that validates the config imports at least
TEMPLATE = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
SCHEME = Scheme.compile(TEMPLATE)
OTHER_BRANCHES = ("feature/login", "dependabot/pip/apps/web/httpx-0.28.1", "fix/dst")
START = datetime(2025, 1, 1, tzinfo=UTC)
MAIN_BUILDS = 3  # per app: builds of main with their own image (revision label = the commit)


@dataclass
class Project:
    root: Path
    registry: RegistryServer
    winners: dict[str, str]  # app → the tag plan must choose


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def make_project(work: Path, registry: RegistryServer, apps: int, tags: int, rng: random.Random) -> Project:
    """A monorepo of `apps` apps with a deploy file pointing at a bootstrap tag and, per app, three commits
    on main and `tags` tags: one image per main build (labelled with its commit), the rest older rebuilds of
    those commits and builds of other branches, written as the registry's own tag links (pushing 50,000
    tags through the API would take longer than the benchmark)."""
    prefix = f"bench{apps}x{tags}"  # each case its own repositories
    root = work / prefix
    names = [f"app{n:03d}" for n in range(apps)]
    image = f"{registry.host}/{prefix}"
    _write(root, {f"apps/{a}/Dockerfile": "FROM scratch\n" for a in names})
    _write(
        root,
        {
            "tagtrail.yaml": (
                f'scheme: "{TEMPLATE}"\nimage: {image}/{{app}}\n'
                f'registries:\n  "{registry.host}": {{insecure: true}}\n'
                "apps:\n  root: apps\n"
                "deploy:\n  branch: main\n  cooldown: 0s\n  git:\n    files: [deploy/images.yaml]\n"
            ),
            "deploy/images.yaml": "".join(f"{a}:\n  image: {image}/{a}:bootstrap\n" for a in names),
        },
    )
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "the monorepo")
    winners = {}
    with ImagePusher(registry.url) as pusher:
        for app in names:
            commits = []
            for n in range(MAIN_BUILDS):  # each app built from commits of its own, as a monorepo's are
                _git(root, "commit", "-q", "--allow-empty", "-m", f"{app}: change {n}")
                commits.append(_git(root, "rev-parse", "HEAD"))
            repo = f"{prefix}/{app}"
            builds = []
            for index, sha in enumerate(commits):
                when = START + timedelta(days=300 + index)
                tag = SCHEME.format(branch="main", sha=sha, time=when)
                labels = {"org.opencontainers.image.revision": sha}
                builds.append(  # the revision as label and annotation, as tagtrail build writes it
                    pusher.push_image(repo, tag, created=when, labels=labels, annotations=labels)
                )
                winners[app] = tag
            links = registry.storage / "docker/registry/v2/repositories" / repo / "_manifests/tags"
            for _ in range(tags - MAIN_BUILDS):
                when = START + timedelta(seconds=rng.randrange(0, 299 * 86400))
                if rng.random() < 0.3:
                    branch, sha, digest = (
                        rng.choice(OTHER_BRANCHES),
                        f"{rng.getrandbits(160):040x}",
                        builds[0].digest,
                    )
                else:  # an older rebuild of one of the app's main commits
                    build = rng.randrange(MAIN_BUILDS)
                    branch, sha, digest = "main", commits[build], builds[build].digest
                tag = SCHEME.format(branch=branch, sha=sha, time=when)
                (links / tag / "current").mkdir(parents=True, exist_ok=True)
                (links / tag / "current" / "link").write_text(digest)
    return Project(root, registry, winners)


@dataclass
class Run:
    seconds: float
    peak_kib: int  # the child's ru_maxrss
    code: int
    stdout: str


def run(args: list[str], cwd: Path) -> Run:
    """One whole process, from start to exit, and its peak RSS as the kernel counted it."""
    started = time.perf_counter()
    child = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    with child.stdout:
        out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # reaped here, with its resource usage
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_maxrss, child.returncode, out)


@dataclass
class Poll:
    what: str
    wall: float
    cpu: float  # this process, every thread
    git_cpu: float  # the git processes it started
    requests: int


async def kept_polls(path: Path, log: Path, count: int) -> AsyncIterator[tuple[Report, Poll]]:
    """As tagtrail serve reconciles: one reconciler kept across `count` polls, a worktree kept; each poll's
    report and its costs (CPU of this process and of its git, requests at the registry's access log)."""
    config = load_config(path)
    offset = log.stat().st_size
    async with RegistryClient(config.registries) as client:
        reconciler = Reconciler(open_project(config, path, client, keep=True))
        for n in range(count):
            wall, cpu = time.perf_counter(), time.process_time()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            report = await reconciler.run(actor="bench", automatic=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            git_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
            requests, offset = count_requests(log, "tagtrail", offset)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            what = "first poll (deploys)" if n == 0 else "steady-state poll"
            yield report, Poll(what, wall, cpu, git_cpu, requests)


async def _polls(project: Project, steady: int) -> list[Poll]:
    """The first poll deploys every app, the next ones find nothing new."""
    polls = []
    async for report, poll in kept_polls(
        project.root / "tagtrail.yaml", project.registry.log_path, steady + 1
    ):
        if not polls:
            assert len(report.changed) == len(project.winners), "the first poll did not deploy every app"
        else:
            assert not report.changed, "a steady-state poll deployed"
        polls.append(poll)
    return polls


def serve_idle_rss(project: Project) -> float:
    """VmRSS (MiB) of a `tagtrail serve` process on the project, idle after its first reconcile."""
    serve = ServeProcess(project.root).start()
    try:
        return idle_rss(serve)
    finally:
        serve.stop()


def idle_rss(serve: ServeProcess) -> float:
    """VmRSS (MiB) of a running `tagtrail serve`, idle after its first reconcile."""
    wait_for(lambda: serve.metric("tagtrail_reconciles_total", result="ok") >= 1, 120, "a reconcile")
    time.sleep(2)
    assert serve.process is not None
    status = Path(f"/proc/{serve.process.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024


@dataclass
class Row:
    case: str
    tool: str
    seconds: float
    requests: int
    repos: int
    peak_mib: float = 0.0


def plan_case(project: Project, runs: int) -> list[Row]:
    """`tagtrail plan --json` `runs` times (the first with an empty decision log), then the skopeo loop."""
    apps, tags = len(project.winners), project.root.name.removeprefix("bench").split("x")[1]
    case, log = f"{apps} x {tags}", project.registry.log_path
    offset = log.stat().st_size
    times, peaks, requests = [], [], []
    for _ in range(runs):
        done = run([str(TAGTRAIL), "plan", "--json"], project.root)
        assert done.code == 0, f"tagtrail plan exited {done.code}"
        chosen = {p["app"]: p["target"]["tag"] for p in json.loads(done.stdout)}
        assert chosen == project.winners, "tagtrail planned another tag than the newest build of main"
        count, offset = count_requests(log, "tagtrail", offset)
        times.append(done.seconds)
        peaks.append(done.peak_kib)
        requests.append(count)
    ours = Row(case, "tagtrail plan --json", statistics.median(times), max(requests), apps, max(peaks) / 1024)
    prefix = project.root.name
    repos = [f"{prefix}/{app}" for app in sorted(project.winners)]
    base_times = []
    for _ in range(max(1, runs // 2)):
        started = time.perf_counter()
        theirs = skopeo_loop(project.registry.host, repos)
        base_times.append(time.perf_counter() - started)
        assert {r.rsplit("/", 1)[1]: tag for r, (tag, _) in theirs.items()} == project.winners
    count, offset = count_requests(log, "skopeo", offset)
    base = Row(
        case, "skopeo list-tags + inspect", statistics.median(base_times), count // len(base_times), apps
    )
    floors = []
    for tool, flags in ((FLOOR_TOOL, []), (HTTPX_FLOOR_TOOL, ["--httpx"])):
        floor_times = []
        for _ in range(runs):
            done = run([str(PYTHON), str(FLOOR), *flags, project.registry.host, *repos], project.root)
            assert done.code == 0, f"the floor client exited {done.code}"
            found = {line.split()[0].rsplit("/", 1)[1]: line.split()[1] for line in done.stdout.splitlines()}
            assert found == project.winners, "the floor client found other tags"
            floor_times.append(done.seconds)
        count, offset = count_requests(log, "floor", offset)
        floors.append(Row(case, tool, statistics.median(floor_times), count // runs, apps))
    return [ours, base, *floors]


def startup(project: Path, runs: int) -> list[tuple[str, float]]:
    """Median wall time of each light command, whole process, beside `python -c pass`."""
    commands = {
        "python -c pass": [str(PYTHON), "-c", "pass"],
        "tagtrail --version": [str(TAGTRAIL), "--version"],
        "tagtrail tag": [str(TAGTRAIL), "tag"],
        "tagtrail tag parse": [
            str(TAGTRAIL),
            "tag",
            "parse",
            "--scheme",
            TEMPLATE,
            "main.20251014-051038.185c95c",
        ],
        "tagtrail apps": [str(TAGTRAIL), "apps"],
        "tagtrail config check": [str(TAGTRAIL), "config", "check"],
        IMPORT_FLOOR: [str(PYTHON), "-c", "import typer\nfrom pydantic import BaseModel"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so that a busy moment of the machine weighs on every command alike
        for name, args in commands.items():
            done = run(args, project)
            assert done.code == 0, f"{name} exited {done.code}"
            times[name].append(done.seconds)
    return [(name, statistics.median(found)) for name, found in times.items()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="8 apps x 200 tags, fewer runs")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (the median is shown)")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo is not installed: run ./scripts/setup", file=sys.stderr)
        return 1
    cases = [(8, 200)] if args.quick else [(8, 1000), (50, 1000)]
    runs = args.runs or (2 if args.quick else 5)
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(ROOT / "src" / "tagtrail")], check=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-cli-", dir=os.environ.get("TMPDIR")) as folder:
        work = Path(folder)
        with isolated(work), RegistryServer(work / "registry", access_log=True) as registry:
            projects = []
            for apps, tags in cases:
                print(f"seeding {apps} apps x {tags} tags …", file=sys.stderr, flush=True)
                projects.append(make_project(work, registry, apps, tags, random.Random(f"{apps}x{tags}")))
            print("timing the light commands …", file=sys.stderr, flush=True)
            started = startup(projects[0].root, runs * 3)
            for project in projects:
                print(f"timing plan at {project.root.name} …", file=sys.stderr, flush=True)
                rows += plan_case(project, runs)
            print(
                f"reconciling {projects[-1].root.name} as tagtrail serve does …", file=sys.stderr, flush=True
            )
            polls = asyncio.run(_polls(projects[-1], runs))
            rss = serve_idle_rss(projects[-1])
    print_tables(rows, started)
    print_polls(polls, projects[-1])
    print(f"idle RSS of tagtrail serve with {len(projects[-1].winners)} apps: {rss:.0f} MiB (goal < 100 MiB)")
    return 0 if check_goals(rows, started) and rss < 100 else 1


@contextmanager
def isolated(work: Path) -> Iterator[None]:
    """A HOME, decision log and git identity of the benchmark's own, for as long as it runs."""
    saved = dict(os.environ)
    isolate(work)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def print_tables(rows: list[Row], started: list[tuple[str, float]]) -> None:
    print(
        f"\n{'case':<12} {'tool':<28} {'wall s':>8} {'requests':>9} {'req/repo':>9} {'peak RSS':>9} {'vs skopeo':>10}"
    )
    for row in rows:
        base = next(r for r in rows if r.case == row.case and r.tool.startswith("skopeo"))
        rss = f"{row.peak_mib:.0f} MiB" if row.peak_mib else "-"
        print(
            f"{row.case:<12} {row.tool:<28} {row.seconds:>8.2f} {row.requests:>9} {row.requests / row.repos:>9.2f}"
            f" {rss:>9} {base.seconds / row.seconds:>9.1f}x"
        )
    floor = started[0][1]
    print(f"\n{'start-up (whole process)':<28} {'ms':>8} {'vs python -c pass':>18}")
    for name, seconds in started:
        print(f"{name:<28} {seconds * 1000:>8.1f} {seconds / floor:>17.1f}x")


def print_polls(polls: list[Poll], project: Project) -> None:
    steady = [p for p in polls if p.what.startswith("steady")]
    print(
        f"\n{'tagtrail serve, ' + project.root.name.removeprefix('bench'):<28} {'wall s':>8} {'CPU s':>8} {'git CPU s':>10} {'requests':>9}"
    )
    for poll in [polls[0], *steady[:1]]:
        print(f"{poll.what:<28} {poll.wall:>8.3f} {poll.cpu:>8.3f} {poll.git_cpu:>10.3f} {poll.requests:>9}")
    if steady:
        cpu = statistics.median(p.cpu + p.git_cpu for p in steady)
        print(
            f"CPU seconds per steady-state reconcile of {len(project.winners)} apps (median of {len(steady)}): {cpu:.3f}"
        )


def check_goals(rows: list[Row], started: list[tuple[str, float]]) -> bool:
    """Each of issue 15's goals with its measured value; true when all are met."""
    ok = True
    print()
    goals = {"8 x 1000": 3.0, "50 x 1000": 10.0}
    for case in dict.fromkeys(r.case for r in rows):
        ours, base, bare, bare_httpx = (r for r in rows if r.case == case)
        ratio, goal = base.seconds / ours.seconds, goals.get(case)
        fine = goal is None or ratio >= goal
        ok &= fine
        print(
            f"plan at {case}: {ratio:.1f}x the skopeo loop (goal {f'>= {goal:.0f}x' if goal else 'none at this size'}),"
            f" {ours.requests / ours.repos:.0f} requests per repository, peak RSS {ours.peak_mib:.0f} MiB"
            f" {'✓' if fine else '✗'}"
        )
        print(
            f"  (the floor, a bare Python script making the same requests: {base.seconds / bare.seconds:.1f}x"
            f" the skopeo loop, {bare.seconds * 1000:.0f} ms; tagtrail plan takes {ours.seconds / bare.seconds:.1f}x the floor)"
        )
        print(
            f"  (the same requests through httpx, the HTTP library tagtrail uses, in a bare script:"
            f" {base.seconds / bare_httpx.seconds:.1f}x the skopeo loop, {bare_httpx.seconds * 1000:.0f} ms)"
        )
    floor = started[0][1]
    for name, seconds in started[1:]:
        if name == IMPORT_FLOOR:
            print(f"({name}: {seconds / floor:.1f}x python -c pass, before any work)")
            continue
        fine = seconds / floor <= 8
        ok &= fine
        print(f"{name}: {seconds / floor:.1f}x python -c pass (goal <= 8x) {'✓' if fine else '✗'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())

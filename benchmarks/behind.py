"""Benchmark: what being behind costs (issue 25). Every app runs a build of the scheme far below its newest,
as on the first day a team adopts tagtrail, after a pin is released, or when a cluster was down for a week.

A monorepo in which every build is of a real commit on main (tests/bench/behind.py), a real local registry
(CNCF distribution), `tagtrail plan --json` as a whole process; git processes counted by a `git` on PATH
that logs each one, requests at the registry's access log. Side by side in one run:
1. 8 apps × 1,000 builds, each ~900 behind, against the same plan from `bootstrap` references (not builds of
   the scheme: nothing to ask git) and the skopeo loop (`skopeo list-tags` + `skopeo inspect` per repository).
2. 500 apps × 60 builds, each 50 behind, against the skopeo loop over the same 500 repositories; then
   `tagtrail serve` on it: the time from its start to its deploy commit, polls of a kept reconciler once
   nothing is new (CPU and requests), and its resident memory idle.
3. One app 1,000 builds behind whose newer builds are all refused (their commits are on no deploy branch),
   so the policy walks them on every look: plan, and polls of a kept reconciler.
4. With 30 ms added to every registry request (a delaying proxy on loopback), 50 apps × 1,000 builds each
   ~900 behind, against the skopeo loop through the same proxy.

Run it with `./scripts/bench behind` (`--quick` for small sizes, `--runs N`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from cli import ROOT, TAGTRAIL, idle_rss, isolated, kept_polls, run
from push_to_deploy import wait_ref_change
from registry_scan import count_requests, skopeo_loop

from bench.behind import REVISION, SCHEME, Behind, logging_git, make_behind
from bench.serve import WEBHOOK_TOKEN, ServeProcess, wait_for
from bench.tcpproxy import TcpProxy
from tagtrail_demo import ImagePusher, RegistryServer

LATENCY = 0.030
TOKEN = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}


@dataclass
class Row:
    case: str
    tool: str
    seconds: float
    requests: int = 0
    git: int = 0
    repos: int = 1
    note: str = ""


@dataclass
class Bench:
    registry: RegistryServer
    git_log: Path
    runs: int
    rows: list[Row] = field(default_factory=list)
    goals: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def gits(self) -> int:
        """git processes started since the last call."""
        count = len(self.git_log.read_text().splitlines()) if self.git_log.exists() else 0
        self.git_log.unlink(missing_ok=True)
        return count

    def goal(self, text: str, met: bool) -> None:
        self.goals.append((f"{text} {'✓' if met else '✗'}", met))


def plans(bench: Bench, items: list[tuple[Behind, str, str]]) -> list[Row]:
    """`tagtrail plan --json` of each project, once unmeasured (the page cache warmed alike), then `runs`
    rounds interleaved, so that a busy moment of the machine weighs on each alike: per project the median
    wall time, and the requests and git processes of one plan."""
    log = bench.registry.log_path
    found: list[tuple[list[float], list[int], list[int]]] = [([], [], []) for _ in items]
    for n in range(bench.runs + 1):
        for (project, _, _), (times, requests, gits) in zip(items, found, strict=True):
            offset = log.stat().st_size
            bench.gits()
            done = run([str(TAGTRAIL), "plan", "--json"], project.root)
            assert done.code == 0, f"tagtrail plan exited {done.code}"
            chosen = {p["app"]: (p["target"] or {}).get("tag") for p in json.loads(done.stdout)}
            assert set(chosen) == set(project.newest)
            if n:
                times.append(done.seconds)
                requests.append(count_requests(log, "tagtrail", offset)[0])
                gits.append(bench.gits())
    rows = [
        Row(case, tool, statistics.median(times), max(requests), max(gits), len(project.newest))
        for (project, case, tool), (times, requests, gits) in zip(items, found, strict=True)
    ]
    bench.rows += rows
    return rows


def plan(bench: Bench, project: Behind, case: str) -> Row:
    return plans(bench, [(project, case, "tagtrail plan --json")])[0]


def skopeo(bench: Bench, project: Behind, case: str, host: str | None = None) -> Row:
    log, offset = bench.registry.log_path, bench.registry.log_path.stat().st_size
    started = time.perf_counter()
    found = skopeo_loop(host or bench.registry.host, project.repositories)
    seconds = time.perf_counter() - started
    assert {r.rsplit("/", 1)[1]: tag for r, (tag, _) in found.items()} == project.newest
    requests, _ = count_requests(log, "skopeo", offset)
    row = Row(case, "skopeo list-tags + inspect", seconds, requests, 0, len(project.newest))
    bench.rows.append(row)
    return row


async def polls(bench: Bench, project: Behind, case: str, count: int, *, deploys: bool) -> list[Row]:
    """As `tagtrail serve` reconciles: one reconciler kept across polls, the first (deploying every app
    where `deploys`), then `count` finding nothing new. CPU is this process's and its git's."""
    rows: list[Row] = []
    bench.gits()
    async for report, poll in kept_polls(project.root / "tagtrail.yaml", bench.registry.log_path, count + 1):
        expected = len(project.newest) if deploys and not rows else 0
        assert len(report.changed) == expected, f"poll {len(rows)} deployed {len(report.changed)}"
        what = "first poll" if not rows else "steady poll"
        cpu = f"{poll.cpu + poll.git_cpu:.3f} CPU s"
        rows.append(
            Row(
                case,
                f"{what} (kept reconciler)",
                poll.wall,
                poll.requests,
                bench.gits(),
                len(project.newest),
                cpu,
            )
        )
    bench.rows += rows[:2]
    return rows


def serve_first_deploy(project: Behind) -> tuple[float, float]:
    """Seconds from starting `tagtrail serve` to its deploy commit, and its RSS (MiB) idle afterwards."""
    head = _head(project.root)
    started = time.perf_counter()
    serve = ServeProcess(project.root).start(ready=False)
    try:
        wait_for(lambda: _head(project.root) != head, 300, "the deploy commit")
        seconds = time.perf_counter() - started
        rss = idle_rss(serve)
    finally:
        serve.stop()
    return seconds, rss


def _head(root: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def first_adoption(bench: Bench, work: Path, pusher: ImagePusher, builds: int) -> None:
    behind = builds * 9 // 10
    case = f"8 x {builds}"
    far = make_behind(
        work, bench.registry, pusher, apps=8, builds=builds, behind=behind, prefix=f"far{builds}"
    )
    boot = make_behind(
        work, bench.registry, pusher, apps=8, builds=builds, behind=None, prefix=f"boot{builds}"
    )
    ours, base = plans(
        bench,
        [
            (far, f"{case}, {behind} behind", "tagtrail plan --json"),
            (boot, f"{case}, {behind} behind", "tagtrail plan --json, bootstrap"),
        ],
    )
    loop = skopeo(bench, far, f"{case}, {behind} behind")
    ratio = ours.seconds / base.seconds
    bench.goal(
        f"plan at {case}, {behind} behind: {ratio:.2f}x the plan from bootstrap (goal ≤ 1.5x)", ratio <= 1.5
    )
    bench.goal(f"plan at {case}, {behind} behind: {ours.git} git processes (goal ≤ 10)", ours.git <= 10)
    bench.notes.append(
        f"plan at {case}: {loop.seconds / ours.seconds:.1f}x the skopeo loop {behind} behind,"
        f" {loop.seconds / base.seconds:.1f}x from bootstrap (on loopback at 8 repositories that is start-up:"
        " ./scripts/bench cli keeps that goal)"
    )


def many_apps(bench: Bench, work: Path, pusher: ImagePusher, apps: int, builds: int, behind: int) -> None:
    case = f"{apps} x {builds}, {behind} behind"
    project = make_behind(
        work, bench.registry, pusher, apps=apps, builds=builds, behind=behind, prefix=f"many{apps}"
    )
    ours = plan(bench, project, case)
    loop = skopeo(bench, project, case)
    bench.goal(
        f"plan at {case}: {loop.seconds / ours.seconds:.1f}x faster than the skopeo loop (goal ≥ 3x)",
        loop.seconds / ours.seconds >= 3,
    )
    seconds, rss = serve_first_deploy(project)
    bench.rows.append(
        Row(case, "tagtrail serve: start → deploy commit", seconds, 0, 0, apps, f"idle RSS {rss:.0f} MiB")
    )
    bench.goal(f"serve at {case}: deploy commit {seconds:.1f} s after start (goal ≤ 10 s)", seconds <= 10)
    bench.goal(f"serve at {case}: idle RSS {rss:.0f} MiB (goal < 150 MB)", rss < 150)
    subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=project.root, check=True)  # behind again
    steady = asyncio.run(polls(bench, project, case, bench.runs, deploys=True))[1:]
    cpu = statistics.median(float(r.note.split()[0]) for r in steady) * 1000 / apps
    requests = max(r.requests for r in steady) / apps
    bench.goal(
        f"steady poll at {apps} apps: {cpu:.2f} ms CPU per app (goal ≤ 2), {requests:.2f} requests per repository (goal ≤ 1)",
        cpu <= 2 and requests <= 1,
    )


def refused(bench: Bench, work: Path, pusher: ImagePusher, builds: int) -> None:
    case = f"1 x {builds}, {builds - 1} refused"
    project = make_behind(
        work,
        bench.registry,
        pusher,
        apps=1,
        builds=builds,
        behind=builds - 1,
        prefix=f"refused{builds}",
        refused=True,
    )
    ours = plan(bench, project, case)
    rows = asyncio.run(polls(bench, project, case, bench.runs, deploys=False))
    most = max(r.git for r in rows)
    steady = statistics.median(float(r.note.split()[0]) for r in rows[1:]) * 1000
    bench.notes.append(
        f"{case}: plan {ours.seconds:.2f} s with {ours.git} git processes; a kept reconciler's poll at most"
        f" {most} git processes, {steady:.0f} ms CPU (no goal set: the same at 100 and 1,000 builds refused)"
    )


def latency(bench: Bench, work: Path, pusher: ImagePusher, apps: int, builds: int) -> None:
    behind = builds * 9 // 10
    case = f"{apps} x {builds}, +{LATENCY * 1000:.0f} ms"
    host, _, port = bench.registry.host.rpartition(":")
    with TcpProxy(host, int(port), latency=LATENCY) as proxy:
        project = make_behind(
            work,
            bench.registry,
            pusher,
            apps=apps,
            builds=builds,
            behind=behind,
            prefix=f"slow{apps}",
            host=proxy.host,
        )
        ours = plan(bench, project, case)
        loop = skopeo(bench, project, case, proxy.host)
    bench.goal(
        f"plan at {case}: {loop.seconds / ours.seconds:.1f}x faster than the skopeo loop (goal ≥ 10x)",
        loop.seconds / ours.seconds >= 10,
    )


def push_to_commit(bench: Bench, work: Path, pusher: ImagePusher, sizes: list[int], pushes: int) -> None:
    """`tagtrail serve` on A apps, all up to date; then, one after another, a commit of one app, its image
    pushed and a generic webhook sent: the time from the push to the deploy commit, per A."""
    p50s = {}
    for apps in sizes:
        project = make_behind(
            work, bench.registry, pusher, apps=apps, builds=5, behind=0, prefix=f"push{apps}"
        )
        root, names = project.root, sorted(project.newest)
        serve = ServeProcess(root).start()
        try:
            wait_for(lambda: serve.metric("tagtrail_reconciles_total", result="ok") >= 1, 300, "a reconcile")  # noqa: B023
            latencies = []
            for n in range(pushes):
                app = names[n * 7 % apps]
                subprocess.run(
                    ["git", "commit", "-q", "--allow-empty", "-m", f"{app}: push {n}"], cwd=root, check=True
                )
                head = _head(root)
                tag = SCHEME.format(branch="main", sha=head, time=datetime.now(UTC).replace(microsecond=0))
                label = {REVISION: head}
                pusher.push_image(f"{project.prefix}/{app}", tag, labels=label, annotations=label)
                accepted = time.perf_counter()
                image = f"{bench.registry.host}/{project.prefix}/{app}"
                hook = serve.post("/hooks/generic", json={"image": image, "tag": tag}, headers=TOKEN)
                assert hook.status_code == 202, hook.text
                # the branch's ref file, read every millisecond: a 50 ms poll of `git rev-parse` rounded each
                # push up to its next poll, which told 8 apps from 500 by whole polls, not milliseconds
                latencies.append(wait_ref_change(root / ".git", head, 60) - accepted)
                time.sleep(0.3)  # its snapshot and fast-forward done, as between two pushes
        finally:
            serve.stop()
        p50s[apps] = statistics.median(latencies)
        note = f"p50 {p50s[apps] * 1000:.0f} ms, p95 {sorted(latencies)[round(0.95 * (len(latencies) - 1))] * 1000:.0f} ms"
        bench.rows.append(
            Row(f"push at {apps} apps", "push → deploy commit (p50)", p50s[apps], 0, 0, apps, note)
        )
    small, large = min(p50s), max(p50s)
    ratio = p50s[large] / p50s[small]
    bench.goal(
        f"push → deploy commit at {large} apps: {ratio:.2f}x the p50 at {small} (goal ≤ 1.5x)", ratio <= 1.5
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (8 x 100, 40 x 20, 1 x 100, 8 x 100)"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (the median is shown)")
    parser.add_argument("--only", choices=["adoption", "many", "refused", "push", "latency"], action="append")
    parser.add_argument("--pushes", type=int, default=10, help="pushes per size in the push case")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo is not installed: run ./scripts/setup", file=sys.stderr)
        return 1
    runs = args.runs or (1 if args.quick else 3)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "tagtrail")], check=True)
    only = set(args.only or ["adoption", "many", "refused", "push", "latency"])
    with tempfile.TemporaryDirectory(prefix="tagtrail-bench-behind-", dir=os.environ.get("TMPDIR")) as folder:
        work = Path(folder)
        with isolated(work), RegistryServer(work / "registry", access_log=True) as registry:
            path, git_log = logging_git(work / "logging-git")
            os.environ["PATH"] = f"{path}{os.pathsep}{os.environ['PATH']}"
            bench = Bench(registry, git_log, runs)
            with ImagePusher(registry.url) as pusher:
                for name, step in (
                    ("adoption", lambda: first_adoption(bench, work, pusher, 100 if args.quick else 1000)),
                    (
                        "many",
                        lambda: many_apps(
                            bench, work, pusher, *((40, 20, 10) if args.quick else (500, 60, 50))
                        ),
                    ),
                    ("refused", lambda: refused(bench, work, pusher, 100 if args.quick else 1000)),
                    (
                        "push",
                        lambda: push_to_commit(
                            bench, work, pusher, [8, 40] if args.quick else [8, 50, 500], args.pushes
                        ),
                    ),
                    (
                        "latency",
                        lambda: latency(bench, work, pusher, *((8, 100) if args.quick else (50, 1000))),
                    ),
                ):
                    if name in only:
                        print(f"{name} …", file=sys.stderr, flush=True)
                        step()
    print_table(bench)
    return 0 if all(met for _, met in bench.goals) else 1


def print_table(bench: Bench) -> None:
    print(f"\n{'case':<26} {'tool':<40} {'wall s':>8} {'requests':>9} {'git':>5} {'vs skopeo':>10}  note")
    for row in bench.rows:
        base = next((r for r in bench.rows if r.case == row.case and r.tool.startswith("skopeo")), None)
        ratio = f"{base.seconds / row.seconds:.1f}x" if base else "-"
        print(
            f"{row.case:<26} {row.tool:<40} {row.seconds:>8.2f} {row.requests:>9} {row.git:>5} {ratio:>10}  {row.note}"
        )
    print()
    for text, _ in bench.goals:
        print(text)
    for text in bench.notes:
        print(text)


if __name__ == "__main__":
    sys.exit(main())

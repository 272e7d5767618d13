"""Benchmark: delivery insights over a long deploy history (10,000 deploy commits by default).

A repository is generated with `git fast-import`: per deploy, a source commit of one of the apps (on
branch `source`) and the deploy commit (on `main`) that moves the app to its build, with tagtrail's
trailers; every 40th deploy is a rollback,
every 97th a hand edit without trailers (read by diffing the files), every 13th source commit is
dependabot's. It then times

- `tagtrail report` as a whole process (a subprocess: interpreter start and imports included), median of
  a few runs; goal: under 2 s;
- the dashboard's insights page (`GET /insights`, server time in-process): the first view after a deploy
  (reads git) and a cached one; goal for the cached page: under 200 ms.

Run it with `./scripts/bench report` (`--quick` for a small history: checks it works, not the goals).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail.domain.scheme import Scheme

SCHEME_TEXT = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
SCHEME = Scheme.compile(SCHEME_TEXT)
START = datetime(2024, 1, 1, tzinfo=UTC)
CLI_GOAL = 2.0
PAGE_GOAL = 0.2
TAGTRAIL = Path(sys.executable).with_name("tagtrail")


def config_text() -> str:
    return (
        f'scheme: "{SCHEME_TEXT}"\nimage: registry.test/acme/{{app}}\n'
        "deploy:\n  git:\n    files: [deploy.yaml]\n    push: false\nserve:\n  public: true\n"
    )


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"


def _commit(
    out: list[bytes], branch: str, mark: int, when: datetime, author: str, message: str, files: dict[str, str]
) -> None:
    stamp = f"{int(when.timestamp())} +0000"
    out.append(f"commit refs/heads/{branch}\nmark :{mark}\n".encode())
    out.append(f"author {author} {stamp}\ncommitter {author} {stamp}\n".encode())
    out.append(_data(message))
    for path, text in files.items():
        out.append(f"M 644 inline {path}\n".encode() + _data(text))
    out.append(b"\n")


def _import(root: Path, stream: list[bytes], marks: Path | None = None) -> dict[int, str]:
    args = ["git", "fast-import", "--quiet"] + ([f"--export-marks={marks}"] if marks else [])
    subprocess.run(args, cwd=root, input=b"".join(stream), check=True, env=_git_env())
    if marks is None:
        return {}
    pairs = (line.split() for line in marks.read_text().splitlines())
    return {int(mark[1:]): sha for mark, sha in pairs}


def generate(root: Path, deploys: int, apps: int, seed: int = 18) -> dict[str, int]:
    """The repository at `root`: the source commits on branch `source`, the deploy commits on `main`
    (two fast-imports: a deploy commit names its build's sha, known once the source commits exist).
    Returns what it holds."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    names = [f"app{n:02d}" for n in range(apps)]
    person = "Dev <dev@example.com>"
    bot = "dependabot[bot] <bot@users.noreply.github.com>"
    plan = []  # (app, source time, lead)
    source: list[bytes] = []
    clock = START
    for n in range(deploys):
        app = names[rng.randrange(apps)]
        clock += timedelta(minutes=rng.randrange(5, 120))
        files = {f"apps/{app}/src.txt": f"{n}\n"}
        _commit(source, "source", n + 1, clock, bot if n % 13 == 0 else person, f"{app}: change {n}", files)
        plan.append((app, clock, timedelta(minutes=rng.randrange(10, 3 * 24 * 60))))
    shas = _import(root, source, root.parent / "marks")
    stream: list[bytes] = []
    _commit(
        stream, "main", 1, START, person, "initial", {"tagtrail.yaml": config_text(), "deploy.yaml": "{}\n"}
    )
    images: dict[str, str] = {}
    built: dict[str, list[int]] = {name: [] for name in names}
    counts = {"deploys": 0, "rollbacks": 0, "manual": 0}
    landed = START
    for n, (app, when, lead) in enumerate(plan):
        built[app].append(n)
        rollback = n % 40 == 39 and len(built[app]) > 2
        manual = n % 97 == 96
        index = built[app][-3] if rollback else n
        sha = shas[index + 1]
        tag = SCHEME.format(branch="main", sha=sha, time=plan[index][1] + timedelta(minutes=8))
        before = images.get(app)
        images[app] = f"registry.test/acme/{app}:{tag}@sha256:{index:064x}"
        text = "".join(f"{name}:\n  image: {ref}\n" for name, ref in sorted(images.items()))
        reason = "rollback" if rollback else "newer-build"
        if manual:
            message = f"bump {app} by hand"
            counts["manual"] += 1
        else:
            message = (
                f"deploy: {app} {tag}\n\n{app}: {before or 'nothing'}\n\n"
                f"Tagtrail-App: {app}\nTagtrail-From: {before or 'none'}\nTagtrail-To: {images[app]}\n"
                f"Tagtrail-Commit: {sha}\nTagtrail-Reason: {reason}\nTagtrail-Actor: tagtrail serve\n"
            )
        counts["rollbacks" if rollback else "deploys"] += 1
        # deploy commits land in order: a rollback soon after the deploy it undoes, a deploy after its lead
        landed = (
            landed + timedelta(minutes=30) if rollback else max(when + lead, landed + timedelta(minutes=1))
        )
        _commit(stream, "main", n + 2, landed, person, message, {"deploy.yaml": text})
    _import(root, stream)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=root, check=True)
    return counts


def _git_env() -> dict[str, str]:
    return {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}


def time_cli(root: Path, runs: int) -> tuple[float, float, dict[str, object]]:
    """Median wall and CPU seconds (user + system, its git processes included) of the whole process."""
    env = {**os.environ, "XDG_STATE_HOME": str(root.parent / "state")}
    samples = []
    cpu = []
    out = ""
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [str(TAGTRAIL), "report", "--since", "3650d", "--json"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out = done.stdout
    return statistics.median(samples), statistics.median(cpu), json.loads(out)


def time_floor(runs: int) -> tuple[float, float]:
    """What every command pays before it starts: the interpreter and the CLI's imports."""
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([str(TAGTRAIL), "--version"], capture_output=True, check=True)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(wall), statistics.median(cpu)


def time_page(root: Path, runs: int) -> tuple[float, float, int]:
    """Server time of GET /insights in-process (no sockets): the first view after a deploy (reads git)
    and the median of cached ones."""
    import asyncio  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    from tagtrail.serve.controller import Controller  # noqa: PLC0415
    from tagtrail.serve.web.app import create_app  # noqa: PLC0415

    os.environ["XDG_STATE_HOME"] = str(root.parent / "state")
    app = create_app(Controller(root / "tagtrail.yaml"), {}, run=False)

    async def measure() -> tuple[float, float, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dash.test") as client:
            started = time.perf_counter()
            first = await client.get("/insights?since=3650d")
            cold = time.perf_counter() - started
            assert first.status_code == 200, first.text[:500]
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                page = await client.get("/insights?since=3650d")
                samples.append(time.perf_counter() - started)
                assert page.status_code == 200
            return cold, statistics.median(samples), len(page.content)

    return asyncio.run(measure())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deploys", type=int, default=10_000)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 deploys, one run: it works, no goals")
    args = parser.parse_args()
    if args.quick:
        args.deploys, args.runs = 300, 1
    with tempfile.TemporaryDirectory(prefix="tagtrail-report-") as folder:
        root = Path(folder) / "mono"
        started = time.perf_counter()
        counts = generate(root, args.deploys, args.apps)
        made = time.perf_counter() - started
        cli, cli_cpu, data = time_cli(root, args.runs)
        floor, floor_cpu = time_floor(args.runs)
        cold, warm, size = time_page(root, max(args.runs, 5))
    overall = data["overall"]
    read = data["read"]
    assert isinstance(overall, dict)
    assert isinstance(read, dict)
    print(f"\nhistory: {args.deploys} deploy commits of {args.apps} apps ({counts['rollbacks']} rollbacks,")
    print(
        f"{counts['manual']} by hand), generated in {made:.1f} s; read {read['from_trailers']} commits from"
    )
    print(f"trailers, {read['diffed']} by diffing the files")
    print(f"\n{'measure':<40} {'seconds':>8} {'goal':>6}  met")
    rows = [
        ("tagtrail report (whole process)", cli, CLI_GOAL),
        ("  its CPU time (user + system, with git)", cli_cpu, None),
        ("  floor: tagtrail --version (imports)", floor, None),
        ("  floor's CPU time", floor_cpu, None),
        ("GET /insights, first view after a deploy", cold, None),
        ("GET /insights, cached", warm, PAGE_GOAL),
    ]
    met = True
    for name, seconds, goal in rows:
        ok = goal is None or seconds < goal
        met = met and ok
        print(f"{name:<40} {seconds:>8.3f} {goal if goal else '-':>6}  {'yes' if ok else 'NO'}")
    print(
        f"\nreport: {overall['deploys']} deploys, {overall['restores']} restores, change failure rate"
        f" {overall['change_failure_rate']:.1%}; page {size // 1024} KiB. Median of {args.runs} runs;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times grow with it)."
    )
    counted = overall["deploys"] + overall["restores"]  # type: ignore[operator]
    if counted != args.deploys:
        print(f"expected {args.deploys} changes, the report counted {counted}")
        return 1
    return 0 if met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())

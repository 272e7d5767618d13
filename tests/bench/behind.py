"""A monorepo whose apps run builds of the scheme far behind their newest, as on the first day a team adopts
tagtrail (the deploy files already name builds), after a pin is released or a cluster was down for a week.

Every build is of a real commit on main, made in bulk with `git fast-import` (thousands of commits in a
second), one app's commit after another's as a monorepo's history interleaves them. Each app's repository in
the real registry holds two images: its newest build (labelled with its commit, as `tagtrail build` labels
it) and one that every older tag points at, written as the registry's own tag links (pushing 30,000 tags
through the API would take longer than the benchmark).

With `refused`, the builds newer than what runs are of commits on a branch never merged into main: each is
refused (commit-not-on-branch) and the app holds, so the policy walks all of them on every look.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.git import git, init_repo
from tagtrail.adapters.registry import RegistryClient
from tagtrail.config import load_config
from tagtrail.domain.scheme import Scheme
from tagtrail.reconcile import Reconciler
from tagtrail.targets.factory import open_project
from tagtrail_demo import ImagePusher, RegistryServer

TEMPLATE = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
SCHEME = Scheme.compile(TEMPLATE)
START = datetime(2025, 1, 1, tzinfo=UTC)
REVISION = "org.opencontainers.image.revision"


@dataclass
class Behind:
    root: Path
    registry: RegistryServer
    prefix: str
    newest: dict[str, str]  # app → its newest build (what plan chooses, unless refused)
    running: dict[str, str]  # app → the tag its deploy file names

    @property
    def repositories(self) -> list[str]:
        return [f"{self.prefix}/{app}" for app in sorted(self.newest)]


def config_text(host: str, image: str, extra: str = "") -> str:
    return (
        f'scheme: "{TEMPLATE}"\nimage: {image}/{{app}}\n'
        f'registries:\n  "{host}": {{insecure: true}}\n'
        "apps:\n  root: apps\n"
        f"deploy:\n  branch: main\n  cooldown: 0s\n  git:\n    files: [deploy/images.yaml]\n{extra}"
    )


def make_behind(
    work: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    *,
    apps: int,
    builds: int,
    behind: int | None,
    prefix: str,
    refused: bool = False,
    extra: str = "",
    host: str | None = None,
) -> Behind:
    """`apps` apps of `builds` builds each, every app running the build `behind` builds below its newest
    (None: a `bootstrap` reference, not a build of the scheme). `host`: the registry's address in the
    files (a proxy in front of it), where it is not the registry's own."""
    names = [f"app{n:03d}" for n in range(apps)]
    image = f"{host or registry.host}/{prefix}"
    files = {f"apps/{a}/Dockerfile": "FROM scratch\n" for a in names}
    files["tagtrail.yaml"] = config_text(host or registry.host, image, extra)
    root = init_repo(work / prefix, files, "the monorepo")
    running_at = builds - 1 - behind if behind is not None else builds - 1
    commits = _commits(root, names, builds, running_at if refused else builds - 1)
    newest, running, lines = {}, {}, []
    for a, app in enumerate(names):
        tags = [
            SCHEME.format(branch="main", sha=commits[n * apps + a], time=START + timedelta(minutes=n))
            for n in range(builds)
        ]
        repo = f"{prefix}/{app}"
        label = {REVISION: commits[(builds - 1) * apps + a]}
        top = pusher.push_image(repo, tags[-1], created=START, labels=label, annotations=label)
        old = pusher.push_image(repo, None, created=START)
        links = registry.storage / "docker/registry/v2/repositories" / repo / "_manifests/tags"
        for tag in tags[:-1]:
            (links / tag / "current").mkdir(parents=True, exist_ok=True)
            (links / tag / "current" / "link").write_text(old.digest)
        newest[app] = tags[-1]
        running[app] = tags[running_at] if behind is not None else "bootstrap"
        digest = top.digest if running_at == builds - 1 else old.digest
        pinned = f"{tags[running_at]}@{digest}" if behind is not None else "bootstrap"
        lines.append(f"{app}:\n  image: {image}/{app}:{pinned}\n")
    (root / "deploy").mkdir()
    (root / "deploy/images.yaml").write_text("".join(lines))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "deploy files name builds already")
    return Behind(root, registry, prefix, newest, running)


@asynccontextmanager
async def kept(project: Behind) -> AsyncIterator[Reconciler]:
    """A reconciler kept across runs with its target keeping its worktree, as `tagtrail serve` has it."""
    path = project.root / "tagtrail.yaml"
    config = load_config(path)
    async with RegistryClient(config.registries) as client:
        reconciler = Reconciler(open_project(config, path, client, keep=True))
        try:
            yield reconciler
        finally:
            await reconciler.project.aclose()


def logging_git(folder: Path) -> tuple[Path, Path]:
    """A folder holding a `git` that appends one line per process to a log, for the front of PATH; and
    the log."""
    real, log = shutil.which("git"), folder / "git-processes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    (folder / "git").chmod(0o755)
    return folder, log


def _commits(root: Path, names: list[str], builds: int, on_main: int) -> list[str]:
    """builds × apps commits, build by build and app by app; builds past `on_main` on branch `side`, which
    main never merges. Returns their shas in that order."""
    base = git(root, "rev-parse", "HEAD")
    stream, mark = [], 0
    for n in range(builds):
        branch = "main" if n <= on_main else "side"
        for app in names:
            mark += 1
            message = f"{app}: change {n}\n".encode()
            stream.append(
                f"commit refs/heads/{branch}\nmark :{mark}\n"
                f"committer bench <bench@example.invalid> {int(START.timestamp()) + mark} +0000\n"
                f"data {len(message)}\n{message.decode()}"
            )
            parent = base if mark == 1 else f":{mark - 1}"
            stream.append(f"from {parent}\n\n")
    marks = root / ".git" / "bench-marks"
    subprocess.run(
        ["git", "fast-import", "--quiet", f"--export-marks={marks}"],
        cwd=root,
        input="".join(stream).encode(),
        check=True,
    )
    found = dict(line.split() for line in marks.read_text().splitlines())
    return [found[f":{m}"] for m in range(1, mark + 1)]

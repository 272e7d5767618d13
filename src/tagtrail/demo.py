"""`tagtrail demo`: the main job end to end on a local default, with every step's real output.

A real registry is started on loopback, a sample monorepo is made, builds of several commits on `main` and
on a feature branch are pushed (synthetic images through the registry API, tagged by the scheme), and the
tagtrail commands a user would type are run against them, each shown with its output.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail.config import load_config
from tagtrail.errors import SandboxError
from tagtrail.sandbox import ImagePusher, RegistryServer
from tagtrail.sandbox.monorepo import APPS, SampleRepo, make_sample_repo

Say = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: Path
    registry: str
    pushed: int


def run_demo(workdir: Path, say: Say, *, keep: bool = False) -> DemoResult:
    """Run every step, narrating through `say`; the registry stops at the end unless `keep`."""
    registry = RegistryServer(workdir / "registry")
    registry.start()
    try:
        say(
            f"## 1. A registry\nCNCF distribution (docker-registry) is listening on {registry.url}, storage in"
            f" {registry.storage}."
        )
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        repo = make_sample_repo(workdir / "homelab", registry.host, start=start)
        say(
            f"## 2. A monorepo\n{repo.root}: apps {', '.join(APPS)} (apps/shared is copied into backup-nas),"
            " a Pulumi stack file naming the images, and tagtrail.yaml."
        )
        _show(say, repo.root, "config", "check")
        pushed = _build_history(repo, start, say)
        say("## 4. What the registry holds, read back with the scheme")
        with ImagePusher(registry.url) as pusher:
            tags = sorted(pusher.list_tags("homelab/web"))
        _show(say, repo.root, "tag", "parse", *tags, ok_codes=(0, 1))
        say(
            "Only tags of the scheme carry a branch, a commit and a time; the others are refused with a reason."
            "\nThe tag for the commit checked out now:"
        )
        _show(say, repo.root, "tag")
        if keep:
            say(
                f"The registry keeps running at {registry.url} (pid {registry.process.pid if registry.process else '?'});"
                f" the monorepo is at {repo.root}."
            )
        return DemoResult(workdir, registry.host, pushed)
    finally:
        if not keep:
            registry.stop()


def _build_history(repo: SampleRepo, start: datetime, say: Say) -> int:
    """Commits on main and a feature branch, each built and pushed the way CI would."""
    scheme = load_config(repo.root / "tagtrail.yaml").tag_scheme
    history = [
        ("main", "web: a new front page", {"apps/web/index.html": "<h1>hello again</h1>\n"}),
        ("feature/login", "web: try a login form", {"apps/web/login.html": "<form></form>\n"}),
        (
            "main",
            "worker: bump httpx (security fix)",
            {"apps/worker/requirements.txt": "httpx==0.28.1\n# sec\n"},
        ),
    ]
    builds = [(repo.commits[0], start + timedelta(minutes=3))]
    for offset, (branch, message, files) in enumerate(history, start=1):
        when = start + timedelta(hours=6 * offset)
        builds.append((repo.commit(message, files, when=when, branch=branch), when + timedelta(minutes=3)))
    repo.git("checkout", "-q", "main")
    say("## 3. Builds, as CI makes them: one image per app and commit, tagged by the scheme")
    pushed = 0
    with ImagePusher(f"http://{repo.registry}") as pusher:
        for commit, built in builds:
            tag = scheme.format(branch=commit.branch, sha=commit.sha, time=built)
            for app in APPS:
                image = pusher.push_image(
                    f"homelab/{app}",
                    tag,
                    created=built,
                    labels={
                        "org.opencontainers.image.revision": commit.sha,
                        "org.opencontainers.image.version": tag,
                        "org.opencontainers.image.title": app,
                    },
                )
                pushed += 1
            say(f"  pushed {tag} for {len(APPS)} apps ({commit.message}; last digest {image.digest[:19]}…)")
        # Tags of other schemes live in real registries too: a moving `latest`, a build cache.
        pusher.tag(image, "latest")
        pusher.push_image("homelab/web", "buildcache", created=built)
        say("  pushed homelab/web:latest and homelab/web:buildcache, as many CI setups do")
    return pushed


def _show(say: Say, cwd: Path, *args: str, ok_codes: tuple[int, ...] = (0,)) -> None:
    """Run a tagtrail command as a user would and show it with its output."""
    say("$ tagtrail " + " ".join(args))
    result = subprocess.run(
        [sys.executable, "-m", "tagtrail", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin", "HOME": str(cwd), "TERM": "dumb"},
    )
    say((result.stdout + result.stderr).rstrip())
    if result.returncode not in ok_codes:
        raise SandboxError(f"the demo step `tagtrail {' '.join(args)} ` exited {result.returncode}")

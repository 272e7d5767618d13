"""`tagtrail demo`: the main job end to end on a local default, with every step's real output.

A real registry is started on loopback, a sample monorepo is made with a bare git remote, images are built
and pushed on `main` and on a feature branch (with buildah where it works, else synthetic images through the
registry API), and the commands a user types are run against them, each shown with its output: plan,
deploy, status, a new build and its deploy, a rollback, unpin, history.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail.config import load_config
from tagtrail.errors import SandboxError
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.monorepo import APPS, SampleRepo, make_sample_repo

Say = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: Path
    registry: str
    builder: str
    deploys: int


class _Demo:
    def __init__(self, workdir: Path, say: Say) -> None:
        self.workdir = workdir
        self.say = say
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir / "home"),
            "XDG_STATE_HOME": str(workdir / "home" / "state"),
            "XDG_CACHE_HOME": str(workdir / "home" / "cache"),
            "COLUMNS": "200",
            "TERM": "dumb",
            "GIT_AUTHOR_NAME": "Demo Developer",
            "GIT_AUTHOR_EMAIL": "dev@homelab.invalid",
            "GIT_COMMITTER_NAME": "Demo Developer",
            "GIT_COMMITTER_EMAIL": "dev@homelab.invalid",
            "CONTAINERS_STORAGE_CONF": str(workdir / "containers" / "storage.conf"),
            "REGISTRY_AUTH_FILE": str(workdir / "home" / "auth.json"),
        }
        (workdir / "home").mkdir(parents=True, exist_ok=True)
        (workdir / "home" / "auth.json").write_text('{"auths": {}}\n')

    def tagtrail(self, cwd: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        """Run a tagtrail command as a user would, and show it with its output."""
        self.say("$ tagtrail " + " ".join(args))
        result = subprocess.run(
            [sys.executable, "-m", "tagtrail", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            env=self.env,
        )
        shown = result.stdout.rstrip()
        if shown:
            self.say(shown)
        if result.returncode not in ok:
            raise SandboxError(f"the demo step `tagtrail {' '.join(args)}` exited {result.returncode}")
        return result.stdout

    def git(self, repo: SampleRepo, *args: str) -> str:
        self.say("$ git " + " ".join(args))
        out = repo.git(*args)
        if out:
            self.say(out)
        return out


def _buildah_works(workdir: Path) -> bool:
    if shutil.which("buildah") is None:
        return False
    storage = workdir / "containers"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{storage}/graph"\nrunroot = "{storage}/run"\n'
    )
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage / "storage.conf")}
    probe = subprocess.run(
        ["buildah", "--storage-driver", "vfs", "images"], capture_output=True, env=env, check=False
    )
    return probe.returncode == 0


def run_demo(workdir: Path, say: Say, *, keep: bool = False) -> DemoResult:
    """Run every step, narrating through `say`; the registry stops at the end unless `keep`."""
    demo = _Demo(workdir, say)
    registry = RegistryServer(workdir / "registry")
    registry.start()
    try:
        say(
            f"## 1. A registry\nCNCF distribution (docker-registry) listens on {registry.url}; storage in"
            f" {registry.storage}."
        )
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        repo = make_sample_repo(workdir / "homelab", registry.host, start=start)
        remote = with_remote(workdir, repo)
        say(
            f"## 2. A monorepo\n{repo.root}: apps {', '.join(APPS)} (apps/shared is copied into backup-nas), a"
            f" Pulumi stack file naming the images, tagtrail.yaml; its remote is {remote}."
        )
        demo.tagtrail(repo.root, "apps")
        builder = "buildah" if _buildah_works(workdir) else "synthetic"
        build = _real_build if builder == "buildah" else _synthetic_build
        say(
            f"## 3. Builds of main, as CI makes them ({'tagtrail build with buildah' if builder == 'buildah' else 'synthetic images: no buildah here'})"
        )
        build(demo, repo, registry, None)
        repo.commit(
            "web: try a login form",
            {"apps/web/login.html": "<form></form>\n"},
            when=datetime.now(UTC),
            branch="feature/login",
        )
        say("A feature branch builds too; its tags are never deployed:")
        build(demo, repo, registry, ["web"])
        repo.git("checkout", "-q", "main")
        say("## 4. Plan and deploy: the deploy file points at 'bootstrap' tags, so every app moves")
        demo.tagtrail(repo.root, "plan")
        demo.tagtrail(repo.root, "deploy")
        demo.git(repo, "log", "--format=%h %s", "-2")
        demo.tagtrail(repo.root, "status")
        say("## 5. A security fix for worker lands on main and is built; only worker moves")
        repo.commit(
            "worker: bump httpx (security fix)",
            {"apps/worker/requirements.txt": "httpx==0.28.1\n# fix\n"},
            when=datetime.now(UTC),
        )
        repo.git("push", "-q", "origin", "main")
        build(demo, repo, registry, ["worker"])
        demo.tagtrail(repo.root, "plan", "--exit-code", ok=(0, 2))
        demo.tagtrail(repo.root, "deploy")
        say("## 6. Roll worker back to the build it had, pinned so automation leaves it there; then unpin")
        demo.tagtrail(repo.root, "rollback", "worker")
        demo.tagtrail(repo.root, "plan", "worker")
        demo.tagtrail(repo.root, "unpin", "worker")
        demo.tagtrail(repo.root, "deploy")
        demo.tagtrail(repo.root, "history", "worker")
        demo.git(repo, "log", "--format=%h %s", "origin/main")
        deploys = len(
            [
                line
                for line in repo.git("log", "--format=%s", "origin/main").splitlines()
                if line.startswith(("deploy", "rollback", "unpin"))
            ]
        )
        if keep:
            say(f"The registry keeps running at {registry.url}; the monorepo is at {repo.root}.")
        return DemoResult(workdir, registry.host, builder, deploys)
    finally:
        if not keep:
            registry.stop()


def with_remote(workdir: Path, repo: SampleRepo) -> Path:
    """A bare remote for the sample repo (workdir/remote/homelab.git), its main pushed there."""
    remote = workdir / "remote" / "homelab.git"
    remote.parent.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    repo.git("remote", "add", "origin", remote.as_uri())
    repo.git("push", "-q", "-u", "origin", "main")
    return remote


def _real_build(demo: _Demo, repo: SampleRepo, registry: RegistryServer, apps: list[str] | None) -> None:
    demo.tagtrail(repo.root, "build", "--push", *(apps or []))


def _synthetic_build(demo: _Demo, repo: SampleRepo, registry: RegistryServer, apps: list[str] | None) -> None:
    """What CI would push, made through the registry API: one image per app, tagged by the scheme."""
    scheme = load_config(repo.root / "tagtrail.yaml").tag_scheme
    sha = repo.git("rev-parse", "HEAD")
    branch = repo.git("branch", "--show-current")
    built = datetime.now(UTC)
    tag = scheme.format(branch=branch, sha=sha, time=built)
    with ImagePusher(registry.url) as pusher:
        for app in apps or list(APPS):
            image = pusher.push_image(
                f"homelab/{app}",
                tag,
                created=built,
                labels={"org.opencontainers.image.revision": sha, "org.opencontainers.image.title": app},
            )
            demo.say(f"  pushed {registry.host}/homelab/{app}:{tag}@{image.digest}")

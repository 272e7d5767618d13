"""A sample monorepo shaped like the ones tagtrail is for: apps with Dockerfiles, a shared folder copied
into one of them, a Pulumi stack file that names the images, and tagtrail.yaml."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail.errors import SandboxError

APPS = ("web", "worker", "backup-nas")

_FILES = {
    "apps/web/Dockerfile": "FROM scratch\nCOPY index.html /srv/index.html\n",
    "apps/web/index.html": "<h1>hello from web</h1>\n",
    "apps/worker/Dockerfile": "FROM scratch\nCOPY worker.py requirements.txt /app/\n",
    "apps/worker/worker.py": "print('working')\n",
    "apps/worker/requirements.txt": "httpx==0.28.1\n",
    "apps/backup-nas/Containerfile": "FROM scratch\nCOPY backup.sh /usr/local/bin/backup\n",
    "apps/backup-nas/backup.sh": "#!/bin/sh\necho backing up\n",
    "apps/shared/common.sh": "# shared by backup-nas at build time\n",
    "README.md": "# homelab\n\nA sample monorepo made by `tagtrail demo`.\n",
}

_STACK = """\
# Pulumi stack for the homelab cluster. tagtrail keeps the image lines current.
encryptionsalt: v1:Xq3pZ0kq8YQ=:v1:4o1c0oQm9E0r3Ywq:8n0cS6n0b9uXoFqT3cE7Vw==
config:
  homelab:web:
    image: {registry}/homelab/web:bootstrap
    replicas: 2
  homelab:jobs:
    worker:
      image: "{registry}/homelab/worker:bootstrap"
    backup:
      image: '{registry}/homelab/backup-nas:bootstrap'  # nightly at 03:00
  homelab:proxy:
    nginx: nginx:1.25   # third-party: tagtrail leaves it alone
"""

_CONFIG = """\
# tagtrail.yaml: how this monorepo's images are tagged, found and deployed.
scheme: "{{{{branch}}}}.{{{{date 'YYYYMMDD-HHmmss' tz='UTC'}}}}.{{{{sha}}}}"
image: {registry}/homelab/{{app}}
registries:
  "{registry}": {{insecure: true}}
apps:
  root: apps
  exclude: [shared]
  inputs:
    backup-nas: ["apps/shared/**"]
deploy:
  branch: main
  git:
    files: [pulumi/Pulumi.prod.yaml]
"""


@dataclass(frozen=True)
class Commit:
    sha: str
    branch: str
    time: datetime
    message: str


@dataclass
class SampleRepo:
    """A git work tree with the sample apps; `commits` in the order they were made."""

    root: Path
    registry: str
    commits: list[Commit] = field(default_factory=list)

    def git(self, *args: str, when: datetime | None = None) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        if when is not None:
            stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
            env |= {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        env.setdefault("GIT_AUTHOR_NAME", "tagtrail demo")
        env.setdefault("GIT_AUTHOR_EMAIL", "demo@tagtrail.invalid")
        env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
        env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
        result = subprocess.run(
            ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise SandboxError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def commit(self, message: str, files: dict[str, str], *, when: datetime, branch: str = "main") -> Commit:
        """Write files, commit them on `branch` (created from main when new) at time `when`."""
        current = self.git("branch", "--show-current")
        if current != branch:
            exists = self.git("branch", "--list", branch)
            self.git("checkout", "-q", branch) if exists else self.git("checkout", "-q", "-b", branch, "main")
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, when=when)
        made = Commit(self.git("rev-parse", "HEAD"), branch, when, message)
        self.commits.append(made)
        return made


def make_sample_repo(root: Path, registry: str, *, start: datetime | None = None) -> SampleRepo:
    """Create the sample monorepo at `root` (which must not exist) with its first commit on main."""
    if root.exists():
        raise SandboxError(f"{root} already exists; the sample repo needs a new folder")
    root.mkdir(parents=True)
    repo = SampleRepo(root, registry)
    repo.git("init", "-q", "-b", "main")
    files = dict(_FILES)
    files["pulumi/Pulumi.prod.yaml"] = _STACK.format(registry=registry)
    files["tagtrail.yaml"] = _CONFIG.format(registry=registry)
    repo.commit("Add the homelab apps", files, when=start or datetime.now(UTC) - timedelta(days=2))
    return repo

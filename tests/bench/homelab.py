"""A homelab shaped like DESIGN.md's real example, for the deploy tests and the deploy benchmark.

Eight apps in a monorepo with a git history; a Pulumi stack file whose nested keys do not always match the
app names (`homeslice:sonos:` holds gosonos), next to a third-party image, a non-`image` key holding an image,
an alias reference and an encryption salt; in the registry, many tags per app across several branches,
rebuilds of the same commit, multi-arch indexes, and tags of other schemes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.git import commit, git, init_repo
from tagtrail.domain.scheme import Scheme
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer

APPS = ("gosonos", "lights", "chime", "clocktime", "buttons", "backup-todoist", "switches", "doorbell")
SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
START = datetime(2025, 10, 1, tzinfo=UTC)

STACK = """\
# Pulumi stack file for the homeslice cluster (prod).
encryptionsalt: v1:Xq3pZ0kq8YQ=:v1:4o1c0oQm9E0r3Ywq:8n0cS6n0b9uXoFqT3cE7Vw==
config:
  homeslice:sonos:
    image: {image}/gosonos:{tag}
    zone: living-room
  homeslice:lights:
    image: "{image}/lights:{tag}"   # the light switch
  homeslice:chime:
    image: '{image}/chime:{tag}'
    nginx: nginx:1.25               # a non-image key holding a third-party image
  homeslice:clocktime:
    image: {image}/clocktime:{tag}
  homeslice:buttons:
    image: {alias}/buttons:{tag}    # an alias: the same image under another name
  homeslice:backup:
    schedule: "0 3 * * *"
    image: {image}/backup-todoist:{tag}
  homeslice:switches:
    image: {image}/switches:{tag}
  homeslice:doorbell:
    image: {image}/doorbell:{tag}
  homeslice:ingress:
    image: docker.io/traefik:v3.1   # third-party: never touched
    note: |
      The bell rings through {image}/doorbell; this text is not a reference.
"""


@dataclass
class Homelab:
    root: Path
    registry: RegistryServer
    prefix: str
    commits: list[str]  # main, oldest first
    tags: dict[str, list[str]] = field(default_factory=dict)  # app → every tag pushed
    newest: dict[str, PushedImage] = field(default_factory=dict)  # app → the newest main build

    @property
    def image(self) -> str:
        return f"{self.registry.host}/{self.prefix}"

    @property
    def stack(self) -> Path:
        return self.root / "pulumi" / "Pulumi.prod.yaml"


def config_text(image: str, host: str, extra: str = "") -> str:
    return (
        f"scheme: \"{{{{branch}}}}.{{{{date 'YYYYMMDD-HHmmss' tz='UTC'}}}}.{{{{sha}}}}\"\n"
        f"image: {image}/{{app}}\n"
        f'registries:\n  "{host}": {{insecure: true}}\n'
        "apps:\n  root: apps\n"
        "deploy:\n"
        "  branch: main\n"
        '  aliases: ["registry.lan:32000/{app}"]\n'
        "  cooldown: 0s\n"
        "  git:\n    files: [pulumi/Pulumi.prod.yaml]\n"
        f"{extra}"
    )


def make_homelab(
    root: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    prefix: str,
    *,
    tags_per_app: int = 60,
    seed: int = 7,
    config_extra: str = "",
) -> Homelab:
    """The repository (with history) and the registry content; the stack file points at the oldest build."""
    rng = random.Random(seed)
    files = {f"apps/{app}/Dockerfile": "FROM scratch\n" for app in APPS}
    image = f"{registry.host}/{prefix}"
    files["tagtrail.yaml"] = config_text(image, registry.host, config_extra)
    files["pulumi/Pulumi.prod.yaml"] = STACK.format(image=image, alias="registry.lan:32000", tag="bootstrap")
    init_repo(root, files, "the homelab")
    commits = [git(root, "rev-parse", "HEAD")]
    for n in range(5):
        commits.append(commit(root, {f"apps/{APPS[n % len(APPS)]}/v{n}.txt": f"{n}\n"}, f"change {n}"))
    lab = Homelab(root, registry, prefix, commits)
    for app in APPS:
        repo = f"{prefix}/{app}"
        first = pusher.push_image(repo, "seed", created=START)
        pushed: list[str] = []
        # Main builds of every commit, in order, a day apart; the newest one a multi-arch index.
        for index, sha in enumerate(commits):
            when = START + timedelta(days=index)
            tag = SCHEME.format(branch="main", sha=sha, time=when)
            if index == len(commits) - 1:
                lab.newest[app] = pusher.push_index(
                    repo, tag, created=when, labels={"org.opencontainers.image.revision": sha}
                )
            else:
                pusher.push_image(repo, tag, created=when, labels={"org.opencontainers.image.revision": sha})
            pushed.append(tag)
        # A rebuild of an older commit a little later (a base-image fix of a running build).
        rebuilt = SCHEME.format(branch="main", sha=commits[2], time=START + timedelta(days=2, hours=6))
        pusher.push_image(repo, rebuilt, created=START + timedelta(days=2, hours=6))
        pushed.append(rebuilt)
        # Many builds of other branches, newer than everything on main, and tags of other schemes.
        for _ in range(max(0, tags_per_app - len(pushed) - 3)):
            branch = rng.choice(("feature/login", "dependabot/pip/apps/x/httpx-0.28.1", "fix/bell"))
            when = START + timedelta(days=rng.uniform(0, 9))
            tag = SCHEME.format(branch=branch, sha=f"{rng.getrandbits(160):040x}", time=when)
            pusher.tag(first, tag)
            pushed.append(tag)
        for other in ("latest", "buildcache", "sha-" + commits[-1][:7]):
            pusher.tag(first, other)
            pushed.append(other)
        lab.tags[app] = pushed
    return lab

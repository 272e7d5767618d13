"""A registry repository with every case retention must get right, and a project deploying from it.

One app, `web`, in a git repository whose deploy file went through three deploys (rollback targets); in
the registry: main builds (single images and multi-arch indexes), the deployed, pinned and rollback builds
older than the newest kept, two tags sharing a digest (one kept, one old), two old tags on one digest,
cosign-style signature tags and OCI `subject` referrers (with the tag-schema fallback index) for a kept and a
deleted image, other-branch and -dirty builds of every age, and `latest`/`buildcache`. `prune_beside`
lets a test act as a person does between the plan and the deletions.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.git import commit, init_repo
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import load_config
from tagtrail.domain.scheme import Scheme
from tagtrail.features.retention.facts import protected
from tagtrail.features.retention.graph import Graph
from tagtrail.features.retention.prune import AppPlan, apply, plan
from tagtrail.features.retention.run import store_for
from tagtrail.features.retention.stores import Store
from tagtrail.reconcile import Reconciler
from tagtrail.targets.factory import open_project
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
RETENTION = """\
retention:
  keep_deploy: 3
  keep_other: 1
  max_age_other: 10d
  max_age_dirty: 1d
  min_age: 1h
  rollback: 2
"""


@dataclass
class Scenario:
    root: Path
    registry: RegistryServer
    repo: str
    kept: dict[str, str] = field(default_factory=dict)  # tag → the reason it must be kept
    deleted: dict[str, str] = field(default_factory=dict)  # tag → the reason it must go
    images: dict[str, PushedImage] = field(default_factory=dict)

    @property
    def image(self) -> str:
        return f"{self.registry.host}/{self.repo}"


def build_tag(branch: str, age: timedelta, sha: str, now: datetime) -> str:
    return SCHEME.format(branch=branch, sha=sha, time=now - age)


def make_scenario(
    root: Path, registry: RegistryServer, pusher: ImagePusher, repo: str, pin: bool = True
) -> Scenario:
    now = datetime.now(UTC)
    s = Scenario(root, registry, repo)
    day = timedelta(days=1)

    def push(
        branch: str, age: timedelta, sha: str, *, index: bool = False, dirty: bool = False
    ) -> PushedImage:
        tag = build_tag(branch, age, sha, now) + ("-dirty" if dirty else "")
        image = (pusher.push_index if index else pusher.push_image)(repo, tag, created=now - age)
        s.images[tag] = image
        return image

    newest = [push("main", d * day, f"{n:07x}", index=n % 2 == 0) for n, d in enumerate((1, 2, 3), start=1)]
    for image in newest:
        s.kept[image.tag] = "newest"
    pinned = push("main", 5 * day, "5555555", index=True)
    deployed = push("main", 6 * day, "6666666", index=True)
    rollback = push("main", 7 * day, "7777777")
    first = push("main", 8 * day, "8888888", index=True)  # deployed before, but beyond rollback: 2
    old = push("main", 9 * day, "9999999", index=True)
    s.kept.update({deployed.tag: "deployed", rollback.tag: "rollback-target"})
    if pin:
        s.kept[pinned.tag] = "pinned"
    else:
        s.deleted[pinned.tag] = "old-build"
    s.deleted.update({first.tag: "old-build", old.tag: "old-build"})
    # two tags on one digest: an old other-branch tag on a kept build stays; two old tags on one digest go
    shared = pusher.tag(newest[0], build_tag("feature/share", 20 * day, "abcabca", now))
    s.kept[shared.tag] = "shares-digest"
    twin = pusher.tag(old, build_tag("feature/twin", 30 * day, "bcdbcdb", now))
    s.deleted[twin.tag] = "old-other-branch"
    # signatures and referrers of a kept and of a deleted image
    for subject, keep in ((newest[1], True), (old, False)):
        sig = pusher.push_referrer(subject, subject.digest.replace(":", "-") + ".sig", with_subject=False)
        sbom = pusher.push_referrer(subject, None, artifact_type="application/spdx+json")
        fallback = pusher.push_referrers_index(subject, [sbom])
        for tag in (sig.tag, fallback.tag):
            (s.kept if keep else s.deleted)[tag] = "referenced" if keep else "with-subject"
    # other branches and laptop builds of every age
    for branch, age, sha, why in (
        ("feature/login", timedelta(minutes=20), "1010101", "too-young"),
        ("feature/login", 2 * day, "2020202", "newest"),
        ("feature/login", 3 * day, "3030303", "old-other-branch"),
        ("fix/stale", 40 * day, "4040404", "old-other-branch"),
    ):
        (s.kept if why in ("too-young", "newest") else s.deleted)[push(branch, age, sha).tag] = why
    for age, sha, why in (
        (timedelta(minutes=10), "d1d1d1d", "too-young"),
        (timedelta(hours=5), "d2d2d2d", "newest"),
        (3 * day, "d3d3d3d", "old-dirty"),
    ):
        (s.kept if why != "old-dirty" else s.deleted)[push("main", age, sha, dirty=True).tag] = why
    for extra in ("latest", "buildcache"):
        pusher.tag(newest[0] if extra == "latest" else newest[2], extra)
        s.kept[extra] = "not-of-scheme"
    _project(s, [first, rollback, deployed], pinned if pin else None)
    return s


def _project(s: Scenario, deploys: list[PushedImage], pinned: PushedImage | None) -> None:
    pins = f"  pins:\n    web: {pinned.tag}\n" if pinned else ""
    config = (
        f"scheme: \"{{{{branch}}}}.{{{{date 'YYYYMMDD-HHmmss' tz='UTC'}}}}.{{{{sha}}}}\"\n"
        f"image: {s.registry.host}/{s.repo.rsplit('/', 1)[0]}/{{app}}\n"
        f'registries:\n  "{s.registry.host}": {{insecure: true}}\n'
        "deploy:\n  branch: main\n  git:\n    files: [deploy/web.yaml]\n"
        f"{pins}{RETENTION}"
    )

    def manifest(image: PushedImage) -> str:
        return f"spec:\n  containers:\n    - name: web\n      image: {s.image}:{image.tag}@{image.digest}\n"

    init_repo(
        s.root,
        {
            "tagtrail.yaml": config,
            "apps/web/Dockerfile": "FROM scratch\n",
            "deploy/web.yaml": manifest(deploys[0]),
        },
    )
    for image in deploys[1:]:
        commit(s.root, {"deploy/web.yaml": manifest(image)}, f"deploy {image.tag}")


def blob_bytes(registry: RegistryServer) -> int:
    """The bytes of every blob the registry stores (what its garbage collection frees)."""
    blobs = registry.storage / "docker/registry/v2/blobs"
    return sum(f.stat().st_size for f in blobs.rglob("data"))


def pulls_completely(
    registry: RegistryServer, repo: str, tag: str, into: Path
) -> subprocess.CompletedProcess[str]:
    """skopeo copies the image, every platform's manifest and every blob, into a folder."""
    return subprocess.run(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            f"docker://{registry.host}/{repo}:{tag}",
            f"dir:{into}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )


class RetagOnFirstDelete:
    """A store that lets a person act once, between the plan and the first deletion's DELETE."""

    def __init__(self, store: Store, act: Callable[[], object]) -> None:
        self.store = store
        self.act: Callable[[], object] | None = act

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def delete(self, digest: str) -> None:
        if self.act is not None:
            act, self.act = self.act, None
            await asyncio.to_thread(act)
        await self.store.delete(digest)


def prune_beside(s: Scenario, person: Callable[[Graph], Callable[[], object]]) -> AppPlan:
    """Plan web's retention, show the plan to `person` (who may act at once), run what they return between
    the plan and the first DELETE, and apply; web's plan as apply left it."""
    config_path = s.root / "tagtrail.yaml"
    config = load_config(config_path)

    async def main() -> AppPlan:
        async with RegistryClient(config.registries) as client:
            reconciler = Reconciler(open_project(config, config_path, client))
            keep = await protected(config, reconciler.project.target, ["web"])
            store = store_for(config, client, ImageRef.parse(s.image))
            report = await plan(config, {"web": store}, keep, reconciler.clock())
            [item] = report.plans
            assert item.graph is not None
            item.store = RetagOnFirstDelete(store, person(item.graph))
            await apply(report, reconciler.project.log, actor="test")
            return item

    return asyncio.run(main())


def retag(s: Scenario, tag: str, digest: str) -> None:
    """Put `tag` on the scenario's image of `digest`, as `crane tag` or `docker push` would."""
    image = next(i for i in s.images.values() if i.digest == digest)
    with ImagePusher(s.registry.url) as pusher:
        pusher.tag(image, tag)

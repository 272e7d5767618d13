"""In-memory stand-ins for the fast tests of the reconciler: a registry and a target.

The real registry and the GitOps target are tested end to end in tests/integration (the same reconciler
against docker-registry and real git remotes); these fakes let the reconciler's own logic (outcomes,
retries, re-decisions, cooldown, pins) be tested in milliseconds, with the failures a real component only
shows on a bad day made on purpose.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tagtrail.adapters.history import HistoryEntry
from tagtrail.adapters.registry import ImageConfig, ImageRef, Inspection, Manifest, ManifestHead, Revision
from tagtrail.config import Config, parse_config
from tagtrail.domain.policy import Running
from tagtrail.domain.scheme import Scheme
from tagtrail.errors import RegistryError, RegistryNotFound, TagtrailError
from tagtrail.targets.base import Applied, AppState, C, Capability, Change, Conflict, Declared

SCHEME = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
NOW = datetime(2025, 10, 14, 12, 0, tzinfo=UTC)


def config_text(extra: str = "") -> str:
    """tagtrail.yaml for the fakes; `extra` goes inside `deploy:`."""
    return f'scheme: "{SCHEME}"\nimage: registry.test/acme/{{app}}\ndeploy:\n  git:\n    files: [deploy.yaml]\n{extra}'


def config(extra: str = "") -> Config:
    return parse_config(config_text(extra))


def build(branch: str, hours_ago: float, sha: str) -> str:
    return Scheme.compile(SCHEME).format(
        branch=branch, sha=sha + "0" * (40 - len(sha)), time=NOW - timedelta(hours=hours_ago)
    )


def digest_of(tag: str) -> str:
    return "sha256:" + hashlib.sha256(tag.encode()).hexdigest()


class FakeRegistry:
    """Repositories → tags; `fail` makes one repository's reads raise; `labels` are an image's labels by
    tag, `repointed` a tag's digest after a re-push. It holds no signatures."""

    def __init__(self, tags: dict[str, list[str]]) -> None:
        self.tags = tags
        self.fail: dict[str, RegistryError] = {}
        self.requests: list[tuple[str, str]] = []
        self.labels: dict[str, dict[str, str]] = {}
        self.repointed: dict[str, str] = {}

    def digest(self, tag: str) -> str:
        return self.repointed.get(tag, digest_of(tag))

    def _check(self, ref: ImageRef, what: str) -> None:
        self.requests.append((what, ref.repository))
        if ref.repository in self.fail:
            raise self.fail[ref.repository]

    async def list_tags(self, ref: ImageRef) -> list[str]:
        self._check(ref, "tags")
        return list(self.tags.get(ref.repository, []))

    async def head(self, ref: ImageRef) -> ManifestHead:
        self._check(ref, "head")
        return ManifestHead(self.digest(ref.tag or ""), "application/vnd.oci.image.manifest.v1+json", 100)

    async def image_config(self, ref: ImageRef) -> ImageConfig:
        self._check(ref, "config")
        return ImageConfig(digest_of("config" + (ref.tag or "")), None, "linux", "amd64")

    async def inspect(self, ref: ImageRef) -> Inspection:
        self._check(ref, "config")
        tags = self.tags.get(ref.repository, [])
        tag = ref.tag or next(t for t in tags if self.digest(t) == ref.digest)
        config = ImageConfig(digest_of("config" + tag), None, "linux", "amd64", self.labels.get(tag, {}))
        return Inspection(ref, self.digest(tag), "application/vnd.oci.image.manifest.v1+json", [], config)

    async def revision(self, ref: ImageRef) -> Revision:
        """As an image without the annotation answers: its config read (the labels given per tag)."""
        inspection = await self.inspect(ref)
        return Revision(inspection.digest, inspection.config.revision, "label")

    async def manifest(self, ref: ImageRef) -> Manifest:
        """A tag's manifest, or one by the digest of a tag this repository holds; anything else is absent
        (a signature tag nobody pushed, a digest of another repository)."""
        self._check(ref, "manifest")
        for tag in self.tags.get(ref.repository, []):
            if ref.tag == tag or ref.digest == self.digest(tag):
                return Manifest("application/vnd.oci.image.manifest.v1+json", self.digest(tag), b"{}")
        raise RegistryNotFound(ref.registry, ref.repository, f"no {ref.reference}")

    async def blob(self, ref: ImageRef, digest: str, cap: int = 0) -> bytes:
        raise RegistryNotFound(ref.registry, ref.repository, f"no {digest}")

    async def referrers(self, ref: ImageRef) -> list[dict[str, object]] | None:
        self._check(ref, "referrers")
        return None


@dataclass
class FakeTarget:
    """What is declared, per app, and the config text stored beside it. `before_write` runs once before
    the first write: another writer's change that makes the first attempt lose (a rejected push)."""

    running: dict[str, Running]
    config_text: str | None = None
    where: str = "the deploy files"
    before_write: Callable[[FakeTarget], None] | None = None
    writes: list[Change] = field(default_factory=list)
    attempts: int = 0
    entries: list[HistoryEntry] = field(default_factory=list)

    def _declared(self) -> Declared:
        states = {app: AppState(app, (), running, running.shown) for app, running in self.running.items()}
        return Declared(states, self.config_text)

    async def declared(self) -> Declared:
        return self._declared()

    @asynccontextmanager
    async def writing(self, *, dry_run: bool = False) -> AsyncIterator[FakeWriting]:
        yield FakeWriting(self, dry_run)

    def offers(self, capability: Capability[C]) -> C | None:
        return None

    async def history(self, app: str | None = None, *, until: list[str] | None = None) -> list[HistoryEntry]:
        return [e for e in self.entries if app is None or e.app == app]

    async def sync(self) -> bool:
        return False

    async def aclose(self) -> None:
        return None


@dataclass
class FakeWriting:
    """One write of a FakeTarget; `before_write` makes the first write lose (a conflict)."""

    target: FakeTarget
    dry_run: bool
    retries: int = 5

    async def read(self) -> Declared:
        self.target.attempts += 1
        return self.target._declared()

    async def write(self, declared: Declared, change: Change) -> Applied | Conflict:
        target = self.target
        changed = [
            c.app for c in change.images if target.running.get(c.app) != Running(c.image.tag, c.image.digest)
        ]
        if not changed and not change.pins:
            return Applied(change)
        if self.dry_run:
            return Applied(change, changed=changed)
        if target.before_write is not None:  # someone else wrote first: read again, decide again
            hook, target.before_write = target.before_write, None
            hook(target)
            return Conflict(
                "someone else wrote first", lambda attempts: TagtrailError(f"lost {attempts} times")
            )
        previous = {app: target.running[app].shown for app in changed}
        for c in change.images:
            target.running[c.app] = Running(c.image.tag, c.image.digest)
        target.writes.append(change)
        commit = hashlib.sha1(repr(change).encode()).hexdigest()  # noqa: S324 (an id, not security)
        return Applied(change, commit, True, 0, changed, previous)

    async def refresh(self) -> None:
        return None

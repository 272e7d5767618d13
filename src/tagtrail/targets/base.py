"""What every target speaks: what is declared (and, where the target can know it, what runs), a change to
write atomically, and what writing it did.

A target is where a deploy decision lands: files in git, or a cluster. The reconciler talks to targets
through `Target` alone: it reads, decides, writes, and on a `Conflict` refreshes and decides again, the same
loop for every target. What only some targets can do (a checkout of the deploy repository, the cluster as
the target) is a capability a caller asks for with `offers`, never a concrete class it names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from tagtrail.adapters.history import HistoryEntry
from tagtrail.adapters.refs import Image, Reference
from tagtrail.domain.policy import Running
from tagtrail.errors import TagtrailError


@dataclass(frozen=True)
class AppState:
    """What a target declares for one app: every reference to it, and what runs by them."""

    app: str
    refs: tuple[Reference, ...]
    running: Running
    shown: str | None = None  # the running reference as it is written (name:tag@digest)


@dataclass(frozen=True)
class Review:
    """A pull request a target opened to deploy one app's build (deploy.git.pull_request): `state` open
    (pending review), merged, declined (closed by a person) or superseded (closed by tagtrail)."""

    number: int
    url: str
    state: str
    to: str | None  # the reference it deploys, or its digest's first 16 hex digits (None: a pin or unpin)
    verb: str = "deploy"

    def proposes(self, reference: str) -> bool:
        """Whether this pull request deploys `reference` (repository:tag@digest): a marker that names many
        apps keeps each one's digest short, so that it fits a pull request's description."""
        if self.to is None:
            return False
        return self.to == reference or (
            "/" not in self.to and reference.partition("@")[2].removeprefix("sha256:").startswith(self.to)
        )

    @property
    def shown(self) -> str:
        return f"#{self.number} {self.url}"


@dataclass(frozen=True)
class Declared:
    """A target's state at one moment: per app, and the config text stored beside it (pins live there),
    read at the same revision so that a retry decides on both as they are now."""

    states: Mapping[str, AppState]
    config_text: str | None = None
    pins: Mapping[str, str] | None = None  # pins the target itself keeps (cluster annotations), by app
    reviews: Mapping[str, tuple[Review, ...]] = field(
        default_factory=dict, kw_only=True
    )  # by app, newest first


@dataclass(frozen=True)
class Proof:
    """What the policy's checks found of a build before it was chosen (a pull request shows it): None
    where that check was not made."""

    commit: str | None = None  # the full commit found on `branch` of the source repository
    branch: str | None = None
    signature: str | None = None  # what deploy.verify's keys verified
    attestation: str | None = None  # what deploy.verify.github's bundle proved
    base: tuple[str, str] | None = None  # the base image the build records: name with tag, digest
    label: bool = False  # the image's revision label (or annotation) was read and agrees


@dataclass(frozen=True)
class ImageChange:
    """Set one app to one image, and say why."""

    app: str
    image: Image
    reason: str
    sentence: str
    built_from: str | None = None
    promoted_from: str | None = None  # a promotion: the environment it ran in first, and what it showed
    evidence: str | None = None
    proof: Proof | None = None  # None: nothing was checked (a person's rollback or pin)


@dataclass(frozen=True)
class Change:
    """Everything one deploy writes, as one atomic step: images, and pins set (tag) or removed (None)."""

    verb: str  # deploy, rollback, pin, unpin: the commit's subject
    actor: str
    images: tuple[ImageChange, ...] = ()
    pins: Mapping[str, str | None] = field(default_factory=dict)
    skip_ci: bool = False


@dataclass
class Rollouts:
    """A target's own details: the rollouts it followed after its write (the cluster)."""

    ended: dict[str, str] = field(default_factory=dict)  # app → how its rollout ended
    rolled_back: dict[str, str] = field(default_factory=dict)  # app → why its failed rollout was undone
    failed: dict[str, str] = field(default_factory=dict)  # app → why its rollout failed, not undone

    @classmethod
    def of(cls, details: Details) -> Rollouts:
        """The rollouts in `details`; none from a target that follows none."""
        return details.get(cls) or cls()


@dataclass
class Reviewing:
    """A target's own details: the pull requests its write opened or updated, by app; nothing is deployed
    until a person (or GitHub's auto-merge) merges them."""

    pending: dict[str, Review] = field(default_factory=dict)
    superseded: dict[str, Review] = field(default_factory=dict)  # closed for a person's rollback or pin
    counts: dict[str, int] = field(default_factory=dict)  # the target's pull requests listed, by state

    @classmethod
    def of(cls, details: Details) -> Reviewing:
        return details.get(cls) or cls()


@dataclass(frozen=True)
class Then:
    """A target's own details: the command it ran after its write (deploy.git.then)."""

    exit: int
    output: str


D = TypeVar("D")


@dataclass(init=False)
class Details:
    """A target's own part of what it applied, by its type: a reader asks `details.get(Then)` and gets the
    command git ran after its write, or None from a target that runs none; a new target adds a type of its
    own, and nothing of Applied changes."""

    _parts: dict[type, object]

    def __init__(self, *parts: object) -> None:
        self._parts = {type(part): part for part in parts}

    def add(self, part: object) -> None:
        self._parts[type(part)] = part

    def get(self, kind: type[D]) -> D | None:
        part = self._parts.get(kind)
        return part if isinstance(part, kind) else None


@dataclass
class Applied:
    """What writing a change did: what every target says, and its own `details` beside it. `commit` is
    None when there was nothing to change (or a dry run)."""

    change: Change | None = None
    commit: str | None = None
    pushed: bool = False
    attempts: int = 0
    changed: list[str] = field(default_factory=list)  # apps whose references changed
    previous: dict[str, str | None] = field(default_factory=dict)  # app → its reference before
    files: dict[str, str] = field(default_factory=dict)  # path → new text (dry-run diffs)
    before: dict[str, str | None] = field(default_factory=dict)  # path → text before
    kind: str = (
        "commit"  # what `commit` names: a git commit, or a workload patch (namespace/kind/name@version)
    )
    details: Details = field(default_factory=Details)


@dataclass(frozen=True)
class Conflict:
    """A write that lost to a concurrent one: nothing of it was written. The reconciler refreshes, reads
    and decides again; `give_up` is the error once `attempts` writes have all lost."""

    detail: str
    give_up: Callable[[int], TagtrailError]


# Works out the change on what the target declares now; called again after a conflict.
Decide = Callable[[Declared], Awaitable[Change]]
C = TypeVar("C")


class Capability(Generic[C]):
    """What only some targets can do, asked of any with `Target.offers` (see `targets.capabilities`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Capability({self.name!r})"


def offered(target: object, capability: Capability[C], *offers: Capability[Any]) -> C | None:
    """`target` as `capability` when it is one of those it `offers`, else None."""
    return cast(C, target) if capability in offers else None


class Writing(Protocol):
    """One write of a target, held open from the first read to the last attempt (a git working copy, its
    lock). A dry run writes nothing: `write` says what it would do."""

    retries: int  # how many times a write that lost is tried again

    async def read(self) -> Declared:
        """What is declared and pinned now."""
        ...

    async def write(self, declared: Declared, change: Change) -> Applied | Conflict:
        """Write `change` atomically over `declared`, guarded so a concurrent change is never overwritten."""
        ...

    async def refresh(self) -> None:
        """Catch up with the write that won, before the next read."""
        ...


class Target(Protocol):
    """Where deploys land."""

    where: str  # what it reads, for messages: "the deploy files", "the workloads of namespace shop"

    async def declared(self) -> Declared:
        """What is declared for every app now."""
        ...

    def writing(self, *, dry_run: bool = False) -> AbstractAsyncContextManager[Writing]:
        """Open a write (the reconciler's loop reads, writes and refreshes through it)."""
        ...

    def offers(self, capability: Capability[C]) -> C | None:
        """This target as `capability` (one of `targets.capabilities`), or None where it cannot."""
        ...

    async def history(self, app: str | None = None, *, until: list[str] | None = None) -> list[HistoryEntry]:
        """Every change of what is declared, newest first (with `until`: stop once those apps have one)."""
        ...

    async def sync(self) -> bool:
        """Bring the target's view up to date with changes made elsewhere; False when there is nothing to do."""
        ...

    async def aclose(self) -> None:
        """Let go of what the target holds open (connections)."""
        ...

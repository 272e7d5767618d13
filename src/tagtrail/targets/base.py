"""What every target speaks: what is declared (and, where the target can know it, what runs), a change to
apply atomically, and what applying it did.

A target is where a deploy decision lands: files in git (GitOpsTarget), or a cluster. The reconciler talks
to targets through `Target` alone; adding one is implementing this protocol and nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tagtrail.history import HistoryEntry
from tagtrail.policy import Running
from tagtrail.refs import Reference
from tagtrail.refs import Target as Image


@dataclass(frozen=True)
class AppState:
    """What a target declares for one app: every reference to it, and what runs by them."""

    app: str
    refs: tuple[Reference, ...]
    running: Running
    shown: str | None = None  # the running reference as it is written (name:tag@digest)


@dataclass(frozen=True)
class Declared:
    """A target's state at one moment: per app, and the config text stored beside it (pins live there),
    read at the same revision so that a retry decides on both as they are now."""

    states: Mapping[str, AppState]
    config_text: str | None = None
    pins: Mapping[str, str] | None = None  # pins the target itself keeps (cluster annotations), by app


@dataclass(frozen=True)
class ImageChange:
    """Set one app to one image, and say why."""

    app: str
    image: Image
    reason: str
    sentence: str
    built_from: str | None = None


@dataclass(frozen=True)
class Change:
    """Everything one deploy writes, as one atomic step: images, and pins set (tag) or removed (None)."""

    verb: str  # deploy, rollback, pin, unpin: the commit's subject
    actor: str
    images: tuple[ImageChange, ...] = ()
    pins: Mapping[str, str | None] = field(default_factory=dict)
    skip_ci: bool = False


@dataclass
class Applied:
    """What applying a change did. `commit` is None when there was nothing to change (or a dry run)."""

    change: Change | None = None
    commit: str | None = None
    pushed: bool = False
    attempts: int = 0
    changed: list[str] = field(default_factory=list)  # apps whose references changed
    previous: dict[str, str | None] = field(default_factory=dict)  # app → its reference before
    files: dict[str, str] = field(default_factory=dict)  # path → new text (dry-run diffs)
    before: dict[str, str | None] = field(default_factory=dict)  # path → text before
    then_exit: int | None = None
    then_output: str = ""
    kind: str = (
        "commit"  # what `commit` names: a git commit, or a workload patch (namespace/kind/name@version)
    )
    rollouts: dict[str, str] = field(default_factory=dict)  # app → how its rollout ended (cluster targets)
    rolled_back: dict[str, str] = field(default_factory=dict)  # app → why its failed rollout was undone
    failed: dict[str, str] = field(default_factory=dict)  # app → why its rollout failed, not undone


# Works out the change on what the target declares now; called again after a rejected write.
Decide = Callable[[Declared], Awaitable[Change]]


class Target(Protocol):
    """Where deploys land."""

    where: str  # what it reads, for messages: "the deploy files", "the workloads of namespace shop"

    async def declared(self) -> Declared:
        """What is declared for every app now."""
        ...

    async def apply(self, decide: Decide, *, dry_run: bool = False) -> Applied:
        """Read, decide (`decide`), write atomically; on a concurrent write, read and decide again."""
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


@runtime_checkable
class Narrows(Protocol):
    """A target that can apply a change reading and writing only what holds some apps (a webhook hint's),
    to the same effect as `Target.apply` for them."""

    async def apply_for(
        self, apps: Collection[str] | None, decide: Decide, *, dry_run: bool = False
    ) -> Applied:
        """`Target.apply`, with `decide` given only the states of `apps` (all, where None)."""
        ...

"""What only some targets can do. A caller asks a target for one with `target.offers(CAPABILITY)` and gets
the target as that protocol, or None; nothing outside `targets/` names a concrete target."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.targets.base import Capability, Declared, Writing

if TYPE_CHECKING:  # lightkube: loaded only where a cluster is configured
    from tagtrail.adapters.kube.cluster import Cluster


class Checkout(Protocol):
    """The deploy files live in a git checkout, whose history answers commit questions (which apps a pushed
    commit changed) and the insights. Blocking git: call these in a worker thread."""

    def checked_out(self) -> AbstractContextManager[GitRepo]:
        """The checkout of the deploy branch, to read (held under its lock until the block ends)."""
        ...

    def source_checkout(self) -> GitRepo:
        """The repository tagtrail.yaml is in (GitError where it is not in one)."""
        ...


class InCluster(Protocol):
    """The target is the cluster's workloads (direct mode): what runs is what it declares, by tagtrail's
    annotations, and it follows every rollout it starts itself."""

    @property
    def cluster(self) -> Cluster:
        """The cluster it patches."""
        ...


class Narrows(Protocol):
    """A write for some apps only (a webhook hint's): its first read holds only what holds them, where the
    target knows that, to the same effect for them as a whole read; so a push costs the same whatever the
    number of apps. A read after a conflict reads everything."""

    def writing_for(
        self, apps: Collection[str] | None, *, dry_run: bool = False
    ) -> AbstractAsyncContextManager[Writing]:
        """`Target.writing`, its first read narrowed to `apps` (all, where None)."""
        ...

    def peek(self, apps: Collection[str]) -> Declared | None:
        """What the first read of `writing_for(apps)` is likely to hold, from what the target kept of its last
        read, reading nothing (None: it keeps nothing of them). A guess to start deciding with while the
        write opens: the read says whether it was right."""
        ...


CHECKOUT: Capability[Checkout] = Capability("checkout")
IN_CLUSTER: Capability[InCluster] = Capability("in-cluster")
NARROWS: Capability[Narrows] = Capability("narrows")

"""A project: what one environment of a tagtrail.yaml deploys with. It owns the config, the registry client, the decision log,
the source repository, the cluster connection, the fence and its target; `targets.factory.open_project`
builds it from the config, and the reconciler, given one, keeps only the algorithm."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.history import DecisionLog
from tagtrail.adapters.refs import Matcher
from tagtrail.config import Config
from tagtrail.config.environments import DEFAULT
from tagtrail.config.provenance import SourceConfig
from tagtrail.errors import GitError
from tagtrail.targets.base import Target
from tagtrail.targets.capabilities import IN_CLUSTER

if TYPE_CHECKING:  # lightkube is loaded only where a cluster is configured
    from tagtrail.adapters.kube.cluster import Cluster

R = TypeVar("R")  # the registry client (RegistryClient; an in-memory registry in fast tests)
REMOTE = "origin"


class Fence:
    """With more than one replica: `check` raises NotLeader unless this one leads. Checked right before
    every write, the target's own later writes (a cluster rollback) included."""

    def __init__(self) -> None:
        self.by: Callable[[], None] | None = None

    def check(self) -> None:
        if self.by is not None:
            self.by()


class Project(Generic[R]):
    """One tagtrail.yaml's resources. `target` is set by the factory, which builds it from the project."""

    target: Target

    def __init__(
        self, config: Config, config_path: Path, client: R, log: DecisionLog, environment: str = DEFAULT
    ) -> None:
        self.config = config  # the environment's view of tagtrail.yaml (config.environments.view)
        self.environment = environment  # its name; "default" for a single deploy:
        self.upstream: Project[R] | None = None  # the environment it takes builds from (`from:`)
        self.others: list[Project[R]] = []  # the config's other environments (what retention must keep)
        self.config_path = config_path
        self.client = client
        self.log = log
        self.matcher = Matcher.from_config(config)
        self.fence = Fence()
        self._source: GitRepo | bool | None = False  # False: not looked for yet
        self._cluster: Cluster | None = None

    @property
    def direct(self) -> bool:
        """Whether the target is the cluster itself (direct mode): its annotations declare what runs, and it
        follows its own rollouts."""
        return self.target.offers(IN_CLUSTER) is not None

    def cluster(self) -> Cluster | None:
        """The cluster whose workloads say what runs (`kubernetes:`), or None where none is configured; one
        connection, the direct target's own included."""
        if self._cluster is None and self.config.kubernetes is not None:
            from tagtrail.adapters.kube.cluster import Cluster  # noqa: PLC0415

            self._cluster = Cluster(self.config.kubernetes, self.matcher)
        return self._cluster

    async def source(self) -> GitRepo | None:
        """The repository the images are built from, for the ancestry guard and the commit checks: a clone
        of `deploy.source.url`, else the checkout tagtrail.yaml is in (None: not a git repository)."""
        if self._source is False:
            settings = self.config.deploy.source
            if settings is not None:  # a clone that cannot be made is an error, never "unchecked"
                self._source = await asyncio.to_thread(source_clone, settings)
            else:
                self._source = await asyncio.to_thread(_discover, self.config_path.parent)
        return self._source if isinstance(self._source, GitRepo) else None

    async def aclose(self) -> None:
        await self.target.aclose()
        if self._cluster is not None and not self.direct:  # the direct target closed it
            await self._cluster.aclose()


def source_clone(settings: SourceConfig) -> GitRepo:
    """A blobless clone of the configured source repository (commits and trees, no file contents), kept in
    a cache folder; the deploy branches are fetched into it when a commit is not known there yet."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tagtrail" / "sources"
    cache = Path(settings.cache).expanduser() if settings.cache else default
    folder = cache / hashlib.sha256(settings.url.encode()).hexdigest()[:16]
    if not (folder / ".git").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        GitRepo(folder.parent).run(
            "clone", "--quiet", "--filter=blob:none", "--no-checkout", settings.url, folder.name
        )
    repo = GitRepo(folder)
    repo.run("remote", "set-url", REMOTE, settings.url)  # the config may have moved the remote
    return repo


def _discover(folder: Path) -> GitRepo | None:
    try:
        return GitRepo.discover(folder)
    except GitError:
        return None

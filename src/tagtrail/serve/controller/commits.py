"""Which apps a pushed commit changed, as CI's build of it sees them: the images a webhook hint should wait
for. Answers are remembered (a bounded number of commits) for the life of one config."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from tagtrail.adapters import apps as app_discovery
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Reconciler
from tagtrail.targets.capabilities import CHECKOUT

REMEMBERED = 256
FETCH_EVERY = 10.0  # seconds: a flood of hints naming unknown commits costs one fetch, not one each


class CommitApps:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._known: OrderedDict[str, set[str]] = OrderedDict()
        self._clock = clock
        self._fetched_at: float | None = None
        self._fetching = threading.Lock()  # lookups run in worker threads

    async def apps(self, sha: str, reconciler: Reconciler, deployed: set[str]) -> set[str] | None:
        """The deployed apps commit `sha` changed (None: cannot tell, e.g. no history of the monorepo here)."""
        if sha in self._known:
            return self._known[sha]
        source = await reconciler.project.source()
        config = reconciler.project.config

        def look(repo: GitRepo) -> set[str] | None:
            try:
                return {a.name for a in app_discovery.of_commit(repo, config, sha)}
            except app_discovery.CommitNotHere:
                return None

        def changed_in(repo: GitRepo) -> set[str] | None:
            found = look(repo)
            if found is not None:
                return found
            # One fetch at a time: the images of one CI run arrive together, and a lookup that waited for
            # another's fetch finds the commit it brought instead of giving up.
            with self._fetching:
                found = look(repo)
                if found is not None or not self._may_fetch():
                    return found  # or None: fetched a moment ago, this commit is not one we can know yet
                repo.try_run("fetch", "--quiet")  # pushed after our last look
            return look(repo)

        def compute() -> set[str] | None:
            if source is not None:
                return changed_in(source)
            # in a cluster there is no checkout of the monorepo, but the deploy repository may be it
            checkout = reconciler.project.target.offers(CHECKOUT)
            if checkout is None:
                return None
            with checkout.checked_out() as repo:
                return changed_in(repo)

        try:
            found = await asyncio.to_thread(compute)
        except TagtrailError:
            found = None
        if found is None:
            return None  # not remembered: the commit may be fetched a little later
        if deployed:
            found &= deployed
        self._known[sha] = found
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        return found

    def _may_fetch(self) -> bool:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < FETCH_EVERY:
            return False
        self._fetched_at = now
        return True

"""Webhook hints into the controller's triggers. What a webhook says is checked cheaply at once (is it a
managed app, a build it deploys, newer than what runs), so the sender gets its answer without waiting for
git; which apps the pushed commit changed (git) is looked up in the background, and the hint joins the
triggers then, waiting for the other images of its commit."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from tagtrail.config import Config
from tagtrail.config.environments import branches_of_any
from tagtrail.domain.policy import eligible_build
from tagtrail.reconcile import Reconciler
from tagtrail.serve.controller.commits import CommitApps
from tagtrail.serve.controller.snapshot import Status
from tagtrail.serve.controller.triggers import Coalescer, stale

log = logging.getLogger("tagtrail.controller")


class Loop(Protocol):
    """What hints use of the controller's loop: its config and reconciler as they are now (a reload replaces
    both), what its last reconcile planned, its triggers, and waking it."""

    @property
    def config(self) -> Config: ...

    @property
    def reconciler(self) -> Reconciler: ...

    @property
    def status(self) -> Status: ...

    @property
    def triggers(self) -> Coalescer: ...

    def wake(self) -> None: ...


class Hints:
    def __init__(self, controller: Loop) -> None:
        self.controller = controller
        self.commits = CommitApps()
        self._lookups: set[asyncio.Task[None]] = set()

    def forget_commits(self) -> None:
        """A new config: which apps a commit changed may read differently."""
        self.commits = CommitApps()

    def hint(self, image: str, tag: str | None, source: str) -> str | None:
        """The app `image:tag` belongs to (None: not managed, or not a build tagtrail deploys); its reconcile
        is scheduled unless the build is no newer than what runs (a late notification)."""
        controller = self.controller
        config = controller.config
        app = controller.reconciler.project.matcher.app_of_pushed(image)
        if app is None:
            return None
        if not tag:
            controller.triggers.hint(app)
            log.info("%s: %s pushed", source, app)
            controller.wake()
            return app
        build = eligible_build(config.tag_scheme, branches_of_any(config, app), tag)
        if build is None:
            log.debug("%s: %s:%s is not a build tagtrail deploys; ignored", source, app, tag)
            return None
        planned = controller.status.planned.get(app)
        if stale(build, planned.decision.running_parsed if planned else None):
            log.debug("%s: %s:%s is not newer than what runs; nothing to look at", source, app, tag)
            return app
        task = asyncio.get_running_loop().create_task(self._coalesce(app, tag, build.sha, source))
        self._lookups.add(task)  # held until done, so the task is not collected midway
        task.add_done_callback(self._lookups.discard)
        return app

    async def _coalesce(self, app: str, tag: str, sha: str, source: str) -> None:
        controller = self.controller
        deployed = set(controller.status.planned)
        expected = await self.commits.apps(sha, controller.reconciler, deployed)
        wait = controller.config.serve.coalesce_max.total_seconds()
        awaited = controller.triggers.hint(app, sha, expected, wait)
        if awaited:
            log.info(
                "%s: %s:%s pushed (%s); waiting for %s", source, app, tag, sha, ", ".join(sorted(awaited))
            )
        else:
            log.info("%s: %s:%s pushed", source, app, tag)
        controller.wake()

    async def settle(self) -> None:
        """Wait for the lookups in flight (tests, and stopping)."""
        if self._lookups:
            await asyncio.gather(*self._lookups, return_exceptions=True)

"""GitOps + observe in tagtrail serve: each deploy commit is followed in the background until the cluster
runs it (or kubernetes.follow passes), recorded in the decision log, and told when it does not happen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tagtrail.adapters.notify import Message
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Reconciler, Report
from tagtrail.reconcile.follow import follow
from tagtrail.serve.controller.results import Results

log = logging.getLogger("tagtrail.controller")


class Rollouts:
    def __init__(self, results: Results) -> None:
        self.results = results
        self._tasks: set[asyncio.Task[None]] = set()

    def follow(self, reconciler: Reconciler, report: Report, done: Callable[[], Awaitable[None]]) -> None:
        """Start following `report`'s deploy commit, if the cluster is observed and a commit was made."""
        if reconciler.project.config.kubernetes is None or report.commit is None or not report.changed:
            return
        task = asyncio.create_task(self._follow(reconciler, report, done), name="tagtrail-rollout")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(
        self, reconciler: Reconciler, report: Report, done: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            followed = await follow(reconciler, report, actor="tagtrail serve")
        except TagtrailError as exc:
            log.warning("the rollout of %s could not be followed: %s", ", ".join(report.changed), exc)
            return
        for result in followed:
            if result.ok:
                log.info("%s: %s", result.app, result.sentence)
            else:
                log.warning("%s: %s", result.app, result.sentence)
                await self.results.send(
                    [Message(f"tagtrail: {result.app} is not running", result.sentence, "failure")]
                )
        if followed:
            await done()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

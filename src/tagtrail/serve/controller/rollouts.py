"""GitOps + observe in tagtrail serve: each deploy commit is followed in the background until the cluster
runs it (or kubernetes.follow passes), recorded in the decision log, and told when it does not happen.

With deploy.git.applied_by, the commit is first followed until the operator's Stack applied it (or failed on
it, or did not get to it), told the same way; only an applied commit is followed into the cluster. A deploy
commit no `apply` row judges yet is picked up again when serve starts (`resume`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tagtrail.adapters.notify import Message
from tagtrail.errors import TagtrailError
from tagtrail.reconcile import Reconciler, Report
from tagtrail.reconcile.applied import Applying, Deployed, follow_applied, pending, settings_of
from tagtrail.reconcile.follow import follow
from tagtrail.serve.controller.results import Results

log = logging.getLogger("tagtrail.controller")
ACTOR = "tagtrail serve"
LEAD_CHECK = 2.0  # seconds between looks at whether this replica leads, before following again


class Rollouts:
    def __init__(self, results: Results, lock: asyncio.Lock) -> None:
        self.results = results
        self.lock = lock  # the controller's one write at a time: a rollback after a failed apply takes it
        self._tasks: set[asyncio.Task[None]] = set()

    def follow(self, reconciler: Reconciler, report: Report, done: Callable[[], Awaitable[None]]) -> None:
        """Start following `report`'s deploy commit, if the cluster is observed and a commit was made."""
        if reconciler.project.config.kubernetes is None or report.commit is None or not report.changed:
            return
        self._start(self._follow(reconciler, report, Deployed.of_report(report), done))

    def resume(self, reconciler: Reconciler, done: Callable[[], Awaitable[None]]) -> None:
        """Follow again the deploy commit a stopped serve was following (applied_by), if any."""
        if settings_of(reconciler) is not None:
            self._start(self._resume(reconciler, done))

    def _start(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resume(self, reconciler: Reconciler, done: Callable[[], Awaitable[None]]) -> None:
        while not reconciler.leads():  # a follower replica records nothing: the leader follows it
            await asyncio.sleep(LEAD_CHECK)
        try:
            deployed = await pending(reconciler)
        except TagtrailError as exc:
            log.warning("the deploy commit to follow could not be read: %s", exc)
            return
        if deployed is not None:
            log.info("following deploy commit %s again, until the Stack applies it", deployed.commit[:12])
            await self._follow(reconciler, None, deployed, done)

    async def _follow(
        self,
        reconciler: Reconciler,
        report: Report | None,
        deployed: Deployed | None,
        done: Callable[[], Awaitable[None]],
    ) -> None:
        apps = ", ".join(deployed.apps) if deployed else ""
        try:
            if deployed is not None and (settings := settings_of(reconciler)) is not None:
                stack = settings.pulumi_stack.ref
                self.results.metrics.observe_applying(stack, "pending", judged=False)
                applying = await follow_applied(reconciler, deployed, actor=ACTOR, lock=self.lock)
                assert applying is not None  # noqa: S101 (settings_of said it is configured)
                self.results.metrics.observe_applying(stack, applying.state, judged=True)
                await self._told(applying, apps)
                if applying.state != "applied" or report is None:
                    await done()
                    return
            followed = await follow(reconciler, report, actor=ACTOR) if report is not None else []
        except TagtrailError as exc:
            log.warning("the deploy commit of %s could not be followed: %s", apps, exc)
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

    async def _told(self, applying: Applying, apps: str) -> None:
        sentence = f"{applying.commit[:12]}: {applying.sentence}"
        if applying.permalink:
            sentence += f" ({applying.permalink})"
        if applying.state == "applied":
            log.info("%s: %s", apps, sentence)
            return
        log.warning("%s: %s", apps, sentence)
        back = "".join(f"; {a} rolled back to {t} and pinned" for a, t in applying.rolled_back.items())
        title = f"tagtrail: {apps} {'failed to apply' if applying.state == 'failed' else 'not applied'}"
        await self.results.send([Message(title, sentence + back, "failure")])

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

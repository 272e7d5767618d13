"""What a reconcile's result changes outside the schedule: the controller's status, the metrics, and what
people are told (when to try again is the schedule's, from `outcome_of`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tagtrail.adapters.notify import Message, Notifier
from tagtrail.errors import GitError, TagtrailError
from tagtrail.reconcile import Report
from tagtrail.serve.controller import announce
from tagtrail.serve.controller.snapshot import Status
from tagtrail.serve.metrics import Metrics
from tagtrail.targets.base import Reviewing, Rollouts

log = logging.getLogger("tagtrail.controller")


class Results:
    def __init__(self, status: Status, metrics: Metrics, notifier: Notifier) -> None:
        self.status = status
        self.metrics = metrics
        self.notifier = notifier
        self.registry_failures = announce.RegistryFailures()
        self.refusals = announce.Refusals()

    async def failed(self, error: Exception, *, counted: bool = True) -> None:
        """A reconcile that raised, told. `counted`: this replica reconciles (it leads, or there is one); a
        follower's plan is not counted."""
        if isinstance(error, TagtrailError):
            text = str(error)
        else:  # a bug must not end the loop: reported with its traceback
            log.error("reconcile failed", exc_info=error)
            text = f"internal error: {type(error).__name__}: {error}"
        self.status.last_reconcile = datetime.now(UTC)
        self.status.last_error = text
        if counted:
            self.metrics.reconciles.labels("failed").inc()
        log.error("reconcile failed: %s", text)
        if isinstance(error, GitError):
            await self.send([announce.failed(text)])

    async def succeeded(self, report: Report, registry_errors: int, *, counted: bool = True) -> None:
        reviewing = Reviewing.of(report.applied.details)
        if reviewing.counts:  # deploy.git.pull_request: what the reconcile's list of them said
            self.metrics.observe_pull_requests(reviewing.counts)
        status = self.status
        now = datetime.now(UTC)
        status.last_reconcile = status.last_success = now
        status.last_error = None
        if counted:
            self.metrics.reconciles.labels("ok").inc()
            self.metrics.last_success.set(now.timestamp())
        for item in report.planned:
            status.planned[item.app] = item
        self.metrics.pending.set(
            sum(
                1
                for p in status.planned.values()
                if (p.decision.behind or 0) > 0 and p.app not in report.changed
            )
        )
        applied = report.applied
        if applied.commit:
            status.last_commit = applied.commit
            result = "pushed" if applied.pushed else "committed"
            log.info("deployed %s: commit %s %s", ", ".join(report.changed), applied.commit[:12], result)
            for app in report.changed:
                self.metrics.deploys.labels(app, result).inc()
            self.metrics.observe_deploys(report)
            rolled_back = Rollouts.of(applied.details).rolled_back
            for app in rolled_back:
                self.metrics.automatic_rollbacks.labels(app).inc()
                log.warning("rolled %s back: %s", app, rolled_back[app])
        fresh = self.refusals.first(report)
        for app, refusal in fresh:
            log.warning("refused %s for %s: %s", refusal.tag, app, refusal.sentence)
            self.metrics.refusals.labels(app, str(refusal.code)).inc()
        await self.send(
            announce.deployed(report)
            + self.registry_failures.messages(report, registry_errors)
            + [announce.refused(app, refusal) for app, refusal in fresh]
        )

    async def acted(self, report: Report, actor: str) -> None:
        """A person's rollback, pin or unpin from the dashboard: counted and told."""
        self.metrics.observe_deploys(report)
        await self.send(announce.acted(report, actor))

    async def send(self, messages: list[Message]) -> None:
        for message in messages:
            await self.notifier.send_async(message)

"""Prometheus metrics of one controller, in a registry of its own (so tests and embedders do not share)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# lead time buckets: 10 minutes to 2 weeks
LEAD_BUCKETS = (600, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400)
ROLLBACK = "rollback"
APPLY_STATES = ("applied", "pending", "failed", "not-applied")  # reconcile/applied.py's State
AUTOMATIC_ROLLBACK = "auto-rollback"
PULL_REQUEST_STATES = ("open", "merged", "declined", "superseded")


class _Build(Protocol):
    @property
    def time(self) -> datetime | None: ...


class _Decision(Protocol):
    @property
    def reason(self) -> str: ...

    @property
    def target(self) -> _Build | None: ...


class _Planned(Protocol):
    @property
    def app(self) -> str: ...

    @property
    def decision(self) -> _Decision: ...


class _Report(Protocol):
    """What `observe_deploys` reads of a reconcile's Report (metrics sit below the reconciler)."""

    @property
    def changed(self) -> list[str]: ...

    @property
    def planned(self) -> Sequence[_Planned]: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "tagtrail_reconciles",
            "Reconciles this replica made, by result (a follower plans and counts none).",
            ["result"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "tagtrail_reconcile_duration_seconds",
            "How long a reconcile took.",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.registry_requests = Counter(
            "tagtrail_registry_requests",
            "Requests to registries, by registry and status code.",
            ["registry", "status"],
            registry=self.registry,
        )
        self.deploys = Counter(
            "tagtrail_deploys", "Deploys of an app, by result.", ["app", "result"], registry=self.registry
        )
        self.pending = Gauge(
            "tagtrail_pending_updates",
            "Apps with a newer eligible build than the one running.",
            registry=self.registry,
        )
        self.last_success = Gauge(
            "tagtrail_last_successful_reconcile_timestamp_seconds",
            "When the last reconcile this replica made succeeded (Unix time; a follower makes none).",
            registry=self.registry,
        )
        self.refusals = Counter(
            "tagtrail_refusals",
            "Candidates refused because a claim of their tag did not hold, by app and reason (once each).",
            ["app", "reason"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "tagtrail_webhook_requests",
            "Webhook requests, by source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )

        self.lead_time = Histogram(
            "tagtrail_lead_time_seconds",
            "From a deployed build's time (the time in its tag: the commit's or the build's, as the scheme"
            " says) to its deploy commit.",
            registry=self.registry,
            buckets=LEAD_BUCKETS,
        )
        self.rollbacks = Counter(
            "tagtrail_rollbacks", "Rollbacks this controller made, by app.", ["app"], registry=self.registry
        )
        self.automatic_rollbacks = Counter(
            "tagtrail_automatic_rollbacks",
            "Rollbacks this controller made on its own, by app.",
            ["app"],
            registry=self.registry,
        )
        self.ready_replicas = Gauge(
            "tagtrail_cluster_ready_replicas",
            "Ready replicas of the workloads running the app's image (kubernetes:).",
            ["app"],
            registry=self.registry,
        )
        self.desired_replicas = Gauge(
            "tagtrail_cluster_desired_replicas",
            "Replicas the workloads running the app's image want (kubernetes:).",
            ["app"],
            registry=self.registry,
        )
        self.drift = Gauge(
            "tagtrail_cluster_drift",
            "1 where what the cluster runs is not what is declared, by app (kubernetes:).",
            ["app"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "tagtrail_leader",
            "1 where this replica leads (serve.leader_election), else 0.",
            registry=self.registry,
        )
        self.cluster_lead_time = Gauge(
            "tagtrail_cluster_lead_time_seconds",
            "From the commit of the build the cluster runs to its rollout finishing, by app (kubernetes:).",
            ["app"],
            registry=self.registry,
        )
        self.prune_bytes_freed = Counter(
            "tagtrail_prune_bytes_freed",
            "Bytes scheduled prunes deleted from registries (reclaimed at the registry's garbage collection).",
            ["app"],
            registry=self.registry,
        )
        self.base_moved = Gauge(
            "tagtrail_apps_on_moved_base_image",
            "Apps whose running build's base image tag now points to another digest (a base-image fix to ship).",
            registry=self.registry,
        )
        self.base_rebuilds = Counter(
            "tagtrail_base_image_rebuilds",
            "Rebuilds started because an app's base image moved, by app and how (github, local).",
            ["app", "via"],
            registry=self.registry,
        )
        self.task_failures = Counter(
            "tagtrail_task_failures",
            "Turns of a periodic task of tagtrail serve (poll, prune, base-images, lease) that raised: logged"
            " with a traceback, backed off, and tried again.",
            ["task"],
            registry=self.registry,
        )
        self.pull_requests = Gauge(
            "tagtrail_pull_requests",
            "tagtrail's pull requests among the newest hundred GitHub lists, by state: open (pending review),"
            " merged, declined (closed by a person), superseded (closed for a person's rollback or pin).",
            ["state"],
            registry=self.registry,
        )
        self.prune_deletions = Counter(
            "tagtrail_prune_deletions",
            "Manifests scheduled prunes deleted, by app and the rule that allowed it.",
            ["app", "reason"],
            registry=self.registry,
        )

        self.stack_state = Gauge(
            "tagtrail_pulumi_stack_state",
            "1 for what the Pulumi operator's Stack says of the last deploy commit (applied, pending, failed,"
            " not-applied), else 0, by stack (deploy.git.applied_by).",
            ["stack", "state"],
            registry=self.registry,
        )
        self.applies = Counter(
            "tagtrail_applies",
            "Deploy commits the Stack applying them judged, by stack and result (applied, failed, not-applied).",
            ["stack", "result"],
            registry=self.registry,
        )

    def observe_applying(self, stack: str, state: str, *, judged: bool) -> None:
        """The Stack's state of the deploy commit followed; counted once when `judged`."""
        for each in APPLY_STATES:
            self.stack_state.labels(stack, each).set(1 if each == state else 0)
        if judged:
            self.applies.labels(stack, state).inc()

    def observe_pull_requests(self, counts: Mapping[str, int]) -> None:
        """What the last list of pull requests said (deploy.git.pull_request), every state set."""
        for state in PULL_REQUEST_STATES:
            self.pull_requests.labels(state).set(counts.get(state, 0))

    def observe_cluster(self, running: dict[str, tuple[int, int, bool, float | None]]) -> None:
        """What the cluster runs, per app: (ready, total, drift, lead time in seconds or None)."""
        for app, (ready, total, drift, lead) in running.items():
            self.ready_replicas.labels(app).set(ready)
            self.desired_replicas.labels(app).set(total)
            self.drift.labels(app).set(1 if drift else 0)
            if lead is not None:
                self.cluster_lead_time.labels(app).set(lead)

    def observe_deploys(self, report: _Report, now: datetime | None = None) -> None:
        """A deploy commit was made: its builds' lead times, and its rollbacks, counted."""
        moment = now or datetime.now(UTC)
        for item in report.planned:
            if item.app not in report.changed:
                continue
            decision = item.decision
            if decision.reason in (ROLLBACK, AUTOMATIC_ROLLBACK):
                self.rollbacks.labels(item.app).inc()
                if decision.reason == AUTOMATIC_ROLLBACK:
                    self.automatic_rollbacks.labels(item.app).inc()
            elif decision.target is not None and decision.target.time is not None:
                self.lead_time.observe(max((moment - decision.target.time).total_seconds(), 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)

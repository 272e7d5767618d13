"""Prometheus metrics of one controller, in a registry of its own (so tests and embedders do not share)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "tagtrail_reconciles", "Reconciles, by result.", ["result"], registry=self.registry
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
            "When the last reconcile succeeded (Unix time).",
            registry=self.registry,
        )
        self.webhooks = Counter(
            "tagtrail_webhook_requests",
            "Webhook requests, by source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )

        self.prune_bytes_freed = Counter(
            "tagtrail_prune_bytes_freed",
            "Bytes scheduled prunes deleted from registries (reclaimed at the registry's garbage collection).",
            ["app"],
            registry=self.registry,
        )
        self.prune_deletions = Counter(
            "tagtrail_prune_deletions",
            "Manifests scheduled prunes deleted, by app and the rule that allowed it.",
            ["app", "reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

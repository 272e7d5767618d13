"""Where a workload's rollout stands, from its status alone, the way `kubectl rollout status` judges it:
the controller has seen the current spec (observedGeneration), every replica runs it and is available,
and no old one is left; a Deployment whose progress deadline passed has failed. How many Pods of the new
build are ready comes from the Deployment's current ReplicaSet (its status counts the old build's too). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tagtrail.adapters.kube.revisions import REVISION, owned

State = Literal["complete", "progressing", "failed"]


@dataclass(frozen=True)
class Progress:
    state: State
    ready: int
    total: int  # replicas wanted (Pods scheduled, for a DaemonSet)
    updated: int
    detail: str = ""

    @property
    def text(self) -> str:
        return f"{self.state} {self.ready}/{self.total} ready" + (f": {self.detail}" if self.detail else "")


def progress(kind: str, body: Mapping[str, Any]) -> Progress:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    spec: Mapping[str, Any] = body.get("spec") or {}
    status: Mapping[str, Any] = body.get("status") or {}
    seen = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    if kind == "Deployment":
        return _deployment(spec, status, seen)
    if kind == "StatefulSet":
        wanted = _int(spec.get("replicas"), 1)
        ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
        revised = status.get("updateRevision") == status.get("currentRevision")
        done = seen and ready >= wanted and revised and _int(status.get("replicas")) <= wanted
        return Progress("complete" if done else "progressing", ready, wanted, updated)
    if kind == "DaemonSet":
        wanted = _int(status.get("desiredNumberScheduled"))
        ready, updated = _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled"))
        done = seen and updated >= wanted and _int(status.get("numberAvailable")) >= wanted
        return Progress("complete" if done else "progressing", ready, wanted, updated)
    active = len(status.get("active") or [])  # a CronJob: its Jobs run to completion, nothing rolls out
    return Progress("complete", active, active, active)


def _deployment(spec: Mapping[str, Any], status: Mapping[str, Any], seen: bool) -> Progress:
    wanted = _int(spec.get("replicas"), 1)
    updated, ready = _int(status.get("updatedReplicas")), _int(status.get("readyReplicas"))
    available, replicas = _int(status.get("availableReplicas")), _int(status.get("replicas"))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            # no ready count here: readyReplicas counts the old build's Pods as well (see `on_new_build`)
            detail = f"progress deadline exceeded ({updated} of {wanted} updated)"
            return Progress("failed", ready, wanted, updated, detail)
    if not seen:
        return Progress("progressing", ready, wanted, updated, "the controller has not seen the new spec yet")
    if updated < wanted:
        return Progress("progressing", ready, wanted, updated, f"{updated} of {wanted} updated")
    if replicas > updated:
        return Progress("progressing", ready, wanted, updated, f"{replicas - updated} old replicas left")
    if available < updated:
        return Progress("progressing", ready, wanted, updated, f"{available} of {updated} available")
    return Progress("complete", ready, wanted, updated)


def on_new_build(
    failed: Progress, deployment: Mapping[str, Any], sets: Iterable[Mapping[str, Any]]
) -> Progress:
    """A Deployment's failed rollout told with how many Pods of the new build are ready: those of its
    ReplicaSet of the Deployment's revision (`failed` as it is where no such ReplicaSet is found)."""
    meta: Mapping[str, Any] = deployment.get("metadata") or {}
    revision = (meta.get("annotations") or {}).get(REVISION)
    if revision is None:
        return failed
    for found in owned(sets, meta.get("uid")):
        if ((found.get("metadata") or {}).get("annotations") or {}).get(REVISION) == revision:
            ready = _int((found.get("status") or {}).get("readyReplicas"))
            told = f"{failed.detail}; {ready} of {failed.total} pods of the new build ready"
            return Progress("failed", ready, failed.total, failed.updated, told)
    return failed


def _int(value: Any, default: int = 0) -> int:
    return default if value is None else int(value)

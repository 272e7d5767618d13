"""The cluster as tagtrail talks to it: list the workloads of the configured namespaces (one request per kind
and namespace, however many apps), read their Pods, patch a workload guarded by `test` operations, record
an Event, follow a rollout with a watch, and read what each workload can roll back to (a Deployment's
ReplicaSets, a StatefulSet's or DaemonSet's ControllerRevisions).

Every request goes through `refusals`, so a failure is one line; `requests` counts them (benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from datetime import UTC, datetime
from typing import Any, cast

from lightkube import ApiError, AsyncClient, operators
from lightkube.generic_resource import GenericNamespacedResource, create_namespaced_resource
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

from tagtrail.adapters.kube.connect import connect, refusals
from tagtrail.adapters.kube.revisions import owned
from tagtrail.adapters.kube.rollout import Progress, on_new_build, progress
from tagtrail.adapters.kube.workloads import KINDS, Workload, read
from tagtrail.adapters.refs import Matcher
from tagtrail.config.kubernetes import KubernetesConfig
from tagtrail.errors import KubeConflict, KubeError

log = logging.getLogger("tagtrail.kube")
Resource = type[GenericNamespacedResource]
_RESOURCES: dict[tuple[str, str, str], Resource] = {}


def resource(group: str, version: str, kind: str, plural: str) -> Resource:
    key = (group, version, kind)
    if key not in _RESOURCES:
        _RESOURCES[key] = create_namespaced_resource(group, version, kind, plural)
    return _RESOURCES[key]


POD = resource("", "v1", "Pod", "pods")
REPLICA_SET = resource("apps", "v1", "ReplicaSet", "replicasets")
CONTROLLER_REVISION = resource("apps", "v1", "ControllerRevision", "controllerrevisions")
_CRONJOB_V1 = resource("batch", "v1", "CronJob", "cronjobs")


Conflict = KubeConflict  # the workload changed since it was read: read again and decide again


class Cluster:
    """One API server and the namespaces the config names. Close it (`aclose`) when done."""

    def __init__(self, settings: KubernetesConfig, matcher: Matcher) -> None:
        self.settings = settings
        self.matcher = matcher
        self.client: AsyncClient | None = None
        self.server = ""
        self.requests = 0
        self._cronjob: Resource | None = None

    def _client(self) -> AsyncClient:
        if self.client is None:
            self.client, self.server = connect(self.settings)
        return self.client

    def connection(self) -> AsyncClient:
        """The one client of this cluster, for readers of other kinds (`stacks.py`); `server` is set after."""
        return self._client()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None

    def _resource(self, kind: str) -> Resource:
        group, plural, _ = KINDS[kind]
        if kind == "CronJob":
            return self._cronjob or _CRONJOB_V1
        return resource(group, "v1", kind, plural)

    # Reading ------------------------------------------------------------------------------------------

    async def workloads(self) -> list[Workload]:
        """Every workload of the configured namespaces (and selector) that runs a managed app's image."""
        lists = [self._list(kind, ns) for ns in self.settings.namespaces for kind in KINDS]
        found = []
        for kind, bodies in await asyncio.gather(*lists):
            found += [w for body in bodies if (w := read(kind, body, self.matcher)) is not None]
        return sorted(found, key=lambda w: w.ref)

    async def _list(self, kind: str, namespace: str) -> tuple[str, list[dict[str, Any]]]:
        client = self._client()
        labels = _selector(self.settings.selector)
        self.requests += 1
        used = self._resource(kind)
        try:
            async with refusals(self.server, f"list {KINDS[kind][1]} in {namespace}"):
                items = [_body(o) async for o in client.list(used, namespace=namespace, labels=labels)]
        except ApiError as error:
            if kind == "CronJob" and error.status.code == 404 and used is _CRONJOB_V1:
                # batch/v1 CronJob is served from Kubernetes 1.21; before that, batch/v1beta1
                self._cronjob = resource("batch", "v1beta1", "CronJob", "cronjobs")
                return await self._list(kind, namespace)
            raise _unexpected(self.server, error, f"list {KINDS[kind][1]} in {namespace}") from None
        return kind, [{**item, "kind": kind} for item in items]

    async def pods(self) -> list[dict[str, Any]]:
        """The Pods of the configured namespaces (one request each)."""
        client = self._client()
        found: list[dict[str, Any]] = []
        for namespace in self.settings.namespaces:
            self.requests += 1
            async with refusals(self.server, f"list pods in {namespace}"):
                found += [_body(p) async for p in client.list(POD, namespace=namespace)]
        return found

    async def get(self, workload: Workload) -> Workload | None:
        """The workload as it is now; None when it is gone or no longer runs a managed image."""
        self.requests += 1
        try:
            async with refusals(self.server, f"get {workload.ref}"):
                body = _body(
                    await self._client().get(
                        self._resource(workload.kind), workload.name, namespace=workload.namespace
                    )
                )
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise _unexpected(self.server, error, f"get {workload.ref}") from None
        return read(workload.kind, {**body, "kind": workload.kind}, self.matcher)

    async def replica_sets(
        self, namespace: str, labels: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The ReplicaSets of a namespace (those with `labels`): each Deployment's rollout revisions, as
        `kubectl rollout history` reads them (one request, however many Deployments)."""
        self.requests += 1
        async with refusals(self.server, f"list replicasets in {namespace}"):
            listed = self._client().list(REPLICA_SET, namespace=namespace, labels=labels)
            return [_body(rs) async for rs in listed]

    async def controller_revisions(self, namespace: str) -> list[dict[str, Any]]:
        """The ControllerRevisions of a namespace: what a StatefulSet or DaemonSet can roll back to."""
        self.requests += 1
        async with refusals(self.server, f"list controllerrevisions in {namespace}"):
            return [_body(r) async for r in self._client().list(CONTROLLER_REVISION, namespace=namespace)]

    async def revisions(self, workloads: Iterable[Workload]) -> dict[str, list[dict[str, Any]]]:
        """What each workload can roll back to (`kubectl rollout undo`), by uid: a Deployment's ReplicaSets,
        a StatefulSet's or DaemonSet's ControllerRevisions, a CronJob's nothing; each list read once per
        namespace, however many workloads."""
        lists: dict[tuple[bool, str], list[dict[str, Any]]] = {}
        found: dict[str, list[dict[str, Any]]] = {}
        for workload in workloads:
            if workload.kind == "CronJob":
                found[workload.uid] = []
                continue
            key = (workload.kind == "Deployment", workload.namespace)
            if key not in lists:
                listing = self.replica_sets if key[0] else self.controller_revisions
                lists[key] = await listing(workload.namespace)
            found[workload.uid] = owned(lists[key], workload.uid)
        return found

    # Writing ------------------------------------------------------------------------------------------

    async def patch(self, workload: Workload, ops: list[dict[str, Any]]) -> Workload:
        """Apply a JSON patch; Conflict when a `test` fails or the workload is gone."""
        self.requests += 1
        try:
            async with refusals(self.server, f"patch {workload.ref}"):
                body = await self._client().patch(
                    self._resource(workload.kind),
                    workload.name,
                    ops,
                    namespace=workload.namespace,
                    patch_type=PatchType.JSON,
                )
        except ApiError as error:
            if error.status.code in (404, 409, 422):
                raise Conflict(f"{workload.ref} changed since it was read") from None
            raise _unexpected(self.server, error, f"patch {workload.ref}") from None
        found = read(workload.kind, {**_body(body), "kind": workload.kind}, self.matcher)
        if found is None:
            raise Conflict(f"{workload.ref} no longer runs a managed image")
        return found

    async def event(self, workload: Workload, reason: str, message: str, *, warning: bool = False) -> None:
        """An Event on the workload (what `kubectl describe` shows). Best effort: a refused Event is logged by
        the caller's outcome, never a reason to undo a deploy."""
        now = datetime.now(UTC)
        event = Event(
            metadata=ObjectMeta(generateName=f"{workload.name}.", namespace=workload.namespace),
            involvedObject=ObjectReference(
                kind=workload.kind,
                apiVersion=f"{KINDS[workload.kind][0]}/v1",
                namespace=workload.namespace,
                name=workload.name,
                uid=workload.uid,
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            source=EventSource(component="tagtrail"),
            reportingComponent="tagtrail",
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
        )
        self.requests += 1
        try:
            async with refusals(self.server, f"create events in {workload.namespace}"):
                await self._client().create(event)
        except (ApiError, KubeError) as error:
            log.warning("no Event recorded on %s: %s", workload.ref, error)

    async def follow(self, workload: Workload, timeout: float) -> Progress:
        """Watch a workload until its rollout completes or fails, or `timeout` seconds pass (then failed)."""
        try:
            async with asyncio.timeout(timeout):
                result, last = await self._follow(workload)
        except TimeoutError:
            last = await self.get(workload)
            state = progress(workload.kind, last.body) if last else None
            # a Deployment's ready count is told from its new ReplicaSet, below
            ready = (
                f" ({state.ready} of {state.total} ready)" if state and workload.kind != "Deployment" else ""
            )
            result = Progress(
                "failed",
                state.ready if state else 0,
                state.total if state else 0,
                state.updated if state else 0,
                f"not rolled out after deploy.kubernetes.rollout_timeout, {timeout:.0f} s{ready}",
            )
        if result.state == "failed" and last is not None and last.kind == "Deployment":
            return await self._on_new_build(last, result)
        return result

    async def _on_new_build(self, deployment: Workload, failed: Progress) -> Progress:
        """A failed Deployment's rollout told with the ready Pods of its new ReplicaSet. Best effort: a
        refused list leaves the rollout failed as it was, and the rollback goes on."""
        labels = dict(deployment.selector.get("matchLabels") or {}) or None
        try:
            sets = await self.replica_sets(deployment.namespace, labels)
        except (ApiError, KubeError) as error:
            log.warning("the new ReplicaSet of %s could not be read: %s", deployment.ref, error)
            return failed
        return on_new_build(failed, deployment.body, sets)

    async def _follow(self, workload: Workload) -> tuple[Progress, Workload | None]:
        """The rollout's outcome, and the workload as last seen (None: deleted or no longer managed)."""
        current = workload
        while True:
            state = progress(current.kind, current.body)
            if state.state != "progressing":
                return state, current
            self.requests += 1
            stream = self._client().watch(
                self._resource(workload.kind),
                namespace=workload.namespace,
                fields={"metadata.name": workload.name},
                resource_version=current.resource_version,
            )
            # closed on leaving the loop, not when collected: lightkube's generator holds the response open
            watching = aclosing(cast("AsyncGenerator[tuple[str, Any], None]", stream))
            async with refusals(self.server, f"watch {workload.ref}"), watching as watch:
                async for kind, body in watch:
                    if kind == "DELETED":
                        return _gone(f"{workload.ref} was deleted during its rollout")
                    found = read(workload.kind, {**_body(body), "kind": workload.kind}, self.matcher)
                    if found is None:
                        return _gone(f"{workload.ref} no longer runs a managed image")
                    current = found
                    if progress(current.kind, current.body).state != "progressing":
                        break
            fresh = await self.get(workload)  # the watch ended (server timeout) or the rollout is decided
            if fresh is None:
                return _gone(f"{workload.ref} was deleted during its rollout")
            current = fresh


def _gone(why: str) -> tuple[Progress, None]:
    return Progress("failed", 0, 0, 0, why), None


def _body(obj: Any) -> dict[str, Any]:
    return dict(obj.to_dict()) if hasattr(obj, "to_dict") else dict(obj)


def _selector(text: str | None) -> dict[str, Any] | None:
    """kubernetes.selector as lightkube's `labels` (k=v, k!=v, k, !k; comma-separated)."""
    if not text:
        return None
    labels: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if "!=" in part:
            key, value = part.split("!=", 1)
            labels[key.strip()] = operators.not_equal(value.strip())
        elif "=" in part:
            key, value = part.split("=", 1)
            labels[key.strip().rstrip("=")] = value.strip().lstrip("=")
        elif part.startswith("!"):
            labels[part[1:]] = operators.not_exists()
        else:
            labels[part] = operators.exists()
    return labels


def _unexpected(server: str, error: ApiError, what: str) -> KubeError:
    return KubeError(
        f"the Kubernetes API at {server} failed to {what} ({error.status.code}): {error.status.message}"
    )

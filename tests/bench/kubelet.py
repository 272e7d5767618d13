"""A stand-in kubelet for the Kubernetes test bench (bench/kube.py).

No container runtime works on these machines, so there is no real kubelet: `Kubelet` plays one for one
namespace. It registers a Node and keeps its Ready condition and Lease fresh, binds the namespace's Pods to
it, and reports them Running and Ready with `containerStatuses[].imageID` set to the image's digest, as
containerd reports it (`repo@sha256:…`), or leaves chosen images never ready (a bad rollout). Pods that are
being deleted are removed at once, as a kubelet does after stopping their containers.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import msgspec
from lightkube import ApiError, Client
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

from bench.kube import ControlPlane


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def _unless_gone() -> Iterator[None]:
    try:
        yield
    except ApiError as error:
        if error.status.code != 404:
            raise


def image_id(image: str, digests: dict[str, str]) -> str | None:
    """What containerd reports as a container's imageID (`repo@sha256:…`), or None if it cannot pull.

    A reference pinned by digest names its own; a tag is looked up in `digests` (reference → digest), the way
    a kubelet asks the registry.
    """
    name, at, digest = image.partition("@")
    if not at:
        digest = digests.get(image, "")
        if not digest:
            return None
    repository = name
    slash, colon = repository.rfind("/"), repository.rfind(":")
    if colon > slash:
        repository = repository[:colon]
    return f"{repository}@{digest}"


@dataclass
class Kubelet:
    """Plays the kubelet of one Node for the Pods of one namespace; a context manager, or start() and stop().

    `digests` maps image references that carry no digest to the digest a pull would get (pinned references
    need none); `never_ready` holds images whose containers start but never pass readiness (CrashLoopBackOff).
    A reference with no digest known stays in ErrImagePull, as with a tag the registry does not have.
    """

    control_plane: ControlPlane
    namespace: str
    node: str = "bench-node"
    digests: dict[str, str] = field(default_factory=dict)
    never_ready: set[str] = field(default_factory=set)
    period: float = 0.1
    errors: list[str] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _reported: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _addresses: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def start(self) -> Kubelet:
        with self.control_plane.client() as client:
            labels = {"kubernetes.io/hostname": self.node}
            client.create(Node(metadata=ObjectMeta(name=self.node, labels=labels)))
            self._heartbeat(client)
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{self.node}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self.control_plane.client() as client:
            with _unless_gone():
                client.delete(Lease, self.node, namespace="kube-node-lease")
            with _unless_gone():
                client.delete(Node, self.node)

    def __enter__(self) -> Kubelet:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        with self.control_plane.client() as client:
            self._loop(client)

    def _loop(self, client: Client) -> None:
        beat = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() - beat > 2.0:
                    self._heartbeat(client)
                    beat = time.monotonic()
                for pod in client.list(Pod, namespace=self.namespace):
                    self._tend(client, pod)
            except ApiError as error:
                # A Pod deleted or changed between the list and the write: the next round sees the new state.
                if error.status.code not in (404, 409):
                    self.errors.append(f"{error.status.code} {error.status.message}")
            except Exception as error:
                if not self._stopping.is_set():
                    self.errors.append(repr(error))
            self._stopping.wait(self.period)

    def _heartbeat(self, client: Client) -> None:
        now = _now()
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "the tagtrail test bench plays this node's kubelet",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        client.patch(
            Node.Status,
            self.node,
            {
                "status": {
                    "conditions": [ready],
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                }
            },
            patch_type=PatchType.STRATEGIC,
        )
        lease = {
            "metadata": {"name": self.node, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": _micro_now()},
        }
        try:
            client.patch(Lease, self.node, lease, namespace="kube-node-lease", patch_type=PatchType.MERGE)
        except ApiError as error:
            if error.status.code != 404:
                raise
            client.create(Lease(metadata=ObjectMeta(name=self.node, namespace="kube-node-lease")))
            client.patch(Lease, self.node, lease, namespace="kube-node-lease", patch_type=PatchType.MERGE)

    def _tend(self, client: Client, pod: Pod) -> None:
        assert pod.metadata is not None
        assert pod.spec is not None
        name = str(pod.metadata.name)
        if pod.spec.nodeName is None:
            binding = Pod.Binding(
                metadata=ObjectMeta(name=name, namespace=self.namespace),
                target=ObjectReference(kind="Node", name=self.node, apiVersion="v1"),
            )
            # The API server answers a binding with a Status, which lightkube 1.0.1 decodes as a Binding and
            # refuses (no `target`): the binding is made all the same; the next round sees the Pod bound.
            with contextlib.suppress(msgspec.ValidationError):
                client.create(binding, name, namespace=self.namespace)
            return
        if pod.spec.nodeName != self.node:
            return
        if pod.metadata.deletionTimestamp is not None:
            client.delete(Pod, name, namespace=self.namespace, grace_period=0)
            return
        images = tuple(container.image or "" for container in pod.spec.containers)
        if self._reported.get(str(pod.metadata.uid)) == images:
            return
        client.patch(
            Pod.Status,
            name,
            {"status": self._status(pod)},
            namespace=self.namespace,
            patch_type=PatchType.MERGE,
        )
        self._reported[str(pod.metadata.uid)] = images

    def _status(self, pod: Pod) -> dict[str, Any]:
        assert pod.spec is not None
        assert pod.metadata is not None
        now = _now()
        statuses: list[dict[str, Any]] = []
        for container in pod.spec.containers:
            image = container.image or ""
            pulled = image_id(image, self.digests)
            status: dict[str, Any] = {
                "name": container.name,
                "image": image,
                "imageID": pulled or "",
                "ready": False,
                "started": False,
                "restartCount": 0,
            }
            if pulled is None:
                status["state"] = {
                    "waiting": {"reason": "ErrImagePull", "message": f"{image}: not found in the registry"}
                }
            elif image in self.never_ready:
                status["restartCount"] = 3
                status["containerID"] = f"containerd://{secrets.token_hex(32)}"
                status["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off restarting failed container",
                    }
                }
            else:
                status.update(ready=True, started=True, containerID=f"containerd://{secrets.token_hex(32)}")
                status["state"] = {"running": {"startedAt": now}}
            statuses.append(status)
        ready = all(status["ready"] for status in statuses)
        # Not loopback: the endpoints controller refuses loopback addresses for a Service's endpoints.
        n = next(self._addresses)
        ip = f"10.244.{n // 250 % 250}.{n % 250 + 1}"
        started = any(status.get("containerID") for status in statuses)
        flag = "True" if ready else "False"
        conditions = [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ]
        if not ready:
            for condition in conditions[2:]:
                condition["reason"] = "ContainersNotReady"
        return {
            "phase": "Running" if started else "Pending",
            "conditions": conditions,
            "containerStatuses": statuses,
            "hostIP": "127.0.0.1",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
        }

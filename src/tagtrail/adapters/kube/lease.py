"""Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Every replica tries, every `retry`: a Lease that does not exist is created, one this replica holds is
renewed, and one another replica holds is taken over only once this replica has seen it unchanged for the
whole `duration` (measured on its own monotonic clock from when it saw it change, so clocks that disagree
do not matter). Every write carries the resourceVersion read, so two replicas never both win.

Fencing: the leader writes only while `leading`, which holds for `renew_deadline` after the start of its
last successful renewal. A leader cut off from the API server therefore stops writing `duration -
renew_deadline` before any follower may take over; the reconciler checks `check()` right before each write.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from tagtrail.adapters.kube.connect import connect, refusals
from tagtrail.adapters.kube.leader import LeaderAddress, pod_of
from tagtrail.config.kubernetes import KubernetesConfig, LeaderElectionConfig
from tagtrail.errors import KubeError, NotLeader

log = logging.getLogger("tagtrail.lease")
ADDRESS = (
    "tagtrail.dev/address"  # the leader's URL, on the Lease (a claim: see tagtrail.adapters.kube.leader)
)


def identity() -> str:
    """This replica's name in the Lease: the Pod's name where Kubernetes runs it, and a unique suffix."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class Elector:
    """Whether this replica leads, kept true only while the Lease is renewed in time."""

    def __init__(
        self,
        settings: LeaderElectionConfig,
        cluster: KubernetesConfig,
        *,
        name: str | None = None,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.cluster = cluster
        self.name = name or identity()
        self.on_change = on_change
        self.clock = clock
        self.holder: str | None = None  # who holds the Lease, as last read
        self.address: str | None = None  # where this replica serves (written on the Lease while it leads)
        self.leader_address: str | None = None  # where the leader serves, as the API proves it (kube.leader)
        self._leader = LeaderAddress(settings.namespace, pod_of(self.name))
        self.notes: dict[str, str] = {}  # the Lease's annotations, as last read or written
        self._valid_until = 0.0  # monotonic: writes allowed before this
        self._seen: tuple[str | None, str | None] | None = None  # (holder, renewTime) last seen changed
        self._seen_at = 0.0
        self._leading = False
        self._client: AsyncClient | None = None
        self._server = ""

    @property
    def leading(self) -> bool:
        return self.clock() < self._valid_until

    def check(self) -> None:
        """The fence, right before a write: raises NotLeader unless this replica leads now."""
        if not self.leading:
            holder = f" ({self.holder} leads)" if self.holder and self.holder != self.name else ""
            raise NotLeader(f"this replica is not the leader{holder}: it writes nothing; the leader deploys")

    async def step(self) -> None:
        """One try: create, renew or take over the Lease (or see that another holds it)."""
        started = self.clock()
        try:
            if await self._try():
                self._valid_until = started + self.settings.renew_deadline.total_seconds()
        except KubeError as error:
            log.warning("the lease could not be renewed: %s", error)
        except ApiError as error:  # 409: another replica wrote first; it leads
            log.info("lost the race for the lease: %s", error.status.message)
        self._changed()

    async def _try(self) -> bool:
        client = self._connect()
        namespace, name = self.settings.namespace, self.settings.name
        now = datetime.now(UTC)
        seconds = int(self.settings.duration.total_seconds())
        try:
            async with refusals(self._server, f"get lease {namespace}/{name}"):
                lease = await client.get(Lease, name, namespace=namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            meta = ObjectMeta(name=name, namespace=namespace, annotations=self._annotations({}))
            spec = LeaseSpec(
                holderIdentity=self.name,
                leaseDurationSeconds=seconds,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            )
            async with refusals(self._server, f"create lease {namespace}/{name}"):
                await client.create(Lease(metadata=meta, spec=spec))
            self.holder = self.name
            return True
        spec = lease.spec or LeaseSpec()
        self.holder = spec.holderIdentity
        notes = dict((lease.metadata.annotations if lease.metadata else None) or {})
        self.notes = notes
        self.leader_address = (
            self.address
            if spec.holderIdentity == self.name
            else await self._leader.prove(client, self._server, spec, notes.get(ADDRESS), now)
        )
        if spec.holderIdentity != self.name:
            seen = (spec.holderIdentity, str(spec.renewTime))
            if seen != self._seen:
                self._seen, self._seen_at = seen, self.clock()
            if spec.holderIdentity and self.clock() < self._seen_at + self.settings.duration.total_seconds():
                return False  # held, and renewed within the duration as far as this replica has seen
            spec.holderIdentity, spec.acquireTime = self.name, now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        spec.renewTime, spec.leaseDurationSeconds = now, seconds
        if lease.metadata is not None:
            lease.metadata.annotations = self._annotations(notes)
        async with refusals(self._server, f"update lease {namespace}/{name}"):
            await client.replace(lease)  # carries the resourceVersion read: a concurrent write gets 409
        self.holder = self.name
        return True

    async def release(self) -> None:
        """Give the Lease up at shutdown, so a follower takes over at once instead of after `duration`."""
        was = self.leading
        self._valid_until = 0.0
        self._changed()
        if was and self._client is not None:
            try:
                lease = await self._client.get(Lease, self.settings.name, namespace=self.settings.namespace)
                if lease.spec is not None and lease.spec.holderIdentity == self.name:
                    lease.spec.holderIdentity = None
                    lease.spec.renewTime = None
                    await self._client.replace(lease)
            except (ApiError, OSError) as error:
                log.warning("the lease could not be released: %s", error)
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def annotate(self, key: str, update: Callable[[str | None], str]) -> None:
        """Sets one annotation of the Lease to `update(its value)`, written with the version read: a write
        that lands in between (the leader's renewal) is read again, never overwritten."""
        client = self._connect()
        namespace, name = self.settings.namespace, self.settings.name
        for _ in range(5):
            try:
                async with refusals(self._server, f"update lease {namespace}/{name}"):
                    lease = await client.get(Lease, name, namespace=namespace)
                    meta = lease.metadata or ObjectMeta()
                    notes = dict(meta.annotations or {})
                    notes[key] = update(notes.get(key))
                    meta.annotations, lease.metadata = notes, meta
                    await client.replace(lease)
            except ApiError as error:
                if error.status.code == 409:
                    continue
                raise KubeError(f"cannot update lease {namespace}/{name}: {error.status.message}") from None
            self.notes = notes
            return
        raise KubeError(f"lease {namespace}/{name} kept changing while it was updated", transient=True)

    def _annotations(self, notes: dict[str, str]) -> dict[str, str]:
        """The Lease's annotations with this replica's address, for followers to forward webhooks to."""
        if self.address:
            return {**notes, ADDRESS: self.address}
        return {k: v for k, v in notes.items() if k != ADDRESS}

    def _connect(self) -> AsyncClient:
        if self._client is None:
            self._client, self._server = connect(self.cluster)
        return self._client

    def _changed(self) -> None:
        leading = self.leading
        if leading != self._leading:
            self._leading = leading
            log.info(
                "%s %s the leader (lease %s/%s)",
                self.name,
                "is now" if leading else "is no longer",
                self.settings.namespace,
                self.settings.name,
            )
            if self.on_change is not None:
                self.on_change(leading)

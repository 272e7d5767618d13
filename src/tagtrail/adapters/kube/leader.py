"""Where the leader serves, as far as the Kubernetes API proves it (a follower sends it webhooks and reads its
decisions, with the replicas' secret).

The Lease's address annotation is written by whoever may update the Lease, so it is only a claim: it is
believed when it is exactly `http://<IP>:<port>` (no name to resolve, no path, query or userinfo), when the
Lease is current (held, and renewed within its own duration), and when the IP is the `status.podIP` of the
Pod that holds it, read from the API in the Lease's namespace (the holder's identity is `<pod>_<suffix>`),
and that Pod runs as this replica's own service account (whoever may update the Lease could otherwise name
another app's Pod; only who may create Pods can make one of that account, and they hold the secret anyway).
Anything else is no leader address: the follower keeps its webhooks for the leader's poll and shows its own
decisions.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.resources.core_v1 import Pod

from tagtrail.adapters.kube.connect import refusals
from tagtrail.errors import KubeError

log = logging.getLogger("tagtrail.lease")
_POD_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a DNS subdomain, as every Pod's name


def leader_url(claimed: str | None) -> tuple[str, str] | None:
    """`(url, ip)` when `claimed` is exactly http://IP:PORT (IPv6 in brackets), else None. The URL is built
    again from the IP and port read from the claim and must spell the claim: another scheme, no port, a
    name, userinfo, a path, a query or a fragment (even empty), or another spelling of the IP all differ."""
    if not claimed or len(claimed) > 64:
        return None
    try:
        parts = urlsplit(claimed)
        ip = ipaddress.ip_address(parts.hostname or "")
        shown = f"[{ip}]" if ip.version == 6 else str(ip)
        url = f"http://{shown}:{parts.port}"
    except ValueError:
        return None
    return (url, str(ip)) if url == claimed else None


def current(spec: LeaseSpec, now: datetime) -> bool:
    """Held by someone and renewed within the Lease's own duration (an expired Lease names no leader)."""
    if not spec.holderIdentity or spec.renewTime is None or not spec.leaseDurationSeconds:
        return False
    return now < spec.renewTime + timedelta(seconds=spec.leaseDurationSeconds)


def pod_of(holder: str) -> str:
    """The Pod's name in a holder identity (tagtrail.adapters.kube.lease.identity: `<pod>_<suffix>`)."""
    return holder.rpartition("_")[0] or holder


PROOF_SECONDS = 60  # a proof's age at most: whoever may update the Lease can keep it current after the Pod


class LeaderAddress:
    """The leader's URL once proven, remembered per (holder, claimed address) for PROOF_SECONDS: a Pod's IP
    does not change while it lives, a new holder or a new claim is proven again, and so is an old proof (the
    Pod may be gone and its IP another Pod's)."""

    def __init__(self, namespace: str, me: str) -> None:
        self.namespace = namespace
        self.me = me  # this replica's Pod: the holder's must run as its service account
        self._account: str | None = None
        self._proven: tuple[str, str, str | None, str | None] | None = None  # holder, claimed, url, why not
        self._proven_at: datetime | None = None
        self._told: str | None = None

    async def prove(
        self, client: AsyncClient, server: str, spec: LeaseSpec, claimed: str | None, now: datetime
    ) -> str | None:
        holder, claim = spec.holderIdentity or "", claimed or ""
        url: str | None = None
        why: str | None = "the Lease is not current"
        fresh = self._proven_at is not None and now - self._proven_at < timedelta(seconds=PROOF_SECONDS)
        if not current(spec, now):
            self._proven = None
        elif fresh and self._proven is not None and self._proven[:2] == (holder, claim):
            url, why = self._proven[2:]
        else:
            url, why, final = await self._check(client, server, holder, claimed)
            if final:  # an API server that did not answer, or a Pod not there yet, is asked again next time
                self._proven, self._proven_at = (holder, claim, url, why), now
        self._tell(url, why, holder)
        return url

    def _tell(self, url: str | None, why: str | None, holder: str) -> None:
        """Each change of belief logged once (a follower reads the Lease every few seconds)."""
        told = why or f"proven: {url}"
        if told == self._told:
            return
        self._told = told
        if why is None:
            log.info("the leader serves at %s (the IP of its Pod %s/%s)", url, self.namespace, pod_of(holder))
        else:
            log.warning(
                "the leader's address on the Lease is not believed (%s); webhooks that reach this replica wait"
                " for the leader's poll, and its dashboard shows its own decisions",
                why,
            )

    async def _check(
        self, client: AsyncClient, server: str, holder: str, claimed: str | None
    ) -> tuple[str | None, str | None, bool]:
        """(the URL, None) when proven, else (None, why); and whether the answer is final."""
        parsed = leader_url(claimed)
        if parsed is None:
            return None, "it is not http://IP:PORT" if claimed else "there is none", True
        url, ip = parsed
        pod = pod_of(holder)
        if not _POD_NAME.fullmatch(pod):
            return None, f"the holder {holder!r} names no Pod", True
        found = await self._pod(client, server, pod, f"no Pod {self.namespace}/{pod} holds the Lease")
        if isinstance(found, str):  # asked again at the next renewal: a Pod exists before it holds the Lease
            return None, found, False
        pod_ip = found.status.podIP if found.status is not None else None
        if pod_ip is None:
            return None, f"Pod {self.namespace}/{pod} has no IP yet", False
        leaving = found.metadata is not None and found.metadata.deletionTimestamp is not None
        if found.status is None or found.status.phase != "Running" or leaving:
            # a Pod that failed (evicted) keeps its object and podIP while the IP goes to another Pod
            return None, f"Pod {self.namespace}/{pod} is not running", False
        if not _same_ip(pod_ip, ip):
            return None, f"it is not the IP of Pod {self.namespace}/{pod}", True
        if self._account is None:
            missing = f"this replica's own Pod {self.namespace}/{self.me} is not there to compare with"
            mine = (
                await self._pod(client, server, self.me, missing) if _POD_NAME.fullmatch(self.me) else missing
            )
            if isinstance(mine, str):
                return None, mine, False
            self._account = _account(mine)
        if _account(found) != self._account:
            return None, f"Pod {self.namespace}/{pod} does not run as this replica's service account", True
        return url, None, True

    async def _pod(self, client: AsyncClient, server: str, name: str, missing: str) -> Pod | str:
        """The Pod, or why not (`missing` when the API has none of that name)."""
        try:
            async with refusals(server, f"get pod {self.namespace}/{name}"):
                return await client.get(Pod, name, namespace=self.namespace)
        except ApiError:
            return missing
        except KubeError as error:
            return str(error)


def _account(pod: Pod) -> str:
    return (pod.spec.serviceAccountName if pod.spec is not None else None) or "default"


def _same_ip(one: str, other: str) -> bool:
    try:
        return ipaddress.ip_address(one) == ipaddress.ip_address(other)
    except ValueError:
        return False

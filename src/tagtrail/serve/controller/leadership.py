"""More than one `tagtrail serve`: which replica leads (a Lease, tagtrail.adapters.kube.lease), wired into the
controller. The leader reconciles and writes; a follower plans (its dashboard and probes stay current), its
writes are fenced off, and it asks the leader only at the address the API proves, with the replicas' own
secret (TAGTRAIL_REPLICA_SECRET); the replica that becomes the leader reconciles every app at once, so a push
that arrived during the handover is deployed by it (and only by it)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Callable, Mapping

import httpx

from tagtrail.adapters.kube.lease import Elector
from tagtrail.adapters.refs import Matcher
from tagtrail.config import Config
from tagtrail.config.kubernetes import KubernetesConfig, LeaderElectionConfig
from tagtrail.errors import TagtrailError
from tagtrail.serve.controller.periodic import every
from tagtrail.serve.metrics import Metrics

ENV = "TAGTRAIL_LEADER_ELECTION"
# Replica-to-replica calls (webhooks passed on, decisions read) carry this per-install secret, never the
# webhook token: a token given to CI or a registry cannot read the decision log or pose as a replica.
SECRET_ENV = "TAGTRAIL_REPLICA_SECRET"  # noqa: S105 (the variable's name, not a secret)
log = logging.getLogger("tagtrail.controller")


def elector_for(
    config: Config,
    metrics: Metrics,
    hint_all: Callable[[str], None],
    environ: Mapping[str, str] = os.environ,
) -> Elector | None:
    """serve.leader_election, or TAGTRAIL_LEADER_ELECTION=NAMESPACE/NAME (what deploy/kubernetes sets, so
    that its replicas elect a leader whatever tagtrail.yaml says; in the cluster, by its service account).
    Leading is shown in `metrics`; the replica that becomes the leader reconciles everything (`hint_all`)."""
    settings, cluster = config.serve.leader_election, config.kubernetes
    named = environ.get(ENV, "").strip()
    if settings is None and named:
        namespace, slash, name = named.partition("/")
        if not slash or not namespace or not name:
            raise TagtrailError(f"{ENV}={named!r}: say NAMESPACE/NAME of the Lease, e.g. tagtrail/tagtrail")
        settings = LeaderElectionConfig(namespace=namespace, name=name)
    if settings is None:
        return None
    cluster = cluster or KubernetesConfig()  # $KUBECONFIG, ~/.kube/config, else the in-cluster account

    def changed(leading: bool) -> None:
        metrics.leader.set(1 if leading else 0)
        if leading:
            hint_all("this replica became the leader")

    return Elector(settings, cluster, on_change=changed)


async def lead(elector: Elector, metrics: Metrics) -> None:
    """Try and renew the Lease every `retry` until cancelled (a turn that raises: `periodic.every`); on the
    way out, give it up if this replica holds it, so a follower takes over at once."""

    async def renew() -> None:
        await elector.step()
        await asyncio.sleep(elector.settings.retry.total_seconds())

    try:
        await every("lease", renew, metrics)
    finally:
        await elector.release()


def advertise(elector: Elector | None, host: str, port: int, environ: Mapping[str, str] = os.environ) -> None:
    """Where this replica serves, for the Lease: the Pod's IP (POD_IP) where Kubernetes gives it, else the
    address it listens on. Followers believe it only as http://IP:PORT matching the holder Pod's IP."""
    if elector is not None:
        ip = environ.get("POD_IP") or ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host)  # noqa: S104
        try:
            ip = str(ipaddress.ip_address(ip))  # the spelling tagtrail.adapters.kube.leader compares
        except ValueError:
            log.warning("this replica's address %r is not an IP: followers cannot pass it webhooks", ip)
        shown = f"[{ip}]" if ":" in ip else ip
        elector.address = f"http://{shown}:{port}"


def leader(elector: Elector | None, environ: Mapping[str, str] = os.environ) -> tuple[str, str] | None:
    """The proven leader's URL and the replicas' secret, on a follower that has both; else None."""
    secret = environ.get(SECRET_ENV)
    if elector is None or elector.leading or not elector.leader_address or not secret:
        return None
    return elector.leader_address, secret


def client(secret: str) -> httpx.AsyncClient:
    """For a call to the leader: straight to its Pod (no proxy from the environment, no redirect followed),
    with the replicas' own secret, never a webhook token."""
    return httpx.AsyncClient(
        timeout=5.0,
        trust_env=False,
        follow_redirects=False,
        headers={"Authorization": f"Bearer {secret}"},
    )


async def forward(
    elector: Elector | None, matcher: Matcher, image: str, tag: str | None, source: str
) -> str | None:
    """A follower's webhook, passed to the leader (POST /internal/hint), so a push is deployed at once
    whichever replica the Service sent it to; else the leader's next poll finds it."""
    app = matcher.app_of_pushed(image)
    if app is None:
        return None
    found = leader(elector)
    if found is None:
        why = "no leader address proven" if os.environ.get(SECRET_ENV) else f"{SECRET_ENV} is not set"
        log.warning(
            "a %s webhook for %s reached a follower and cannot be passed on (%s); the leader's"
            " next poll finds the push",
            source,
            app,
            why,
        )
        return app
    url, secret = found
    try:
        async with client(secret) as http:
            answer = await http.post(
                f"{url}/internal/hint", json={"image": image, "tag": tag, "source": source}
            )
        answer.raise_for_status()
    except httpx.HTTPError as error:
        log.warning(
            "the %s webhook for %s could not be passed to the leader: %s", source, app, type(error).__name__
        )
    else:
        log.info("passed a %s webhook for %s to the leader", source, app)
    return app

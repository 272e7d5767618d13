"""More than one `tagtrail serve`: which replica leads (a Lease, tagtrail.kube.lease), wired into the
controller. The leader reconciles and writes; a follower plans (its dashboard and probes stay current) and
its writes are fenced off; the replica that becomes the leader reconciles every app at once, so a push that
arrived during the handover is deployed by it (and only by it)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from tagtrail.config.kubernetes import KubernetesConfig, LeaderElectionConfig
from tagtrail.errors import TagtrailError
from tagtrail.kube.lease import Elector
from tagtrail.reconcile import matcher_for

ENV = "TAGTRAIL_LEADER_ELECTION"
log = logging.getLogger("tagtrail.controller")

if TYPE_CHECKING:
    from tagtrail.controller.controller import Controller


def elector_for(controller: Controller, environ: Mapping[str, str] = os.environ) -> Elector | None:
    """serve.leader_election, or TAGTRAIL_LEADER_ELECTION=NAMESPACE/NAME (what deploy/kubernetes sets, so
    that its replicas elect a leader whatever tagtrail.yaml says; in the cluster, by its service account)."""
    settings, cluster = controller.config.serve.leader_election, controller.config.kubernetes
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
        controller.metrics.leader.set(1 if leading else 0)
        if leading:
            controller.hint_all("this replica became the leader")

    return Elector(settings, cluster, on_change=changed)


def advertise(controller: Controller, host: str, port: int, environ: Mapping[str, str] = os.environ) -> None:
    """Where this replica serves, for the Lease: the Pod's IP (POD_IP) where Kubernetes gives it, else the
    address it listens on."""
    if controller.elector is not None:
        ip = environ.get("POD_IP") or ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host)  # noqa: S104
        shown = f"[{ip}]" if ":" in ip else ip
        controller.elector.address = f"http://{shown}:{port}"


async def forward(controller: Controller, image: str, tag: str | None, source: str) -> str | None:
    """A follower's webhook: passed to the leader's generic hook (its token is shared by the replicas), so a
    push is deployed at once whichever replica the Service sent it to; else the leader's next poll finds it."""
    app = matcher_for(controller.config).app_of_pushed(image)
    elector = controller.elector
    token = os.environ.get(controller.config.serve.webhooks.generic.token_env)
    if app is None or elector is None:
        return app
    if not elector.leader_address or not token:
        log.warning(
            "a %s webhook for %s reached a follower and cannot be passed on (%s); the leader's"
            " next poll finds the push",
            source,
            app,
            "no leader address on the Lease" if token else "no generic webhook token to pass it with",
        )
        return app
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            answer = await client.post(
                f"{elector.leader_address}/hooks/generic",
                json={"image": image, "tag": tag},
                headers={"Authorization": f"Bearer {token}"},
            )
        answer.raise_for_status()
    except httpx.HTTPError as error:
        log.warning(
            "the %s webhook for %s could not be passed to the leader: %s", source, app, type(error).__name__
        )
    else:
        log.info("passed a %s webhook for %s to the leader", source, app)
    return app

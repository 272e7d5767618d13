"""More than one `tagtrail serve`: which replica leads (a Lease, tagtrail.kube.lease), wired into the
controller. The leader reconciles and writes; a follower plans (its dashboard and probes stay current) and
its writes are fenced off; the replica that becomes the leader reconciles every app at once, so a push that
arrived during the handover is deployed by it (and only by it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tagtrail.config.kubernetes import KubernetesConfig, LeaderElectionConfig
from tagtrail.errors import TagtrailError
from tagtrail.kube.lease import Elector

ENV = "TAGTRAIL_LEADER_ELECTION"

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

"""More than one `tagtrail serve`: which replica leads (a Lease, tagtrail.kube.lease), wired into the
controller. The leader reconciles and writes; a follower plans (its dashboard and probes stay current) and
its writes are fenced off; the replica that becomes the leader reconciles every app at once, so a push that
arrived during the handover is deployed by it (and only by it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tagtrail.kube.lease import Elector

if TYPE_CHECKING:
    from tagtrail.controller.controller import Controller


def elector_for(controller: Controller) -> Elector | None:
    settings, cluster = controller.config.serve.leader_election, controller.config.kubernetes
    if settings is None or cluster is None:
        return None

    def changed(leading: bool) -> None:
        controller.metrics.leader.set(1 if leading else 0)
        if leading:
            controller.hint_all("this replica became the leader")

    return Elector(settings, cluster, on_change=changed)

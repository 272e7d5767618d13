"""Retention in direct mode on the real control plane: a pin annotated on the workload (by hand, or set by
`pin` while its rollout is pending) and every ReplicaSet the Deployment (ControllerRevision a StatefulSet)
can roll back to are kept, however old; a ReplicaSet whose revision annotation was edited into garbage stays a rollback target, and `history`
skips it with a warning naming it instead of stopping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import ControllerRevision, ReplicaSet
from lightkube.types import PatchType

from bench.cli import run
from bench.kubelab import DEPLOYMENT, Lab, NewLab, deployment
from bench.serve import wait_for

RETENTION = "retention:\n  keep_deploy: 1\n  rollback: 1\n"


def images_of(client: Client, namespace: str) -> dict[str, str]:
    """image → name of the ReplicaSet whose Pod template runs it."""
    sets: Any = client.list(ReplicaSet, namespace=namespace)
    return {rs.spec.template.spec.containers[0].image: rs.metadata.name for rs in sets}


def verdicts(out: str) -> dict[str, Any]:
    [item] = json.loads(out)["apps"]
    return {t["tag"]: t["why"] for t in item["tags"]}


def set_image(client: Client, kind: Any, image: str, namespace: str) -> None:
    """What `kubectl set image KIND/web web=IMAGE` sends."""
    template = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
    client.patch(kind, "web", template, namespace=namespace, patch_type=PatchType.STRATEGIC)


@pytest.fixture
def lab(new_lab: NewLab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    made = new_lab(extra=RETENTION)
    monkeypatch.chdir(made.root)
    return made


def test_prune_keeps_the_cluster_pins_and_every_replica_set_it_can_roll_back_to(
    capsys: pytest.CaptureFixture[str], lab: Lab, namespace: str, admin: Client
) -> None:
    old, pinned, now = (lab.ref("web", n) for n in range(3))
    tags = [b.tag for b in lab.builds["web"]]
    admin.create(deployment("web", namespace, [{"name": "web", "image": old}]))
    wait_for(lambda: old in images_of(admin, namespace), what="web's first ReplicaSet")
    # `kubectl set image`, then a pin annotated by hand: neither is what tagtrail deployed
    set_image(admin, DEPLOYMENT, now, namespace)
    pin = {"metadata": {"annotations": {"tagtrail.dev/pin.web": tags[1]}}}
    admin.patch(DEPLOYMENT, "web", pin, namespace=namespace, patch_type=PatchType.MERGE)
    sets = wait_for(lambda: len(found := images_of(admin, namespace)) == 2 and found, what="a second one")

    code, out, err = run(capsys, "prune", "--json")
    assert code == 0, err
    found = verdicts(out)
    assert [found[t] for t in tags] == ["rollback-target", "pinned", "deployed"]
    assert pinned not in sets  # kept by its annotation alone

    garbage = {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "one"}}}
    admin.patch(ReplicaSet, sets[old], garbage, namespace=namespace, patch_type=PatchType.MERGE)
    code, out, err = run(capsys, "history", "web", "--json")
    assert code == 0, err
    assert [e["tag"] for e in json.loads(out)] == [tags[2]]
    assert f"warning: {namespace}/replicaset/{sets[old]} skipped" in err
    code, out, err = run(capsys, "prune", "--json")
    assert code == 0, err
    assert verdicts(out)[tags[0]] == "rollback-target"


STATEFULSET = create_namespaced_resource("apps", "v1", "StatefulSet", "statefulsets")


def revisions_of(client: Client, namespace: str) -> int:
    return len(list(client.list(ControllerRevision, namespace=namespace)))


def test_prune_keeps_every_revision_a_stateful_set_can_roll_back_to(
    capsys: pytest.CaptureFixture[str], lab: Lab, namespace: str, admin: Client
) -> None:
    """`kubectl rollout undo statefulset/web` goes back to a ControllerRevision: its build stays."""
    tags = [b.tag for b in lab.builds["web"]]
    labels = {"app": "web"}
    spec = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": lab.ref("web", 0)}]},
    }
    body = {"replicas": 1, "serviceName": "web", "selector": {"matchLabels": labels}, "template": spec}
    admin.create(STATEFULSET.from_dict({"metadata": {"name": "web", "namespace": namespace}, "spec": body}))
    wait_for(lambda: revisions_of(admin, namespace) == 1, what="web's first ControllerRevision")
    set_image(admin, STATEFULSET, lab.ref("web", 2), namespace)
    wait_for(lambda: revisions_of(admin, namespace) == 2, what="a second one")

    code, out, err = run(capsys, "prune", "--json")
    assert code == 0, err
    found = verdicts(out)
    assert [found[t] for t in tags] == ["rollback-target", "old-build", "deployed"]

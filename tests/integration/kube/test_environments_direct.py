"""Two environments in one cluster, each patching its own namespace (direct mode): staging takes the newest
build and waits for its rollout, prod takes it from staging (soak 0) in the same deploy, its workload
annotated with the environment the build came from and the evidence; staging's workload is left alone by
prod's deploy and the other way round."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Namespace

from bench.cli import run
from bench.kube import ControlPlane
from bench.kubelab import Lab, NewLab, annotations, deployment, spec_images
from bench.kubelet import Kubelet


@pytest.fixture
def prod_namespace(control_plane: ControlPlane, namespace: str) -> Iterator[str]:
    name = f"{namespace}-prod"[-63:].lstrip("-")
    control_plane.create_namespace(name)
    with Kubelet(control_plane, name, node=f"node-{name}"[:63]) as node:
        yield name
    assert not node.errors, f"the stand-in kubelet failed: {node.errors[:3]}"
    with control_plane.client() as client:
        client.delete(Namespace, name)


@pytest.fixture
def lab(
    new_lab: NewLab,
    namespace: str,
    prod_namespace: str,
    admin: Client,
    kubelet: Kubelet,
    monkeypatch: pytest.MonkeyPatch,
) -> Lab:
    made = new_lab()
    config = made.root / "tagtrail.yaml"
    text = config.read_text().replace("  kubernetes:\n    rollout_timeout: 60s\n", "")
    lanes = (
        "environments:\n"
        f"  staging:\n    namespaces: [{namespace}]\n    kubernetes: {{rollout_timeout: 60s}}\n"
        f"  prod:\n    from: staging\n    namespaces: [{prod_namespace}]\n    kubernetes: {{rollout_timeout: 60s}}\n"
    )
    config.write_text(text + lanes)
    for where in (namespace, prod_namespace):
        admin.create(deployment("web", where, [{"name": "web", "image": made.ref("web", 0)}], deadline=3))
    monkeypatch.chdir(made.root)
    return made


def test_each_environment_patches_its_own_namespace_and_prod_says_where_the_build_came_from(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client, prod_namespace: str
) -> None:
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, out + err
    staging, prod = json.loads(out)
    assert (staging["environment"], prod["environment"]) == ("staging", "prod")
    assert [(p["app"], p["reason"]) for p in prod["apps"]] == [("web", "promoted")]
    newest = lab.ref("web", 2)
    assert spec_images(admin, "web", lab.namespace) == [newest]
    assert spec_images(admin, "web", prod_namespace) == [newest]
    notes = annotations(admin, "web", prod_namespace)
    assert notes["tagtrail.dev/reason.web"] == "promoted"
    assert notes["tagtrail.dev/promoted.web"] == "staging"
    assert notes["tagtrail.dev/evidence.web"].startswith(lab.builds["web"][2].digest + " rolled out ")
    assert "tagtrail.dev/promoted.web" not in annotations(admin, "web", lab.namespace)

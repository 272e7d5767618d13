"""The Roles shipped in deploy/kubernetes/rbac are enough for their mode: tagtrail runs with a
ServiceAccount token bound to exactly that Role's rules against the real API server (RBAC on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.models.rbac_v1 import PolicyRule
from ruamel.yaml import YAML

from bench.cli import run
from bench.kube import ControlPlane
from bench.kubelab import DEPLOYMENT, NewLab, deployment, spec_images
from bench.kubelet import Kubelet

from .test_faults import use_kubeconfig

RBAC = Path(__file__).parents[3] / "deploy" / "kubernetes" / "rbac"


def role_rules(name: str) -> list[PolicyRule]:
    docs: list[dict[str, Any]] = list(YAML(typ="safe").load_all((RBAC / name).read_text()))
    [role] = [d for d in docs if d["kind"] == "Role"]
    [binding] = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tagtrail", "namespace": "tagtrail"}]
    return [PolicyRule.from_dict(rule) for rule in role["rules"]]


@pytest.mark.parametrize("mode", ["direct", "observe"])
def test_the_shipped_role_is_enough_for_its_mode(
    mode: str,
    new_lab: NewLab,
    namespace: str,
    kubeconfig: Path,
    control_plane: ControlPlane,
    kubelet: Kubelet,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = new_lab(
        mode="direct" if mode == "direct" else "gitops",
    )
    with control_plane.client() as admin:
        admin.create(deployment("web", namespace, [{"name": "web", "image": lab.ref("web", 0)}]))
    token = control_plane.service_account_token(namespace, "tagtrail", role_rules(f"{mode}.yaml"))
    use_kubeconfig(lab, control_plane.kubeconfig_dict(token))
    monkeypatch.chdir(lab.root)
    if mode == "direct":
        code, out, err = run(capsys, "deploy", "--json")
        assert code == 0, out + err
        assert "warning" not in err  # the Event was allowed too
        with control_plane.client() as admin:
            assert spec_images(admin, "web", namespace) == [lab.ref("web", 2)]
        code, out, err = run(capsys, "history", "web", "--json")
        assert code == 0, err
        assert len(json.loads(out)) == 2
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["cluster"]["total"] == 2
    code, out, err = run(capsys, "prune", "--json")  # reads every workload and its revisions
    assert code == 0, err


def test_the_observe_role_may_not_change_a_workload(control_plane: ControlPlane, namespace: str) -> None:
    token = control_plane.service_account_token(namespace, "tagtrail", role_rules("observe.yaml"))
    with Client(KubeConfig.from_dict(control_plane.kubeconfig_dict(token))) as client:
        with pytest.raises(ApiError) as refused:
            client.patch(DEPLOYMENT, "web", {"metadata": {"labels": {"x": "y"}}}, namespace=namespace)
        assert refused.value.status.code == 403


def test_every_rule_of_the_direct_role_is_needed_and_its_absence_is_named(
    new_lab: NewLab,
    namespace: str,
    kubeconfig: Path,
    control_plane: ControlPlane,
    kubelet: Kubelet,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Remove one rule at a time: deploy, status and history together then say which right is missing
    (`forbids tagtrail to VERB RESOURCE`), as an error or, for the Event, a warning beside a deploy made."""
    lab = new_lab()
    with control_plane.client() as admin:
        admin.create(deployment("web", namespace, [{"name": "web", "image": lab.ref("web", 0)}]))
    monkeypatch.chdir(lab.root)
    rules = role_rules("direct.yaml")
    for index, rule in enumerate(rules):
        with control_plane.client() as admin:  # back to the first build, so the deploy has work to do
            patch = {
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": lab.ref("web", 0)}]}}}
            }
            admin.patch(DEPLOYMENT, "web", patch, namespace=namespace)
        token = control_plane.service_account_token(
            namespace, f"without-{index}", [r for i, r in enumerate(rules) if i != index]
        )
        use_kubeconfig(lab, control_plane.kubeconfig_dict(token))
        said = ""
        for args in (("deploy",), ("status",), ("history", "web")):
            _, out, err = run(capsys, *args)
            said += out + err
        wanted = f"forbids tagtrail to {'list' if 'list' in rule.verbs else rule.verbs[0]} "
        assert wanted in said, f"without {rule.resources} {rule.verbs} nothing said so:\n{said}"
        assert any(f"{wanted}{resource}" in said for resource in rule.resources or []), said

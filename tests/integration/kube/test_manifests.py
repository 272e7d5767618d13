"""deploy/kubernetes applied to the real API server (kube-apiserver 1.20.2, RBAC on): a server-side dry run
and then for real; the Deployment has 2 replicas, anti-affinity and a PodDisruptionBudget; the Lease Role
is enough for leader election and each of its rules is needed.

One deviation, said here: 1.20 serves PodDisruptionBudget only as policy/v1beta1 (policy/v1 came in 1.21),
so the rendered PDB is applied under that version; every other object is applied exactly as rendered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Namespace
from lightkube.resources.rbac_authorization_v1 import Role
from ruamel.yaml import YAML

from bench.kube import ControlPlane
from tagtrail.adapters.kube.lease import Elector
from tagtrail.config.kubernetes import KubernetesConfig, LeaderElectionConfig

MANIFESTS = Path(__file__).parents[3] / "deploy" / "kubernetes"


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def rendered(kubeconfig: Path, control_plane: ControlPlane) -> Iterator[list[dict[str, Any]]]:
    docs = [d for d in YAML(typ="safe").load_all(kubectl(kubeconfig, "kustomize", str(MANIFESTS))) if d]
    yield docs
    with control_plane.client() as client:
        client.delete(Namespace, "tagtrail")
        deadline = time.monotonic() + 60
        while True:  # the namespace controller empties it first; the next test makes it again
            try:
                client.get(Namespace, "tagtrail")
            except ApiError as error:
                if error.status.code == 404:
                    break
                raise
            assert time.monotonic() < deadline, "namespace tagtrail still there 60 s after its deletion"
            time.sleep(0.2)


def for_1_20(docs: list[dict[str, Any]]) -> str:
    items = [
        {**doc, "apiVersion": "policy/v1beta1"} if doc["kind"] == "PodDisruptionBudget" else doc
        for doc in docs
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def test_the_manifests_apply_with_two_replicas_a_pdb_and_the_lease_role(
    kubeconfig: Path, control_plane: ControlPlane, rendered: list[dict[str, Any]]
) -> None:
    kinds = sorted(d["kind"] for d in rendered)
    assert kinds == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "ConfigMap",
            "PodDisruptionBudget",
            "Deployment",
            "Service",
        ]
    )
    body = for_1_20(rendered)
    kubectl(kubeconfig, "create", "namespace", "tagtrail")  # the README's first step (its Secrets go there)
    dry = kubectl(kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=body)
    assert "deployment.apps/tagtrail created (server dry run)" in dry
    assert "poddisruptionbudget.policy/tagtrail created (server dry run)" in dry
    assert "role.rbac.authorization.k8s.io/tagtrail-lease created (server dry run)" in dry
    kubectl(kubeconfig, "apply", "-f", "-", stdin=body)
    with control_plane.client() as client:
        deployment = client.get(Deployment, "tagtrail", namespace="tagtrail")
        assert deployment.spec is not None
        assert deployment.spec.replicas == 2
        pod = deployment.spec.template.spec
        assert pod is not None
        assert pod.affinity is not None
        assert pod.affinity.podAntiAffinity is not None
        [container] = pod.containers
        assert container.readinessProbe is not None
        assert container.readinessProbe.httpGet is not None
        assert container.readinessProbe.httpGet.path == "/readyz"
        assert container.securityContext is not None
        assert container.securityContext.readOnlyRootFilesystem is True
        assert pod.securityContext is not None
        assert pod.securityContext.runAsNonRoot is True


def elect(control_plane: ControlPlane, token: str, folder: Path) -> Elector:
    path = folder / f"kubeconfig-{time.monotonic_ns()}"
    path.write_text(json.dumps(control_plane.kubeconfig_dict(token)))
    elector = Elector(LeaderElectionConfig(), KubernetesConfig(kubeconfig=str(path), namespaces=["tagtrail"]))

    async def once() -> None:
        try:
            await elector.step()
            await elector.step()  # the second renews (get and update)
        finally:
            await elector.release()

    asyncio.run(once())
    return elector


def test_the_lease_role_is_enough_and_each_rule_is_needed(
    kubeconfig: Path,
    control_plane: ControlPlane,
    rendered: list[dict[str, Any]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kubectl(kubeconfig, "create", "namespace", "tagtrail")
    kubectl(kubeconfig, "apply", "-f", "-", stdin=for_1_20(rendered))
    caplog.set_level(logging.INFO, logger="tagtrail.lease")
    with control_plane.client() as client:
        token = control_plane.account_token("tagtrail", "tagtrail")
        role = client.get(Role, "tagtrail-lease", namespace="tagtrail")
        rules = list(role.rules or [])
        leader = elect(control_plane, token, tmp_path)
        assert leader.holder == leader.name  # every rule: the Lease created, then renewed
        assert "could not" not in caplog.text
        assert [r.verbs for r in rules] == [["create"], ["get", "update"], ["get"]]  # the last: pods
        for index, verb in ((0, "create"), (1, "get")):
            with contextlib.suppress(ApiError):  # gone already when the last try could not create it
                client.delete(Lease, "tagtrail", namespace="tagtrail")  # so the first step must create it
            role.rules = [r for i, r in enumerate(rules) if i != index]
            role = client.replace(role)
            caplog.clear()
            deadline = time.monotonic() + 10
            while f"forbids tagtrail to {verb} lease" not in caplog.text:  # RBAC's cache takes a moment
                assert time.monotonic() < deadline, (
                    f"without the rule for {verb}, nothing failed:\n{caplog.text}"
                )
                elector = elect(control_plane, token, tmp_path)
                assert elector.holder != elector.name or f"forbids tagtrail to {verb}" in caplog.text
            role.rules = rules
            role = client.replace(role)
        # the last rule: a follower reads the leader's Pod, the only proof of the address on the Lease
        for kept, said in (
            (rules, "no Pod tagtrail/leader holds the Lease"),
            (rules[:2], "forbids tagtrail to get pod"),
        ):
            role.rules = kept
            role = client.replace(role)
            caplog.clear()
            deadline = time.monotonic() + 10
            while said not in caplog.text:  # RBAC's cache takes a moment
                assert time.monotonic() < deadline, f"the follower never said {said!r}:\n{caplog.text}"
                follow(control_plane, token, tmp_path)


def follow(control_plane: ControlPlane, token: str, folder: Path) -> None:
    """A leader (no Pod of its name exists) writes its address on the Lease; a follower reads it."""
    path = folder / f"kubeconfig-{time.monotonic_ns()}"
    path.write_text(json.dumps(control_plane.kubeconfig_dict(token)))
    cluster = KubernetesConfig(kubeconfig=str(path), namespaces=["tagtrail"])
    leader = Elector(LeaderElectionConfig(), cluster, name="leader_1")
    follower = Elector(LeaderElectionConfig(), cluster, name="follower_1")
    leader.address = "http://10.244.0.9:8080"

    async def once() -> None:
        try:
            await leader.step()
            await follower.step()
            assert follower.leader_address is None
        finally:
            await follower.release()
            await leader.release()

    asyncio.run(once())

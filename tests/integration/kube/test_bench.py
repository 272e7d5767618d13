"""The Kubernetes test bench is a real control plane: the controller manager rolls Deployments out, the
stand-in kubelet makes their Pods ready with the image's digest, progress deadlines pass, RBAC refuses.

All through lightkube's async client, the one the Kubernetes target uses.
"""

from __future__ import annotations

import hashlib
import time
from base64 import b64decode
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.models.apps_v1 import DeploymentSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.models.rbac_v1 import PolicyRule, RoleRef, Subject
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Pod, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding
from lightkube.types import PatchType

from bench.kube import BenchMissing, ControlPlane, binaries
from bench.kubelet import Kubelet, image_id

pytestmark = pytest.mark.anyio

T = TypeVar("T")


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


DIGEST_1, DIGEST_2 = _digest("web main.1"), _digest("web main.2")
WEB_1 = f"registry.lan/x/web:main.1@{DIGEST_1}"
WEB_2 = f"registry.lan/x/web:main.2@{DIGEST_2}"
REVISION = "deployment.kubernetes.io/revision"


def connect(kubeconfig: Path | dict[str, Any]) -> AsyncClient:
    """lightkube's async client, as the Kubernetes target makes it; use it in `async with`."""
    config = (
        KubeConfig.from_file(kubeconfig) if isinstance(kubeconfig, Path) else KubeConfig.from_dict(kubeconfig)
    )
    return AsyncClient(config, field_manager="tagtrail-tests")


async def until(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0) -> T:
    """The first truthy answer of `check`, polled; fails the test naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:.0f} s still waiting for {what}")
        await anyio.sleep(0.1)


def web(image: str, namespace: str, *, replicas: int = 2) -> Deployment:
    labels = {"app": "web"}
    return Deployment(
        metadata=ObjectMeta(name="web", namespace=namespace),
        spec=DeploymentSpec(
            replicas=replicas,
            selector=LabelSelector(matchLabels=labels),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=labels),
                spec=PodSpec(containers=[Container(name="web", image=image)]),
            ),
        ),
    )


async def rolled_out(client: AsyncClient, namespace: str) -> Deployment | None:
    """The Deployment once every replica runs its current template and is ready."""
    deployment = await client.get(Deployment, "web", namespace=namespace)
    status, spec = deployment.status, deployment.spec
    assert status is not None
    assert spec is not None
    assert deployment.metadata is not None
    done = (
        status.observedGeneration == deployment.metadata.generation
        and status.updatedReplicas == spec.replicas
        and status.readyReplicas == spec.replicas
        and status.replicas == spec.replicas
    )
    return deployment if done else None


async def pods(client: AsyncClient, namespace: str) -> list[Pod]:
    return [pod async for pod in client.list(Pod, namespace=namespace)]


async def test_a_deployment_becomes_ready_with_its_image_digest(
    kubeconfig: Path, namespace: str, kubelet: Kubelet
) -> None:
    async with connect(kubeconfig) as client:
        await client.create(web(WEB_1, namespace))
        deployment = await until(lambda: rolled_out(client, namespace), "2 ready replicas of web")

        assert deployment.status is not None
        assert deployment.status.readyReplicas == 2
        assert deployment.metadata is not None
        assert deployment.metadata.annotations is not None
        assert deployment.metadata.annotations[REVISION] == "1"
        replica_sets = [rs async for rs in client.list(ReplicaSet, namespace=namespace)]
        assert len(replica_sets) == 1
        running = await pods(client, namespace)
        assert len(running) == 2
        for pod in running:
            assert pod.spec is not None
            assert pod.spec.nodeName == kubelet.node
            assert pod.metadata is not None
            assert pod.metadata.ownerReferences is not None
            assert pod.metadata.ownerReferences[0].kind == "ReplicaSet"
            assert pod.status is not None
            assert pod.status.phase == "Running"
            assert pod.status.containerStatuses is not None
            [status] = pod.status.containerStatuses
            assert status.ready
            assert status.imageID == f"registry.lan/x/web@{DIGEST_1}"


async def test_set_image_rolls_out_revision_2_in_a_second_replicaset(
    kubeconfig: Path, namespace: str, kubelet: Kubelet
) -> None:
    async with connect(kubeconfig) as client:
        await client.create(web(WEB_1, namespace))
        await until(lambda: rolled_out(client, namespace), "revision 1 of web")

        # What `kubectl set image deployment/web web=…` sends.
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": WEB_2}]}}}}
        await client.patch(Deployment, "web", patch, namespace=namespace, patch_type=PatchType.STRATEGIC)

        deployment = await until(lambda: rolled_out(client, namespace), "revision 2 of web")
        assert deployment.metadata is not None
        assert deployment.metadata.annotations is not None
        assert deployment.metadata.annotations[REVISION] == "2"
        replica_sets = {
            rs.metadata.annotations[REVISION]: rs
            async for rs in client.list(ReplicaSet, namespace=namespace)
            if rs.metadata is not None and rs.metadata.annotations is not None
        }
        assert sorted(replica_sets) == ["1", "2"]
        assert replica_sets["1"].spec is not None
        assert replica_sets["1"].spec.replicas == 0
        assert replica_sets["2"].spec is not None
        assert replica_sets["2"].spec.replicas == 2

        async def only_revision_2() -> list[str] | None:
            ids = [
                status.imageID
                for pod in await pods(client, namespace)
                if pod.status is not None
                for status in pod.status.containerStatuses or []
            ]
            return ids if ids == [f"registry.lan/x/web@{DIGEST_2}"] * 2 else None

        await until(only_revision_2, "the Pods of revision 1 to be gone")


async def test_a_rollout_that_never_gets_ready_exceeds_its_progress_deadline(
    kubeconfig: Path, namespace: str, kubelet: Kubelet
) -> None:
    kubelet.never_ready.add(WEB_2)
    async with connect(kubeconfig) as client:
        await client.create(web(WEB_1, namespace))
        await until(lambda: rolled_out(client, namespace), "revision 1 of web")

        patch = {
            "spec": {
                "progressDeadlineSeconds": 2,
                "template": {"spec": {"containers": [{"name": "web", "image": WEB_2}]}},
            }
        }
        await client.patch(Deployment, "web", patch, namespace=namespace, patch_type=PatchType.STRATEGIC)

        async def stalled() -> Deployment | None:
            deployment = await client.get(Deployment, "web", namespace=namespace)
            assert deployment.status is not None
            conditions = {c.type: c for c in deployment.status.conditions or []}
            progressing = conditions.get("Progressing")
            if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
                return deployment
            return None

        deployment = await until(stalled, "Progressing=False, ProgressDeadlineExceeded")
        status = deployment.status
        assert status is not None
        # The old ReplicaSet still serves (maxUnavailable rounds down to 0); the new Pod never gets ready.
        assert (status.replicas, status.updatedReplicas, status.readyReplicas) == (3, 1, 2)
        assert status.unavailableReplicas == 1
        conditions = {c.type: c.status for c in status.conditions or []}
        assert conditions == {"Available": "True", "Progressing": "False"}
        waiting = [
            status.state.waiting.reason
            for pod in await pods(client, namespace)
            if pod.status is not None
            for status in pod.status.containerStatuses or []
            if status.state is not None and status.state.waiting is not None
        ]
        assert waiting == ["CrashLoopBackOff"]


async def test_rbac_refuses_a_patch_to_a_token_that_may_only_get(
    control_plane: ControlPlane, kubeconfig: Path, namespace: str
) -> None:
    async with connect(kubeconfig) as admin:
        await admin.create(web(WEB_1, namespace, replicas=0))
        await admin.create(ServiceAccount(metadata=ObjectMeta(name="reader", namespace=namespace)))
        await admin.create(
            Role(
                metadata=ObjectMeta(name="deployment-reader", namespace=namespace),
                rules=[PolicyRule(apiGroups=["apps"], resources=["deployments"], verbs=["get"])],
            )
        )
        await admin.create(
            RoleBinding(
                metadata=ObjectMeta(name="reader", namespace=namespace),
                roleRef=RoleRef(apiGroup="rbac.authorization.k8s.io", kind="Role", name="deployment-reader"),
                subjects=[Subject(kind="ServiceAccount", name="reader", namespace=namespace)],
            )
        )

        async def token_secret() -> str | None:
            account = await admin.get(ServiceAccount, "reader", namespace=namespace)
            return account.secrets[0].name if account.secrets else None

        secret = await admin.get(
            Secret, await until(token_secret, "the token of reader"), namespace=namespace
        )
        assert secret.data is not None
        token = b64decode(secret.data["token"]).decode()

    async with connect(control_plane.kubeconfig_dict(token)) as reader:
        deployment = await reader.get(Deployment, "web", namespace=namespace)
        assert deployment.metadata is not None
        assert deployment.metadata.name == "web"
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": WEB_2}]}}}}
        with pytest.raises(ApiError) as refused:
            await reader.patch(Deployment, "web", patch, namespace=namespace)
        assert refused.value.status.code == 403
        assert refused.value.status.reason == "Forbidden"
        assert f"system:serviceaccount:{namespace}:reader" in str(refused.value.status.message)


def test_the_server_is_kubernetes_v1_20_2(control_plane: ControlPlane) -> None:
    response = httpx.get(
        f"{control_plane.url}/version",
        headers={"Authorization": f"Bearer {control_plane.admin_token}"},
        verify=control_plane.ssl_context(),
    )
    assert response.json()["gitVersion"] == "v1.20.2"


def test_without_the_binaries_the_bench_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(BenchMissing, match=r"run \./scripts/kube"):
        binaries(tmp_path)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (WEB_1, f"registry.lan/x/web@{DIGEST_1}"),
        (f"registry.lan:32000/web@{DIGEST_1}", f"registry.lan:32000/web@{DIGEST_1}"),
        ("registry.lan:32000/web:main.1", f"registry.lan:32000/web@{DIGEST_2}"),
        ("registry.lan:32000/web:unknown", None),
    ],
)
def test_the_kubelet_reports_the_image_id_containerd_would(image: str, expected: str | None) -> None:
    assert image_id(image, {"registry.lan:32000/web:main.1": DIGEST_2}) == expected

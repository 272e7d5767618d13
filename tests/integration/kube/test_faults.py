"""Faults on the real control plane: each gives one clear line and a correct outcome, never a wrong patch.

An unreachable or refusing API server, a token that has expired (or never was), a Role that does not allow
the patch, two writers racing on one Deployment, a workload deleted mid-rollout, an app no workload runs,
and a workload that runs the app's image in an init container and under a registry alias."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import anyio
import pytest
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from bench.cli import run
from bench.kube import ControlPlane
from bench.kubelab import DEPLOYMENT, Lab, NewLab, deployment, spec_images
from bench.kubelet import Kubelet
from tagtrail.adapters.refs import Image
from tagtrail.cli import main
from tagtrail.config import load_config
from tagtrail.reconcile import Reconciler
from tagtrail.targets.base import Applied, Change, Decide, Declared, ImageChange
from tagtrail.targets.factory import open_project
from tagtrail_demo import free_port


@pytest.fixture
def lab(new_lab: NewLab, monkeypatch: pytest.MonkeyPatch) -> Lab:
    made = new_lab()
    monkeypatch.chdir(made.root)
    return made


def use_kubeconfig(lab: Lab, config: dict[str, object]) -> Path:
    """Point the lab's tagtrail.yaml at another kubeconfig."""
    path = lab.root.parent / "other.kubeconfig"
    path.write_text(json.dumps(config))
    settings = lab.root / "tagtrail.yaml"
    text = settings.read_text()
    start = text.index("  kubeconfig: ")
    end = text.index("\n", start)
    settings.write_text(text[:start] + f"  kubeconfig: {path}" + text[end:])
    return path


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_an_unreachable_api_server_is_one_line_and_nothing_is_written(
    capsys: pytest.CaptureFixture[str], lab: Lab, control_plane: ControlPlane
) -> None:
    config = control_plane.kubeconfig_dict(control_plane.admin_token)
    port = free_port()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"  # type: ignore[index]
    use_kubeconfig(lab, config)
    code, out, err = run(capsys, "deploy")
    assert code == 1
    line = one_line(err)
    assert f"cannot reach the Kubernetes API at https://127.0.0.1:{port}" in line
    assert control_plane.admin_token not in out + err


def test_a_token_the_server_does_not_accept_says_so_without_showing_it(
    capsys: pytest.CaptureFixture[str], lab: Lab, control_plane: ControlPlane
) -> None:
    expired = "expired-token-0123456789abcdef"
    use_kubeconfig(lab, control_plane.kubeconfig_dict(expired))
    code, out, err = run(capsys, "status")
    assert code == 1
    line = one_line(err)
    assert "refused the credentials (401 Unauthorized)" in line
    assert "expired" in line
    assert expired not in out + err


def test_a_role_that_may_not_list_is_named_in_the_message(
    capsys: pytest.CaptureFixture[str], lab: Lab, control_plane: ControlPlane, admin: Client
) -> None:
    token = control_plane.service_account_token(lab.namespace, "nobody", rules=[])
    use_kubeconfig(lab, control_plane.kubeconfig_dict(token))
    code, out, err = run(capsys, "deploy")
    assert code == 1
    line = one_line(err)
    assert re.search(r"forbids tagtrail to list (deployments|statefulsets|daemonsets|cronjobs) in ", line)
    assert f"system:serviceaccount:{lab.namespace}:nobody" in line
    assert token not in out + err


def test_an_app_no_workload_runs_is_named_with_where_tagtrail_looked(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client, kubelet: Kubelet
) -> None:
    admin.create(deployment("web", lab.namespace, [{"name": "web", "image": lab.ref("web", 0)}]))
    code, _, err = run(capsys, "deploy", "worker")
    assert code == 1
    assert one_line(err).endswith(
        f"no reference to app 'worker' in the workloads of namespace {lab.namespace} (apps there: web)"
    )
    assert spec_images(admin, "web", lab.namespace) == [lab.ref("web", 0)]


def test_an_init_container_and_an_alias_are_patched_and_a_sidecar_is_not(
    capsys: pytest.CaptureFixture[str], lab: Lab, admin: Client, kubelet: Kubelet
) -> None:
    old = lab.builds["web"][0]
    alias = f"registry.lan:32000/web:{old.tag}@{old.digest}"
    sidecar = f"docker.io/library/nginx:1.25@sha256:{'a' * 64}"
    admin.create(
        deployment(
            "web",
            lab.namespace,
            [{"name": "web", "image": lab.ref("web", 0)}, {"name": "proxy", "image": sidecar}],
            init=[{"name": "migrate", "image": alias}],
        )
    )
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, out + err
    body = admin.get(DEPLOYMENT, "web", namespace=lab.namespace)
    template = body["spec"]["template"]["spec"]
    new = lab.builds["web"][2]
    assert [c["image"] for c in template["initContainers"]] == [
        f"registry.lan:32000/web:{new.tag}@{new.digest}"
    ]
    assert [c["image"] for c in template["containers"]] == [lab.ref("web", 2), sidecar]


def test_a_concurrent_set_image_is_never_overwritten_the_deploy_decides_again(
    lab: Lab, admin: Client, kubelet: Kubelet
) -> None:
    admin.create(deployment("web", lab.namespace, [{"name": "web", "image": lab.ref("web", 0)}]))
    seen: list[str | None] = []
    build = lab.builds["web"]

    async def decide(declared: Declared) -> Change:
        seen.append(declared.states["web"].running.tag)
        if len(seen) == 1:  # a person's `kubectl set image` lands between our read and our write
            by_hand = {
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": lab.ref("web", 1)}]}}}
            }
            admin.patch(DEPLOYMENT, "web", by_hand, namespace=lab.namespace, patch_type=PatchType.STRATEGIC)
        image = ImageChange("web", _image(lab, 2), "newer-build", "a newer build")
        return Change("deploy", "test", (image,))

    applied = apply_with(lab, decide)
    assert applied.attempts == 2
    assert applied.previous == {"web": lab.ref("web", 1)}  # what the person set, read again
    assert seen == [build[0].tag, build[1].tag]
    assert spec_images(admin, "web", lab.namespace) == [lab.ref("web", 2)]


CRON_JOB = create_namespaced_resource("batch", "v1beta1", "CronJob", "cronjobs")


@pytest.mark.parametrize("kind", ["CronJob", "Deployment"])
def test_a_pin_set_between_the_read_and_the_patch_wins(lab: Lab, admin: Client, kind: str) -> None:
    """A CronJob as read has no annotations at all (the patch must not replace the map a person made
    meanwhile); a Deployment has some (the controller's revision, and here a team's)."""
    old = [{"name": "web", "image": lab.ref("web", 0)}]
    if kind == "Deployment":
        resource, path = DEPLOYMENT, ("spec", "template", "spec", "containers")
        admin.create(deployment("web", lab.namespace, old, annotations={"team": "shop"}))
    else:
        resource, path = CRON_JOB, ("spec", "jobTemplate", "spec", "template", "spec", "containers")
        job = {"template": {"spec": {"containers": old, "restartPolicy": "Never"}}}
        body = {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}}
        admin.create(
            CRON_JOB.from_dict({"metadata": {"name": "web", "namespace": lab.namespace}, "spec": body})
        )
    pin = lab.builds["web"][1].tag
    seen: list[str | None] = []

    async def decide(declared: Declared) -> Change:
        seen.append((declared.pins or {}).get("web"))
        if len(seen) == 1:  # a person's pin (`kubectl annotate`) between our read and our write
            by_hand = {"metadata": {"annotations": {"tagtrail.dev/pin.web": pin}}}
            admin.patch(resource, "web", by_hand, namespace=lab.namespace, patch_type=PatchType.MERGE)
            image = ImageChange("web", _image(lab, 2), "newer-build", "a newer build")
            return Change("deploy", "test", (image,))
        return Change("deploy", "test")  # held at the pin it now reads

    assert apply_with(lab, decide).attempts == 2
    assert seen == [None, pin]
    body = admin.get(resource, "web", namespace=lab.namespace)
    containers = body
    for key in path:
        containers = containers[key]
    assert [c["image"] for c in containers] == [lab.ref("web", 0)]
    after = body["metadata"]["annotations"]
    assert after["tagtrail.dev/pin.web"] == pin
    assert "tagtrail.dev/tag.web" not in after  # nothing of the refused deploy was written
    if kind == "Deployment":
        assert after["team"] == "shop"


def test_a_workload_deleted_mid_rollout_fails_the_deploy_without_a_rollback(
    lab: Lab, admin: Client, kubelet: Kubelet, capsys: pytest.CaptureFixture[str]
) -> None:
    kubelet.never_ready.add(lab.ref("web", 2))
    admin.create(deployment("web", lab.namespace, [{"name": "web", "image": lab.ref("web", 0)}]))
    codes: list[int] = []
    deploying = threading.Thread(target=lambda: codes.append(main(["deploy", "--json"])))
    deploying.start()
    deadline = time.monotonic() + 30
    while spec_images(admin, "web", lab.namespace) != [lab.ref("web", 2)]:
        assert time.monotonic() < deadline, "the deploy never patched web"
        time.sleep(0.05)
    admin.delete(DEPLOYMENT, "web", namespace=lab.namespace)
    deploying.join(timeout=60)
    assert codes == [1]
    result = json.loads(capsys.readouterr().out)
    assert "was deleted during its rollout" in result["failed"]["web"]
    assert result["rolled_back"] == {}


def apply_with(lab: Lab, decide: Decide) -> Applied:
    """What the reconciler's write to the Kubernetes target does with the test's own decision, as a deploy
    makes it."""
    project = open_project(load_config(lab.root / "tagtrail.yaml"), lab.root / "tagtrail.yaml", client=None)

    async def go() -> Applied:
        try:
            return await Reconciler(project).write(decide)
        finally:
            await project.aclose()

    return anyio.run(go)


def _image(lab: Lab, index: int) -> Image:
    build = lab.builds["web"][index]
    return Image(f"{lab.image}/web", build.tag, build.digest)

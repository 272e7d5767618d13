"""`tagtrail serve` with the cluster, as a real process against the real control plane: in direct mode it
patches the Deployment on its first reconcile, a rollout that never gets ready is rolled back and told,
and /metrics and the dashboard show ready/total; in GitOps + observe it follows its deploy commit into the
cluster (kubectl applies it) and the dashboard shows drift when an image is set by hand."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from lightkube import Client

from bench.kubelab import NewLab, deployment, spec_images
from bench.kubelet import Kubelet
from bench.serve import DASHBOARD_TOKEN, Receiver, ServeProcess, wait_for

SERVE = "serve:\n  interval: 1s\n  public: true\nnotify:\n  urls: ['{url}']\n"


def serving(root: Path) -> ServeProcess:
    return ServeProcess(root, args=()).start()


def metric(process: ServeProcess, name: str) -> float | None:
    for line in httpx.get(f"{process.url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + "{") and 'app="web"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_serve_in_direct_mode_rolls_a_bad_build_back_and_tells(
    new_lab: NewLab,
    namespace: str,
    kubeconfig: Path,
    kubelet: Kubelet,
    admin: Client,
    receiver: Receiver,
) -> None:
    lab = new_lab(
        extra=SERVE.format(url=receiver.url),
    )
    admin.create(deployment("web", namespace, [{"name": "web", "image": lab.ref("web", 0)}], deadline=3))
    kubelet.never_ready.add(lab.ref("web", 2))
    process = serving(lab.root)
    try:
        wait_for(lambda: "tagtrail rolled web back" in receiver.titles(), 60, "the rollback notification")
        assert spec_images(admin, "web", namespace) == [lab.ref("web", 0)]
        [told] = [m for m in receiver.messages if m["title"] == "tagtrail rolled web back"]
        assert "progress deadline exceeded" in told["message"]
        assert f"pinned to {lab.builds['web'][0].tag}" in told["message"]
        assert wait_for(lambda: metric(process, "tagtrail_cluster_ready_replicas") == 2.0, 30, "ready metric")
        assert metric(process, "tagtrail_cluster_desired_replicas") == 2.0
        lead = metric(process, "tagtrail_cluster_lead_time_seconds")  # the commits were made seconds ago
        assert lead is not None
        assert 0 <= lead < 120
        assert metric(process, "tagtrail_automatic_rollbacks_total") == 1.0
        page = httpx.get(f"{process.url}/", timeout=5).text
        assert "2/2 ready" in page
        # held at its pin: the next polls do not try the bad build again
        assert spec_images(admin, "web", namespace) == [lab.ref("web", 0)]
        assert receiver.titles().count("tagtrail rolled web back") == 1
    finally:
        code = process.stop()
        print(process.output())  # shown only when the test fails
    assert code == 0, process.output()
    assert DASHBOARD_TOKEN not in process.output()


def test_serve_in_gitops_mode_follows_its_commit_into_the_cluster_and_shows_drift(
    new_lab: NewLab,
    namespace: str,
    kubeconfig: Path,
    kubelet: Kubelet,
    admin: Client,
    receiver: Receiver,
) -> None:
    lab = new_lab(
        mode="gitops",
        extra="  follow: 60s\n" + SERVE.format(url=receiver.url),
    )
    apply = ["kubectl", f"--kubeconfig={kubeconfig}", "apply", "-f", str(lab.root / "deploy" / "web.yaml")]
    subprocess.run(apply, check=True, capture_output=True, timeout=60)
    process = serving(lab.root)
    try:
        wait_for(
            lambda: spec_images(admin, "web", namespace) == [lab.ref("web", 2)], 60, "the deploy applied"
        )
        wait_for(lambda: "web: the cluster runs it" in process.output(), 60, "the rollout followed")
        wait_for(lambda: "2/2 ready" in httpx.get(f"{process.url}/", timeout=5).text, 60, "2/2 ready shown")
        assert wait_for(lambda: metric(process, "tagtrail_cluster_drift") == 0.0, 30, "no drift")
        hand = ["kubectl", f"--kubeconfig={kubeconfig}", "-n", namespace, "set", "image", "deployment/web"]
        subprocess.run([*hand, f"web={lab.ref('web', 1)}"], check=True, capture_output=True, timeout=60)
        assert wait_for(lambda: metric(process, "tagtrail_cluster_drift") == 1.0, 30, "drift")
        assert "drift" in httpx.get(f"{process.url}/", timeout=5).text
        assert not [t for t in receiver.titles() if "is not running" in t]
    finally:
        code = process.stop()
        print(process.output())  # shown only when the test fails
    assert code == 0, process.output()

"""GitOps + observe on the real control plane: the deploy file in git is a Deployment that kubectl applies
(deploy.git.then, as Flux or Argo CD would); tagtrail shows what the cluster runs beside what git declares,
drift when someone `kubectl set image`s by hand, and follows a deploy commit until the cluster runs it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from bench.cli import run
from bench.kubelab import Lab, NewLab
from bench.kubelet import Kubelet


@pytest.fixture
def lab(new_lab: NewLab, kubeconfig: Path, kubelet: Kubelet, monkeypatch: pytest.MonkeyPatch) -> Lab:
    made = new_lab(mode="gitops", extra="  follow: 60s\n")
    kubectl(kubeconfig, "apply", "-f", str(made.root / "deploy" / "web.yaml"))
    monkeypatch.chdir(made.root)
    return made


def kubectl(kubeconfig: Path, *args: str) -> str:
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def cluster_of(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    [web] = json.loads(out)
    return dict(web["cluster"])


def until(check, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"after {timeout:.0f} s still waiting for {what}"
        time.sleep(0.2)


def test_status_shows_what_runs_and_drift_after_a_set_image_by_hand(
    capsys: pytest.CaptureFixture[str], lab: Lab, kubeconfig: Path
) -> None:
    first, second = lab.builds["web"][0], lab.builds["web"][1]
    cluster = until(lambda: (c := cluster_of(capsys))["ready"] == 2 and c, "web to run")
    assert cluster["running"] == {first.digest: 2}
    assert cluster["drift"] is None
    assert cluster["rollout"] == "complete"

    kubectl(kubeconfig, "-n", lab.namespace, "set", "image", "deployment/web", f"web={lab.ref('web', 1)}")
    cluster = until(
        lambda: (c := cluster_of(capsys))["running"] == {second.digest: 2} and c, "the hand-set image to run"
    )
    assert "the cluster's spec says" in str(cluster["drift"])
    assert second.tag in str(cluster["drift"])
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "DRIFT" in out


def test_deploy_wait_follows_the_commit_until_the_cluster_runs_it(
    capsys: pytest.CaptureFixture[str], lab: Lab
) -> None:
    until(lambda: cluster_of(capsys)["ready"] == 2, "web to run")
    code, out, err = run(capsys, "deploy", "--wait", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["then"]["exit"] == 0
    [followed] = result["followed"]
    assert followed["ok"], followed
    assert "the cluster runs it" in followed["sentence"]
    cluster = cluster_of(capsys)
    assert cluster["running"] == {lab.builds["web"][2].digest: 2}
    assert cluster["drift"] is None
    code, out, _ = run(capsys, "status", "--json")
    last = json.loads(out)[0]["last_decision"]
    assert (last["action"], last["reason"]) == ("rollout", "rolled-out")


def test_deploy_wait_says_when_the_cluster_never_gets_it_ready(
    capsys: pytest.CaptureFixture[str], lab: Lab, kubelet: Kubelet
) -> None:
    until(lambda: cluster_of(capsys)["ready"] == 2, "web to run")
    kubelet.never_ready.add(lab.ref("web", 2))
    code, out, err = run(capsys, "deploy", "--wait", "--json")
    assert code == 1, out + err
    [followed] = json.loads(out)["followed"]
    assert not followed["ok"]
    assert "progress deadline exceeded" in followed["sentence"]
    code, out, _ = run(capsys, "status", "--json")
    last = json.loads(out)[0]["last_decision"]
    assert (last["action"], last["reason"]) == ("rollout", "rollout-failed")

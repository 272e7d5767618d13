"""Every kind of workload that runs an app's image, on the real control plane: a StatefulSet, a DaemonSet
and a CronJob (batch/v1beta1, as Kubernetes 1.20 serves it) are found, patched in direct mode, and their
rollouts followed to the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lightkube.generic_resource import create_namespaced_resource

from bench.cli import run
from bench.kube import ControlPlane
from bench.kubelab import NewLab
from bench.kubelet import Kubelet

STATEFUL_SET = create_namespaced_resource("apps", "v1", "StatefulSet", "statefulsets")
DAEMON_SET = create_namespaced_resource("apps", "v1", "DaemonSet", "daemonsets")
CRON_JOB = create_namespaced_resource("batch", "v1beta1", "CronJob", "cronjobs")


def template(name: str, image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "web", "image": image}]}}


def test_statefulsets_daemonsets_and_cronjobs_are_deployed_and_followed(
    new_lab: NewLab,
    namespace: str,
    kubeconfig: Path,
    control_plane: ControlPlane,
    kubelet: Kubelet,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = new_lab()
    old = lab.ref("web", 0)
    meta = {"namespace": namespace}
    with control_plane.client() as admin:
        admin.create(
            STATEFUL_SET.from_dict(
                {
                    "metadata": {"name": "db", **meta},
                    "spec": {
                        "serviceName": "db",
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": "db"}},
                        "template": template("db", old),
                    },
                }
            )
        )
        admin.create(
            DAEMON_SET.from_dict(
                {
                    "metadata": {"name": "agent", **meta},
                    "spec": {
                        "selector": {"matchLabels": {"app": "agent"}},
                        "template": template("agent", old),
                    },
                }
            )
        )
        admin.create(
            CRON_JOB.from_dict(
                {
                    "metadata": {"name": "nightly", **meta},
                    "spec": {
                        "schedule": "0 3 * * *",
                        "jobTemplate": {
                            "spec": {
                                "template": {
                                    **template("nightly", old),
                                    "spec": {
                                        "containers": [{"name": "web", "image": old}],
                                        "restartPolicy": "Never",
                                    },
                                }
                            }
                        },
                    },
                }
            )
        )
    monkeypatch.chdir(lab.root)

    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    workloads = {w["ref"] for w in json.loads(out)[0]["cluster"]["workloads"]}
    assert workloads == {
        f"{namespace}/statefulset/db",
        f"{namespace}/daemonset/agent",
        f"{namespace}/cronjob/nightly",
    }

    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, out + err
    assert json.loads(out)["rollouts"]["web"].startswith("complete")
    new = lab.ref("web", 2)
    with control_plane.client() as admin:
        sts = admin.get(STATEFUL_SET, "db", namespace=namespace)
        ds = admin.get(DAEMON_SET, "agent", namespace=namespace)
        cron = admin.get(CRON_JOB, "nightly", namespace=namespace)
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == new
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == new
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == new
    code, out, err = run(capsys, "status", "--json")
    cluster = json.loads(out)[0]["cluster"]
    assert cluster["drift"] is None
    assert cluster["running"] == {lab.builds["web"][2].digest: 2}  # the StatefulSet's Pod and the DaemonSet's

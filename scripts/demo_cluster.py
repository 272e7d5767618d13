"""The cluster half of the demo (./scripts/demo-cluster): tagtrail deploying straight to a real Kubernetes
control plane, each command shown with its real output.

The control plane is the test bench's (kube-apiserver and kube-controller-manager v1.20.2 built by
./scripts/kube, Debian's etcd): real Deployments, ReplicaSets, rollouts and RBAC. No container runtime
runs here, so a stand-in kubelet (tests/bench/kubelet.py) makes the Pods Running and Ready with the image
digest a kubelet would report, or never ready, for the build this demo makes bad on purpose.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from demo_cluster_pulumi import run_pulumi

from bench.git import commit
from bench.kube import BenchMissing, ControlPlane
from bench.kubelab import SCHEME, deployment, make_lab
from bench.kubelet import Kubelet
from tagtrail_demo import ImagePusher, RegistryServer

NAMESPACE = "shop"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", type=Path, help="Where to keep everything (default: a temporary folder)."
    )
    parser.add_argument("--keep", action="store_true", help="Leave the files in place afterwards.")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tagtrail-demo-cluster-"))
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    os.environ.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / "state"),
        GIT_AUTHOR_NAME="Demo Developer",
        GIT_AUTHOR_EMAIL="dev@homelab.invalid",
        GIT_COMMITTER_NAME="Demo Developer",
        GIT_COMMITTER_EMAIL="dev@homelab.invalid",
        COLUMNS="200",
        TERM="dumb",
    )
    try:
        with ControlPlane() as plane, RegistryServer(workdir / "registry") as registry:
            plane.create_namespace(NAMESPACE)
            with ImagePusher(registry.url) as pusher, Kubelet(plane, NAMESPACE, node="demo-node") as kubelet:
                run(workdir, plane, registry, pusher, kubelet)
                run_pulumi(workdir, plane, registry, pusher, NAMESPACE, tagtrail, kubectl, say)
    except BenchMissing as missing:
        print(f"demo-cluster: {missing}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        "\nThe cluster demo finished: a deploy rolled out, a bad build was rolled back and pinned automatically;"
        " a deploy commit the Pulumi operator applied, and one it failed on, reported."
    )
    return 0


def run(
    workdir: Path, plane: ControlPlane, registry: RegistryServer, pusher: ImagePusher, kubelet: Kubelet
) -> None:
    say("# A project whose app `web` has three builds on main, and a Deployment running the oldest.")
    lab = make_lab(workdir / "project", registry, pusher, "demo", NAMESPACE, plane.kubeconfig)
    with plane.client() as admin:
        admin.create(deployment("web", NAMESPACE, [{"name": "web", "image": lab.ref("web", 0)}], deadline=5))
    kubectl(plane, "-n", NAMESPACE, "rollout", "status", "deployment/web", "--timeout=60s")
    say("# tagtrail.yaml (direct mode: deploy.kubernetes)")
    print((lab.root / "tagtrail.yaml").read_text())

    tagtrail(lab.root, "status")
    tagtrail(lab.root, "deploy")
    kubectl(
        plane,
        "-n",
        NAMESPACE,
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}{'\\n'}",
    )

    say("# A new build of web that never gets ready (its Pods crash): tagtrail rolls it back and pins web.")
    sha = commit(lab.root, {"apps/web/broken.txt": "oops\n"}, "a change that breaks web")
    now = datetime.now(UTC).replace(microsecond=0)
    tag = SCHEME.format(branch="main", sha=sha, time=now)
    bad = pusher.push_image("demo/web", tag, created=now, labels={"org.opencontainers.image.revision": sha})
    kubelet.never_ready.add(f"{lab.image}/web:{bad.tag}@{bad.digest}")
    tagtrail(lab.root, "deploy", ok=(1,))
    tagtrail(lab.root, "status")
    tagtrail(lab.root, "history", "web")
    kubectl(plane, "-n", NAMESPACE, "get", "events", "--field-selector", "reason=TagtrailRollback")


def say(text: str) -> None:
    print(f"\n{text}", flush=True)


def tagtrail(cwd: Path, *args: str, ok: tuple[int, ...] = (0,)) -> None:
    say("$ tagtrail " + " ".join(args))
    result = subprocess.run(
        [sys.executable, "-m", "tagtrail", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    print(result.stdout + result.stderr, end="", flush=True)
    if result.returncode not in ok:
        raise SystemExit(f"demo-cluster: `tagtrail {' '.join(args)}` exited {result.returncode}")


def kubectl(plane: ControlPlane, *args: str) -> None:
    say("$ kubectl " + " ".join(args))
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={plane.kubeconfig}", *args], capture_output=True, text=True, check=False
    )
    print(result.stdout + result.stderr, end="", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"demo-cluster: `kubectl {' '.join(args)}` exited {result.returncode}")


if __name__ == "__main__":
    sys.exit(main())

"""The Pulumi Kubernetes Operator part of the cluster demo (scripts/demo_cluster.py runs it after the
direct-mode part): the images in a deploy file in git (a manifest here; the Pulumi stack config in the post's
setup), the operator's Stack applying the branch, and tagtrail following the Stack after each deploy commit:
one applied, one the operator failed on.

The operator cannot run here: its Stack CRD is installed in the real API server and the demo writes the
Stack's status as the operator would after a Pulumi update (tests/bench/pulumi.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.git import commit
from bench.kube import ControlPlane
from bench.kubelab import SCHEME, make_lab
from bench.pulumi import create_stack, install_crd, operator
from tagtrail_demo import ImagePusher, RegistryServer

STACK = "homeslice-prod"
PERMALINK = "https://app.pulumi.com/demo/homeslice/prod/updates/{n}"


def run_pulumi(
    workdir: Path,
    plane: ControlPlane,
    registry: RegistryServer,
    pusher: ImagePusher,
    namespace: str,
    tagtrail: Callable[..., None],
    kubectl: Callable[..., None],
    say: Callable[[str], None],
) -> None:
    say(
        "# The Pulumi operator applies the deploy branch: tagtrail writes the images, then follows its Stack."
    )
    lab = make_lab(
        workdir / "pulumi-project", registry, pusher, "homeslice", namespace, plane.kubeconfig, mode="gitops"
    )
    settings = lab.root / "tagtrail.yaml"
    lines = [line for line in settings.read_text().splitlines(keepends=True) if "then: kubectl" not in line]
    settings.write_text(
        "".join(lines)
        .replace(
            "    files: [deploy/web.yaml]\n",
            "    files: [deploy/web.yaml]\n    applied_by:\n"
            f"      pulumi_stack: {{namespace: {namespace}, name: {STACK}}}\n      timeout: 60s\n",
        )
        .replace(f"  namespaces: [{namespace}]\n", f"  namespaces: [{namespace}]\n  follow: 0s\n")
    )
    commit(lab.root, {}, "tagtrail follows the operator's Stack")
    with plane.client() as admin:
        install_crd(admin)
        create_stack(admin, namespace, STACK, f"file://{lab.root}")
        print(settings.read_text())
        kubectl(plane, "-n", namespace, "get", "stacks")

        say("# The operator runs `pulumi up` on the deploy commit, and it succeeds.")
        with operator(admin, namespace, STACK, lab.root, "succeeded", permalink=PERMALINK.format(n=1)):
            tagtrail(lab.root, "deploy", "--wait")

        say(
            "# A new build, and this time the operator's update fails: tagtrail reports it, with its message."
        )
        sha = commit(lab.root, {"apps/web/more.txt": "more\n"}, "another change of web")
        now = datetime.now(UTC).replace(microsecond=0)
        tag = SCHEME.format(branch="main", sha=sha, time=now)
        pusher.push_image(
            "homeslice/web", tag, created=now, labels={"org.opencontainers.image.revision": sha}
        )
        message = "error: update failed: kubernetes:apps/v1:Deployment web: 1 error occurred: timed out"
        with operator(
            admin, namespace, STACK, lab.root, "failed", message=message, permalink=PERMALINK.format(n=2)
        ):
            tagtrail(lab.root, "deploy", "--wait", ok=(1,))
    tagtrail(lab.root, "status")
    kubectl(plane, "-n", namespace, "get", "stacks")

"""A project deployed to the real control plane: a git repository with three commits of app `web` (and
`worker`), their builds in the real registry, and Deployments running the oldest builds.

`make_lab` writes tagtrail.yaml for one of the modes: direct (deploy.kubernetes) or GitOps + observe (the
deploy file in git, the cluster observed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

from bench.git import commit, git, init_repo
from tagtrail.domain.scheme import Scheme
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
DEPLOYMENT = create_namespaced_resource("apps", "v1", "Deployment", "deployments")


MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
spec:
  replicas: 2
  progressDeadlineSeconds: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: {image}
"""


@dataclass
class Lab:
    root: Path
    image: str  # registry/prefix
    namespace: str
    commits: list[str]
    builds: dict[str, list[PushedImage]] = field(default_factory=dict)  # app → builds, oldest first

    def ref(self, app: str, index: int) -> str:
        build = self.builds[app][index]
        return f"{self.image}/{app}:{build.tag}@{build.digest}"


class NewLab(Protocol):
    """The `new_lab` fixture: the test's project in its namespace, for one mode (direct or gitops)."""

    def __call__(self, *, mode: str = "direct", extra: str = "") -> Lab: ...


def make_lab(
    root: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    prefix: str,
    namespace: str,
    kubeconfig: Path,
    *,
    mode: str = "direct",
    apps: tuple[str, ...] = ("web",),
    extra: str = "",
) -> Lab:
    image = f"{registry.host}/{prefix}"
    target = (
        "  kubernetes:\n    rollout_timeout: 60s\n"
        if mode == "direct"
        else f"  git:\n    files: [deploy/web.yaml]\n    then: kubectl --kubeconfig={kubeconfig} apply -f deploy/web.yaml\n"
    )
    config = (
        f"scheme: \"{{{{branch}}}}.{{{{date 'YYYYMMDD-HHmmss' tz='UTC'}}}}.{{{{sha}}}}\"\n"
        f"image: {image}/{{app}}\n"
        f'registries:\n  "{registry.host}": {{insecure: true}}\n'
        "deploy:\n  branch: main\n  cooldown: 0s\n"
        '  aliases: ["registry.lan:32000/{app}"]\n'
        f"{target}"
        f"kubernetes:\n  kubeconfig: {kubeconfig}\n  namespaces: [{namespace}]\n"
        f"{extra}"
    )
    files = {"tagtrail.yaml": config, **{f"apps/{a}/Dockerfile": "FROM scratch\n" for a in apps}}
    init_repo(root, files, "the project")
    commits = [git(root, "rev-parse", "HEAD")]
    for n in range(2):
        commits.append(commit(root, {f"apps/web/v{n}.txt": f"{n}\n"}, f"change {n}"))
    lab = Lab(root, image, namespace, commits)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    for app in apps:
        lab.builds[app] = []
        for index, sha in enumerate(commits):
            when = start + timedelta(days=index)
            tag = SCHEME.format(branch="main", sha=sha, time=when)
            labels = {"org.opencontainers.image.revision": sha}
            lab.builds[app].append(pusher.push_image(f"{prefix}/{app}", tag, created=when, labels=labels))
    if mode != "direct":
        commit(
            root, {"deploy/web.yaml": MANIFEST.format(namespace=namespace, image=lab.ref("web", 0))}, "deploy"
        )
    return lab


def deployment(
    name: str,
    namespace: str,
    containers: list[dict[str, Any]],
    *,
    init: list[dict[str, Any]] | None = None,
    replicas: int = 2,
    deadline: int | None = None,
    annotations: dict[str, str] | None = None,
) -> Any:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
    }
    if init:
        spec["template"]["spec"]["initContainers"] = init
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return DEPLOYMENT.from_dict(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": spec,
        }
    )


def spec_images(client: Client, name: str, namespace: str) -> list[str]:
    body = client.get(DEPLOYMENT, name, namespace=namespace)
    return [c["image"] for c in body["spec"]["template"]["spec"]["containers"]]


def annotations(client: Client, name: str, namespace: str) -> dict[str, str]:
    body = client.get(DEPLOYMENT, name, namespace=namespace)
    return dict(body["metadata"].get("annotations") or {})

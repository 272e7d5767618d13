"""Sample repositories of the shapes `tagtrail init` meets, each as a git work tree with a GitHub remote
(never contacted) and the image references its deploy files hold. `registry` is where images are pushed
(the test registry's host:port, or ghcr.io as in the seed post).

- seed: DESIGN.md's homelab: 8 apps, a shared Python folder copied by one Dockerfile and by one Makefile, a
  Pulumi stack file with nested keys whose names differ from the apps, third-party images, a local-registry
  alias, and the seed post's workflow with tz='Pacific/Los Angeles';
- kustomize: a base with placeholder image names and a prod overlay whose kustomization sets them, a
  Job manifest naming one app's image; no workflow;
- helm: a chart's values and an environment's values (Helm's split repository/tag, with and without
  registry:), a Go template that is not YAML, and a workflow with several tag types and an 8-digit sha;
- plain: two apps, no workflow, no deploy files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.git import git, init_repo
from bench.homelab import APPS as SEED_APPS
from bench.homelab import STACK

SEED_WORKFLOW = """\
name: build
on:
  push:
    branches: ['**']
env:
  REGISTRY: {registry}
  IMAGE_NAME: ${{{{ github.repository }}}}
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        app: [{apps}]
    steps:
      - uses: actions/checkout@v4
      - name: Extract metadata (tags, labels) for Docker
        id: meta
        uses: docker/metadata-action@9ec57ed1fcdbf14dcef7dfbe97b2010124a938b7
        with:
          images: ${{{{ env.REGISTRY }}}}/${{{{ env.IMAGE_NAME }}}}/${{{{ matrix.app }}}}
          tags: |
            type=raw,enable=true,priority=5000,value={{{{branch}}}}.{{{{date 'YYYYMMDD-HHmmss' tz='Pacific/Los Angeles'}}}}.{{{{sha}}}}
      - name: Build and push Docker images
        uses: docker/build-push-action@f2a1d5e99d037542a71f64918e516c093c6f3fc4
        with:
          context: apps/${{{{ matrix.app }}}}
          push: true
          tags: ${{{{ steps.meta.outputs.tags }}}}
          labels: ${{{{ steps.meta.outputs.labels }}}}
"""

HELM_WORKFLOW = """\
name: images
on: [push]
jobs:
  images:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        app: [web, worker]
    env:
      DOCKER_METADATA_SHORT_SHA_LENGTH: "8"
    steps:
      - id: meta
        uses: docker/metadata-action@v5
        with:
          images: |
            {registry}/${{{{ github.repository_owner }}}}/helmy/${{{{ matrix.app }}}}
          flavor: |
            latest=false
          tags: |
            type=sha
            type=ref,event=branch
            type=raw,value={{{{branch}}}}-{{{{date 'YYYYMMDDHHmmss'}}}}-{{{{sha}}}}
"""


@dataclass(frozen=True)
class Sample:
    root: Path
    apps: tuple[str, ...]
    image: str  # the image template init should propose
    files: dict[str, str]  # deploy file → kind
    running: str  # the tag every reference holds


def seed(root: Path, registry: str, owner: str, tag: str) -> Sample:
    image = f"{registry}/{owner}/homeslice"
    files = {f"apps/{app}/Dockerfile": "FROM python:3.12-slim\nCOPY . /app\n" for app in SEED_APPS}
    files["apps/chime/Dockerfile"] = (
        "FROM python:3.12-slim\nWORKDIR /app\nCOPY ../pylib /app/pylib\nCOPY --from=busybox /bin/sh /bin/sh\n"
        "COPY requirements.txt \\\n     chime.py /app/\n"
    )
    files["apps/lights/Makefile"] = "image:\n\tcp -r ../pylib .\n\tdocker build -t lights .\n"
    files["apps/pylib/homeslice/__init__.py"] = "\n"
    files["apps/pylib/pyproject.toml"] = "[project]\nname = 'pylib'\n"
    files[".github/workflows/build.yml"] = SEED_WORKFLOW.format(registry=registry, apps=", ".join(SEED_APPS))
    files["pulumi/Pulumi.prod.yaml"] = STACK.format(image=image, alias="registry.lan:32000", tag=tag)
    files["pulumi/Pulumi.yaml"] = "name: homeslice\nruntime: go\n"
    _make(root, files, f"https://github.com/{owner}/homeslice.git")
    return Sample(
        root, SEED_APPS, f"{image}/{{app}}", {"pulumi/Pulumi.prod.yaml": "Pulumi stack config"}, tag
    )


def kustomize(root: Path, registry: str, owner: str, tag: str) -> Sample:
    image = f"{registry}/{owner}/shop"
    files = {f"services/{app}/Containerfile": "FROM scratch\n" for app in ("web", "api")}
    files["services/README.md"] = "web and api\n"
    files["deploy/base/kustomization.yaml"] = "resources:\n  - deployments.yaml\n"
    files["deploy/base/deployments.yaml"] = "".join(
        f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\nspec:\n  template:\n"
        f"    spec:\n      containers:\n        - name: {app}\n          image: {app}\n"
        "        - name: cache\n          image: redis:7.2-alpine\n"
        for app in ("web", "api")
    )
    files["deploy/overlays/prod/kustomization.yaml"] = (
        "resources:\n  - ../../base\nimages:\n"
        f"  - name: web\n    newName: {image}/web\n    newTag: {tag}\n"
        f"  - name: api\n    newName: {image}/api\n    newTag: {tag}\n"
        "  - name: redis\n    newTag: 7.2-alpine\n"
    )
    files["deploy/jobs/migrate.yaml"] = (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n    spec:\n"
        f"      containers:\n        - name: migrate\n          image: {image}/api:{tag}\n"
        "          args: [migrate]\n      restartPolicy: Never\n"
    )
    _make(root, files, f"git@github.com:{owner}/shop.git")
    return Sample(
        root,
        ("api", "web"),
        f"{image}/{{app}}",
        {
            "deploy/jobs/migrate.yaml": "Kubernetes manifests",
            "deploy/overlays/prod/kustomization.yaml": "kustomization",
        },
        tag,
    )


def helm(root: Path, registry: str, owner: str, tag: str) -> Sample:
    image = f"{registry}/{owner}/helmy"
    files = {f"apps/{app}/Dockerfile": "FROM scratch\n" for app in ("web", "worker")}
    files[".github/workflows/images.yaml"] = HELM_WORKFLOW.format(registry=registry)
    files["charts/helmy/Chart.yaml"] = "apiVersion: v2\nname: helmy\nversion: 0.1.0\n"
    files["charts/helmy/values.yaml"] = (
        f"web:\n  image:\n    repository: {image}/web\n    tag: {tag}\n  replicas: 1\n"
        f"worker:\n  image:\n    registry: {registry}\n    repository: {owner}/helmy/worker\n    tag: {tag}\n"
        "postgres:\n  image:\n    repository: bitnami/postgresql\n    tag: 16.4.0\n"
    )
    files["charts/helmy/templates/deployment.yaml"] = (
        "{{- range $name, $app := .Values }}\napiVersion: apps/v1\nkind: Deployment\n"
        'image: "{{ $app.image.repository }}:{{ $app.image.tag }}"\n{{- end }}\n'
    )
    files["environments/prod/values.yaml"] = (
        f'web:\n  image:\n    repository: {image}/web\n    tag: "{tag}"\n'
    )
    _make(root, files, f"https://github.com/{owner}/helmy")
    return Sample(
        root,
        ("web", "worker"),
        f"{image}/{{app}}",
        {"charts/helmy/values.yaml": "Helm values", "environments/prod/values.yaml": "Helm values"},
        tag,
    )


def plain(root: Path, owner: str) -> Sample:
    files = {f"apps/{app}/Dockerfile": "FROM scratch\n" for app in ("web", "worker")}
    files["docs/mkdocs.yml"] = "site_name: tiny\n"
    _make(root, files, f"https://github.com/{owner}/tiny.git")
    return Sample(root, ("web", "worker"), f"ghcr.io/{owner}/tiny/{{app}}", {}, "")


def _make(root: Path, files: dict[str, str], remote: str) -> None:
    init_repo(root, files, "the repository as the user has it")
    git(root, "remote", "add", "origin", remote)
    # as a clone has it: main is pushed, origin/main is known (the remote itself is never contacted)
    git(root, "update-ref", "refs/remotes/origin/main", "HEAD")

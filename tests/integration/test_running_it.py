"""Running tagtrail for real: the Kubernetes manifests against the Kubernetes schemas, the Dockerfile's
promises, and the container entrypoint run as the container would run it (against a real git remote).

The image itself is not built here: its base (python:3.11-slim) comes from Docker Hub, which this machine
cannot reach. The Dockerfile is checked for what the issue asks (slim, non-root, git) instead."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from bench.git import Remote, git, init_repo

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.37.0"


def documents() -> list[tuple[str, dict[str, Any]]]:
    yaml = YAML(typ="safe")
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, Any]:
    return next(doc for _, doc in documents() if doc["kind"] == kind)


@pytest.mark.parametrize(("name", "doc"), documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)  # raises with the field path when wrong


def test_kustomization_lists_every_manifest() -> None:
    listed = YAML(typ="safe").load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    kinds = {doc["kind"] for _, doc in documents()}
    assert {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
    } <= kinds


def test_the_deployment_probes_and_secrets() -> None:
    deployment = by_kind("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is True  # the Lease: one writer among the replicas
    env = {e["name"]: e for e in container["env"]}
    assert env["TAGTRAIL_LEADER_ELECTION"]["value"] == "tagtrail/tagtrail"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"  # what followers check
    replicas = env["TAGTRAIL_REPLICA_SECRET"]["valueFrom"]["secretKeyRef"]  # not a webhook token
    assert (replicas["name"], replicas["key"]) == ("tagtrail-serve", "replica-secret")
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert by_kind("PodDisruptionBudget")["spec"]["minAvailable"] == 1
    # secrets are referenced, never embedded
    assert all(doc["kind"] != "Secret" for _, doc in documents())
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    refs |= {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
    assert refs == {"tagtrail-git", "tagtrail-serve", "tagtrail-registry"}
    # each replica's clone and decision log: a volume of its own where the image's XDG_STATE_HOME points
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/var/lib/tagtrail"]]
    assert "XDG_STATE_HOME=/var/lib/tagtrail/state" in (ROOT / "Dockerfile").read_text()
    service = by_kind("Service")
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    # the ConfigMap holds nothing secret
    data = by_kind("ConfigMap")["data"]
    assert not any(re.search(r"token|secret|password", k, re.IGNORECASE) for k in data)


def test_the_dockerfile_is_slim_non_root_and_has_git() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert stages[-1] == "${BASE}"  # the base is a build argument (tests build on a local Debian base) …
    default = re.search(r"^ARG BASE=(\S+)", text, flags=re.MULTILINE)
    assert default is not None
    assert default[1].endswith("-slim-bookworm")  # … whose default is the slim official Python image
    final = text[text.rindex("\nFROM ") :]
    assert re.search(r"apt-get install[^\n]*\bgit\b", final.replace("\\\n", " "))
    user = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
    assert user
    assert user[-1].split(":")[0] not in ("root", "0")
    assert "--no-install-recommends" in final
    assert "rm -rf /var/lib/apt/lists/*" in final


def test_the_entrypoint_passes_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", str(ROOT / "deploy" / "entrypoint.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def entrypoint(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # where `tagtrail` is, as in the image
    return subprocess.run(
        [str(ROOT / "deploy" / "entrypoint.sh"), *args],
        env={**os.environ, "PATH": path, "TAGTRAIL_HOME": str(home), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_entrypoint_clones_then_runs_tagtrail_in_the_clone(tmp_path: Path, file_remote: Remote) -> None:
    config = 'scheme: "{{branch}}.{{sha}}"\nimage: registry.lan/homelab/{app}\napps:\n  root: apps\n'
    source = init_repo(
        tmp_path / "source", {"tagtrail.yaml": config, "apps/web/Dockerfile": "FROM scratch\n"}
    )
    git(source, "remote", "add", "origin", file_remote.url)
    git(source, "push", "-q", "origin", "main")
    home = tmp_path / "data"
    env = {"TAGTRAIL_REPO_URL": file_remote.url, "TAGTRAIL_GIT_TOKEN": "not-printed-anywhere"}
    first = entrypoint(home, env, "apps", "--json")
    assert first.returncode == 0, first.stderr
    assert [a["app"] for a in json.loads(first.stdout)["include"]] == ["web"]
    assert (home / "repo" / ".git").is_dir()
    # a later start fetches and fast-forwards the kept clone
    git(source, "add", ".")
    (source / "apps" / "api").mkdir()
    (source / "apps" / "api" / "Dockerfile").write_text("FROM scratch\n")
    git(source, "add", ".")
    git(source, "commit", "-qm", "api")
    git(source, "push", "-q", "origin", "main")
    second = entrypoint(home, env, "apps", "--json")
    assert second.returncode == 0, second.stderr
    assert [a["app"] for a in json.loads(second.stdout)["include"]] == ["api", "web"]
    assert "not-printed-anywhere" not in (home / "repo" / ".git" / "config").read_text()
    missing = entrypoint(
        tmp_path / "other", {"TAGTRAIL_REPO_URL": file_remote.url, "TAGTRAIL_CONFIG": "nope.yaml"}, "apps"
    )
    assert missing.returncode == 2
    assert "set TAGTRAIL_CONFIG" in missing.stderr
    unset = entrypoint(tmp_path / "third", {}, "apps")
    assert unset.returncode != 0
    assert "set TAGTRAIL_REPO_URL" in unset.stderr

"""The Pulumi Kubernetes Operator's side of the test bench: its Stack CRD installed in the real API server
(with the one change 1.20 needs, made here at install time), Stacks created, and their status written through
the status subresource as the operator writes it (the operator and the Pulumi engine cannot run here)."""

from __future__ import annotations

import gzip
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.types import PatchType
from ruamel.yaml import YAML

CRD = Path(__file__).parents[1] / "fixtures" / "pulumi-operator" / "pulumi.com_stacks.yaml.gz"
STACK = create_namespaced_resource("pulumi.com", "v1", "Stack", "stacks")


def crd_for_120() -> dict[str, Any]:
    """The CRD with `spec.workspaceTemplate`'s schema replaced in each version: the 1.20 API server reads
    its empty-string defaults as null and refuses the whole CRD (../shared/pulumi-operator/README.md)."""
    body: dict[str, Any] = YAML(typ="safe").load(gzip.decompress(CRD.read_bytes()))
    for version in body["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        spec["workspaceTemplate"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return body


def install_crd(client: Client, timeout: float = 30.0) -> None:
    """Create the Stack CRD (once per API server) and wait until it is served."""
    try:
        client.create(CustomResourceDefinition.from_dict(crd_for_120()))
    except ApiError as error:
        if error.status.code != 409:
            raise
    deadline = time.monotonic() + timeout
    while True:
        found = client.get(CustomResourceDefinition, "stacks.pulumi.com")
        conditions = found.status.conditions if found.status else None
        if any(c.type == "Established" and c.status == "True" for c in conditions or []):
            return
        assert time.monotonic() < deadline, "the Stack CRD was not established"
        time.sleep(0.1)


def create_stack(client: Client, namespace: str, name: str, repo: str, branch: str = "main") -> None:
    client.create(
        STACK.from_dict(
            {
                "apiVersion": "pulumi.com/v1",
                "kind": "Stack",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"stack": "prod", "projectRepo": repo, "branch": branch, "repoDir": "pulumi"},
            }
        )
    )


def write_status(
    client: Client,
    namespace: str,
    name: str,
    state: str,
    *,
    attempted: str,
    applied: str | None,
    message: str = "",
    permalink: str | None = None,
) -> None:
    """status.lastUpdate as the operator writes it after an update (through the status subresource)."""
    last: dict[str, Any] = {
        "state": state,
        "lastAttemptedCommit": attempted,
        "failures": 0 if state == "succeeded" else 1,
        "type": "up",
        "name": f"{name}-update",
    }
    if message:  # an empty string reaches the 1.20 API server as null, which the schema refuses
        last["message"] = message
    if applied is not None:
        last["lastSuccessfulCommit"] = applied
    if permalink is not None:
        last["permalink"] = permalink
    client.patch(
        STACK.Status, name, {"status": {"lastUpdate": last}}, namespace=namespace, patch_type=PatchType.MERGE
    )


@contextmanager
def operator(
    client: Client,
    namespace: str,
    name: str,
    repo: Path,
    state: str,
    *,
    message: str = "",
    permalink: str | None = None,
) -> Iterator[None]:
    """The operator, as a test or the demo plays it, while the block runs: once a new commit lands on the
    branch checked out in `repo`, one update of the Stack: `succeeded` applies it, `failed` leaves the
    commit before it applied."""
    before = _head(repo)
    done = threading.Event()

    def act() -> None:
        while not done.wait(0.05):
            now = _head(repo)
            if now != before:
                applied = now if state == "succeeded" else before
                write_status(
                    client,
                    namespace,
                    name,
                    state,
                    attempted=now,
                    applied=applied,
                    message=message,
                    permalink=permalink,
                )
                return

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()

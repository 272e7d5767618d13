"""Fixtures of the Kubernetes test bench (tests/bench/kube.py): a real control plane, once per session.

- `control_plane`: etcd, kube-apiserver (RBAC, token auth) and kube-controller-manager on loopback.
  If `scripts/kube` has not built them, every test here fails with one line saying so: a skip would hide a
  missing install step.
- `kubeconfig`: the path of a kubeconfig for `admin` (system:masters), checking the server's certificate.
- `namespace`: a namespace of the test's own, whose `default` ServiceAccount has its token (Pods can be
  created at once); deleted after the test.
- `kubelet`: the stand-in kubelet (tests/bench/kubelet.py) of a Node of the test's own, tending the Pods of `namespace`.
- `admin`: a synchronous lightkube client as `admin`, for a test's own setup and checks.
- `new_lab`: makes the test's project (tests/bench/kubelab.py) in `namespace`, its builds in `registry`.
- `receiver`: where `tagtrail serve` in a test sends its notifications.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Namespace

from bench.kube import BenchMissing, ControlPlane
from bench.kubelab import Lab, NewLab, make_lab
from bench.kubelet import Kubelet
from bench.serve import Receiver
from tagtrail_demo import ImagePusher, RegistryServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    try:
        plane = ControlPlane().start()
    except BenchMissing as missing:
        pytest.fail(str(missing), pytrace=False)
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-")
    name = f"{slug}-{next(_counter)}"
    control_plane.create_namespace(name)
    yield name
    with control_plane.client() as client:
        client.delete(Namespace, name)


@pytest.fixture
def admin(control_plane: ControlPlane) -> Iterator[Client]:
    with control_plane.client() as client:
        yield client


@pytest.fixture
def new_lab(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    namespace: str,
    kubeconfig: Path,
) -> NewLab:
    def make(*, mode: str = "direct", extra: str = "") -> Lab:
        prefix = repo_name.replace("/", "-")
        return make_lab(
            tmp_path / "project", registry, pusher, prefix, namespace, kubeconfig, mode=mode, extra=extra
        )

    return make


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A notification receiver (apprise's JSON posts) on loopback, for `tagtrail serve`'s messages."""
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def kubelet(control_plane: ControlPlane, namespace: str) -> Iterator[Kubelet]:
    with Kubelet(control_plane, namespace, node=f"node-{namespace}"[:63]) as node:
        yield node
    assert not node.errors, f"the stand-in kubelet failed: {node.errors[:3]}"

"""Fixtures of the `tagtrail serve` tests: a registry that notifies the serve process of each module, a
homelab deploying from it, and the serve process itself (see bench.serve)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.git import Remote, git
from bench.homelab import Homelab, make_homelab
from bench.serve import REGISTRY_SECRET, Receiver, ServeProcess, remote_log, wait_for
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.registry import free_port


@pytest.fixture(scope="module")
def hook_port() -> int:
    """The port every `tagtrail serve` of this module listens on: the registry's notifications go there."""
    return free_port()


@pytest.fixture(scope="module")
def notifying_registry(tmp_path_factory: pytest.TempPathFactory, hook_port: int) -> Iterator[RegistryServer]:
    url = f"http://127.0.0.1:{hook_port}/hooks/registry"
    with RegistryServer(
        tmp_path_factory.mktemp("notifying"), notify=(url, f"Bearer {REGISTRY_SECRET}")
    ) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def lab(
    tmp_path: Path,
    notifying_registry: RegistryServer,
    repo_name: str,
    file_remote: Remote,
    receiver: Receiver,
) -> Homelab:
    with ImagePusher(notifying_registry.url) as pusher:
        homelab = make_homelab(
            tmp_path / "homelab",
            notifying_registry,
            pusher,
            repo_name.replace("/", "-"),
            tags_per_app=12,
            config_extra=(
                f"serve:\n  interval: 1h\n  coalesce_max: 60s\nnotify:\n  urls: ['{receiver.url}']\n"
            ),
        )
    git(homelab.root, "remote", "add", "origin", file_remote.url)
    git(homelab.root, "push", "-q", "-u", "origin", "main")
    return homelab


@pytest.fixture
def served(lab: Homelab, hook_port: int, file_remote: Remote) -> Iterator[ServeProcess]:
    """tagtrail serve running on the homelab, after its first reconcile deployed the 8 apps (bootstrap →
    newest build) in one commit."""
    process = ServeProcess(lab.root, port=hook_port).start()
    try:
        wait_for(lambda: len(remote_log(file_remote)) == 7, what="the first deploy commit")
        yield process
    finally:
        code = process.stop()
        assert code == 0, process.output()

"""tagtrail's container image (the Dockerfile at the repository's root) builds, and what it runs works as
deploy/kubernetes runs it: as uid 10001, with the root filesystem read-only and only /var/lib/tagtrail,
/home/tagtrail and /tmp writable, cloning the monorepo and deploying from it with `tagtrail serve`.

Docker Hub is out of reach here, so the Dockerfile's BASE is a debootstrapped Debian bookworm (see
bench.image, which caches it): the first run takes a few minutes, later ones well under one."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import tagtrail
from bench.git import Remote, git
from bench.homelab import make_homelab
from bench.image import Rootfs, build, inspect, mounted
from bench.serve import wait_for
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.registry import free_port

ROOT = Path(__file__).resolve().parents[2]
USER = 10001

pytestmark = pytest.mark.timeout(1800)  # a cold cache runs debootstrap and pip; a warm one takes a minute


@pytest.fixture(scope="module")
def image() -> str:
    return build(ROOT, "localhost/tagtrail")


@pytest.fixture(scope="module")
def rootfs(image: str) -> Iterator[Rootfs]:
    """The image's files, once for the module: each run mounts them read-only in its own namespace."""
    with mounted(image) as files:
        yield files


def test_the_image_says_it_runs_tagtrail_serve_as_a_user_not_root(image: str, rootfs: Rootfs) -> None:
    config = inspect(image)
    assert config["User"] == f"{USER}:{USER}"
    assert config["Entrypoint"] == ["tini", "--", "tagtrail-entrypoint"]
    # in a pod, behind TLS: the sign-in cookie is Secure
    assert config["Cmd"] == ["serve", "--host", "0.0.0.0", "--port", "8080", "--secure-cookies"]  # noqa: S104
    assert "TAGTRAIL_HOME=/var/lib/tagtrail" in config["Env"]
    passwd = (rootfs.path / "etc/passwd").read_text()
    assert f"tagtrail:x:{USER}:{USER}:" in passwd
    data = (rootfs.path / "var/lib/tagtrail").stat()
    assert (data.st_uid, data.st_gid) == (USER, USER)


def test_tagtrail_runs_in_it_as_uid_10001_on_a_read_only_root(rootfs: Rootfs, tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    for folder in (data, home):
        folder.mkdir()
        subprocess.run(["chown", f"{USER}:{USER}", str(folder)], check=True)
    writable = {"/var/lib/tagtrail": data, "/home/tagtrail": home}
    probe = (
        "tagtrail --version; id -u;"
        " touch /etc/tagtrail-was-here 2>/dev/null && echo root-writable || echo root-read-only;"
        " touch /var/lib/tagtrail/ok /home/tagtrail/ok /tmp/ok && echo writable"
    )
    result = subprocess.run(
        rootfs.command([probe], writable, {}, entrypoint=["sh", "-c"]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *version, uid, root, rest = result.stdout.split()
    assert tagtrail.__version__ in version, result.stdout
    assert (uid, root, rest) == (str(USER), "root-read-only", "writable")


def test_serve_in_it_clones_the_monorepo_and_deploys(
    rootfs: Rootfs, tmp_path: Path, registry: RegistryServer, repo_name: str, file_remote: Remote
) -> None:
    with ImagePusher(registry.url) as pusher:
        lab = make_homelab(
            tmp_path / "homelab",
            registry,
            pusher,
            repo_name.replace("/", "-"),
            tags_per_app=4,
            config_extra="serve:\n  interval: 1h\n",
        )
    git(lab.root, "remote", "add", "origin", file_remote.url)
    git(lab.root, "push", "-q", "-u", "origin", "main")
    before = len(remote_log(file_remote))
    data, home = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(data), str(home), str(file_remote.path)], check=True)
    port = free_port()
    writable = {"/var/lib/tagtrail": data, "/home/tagtrail": home, "/srv/remote": file_remote.path}
    env = {"TAGTRAIL_REPO_URL": "file:///srv/remote", "TAGTRAIL_TOKEN": "image-test-token-5b0c91e7d4a2f836"}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        rootfs.command(["serve", "--host", "127.0.0.1", "--port", str(port)], writable, env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def output() -> str:
        return (tmp_path / "serve.log").read_text()

    try:
        wait_for(lambda: _ready(port, process, output), 120, "tagtrail serve in the image to be ready")
        wait_for(lambda: len(remote_log(file_remote)) > before, 120, f"a deploy commit\n{output()}")
        serving = [
            pid
            for pid in _descendants(process.pid)
            if b"tagtrail" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert serving, output()
        for pid in serving:
            uids = next(
                line
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("Uid:")
            )
            assert uids.split()[1:] == [str(USER)] * 4, uids
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        log.close()
    assert code == 0, output()
    subject = remote_log(file_remote)[0].split(" ", 1)[1]
    assert "deploy" in subject.lower() or "tagtrail" in subject.lower(), subject
    assert list(data.glob("repo/.git")), "the entrypoint cloned into the volume"


def remote_log(remote: Remote) -> list[str]:
    """The remote's log, read as root from a repository uid 10001 owns."""
    return git(remote.path, "-c", "safe.directory=*", "log", "--format=%H %s", "main").splitlines()


def _ready(port: int, process: subprocess.Popen[bytes], output: object) -> bool:
    if process.poll() is not None:
        raise AssertionError(
            f"serve in the image exited with {process.returncode}:\n{output() if callable(output) else ''}"
        )
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.2)
        return False


def _descendants(pid: int) -> list[int]:
    found = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += _descendants(int(child))
    return found

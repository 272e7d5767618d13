"""The test bench itself works against the real components: registry (plain and htpasswd), git remotes."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bench.git import Remote, commit, git, init_repo
from bench.githttp import GitHTTPServer
from bench.users import REGISTRY_USER
from tagtrail.errors import SandboxError
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.manifests import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST


def skopeo_inspect(registry: RegistryServer, reference: str, *extra: str) -> dict[str, object]:
    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *extra, f"docker://{registry.host}/{reference}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout))


def test_pushed_tags_read_back_with_distinct_digests(
    pusher: ImagePusher, registry: RegistryServer, repo_name: str
) -> None:
    created = datetime(2025, 10, 14, 5, 10, 38, tzinfo=UTC)
    images = [
        pusher.push_image(
            repo_name,
            f"main.2025101{i}-051038.185c95c",
            created=created,
            labels={"org.opencontainers.image.revision": "185c95c" + "0" * 33},
        )
        for i in range(5)
    ]
    assert sorted(pusher.list_tags(repo_name)) == sorted(i.tag for i in images)
    assert len({i.digest for i in images}) == 5
    seen = skopeo_inspect(registry, f"{repo_name}:{images[2].tag}")
    assert seen["Digest"] == images[2].digest
    assert seen["Labels"] == {"org.opencontainers.image.revision": "185c95c" + "0" * 33}
    assert seen["Created"] == "2025-10-14T05:10:38Z"


def test_a_multi_arch_index_and_both_media_families(
    pusher: ImagePusher, registry: RegistryServer, repo_name: str
) -> None:
    oci = pusher.push_index(repo_name, "multi", platforms=("linux/amd64", "linux/arm64"))
    docker = pusher.push_index(repo_name, "multi-docker", media="docker")
    single = pusher.push_image(repo_name, "single-docker", media="docker")
    assert (oci.media_type, docker.media_type, single.media_type) == (OCI_INDEX, DOCKER_LIST, DOCKER_MANIFEST)
    raw = skopeo_inspect(registry, f"{repo_name}:multi", "--raw")
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64", "arm64"]  # type: ignore[index]
    assert all(m["mediaType"] == OCI_MANIFEST for m in raw["manifests"])  # type: ignore[index]
    arm = skopeo_inspect(registry, f"{repo_name}:multi", "--override-arch", "arm64")
    assert arm["Architecture"] == "arm64"
    assert skopeo_inspect(registry, f"{repo_name}:multi")["Digest"] == oci.digest


def test_retagging_reuses_the_manifest(pusher: ImagePusher, repo_name: str) -> None:
    image = pusher.push_image(repo_name, "first")
    again = pusher.tag(image, "second")
    assert again.digest == image.digest
    assert sorted(pusher.list_tags(repo_name)) == ["first", "second"]


def test_the_htpasswd_registry_refuses_anonymous_and_wrong_passwords(
    auth_registry: RegistryServer, auth_pusher: ImagePusher, repo_name: str
) -> None:
    image = auth_pusher.push_image(repo_name, "main.20251014-051038.185c95c")
    assert auth_pusher.list_tags(repo_name) == [image.tag]
    assert httpx.get(f"{auth_registry.url}/v2/").status_code == 401
    assert httpx.get(f"{auth_registry.url}/v2/", auth=(REGISTRY_USER[0], "wrong")).status_code == 401
    with ImagePusher(auth_registry.url) as anonymous, pytest.raises(SandboxError, match="HTTP 401"):
        anonymous.push_image(repo_name, "sneaky")
    seen = skopeo_inspect(auth_registry, f"{repo_name}:{image.tag}", "--creds", ":".join(REGISTRY_USER))
    assert seen["Digest"] == image.digest


def test_a_registry_of_its_own_starts_and_stops(tmp_path: Path) -> None:
    with RegistryServer(tmp_path / "own") as server, ImagePusher(server.url) as client:
        client.push_image("solo/app", "v1")
        assert client.list_tags("solo/app") == ["v1"]
        assert (server.storage / "docker/registry/v2/repositories/solo/app").is_dir()
        url = server.url
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/v2/", timeout=2)


def _clone_commit_push(remote_url: str, work: Path) -> str:
    git(work.parent, "clone", "-q", remote_url, work.name)
    sha = commit(work, {"apps/web/Dockerfile": "FROM scratch\n"}, "add web")
    git(work, "push", "-q", "origin", "HEAD:main")
    return sha


def test_file_remote_clone_commit_push(file_remote: Remote, tmp_path: Path) -> None:
    sha = _clone_commit_push(file_remote.url, tmp_path / "work")
    assert git(file_remote.path, "rev-parse", "main") == sha
    second = tmp_path / "second"
    git(tmp_path, "clone", "-q", file_remote.url, second.name)
    assert (second / "apps/web/Dockerfile").read_text() == "FROM scratch\n"


def test_http_remote_clone_commit_push_with_basic_auth(
    http_remote: Remote, git_http_server: GitHTTPServer, tmp_path: Path
) -> None:
    sha = _clone_commit_push(http_remote.url, tmp_path / "work")
    assert git(http_remote.path, "rev-parse", "main") == sha
    pushes = [r for r in git_http_server.requests if "git-receive-pack" in r[1] and r[0] == "POST"]
    assert pushes
    assert pushes[-1][2] == 200


def test_http_remote_refuses_wrong_credentials(http_remote: Remote, tmp_path: Path) -> None:
    wrong = http_remote.url.replace(":push-secret-7@", ":nope@")
    result = subprocess.run(
        ["git", "clone", "-q", wrong, str(tmp_path / "x")], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "Authentication failed" in result.stderr
    anonymous = wrong.replace("gitbot:nope@", "")
    result = subprocess.run(
        ["git", "clone", "-q", anonymous, str(tmp_path / "y")], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def test_a_large_push_goes_through_chunked(http_remote: Remote, tmp_path: Path) -> None:
    work = tmp_path / "work"
    init_repo(work)
    git(work, "remote", "add", "origin", http_remote.url)
    (work / "blob.bin").write_bytes(bytes(range(256)) * 12_000)  # over git's 1 MiB postBuffer: chunked
    git(work, "add", "blob.bin")
    git(work, "commit", "-q", "-m", "big")
    git(work, "push", "-q", "origin", "main")
    assert git(http_remote.path, "rev-parse", "main") == git(work, "rev-parse", "HEAD")


def test_home_is_isolated_per_test(isolated_home: Path) -> None:
    assert Path.home() == isolated_home
    assert not (isolated_home / ".docker").exists()
    assert git(isolated_home, "config", "--global", "init.defaultBranch") == "main"

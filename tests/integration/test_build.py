"""`tagtrail build` with real buildah (chroot isolation, vfs storage) pushing to the real registry; what was
pushed is read back with tagtrail's registry client and checked against skopeo."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from bench.baseimage import buildah_storage
from bench.cli import run
from bench.git import commit, git, init_repo
from bench.users import REGISTRY_USER
from tagtrail.adapters.registry import CredentialResolver, ImageRef, Platform, RegistryClient, Revision
from tagtrail.config import RegistryConfig
from tagtrail.domain.scheme import Rejected, Scheme
from tagtrail.features.build import BuildOptions, BuildPlan, Docker, Podman, source_url
from tagtrail_demo import RegistryServer

__all__ = ["buildah_storage"]  # a fixture
SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")


@pytest.fixture
def project(
    registry: RegistryServer,
    buildah_storage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    repo_name: str,
) -> dict[str, object]:
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(buildah_storage))
    prefix = repo_name.replace("/", "-")
    config = (
        f"image: {registry.host}/{prefix}/{{app}}\n"
        f'registries:\n  "{registry.host}": {{insecure: true}}\n'
        "apps:\n  exclude: [shared]\n  inputs:\n    worker: ['apps/shared/**']\n"
    )
    root = init_repo(
        tmp_path / "mono",
        {
            "tagtrail.yaml": config,
            "apps/web/Dockerfile": "FROM scratch\nCOPY index.html /srv/index.html\n",
            "apps/web/index.html": "<h1>web</h1>\n",
            "apps/worker/Dockerfile": "FROM scratch\nCOPY worker.py /app/worker.py\n",
            "apps/worker/worker.py": "print('work')\n",
            "apps/shared/lib.py": "# shared\n",
        },
    )
    git(root, "remote", "add", "origin", "git@github.com:acme/homelab.git")
    monkeypatch.chdir(root)
    return {"root": root, "prefix": prefix, "registry": registry}


async def _inspect(registry: RegistryServer, reference: str, platform: Platform | None = None) -> object:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        return await client.inspect(ImageRef.parse(reference), platform)


async def _revision(registry: RegistryServer, reference: str) -> tuple[Revision, dict[str, str], int]:
    """How a deploy reads the commit of `reference`, the manifest's annotations, and the requests it took."""
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        said = await client.revision(ImageRef.parse(reference))
        requests = client.stats.total
        manifest = await client.manifest(ImageRef.parse(reference))
    return said, manifest.annotations, requests


def skopeo_digest(reference: str) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reference}"],
        capture_output=True,
        check=True,
    ).stdout
    return (
        subprocess.run(
            ["skopeo", "manifest-digest", "/dev/stdin"], input=raw, capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )


def test_build_and_push_every_app(capsys: pytest.CaptureFixture[str], project: dict[str, object]) -> None:
    root = project["root"]
    assert isinstance(root, Path)
    registry = project["registry"]
    assert isinstance(registry, RegistryServer)
    sha = git(root, "rev-parse", "HEAD")
    code, out, err = run(capsys, "build", "--push", "--json")
    assert code == 0, out + err
    results = json.loads(out)
    assert [r["app"] for r in results] == ["web", "worker"]
    assert "building web (1/2)" in err
    for result in results:
        assert result["ok"]
        assert result["pushed"]
        tag = result["reference"].rsplit(":", 1)[1]
        parsed = SCHEME.parse(tag)
        assert not isinstance(parsed, Rejected)
        assert (parsed.branch, parsed.sha) == ("main", sha[:7])
        seen = asyncio.run(_inspect(registry, result["reference"]))
        assert seen.digest == result["digest"] == skopeo_digest(result["reference"])  # type: ignore[attr-defined]
        labels = seen.config.labels  # type: ignore[attr-defined]
        assert labels["org.opencontainers.image.revision"] == sha
        assert labels["org.opencontainers.image.source"] == "https://github.com/acme/homelab"
        assert labels["org.opencontainers.image.version"] == tag
        assert labels["org.opencontainers.image.title"] == result["app"]
        assert labels["org.opencontainers.image.created"].endswith("Z")
        said, annotations, requests = asyncio.run(_revision(registry, result["reference"]))
        ours = [k for k in labels if k.startswith("org.opencontainers.image.")]
        assert len(ours) == 5
        assert {k: annotations.get(k) for k in ours} == {k: labels[k] for k in ours}  # annotated too
        assert (said.digest, said.commit, said.said_by) == (result["digest"], sha, "annotation")
        assert requests == 1  # the manifest alone: a deploy needs no config to know the commit


def test_a_dirty_work_tree_is_refused_naming_the_files(
    capsys: pytest.CaptureFixture[str], project: dict[str, object]
) -> None:
    root = project["root"]
    assert isinstance(root, Path)
    (root / "apps/web/index.html").write_text("<h1>uncommitted</h1>\n")
    (root / "apps/shared/new.py").write_text("# untracked, an input of worker\n")
    (root / "README.md").write_text("not an input of any app\n")
    code, out, err = run(capsys, "build")
    assert code == 1
    assert out == ""
    assert "web: apps/web/index.html" in err
    assert "worker: apps/shared/new.py" in err
    assert "README.md" not in err
    assert "--allow-dirty" in err


def test_allow_dirty_builds_a_tag_that_is_never_eligible(
    capsys: pytest.CaptureFixture[str], project: dict[str, object]
) -> None:
    root = project["root"]
    assert isinstance(root, Path)
    (root / "apps/web/index.html").write_text("<h1>uncommitted</h1>\n")
    code, out, err = run(capsys, "build", "web", "worker", "--allow-dirty", "--push", "--json")
    assert code == 0, err
    web, worker = json.loads(out)
    assert web["reference"].endswith("-dirty")
    assert not worker["reference"].endswith("-dirty")  # its inputs are clean
    rejected = SCHEME.parse(web["reference"].rsplit(":", 1)[1])
    assert isinstance(rejected, Rejected)
    assert rejected.code == "dirty"


def test_one_failing_app_does_not_hide_the_others(
    capsys: pytest.CaptureFixture[str], project: dict[str, object]
) -> None:
    root = project["root"]
    assert isinstance(root, Path)
    commit(root, {"apps/web/Dockerfile": "FROM scratch\nCOPY missing-file /x\n"}, "break web")
    code, out, err = run(capsys, "build", "--json")
    assert code == 1
    web, worker = json.loads(out)
    assert (web["ok"], worker["ok"]) == (False, True)
    assert "exited" in web["error"]
    assert Path(web["log"]).read_text().count("missing-file") >= 1
    code, out, err = run(capsys, "build")
    assert "failed" in out
    assert "last lines of web's build" in err


def test_multi_platform_build_pushes_an_index(
    capsys: pytest.CaptureFixture[str], project: dict[str, object]
) -> None:
    registry = project["registry"]
    assert isinstance(registry, RegistryServer)
    code, out, err = run(capsys, "build", "web", "--push", "--platform", "linux/amd64,linux/arm64", "--json")
    assert code == 0, out + err
    [web] = json.loads(out)
    seen = asyncio.run(_inspect(registry, web["reference"], Platform("linux", "arm64")))
    assert sorted(str(p) for p in seen.platforms) == ["linux/amd64", "linux/arm64"]  # type: ignore[attr-defined]
    assert seen.config.architecture == "arm64"  # type: ignore[attr-defined]
    assert seen.digest == web["digest"] == skopeo_digest(web["reference"])  # type: ignore[attr-defined]


def test_push_with_credentials_tagtrail_resolves(
    capsys: pytest.CaptureFixture[str],
    project: dict[str, object],
    auth_registry: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = project["root"]
    assert isinstance(root, Path)
    (root / "tagtrail.yaml").write_text(
        f"image: {auth_registry.host}/{project['prefix']}/{{app}}\n"
        f'registries:\n  "{auth_registry.host}": {{insecure: true, credentials: "env:LAB"}}\n'
        "apps:\n  exclude: [shared]\n"
    )
    git(root, "commit", "-qam", "point at the registry with auth")
    monkeypatch.setenv("LAB_USERNAME", REGISTRY_USER[0])
    monkeypatch.setenv("LAB_PASSWORD", REGISTRY_USER[1])
    code, out, err = run(capsys, "build", "web", "--push", "--json")
    assert code == 0, out + err
    [web] = json.loads(out)
    assert REGISTRY_USER[1] not in out + err
    creds = CredentialResolver({auth_registry.host: "env:LAB"})
    assert creds.resolve(auth_registry.host) is not None
    assert web["digest"].startswith("sha256:")


def test_unknown_app_and_builder_are_one_line(
    capsys: pytest.CaptureFixture[str], project: dict[str, object]
) -> None:
    code, _, err = run(capsys, "build", "nope")
    assert (code, err.count("\n")) == (1, 1)
    assert "no app named 'nope'; apps: web, worker" in err
    code, _, err = run(capsys, "build", "--builder", "kaniko")
    assert "use one of docker, podman, buildah" in err
    code, _, err = run(capsys, "build", "--builder", "docker")
    assert "docker cannot build here" in err  # this machine has the docker CLI but no engine


def test_source_url() -> None:
    assert source_url("git@github.com:acme/homelab.git") == "https://github.com/acme/homelab"
    assert (
        source_url("https://x-access-token:secret@github.com/acme/homelab.git")
        == "https://github.com/acme/homelab"
    )
    assert source_url("ssh://git@git.lan:2222/ops/homelab") == "https://git.lan/ops/homelab"
    assert source_url(None) is None


def test_docker_and_podman_commands(tmp_path: Path) -> None:
    # Neither docker (no engine) nor podman (no container runtime) can build on this machine, so the commands
    # they would be given are checked here; buildah's are exercised for real above.
    from tagtrail.adapters.apps import App

    plan = BuildPlan(
        App("web", "apps/web", "apps/web/Dockerfile", "ghcr.io/o/r/web"),
        "main.1.abc1234",
        {"org.opencontainers.image.title": "web"},
    )
    options = BuildOptions(
        push=True, platforms=("linux/amd64", "linux/arm64"), insecure=True, auth_file=tmp_path / "auth.json"
    )
    docker = Docker().commands(plan, Path("/repo"), options, tmp_path)
    assert docker.build[:3] == ["docker", "buildx", "build"]
    assert docker.build[docker.build.index("--platform") :][:2] == ["--platform", "linux/amd64,linux/arm64"]
    assert "--push" in docker.build
    assert docker.build[-1] == "/repo/apps/web"
    podman = Podman().commands(plan, Path("/repo"), options, tmp_path)
    assert podman.build[:2] == ["podman", "build"]
    assert "--manifest" in podman.build
    assert podman.push is not None
    assert podman.push[:4] == ["podman", "manifest", "push", "--all"]
    assert "--tls-verify=false" in podman.push
    assert podman.push[-1] == "docker://ghcr.io/o/r/web:main.1.abc1234"

"""A base image the test publishes itself: built FROM scratch with buildah (one file copied in), pushed to
the test registry, and republished under the same tag with other content, as an upstream fix would be."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import commit, init_repo
from tagtrail.adapters.registry import ImageRef, RegistryClient
from tagtrail.config import RegistryConfig
from tagtrail_demo import RegistryServer

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@pytest.fixture(scope="session")
def buildah_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Containers storage of the test session's own, so builds never touch /var/lib/containers."""
    root = tmp_path_factory.mktemp("containers")
    conf = root / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n')
    return conf


def publish_base(reference: str, content: str, workdir: Path) -> str:
    """Build a tiny base holding /etc/base-release = `content`, push it as `reference` (plain HTTP), and
    return the pushed manifest's digest. The storage is CONTAINERS_STORAGE_CONF's (the test's own)."""
    context = workdir / f"base-{abs(hash((reference, content)))}"
    context.mkdir(parents=True, exist_ok=True)
    (context / "base-release").write_text(content)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY base-release /etc/base-release\n")
    digest = context / "digest"
    for command in (
        ["buildah", "bud", "--isolation", "chroot", "--storage-driver", "vfs", "-q", "-t", reference, "."],
        [
            "buildah",
            "push",
            "--storage-driver",
            "vfs",
            "--tls-verify=false",
            "-q",
            "--digestfile",
            str(digest),
            reference,
            f"docker://{reference}",
        ],
    ):
        result = subprocess.run(command, cwd=context, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return digest.read_text().strip()


@pytest.fixture
def lab(
    registry: RegistryServer,
    buildah_storage: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    repo_name: str,
) -> dict[str, object]:
    """A monorepo of two apps on one base (and one on scratch), deploy files in git; the base published."""
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(buildah_storage))
    prefix = repo_name.replace("/", "-")
    base = f"{registry.host}/{prefix}/base:1"
    first = publish_base(base, "base 1\n", tmp_path)
    config = (
        f"image: {registry.host}/{prefix}/{{app}}\n"
        f'registries:\n  "{registry.host}": {{insecure: true}}\n'
        "deploy:\n  git: {files: [deploy/prod.yaml], push: false}\n  cooldown: 0s\n"
    )
    root = init_repo(
        tmp_path / "mono",
        {
            "tagtrail.yaml": config,
            "apps/web/Dockerfile": f"ARG BASE={base}\nFROM $BASE AS runtime\nCOPY index.html /srv/\n",
            "apps/web/index.html": "<h1>web</h1>\n",
            "apps/api/Dockerfile": f"FROM {base}\nCOPY api.txt /srv/\n",
            "apps/api/api.txt": "api\n",
            "apps/static/Dockerfile": "FROM scratch\nCOPY s.txt /\n",
            "apps/static/s.txt": "s\n",
            "deploy/prod.yaml": "# the deploy file\n",
        },
    )
    monkeypatch.chdir(root)
    return {"root": root, "registry": registry, "base": base, "first": first, "tmp": tmp_path}


async def labels_of(registry: RegistryServer, reference: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        return (await client.image_config(ImageRef.parse(reference))).labels


async def annotations_of(registry: RegistryServer, reference: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        return (await client.manifest(ImageRef.parse(reference))).annotations


def build_and_declare(capsys: pytest.CaptureFixture[str], root: Path, *apps: str) -> dict[str, str]:
    """Build and push `apps`, write what was pushed into the deploy file as what runs, commit."""
    code, out, err = run(capsys, "build", *apps, "--push", "--json")
    assert code == 0, out + err
    refs = {r["app"]: f"{r['reference']}@{r['digest']}" for r in json.loads(out)}
    lines = "".join(f"{app}:\n  image: {ref}\n" for app, ref in sorted(refs.items()))
    commit(root, {"deploy/prod.yaml": lines}, "run what was built")
    return refs

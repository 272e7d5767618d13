"""Issue 17 end to end, with real buildah builds and the real registry: a base image the test publishes and
then republishes under the same tag. `tagtrail build` records the base (annotations and labels, the digest
actually used), `tagtrail base-images` reports the move, and only then."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bench.baseimage import buildah_storage, publish_base
from bench.cli import run
from bench.git import commit, init_repo
from tagtrail.config import RegistryConfig
from tagtrail.registry import ImageRef, RegistryClient
from tagtrail.sandbox import RegistryServer

__all__ = ["buildah_storage"]  # a fixture, shared with test_build
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


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


async def _config(registry: RegistryServer, reference: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        return (await client.image_config(ImageRef.parse(reference))).labels


async def _annotations(registry: RegistryServer, reference: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        manifest = await client.manifest(ImageRef.parse(reference))
    return dict(json.loads(manifest.raw).get("annotations", {}))


def build_and_declare(capsys: pytest.CaptureFixture[str], root: Path, *apps: str) -> dict[str, str]:
    """Build and push `apps`, write what was pushed into the deploy file as what runs, commit."""
    code, out, err = run(capsys, "build", *apps, "--push", "--json")
    assert code == 0, out + err
    refs = {r["app"]: f"{r['reference']}@{r['digest']}" for r in json.loads(out)}
    lines = "".join(f"{app}:\n  image: {ref}\n" for app, ref in sorted(refs.items()))
    commit(root, {"deploy/prod.yaml": lines}, "run what was built")
    return refs


def test_build_records_the_base_and_base_images_reports_its_move(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    root, registry, base, first = lab["root"], lab["registry"], lab["base"], lab["first"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    refs = build_and_declare(capsys, root, "web", "api", "static")
    for app in ("web", "api"):
        labels = asyncio.run(_config(registry, refs[app]))
        annotations = asyncio.run(_annotations(registry, refs[app]))
        for recorded in (labels, annotations):
            assert recorded[BASE_NAME] == base
            assert recorded[BASE_DIGEST] == first
    assert BASE_NAME not in asyncio.run(_config(registry, refs["static"]))  # FROM scratch: no base

    code, out, err = run(capsys, "base-images", "--json")
    assert code == 0, err
    rows = {r["app"]: r for r in json.loads(out)}
    assert rows["web"]["moved"] is False
    assert (rows["web"]["base"], rows["web"]["used"], rows["web"]["current"]) == (base, first, first)
    assert rows["web"]["source"] == "annotations"
    assert rows["static"]["base"] is None
    assert rows["static"]["moved"] is None

    tmp = lab["tmp"]
    assert isinstance(tmp, Path)
    second = publish_base(str(base), "base 1, with a security fix\n", tmp)
    assert second != first
    code, out, err = run(capsys, "base-images", "web", "api", "--json")
    assert code == 0, err
    rows = {r["app"]: r for r in json.loads(out)}
    assert sorted(rows) == ["api", "web"]
    for app in ("web", "api"):
        assert rows[app]["moved"] is True
        assert (rows[app]["used"], rows[app]["current"]) == (first, second)
        assert rows[app]["since"] is not None  # the new base's created time
    code, out, err = run(capsys, "base-images")
    assert code == 0, err
    assert "yes (base made" in out


def test_for_build_gives_the_workflow_the_base_and_its_build_context(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """What the generated workflow's step writes to $GITHUB_OUTPUT: the build context makes the builder use
    the digest that is recorded, however the tag moves meanwhile."""
    root, base, first = lab["root"], lab["base"], lab["first"]
    assert isinstance(root, Path)
    code, out, err = run(capsys, "base-images", "--for-build", "web")
    assert code == 0, err
    lines = dict(line.split("=", 1) for line in out.strip().splitlines())
    assert lines["name"] == base
    assert lines["digest"] == first
    assert lines["context"] == f"{base}=docker-image://{str(base).rsplit(':', 1)[0]}@{first}"


def test_a_dockerfile_that_cannot_be_read_is_one_line_with_file_and_line(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    root = lab["root"]
    assert isinstance(root, Path)
    commit(root, {"apps/web/Dockerfile": "ARG BASE\nFROM $BASE\n"}, "break web's base")
    code, _, err = run(capsys, "build", "web")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: apps/web/Dockerfile:2: '$BASE' expands to nothing: give the ARG a default or --build-arg"
    ]
    assert "Traceback" not in err

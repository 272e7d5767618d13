"""Issue 17 end to end, with real buildah builds and the real registry: a base image the test publishes and
then republishes under the same tag. `tagtrail build` records the base (annotations and labels, the digest
actually used), `tagtrail base-images` reports the move, and only then. (`tagtrail serve`'s part:
test_base_images_serve.py.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.baseimage import (
    BASE_DIGEST,
    BASE_NAME,
    annotations_of,
    build_and_declare,
    buildah_storage,
    lab,
    labels_of,
    publish_base,
)
from bench.cli import run
from bench.git import commit
from tagtrail.adapters.registry import ImageRef, Platform, RegistryClient
from tagtrail.config import RegistryConfig, load_config
from tagtrail_demo import ImagePusher, RegistryServer

__all__ = ["buildah_storage", "lab"]  # fixtures


def test_build_records_the_base_and_base_images_reports_its_move(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    root, registry, base, first = lab["root"], lab["registry"], lab["base"], lab["first"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    refs = build_and_declare(capsys, root, "web", "api", "static")
    for app in ("web", "api"):
        labels = asyncio.run(labels_of(registry, refs[app]))
        annotations = asyncio.run(annotations_of(registry, refs[app]))
        for recorded in (labels, annotations):
            assert recorded[BASE_NAME] == base
            assert recorded[BASE_DIGEST] == first
    assert BASE_NAME not in asyncio.run(labels_of(registry, refs["static"]))  # FROM scratch: no base

    code, out, err = run(capsys, "base-images", "--json")
    assert code == 0, err
    rows = {r["app"]: r for r in json.loads(out)}
    assert rows["web"]["moved"] is False
    assert (rows["web"]["base"], rows["web"]["used"], rows["web"]["current"]) == (base, first, first)
    assert rows["web"]["source"] == "annotations"
    assert (rows["static"]["base"], rows["static"]["scratch"], rows["static"]["moved"]) == (None, True, False)
    assert run(capsys, "base-images", "--exit-code")[0] == 0

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
    code, out, err = run(capsys, "base-images", "--exit-code")
    assert code == 2, err  # an app runs on a moved base
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "yes, since " in lines["web"]
    assert lines["static"].endswith("no (FROM scratch)")


def test_for_build_gives_the_workflow_the_base_and_its_build_context(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """What the generated workflow's step writes to $GITHUB_OUTPUT: the build context makes the builder use
    the digest that is recorded, however the tag moves meanwhile."""
    root, base, first = lab["root"], lab["base"], lab["first"]
    assert isinstance(root, Path)
    code, out, err = run(capsys, "base-images", "--for-build", "web")
    assert code == 0, err
    outputs = github_outputs(out)
    assert outputs["name"] == base
    assert outputs["digest"] == first
    assert outputs["context"] == f"{base}=docker-image://{str(base).rsplit(':', 1)[0]}@{first}"
    record = f"{BASE_NAME}={base}\n{BASE_DIGEST}={first}\n"
    assert outputs["labels"] == outputs["annotations"] == record
    code, out, err = run(capsys, "base-images", "--for-build", "static")  # FROM scratch: no base labels
    assert code == 0, err
    assert github_outputs(out) == dict.fromkeys(("name", "digest", "context", "labels", "annotations"), "")


def github_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT read as GitHub reads it: name=value lines, and name<<DELIMITER … DELIMITER blocks."""
    found: dict[str, str] = {}
    lines = iter(text.splitlines(keepends=True))
    for line in lines:
        if "<<" in line and "=" not in line.split("<<")[0]:
            name, delimiter = line.rstrip("\n").split("<<", 1)
            found[name] = "".join(iter(lambda: next(lines), delimiter + "\n"))
        else:
            name, value = line.rstrip("\n").split("=", 1)
            found[name] = value
    return found


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


def test_an_image_without_a_record_is_read_from_its_dockerfile_at_its_commit(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """An image built before tagtrail recorded bases (here pushed without labels): base-images names the
    base the Dockerfile had at the image's commit, and says the digest used is not known."""
    root, registry, base = lab["root"], lab["registry"], str(lab["base"])
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    old = commit(root, {"apps/api/Dockerfile": f"FROM {base}\nCOPY api.txt /srv/\n# v1\n"}, "api v1")
    config = load_config(root / "tagtrail.yaml")
    tag = config.tag_scheme.format(branch="main", sha=old, time=datetime.now(UTC))
    with ImagePusher(registry.url) as pusher:
        image = pusher.push_image(f"{config.image_for('api').split('/', 1)[1]}", tag)
    commit(root, {"apps/api/Dockerfile": "FROM scratch\nCOPY api.txt /srv/\n"}, "api moves to scratch")
    running = f"{config.image_for('api')}:{tag}@{image.digest}"
    commit(root, {"deploy/prod.yaml": f"api:\n  image: {running}\n"}, "run the old build")
    code, out, err = run(capsys, "base-images", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["app"], row["base"], row["source"]) == ("api", base, "dockerfile")  # the old commit's FROM
    assert (row["used"], row["moved"]) == (None, None)
    assert row["current"] == lab["first"]
    assert "records no base digest" in row["problem"]


def test_a_multi_platform_build_on_a_multi_platform_base(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """The base is an index: its digest is what the tag points to, and each platform's image records it."""
    root, registry = lab["root"], lab["registry"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    config = load_config(root / "tagtrail.yaml")
    repository = config.image_for("multi-base").split("/", 1)[1]
    with ImagePusher(registry.url) as pusher:
        index = pusher.push_index(repository, "2")
    base = f"{registry.host}/{repository}:2"
    commit(root, {"apps/web/Dockerfile": f"FROM {base}\nCOPY index.html /srv/\n"}, "web on a multi-arch base")
    code, out, err = run(capsys, "build", "web", "--push", "--platform", "linux/amd64,linux/arm64", "--json")
    assert code == 0, out + err
    [web] = json.loads(out)
    for platform in ("amd64", "arm64"):
        labels = asyncio.run(_platform_labels(registry, web["reference"], platform))
        assert (labels[BASE_NAME], labels[BASE_DIGEST]) == (base, index.digest)


async def _platform_labels(registry: RegistryServer, reference: str, architecture: str) -> dict[str, str]:
    async with RegistryClient({registry.host: RegistryConfig(insecure=True)}) as client:
        config = await client.image_config(ImageRef.parse(reference), Platform("linux", architecture))
    assert config.architecture == architecture
    return config.labels


def test_a_build_arg_chooses_the_base_and_the_record_follows(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """web's Dockerfile says `ARG BASE=…` then `FROM $BASE`: --build-arg BASE= builds on another base,
    and that base is the one recorded and used."""
    registry, base, tmp = lab["registry"], str(lab["base"]), lab["tmp"]
    assert isinstance(registry, RegistryServer)
    assert isinstance(tmp, Path)
    other = base.replace("/base:1", "/other-base:7")
    other_digest = publish_base(other, "another base\n", tmp)
    code, out, err = run(capsys, "build", "web", "--push", "--build-arg", f"BASE={other}", "--json")
    assert code == 0, out + err
    [web] = json.loads(out)
    labels = asyncio.run(labels_of(registry, web["reference"]))
    assert (labels[BASE_NAME], labels[BASE_DIGEST]) == (other, other_digest)
    code, out, err = run(capsys, "build", "web", "--build-arg", "no equals sign")
    assert (code, out) == (1, "")
    assert err.strip() == "error: --build-arg 'no equals sign': write KEY=VALUE, KEY a variable name"


def test_a_base_only_in_local_storage_builds_without_a_record_and_says_so(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """A base the builder has locally (imported, never pushed) cannot be resolved by a registry: the build
    goes ahead on it, unrecorded, with a warning; a FROM that is no image reference is an error at its line."""
    root, registry = lab["root"], lab["registry"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    context = root.parent / "local-base"
    context.mkdir()
    (context / "f").write_text("local\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    subprocess.run(
        [
            "buildah",
            "bud",
            "--isolation",
            "chroot",
            "--storage-driver",
            "vfs",
            "-q",
            "-t",
            "localhost/only-local:1",
            ".",
        ],
        cwd=context,
        check=True,
        capture_output=True,
    )
    commit(
        root,
        {"apps/api/Dockerfile": "FROM localhost/only-local:1\nCOPY api.txt /srv/\n"},
        "api on a local base",
    )
    code, out, err = run(capsys, "build", "api", "--push", "--json")
    assert code == 0, out + err
    assert "warning: api: its base cannot be resolved (localhost/only-local:1: registry localhost" in err
    assert "built without a base record" in err
    assert BASE_NAME not in asyncio.run(labels_of(registry, json.loads(out)[0]["reference"]))

    commit(root, {"apps/api/Dockerfile": "# api\nFROM Not_An_Image:1\n"}, "api on nothing")
    code, out, err = run(capsys, "build", "api")
    assert (code, out) == (1, "")
    assert err.startswith("error: apps/api/Dockerfile:2: 'Not_An_Image:1'")
    assert len(err.strip().splitlines()) == 1


def test_an_image_buildah_built_alone_is_read_from_the_annotations_buildah_wrote(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """buildah annotates every image with its base by itself: an image built without tagtrail is tracked
    from its manifest, no Dockerfile needed."""
    root, registry, base, first = lab["root"], lab["registry"], str(lab["base"]), lab["first"]
    assert isinstance(root, Path)
    assert isinstance(registry, RegistryServer)
    config = load_config(root / "tagtrail.yaml")
    tag = config.tag_scheme.format(branch="main", sha="0" * 40, time=datetime.now(UTC))
    reference = f"{config.image_for('api')}:{tag}"
    storage = ["--storage-driver", "vfs"]
    for command in (
        [
            "buildah",
            "bud",
            "--isolation",
            "chroot",
            *storage,
            "--tls-verify=false",
            "-q",
            "-t",
            reference,
            "apps/api",
        ],
        ["buildah", "push", *storage, "--tls-verify=false", "-q", "--digestfile", "../digest", reference],
    ):
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    digest = (root.parent / "digest").read_text().strip()
    assert BASE_NAME not in asyncio.run(labels_of(registry, reference))  # no labels: annotations only
    commit(root, {"deploy/prod.yaml": f"api:\n  image: {reference}@{digest}\n"}, "run a plain buildah build")
    code, out, err = run(capsys, "base-images", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["base"], row["used"], row["source"], row["moved"]) == (base, first, "annotations", False)


def test_tagtrail_deploy_gives_a_rebuild_on_a_moved_base_the_reason_serve_gives(
    capsys: pytest.CaptureFixture[str], lab: dict[str, object]
) -> None:
    """The reason is the build's, not the deployer's: the running code rebuilt on its moved base (built at
    the branch's head, as the generated workflow does: the deploy commit sits on top of the running one) is
    `base-image` when `tagtrail deploy` deploys it, as it is when serve's base watch knew (issue 24, 12)."""
    root, base, tmp = lab["root"], str(lab["base"]), lab["tmp"]
    assert isinstance(root, Path)
    assert isinstance(tmp, Path)
    build_and_declare(capsys, root, "web")
    publish_base(base, "base 1, patched\n", tmp)
    code, out, err = run(capsys, "build", "web", "--push", "--json")
    assert code == 0, err
    rebuilt = json.loads(out)[0]["reference"]
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, err
    [web] = json.loads(out)["apps"]
    assert (web["reason"], web["target"]["tag"]) == ("base-image", rebuilt.rsplit(":", 1)[1])
    code, out, err = run(capsys, "history", "web", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["reason"] == "base-image"

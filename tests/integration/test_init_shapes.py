"""`tagtrail init --yes` on the shapes monorepos are written in (tests/fixtures/init-shapes/<shape>/, each
with the expect.yaml saying what init must propose), then `tagtrail status --json` with the file it wrote.

Each shape is copied into a new git repository with ghcr.io replaced by the test registry's host (a registry
on loopback that answers at once: no image is pushed, so status reads each app's reference from the deploy
files and finds no newer build). Done when, on every shape: the config validates, names every deploy file,
leaves third-party images alone, status finds each app's reference, and what init could not decide is said in
one line each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bench.cli import run
from bench.git import git, init_repo
from tagtrail.config import parse_config
from tagtrail_demo import RegistryServer

SHAPES = Path(__file__).parents[1] / "fixtures" / "init-shapes"
TAG = "main.20251014-051038.185c95c"


def repository(shape: Path, root: Path, host: str) -> dict[str, Any]:
    """The shape as a git work tree pushing to `host`, and its expectations with the same host."""
    files = {}
    for path in sorted(shape.rglob("*")):
        if path.is_file() and path.name != "expect.yaml":
            files[path.relative_to(shape).as_posix()] = path.read_text().replace("ghcr.io", host)
    expect = YAML(typ="safe").load((shape / "expect.yaml").read_text().replace("ghcr.io", host))
    init_repo(root, files, "the repository as the user has it")
    git(root, "remote", "add", "origin", expect["remote"])
    git(root, "update-ref", "refs/remotes/origin/main", "HEAD")
    return dict(expect)


@pytest.mark.parametrize("shape", sorted(p.name for p in SHAPES.iterdir()))
def test_init_proposes_a_config_with_which_status_finds_every_app(
    shape: str,
    tmp_path: Path,
    registry: RegistryServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expect = repository(SHAPES / shape, tmp_path / shape, registry.host)
    monkeypatch.chdir(tmp_path / shape)

    code, out, err = run(capsys, "init", "--yes")
    assert code == 0, out + err
    assert "tagtrail.yaml is valid" in out
    written = (tmp_path / shape / "tagtrail.yaml").read_text()
    config = parse_config(written)
    assert config.image == expect["image"]
    assert config.scheme == expect.get("scheme", config.scheme)
    reason = next(line for line in out.splitlines() if line.startswith("image "))  # the summary's first
    assert expect["image_from"] in reason
    assert config.deploy.aliases == expect["aliases"]
    assert config.deploy.git is not None
    assert sorted(config.deploy.git.files) == sorted(expect["files"])
    for image in expect["left_alone"]:
        assert f"left alone: {image}" in out  # named, and not taken for an app's image
    said = [line for line in out.splitlines() if line.startswith(("to do: ", "note: ", "skipped "))]
    for words in expect["said"]:
        assert sum(words in line for line in said) == 1, (words, said)
    # and nothing else: a shape init reads right leaves nothing to do
    assert [line for line in said if not any(words in line for words in expect["said"])] == []

    if "applied_by" in expect:  # the operator's Stack found, proposed commented out (it needs kubernetes:)
        stack = expect["applied_by"]
        assert f"Stack in {stack['where']} applies this branch" in " ".join(written.split())
        assert f"#   pulumi_stack: {{namespace: {stack['namespace']}, name: {stack['name']}}}" in written
        assert f"the Pulumi Stack {stack['namespace']}/{stack['name']} ({stack['where']})" in out
        uncommented = written.replace("# applied_by:", "applied_by:").replace(
            "#   pulumi_stack", "  pulumi_stack"
        )
        uncommented = uncommented.replace("# kubernetes:", "kubernetes:").replace(
            "#   namespaces", "  namespaces"
        )
        applied = parse_config(uncommented).deploy.git
        assert applied is not None
        assert applied.applied_by is not None  # uncommented, it is the config that follows the Stack
        assert applied.applied_by.pulumi_stack.name == stack["name"]

    code, out, err = run(capsys, "status", "--json")
    assert code == 0, err
    found = {row["app"]: row["running"]["tag"] if row["running"] else None for row in json.loads(out)}
    apps = expect["apps"]
    assert found == (apps if isinstance(apps, dict) else dict.fromkeys(apps, TAG))

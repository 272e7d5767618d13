"""`tagtrail init` against the real registry: on repositories of the shapes users bring, the file it writes
passes `config check`, and the `plan` it finishes with (and any plan after it) finds every app's references
and the newer build waiting in the registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import samples
from bench.cli import run
from bench.git import git
from tagtrail.domain.scheme import Scheme
from tagtrail_demo import ImagePusher, RegistryServer

RUNNING_SHA = "185c95c0d0a39b4d6a1ef2b2b0f3a0f4e9f1c2d3"  # an older build, of a commit this clone lacks
BUILT = datetime(2025, 10, 14, 5, 10, 38, tzinfo=UTC)
NEWER = datetime(2025, 10, 15, 7, 0, 0, tzinfo=UTC)
Make = Callable[[Path, str, str, str], samples.Sample]
SHAPES: dict[str, tuple[Make, Scheme]] = {
    # the seed post's tz='Pacific/Los Angeles' made UTC tags: init proposes the scheme that reads them
    "seed": (samples.seed, Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")),
    "kustomize": (
        samples.kustomize,
        Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"),
    ),
    "helm": (samples.helm, Scheme.compile("{{branch}}-{{date 'YYYYMMDDHHmmss'}}-{{sha}}", 8)),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_init_writes_a_config_whose_plan_finds_every_app(
    shape: str,
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make, scheme = SHAPES[shape]
    owner = repo_name.replace("/", "-")
    running = scheme.format(branch="main", sha=RUNNING_SHA, time=BUILT)
    sample = make(tmp_path / shape, registry.host, owner, running)
    head = git(sample.root, "rev-parse", "HEAD")
    newest = scheme.format(branch="main", sha=head, time=NEWER)
    for app in sample.apps:
        repository = sample.image.replace("{app}", app).split("/", 1)[1]
        pusher.push_image(repository, running, created=BUILT)
        pusher.push_image(
            repository, newest, created=NEWER, labels={"org.opencontainers.image.revision": head}
        )
        pusher.push_image(repository, "latest", created=NEWER)
    monkeypatch.chdir(sample.root)

    code, out, err = run(capsys, "init", "--yes")
    assert code == 0, out + err
    assert "tagtrail.yaml is valid" in out
    table = out[out.index("$ tagtrail plan") :].splitlines()[1:]
    assert table[0].split() == ["APP", "RUNNING", "NEWEST", "ELIGIBLE", "ACTION", "WHY"]
    assert sorted(row.split()[:4] for row in table[1 : len(sample.apps) + 1]) == sorted(
        [app, running, newest, "deploy"] for app in sample.apps
    )

    assert run(capsys, "config", "check")[0] == 0
    code, out, err = run(capsys, "plan", "--json")
    assert code == 0, err
    plans = {p["app"]: p for p in json.loads(out)}
    assert sorted(plans) == sorted(sample.apps)
    for plan in plans.values():
        assert plan["running"]["tag"] == running
        assert plan["target"]["tag"] == newest
        assert plan["action"] == "deploy"
    config_text = (sample.root / "tagtrail.yaml").read_text()
    for path in sample.files:
        assert f"- {path}\n" in config_text


def test_init_on_a_repository_with_nothing_deployed_yet(
    tmp_path: Path, repo_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = samples.plain(tmp_path / "tiny", repo_name.replace("/", "-"))
    monkeypatch.chdir(sample.root)
    code, out, err = run(capsys, "init", "--yes")
    assert code == 0, out + err
    assert "tagtrail.yaml is valid" in out
    assert "no deploy files yet: `tagtrail plan` has nothing to read" in out
    assert "to do: no file here names an app's image" in out
    code, out, _ = run(capsys, "apps", "--json")
    assert code == 0
    assert [a["image"] for a in json.loads(out)["include"]] == [
        sample.image.replace("{app}", app) for app in sample.apps
    ]

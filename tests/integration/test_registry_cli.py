"""`tagtrail registry tags|digest|inspect` against the real registry, as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.cli import run
from tagtrail.domain.scheme import Scheme
from tagtrail_demo import ImagePusher, RegistryServer

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
START = datetime(2025, 10, 14, 5, 10, 38, tzinfo=UTC)


@pytest.fixture
def project(
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """A tagtrail.yaml whose `image` puts app `web` at repo_name, with builds of two branches and others."""
    prefix, app = repo_name.rsplit("/", 1)
    (tmp_path / ".git").mkdir()
    (tmp_path / "tagtrail.yaml").write_text(
        f'image: {registry.host}/{prefix}/{{app}}\nregistries:\n  "{registry.host}": {{insecure: true}}\n'
    )
    monkeypatch.chdir(tmp_path)
    tags = {}
    for hours, branch in enumerate(["main", "feature/login", "main", "main"]):
        sha = f"{hours}{'abcdef0' * 5}{hours}"[:40]
        tag = SCHEME.format(branch=branch, sha=sha, time=START + timedelta(hours=hours))
        pusher.push_image(
            repo_name,
            tag,
            created=START + timedelta(hours=hours),
            labels={"org.opencontainers.image.revision": sha},
        )
        tags[f"{branch}#{hours}"] = tag
    pusher.push_image(repo_name, "latest")
    pusher.push_image(repo_name, "buildcache")
    tags["app"] = app
    return tags


def test_tags_lists_everything_sorted(capsys: pytest.CaptureFixture[str], project: dict[str, str]) -> None:
    code, out, err = run(capsys, "registry", "tags", project["app"])
    assert code == 0, err
    assert out.split() == sorted([*(v for k, v in project.items() if "#" in k), "latest", "buildcache"])


def test_tags_with_the_scheme_newest_first(
    capsys: pytest.CaptureFixture[str], project: dict[str, str]
) -> None:
    code, out, err = run(capsys, "registry", "tags", project["app"], "--scheme")
    assert code == 0, err
    rows = [line.split()[0] for line in out.splitlines()[1:]]
    assert rows == [project["main#3"], project["main#2"], project["feature/login#1"], project["main#0"]]
    assert "4 shown, 2 not of the scheme" in err


def test_tags_of_one_branch_as_json(
    capsys: pytest.CaptureFixture[str], project: dict[str, str], registry: RegistryServer
) -> None:
    code, out, _ = run(capsys, "registry", "tags", project["app"], "--scheme", "--branch", "main", "--json")
    assert code == 0
    data = json.loads(out)
    assert [t["tag"] for t in data["tags"]] == [project["main#3"], project["main#2"], project["main#0"]]
    assert (data["other_scheme"], data["other_branch"]) == (2, 1)
    assert data["requests"] == {registry.host: {"200": 1}}
    code, out, _ = run(
        capsys, "registry", "tags", project["app"], "--scheme", "--branch", "feature/login", "--json"
    )
    assert [t["branch"] for t in json.loads(out)["tags"]] == ["feature-login"]


def test_inspect_names_the_commit(capsys: pytest.CaptureFixture[str], project: dict[str, str]) -> None:
    code, out, _ = run(capsys, "registry", "inspect", f"{project['app']}:{project['main#2']}", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["commit"] == f"2{'abcdef0' * 5}2"[:40]
    assert data["created"] == "2025-10-14T07:10:38Z"
    code, out, _ = run(capsys, "registry", "inspect", f"{project['app']}:{project['main#2']}")
    assert "commit      2abcdef0" in out


def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], project: dict[str, str], registry: RegistryServer
) -> None:
    code, _, err = run(capsys, "registry", "digest", f"{project['app']}:nope")
    assert code == 1
    assert err.count("\n") == 1
    assert "not found" in err
    code, _, err = run(capsys, "registry", "digest", project["app"])
    assert code == 1
    assert "names no tag or digest" in err
    code, _, err = run(capsys, "registry", "tags", f"{registry.host}/Bad/Name")
    assert code == 1
    assert "is not a repository path" in err
    code, _, err = run(capsys, "registry", "inspect", f"{project['app']}:latest", "--platform", "linux")
    assert code == 1
    assert "is not a platform" in err


def test_without_a_config_a_full_reference_and_insecure(
    capsys: pytest.CaptureFixture[str],
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    pusher.push_image(repo_name, "v1")
    code, _, err = run(capsys, "registry", "tags", f"{registry.host}/{repo_name}")
    assert code == 1
    assert "insecure" in err  # plain HTTP is refused unless marked
    code, out, _ = run(capsys, "registry", "tags", f"{registry.host}/{repo_name}", "--insecure")
    assert (code, out) == (0, "v1\n")
    code, _, err = run(capsys, "registry", "tags", f"{registry.host}/{repo_name}", "--insecure", "--scheme")
    assert code == 1
    assert "no tagtrail.yaml" in err

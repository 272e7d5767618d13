"""`tagtrail tag` in a real git repository: HEAD's branch, sha and time go into the tag."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import commit, git, init_repo

CONFIG = "image: ghcr.io/acme/homelab/{app}\n"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = init_repo(tmp_path / "homelab", {"tagtrail.yaml": CONFIG, "apps/web/Dockerfile": "FROM scratch\n"})
    monkeypatch.chdir(root / "apps" / "web")
    return root


def test_tag_of_head_on_a_branch(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature/login")
    sha = commit(repo, {"apps/web/login.html": "<form>\n"}, "login")
    before = datetime.now(UTC).replace(microsecond=0)
    code, out, err = run(capsys, "tag", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["branch"] == "feature/login"
    assert data["sha"] == sha
    assert data["tag"].startswith("feature-login.")
    assert data["tag"].endswith("." + sha[:7])
    stamp = datetime.strptime(data["tag"].split(".")[1], "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC)


def test_commit_date_uses_the_commit_time(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "tagtrail.yaml").write_text(
        CONFIG + "scheme: \"{{branch}}.{{commit_date 'YYYYMMDD-HHmmss' tz='Europe/Berlin'}}.{{sha}}\"\n"
    )
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2024-02-18T10:15:00+00:00")
    sha = commit(repo, {"x": "y"}, "dated")
    code, out, _ = run(capsys, "tag")
    assert (code, out) == (0, f"main.20240218-111500.{sha[:7]}\n")


def test_a_detached_head_needs_a_branch(
    capsys: pytest.CaptureFixture[str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    code, out, err = run(capsys, "tag")
    assert code == 1
    assert "HEAD is detached" in err
    assert "--branch" in err
    code, out, _ = run(capsys, "tag", "--branch", "release/1", "--time", "2024-02-18T10:15:00Z")
    assert out == f"release-1.20240218-101500.{sha[:7]}\n"
    monkeypatch.setenv("GITHUB_REF", "refs/heads/main")  # GitHub Actions checks out a detached sha
    code, out, _ = run(capsys, "tag", "--time", "2024-02-18T10:15:00Z")
    assert out == f"main.20240218-101500.{sha[:7]}\n"


def test_a_repository_without_commits(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    (empty / "tagtrail.yaml").write_text(CONFIG)
    monkeypatch.chdir(empty)
    code, _, err = run(capsys, "tag")
    assert code == 1
    assert "has no commits yet" in err

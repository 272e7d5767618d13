"""Short shas resolved in one git process (`GitRepo.commits_named_many`) say exactly what one process per
sha said (`commits_named`): a commit, nothing, or every commit of an ambiguous prefix."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from bench.git import commit, git, init_repo
from tagtrail.gitrepo import GitRepo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo", {"README.md": "one\n"})
    commit(root, {"README.md": "two\n"}, "second")
    return root


def _ambiguous_blob_prefix(root: Path) -> str:
    """Blobs written until two share their first four hex digits (a birthday: a few hundred suffice)."""
    folder = root / ".blobs"
    folder.mkdir()
    for n in range(1500):
        (folder / str(n)).write_text(f"blob {n}\n")
    listing = "\n".join(str(folder / str(n)) for n in range(1500))
    done = subprocess.run(
        ["git", "hash-object", "-w", "--stdin-paths"],
        cwd=root,
        input=listing,
        capture_output=True,
        text=True,
        check=True,
    )
    names = done.stdout.split()
    shared = [p for p, count in Counter(n[:4] for n in names).items() if count > 1]
    assert shared, "1,500 blobs without two sharing four hex digits"
    return shared[0]


def test_the_batch_agrees_with_one_question_per_sha(repo: Path) -> None:
    source = GitRepo(repo)
    head, first = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD~1")
    git(repo, "branch", "abcdef1")  # a branch whose name looks like a short sha: not a commit of that name
    tree = git(repo, "rev-parse", "HEAD^{tree}")
    asked = [head[:7], first[:12], head, "0000000", "abcdef1", tree[:9], "not-hex", "abc", head[:7].upper()]
    many = source.commits_named_many(asked)
    assert many == {p: GitRepo(repo).commits_named(p) for p in asked}
    assert many[head[:7]] == [head]
    assert many[first[:12]] == [first]
    assert many["abcdef1"] == []
    assert many[tree[:9]] == []  # an object, but not a commit


def test_an_ambiguous_prefix_is_answered_like_one_question(repo: Path) -> None:
    prefix = _ambiguous_blob_prefix(repo)
    head = git(repo, "rev-parse", "HEAD")
    many = GitRepo(repo).commits_named_many([prefix, head[:7]])
    assert many == {prefix: GitRepo(repo).commits_named(prefix), head[:7]: [head]}


def test_many_shas_cost_one_git_process(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shas = git(repo, "rev-list", "HEAD").split()
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        return real(args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "run", counting)
    found = GitRepo(repo).commits_named_many([s[:8] for s in shas] + ["1234567"])
    assert [found[s[:8]] for s in shas] == [[s] for s in shas]
    assert len(calls) == 1

"""Short shas resolved in one git process (`GitRepo.commits_named_many`) say exactly what one process per
sha said (`commits_named`): a commit, nothing, or every commit of an ambiguous prefix."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from bench.git import commit, git, init_repo
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.history import deploy_history
from tagtrail.adapters.refs import Matcher
from tagtrail.config import parse_config
from tagtrail.domain.provenance import CommitAnswer, CommitState
from tagtrail.reconcile.claims import Memory, Provenance

NO_REGISTRY = cast(Any, None)  # commit questions ask git only


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo", {"README.md": "one\n"})
    commit(root, {"README.md": "two\n"}, "second")
    return root


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every process the test starts from here on (git's, through subprocess.run)."""
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        return real(args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "run", counting)
    return calls


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


def test_many_shas_cost_one_git_process(repo: Path, git_calls: list[list[str]]) -> None:
    shas = git(repo, "rev-list", "HEAD").split()
    git_calls.clear()
    found = GitRepo(repo).commits_named_many([s[:8] for s in shas] + ["1234567"])
    assert [found[s[:8]] for s in shas] == [[s] for s in shas]
    assert len(git_calls) == 1


def test_expected_shas_are_resolved_in_the_next_batch(repo: Path, git_calls: list[list[str]]) -> None:
    """What runs is expected before the ancestry walk names it: the candidates' batch resolves it too, so
    the walk's own resolution starts no process; a name that is not one commit is left to be asked."""
    head, first = git(repo, "rev-parse", "HEAD"), git(repo, "rev-parse", "HEAD~1")
    git(repo, "branch", "abcdef1")
    source = GitRepo(repo)
    source.expect([first[:7], "abcdef1", "1234567"])
    git_calls.clear()
    assert source.commits_named_many([head[:7]]) == {head[:7]: [head]}
    assert len(git_calls) == 1
    assert source.resolve_many([first[:7], head[:7]]) == {first[:7]: first, head[:7]: head}
    assert len(git_calls) == 1
    assert source.resolve_many(["abcdef1"]) == {"abcdef1": None}  # asked on its own, as before
    assert len(git_calls) > 1


def test_reached_says_what_merge_base_says_for_each_commit(repo: Path) -> None:
    main = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    feature = commit(repo, {"feature.txt": "f\n"}, "on a branch")
    git(repo, "checkout", "-q", "main")
    later = commit(repo, {"later.txt": "l\n"}, "later on main")
    asked = [main, feature, later, git(repo, "rev-parse", "HEAD~2")]
    source = GitRepo(repo)
    for ref in ("refs/heads/main", "refs/heads/feature", "refs/heads/nowhere"):
        assert source.reached(ref, asked) == {c for c in asked if source.reaches(ref, c)}
    assert source.reached("refs/heads/main", asked) == {main, later, asked[3]}


def test_one_walk_says_what_merge_base_says_for_each_pair(repo: Path, git_calls: list[list[str]]) -> None:
    """Every (ancestor, descendant) question of a reconcile, across a merge and branches, answered by one
    walk of history exactly as `merge-base --is-ancestor` answers each pair (strict: a commit is not its
    own ancestor; a sha unknown here is None)."""
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "feature")
    side = [commit(repo, {"f.txt": f"{n}\n"}, f"feature {n}") for n in range(2)]
    git(repo, "checkout", "-q", "main")
    main = [commit(repo, {"m.txt": f"{n}\n"}, f"main {n}") for n in range(2)]
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature")
    merged = git(repo, "rev-parse", "HEAD")
    after = commit(repo, {"m.txt": "after\n"}, "after the merge")
    commits = [base, *side, *main, merged, after]
    pairs = [(a[:7], d[:9]) for a in commits for d in commits] + [("0000000", after[:7]), (base, "1234567")]
    git_calls.clear()
    answers = GitRepo(repo).strict_ancestry(pairs)
    assert len(git_calls) == 2  # the shas resolved, then one walk
    for (a, d), answer in answers.items():
        if "0000000" in (a, d) or "1234567" in (a, d):
            assert answer is None
            continue
        full_a, full_d = git(repo, "rev-parse", a), git(repo, "rev-parse", d)
        ancestor = subprocess.run(
            ["git", "merge-base", "--is-ancestor", full_a, full_d], cwd=repo, check=False
        ).returncode
        assert answer == (ancestor == 0 and full_a != full_d), (a, d)
    assert answers[side[0][:7], after[:9]] is True
    assert answers[side[1][:7], main[1][:9]] is False


def test_one_ancestor_asked_is_answered_like_merge_base_by_a_walk_that_stops_at_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push asks one ancestor (what runs) against its candidates: each answer is merge-base's, across a
    merge, a root commit and a side branch, and the walk lists only the commits above the ancestor, not the
    history below it (a deploy repository's history grows with every deploy)."""
    root = git(repo, "rev-list", "--max-parents=0", "HEAD")
    below = [commit(repo, {"old.txt": f"{n}\n"}, f"old {n}") for n in range(60)]
    git(repo, "checkout", "-q", "-b", "feature")
    side = commit(repo, {"f.txt": "f\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    top = [commit(repo, {"m.txt": f"{n}\n"}, f"main {n}") for n in range(2)]
    git(repo, "merge", "-q", "--no-ff", "-m", "merge", "feature")
    merged = git(repo, "rev-parse", "HEAD")
    commits = [root, below[0], below[-1], side, *top, merged]
    walked: list[int] = []
    real = subprocess.run

    def counting(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        done = real(args, **kwargs)  # type: ignore[call-overload]
        if "rev-list" in args:
            walked.append(len(done.stdout.splitlines()))
        return done  # type: ignore[no-any-return]

    monkeypatch.setattr(subprocess, "run", counting)
    for ancestor in commits:
        answers = GitRepo(repo).strict_ancestry([(ancestor[:8], d) for d in commits])
        for (_, d), answer in answers.items():
            code = real(["git", "merge-base", "--is-ancestor", ancestor, d], cwd=repo, check=False).returncode
            assert answer == (code == 0 and ancestor != d), (ancestor, d)
    assert walked[commits.index(side)] == 4  # the merge, main above the fork, the side commit: not 60 below
    assert walked[commits.index(root)] == len(git(repo, "rev-list", "--all").split())


def test_the_apps_of_a_reconcile_share_their_commit_questions(repo: Path, git_calls: list[list[str]]) -> None:
    """Fifty apps asking at once cost a few git processes, not several per app, and each gets the answer
    it would have had alone."""
    shas = []
    for n in range(50):
        shas.append(commit(repo, {f"apps/app{n}/x": f"{n}\n"}, f"app{n}"))
    git(repo, "checkout", "-q", "-b", "feature")
    stray = commit(repo, {"stray": "s\n"}, "not on main")
    git(repo, "checkout", "-q", "main")
    alone = {
        sha: asyncio.run(Provenance(NO_REGISTRY, GitRepo(repo), Memory()).commits([(sha, ("main",))]))[sha]
        for sha in [shas[0][:7], stray[:7], "0000000"]
    }
    provenance = Provenance(NO_REGISTRY, GitRepo(repo), Memory())
    git_calls.clear()

    async def every_app() -> list[dict[str, CommitAnswer]]:
        asked = [[(s[:7], ("main",))] for s in shas] + [[(stray[:7], ("main",)), ("0000000", ("main",))]]
        return await asyncio.gather(*(provenance.commits(a) for a in asked))

    answers = asyncio.run(every_app())
    assert all(a[s[:7]].state is CommitState.ON_BRANCH for a, s in zip(answers, shas, strict=False))
    assert answers[-1] == {stray[:7]: alone[stray[:7]], "0000000": alone["0000000"]}
    assert answers[0][shas[0][:7]] == alone[shas[0][:7]]
    assert len(git_calls) <= 8, [c[:3] for c in git_calls]


def test_the_deploy_history_reads_many_commits_per_git_process(
    repo: Path, git_calls: list[list[str]]
) -> None:
    image = "registry.test/acme/{app}"
    matcher = Matcher.from_config(
        parse_config(f"image: {image}\ndeploy:\n  git:\n    files: [deploy.yaml]\n")
    )
    for n in range(40):
        text = "".join(
            f"{a}:\n  image: registry.test/acme/{a}:v{n if a == 'web' else n - n % 2}\n"
            for a in ("web", "api")
        )
        commit(repo, {"deploy.yaml": text}, f"deploy {n}")
    git_calls.clear()
    entries = deploy_history(GitRepo(repo), ["deploy.yaml"], matcher)
    web = [(e.before, e.after) for e in entries if e.app == "web"]
    assert web[0] == ("registry.test/acme/web:v38", "registry.test/acme/web:v39")
    assert len(web) == 40  # the first commit brought it in (from nothing)
    assert len([e for e in entries if e.app == "api"]) == 20  # every other commit
    assert len(git_calls) <= 3  # the log, then 41 states of the file in two batches


def test_the_paths_between_many_pairs_of_commits_are_what_one_diff_each_says(
    repo: Path, git_calls: list[list[str]]
) -> None:
    """`changed_paths_many` (one `diff-tree --stdin`) agrees with `changed_paths` pair by pair, in order,
    an empty difference and a shared base included."""
    commit(repo, {"apps/web/app.py": "x\n", "apps/api/app.py": "y\n"}, "third")
    commit(repo, {"apps/web/app.py": "z\n"}, "fourth")
    source = GitRepo(repo)
    shas = git(repo, "rev-list", "HEAD").split()
    pairs = [(shas[3], shas[0]), (shas[3], shas[1]), (shas[0], shas[0]), (shas[1], shas[0])]
    git_calls.clear()
    found = source.changed_paths_many(pairs)
    assert len(git_calls) == 1
    assert found == [sorted(source.changed_paths(b, h)) for b, h in pairs]
    assert found[2] == []
    assert found[3] == ["apps/web/app.py"]

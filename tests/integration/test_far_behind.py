"""Issue 25 (DESIGN invariant 13): apps running builds far behind their newest cost no more git than apps
one build behind. A `git` on PATH logs every git process a plan starts, on a real repository and registry."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bench.behind import Behind, kept, logging_git, make_behind
from bench.git import commit
from tagtrail.config import load_config
from tagtrail.reconcile import Planned, Reconciler
from tagtrail_demo import ImagePusher, RegistryServer


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file that gets one line per git process started from here on."""
    folder, log = logging_git(tmp_path / "logging-git")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def plan(project: Behind, log: Path) -> tuple[dict[str, Planned], list[str]]:
    """`tagtrail plan` of the project, and the git processes it started."""
    log.unlink(missing_ok=True)
    path = project.root / "tagtrail.yaml"

    async def go() -> list[Planned]:
        async with Reconciler.open(load_config(path), path) as reconciler:
            return await reconciler.plan(actor="test", record=False)

    planned = {p.app: p for p in asyncio.run(go())}
    return planned, log.read_text().splitlines() if log.exists() else []


def test_git_processes_do_not_grow_with_apps_or_builds_behind(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, git_log: Path, repo_name: str
) -> None:
    near = make_behind(tmp_path, registry, pusher, apps=2, builds=4, behind=1, prefix=f"{repo_name}-near")
    far = make_behind(tmp_path, registry, pusher, apps=6, builds=40, behind=35, prefix=f"{repo_name}-far")
    counts = []
    for project in (near, far):
        planned, processes = plan(project, git_log)
        assert {a: p.decision.target_tag for a, p in planned.items()} == project.newest
        assert all(p.decision.reason == "newer-build" for p in planned.values())
        # the tag list and the winner's read, which says it records no base: so it is no base-image rebuild
        # (issue 24 item 12), and neither the running image nor git is asked whether it is the running code
        assert {p.requests for p in planned.values()} == {2}
        assert not any("diff-tree" in p for p in processes)
        counts.append(len(processes))
    # 9 to decide (the running commits resolved with the candidates' short shas, in one process)
    assert counts[1] <= counts[0] <= 9, (counts, "\n".join(processes))
    assert sum("merge-base" in p for p in processes) == 0  # no question asked pair by pair


def test_builds_refused_on_every_look_cost_two_rounds_of_git(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, git_log: Path, repo_name: str
) -> None:
    """Newer builds whose commits are not on main are each refused, every one of them, in a bounded
    number of git processes (one per COMMIT_BATCH of them before)."""
    near = make_behind(
        tmp_path, registry, pusher, apps=2, builds=4, behind=2, prefix=f"{repo_name}-n", refused=True
    )
    far = make_behind(
        tmp_path, registry, pusher, apps=3, builds=80, behind=70, prefix=f"{repo_name}-f", refused=True
    )
    counts = []
    for project, behind in ((near, 2), (far, 70)):
        planned, processes = plan(project, git_log)
        for p in planned.values():
            assert (p.decision.action, p.decision.reason) == ("hold", "commit-not-on-branch")
            assert p.decision.ignored["commit-not-on-branch"] == behind
        counts.append(len(processes))
    assert counts[1] <= counts[0] + 2, counts  # a second round of questions, for the builds left


def test_a_later_poll_reads_no_image_of_builds_git_refuses(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    """The winner's image is read while git answers (`reconcile/ahead.py`) only for a tag list new since the
    last look: a kept reconciler's later polls of an app whose newer builds git refuses make one request,
    its tag list, not a read of a build refused again on every poll."""
    project = make_behind(
        tmp_path, registry, pusher, apps=1, builds=20, behind=10, prefix=f"{repo_name}-r", refused=True
    )

    async def polls() -> list[Planned]:
        async with kept(project) as reconciler:
            return [(await reconciler.plan(actor="test", record=False))[0] for _ in range(3)]

    first, *later = asyncio.run(polls())
    assert (first.decision.action, first.decision.reason) == ("hold", "commit-not-on-branch")
    assert first.requests <= 4  # the tag list, and the newest build's image read beside git's answer
    assert [p.requests for p in later] == [1, 1]
    assert all(p.decision.reason == "commit-not-on-branch" for p in later)


def test_pinned_apps_far_behind_ask_git_nothing_of_their_builds(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, git_log: Path, repo_name: str
) -> None:
    """A pin holds an app where it is, however far behind: no commit, ancestry or image question is asked
    of its newer builds, only its tag list (the cheap case issue 25 said to keep cheap)."""
    project = make_behind(tmp_path, registry, pusher, apps=8, builds=60, behind=50, prefix=f"{repo_name}-p")
    config = project.root / "tagtrail.yaml"
    pins = "".join(f"    {app}: {tag}\n" for app, tag in project.running.items())
    commit(project.root, {"tagtrail.yaml": config.read_text() + "  pins:\n" + pins}, "pin every app")
    planned, processes = plan(project, git_log)
    assert {(p.decision.action, p.decision.reason) for p in planned.values()} == {("hold", "pinned")}
    assert {p.requests for p in planned.values()} == {1}
    assert len(processes) <= 6, "\n".join(processes)
    assert not any(p.startswith(("rev-list", "merge-base")) for p in processes)

"""Issue 25 item 2: a hint for one app reads and writes only the deploy files that hold its references (an
index kept from the last full read says which), records one decision and commits; anything the index cannot
answer falls back to the full read. A real registry and real git, as `tagtrail serve` keeps its reconciler
(and its GitOps target, in a worktree of a checkout with a remote)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.behind import REVISION, SCHEME, Behind, kept, make_behind
from bench.git import Remote, commit, git
from tagtrail.config import load_config
from tagtrail.reconcile import Reconciler, Report
from tagtrail.targets.factory import open_project
from tagtrail.targets.gitops import GitOpsTarget
from tagtrail_demo import ImagePusher, RegistryServer

# app000 in two files, app001 beside it in one of them, app002 alone in a third
LAYOUT = {
    "deploy/both.yaml": ("app000", "app001"),
    "deploy/one.yaml": ("app000",),
    "deploy/three.yaml": ("app002",),
}
ALL = tuple(LAYOUT)


def split_files(project: Behind, remote: Remote) -> None:
    """The one deploy file of the project spread over three, named by a glob; pushed to `remote`."""
    root = project.root
    lines = (root / "deploy/images.yaml").read_text().splitlines(keepends=True)
    entry = {lines[n].rstrip(":\n"): lines[n] + lines[n + 1] for n in range(0, len(lines), 2)}
    git(root, "rm", "-q", "deploy/images.yaml")
    config = (root / "tagtrail.yaml").read_text().replace("[deploy/images.yaml]", '["deploy/*.yaml"]')
    files = {path: "".join(entry[app] for app in apps) for path, apps in LAYOUT.items()}
    commit(root, {**files, "tagtrail.yaml": config}, "three deploy files")
    git(root, "remote", "add", "origin", remote.url)
    git(root, "push", "-q", "-u", "origin", "main")


def pushed(project: Behind, pusher: ImagePusher, app: str, n: int) -> str:
    """A developer's commit of `app`, pushed, and its CI build in the registry; the build's tag."""
    root = project.root
    git(root, "pull", "-q", "--ff-only", "origin", "main")
    sha = commit(root, {f"apps/{app}/change.txt": f"{n}\n"}, f"{app}: change {n}")
    git(root, "push", "-q", "origin", "main")
    tag = SCHEME.format(branch="main", sha=sha, time=datetime(2026, 1, 1, n, tzinfo=UTC))
    label = {REVISION: sha}
    pusher.push_image(f"{project.prefix}/{app}", tag, labels=label, annotations=label)
    return tag


def hand_commit(project: Behind, files: dict[str, str | None], message: str) -> None:
    """Someone else's commit to the deploy branch (None: the file is deleted)."""
    root = project.root
    git(root, "pull", "-q", "--ff-only", "origin", "main")
    for path, text in files.items():
        if text is None:
            git(root, "rm", "-q", path)
        else:
            (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    git(root, "push", "-q", "origin", "main")


def files_read(reconciler: Reconciler) -> tuple[str, ...]:
    target = reconciler.project.target
    assert isinstance(target, GitOpsTarget)
    return target.index.last_read


def head_files(remote: Remote) -> list[str]:
    """The files the remote's last commit changed."""
    return git(remote.path, "show", "--name-only", "--format=", "main").splitlines()


def run(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coroutine())


def test_a_hint_reads_and_writes_only_its_apps_files(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, file_remote: Remote, repo_name: str
) -> None:
    project = make_behind(tmp_path, registry, pusher, apps=3, builds=3, behind=1, prefix=repo_name)
    split_files(project, file_remote)

    async def go() -> None:
        async with kept(project) as reconciler:
            first = await reconciler.run(actor="test", automatic=True)
            assert first.changed == ["app000", "app001", "app002"]
            assert files_read(reconciler) == ALL

            for n, (app, read) in enumerate(
                [
                    ("app000", ("deploy/both.yaml", "deploy/one.yaml")),
                    ("app002", ("deploy/three.yaml",)),
                    ("app001", ("deploy/both.yaml",)),
                ]
            ):
                tag = pushed(project, pusher, app, n)
                report = await reconciler.run([app], actor="test", automatic=True)
                assert [p.app for p in report.planned] == [app]  # one decision, so one record
                assert report.changed == [app]
                assert report.planned[0].decision.target_tag == tag
                assert files_read(reconciler) == read
                assert head_files(file_remote) == [p for p in read if app in LAYOUT[p]]
                assert git(file_remote.path, "log", "-1", "--format=%s", "main").startswith("deploy")

    run(go)


def test_the_one_app_path_commits_what_the_full_read_commits(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, file_remote: Remote, repo_name: str
) -> None:
    project = make_behind(tmp_path, registry, pusher, apps=3, builds=3, behind=1, prefix=repo_name)
    split_files(project, file_remote)
    made: list[tuple[tuple[str, ...], str, str, list[tuple[object, ...]]]] = []

    def outcome(report: Report, reconciler: Reconciler) -> None:
        decisions = [
            (p.app, p.decision.action, p.decision.reason, p.decision.sentence, p.target)
            for p in report.planned
        ]
        tree = git(file_remote.path, "rev-parse", "main^{tree}")
        message = git(file_remote.path, "log", "-1", "--format=%B", "main")
        made.append((files_read(reconciler), tree, message, decisions))

    async def go() -> None:
        async with kept(project) as reconciler:
            await reconciler.run(actor="test", automatic=True)
            pushed(project, pusher, "app000", 0)
            before = git(file_remote.path, "rev-parse", "main")
            outcome(await reconciler.run(["app000"], actor="test", automatic=True), reconciler)
        # the same deploy again, from the same head, by a reconciler with no index: the full read
        git(file_remote.path, "update-ref", "refs/heads/main", before)
        async with kept(project) as fresh:
            outcome(await fresh.run(["app000"], actor="test", automatic=True), fresh)

    run(go)
    (partial, *same), (full, *again) = made
    assert partial == ("deploy/both.yaml", "deploy/one.yaml")
    assert full == ALL
    assert same == again


def test_what_the_index_cannot_answer_falls_back_to_the_full_read(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, file_remote: Remote, repo_name: str
) -> None:
    project = make_behind(tmp_path, registry, pusher, apps=3, builds=3, behind=1, prefix=repo_name)
    split_files(project, file_remote)
    root = project.root
    three = (root / "deploy/three.yaml").read_text()
    config = (root / "tagtrail.yaml").read_text()
    one = (root / "deploy/one.yaml").read_text()
    stale: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = [
        # another app's file changed: it may now name app000 too
        ("another app's file", {"deploy/three.yaml": three + "# edited by hand\n"}, ALL),
        ("tagtrail.yaml", {"tagtrail.yaml": config + "# edited by hand\n"}, ALL),
        # a new file the glob matches, naming app000 once more: its reference is deployed too
        ("a new deploy file", {"deploy/four.yaml": one}, tuple(sorted((*ALL, "deploy/four.yaml")))),
        (
            "a file of the index gone",
            {"deploy/one.yaml": None},
            ("deploy/both.yaml", "deploy/four.yaml", "deploy/three.yaml"),
        ),
    ]

    async def go() -> None:
        async with kept(project) as reconciler:
            tag = pushed(project, pusher, "app000", 0)
            report = await reconciler.run(["app000"], actor="test", automatic=True)
            assert files_read(reconciler) == ALL, "no full read yet: the full read"
            assert report.changed == ["app000"]
            n = 1
            for why, files, read in stale:
                hand_commit(project, files, why)
                tag = pushed(project, pusher, "app000", n)
                report = await reconciler.run(["app000"], actor="test", automatic=True)
                assert files_read(reconciler) == read, why
                assert report.changed == ["app000"], why
                for path in read:
                    shown = git(file_remote.path, "show", f"main:{path}")
                    assert ("app000" not in shown) or tag in shown, (why, path)
                n += 1
                tag = pushed(project, pusher, "app000", n)  # the index is whole again
                await reconciler.run(["app000"], actor="test", automatic=True)
                assert len(files_read(reconciler)) < len(read), why
                n += 1

    run(go)


def test_each_apps_newest_deploy_is_read_since_the_last_read_as_afresh(
    tmp_path: Path, registry: RegistryServer, pusher: ImagePusher, file_remote: Remote, repo_name: str
) -> None:
    """The dashboard's snapshot after each deploy reads only the commits since its last read, to the same
    effect as reading the history afresh: after hint deploys, a hand edit, and a branch reset."""
    project = make_behind(tmp_path, registry, pusher, apps=3, builds=3, behind=1, prefix=repo_name)
    split_files(project, file_remote)
    root, apps = project.root, ["app000", "app001", "app002"]
    by_hand = (root / "deploy/both.yaml").read_text()  # app000 and app001 as they ran before any deploy

    async def newest(target: object) -> list[tuple[str, str, str | None, str | None]]:
        assert isinstance(target, GitOpsTarget)
        entries = await target.history(until=apps)
        first = {e.app: e for e in reversed(entries)}  # the newest of each app
        return sorted((e.app, e.commit, e.before, e.after) for e in first.values())

    async def afresh() -> list[tuple[str, str, str | None, str | None]]:
        path = root / "tagtrail.yaml"
        config = load_config(path)
        return await newest(open_project(config, path, None).target)

    async def go() -> None:
        async with kept(project) as reconciler:
            await reconciler.run(actor="test", automatic=True)
            assert await newest(reconciler.project.target) == await afresh()
            for n, app in enumerate(["app000", "app002"]):
                pushed(project, pusher, app, n)
                await reconciler.run([app], actor="test", automatic=True)
                assert await newest(reconciler.project.target) == await afresh(), app
            hand_commit(project, {"deploy/both.yaml": by_hand}, "app000 and app001 back, by hand")
            assert await newest(reconciler.project.target) == await afresh()
            git(root, "reset", "-q", "--hard", "HEAD~2")  # the hand edit and the last deploy undone
            assert await newest(reconciler.project.target) == await afresh()

    run(go)


def test_a_hint_decided_while_its_write_opens_is_decided_again_where_the_read_differs(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    file_remote: Remote,
    repo_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """serve's hint path (prefetch): the apps are decided on the index's last read while the fetch and the
    checkout run, and that decision is taken where the read holds the same; a hand edit pushed meanwhile is
    in the read, not in the guess, so the apps are decided again on what was read (DESIGN invariant 10)."""
    project = make_behind(tmp_path, registry, pusher, apps=3, builds=3, behind=1, prefix=repo_name)
    split_files(project, file_remote)
    by_hand = {path: (project.root / path).read_text() for path in ("deploy/both.yaml", "deploy/one.yaml")}
    evaluations: list[object] = []

    async def go() -> None:
        async with kept(project) as reconciler:
            evaluate = reconciler._evaluate

            async def counted(*args: Any, **kwargs: Any) -> Any:
                evaluations.append(args)
                return await evaluate(*args, **kwargs)

            monkeypatch.setattr(reconciler, "_evaluate", counted)
            await reconciler.run(actor="test", automatic=True)
            tag = pushed(project, pusher, "app000", 0)
            evaluations.clear()
            report = await reconciler.run(["app000"], actor="test", automatic=True, prefetch=True)
            assert (report.changed, report.planned[0].decision.target_tag) == (["app000"], tag)
            assert len(evaluations) == 1  # the guess held

            hand_commit(project, dict(by_hand), "app000 and app001 back, by hand")
            newer = pushed(project, pusher, "app000", 1)
            evaluations.clear()
            report = await reconciler.run(["app000"], actor="test", automatic=True, prefetch=True)
            [planned] = report.planned
            assert planned.decision.running.tag == project.running["app000"]  # as the hand edit put it
            assert (report.changed, planned.decision.target_tag) == (["app000"], newer)
            assert len(evaluations) == 2

    run(go)

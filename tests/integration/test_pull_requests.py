"""Issue 28: deploy through pull requests, on the local GitHub (`github_pulls`: the pull-request API checked
against GitHub's own description, a real bare repository behind its branches) with a real registry. The
project's checkout has that bare repository as `origin`, as a clone of GitHub would; tagtrail pushes its
branches there with git and speaks to the API for the rest."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.behind import REVISION, SCHEME, Behind, kept, make_behind
from bench.cosign import openssl_key, sign
from bench.git import commit, git
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.registry.media import BASE_DIGEST, BASE_NAME
from tagtrail.cli import main
from tagtrail.errors import GitError, GitHubError
from tagtrail.features.insights.read import read_history
from tagtrail.reconcile import Outcome, Report, rollback
from tagtrail.targets.base import Reviewing, Then
from tagtrail_demo import ImagePusher, RegistryServer

APP, OTHER = "app000", "app001"
BASE = {BASE_NAME: "docker.io/library/python:3.12-slim", BASE_DIGEST: "sha256:" + "b" * 64}
FILE = "deploy/images.yaml"


@dataclass
class Lab:
    project: Behind
    github: Any  # bench.githubpulls.GitHubPulls
    pusher: ImagePusher
    digests: dict[str, str] = field(default_factory=dict)  # what build() pushed, by tag

    @property
    def root(self) -> Path:
        return self.project.root

    def remote_text(self, rev: str, path: str = FILE) -> str:
        shown = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=self.github.remote, capture_output=True, check=True
        )
        return shown.stdout.decode()  # byte for byte: git() strips the last newline

    def build(self, app: str, n: int, base: dict[str, str] | None = None) -> str:
        """A developer's commit of `app` on main, and its CI build in the registry (recording `base`, its
        base image's OCI annotations, where given); the build's tag."""
        git(self.root, "pull", "-q", "--ff-only", "origin", "main")
        sha = commit(self.root, {f"apps/{app}/change.txt": f"{n}\n"}, f"{app}: change {n}")
        git(self.root, "push", "-q", "origin", "main")
        tag = SCHEME.format(branch="main", sha=sha, time=datetime(2026, 1, 1, n, tzinfo=UTC))
        label = {REVISION: sha, **(base or {})}
        pushed = self.pusher.push_image(f"{self.project.prefix}/{app}", tag, labels=label, annotations=label)
        self.digests[tag] = pushed.digest
        return tag

    def requests(self, method: str, suffix: str) -> int:
        return sum(1 for e in self.github.exchanges if e.method == method and e.path.endswith(suffix))


@pytest.fixture
def lab(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    github_pulls: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Lab]:
    def make(
        apps: int = 1,
        merge: str = "off",
        method: str = "squash",
        one_per: str = "app",
        api: str = "",
        then: str = "",
        verify: str = "",
    ) -> Lab:
        extra = (f"    then: {then}\n" if then else "") + (
            "    pull_request:\n"
            f"      repository: {github_pulls.repository}\n"
            f"      api_url: {github_pulls.api_url}{api}\n"
            f"      merge: {merge}\n      method: {method}\n      one_per: {one_per}\n"
            "      labels: [deploy]\n"
        )
        extra += f"  verify:\n    keys: ['file:{verify}']\n" if verify else ""
        project = make_behind(
            tmp_path, registry, pusher, apps=apps, builds=3, behind=1, prefix=repo_name, extra=extra
        )
        git(project.root, "remote", "add", "origin", str(github_pulls.remote))
        git(project.root, "push", "-q", "-f", "-u", "origin", "main")  # the repository as it starts
        monkeypatch.setenv("GITHUB_TOKEN", github_pulls.token)
        return Lab(project, github_pulls, pusher)

    return make


def run(coroutine: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(coroutine())


def proposed(report: Report, app: str) -> str:
    target = next(p.target for p in report.planned if p.app == app)
    assert target is not None
    return target.reference


def with_reference(text: str, app: str, reference: str) -> str:
    """The deploy file as a direct push would write it: the app's line, and no other byte, changed."""
    lines = text.splitlines(keepends=True)
    at = lines.index(f"{app}:\n") + 1
    lines[at] = f"  image: {reference}\n"
    return "".join(lines)


def test_one_pull_request_per_app_however_many_builds_arrive(lab: Callable[..., Lab]) -> None:
    it = lab(apps=2)

    async def go() -> None:
        async with kept(it.project) as reconciler:
            first = await reconciler.run(actor="test", automatic=True)
            assert first.outcomes() == {APP: Outcome.PENDING_REVIEW, OTHER: Outcome.PENDING_REVIEW}
            assert first.changed == []
            assert sorted(p["head"]["ref"] for p in it.github.pulls) == [
                "tagtrail/auto/app000",
                "tagtrail/auto/app001",
            ]
            base = it.remote_text("main")
            assert it.remote_text("tagtrail/auto/app000") == with_reference(base, APP, proposed(first, APP))
            pull = next(p for p in it.github.pulls if p["head"]["ref"] == "tagtrail/auto/app000")
            assert it.github.labels(pull["number"]) == ["deploy"]
            assert proposed(first, APP) in pull["body"]
            assert pull["title"] == f"tagtrail deploy: {APP} {it.project.newest[APP]}"

            plan = await reconciler.plan([APP], actor="test")
            assert plan[0].decision.sentence.startswith(
                f"pending-review #{pull['number']} {pull['html_url']}"
            )

            listed = it.requests("GET", "/pulls")
            again = await reconciler.run(actor="test", automatic=True)  # the same builds: quiet
            assert again.outcomes()[APP] == Outcome.PENDING_REVIEW
            assert it.requests("GET", "/pulls") == listed + 1  # one list per reconcile, not one per app
            assert Reviewing.of(again.applied.details).counts == {"open": 2}
            assert it.requests("POST", "/pulls") == 2
            assert it.requests("PATCH", f"/pulls/{pull['number']}") == 0

            for n in (5, 6):  # newer builds update the one pull request
                tag = it.build(APP, n, base=BASE)
                newer = await reconciler.run(actor="test", automatic=True)
                assert proposed(newer, APP).split("@")[0].endswith(tag)
            assert len(it.github.pulls) == 2
            updated = next(p for p in it.github.pulls if p["number"] == pull["number"])
            assert updated["state"] == "open"
            assert tag in updated["title"]
            built = git(it.root, "rev-parse", "HEAD")  # the provenance the policy checked, in the body
            assert f"commit [`{built[:12]}`]" in updated["body"]
            assert f"/commit/{built}) is on `origin/main`" in updated["body"]
            assert "the image's revision label names that commit" in updated["body"]
            assert f"base image `{BASE[BASE_NAME]}@{BASE[BASE_DIGEST]}`" in updated["body"]
            assert it.remote_text("tagtrail/auto/app000") == with_reference(
                it.remote_text("main"), APP, proposed(newer, APP)
            )

    run(go)


@pytest.mark.parametrize(
    ("merge", "method", "api"),
    [
        ("auto", "squash", "/api/v3"),  # GitHub Enterprise Server's prefix (and its /api/graphql)
        ("auto", "merge", ""),
        ("auto", "rebase", ""),
        ("off", "merge", ""),  # a person's merge, with GitHub's own message
        ("off", "squash", ""),
    ],
)
def test_a_merged_pull_request_is_the_deploy_in_the_history(
    lab: Callable[..., Lab], merge: str, method: str, api: str
) -> None:
    it = lab(merge=merge, method=method, api=api)

    async def go() -> None:
        async with kept(it.project) as reconciler:
            report = await reconciler.run(actor="test", automatic=True)
            reference = proposed(report, APP)
            number = it.github.pulls[0]["number"]
            if merge == "auto":
                it.github.checks_pass(number)  # GitHub merges it, with the method and message tagtrail gave
            else:
                it.github.merge(number, method=method)  # a person, with GitHub's own message
            assert it.github.pulls[0]["merged"]
            after = await reconciler.run(actor="test", automatic=True)
            assert after.outcomes()[APP] == Outcome.NOTHING
            entry = (await reconciler.project.target.history(APP))[0]
            assert (entry.app, entry.after, entry.by_tagtrail, entry.reason, entry.actor) == (
                APP,
                reference,
                True,
                "newer-build",
                "test",
            )
            assert entry.built_from is not None
            matcher = reconciler.project.matcher
            insights = read_history(GitRepo(it.github.remote), [FILE], matcher, rev="main").entries[0]
            assert (insights.after, insights.reason, insights.built_from) == (
                reference,
                "newer-build",
                entry.built_from,
            )
            # byte-exact: the merge leaves main as a direct push would have
            assert it.remote_text("main") == with_reference(it.remote_text("main~1"), APP, reference)

    run(go)


def test_a_declined_build_is_held_and_not_proposed_again(lab: Callable[..., Lab]) -> None:
    it = lab()

    async def go() -> None:
        async with kept(it.project) as reconciler:
            await reconciler.run(actor="test", automatic=True)
            first = it.github.pulls[0]
            it.github.close(first["number"])
            held = await reconciler.run(actor="test", automatic=True)
            decision = held.planned[0].decision
            assert (decision.action, decision.reason) == ("hold", "declined")
            assert f"#{first['number']} {first['html_url']}" in decision.sentence
            assert held.outcomes()[APP] == Outcome.HELD
            assert len(it.github.pulls) == 1

            it.build(APP, 7)  # a newer build may be proposed
            newer = await reconciler.run(actor="test", automatic=True)
            assert newer.outcomes()[APP] == Outcome.PENDING_REVIEW
            assert [p["state"] for p in it.github.pulls] == ["closed", "open"]

    run(go)


def test_when_the_base_moves_the_branch_is_rebuilt_byte_exact(lab: Callable[..., Lab]) -> None:
    it = lab(apps=2)

    async def go() -> None:
        async with kept(it.project) as reconciler:
            first = await reconciler.run([APP], actor="test", automatic=True)
            number = it.github.pulls[0]["number"]
            stale = git(it.github.remote, "rev-parse", "tagtrail/auto/app000")
            # someone edits the line the pull request changes: it no longer applies
            running = first.planned[0].decision.running.shown
            old = next(line for line in it.remote_text("main").splitlines() if line.endswith(f"{running}"))
            moved = it.remote_text("main").replace(f"{old}\n", f"{old}  # the web front\n")
            it.github.advance_base(FILE, moved, "say what app000 is")
            assert it.github.pulls[0]["mergeable"] is False
            again = await reconciler.run([APP], actor="test", automatic=True)
            assert again.outcomes()[APP] == Outcome.PENDING_REVIEW
            assert git(it.github.remote, "rev-parse", "tagtrail/auto/app000") != stale
            rebuilt = moved.replace(old.split("image: ")[1], proposed(first, APP))
            assert (
                it.remote_text("tagtrail/auto/app000") == rebuilt
            )  # only the reference changed, the comment kept
            assert [p["number"] for p in it.github.pulls] == [number]
            assert it.github.pulls[0]["mergeable"] is True

    run(go)


def test_a_rollback_supersedes_the_pending_automatic_pull_request(lab: Callable[..., Lab]) -> None:
    it = lab()

    async def go() -> None:
        async with kept(it.project) as reconciler:
            await reconciler.run(actor="test", automatic=True)
            automatic = it.github.pulls[0]["number"]
            report = await rollback(reconciler, APP, it.project.running[APP], actor="alice")
            assert report.outcomes()[APP] == Outcome.PENDING_REVIEW
            pulls = {p["number"]: p for p in it.github.pulls}
            person = next(n for n in pulls if n != automatic)
            assert pulls[automatic]["state"] == "closed"
            assert pulls[person]["head"]["ref"] == "tagtrail/manual/app000/rollback"
            assert f"#{person}" in it.github.comments(automatic)[0]
            held = await reconciler.run(actor="test", automatic=True)  # automation waits for the person
            assert held.planned[0].decision.action == "hold"
            assert len(it.github.pulls) == 2

    run(go)


def objects(remote: Path) -> set[str]:
    """Every object the bare repository holds, reachable or not: a push leaves its objects behind even
    where the branch it made was deleted again."""
    listed = git(remote, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return set(listed.split())


def test_a_read_only_token_fails_in_one_line_before_anything_is_pushed(
    lab: Callable[..., Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    it = lab()
    monkeypatch.setenv("GITHUB_TOKEN", it.github.weak_token)
    held = objects(it.github.remote)

    async def go() -> None:
        async with kept(it.project) as reconciler:
            with pytest.raises(GitHubError) as caught:
                await reconciler.run(actor="test", automatic=True)
            said = str(caught.value)
            assert "\n" not in said
            assert "may only read acme/homelab" in said
            assert "Contents and Pull requests: read and write" in said
            assert it.github.weak_token not in said
            assert git(it.github.remote, "branch", "--list", "tagtrail/*") == ""
            assert objects(it.github.remote) == held  # refused before the push, not undone after it
            assert {e.method for e in it.github.exchanges} == {"GET"}

    run(go)


def test_auto_merge_not_allowed_fails_in_one_line_before_anything_is_pushed(lab: Callable[..., Lab]) -> None:
    it = lab(merge="auto")
    it.github.allow_auto_merge = False

    async def go() -> None:
        async with kept(it.project) as reconciler:
            with pytest.raises(GitHubError, match=r'does not allow auto-merge: turn on "Allow auto-merge"'):
                await reconciler.run(actor="test", automatic=True)
            assert it.github.pulls == []
            assert git(it.github.remote, "branch", "--list", "tagtrail/*") == ""

    run(go)


def test_a_protected_tagtrail_branch_fails_in_one_line_naming_the_rule(lab: Callable[..., Lab]) -> None:
    it = lab()
    it.github.protect_branch("tagtrail/*")

    async def go() -> None:
        async with kept(it.project) as reconciler:
            with pytest.raises(GitError) as caught:
                await reconciler.run(actor="test", automatic=True)
            said = str(caught.value)
            assert "protected branch hook declined" in said
            assert "branch protection rule" in said
            assert it.github.pulls == []

    run(go)


@pytest.mark.parametrize("status", [403, 429])  # x-ratelimit-reset; retry-after
def test_a_rate_limit_is_waited_out_once(lab: Callable[..., Lab], status: int) -> None:
    it = lab()

    async def go() -> None:
        async with kept(it.project) as reconciler:
            it.github.rate_limit(after=0, reset_in=2, status=status)  # the reconcile's first request meets it
            report = await reconciler.run(actor="test", automatic=True)
            assert report.outcomes()[APP] == Outcome.PENDING_REVIEW
            limited = [e for e in it.github.exchanges if e.status in (403, 429)]
            assert len(limited) == 1

    run(go)


def test_one_per_reconcile_proposes_every_app_changed_together(lab: Callable[..., Lab]) -> None:
    it = lab(apps=2, one_per="reconcile")

    async def go() -> None:
        async with kept(it.project) as reconciler:
            report = await reconciler.run(actor="test", automatic=True)
            assert report.outcomes() == {APP: Outcome.PENDING_REVIEW, OTHER: Outcome.PENDING_REVIEW}
            (pull,) = it.github.pulls
            assert pull["head"]["ref"] == "tagtrail/reconcile"
            both = with_reference(it.remote_text("main"), APP, proposed(report, APP))
            assert it.remote_text("tagtrail/reconcile") == with_reference(
                both, OTHER, proposed(report, OTHER)
            )

    run(go)


def test_plan_and_status_say_pending_review_with_the_number_and_link(
    lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    it = lab()
    config = str(it.root / "tagtrail.yaml")
    main(["--config", config, "deploy"])
    pull = it.github.pulls[0]
    said = f"pending-review #{pull['number']} {pull['html_url']}"
    assert said in " ".join(capsys.readouterr().err.split())
    main(["--config", config, "plan", "--json"])
    (planned,) = json.loads(capsys.readouterr().out)
    assert planned["sentence"].startswith(said)
    assert planned["pending_review"] == {"number": pull["number"], "url": pull["html_url"]}
    main(["--config", config, "status", "--json"])
    (status,) = json.loads(capsys.readouterr().out)
    assert status["pending_review"]["number"] == pull["number"]


def test_a_rate_limit_that_ends_late_is_a_retry_not_a_wait(lab: Callable[..., Lab]) -> None:
    it = lab()

    async def go() -> None:
        async with kept(it.project) as reconciler:
            it.github.rate_limit(after=0, reset_in=3600)
            with pytest.raises(GitHubError) as caught:
                await reconciler.run(actor="test", automatic=True)
            assert caught.value.transient
            assert "rate limit" in str(caught.value)
            assert [e.status for e in it.github.exchanges] == [403]  # asked once, not in a loop

    run(go)


def test_commands_that_only_read_need_no_token_and_a_deploy_says_which_variable_in_one_line(
    lab: Callable[..., Lab], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    it = lab()
    config = str(it.root / "tagtrail.yaml")
    assert main(["--config", config, "deploy"]) == 0  # one pull request open, then the token is gone
    monkeypatch.delenv("GITHUB_TOKEN")
    capsys.readouterr()
    for command in (["history", APP], ["report"]):
        assert main(["--config", config, *command]) == 0, command
        assert "GITHUB_TOKEN" not in capsys.readouterr().err  # nothing said where nothing needs it
    for command in (["status"], ["plan"]):  # they read pull requests where they can: said in one line
        assert main(["--config", config, *command]) == 0, command
        said = [line for line in capsys.readouterr().err.splitlines() if "GITHUB_TOKEN" in line]
        assert len(said) == 1, said
        assert "pull requests are not read" in said[0]
    held = objects(it.github.remote)
    assert main(["--config", config, "deploy"]) != 0
    err = capsys.readouterr().err.strip()
    assert "GITHUB_TOKEN is not set" in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "GITHUB_TOKEN" in line]) == 1
    assert objects(it.github.remote) == held


def test_deploy_git_then_runs_once_after_each_merged_pull_request(lab: Callable[..., Lab]) -> None:
    it = lab(apps=2, then='"echo merged >> ../then.log"')
    ran = it.root.parent / "then.log"

    async def go() -> None:
        async with kept(it.project) as reconciler:
            proposing = await reconciler.run(actor="test", automatic=True)
            assert proposing.applied.details.get(Then) is None  # a proposal deploys nothing
            assert not ran.exists()
            first, second = (p["number"] for p in it.github.pulls)
            it.github.merge(first)
            seen = await reconciler.run(actor="test", automatic=True)
            assert seen.applied.details.get(Then) == Then(0, "")
            assert ran.read_text().splitlines() == ["merged"]
            await reconciler.run(actor="test", automatic=True)  # the same merge, seen again: not again
            it.github.merge(second)
            await reconciler.run(actor="test", automatic=True)
            assert len(ran.read_text().splitlines()) == 2

    run(go)


def test_the_signature_deploy_verify_checked_is_in_the_pull_request(
    lab: Callable[..., Lab], tmp_path: Path
) -> None:
    key = openssl_key(tmp_path / "keys", "trusted")
    it = lab(verify=key.public)
    tag = it.build(APP, 5)  # the only signed build: the older ones are refused
    sign(it.pusher, key, it.project.registry.host, f"{it.project.prefix}/{APP}", it.digests[tag])

    async def go() -> None:
        async with kept(it.project) as reconciler:
            report = await reconciler.run(actor="test", automatic=True)
            assert proposed(report, APP).split("@")[0].endswith(tag)
            (pull,) = it.github.pulls
            assert "signature: signed by a trusted key" in pull["body"]
            assert "the image records no base image" in pull["body"]

    run(go)

"""A tag's claims are checked, not believed (DESIGN invariant 9), against the real registry and real git:
an attacker with push rights to the registry forges tags; each forgery is refused with its own reason and
never written, and a good build still deploys."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.cli import run
from bench.git import Remote, bare_repo, commit, git, init_repo
from tagtrail.domain.scheme import Scheme
from tagtrail_demo import ImagePusher, PushedImage, RegistryServer

TEMPLATE = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
REVISION = "org.opencontainers.image.revision"


@dataclass
class Site:
    """A monorepo with one app, its deploy file, a remote, and the app's repository in the registry."""

    root: Path
    remote: Remote
    registry: RegistryServer
    pusher: ImagePusher
    prefix: str
    scheme: Scheme
    main: list[str]  # commits on origin/main, oldest first
    feature: str  # a commit on origin/feature/x only

    @property
    def repository(self) -> str:
        return f"{self.prefix}/web"

    @property
    def image(self) -> str:
        return f"{self.registry.host}/{self.repository}"

    def tag(self, sha: str, hours_ago: float, branch: str = "main") -> str:
        when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)
        return self.scheme.format(branch=branch, sha=sha, time=when)

    def push(
        self,
        sha: str,
        hours_ago: float,
        *,
        label: str | None = "",
        branch: str = "main",
        content: bytes | None = None,
    ) -> PushedImage:
        """A build of `sha` tagged as `branch`, its revision label the sha (or `label`; None: no label)."""
        labels = {} if label is None else {REVISION: label or sha}
        tag = self.tag(sha, hours_ago, branch)
        return self.pusher.push_image(self.repository, tag, labels=labels, content=content)

    def deployed(self) -> str:
        return git(self.remote.path, "show", "main:deploy.yaml")

    def deploys(self) -> int:
        return len(git(self.remote.path, "log", "--format=%s", "main").splitlines())


def make_site(
    root: Path,
    remote: Remote,
    registry: RegistryServer,
    pusher: ImagePusher,
    prefix: str,
    *,
    sha_length: int = 7,
    extra: str = "",
) -> Site:
    image = f"{registry.host}/{prefix}"
    config = (
        f'scheme: "{TEMPLATE}"\nsha_length: {sha_length}\nimage: {image}/{{app}}\n'
        f'registries:\n  "{registry.host}": {{insecure: true}}\n'
        "deploy:\n  branch: main\n  cooldown: 0s\n  git:\n    files: [deploy.yaml]\n"
        f"{extra}"
    )
    files = {
        "tagtrail.yaml": config,
        "deploy.yaml": f"web:\n  image: {image}/web:bootstrap\n",
        "apps/web/Dockerfile": "FROM scratch\n",
    }
    init_repo(root, files, "the site")
    main = [git(root, "rev-parse", "HEAD"), commit(root, {"apps/web/app.txt": "1\n"}, "web: 1")]
    git(root, "remote", "add", "origin", remote.url)
    git(root, "push", "-q", "-u", "origin", "main")
    git(root, "checkout", "-q", "-b", "feature/x")
    feature = commit(root, {"apps/web/app.txt": "feature\n"}, "web: a feature")
    git(root, "push", "-q", "origin", "feature/x")
    git(root, "checkout", "-q", "main")
    return Site(root, remote, registry, pusher, prefix, Scheme.compile(TEMPLATE, sha_length), main, feature)


@pytest.fixture
def site(
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    file_remote: Remote,
    monkeypatch: pytest.MonkeyPatch,
) -> Site:
    made = make_site(tmp_path / "site", file_remote, registry, pusher, repo_name.replace("/", "-"))
    monkeypatch.chdir(made.root)
    return made


def plan(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, out, err = run(capsys, "plan", "--json")
    assert code == 0, err
    [web] = json.loads(out)
    return web  # type: ignore[no-any-return]


def test_a_good_build_deploys_past_a_forged_newer_one(capsys: pytest.CaptureFixture[str], site: Site) -> None:
    good = site.push(site.main[-1], 3)
    forged = site.push("deadbee", 1)  # a commit that does not exist, the newest tag
    web = plan(capsys)
    assert (web["action"], web["reason"], web["target"]["tag"]) == ("deploy", "running-unknown", good.tag)  # type: ignore[index]
    assert web["ignored"] == {"commit-unknown": 1}
    [refused] = web["refused"]  # type: ignore[misc]
    assert (refused["tag"], refused["reason"]) == (forged.tag, "commit-unknown")
    assert web["built_from"] == site.main[-1]
    code, _, err = run(capsys, "deploy")
    assert code == 0, err
    assert f"web:{good.tag}@{good.digest}" in site.deployed()
    assert forged.tag not in site.deployed()
    assert "refused commit-unknown" in run(capsys, "plan")[2]


FORGERIES = {
    # a commit that does not exist
    "commit-unknown": lambda s: s.push("deadbee", 1),
    # a commit only on a feature branch, calling itself main
    "commit-not-on-branch": lambda s: s.push(s.feature, 1),
    # the image says it was built from another commit than its tag says
    "revision-mismatch": lambda s: s.push(s.main[-1], 1, label=s.main[0]),
    # dated a day ahead
    "dated-in-the-future": lambda s: s.push(s.main[-1], -24),
}


@pytest.mark.parametrize("reason", sorted(FORGERIES))
def test_each_forgery_is_refused_with_its_reason_and_never_written(
    capsys: pytest.CaptureFixture[str], site: Site, reason: str
) -> None:
    good = site.push(site.main[0], 5)
    assert run(capsys, "deploy")[0] == 0
    before, deployed = site.deploys(), site.deployed()
    forged = FORGERIES[reason](site)
    web = plan(capsys)
    assert (web["action"], web["reason"]) == ("hold", reason)
    assert forged.tag in str(web["sentence"])
    assert web["refused"] == [{"tag": forged.tag, "reason": reason, "sentence": web["sentence"]}]
    code, out, err = run(capsys, "deploy", "--json")
    assert code == 0, err
    assert json.loads(out)["changed"] == []
    assert (site.deploys(), site.deployed()) == (before, deployed)
    assert f"web:{good.tag}@{good.digest}" in site.deployed()
    code, out, _ = run(capsys, "status", "--json")
    [status] = json.loads(out)
    assert status["reason"] == reason


def test_a_commit_only_in_the_local_branch_is_not_on_the_deploy_branch(
    capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    local = commit(site.root, {"apps/web/app.txt": "unpushed\n"}, "web: not pushed")
    site.push(site.main[-1], 3)
    site.push(local, 1)
    web = plan(capsys)
    assert web["ignored"] == {"commit-not-on-branch": 1}  # fetched, not the local branch


def test_a_commit_pushed_elsewhere_is_found_by_fetching_the_deploy_branch(
    capsys: pytest.CaptureFixture[str], site: Site, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", site.remote.url, other.name)
    newer = commit(other, {"apps/web/app.txt": "2\n"}, "web: 2")
    git(other, "push", "-q", "origin", "main")
    build = site.push(newer, 1)
    web = plan(capsys)
    assert (web["action"], web["target"]["tag"]) == ("deploy", build.tag)  # type: ignore[index]
    assert web["built_from"] == newer
    assert git(site.root, "rev-parse", "refs/remotes/origin/main") == newer


def test_an_ambiguous_short_sha_is_refused(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    registry: RegistryServer,
    pusher: ImagePusher,
    repo_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = Remote(bare_repo(tmp_path / "origin.git"), (tmp_path / "origin.git").as_uri())
    site = make_site(tmp_path / "site", remote, registry, pusher, repo_name.replace("/", "-"), sha_length=4)
    monkeypatch.chdir(site.root)
    twin = _commit_sharing_prefix(site.root, site.main[-1][:4])
    git(site.root, "branch", "twin", twin)
    good = site.push(site.main[0], 5)
    ambiguous = site.push(site.main[-1], 1)  # on main, but its 4-digit sha names two commits
    web = plan(capsys)
    assert (web["action"], web["reason"], web["target"]["tag"]) == ("deploy", "running-unknown", good.tag)  # type: ignore[index]
    assert web["refused"][0]["tag"] == ambiguous.tag  # type: ignore[index]
    assert web["refused"][0]["reason"] == "commit-ambiguous"  # type: ignore[index]


def _commit_sharing_prefix(root: Path, prefix: str) -> str:
    """A commit object whose sha starts with `prefix` (a few thousand tries of a nonce), written to git."""
    tree = git(root, "rev-parse", "HEAD^{tree}")
    head = f"tree {tree}\nauthor A <a@example.invalid> 1700000000 +0000\ncommitter A <a@example.invalid> 1700000000 +0000\n\n"
    for nonce in range(10_000_000):
        body = f"{head}twin {nonce}\n".encode()
        if hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest().startswith(prefix):  # noqa: S324 (git's object id)
            path = root / ".git" / "twin-commit"
            path.write_bytes(body)
            return git(root, "hash-object", "-t", "commit", "-w", str(path))
    raise AssertionError("no twin found")


def test_a_deployed_tag_re_pushed_with_another_digest_is_said_and_not_followed(
    capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    good = site.push(site.main[-1], 3)
    assert run(capsys, "deploy")[0] == 0
    before = site.deploys()
    again = site.pusher.push_image(
        site.repository, good.tag, labels={REVISION: site.main[-1]}, content=b"re-pushed"
    )
    assert again.digest != good.digest
    web = plan(capsys)
    assert (web["action"], web["reason"]) == ("hold", "tag-moved")
    assert "re-pushed or tampered" in str(web["sentence"])
    _, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)[0]["reason"] == "tag-moved"
    assert run(capsys, "deploy")[0] == 0
    assert site.deploys() == before
    assert f"web:{good.tag}@{good.digest}" in site.deployed()


def test_commits_are_checked_in_a_blobless_clone_of_a_configured_source(
    capsys: pytest.CaptureFixture[str], site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(site.remote.path, "config", "uploadpack.allowFilter", "true")
    elsewhere = tmp_path / "controller"  # a controller's folder: no checkout of the monorepo here
    elsewhere.mkdir()
    config = (site.root / "tagtrail.yaml").read_text()
    config += f"    url: {site.remote.url}\n  source:\n    url: {site.remote.url}\n"
    (elsewhere / "tagtrail.yaml").write_text(config)
    monkeypatch.chdir(elsewhere)
    good = site.push(site.main[-1], 3)
    forged = site.push(site.feature, 1)
    web = plan(capsys)
    assert (web["action"], web["target"]["tag"]) == ("deploy", good.tag)  # type: ignore[index]
    assert [(r["tag"], r["reason"]) for r in web["refused"]] == [(forged.tag, "commit-not-on-branch")]  # type: ignore[attr-defined]
    assert web["built_from"] == site.main[-1]
    [clone] = (Path(os.environ["XDG_CACHE_HOME"]) / "tagtrail" / "sources").iterdir()
    assert git(clone, "config", "remote.origin.partialclonefilter") == "blob:none"


def test_a_candidate_re_pushed_between_plan_and_deploy_is_not_followed(
    capsys: pytest.CaptureFixture[str], site: Site
) -> None:
    build = site.push(site.main[-1], 2)
    web = plan(capsys)  # a person reviews the plan: this digest is what they saw (the decision log keeps it)
    assert web["target"]["digest"] == build.digest  # type: ignore[index]
    again = site.pusher.push_image(
        site.repository, build.tag, labels={REVISION: site.main[-1]}, content=b"swap"
    )
    code, out, err = run(capsys, "deploy", "--json")  # another process
    assert code == 0, err
    result = json.loads(out)
    assert result["changed"] == []
    [app] = result["apps"]
    assert (app["action"], app["reason"]) == ("hold", "tag-moved")
    assert again.digest[:19] in app["sentence"]
    assert "bootstrap" in site.deployed()

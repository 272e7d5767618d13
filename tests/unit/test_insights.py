"""Delivery insights on a hand-built history: a real git repository (the monorepo is both the source of the
builds and the deploy repository) with deploys by tagtrail and by hand, a merged branch, a squash of two
deploys, a rebased deploy commit, rollbacks (one automatic) and a pin. Every expected figure is worked out
by hand below, from the timeline in hours after T0."""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tagtrail.config import parse_config
from tagtrail.gitrepo import GitRepo
from tagtrail.history import HistoryEntry, deploy_history
from tagtrail.insights import Built, built_commits, classify, compute, median, percentile, read_history
from tagtrail.refs import Matcher
from tagtrail.scheme import Scheme

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
T0 = datetime(2025, 10, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=240)
CONFIG = parse_config(
    "scheme: \"{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}\"\n"
    "image: registry.test/acme/{app}\ndeploy:\n  git:\n    files: [deploy.yaml]\n"
)
BOT = "dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>"


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


class Monorepo:
    """Commits at chosen times: source commits under apps/, deploy commits of deploy.yaml."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.images: dict[str, str] = {}
        self.builds: dict[str, str] = {}  # source commit name → tag
        self.run("init", "-q", "-b", "main")

    def run(
        self, *args: str, at: float | None = None, author_at: float | None = None, author: str = ""
    ) -> str:
        env = {**os.environ}
        if at is not None:
            env["GIT_COMMITTER_DATE"] = (T0 + h(at)).isoformat()
            env["GIT_AUTHOR_DATE"] = (T0 + h(at if author_at is None else author_at)).isoformat()
        if author:
            name, email = author.rsplit(" <", 1)
            env |= {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email.rstrip(">")}
        result = subprocess.run(
            ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def source(self, name: str, app: str, at: float, author: str = "") -> str:
        """A source commit of `app` at `at`, and its build (tagged 10 minutes later)."""
        path = self.root / "apps" / app / "main.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\n")
        self.run("add", "-A")
        self.run("commit", "-q", "-m", f"{app}: {name}", at=at, author=author)
        sha = self.run("rev-parse", "HEAD")
        self.builds[name] = SCHEME.format(branch="main", sha=sha, time=T0 + h(at) + timedelta(minutes=10))
        return sha

    def image(self, app: str, build: str) -> str:
        tag = self.builds[build]
        return f"registry.test/acme/{app}:{tag}@sha256:{hashlib.sha256(tag.encode()).hexdigest()}"

    def write(self, **moves: str) -> dict[str, tuple[str | None, str]]:
        changed = {}
        for app, build in moves.items():
            changed[app] = (self.images.get(app), self.image(app, build))
            self.images[app] = changed[app][1]
        text = "".join(f"{app}:\n  image: {ref}\n" for app, ref in sorted(self.images.items()))
        (self.root / "deploy.yaml").write_text(text)
        self.run("add", "deploy.yaml")
        return changed

    def manual(self, at: float, **moves: str) -> str:
        self.write(**moves)
        self.run("commit", "-q", "-m", "hand edit", at=at)
        return self.run("rev-parse", "HEAD")

    def tagtrail(self, at: float, reason: str, author_at: float | None = None, **moves: str) -> str:
        changed = self.write(**moves)
        trailers = "\n".join(
            f"Tagtrail-App: {app}\nTagtrail-From: {before or 'none'}\nTagtrail-To: {after}\n"
            f"Tagtrail-Commit: {self.sha_of(moves[app])}\nTagtrail-Reason: {reason}\nTagtrail-Actor: tagtrail"
            for app, (before, after) in changed.items()
        )
        self.run("commit", "-q", "-m", f"{reason}\n\n{trailers}\n", at=at, author_at=author_at)
        return self.run("rev-parse", "HEAD")

    def sha_of(self, build: str) -> str:
        return self.run("log", "--format=%H", f"--grep=: {build}$", "--all")


@pytest.fixture
def history(tmp_path: Path) -> tuple[Monorepo, dict[str, str]]:
    """The timeline (hours after T0). Source commits: s1 0, a1 5, s2 20, s3 44 (dependabot), s4 70, a2 100.

    E1   2  hand edit        web → s1   deploy, lead 2 (first change: the window starts here)
    E2   8  newer-build      api → a1   deploy, lead 3
    E3  24  newer-build      web → s2   deploy, lead 4      failed (E4 6 h later)
    E4  30  rollback         web → s1   restore
    E5  50  newer-build      web → s3   deploy, lead 6      failed (E6 10 h later); security-only
    E6  60  hand edit        web → s2   restore (a hand edit to an older build)
    E7  80  merge of a branch whose hand edit moved web → s4   deploy, lead 10
    E8 110  squash of two deploys of api (trailers name api twice) → a2   deploy (read from the files), lead 10
    E9 115  rollback, automatic (the decision log says so)    api → a1   restore; E8 failed, 5 h
    E10 120 pin              web → s2   restore (older than s4); E7 40 h before: not a failure (> 24 h)
    E11 150 newer-build, rebased (authored 140, committed 150)  web → s4   deploy, lead 80
    """
    repo = Monorepo(tmp_path / "mono")
    commits = {}
    repo.source("s1", "web", 0)
    repo.source("a1", "api", 5)
    repo.source("s2", "web", 20)
    repo.source("s3", "web", 44, author=BOT)
    repo.source("s4", "web", 70)
    commits["E1"] = repo.manual(2, web="s1")
    commits["E2"] = repo.tagtrail(8, "newer-build", api="a1")
    commits["E3"] = repo.tagtrail(24, "newer-build", web="s2")
    commits["E4"] = repo.tagtrail(30, "rollback", web="s1")
    commits["E5"] = repo.tagtrail(50, "newer-build", web="s3")
    commits["E6"] = repo.manual(60, web="s2")
    repo.run("checkout", "-q", "-b", "side")
    repo.manual(78, web="s4")
    repo.run("checkout", "-q", "main")
    repo.images["web"] = repo.image("web", "s2")
    (repo.root / "NOTES.md").write_text("unrelated\n")
    repo.run("add", "NOTES.md")
    repo.run("commit", "-q", "-m", "notes", at=79)
    repo.run("merge", "-q", "--no-ff", "-m", "Merge branch 'side'", "side", at=80)
    commits["E7"] = repo.run("rev-parse", "HEAD")
    repo.images["web"] = repo.image("web", "s4")
    repo.source("a2", "api", 100)
    repo.write(api="a2")
    a1, a2 = repo.image("api", "a1"), repo.image("api", "a2")
    squash = (
        "Deploys (squashed)\n\n"
        f"Tagtrail-App: api\nTagtrail-From: {a1}\nTagtrail-To: {a1}x\nTagtrail-Reason: newer-build\n"
        f"Tagtrail-App: api\nTagtrail-From: {a1}x\nTagtrail-To: {a2}\nTagtrail-Reason: newer-build\n"
    )
    repo.run("commit", "-q", "-m", squash, at=110)
    commits["E8"] = repo.run("rev-parse", "HEAD")
    commits["E9"] = repo.tagtrail(115, "rollback", api="a1")
    commits["E10"] = repo.tagtrail(120, "pin", web="s2")
    commits["E11"] = repo.tagtrail(150, "newer-build", author_at=140, web="s4")
    return repo, commits


def _insights(repo: Monorepo, automatic: set[str], app: str | None = None):  # type: ignore[no-untyped-def]
    git = GitRepo(repo.root)
    reading = read_history(git, ["deploy.yaml"], Matcher.from_config(CONFIG))
    built = built_commits(git, reading.entries, SCHEME)
    return reading, compute(
        reading, SCHEME, built, since=timedelta(days=30), now=NOW, automatic=automatic, app=app
    )


def test_the_hand_worked_figures(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, commits = history
    reading, insights = _insights(repo, {commits["E9"]})
    # E1, E6, E7 (hand edits and the merge) and E8 (the squash) are read from the files; the rest from trailers
    assert (reading.commits, reading.diffed, reading.from_trailers) == (11, 4, 7)
    kinds = [(e.commit, e.kind) for e in insights.events]
    assert kinds == [
        (commits[name], kind)
        for name, kind in [
            ("E1", "deploy"), ("E2", "deploy"), ("E3", "deploy"), ("E4", "restore"), ("E5", "deploy"),
            ("E6", "restore"), ("E7", "deploy"), ("E8", "deploy"), ("E9", "restore"), ("E10", "restore"),
            ("E11", "deploy"),
        ]
    ]  # fmt: skip
    overall = insights.overall
    # the window starts at the first change (2 h) and ends at now (240 h): 238 h
    assert insights.days == pytest.approx(238 / 24)
    assert overall.deploys == 7
    assert overall.per_day == pytest.approx(7 / (238 / 24))
    # leads 2, 3, 4, 6, 10, 10, 80: the median is the 4th, p90 the 7th (ceil(0.9 × 7) = 7)
    assert (overall.lead_median, overall.lead_p90, overall.lead_samples) == (h(6), h(80), 7)
    # E3, E5 and E8 failed of 7; restores E4, E6, E9 (automatic), E10
    assert (overall.failures, overall.failure_rate) == (3, pytest.approx(3 / 7))
    assert (overall.restores, overall.automatic_restores) == (4, 1)
    # time to restore 6, 10, 5: median 6, p90 the 3rd of 3
    assert (overall.restore_median, overall.restore_p90) == (h(6), h(10))
    assert (overall.security, overall.security_share) == (1, pytest.approx(1 / 7))  # E5, a dependabot commit
    # web runs s4 (committed at 70 h), api a1 (5 h): overall, the oldest
    assert overall.age == h(235)

    web, api = insights.app("web"), insights.app("api")
    assert web is not None
    assert api is not None
    assert (web.deploys, web.failures, web.restores, web.automatic_restores) == (5, 2, 3, 0)
    assert (web.lead_median, web.lead_p90) == (h(6), h(80))  # 2, 4, 6, 10, 80
    assert (web.age, web.security) == (h(170), 1)
    assert (api.deploys, api.failures, api.restores, api.automatic_restores) == (2, 1, 1, 1)
    assert api.lead_median == h(6.5)  # 3 and 10: the mean of the two middle ones
    assert api.restore_median == h(5)
    assert api.age == h(235)


def test_without_the_decision_log_the_rollback_is_a_persons(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, _ = history
    _, insights = _insights(repo, set())
    assert (insights.overall.restores, insights.overall.automatic_restores, insights.overall.failures) == (
        4,
        0,
        3,
    )


def test_a_shorter_window_and_one_app(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, commits = history
    git = GitRepo(repo.root)
    reading = read_history(git, ["deploy.yaml"], Matcher.from_config(CONFIG))
    built = built_commits(git, reading.entries, SCHEME)
    # the last 5 days (from 120 h): E10 (restore) and E11 (deploy, lead 80)
    insights = compute(reading, SCHEME, built, since=timedelta(days=5), now=NOW, app="web")
    assert [e.commit for e in insights.events] == [commits["E10"], commits["E11"]]
    assert (insights.overall.deploys, insights.overall.restores, insights.overall.failures) == (1, 1, 0)
    assert insights.overall.per_day == pytest.approx(1 / 5)
    assert [m.app for m in insights.apps] == ["web"]


def test_the_fast_reader_agrees_with_the_deploy_history(history: tuple[Monorepo, dict[str, str]]) -> None:
    repo, commits = history
    git = GitRepo(repo.root)
    matcher = Matcher.from_config(CONFIG)
    fast = read_history(git, ["deploy.yaml"], matcher).entries
    slow = deploy_history(git, ["deploy.yaml"], matcher)

    def key(e: HistoryEntry) -> tuple[str, str, str | None, str | None, str | None]:
        return e.commit, e.app, e.before, e.after, e.tag

    assert [key(e) for e in fast] == [key(e) for e in slow]
    rebased = next(e for e in fast if e.commit == commits["E11"])
    assert rebased.time == T0 + h(150)  # the commit date: when it reached the branch, not when it was written


def test_commits_are_read_in_one_batch(tmp_path: Path) -> None:
    repo = Monorepo(tmp_path / "mono")
    sha = repo.source("s1 — déjà vu", "web", 3)
    git = GitRepo(repo.root)
    found = git.commits([sha, sha[:9], "0" * 40, "nope"])
    assert set(found) == {sha, sha[:9]}
    assert found[sha[:9]].sha == sha
    assert found[sha].time == T0 + h(3)
    assert "déjà vu" in found[sha].message
    assert git.commits([]) == {}


def test_median_and_p90_by_hand() -> None:
    assert median([]) is None
    assert median([h(3), h(1), h(2)]) == h(2)
    assert median([h(4), h(1), h(2), h(3)]) == h(2.5)
    values = [h(n) for n in range(1, 11)]  # 1..10: ceil(0.9 × 10) = 9th
    assert percentile(values, 0.9) == h(9)
    assert percentile([h(5)], 0.9) == h(5)


def _entry(commit: str, hours: float, tag: str, reason: str | None = "newer-build") -> HistoryEntry:
    before = None
    return HistoryEntry(
        commit, T0 + h(hours), "a", "web", before, f"r/web:{tag}", tag, None, reason is not None, reason
    )


def test_running_times_and_the_tag_time_when_the_commit_is_unknown() -> None:
    sha = "a" * 40
    tag = SCHEME.format(branch="main", sha=sha, time=T0 + h(1))
    other = SCHEME.format(branch="dependabot-pip-x", sha="b" * 40, time=T0 + h(2))
    entries = [_entry("d2", 5, other), _entry("d1", 3, tag)]  # newest first
    events = classify(entries, SCHEME, {}, running={("web", tag): T0 + h(4)})
    first, second = events
    # no source commit known: the lead starts at the build time in the tag (1 h), to the deploy (3 h)
    assert (first.lead, first.lead_from, first.lead_running) == (h(2), "build", h(3))
    assert second.security  # built from a dependabot branch
    known = classify(entries, SCHEME, {sha[:7]: Built(T0)})
    assert (known[0].lead, known[0].lead_from) == (h(3), "commit")


def test_a_pin_to_a_newer_build_is_a_deploy_and_a_removed_app_is_neither() -> None:
    old = SCHEME.format(branch="main", sha="a" * 40, time=T0)
    new = SCHEME.format(branch="main", sha="b" * 40, time=T0 + h(1))
    pin = HistoryEntry("p", T0 + h(3), "a", "web", f"r/web:{old}", f"r/web:{new}", new, None, True, "pin")
    gone = HistoryEntry("g", T0 + h(4), "a", "web", f"r/web:{new}", None, None, None, False)
    events = classify([gone, pin, _entry("d", 2, old)], SCHEME, {})
    assert [(e.commit, e.kind) for e in events] == [("d", "deploy"), ("p", "deploy")]

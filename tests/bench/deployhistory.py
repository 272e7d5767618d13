"""A hand-built deploy history for the insights tests, the report CLI test and the dashboard's browser
test: a real git repository (the monorepo is both the source of the builds and the deploy repository) with
deploys by tagtrail and by hand, a merged branch, a squash of two deploys, a rebased deploy commit,
rollbacks and a pin, at chosen times. `timeline` documents the figures the tests work out by hand."""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tagtrail.config import parse_config
from tagtrail.domain.scheme import Scheme

SCHEME = Scheme.compile("{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}")
T0 = datetime(2025, 10, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=240)
CONFIG_TEXT = (
    "scheme: \"{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}\"\n"
    "image: registry.test/acme/{app}\ndeploy:\n  git:\n    files: [deploy.yaml]\n"
)
CONFIG = parse_config(CONFIG_TEXT)
BOT = "dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>"


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


class Monorepo:
    """Commits at chosen times: source commits under apps/, deploy commits of deploy.yaml."""

    def __init__(self, root: Path, t0: datetime = T0) -> None:
        self.root = root
        self.t0 = t0
        root.mkdir(parents=True)
        self.images: dict[str, str] = {}
        self.builds: dict[str, str] = {}  # source commit name → tag
        self.run("init", "-q", "-b", "main")

    def run(
        self, *args: str, at: float | None = None, author_at: float | None = None, author: str = ""
    ) -> str:
        env = {**os.environ}
        if at is not None:
            env["GIT_COMMITTER_DATE"] = (self.t0 + h(at)).isoformat()
            env["GIT_AUTHOR_DATE"] = (self.t0 + h(at if author_at is None else author_at)).isoformat()
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
        self.builds[name] = SCHEME.format(
            branch="main", sha=sha, time=self.t0 + h(at) + timedelta(minutes=10)
        )
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


def timeline(root: Path, t0: datetime = T0) -> tuple[Monorepo, dict[str, str]]:
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
    repo = Monorepo(root, t0)
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

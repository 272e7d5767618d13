"""git through the git CLI: the facts tagtrail needs about a repository, with errors translated to GitError."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tagtrail.errors import GitError


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise GitError("git is not installed or not on PATH") from None


def _git(cwd: Path, *args: str, strip: bool = True) -> str:
    result = _run(cwd, *args)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise GitError(f"git {args[0]} failed in {cwd}: {detail}")
    return result.stdout.strip() if strip else result.stdout


@dataclass(frozen=True)
class GitRepo:
    """A work tree, addressed by its top-level folder."""

    root: Path

    @classmethod
    def discover(cls, start: Path) -> GitRepo:
        """The repository containing `start`, or GitError saying there is none."""
        folder = start if start.is_dir() else start.parent
        try:
            top = _git(folder, "rev-parse", "--show-toplevel")
        except GitError:
            raise GitError(f"{start} is not inside a git repository") from None
        return cls(Path(top))

    def head_sha(self) -> str:
        """The full sha of HEAD; GitError when the repository has no commit yet."""
        try:
            return _git(self.root, "rev-parse", "--verify", "HEAD^{commit}")
        except GitError:
            raise GitError(f"{self.root} has no commits yet; commit first") from None

    def current_branch(self) -> str | None:
        """The branch checked out, or None when HEAD is detached."""
        result = _run(self.root, "symbolic-ref", "--quiet", "--short", "HEAD")
        return result.stdout.strip() or None if result.returncode == 0 else None

    def commit_time(self, rev: str = "HEAD") -> datetime:
        """When `rev` was committed (the committer date, as metadata-action's commit_date uses)."""
        return datetime.fromisoformat(_git(self.root, "show", "-s", "--format=%cI", rev))

    def has_commit(self, rev: str) -> bool:
        """Whether `rev` names a commit this repository has (a force-push can leave the old one unknown)."""
        return _run(self.root, "cat-file", "-e", f"{rev}^{{commit}}").returncode == 0

    def changed_paths(self, base: str, head: str = "HEAD") -> list[str]:
        """Paths that differ between two commits; a rename counts as its old and its new path."""
        out = _git(self.root, "diff", "--name-only", "--no-renames", "-z", base, head, strip=False)
        return [path for path in out.split("\0") if path]

    def show(self, rev: str, path: str) -> str | None:
        """The text of `path` at `rev`, or None when the file is not there."""
        result = _run(self.root, "show", f"{rev}:{path}")
        return result.stdout if result.returncode == 0 else None

    def dirty_paths(self, paths: list[str]) -> list[str]:
        """Files among `paths` (folders included) with uncommitted changes or untracked, as git reports them."""
        out = _git(
            self.root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths, strip=False
        )
        entries = [e for e in out.split("\0") if e]
        found = []
        skip = False
        for entry in entries:
            if skip:  # the second path of a rename or copy
                skip = False
                continue
            status, path = entry[:2], entry[3:]
            skip = status[0] in "RC"
            found.append(path)
        return found

    def remote_url(self, name: str = "origin") -> str | None:
        result = _run(self.root, "remote", "get-url", name)
        return result.stdout.strip() or None if result.returncode == 0 else None

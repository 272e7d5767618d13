"""`GitRepo`: a work tree and the facts tagtrail asks of it one at a time; its batched questions are
`BatchReader`'s (`_batch.py`), asked through the same methods."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from tagtrail.adapters.gitrepo._batch import BatchReader, CommitInfo, Shas
from tagtrail.adapters.gitrepo._process import HEX
from tagtrail.adapters.gitrepo._process import git as _git
from tagtrail.adapters.gitrepo._process import redact as _redact
from tagtrail.adapters.gitrepo._process import run as _run
from tagtrail.errors import GitError


@dataclass(frozen=True)
class Push:
    """What a push did: `ok`; otherwise `rejected` (lost a race: fetch and try again) or another failure."""

    ok: bool
    rejected: bool
    detail: str


@dataclass(frozen=True)
class GitRepo:
    """A work tree, addressed by its top-level folder. What it learns that cannot change (a short sha's
    commit, the committer identity) it keeps for its own lifetime: a long-lived owner (the controller)
    keeps one GitRepo and so its answers; a CLI run starts afresh."""

    root: Path
    _shas: Shas = field(default_factory=Shas, compare=False, repr=False)
    _identity: list[tuple[str, str] | None] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def discover(cls, start: Path) -> GitRepo:
        """The repository containing `start`, or GitError saying there is none."""
        folder = start if start.is_dir() else start.parent
        try:
            top = Path(_git(folder, "rev-parse", "--show-toplevel"))
        except GitError:
            raise GitError(f"{start} is not inside a git repository") from None
        return cls(top)

    @cached_property
    def _reads(self) -> BatchReader:
        return BatchReader(self.root, self._shas)

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

    def commits(self, revs: Iterable[str]) -> dict[str, CommitInfo]:
        """Many commits at once, in one git process (`BatchReader.commits`)."""
        return self._reads.commits(revs)

    def texts(self, specs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The text of many (rev, path) at once, in one git process (`BatchReader.texts`)."""
        return self._reads.texts(specs)

    def has_commit(self, rev: str) -> bool:
        """Whether `rev` names a commit this repository has (a force-push can leave the old one unknown)."""
        return _run(self.root, "cat-file", "-e", f"{rev}^{{commit}}").returncode == 0

    def changed_paths(self, base: str, head: str = "HEAD") -> list[str]:
        """Paths that differ between two commits; a rename counts as its old and its new path."""
        out = _git(self.root, "diff", "--name-only", "--no-renames", "-z", base, head, strip=False)
        return [path for path in out.split("\0") if path]

    def changed_paths_many(self, pairs: list[tuple[str, str]]) -> list[list[str]]:
        """`changed_paths` of many pairs of full shas, in one git process (`BatchReader.changed_paths_many`)."""
        return self._reads.changed_paths_many(pairs)

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

    def run(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Any git command in this work tree; GitError (with credentials redacted) when it fails."""
        return _git(self.root, *args, env=env)

    def try_run(self, *args: str, env: dict[str, str] | None = None) -> tuple[bool, str]:
        """A git command whose failure is an answer (a rejected push): (succeeded, last line of stderr)."""
        result = _run(self.root, *args, env=env)
        detail = (result.stderr.strip().splitlines() or [""])[-1]
        return result.returncode == 0, _redact(detail)

    def push(self, remote: str, refspec: str, *options: str) -> Push:
        """Push one refspec. A push that lost a race (someone pushed first, or a lease no longer holds) is
        `rejected`; any other failure (unreachable, refused by a hook, no rights) is not, and retrying at
        once will not help. A hook's refusal says what the remote said (GitHub: a protected branch)."""
        result = _run(self.root, "push", "--porcelain", *options, remote, refspec)
        if result.returncode == 0:
            return Push(True, False, "")
        statuses = [line for line in result.stdout.splitlines() if line.startswith("!")]
        lost = any("[rejected]" in line for line in statuses)
        detail = (statuses or result.stderr.strip().splitlines() or ["no message"])[-1]
        detail = detail.replace("\t", " ").lstrip("! ").strip()
        said = [line[7:].strip() for line in result.stderr.splitlines() if line.startswith("remote:")]
        said = [line for line in said if line]
        if said and "[remote rejected]" in detail:
            detail += f": {said[-1]}"
        return Push(False, lost, _redact(detail))

    def remote_head(self, remote: str, branch: str) -> str | None:
        """The sha the remote's branch points at now (None: cannot tell: unreachable, or no such branch)."""
        result = _run(self.root, "ls-remote", remote, f"refs/heads/{branch}")
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return result.stdout.split()[0]

    def resolve(self, rev: str) -> str | None:
        """The full sha `rev` names here (a short sha included), or None. A sha once found is remembered
        (commits do not change; the controller asks about the same few many times)."""
        known = self._shas.get(rev)
        if known is not None:
            return known
        result = _run(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        found = result.stdout.strip() or None if result.returncode == 0 else None
        if found is not None and HEX.fullmatch(rev):
            self._shas.remember(rev, found)
        return found

    def commits_named(self, prefix: str) -> list[str]:
        """Every commit here whose sha starts with `prefix` (4 to 40 hex digits): none, one, or several."""
        return self._reads.commits_named(prefix)

    def commits_named_many(self, prefixes: Iterable[str]) -> dict[str, list[str]]:
        """`commits_named` of many prefixes, in one git process (`BatchReader.commits_named_many`)."""
        return self._reads.commits_named_many(prefixes)

    def reaches(self, ref: str, commit: str) -> bool:
        """Whether `commit` is reachable from `ref` (False when `ref` does not exist here)."""
        return self._reads.reaches(ref, commit)

    def reached(self, ref: str, commits: Iterable[str]) -> set[str]:
        """Which of `commits` (full shas) `ref` reaches, in one git process (`BatchReader.reached`)."""
        return self._reads.reached(ref, commits)

    def fetch_branches(self, remote: str, branches: list[str]) -> None:
        """Update the remote-tracking refs of `branches` from `remote` (GitError when it cannot)."""
        specs = [f"+refs/heads/{b}:refs/remotes/{remote}/{b}" for b in branches]
        _git(self.root, "fetch", "--quiet", "--no-tags", remote, *specs)

    def strict_ancestry(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], bool | None]:
        """Whether each (ancestor, descendant) pair is strictly so, in at most two git processes
        (`BatchReader.strict_ancestry`)."""
        return self._reads.strict_ancestry(pairs)

    def expect(self, revs: Iterable[str]) -> None:
        """Short shas a later question will name: resolved with the next batch of short shas asked
        (`commits_named_many`), in its git process, so that question needs none of its own."""
        self._shas.expect(revs)

    def resolve_many(self, revs: Iterable[str]) -> dict[str, str | None]:
        """`resolve` of many shas, in at most one git process (`BatchReader.resolve_many`)."""
        return self._reads.resolve_many(revs)

    def log(
        self, paths: list[str], rev: str = "HEAD", limit: int | None = None
    ) -> list[tuple[str, str, str, str, str]]:
        """Commits touching `paths`, newest first: (sha, parent or '', author, ISO time, message)."""
        args = ["log", "--first-parent", "--format=%H%x1f%P%x1f%an <%ae>%x1f%aI%x1f%B%x1e", rev]
        if limit:
            args.insert(1, f"-n{limit}")
        out = _git(self.root, *args, "--", *paths, strip=False)
        entries = []
        for raw in out.split("\x1e"):
            record = raw.strip("\n")
            if not record:
                continue
            sha, parents, author, when, message = record.split("\x1f", 4)
            entries.append((sha, parents.split(" ")[0] if parents else "", author, when, message))
        return entries

    def identity(self) -> tuple[str, str] | None:
        """git's configured user.name and user.email here, if both are set (read once per GitRepo)."""
        if not self._identity:
            name, email = _run(self.root, "config", "user.name"), _run(self.root, "config", "user.email")
            found = None
            if not (
                name.returncode or email.returncode or not name.stdout.strip() or not email.stdout.strip()
            ):
                found = name.stdout.strip(), email.stdout.strip()
            self._identity.append(found)
        return self._identity[0]

"""The GitOps target: deploy decisions written to files in git, one commit per deploy, pushed.

Where the commit is made:
- `deploy.git.url` set: in a clone tagtrail keeps in a cache folder, reset to the remote branch each time
  (it is tagtrail's own; a crash leaves nothing behind that the next run does not reset);
- otherwise, when pushing: in a temporary git worktree of the repository tagtrail runs in, based on the
  remote branch, so neither the user's checkout nor their unpushed commits are touched or pushed; the
  user's branch is fast-forwarded afterwards when that is safe (tagtrail serve keeps its worktree and
  resets it to the remote branch each time, instead of adding and removing one per deploy);
- otherwise (push: false, or no remote): on the checked-out branch itself, committing only the deploy files.

A rejected push is never forced: the remote branch is fetched, the change is worked out again on its new
head (the caller's `make_edits`), committed and pushed, a bounded number of times. A change that is already
there produces no commit, so re-running after a crash at any point converges without duplicates.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tagtrail.config import Config
from tagtrail.errors import GitError, TagtrailError
from tagtrail.gitrepo import GitRepo

Mode = Literal["clone", "worktree", "in-place"]
DEFAULT_AUTHOR = ("tagtrail", "tagtrail@localhost")
REMOTE = "origin"
THEN_OUTPUT_CAP = 64 * 1024
_GIT_DIRS: dict[Path, Path] = {}
_FACTS: dict[
    Path, tuple[str | None, bool]
] = {}  # tagtrail serve's checkout: its branch, whether it has a remote  # work tree → its .git folder (asked on every deploy by the controller)


@dataclass
class WorkingCopy:
    """Where deploy files are read and the deploy commit is made."""

    repo: GitRepo
    mode: Mode
    branch: str
    remote: str | None  # None: commit only, no push

    def read(self, path: str) -> str | None:
        try:
            with (self.repo.root / path).open(encoding="utf-8", newline="") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise TagtrailError(f"{path}: cannot read it ({exc})") from None


@dataclass
class CommitOutcome:
    commit: str | None  # None: nothing to change
    pushed: bool = False
    attempts: int = 0
    then_exit: int | None = None
    then_output: str = ""
    files: list[str] = field(default_factory=list)


# Edits for a working copy: path → new text, or {} when the files already say what they should.
MakeEdits = Callable[[WorkingCopy], tuple[dict[str, str], str]]


class GitOpsTarget:
    def __init__(self, config: Config, project_root: Path, *, keep_worktree: bool = False) -> None:
        git = config.deploy.git
        if git is None:
            raise TagtrailError(
                "tagtrail.yaml has no deploy.git section: say which files hold the image references"
            )
        self.config = config
        self.settings = git
        self.files = list(git.files)
        self.project_root = project_root
        self.keep_worktree = (
            keep_worktree  # tagtrail serve reuses its worktree instead of adding one per deploy
        )

    @contextmanager
    def working_copy(self, *, for_commit: bool) -> Iterator[WorkingCopy]:
        """The working copy to read the deploy files from (and to commit in, when `for_commit`)."""
        if self.settings.url:
            yield self._clone()
            return
        source = GitRepo.discover(self.project_root)
        branch, has_remote = self._checkout_facts(source)
        if branch is None:
            raise GitError(
                "HEAD is detached and deploy.git.branch is not set: say which branch deploys go to"
            )
        pushing = self.settings.push and has_remote
        if not for_commit or not pushing:
            if for_commit:
                self._check_in_place(source, branch)
            yield WorkingCopy(source, "in-place", branch, None)
            return
        with self._worktree(source, branch) as copy:
            yield copy
        self._fast_forward(source, branch)

    def _checkout_facts(self, source: GitRepo) -> tuple[str | None, bool]:
        """The branch deploys go to and whether there is a remote to push to. tagtrail serve (keep_worktree)
        remembers them between deploys and reads them again on each periodic sync."""
        if self.keep_worktree and source.root in _FACTS:
            return _FACTS[source.root]
        facts = (
            self.settings.branch or source.current_branch(),
            source.try_run("remote", "get-url", REMOTE)[0],
        )
        if self.keep_worktree:
            _FACTS[source.root] = facts
        return facts

    def sync_checkout(self) -> bool:
        """Fetch the deploy branch and fast-forward the checkout tagtrail runs in, when that cannot lose
        anything (tagtrail serve does this before a periodic reconcile, so pins, config and commits pushed
        by others are seen). False when there is nothing to sync (deploy.git.url, or no remote)."""
        if self.settings.url:
            return False
        source = GitRepo.discover(self.project_root)
        _FACTS.pop(source.root, None)
        branch, has_remote = self._checkout_facts(source)
        if branch is None or not has_remote:
            return False
        fetched, detail = source.try_run("fetch", "--quiet", REMOTE, branch)
        if not fetched:
            raise GitError(f"cannot fetch {branch} from {REMOTE}: {detail}")
        self._fast_forward(source, branch)
        return True

    def refresh(self, copy: WorkingCopy) -> None:
        """Bring a clone or worktree to the remote branch's head (after a rejected push, or to start)."""
        if copy.remote is None:
            return
        copy.repo.run("fetch", "--quiet", copy.remote, copy.branch)
        copy.repo.run("reset", "--quiet", "--hard", f"{copy.remote}/{copy.branch}")

    def apply(self, make_edits: MakeEdits, *, dry_run: bool = False) -> tuple[CommitOutcome, dict[str, str]]:
        """Work out the edits, commit them and push, retrying a rejected push on the new remote head."""
        with self.working_copy(for_commit=not dry_run) as copy:
            return self.commit_loop(copy, make_edits, dry_run=dry_run)

    def commit_loop(
        self, copy: WorkingCopy, make_edits: MakeEdits, *, dry_run: bool = False
    ) -> tuple[CommitOutcome, dict[str, str]]:
        """In an open working copy: edit, commit, push; on a rejected push, refresh and go again (bounded)."""
        attempt = 0
        while True:
            attempt += 1
            edits, message = make_edits(copy)
            if not edits or dry_run:
                return CommitOutcome(None, attempts=attempt), edits
            for path, text in edits.items():
                _write(copy.repo.root / path, text)
            self._commit(copy, list(edits), message)
            pushed, detail = (
                copy.repo.try_run("push", "--quiet", copy.remote, f"HEAD:refs/heads/{copy.branch}")
                if copy.remote is not None
                else (False, "")
            )
            # the sha is asked for after the push, so the push is not kept waiting for it
            outcome = CommitOutcome(copy.repo.head_sha(), attempts=attempt, files=list(edits), pushed=pushed)
            if copy.remote is None or pushed:
                break
            if attempt > self.settings.retries:
                raise GitError(
                    f"the push to {copy.branch} was rejected {attempt} times ({detail}); nothing was forced."
                    " Someone else pushes to it constantly: try again later"
                )
            self.refresh(copy)
        self._then(copy, outcome)
        return outcome, edits

    # Working copies -----------------------------------------------------------------------------------

    def _clone(self) -> WorkingCopy:
        url = self.settings.url or ""
        cache = Path(self.settings.cache) if self.settings.cache else _cache_root()
        folder = cache / hashlib.sha256(url.encode()).hexdigest()[:16]
        if not (folder / ".git").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            GitRepo(folder.parent).run("clone", "--quiet", "--no-checkout", url, folder.name)
        repo = GitRepo(folder)
        repo.run("remote", "set-url", REMOTE, url)  # the config may have moved the remote
        branch = self.settings.branch or _remote_head(repo) or "main"
        copy = WorkingCopy(repo, "clone", branch, REMOTE if self.settings.push else None)
        repo.run("fetch", "--quiet", REMOTE, branch)
        repo.run("checkout", "--quiet", "-B", branch, f"{REMOTE}/{branch}")
        repo.run("reset", "--quiet", "--hard", f"{REMOTE}/{branch}")
        repo.run("clean", "--quiet", "-fd")
        return copy

    @contextmanager
    def _worktree(self, source: GitRepo, branch: str) -> Iterator[WorkingCopy]:
        source.run("fetch", "--quiet", REMOTE, branch)
        git_dir = _GIT_DIRS.get(source.root) or Path(source.run("rev-parse", "--absolute-git-dir"))
        _GIT_DIRS[source.root] = git_dir
        folder = git_dir / "tagtrail-worktree"
        reused = self.keep_worktree and folder.exists() and self._reset_worktree(GitRepo(folder), branch)
        if not reused:
            if folder.exists():  # left by a run that crashed: nothing in it matters
                source.try_run("worktree", "remove", "--force", str(folder))
                shutil.rmtree(folder, ignore_errors=True)
            source.try_run("worktree", "prune")
            source.run("worktree", "add", "--quiet", "--detach", str(folder), f"{REMOTE}/{branch}")
        try:
            yield WorkingCopy(GitRepo(folder), "worktree", branch, REMOTE)
        finally:
            if not self.keep_worktree:
                source.try_run("worktree", "remove", "--force", str(folder))
                shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _reset_worktree(worktree: GitRepo, branch: str) -> bool:
        """Bring a kept worktree to the remote branch, whatever a crash left in it; False if it is not usable."""
        # --force puts back the tracked files a crash may have left half written; tagtrail writes no others
        return worktree.try_run("checkout", "--quiet", "--detach", "--force", f"{REMOTE}/{branch}")[0]

    def _check_in_place(self, source: GitRepo, branch: str) -> None:
        current = source.current_branch()
        if current != branch:
            raise GitError(
                f"deploys go to branch {branch}, but {current or 'a detached HEAD'} is checked out; check out {branch}"
            )
        dirty = source.dirty_paths(self.files)
        if dirty:
            raise GitError(
                f"the deploy files have uncommitted changes ({', '.join(dirty)}); commit or restore them first"
                " (git checkout -- FILE), so the deploy commit holds only tagtrail's change"
            )

    def _fast_forward(self, source: GitRepo, branch: str) -> None:
        """Bring the user's branch up to the pushed deploy commit when that cannot lose anything."""
        if source.current_branch() != branch or source.dirty_paths(self.files):
            return
        source.try_run("merge", "--quiet", "--ff-only", f"{REMOTE}/{branch}")

    # Commit, then -------------------------------------------------------------------------------------

    def _commit(self, copy: WorkingCopy, paths: list[str], message: str) -> None:
        name, email = _author(self.settings.author, copy.repo)
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write(message)
        try:
            # `commit -- PATHS` takes those files as they are; only a file git does not know yet needs `add`
            committed, _ = copy.repo.try_run(
                "commit", "--quiet", "--no-verify", "-F", handle.name, "--", *paths, env=env
            )
            if not committed:
                copy.repo.run("add", "--", *paths)
                copy.repo.run("commit", "--quiet", "--no-verify", "-F", handle.name, "--", *paths, env=env)
        finally:
            os.unlink(handle.name)

    def _then(self, copy: WorkingCopy, outcome: CommitOutcome) -> None:
        command = self.settings.then
        if not command or outcome.commit is None:
            return
        try:
            # deploy.git.then is a shell command line the user wrote in their own config, on purpose.
            result = subprocess.run(  # noqa: S602
                command,
                shell=True,
                cwd=copy.repo.root if copy.mode != "worktree" else self.project_root,
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            outcome.then_exit = result.returncode
            outcome.then_output = (result.stdout + result.stderr)[-THEN_OUTPUT_CAP:]
        except subprocess.TimeoutExpired:
            outcome.then_exit = -1
            outcome.then_output = f"`{command}` did not finish within an hour"


def _write(path: Path, text: str) -> None:
    """Replace a file atomically, keeping its line endings as given (no newline translation)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tagtrail")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists():
            shutil.copymode(path, temp)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise TagtrailError(f"cannot write {path}: {exc.strerror}") from None


def _author(configured: str | None, repo: GitRepo) -> tuple[str, str]:
    if configured:
        name, _, email = configured.partition(" <")
        return name, email.rstrip(">")
    return repo.identity() or DEFAULT_AUTHOR


def _cache_root() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tagtrail" / "repos"


def _remote_head(repo: GitRepo) -> str | None:
    ok, _ = repo.try_run("ls-remote", "--symref", REMOTE, "HEAD")
    if not ok:
        return None
    out = repo.run("ls-remote", "--symref", REMOTE, "HEAD")
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/"):
            return line.split()[1].removeprefix("refs/heads/")
    return None

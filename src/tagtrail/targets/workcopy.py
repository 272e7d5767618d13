"""Where the GitOps target reads the deploy files and makes its commit (blocking git; callers run it in a
thread).

- `deploy.git.url` set: in a clone tagtrail keeps in a cache folder, reset to the remote branch each time
  (it is tagtrail's own; a crash leaves nothing behind that the next run does not reset);
- otherwise, when pushing: in a git worktree of the repository tagtrail runs in, based on the remote
  branch, so neither the user's checkout nor their unpushed commits are touched or pushed; the user's
  branch is fast-forwarded afterwards when that is safe (a long-lived owner keeps its worktree and resets
  it to the remote branch each time, instead of adding and removing one per deploy);
- otherwise (push: false, or no remote): on the checked-out branch itself, committing only the deploy files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.config.deployfiles import pathspecs
from tagtrail.config.gittarget import GitTargetConfig
from tagtrail.errors import GitError, TagtrailError
from tagtrail.targets.lock import CheckoutLock

Mode = Literal["clone", "worktree", "in-place"]
REMOTE = "origin"


@dataclass
class WorkingCopy:
    """Where deploy files are read and the deploy commit is made."""

    repo: GitRepo
    mode: Mode
    branch: str
    remote: str | None  # None: commit only, no push
    lock: CheckoutLock | None = None  # held while tagtrail works in a shared worktree or clone

    def read(self, path: str) -> str | None:
        try:
            with (self.repo.root / path).open(encoding="utf-8", newline="") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise TagtrailError(f"{path}: cannot read it ({exc})") from None


class WorkingCopies:
    """Opens and closes working copies for one project. With `keep`, it remembers the checkout's branch,
    remote and git folder, and keeps its worktree between deploys (tagtrail serve); `forget` drops what it
    remembered (a periodic sync)."""

    def __init__(self, settings: GitTargetConfig, project_root: Path, *, keep: bool = False) -> None:
        self.settings = settings
        self.project_root = project_root
        self.files = pathspecs(list(settings.files))  # as git status takes them
        self.keep = keep
        self._source: GitRepo | None = None
        self._facts: tuple[str | None, bool] | None = None
        self._git_dir: Path | None = None
        self._kept: GitRepo | None = None  # the kept worktree's repository (keep)

    def source(self) -> GitRepo:
        if self._source is None or not self.keep:
            self._source = GitRepo.discover(self.project_root)
        return self._source

    def forget(self) -> None:
        self._facts = None

    def open(self, *, for_commit: bool) -> WorkingCopy:
        """The working copy to read the deploy files from (and to commit in, when `for_commit`). A clone,
        or a copy to commit in, is held under a lock until `close`: one tagtrail at a time works in it."""
        if self.settings.url:
            lock = self._lock(self._clone_folder().parent / f"{self._clone_folder().name}.lock")
            return _locked(lock, self._clone)
        source = self.source()
        branch, has_remote = self._checkout_facts(source)
        if branch is None:
            raise GitError(
                "HEAD is detached and deploy.git.branch is not set: say which branch deploys go to"
            )
        if not for_commit:
            return WorkingCopy(source, "in-place", branch, None)
        lock = self._lock(self._git_folder(source) / "tagtrail.lock")
        if not (self.settings.push and has_remote):
            return _locked(lock, lambda: self._in_place(source, branch))
        return _locked(lock, lambda: self._worktree(source, branch))

    def head(self, copy: WorkingCopy) -> str:
        """The rev of the deploy branch's head in the checkout `copy` (from `open(for_commit=False)`, not a
        clone), as a deploy sees it: the remote branch fetched now where the checkout has a remote (nothing of
        the user's checkout is touched), else the branch itself."""
        branch, has_remote = self._checkout_facts(copy.repo)
        if not has_remote or not self.settings.push:
            return branch or "HEAD"
        fetched, detail = copy.repo.try_run("fetch", "--quiet", REMOTE, copy.branch)
        if not fetched:
            raise GitError(
                f"cannot fetch {copy.branch} from {REMOTE} to read the deploy branch's head ({detail});"
                " check the remote and its access, then run again"
            )
        return f"{REMOTE}/{copy.branch}"

    def close(self, copy: WorkingCopy) -> None:
        """Done with a copy: a temporary worktree goes, the user's branch catches up when it can, and the
        lock is released."""
        try:
            if copy.mode == "worktree":
                source = self.source()
                if not self.keep:
                    source.try_run("worktree", "remove", "--force", str(copy.repo.root))
                    shutil.rmtree(copy.repo.root, ignore_errors=True)
                self._fast_forward(source, copy.branch)
        finally:
            if copy.lock is not None:
                copy.lock.release()

    def _lock(self, path: Path) -> CheckoutLock:
        path.parent.mkdir(parents=True, exist_ok=True)
        return CheckoutLock(path, self.settings.lock_timeout.total_seconds())

    def _git_folder(self, source: GitRepo) -> Path:
        if self._git_dir is None or not self.keep:
            self._git_dir = Path(source.run("rev-parse", "--absolute-git-dir"))
        return self._git_dir

    def _in_place(self, source: GitRepo, branch: str) -> WorkingCopy:
        self._check_in_place(source, branch)
        return WorkingCopy(source, "in-place", branch, None)

    def refresh(self, copy: WorkingCopy) -> None:
        """Bring a clone or worktree to the remote branch's head (after a rejected push)."""
        if copy.remote is None:
            return
        copy.repo.run("fetch", "--quiet", copy.remote, copy.branch)
        copy.repo.run("reset", "--quiet", "--hard", f"{copy.remote}/{copy.branch}")

    def sync(self) -> bool:
        """Fetch the deploy branch and fast-forward the checkout tagtrail runs in, when that cannot lose
        anything (so pins, config and commits pushed by others are seen). False when there is nothing to
        sync (deploy.git.url, or no remote)."""
        if self.settings.url:
            return False
        self.forget()
        source = self.source()
        branch, has_remote = self._checkout_facts(source)
        if branch is None or not has_remote:
            return False
        fetched, detail = source.try_run("fetch", "--quiet", REMOTE, branch)
        if not fetched:
            raise GitError(f"cannot fetch {branch} from {REMOTE}: {detail}")
        self._fast_forward(source, branch)
        return True

    def _checkout_facts(self, source: GitRepo) -> tuple[str | None, bool]:
        """The branch deploys go to and whether there is a remote to push to."""
        if self.keep and self._facts is not None:
            return self._facts
        facts = (
            self.settings.branch or source.current_branch(),
            source.try_run("remote", "get-url", REMOTE)[0],
        )
        self._facts = facts
        return facts

    def _clone_folder(self) -> Path:
        url = self.settings.url or ""
        cache = Path(self.settings.cache) if self.settings.cache else _cache_root()
        return cache / hashlib.sha256(url.encode()).hexdigest()[:16]

    def _clone(self) -> WorkingCopy:
        url = self.settings.url or ""
        folder = self._clone_folder()
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

    def _worktree(self, source: GitRepo, branch: str) -> WorkingCopy:
        # on every deploy's path, so without git's auto maintenance (a process of its own, about a third of
        # a quiet fetch): the deploy commit that follows runs it
        source.run("fetch", "--quiet", "--no-auto-maintenance", REMOTE, branch)
        folder = self._git_folder(source) / "tagtrail-worktree"
        # a kept worktree keeps its GitRepo, and so what it read once (the commit identity: two processes)
        kept = self._kept if self._kept is not None and self._kept.root == folder else GitRepo(folder)
        reused = self.keep and folder.exists() and _reset_worktree(kept, branch)
        if not reused:
            if folder.exists():  # left by a run that crashed: nothing in it matters
                source.try_run("worktree", "remove", "--force", str(folder))
                shutil.rmtree(folder, ignore_errors=True)
            source.try_run("worktree", "prune")
            source.run("worktree", "add", "--quiet", "--detach", str(folder), f"{REMOTE}/{branch}")
            kept = GitRepo(folder)
        self._kept = kept if self.keep else None
        return WorkingCopy(kept, "worktree", branch, REMOTE)

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


def _locked(lock: CheckoutLock, make: Callable[[], WorkingCopy]) -> WorkingCopy:
    """`make` under `lock`; the lock goes with the copy (released by close), or at once if making it fails."""
    lock.acquire()
    try:
        copy = make()
    except BaseException:
        lock.release()
        raise
    copy.lock = lock
    return copy


def _reset_worktree(worktree: GitRepo, branch: str) -> bool:
    """Bring a kept worktree to the remote branch, whatever a crash left in it; False if it is not usable."""
    # --force puts back the tracked files a crash may have left half written; tagtrail writes no others
    return worktree.try_run("checkout", "--quiet", "--detach", "--force", f"{REMOTE}/{branch}")[0]


def _cache_root() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tagtrail" / "repos"


def _remote_head(repo: GitRepo) -> str | None:
    ok, out = repo.try_run("ls-remote", "--symref", REMOTE, "HEAD")
    if not ok:
        return None
    out = repo.run("ls-remote", "--symref", REMOTE, "HEAD")
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/"):
            return line.split()[1].removeprefix("refs/heads/")
    return None

"""The GitOps target: deploy decisions written to files in git, one commit per deploy, pushed.

Where the commit is made is `targets.workcopy`'s job. A rejected push is never forced: it is a `Conflict`,
on which the reconciler's loop refreshes (the remote branch fetched), reads the files and tagtrail.yaml
again on its new head and decides again on what they say now (a rollback or pin that landed meanwhile
wins), a bounded number of times (deploy.git.retries). A change that is already there produces no commit, so re-running after a crash at any
point converges without duplicates. git blocks, so every git step runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from tagtrail.adapters.gitrepo import GitRepo, Push
from tagtrail.adapters.history import HistoryEntry, deploy_history
from tagtrail.adapters.refs import Matcher, Reference
from tagtrail.config import Config
from tagtrail.config.deployfiles import deploy_files, deploy_files_among, described
from tagtrail.config.edit import remove_pin, set_pin
from tagtrail.config.environments import lane_name
from tagtrail.errors import GitError, TagtrailError
from tagtrail.targets.base import Applied, C, Capability, Change, Conflict, Declared, offered
from tagtrail.targets.capabilities import CHECKOUT, NARROWS
from tagtrail.targets.commit import commit_paths, run_then, write_file
from tagtrail.targets.files import find_all, read_state, rewrite_all, states_of
from tagtrail.targets.index import DeployIndex
from tagtrail.targets.latest import Latest
from tagtrail.targets.message import commit_message
from tagtrail.targets.pulls import PullRequests
from tagtrail.targets.workcopy import WorkingCopies, WorkingCopy


class GitOpsTarget:
    """Deploy files in git. `keep` (tagtrail serve): keep the worktree and checkout facts between deploys."""

    def __init__(self, config: Config, config_path: Path, matcher: Matcher, *, keep: bool = False) -> None:
        git = config.deploy.git
        if git is None:
            raise TagtrailError(
                "tagtrail.yaml has no deploy.git section: say which files hold the image references"
            )
        self.config = config
        self.settings = git
        self.config_path = config_path
        self.project_root = config_path.parent
        self.matcher = matcher
        self.copies = WorkingCopies(git, self.project_root, keep=keep)
        self.where = "the deploy files"
        self.index = DeployIndex(list(git.files))  # which files hold each app, for a hint's deploy
        self.latest = Latest()
        self.pulls = PullRequests.from_environment(git.pull_request, config) if git.pull_request else None

    # The Target protocol ------------------------------------------------------------------------------

    async def declared(self) -> Declared:
        async with self._copy(for_commit=False) as copy:
            read = await asyncio.to_thread(self._read, copy)
            return await self.pulls.reviewed(copy, read, needed=False) if self.pulls else read

    def writing(self, *, dry_run: bool = False) -> AbstractAsyncContextManager[_Writing]:
        return self.writing_for(None, dry_run=dry_run)

    @asynccontextmanager
    async def writing_for(
        self, apps: Collection[str] | None, *, dry_run: bool = False
    ) -> AsyncIterator[_Writing]:
        """A write whose first read holds only the files holding `apps`, where the index knows them."""
        async with self._copy(for_commit=not dry_run) as copy:
            yield _Writing(self, copy, dry_run, apps)

    def peek(self, apps: Collection[str]) -> Declared | None:
        seen = self.index.peek(apps)
        if seen is None:
            return None
        found, config_text = seen
        return Declared(states_of(found, self.config.tag_scheme, apps), config_text)

    def offers(self, capability: Capability[C]) -> C | None:
        return offered(self, capability, CHECKOUT, NARROWS)

    async def history(self, app: str | None = None, *, until: list[str] | None = None) -> list[HistoryEntry]:
        async with self._copy(for_commit=False) as copy:
            if app is None and until is not None:  # each app's newest: kept, read since (targets.latest)
                read = self.latest.read
                return await asyncio.to_thread(
                    read, copy.repo, self._files(copy), self.matcher, until, self.index.known
                )
            return await asyncio.to_thread(deploy_history, copy.repo, self._files(copy), self.matcher, app)

    async def sync(self) -> bool:
        return await asyncio.to_thread(self.copies.sync)

    async def at_head(self) -> tuple[Declared, list[HistoryEntry]] | None:
        """What the deploy branch's head declares (tagtrail.yaml's text with it) and its history there, as
        a deploy sees it: retention must know the pins and deploys pushed since this checkout was pulled.
        None for a clone (deploy.git.url): each read resets it to that head, so `declared` and `history`
        read it there already; no history where the head is the commit checked out, with the same deploy
        files: it is the one `history` reads."""
        if self.settings.url:
            return None
        async with self._copy(for_commit=False) as copy:
            return await asyncio.to_thread(self._at_head, copy)

    async def aclose(self) -> None:
        if self.pulls is not None:  # git holds nothing open between calls; GitHub's client does
            await self.pulls.aclose()

    # The Checkout capability (blocking) ---------------------------------------------------------------

    @contextmanager
    def checked_out(self) -> Iterator[GitRepo]:
        copy = self.copies.open(for_commit=False)
        try:
            yield copy.repo
        finally:
            self.copies.close(copy)

    def source_checkout(self) -> GitRepo:
        return self.copies.source()

    # Steps (blocking, in a worker thread) -------------------------------------------------------------

    @asynccontextmanager
    async def _copy(self, *, for_commit: bool) -> AsyncIterator[WorkingCopy]:
        copy = await asyncio.to_thread(self.copies.open, for_commit=for_commit)
        try:
            yield copy
        finally:
            await asyncio.to_thread(self.copies.close, copy)

    def _files(self, copy: WorkingCopy) -> list[str]:
        """deploy.git.files in this copy, globs resolved (once per read); one that matches nothing is an
        error. Messages name the files read from then on."""
        files = deploy_files(self.config, copy.repo.root, f"the deploy repository (branch {copy.branch})")
        self.where = described(files)
        return files

    def _read(self, copy: WorkingCopy) -> _Read:
        texts = {path: copy.read(path) for path in self._files(copy)}
        config_rel = self._config_in(copy)
        config_text = copy.read(config_rel) if config_rel else None
        found = find_all(texts, self.matcher)
        states = states_of(found, self.config.tag_scheme)
        return _Read(states, config_text, texts=texts, config_rel=config_rel, found=found)

    def _read_for(self, copy: WorkingCopy, apps: Collection[str] | None, remember: bool) -> _Read:
        """With `apps`, only the files holding them, where the index answers; else every file (indexed
        anew where `remember`: a copy to commit in, which holds the deploy branch as it is)."""
        if apps:
            config_rel = self._config_in(copy)
            part = self.index.read(copy, apps, config_rel)
            if part is not None:
                states = states_of(part.found, self.config.tag_scheme, apps)
                return _Read(
                    states, part.config_text, texts=part.texts, config_rel=config_rel, found=part.found
                )
        read = self._read(copy)
        if remember:
            self.index.remember(copy, read.config_text, read.texts, read.found)
        return read

    def _at_head(self, copy: WorkingCopy) -> tuple[Declared, list[HistoryEntry]]:
        rev = self.copies.head(copy)
        config_rel = self._config_rel()
        tree = copy.repo.run("ls-tree", "-r", "--name-only", "-z", rev).split("\0")
        files = deploy_files_among(self.config, tree, f"the deploy branch's head ({rev[:12]})")
        found = copy.repo.texts((rev, p) for p in [*files, *([config_rel] if config_rel else [])])
        texts = {path: found.get((rev, path)) for path in files}
        states = read_state(texts, self.matcher, self.config.tag_scheme)
        config_text = found.get((rev, config_rel)) if config_rel else None
        head, checked_out = copy.repo.run("rev-parse", f"{rev}^{{commit}}", "HEAD^{commit}").split()
        if head == checked_out and files == self._files(copy):
            return Declared(states, config_text), []
        return Declared(states, config_text), deploy_history(copy.repo, files, self.matcher, rev=rev)

    def _work_out(
        self, copy: WorkingCopy, declared: Declared, change: Change
    ) -> tuple[Applied, dict[str, list[Reference]]]:
        """The edits `change` makes to the files as read, what they change, and the references of the
        files rewritten."""
        assert isinstance(declared, _Read)  # noqa: S101 (this target reads what it declares)
        images = {c.app: c.image for c in change.images}
        edits, changed, found = rewrite_all(declared.texts, images, self.matcher, declared.found)
        if change.pins:
            config_rel = declared.config_rel
            if config_rel is None or declared.config_text is None:
                raise TagtrailError(self._no_config_here())
            text = declared.config_text
            for app, tag in sorted(change.pins.items()):
                lane = lane_name(self.config)
                text = (
                    set_pin(text, app, tag, config_rel, lane)
                    if tag
                    else remove_pin(text, app, config_rel, lane)
                )
            if text != declared.config_text:
                edits[config_rel] = text
        apps = sorted(changed)
        before = {path: declared.texts.get(path) for path in edits}
        if declared.config_rel in edits:
            before[declared.config_rel] = declared.config_text
        previous = {app: declared.states[app].shown for app in apps if app in declared.states}
        return Applied(change, changed=apps, previous=previous, files=edits, before=before), found

    def _commit_and_push(self, copy: WorkingCopy, applied: Applied, message: str) -> Push:
        self._commit_files(copy, applied.files, message)
        if copy.remote is None:
            applied.commit = copy.repo.head_sha()
            return Push(False, False, "")
        push = copy.repo.push(copy.remote, f"HEAD:refs/heads/{copy.branch}")
        applied.commit = copy.repo.head_sha()  # asked after the push, so the push is not kept waiting
        if (
            not push.ok
            and not push.rejected
            and copy.repo.remote_head(copy.remote, copy.branch) == applied.commit
        ):
            # git said it failed, but the commit reached the remote (a connection lost after the update):
            # it is deployed, and recorded as such
            push = Push(True, False, "")
        applied.pushed = push.ok
        return push

    def _config_in(self, copy: WorkingCopy) -> str | None:
        """Where tagtrail.yaml is in the working copy (pins live in git, next to what they hold); None
        when it is not there."""
        relative = self._config_rel()
        return relative if relative and (copy.repo.root / relative).is_file() else None

    def _config_rel(self) -> str | None:
        """tagtrail.yaml's path in the repository tagtrail runs in (and in the deploy repository)."""
        try:
            source_root = self.copies.source().root
            return self.config_path.resolve().relative_to(source_root.resolve()).as_posix()
        except (GitError, ValueError):
            return None

    def _no_config_here(self) -> str:
        if self.settings.url:
            return "pins live in tagtrail.yaml, which must be in the deploy repository (deploy.git.url) at the same path"
        return "tagtrail.yaml is not inside a git repository, so a pin cannot be committed"

    def _commit_files(self, copy: WorkingCopy, files: Mapping[str, str], message: str) -> None:
        """Write `files` (path → text) in the copy and commit them there."""
        for path, text in files.items():
            write_file(copy.repo.root / path, text)
        commit_paths(copy, list(files), message, self.settings.author)


class _Writing:
    """One deploy's working copy: read, write (commit and push), refresh after a rejected push. With `apps`
    (a hint's), the first read holds only their files where the index knows them; a read after a rejected
    push reads everything again."""

    def __init__(
        self, target: GitOpsTarget, copy: WorkingCopy, dry_run: bool, apps: Collection[str] | None
    ) -> None:
        self.target, self.copy, self.dry_run, self.apps = target, copy, dry_run, apps
        self.retries = target.settings.retries

    async def read(self) -> Declared:
        apps, self.apps = self.apps, None
        read = await asyncio.to_thread(self.target._read_for, self.copy, apps, not self.dry_run)
        pulls = self.target.pulls
        return await pulls.reviewed(self.copy, read, needed=not self.dry_run) if pulls else read

    async def write(self, declared: Declared, change: Change) -> Applied | Conflict:
        target, copy = self.target, self.copy
        applied, found = await asyncio.to_thread(target._work_out, copy, declared, change)
        if target.pulls is not None:
            applied.details.add(target.pulls.reviewing())
            if not self.dry_run:  # a merge is a deploy: deploy.git.then runs once after each one seen
                for merge in await asyncio.to_thread(target.pulls.merges_to_follow, copy):
                    merged = replace(applied, commit=merge.merge_commit)
                    await asyncio.to_thread(run_then, target.settings, copy, target.project_root, merged)
            if applied.files and not self.dry_run:
                return await target.pulls.write(target, copy, declared, change, applied)
        if not applied.files or self.dry_run:
            return applied
        message = commit_message(change, applied.changed, applied.previous)
        push = await asyncio.to_thread(target._commit_and_push, copy, applied, message)
        if copy.remote is not None and not push.ok:
            if not push.rejected:
                raise GitError(
                    f"cannot push to {copy.remote} ({copy.branch}): {push.detail}; nothing was forced,"
                    " and the deploy commit was not made there. Check the remote and its access, then run again"
                )
            return Conflict(push.detail, lambda attempts: _pushed_over(copy.branch, attempts, push.detail))
        target.index.wrote(None if change.pins else applied.commit, applied.files, found)
        await asyncio.to_thread(run_then, target.settings, copy, target.project_root, applied)
        return applied

    async def refresh(self) -> None:
        await asyncio.to_thread(self.target.copies.refresh, self.copy)


def _pushed_over(branch: str, attempts: int, detail: str) -> GitError:
    return GitError(
        f"the push to {branch} was rejected {attempts} times ({detail}); nothing was forced."
        " Someone else pushes to it constantly: try again later"
    )


@dataclass(frozen=True)
class _Read(Declared):
    """What this target read, with the texts it will edit."""

    texts: Mapping[str, str | None] = field(default_factory=dict)
    config_rel: str | None = None
    found: Mapping[str, Sequence[Reference]] = field(default_factory=dict)  # path → its references


# What every command needs to run at all; nothing here is a secret.

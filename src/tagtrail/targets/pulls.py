"""Deploy through pull requests (deploy.git.pull_request): the GitOps target's write, when the deploy
branch only takes reviewed changes.

The change is the one a direct push would make, byte for byte (`GitOpsTarget._work_out` on the deploy
branch's head), committed on top of that head on a branch of tagtrail's own (`tagtrail/auto/<app>`,
`tagtrail/reconcile` for the whole reconcile, `tagtrail/manual/<app>/<verb>` for a person's rollback or
pin) and pushed there, forced only over what tagtrail itself last pushed (a lease). Then the branch's pull
request is opened, or the open one updated: never a second one. Merging it is the deploy.

Each reconcile lists the pull requests once (one request) and reads from them, per app: open (pending
review), merged (the deploy branch holds it: the history reads the merge), declined (closed by a person:
that build is held, a newer one may open a new pull request) or superseded (closed by tagtrail for a
person's rollback or pin). A branch is rebuilt whenever what the change makes of the deploy branch's files
differs from what the branch holds: the base moved under it (a conflict included) or a newer build came;
else nothing is pushed, so a pending pull request stays quiet.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from tagtrail.adapters.github import PERMISSIONS, Client, Pull, Pulls
from tagtrail.adapters.gitrepo import GitRepo
from tagtrail.adapters.refs import Reference
from tagtrail.adapters.registry import Secret
from tagtrail.config import Config
from tagtrail.config.environments import lane_name
from tagtrail.config.pulls import PullRequestConfig, repository_of
from tagtrail.errors import GitError, GitHubError, TagtrailError
from tagtrail.targets.base import Applied, Change, Conflict, Declared, Review, Reviewing
from tagtrail.targets.message import commit_message
from tagtrail.targets.pullbody import Links, Marker, body, title, with_marker
from tagtrail.targets.workcopy import REMOTE, WorkingCopy


class Committer(Protocol):
    """What this module uses of the GitOps target (named here, so the two do not import each other)."""

    def _work_out(
        self, copy: WorkingCopy, declared: Declared, change: Change
    ) -> tuple[Applied, dict[str, list[Reference]]]: ...

    def _commit_files(self, copy: WorkingCopy, files: Mapping[str, str], message: str) -> None: ...


log = logging.getLogger(__name__)
BRANCHES = "tagtrail/"  # every branch tagtrail pushes starts so; an environment's lane adds its name
MIRROR = "refs/tagtrail/pulls/"  # where tagtrail's own branches are fetched to, apart from the user's refs
# a ref per merged pull request deploy.git.then ran after, per lane: `<number>/<prefix with + for />`, so no
# lane's ref is a folder of another's
FOLLOWED = "refs/tagtrail/merged/"


class PullRequests:
    """The pull requests of one deploy branch. `prefix` names tagtrail's branches: the one place to set
    (`tagtrail/<environment>/` for a lane)."""

    def __init__(self, settings: PullRequestConfig, config: Config, token: Secret | None) -> None:
        self.settings, self.config, self.token = settings, config, token
        lane = lane_name(config)  # an environment's view of the config: its own branches
        self.prefix = f"{BRANCHES}{lane}/" if lane else BRANCHES
        self.counts: Counter[str] = Counter()  # pull requests by state, in the last list (metrics)
        self._pulls: Pulls | None = None
        self._listed: list[tuple[Pull, Marker]] = []
        self._settings_checked = False
        self._said_missing = False

    @classmethod
    def from_environment(cls, settings: PullRequestConfig, config: Config) -> PullRequests:
        """Read the token now, at start. A missing one is said only where it is needed: to propose a
        deploy (an error, before anything is pushed) or to read the pull requests (plan and status say, in
        one line, that they read none); history and report never ask for it."""
        value = os.environ.get(settings.token_env, "").strip()
        return cls(settings, config, Secret(value) if value else None)

    def _missing(self) -> str:
        return f"deploy.git.pull_request: the environment variable {self.settings.token_env} is not set"

    def reviewing(self) -> Reviewing:
        """What this write's details say of pull requests before it proposes any: the last list's counts."""
        return Reviewing(counts=dict(self.counts))

    def branch(self, apps: list[str], verb: str) -> str:
        """`auto/<app>` (or `reconcile`) for automation, `manual/<app>/<verb>` for a person's action: no app's
        name makes another's branch (`web-rollback`), and no branch is a folder of another, which git refuses
        (`tagtrail/web` beside `tagtrail/web/rollback`)."""
        if verb != "deploy":
            return f"{self.prefix}manual/{apps[0]}/{verb}"
        return (
            f"{self.prefix}reconcile"
            if self.settings.one_per == "reconcile"
            else f"{self.prefix}auto/{apps[0]}"
        )

    def owns(self, head: str) -> bool:
        """Whether `head` is one of this lane's branches (not another lane's under `tagtrail/<environment>/`)."""
        mine = head.removeprefix(self.prefix)
        return mine != head and (mine == "reconcile" or mine.startswith(("auto/", "manual/")))

    async def aclose(self) -> None:
        if self._pulls is not None:
            await self._pulls.client.aclose()

    # Reading ------------------------------------------------------------------------------------------

    async def reviewed(self, copy: WorkingCopy, declared: Declared, *, needed: bool = True) -> Declared:
        """`declared` with its apps' pull requests, newest first: one list request. Without a token, a
        read that does not write (`needed` False) goes on without them, and says so once."""
        if self.token is None and not needed:
            if not self._said_missing:
                self._said_missing = True
                log.warning(
                    "%s, so pull requests are not read: a build pending review or declined is not shown"
                    " as such (a deploy needs the token: %s)",
                    self._missing(),
                    PERMISSIONS,
                )
            return declared
        pulls = await self._client(copy)
        listed = [(p, m) for p in await pulls.listed() if self.owns(p.head) and (m := Marker.read(p.body))]
        self._listed = listed
        self.counts = Counter(_state(p, m) for p, m in listed)
        reviews: dict[str, list[Review]] = {}
        for pull, marker in listed:
            for app, to in marker.apps.items():
                reviews.setdefault(app, []).append(
                    Review(pull.number, pull.url, _state(pull, marker), to, marker.verb)
                )
        return replace(declared, reviews={app: tuple(found) for app, found in reviews.items()})

    def merges_to_follow(self, copy: WorkingCopy) -> list[Pull]:
        """The merges deploy.git.then has yet to run after (`_to_follow`), recorded as followed."""
        return _to_follow(copy, self._listed, self.prefix.replace("/", "+"))

    # Writing ------------------------------------------------------------------------------------------

    async def write(
        self, target: Committer, copy: WorkingCopy, declared: Declared, change: Change, applied: Applied
    ) -> Applied | Conflict:
        """Push each group of apps' change to its branch and open or update its pull request. Nothing is
        deployed (`changed` empty) until a pull request is merged; `Reviewing` says which are pending."""
        if copy.remote is None:
            raise GitError(
                "deploy.git.pull_request pushes a branch per pull request: the deploy repository needs a"
                " remote and deploy.git.push: true"
            )
        pulls = await self._client(copy)
        if not self._settings_checked:  # once: GitHub refuses again if they change
            await pulls.check(self.settings.method if self.settings.merge == "auto" else None)
            self._settings_checked = True
        base = await asyncio.to_thread(self._fetch, copy)
        reviewing = Reviewing.of(applied.details)
        for apps in self._groups(change, applied):
            part = _part(change, apps)
            sub, _ = await asyncio.to_thread(target._work_out, copy, declared, part)
            if not sub.files:
                continue
            branch = self.branch(apps, change.verb)
            seen = await asyncio.to_thread(copy.repo.resolve, f"{MIRROR}{branch}")
            pushed = await asyncio.to_thread(self._push, target, copy, (base, seen), branch, part, sub)
            if isinstance(pushed, Conflict):
                return pushed
            try:
                pull = await self._propose(pulls, branch, part, sub, pushed is not None)
            except GitHubError:
                if pushed is not None:  # nothing half done: the branch back as it was
                    await asyncio.to_thread(self._put_back, copy, branch, pushed, seen)
                raise
            for app in apps:
                reviewing.pending[app] = Review(pull.number, pull.url, "open", _to(part, app), change.verb)
            if change.verb != "deploy":
                reviewing.superseded.update(await self._supersede(pulls, part, pull))
        applied.details.add(reviewing)
        applied.changed, applied.commit, applied.pushed = [], None, False
        return applied

    def _groups(self, change: Change, applied: Applied) -> list[list[str]]:
        apps = sorted({*applied.changed, *change.pins})
        if not apps:
            return []
        if change.verb != "deploy" or self.settings.one_per == "reconcile":
            return [apps]
        return [[app] for app in apps]

    def _fetch(self, copy: WorkingCopy) -> str:
        """tagtrail's branches as the remote has them now (deleted ones pruned); the deploy head's sha."""
        spec = f"+refs/heads/{self.prefix}*:{MIRROR}{self.prefix}*"
        copy.repo.run("fetch", "--quiet", "--prune", copy.remote or REMOTE, spec)
        return copy.repo.head_sha()

    def _push(
        self,
        target: Committer,
        copy: WorkingCopy,
        at: tuple[str, str | None],
        branch: str,
        part: Change,
        sub: Applied,
    ) -> str | Conflict | None:
        """Commit `sub` on the deploy head and push it to `branch`: the commit pushed, or None where the
        branch holds those bytes already. The lease: the branch is overwritten only as tagtrail last saw it."""
        repo, (base, seen) = copy.repo, at  # the deploy head; the branch as tagtrail last saw it
        if seen is not None and _holds(repo, seen, sub.files):
            return None
        try:
            target._commit_files(copy, sub.files, commit_message(part, sub.changed, sub.previous))
            made = repo.head_sha()
            lease = f"--force-with-lease=refs/heads/{branch}:{seen or ''}"
            push = repo.push(copy.remote or REMOTE, f"HEAD:refs/heads/{branch}", lease)
        finally:
            repo.run("reset", "--quiet", "--hard", base)
        if push.ok:
            repo.run("update-ref", f"{MIRROR}{branch}", made)
            return made
        if push.rejected:
            return Conflict(
                push.detail, lambda n: GitError(f"the push to {branch} lost {n} times ({push.detail})")
            )
        if "protected branch" in push.detail or "hook declined" in push.detail:
            raise GitError(
                f"the push to tagtrail's own branch {branch} was refused ({push.detail}): a branch protection"
                f" rule or ruleset matches it; limit that rule to the deploy branch, or allow tagtrail to"
                f" push and force-push to branches matching {self.prefix}*"
            )
        raise GitError(f"cannot push {branch} to {copy.remote}: {push.detail}; nothing was merged")

    def _put_back(self, copy: WorkingCopy, branch: str, made: str, seen: str | None) -> None:
        """`branch` as it was before tagtrail pushed `made` (gone, where it was not there), with a lease."""
        lease = f"--force-with-lease=refs/heads/{branch}:{made}"
        ref = f"refs/heads/{branch}"
        put = copy.repo.push(copy.remote or REMOTE, f"{seen}:{ref}" if seen else f":{ref}", lease)
        if put.ok:
            copy.repo.run(
                "update-ref", *(["-d", f"{MIRROR}{branch}"] if not seen else [f"{MIRROR}{branch}", seen])
            )

    async def _propose(self, pulls: Pulls, branch: str, part: Change, sub: Applied, pushed: bool) -> Pull:
        apps = sorted({*sub.changed, *part.pins})
        wanted_title = title(part, apps, sub.previous)
        wanted_body = body(part, apps, sub.previous, self.config.tag_scheme, self._links(pulls, branch))
        open_pull = next((p for p, _ in self._listed if p.head == branch and p.state == "open"), None)
        if open_pull is None:
            pull = await pulls.open(branch, wanted_title, wanted_body)
            if self.settings.labels:
                await pulls.label(pull.number, self.settings.labels)
        elif open_pull.title != wanted_title or open_pull.body != wanted_body:
            pull = await pulls.edit(open_pull.number, title=wanted_title, body=wanted_body)
        else:
            pull = open_pull
        if self.settings.merge == "auto" and (pushed or open_pull is None):
            message = commit_message(part, sub.changed, sub.previous)
            headline, _, rest = message.partition("\n\n")
            await pulls.auto_merge(pull, self.settings.method, f"{headline} (#{pull.number})", rest)
        return pull

    async def _supersede(self, pulls: Pulls, change: Change, by: Pull) -> dict[str, Review]:
        """Close the pending automatic pull requests of a person's `change`'s apps, saying which pull
        request replaces them (marked superseded: not a person's no to their builds)."""
        closed: dict[str, Review] = {}
        apps = sorted({*(c.app for c in change.images), *change.pins})
        for pull, marker in self._listed:
            mine = [app for app in apps if app in marker.apps]
            if pull.state != "open" or marker.verb != "deploy" or not mine or pull.number == by.number:
                continue
            said = (
                f"Superseded by #{by.number} ({by.url}): {change.actor}'s {change.verb} of"
                f" {', '.join(mine)}. Automatic deploys of it wait for that pull request."
            )
            await pulls.comment(pull.number, said)
            await pulls.edit(pull.number, state="closed", body=with_marker(pull.body, marker.superseding()))
            for app in mine:
                closed[app] = Review(pull.number, pull.url, "superseded", marker.apps[app])
        return closed

    async def _client(self, copy: WorkingCopy) -> Pulls:
        if self.token is None:
            raise TagtrailError(f"{self._missing()}; give tagtrail a GitHub token there ({PERMISSIONS})")
        if self._pulls is None or self._pulls.base != copy.branch:
            repository = self.settings.repository
            if repository is None:
                repository = await asyncio.to_thread(_repository, copy)
            client = Client(self.settings.api_url, repository, self.token, self.settings.token_env)
            if self._pulls is not None:
                await self._pulls.client.aclose()
            self._pulls = Pulls(client, copy.branch)
        return self._pulls

    def _links(self, pulls: Pulls, branch: str) -> Links:
        api = self.settings.api_url
        web = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
        repository = f"{web}/{pulls.client.repository}"
        return Links(repository, f"{repository}/compare/{pulls.base}...{branch}")


def _to_follow(copy: WorkingCopy, listed_pulls: list[tuple[Pull, Marker]], lane: str) -> list[Pull]:
    """The merged pull requests of the last list that deploy.git.then has not run after and whose merge
    the work copy's head holds (one merged since the copy was read waits for the next write), oldest
    first, each recorded as followed (a ref in the work copy, so once per merge across runs). The first
    time a lane's copy asks, the merges listed then are recorded, not followed: they predate it."""
    listed = copy.repo.run("for-each-ref", "--format=%(refname)", FOLLOWED).split()
    known = {name for name in listed if name.endswith(f"/{lane}")}
    merged = [
        p
        for p, _ in listed_pulls
        if p.merged and p.merge_commit and f"{FOLLOWED}{p.number}/{lane}" not in known
    ]
    held = copy.repo.reached("HEAD", [p.merge_commit or "" for p in merged]) if merged else set()
    new = [p for p in merged if p.merge_commit in held]
    for pull in new:  # recorded before it runs: at most once, even where the command fails
        copy.repo.run("update-ref", f"{FOLLOWED}{pull.number}/{lane}", "HEAD")
    if not known:
        copy.repo.run("update-ref", f"{FOLLOWED}start/{lane}", "HEAD")
        return []
    return sorted(new, key=lambda p: p.number)


def _state(pull: Pull, marker: Marker) -> str:
    if pull.state == "open":
        return "open"
    if pull.merged:
        return "merged"
    return "superseded" if marker.superseded else "declined"


def _part(change: Change, apps: list[str]) -> Change:
    images = tuple(c for c in change.images if c.app in apps)
    pins = {app: tag for app, tag in change.pins.items() if app in apps}
    return Change(change.verb, change.actor, images, pins, change.skip_ci)


def _to(change: Change, app: str) -> str | None:
    return next((c.image.reference for c in change.images if c.app == app), None)


def _holds(repo: GitRepo, seen: str, files: dict[str, str]) -> bool:
    """Whether the branch at `seen` holds exactly these texts: a base that moved elsewhere merges cleanly
    and to the same bytes; one that moved in these files (a conflict included) needs the branch rebuilt."""
    texts = repo.texts((seen, path) for path in files)
    return all(texts.get((seen, path)) == text for path, text in files.items())


def _repository(copy: WorkingCopy) -> str:
    url = copy.repo.run("remote", "get-url", copy.remote or REMOTE)
    found = repository_of(url)
    if found is None:
        raise TagtrailError(
            "deploy.git.pull_request: the git remote's URL names no GitHub owner/name; set"
            " deploy.git.pull_request.repository"
        )
    return found

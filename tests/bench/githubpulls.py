"""A local GitHub for pull requests: the REST endpoints tagtrail's pull-request client calls and the GraphQL
auto-merge mutations, with a real bare git repository behind the branches (GitHub itself cannot be reached
from here). Every request and response is checked against GitHub's own descriptions (githubpulls_check.py):
a request that breaks them is answered 422 as GitHub would and recorded in `.violations`, and so is a
response the stand-in would send out of shape; the `github_pulls` fixture fails the test on any.

    GET   /repos/{owner}/{repo}                           settings, default branch, the token's permissions
    GET   /repos/{owner}/{repo}/pulls                     ?state=open|closed|all &head=owner:branch &base=
    POST  /repos/{owner}/{repo}/pulls                     201; 422 "A pull request already exists for …"
    GET   /repos/{owner}/{repo}/pulls/{n}                 mergeable / mergeable_state from the bare repo
    PATCH /repos/{owner}/{repo}/pulls/{n}                 title, body, state
    PUT   /repos/{owner}/{repo}/pulls/{n}/merge           merge_method, sha, commit_title, commit_message
    POST  /repos/{owner}/{repo}/issues/{n}/comments|labels
    GET   /repos/{owner}/{repo}/branches/{b}/protection   needs Administration: 403 for these tokens
    POST  /graphql                                        enable/disablePullRequestAutoMerge, repository{…}

Also under GitHub Enterprise's /api/v3 (and /api/graphql). Any other request is a violation: GitHub would not
answer it 404, so a client that needs it must learn that the stand-in lacks it. What GitHub enforces that
matters is enforced: one open pull request per head and base, mergeability after base moved, required checks
(`required_checks`, ["ci"] by default, passed by `checks_pass`), the repository's allowed merge methods and
auto-merge, the token's permissions (`weak_token` reads only), a User-Agent on every request, rate limits
(`rate_limit`). With `slow_mergeability`, the first answer after head or base moved says `mergeable: null`,
"unknown", as GitHub's background check does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import githubpulls_git as repo
from bench.git import bare_repo
from bench.githubpulls_check import Description
from bench.githubpulls_http import handler
from bench.githubpulls_json import Exchange, Settings, user
from bench.githubpulls_pull import Pull, mergeability, render
from bench.httpserver import serve, stop

BOT, PERSON = "tagtrail-bot", "alice"


@dataclass
class Limit:
    after: int
    reset_at: int
    status: int


class _Setting:
    """A repository setting, read and written through to `.settings`."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, github: GitHubPulls, owner: type | None = None) -> bool:
        return bool(getattr(github.settings, self.name))

    def __set__(self, github: GitHubPulls, value: bool) -> None:
        setattr(github.settings, self.name, value)


class GitHubPulls:
    """One repository (`acme/homelab`) on a GitHub of its own; see the module's docstring."""

    repository = "acme/homelab"
    base = "main"
    token = "github_pat_11TAGTRAIL0write0contents0pulls"
    weak_token = "github_pat_11TAGTRAIL0read0only"

    def __init__(self, description: Description, root: Path) -> None:
        self.description = description
        self.remote = bare_repo(root / "acme-homelab.git")
        self.settings = Settings()
        self.required_checks = ["ci"]
        self.slow_mergeability = False
        self.exchanges: list[Exchange] = []
        self.violations: list[str] = []
        self.lock = threading.RLock()
        self.protected: list[str] = []
        self.labels_made: dict[str, int] = {}
        self._pulls: dict[int, Pull] = {}
        self._comment_ids = iter(range(900001, 10**9))
        self.limit: Limit | None = None
        self.used = 0
        self._server: ThreadingHTTPServer | None = None
        repo.advance(self.remote, self.base, "README.md", "# homelab\n", "initial", self.person)

    # the repository's settings, read by every answer (Settings in githubpulls_json.py)
    allow_auto_merge = _Setting()
    allow_squash_merge = _Setting()
    allow_merge_commit = _Setting()
    allow_rebase_merge = _Setting()

    @property
    def owner(self) -> str:
        return self.repository.split("/")[0]

    def allows(self, method: str) -> bool:
        """Whether the repository's settings allow merging with `method` (squash, merge, rebase)."""
        if method == "merge":
            return self.settings.allow_merge_commit
        return bool(getattr(self.settings, f"allow_{method}_merge"))

    def protect_branch(self, pattern: str) -> None:
        """Pushes to branches matching `pattern` are refused: "(protected branch hook declined)"."""
        self.protected.append(pattern)
        repo.protect(self.remote, self.protected)

    def rate_limit(self, after: int, reset_in: int, status: int = 403) -> None:
        """After `after` more requests, answer 403 (primary limit) or 429 (secondary) for `reset_in` s."""
        assert status in (403, 429)
        self.limit = Limit(after, int(time.time()) + reset_in, status)

    # -- who acts ------------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def bot(self) -> dict[str, Any]:
        return user(self.api_url if self._server else "", BOT, 41898282)

    @property
    def person(self) -> tuple[str, str]:
        """The git identity of the person who merges and moves base (GitHub's no-reply address)."""
        return (PERSON, f"7+{PERSON}@users.noreply.github.com")

    # -- what happened -------------------------------------------------------------------------------------
    @property
    def pulls(self) -> list[dict[str, Any]]:
        with self.lock:
            self.sync()
            return [
                render(pull, self, full=True, sent=False)
                for pull in sorted(self._pulls.values(), key=_number)
            ]

    def find(self, number: int) -> Pull | None:
        return self._pulls.get(number)

    def all_pulls(self) -> list[Pull]:
        return list(self._pulls.values())

    def add_pull(self, title: str, body: str | None, head: str, base: str, draft: bool) -> Pull:
        pull = Pull(len(self._pulls) + 1, title, body, head, base, self.bot, draft=draft)
        pull.last_head = pull.head_sha(self.remote)
        self._pulls[pull.number] = pull
        return pull

    def sync(self) -> None:
        """What GitHub does when branches move: an open pull request whose head branch was deleted is closed."""
        branches = repo.branches(self.remote)
        for pull in self._pulls.values():
            if pull.state != "open":
                continue
            if pull.head in branches:
                pull.last_head = branches[pull.head]
            else:
                pull.finish(self.remote)

    def next_id(self) -> int:
        return next(self._comment_ids)

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self._pulls[number].comments]

    def labels(self, number: int) -> list[str]:
        return [label["name"] for label in self._pulls[number].labels]

    def render(self, pull: Pull, full: bool) -> dict[str, Any]:
        return render(pull, self, full)

    # -- a person's actions --------------------------------------------------------------------------------
    def merge(self, number: int, method: str = "squash") -> str:
        """Merge as a person does on the web page (checks need not have passed: an admin may)."""
        with self.lock:
            self.sync()
            pull = self._pulls[number]
            assert pull.state == "open", f"pull request #{number} is {pull.state}"
            assert self.allows(method), f"the repository does not allow {method} merges"
            return self.write_merge(pull, method, None, None, user(self.api_url, PERSON, 7))

    def close(self, number: int) -> None:
        with self.lock:
            self._pulls[number].finish(self.remote)

    def advance_base(self, path: str, text: str, message: str) -> str:
        """Someone else's change lands on base."""
        with self.lock:
            return repo.advance(self.remote, self.base, path, text, message, self.person)

    def checks_pass(self, number: int) -> None:
        """The required checks pass on the head: an auto-merge-enabled pull request merges itself."""
        with self.lock:
            self.sync()
            pull = self._pulls[number]
            pull.checks_passed = pull.head_sha(self.remote)
            auto = pull.auto_merge
            if auto is not None and mergeability(pull, self).state == "clean":
                method = auto["merge_method"]
                self.write_merge(
                    pull, method, auto["commit_title"], auto["commit_message"], auto["enabled_by"]
                )

    def default_message(self, pull: Pull, method: str) -> tuple[str, str]:
        """The commit title and message GitHub proposes for `method` (rebase keeps each commit's own)."""
        if method == "squash":
            base, head = repo.head(self.remote, pull.base), pull.head_sha(self.remote)
            messages = [repo.message(self.remote, c) for c in repo.commits(self.remote, base or head, head)]
            return f"{pull.title} (#{pull.number})", _squash_body(messages)
        if method == "merge":
            owner = self.repository.split("/")[0]
            return f"Merge pull request #{pull.number} from {owner}/{pull.head}", pull.title
        return "", ""

    def write_merge(
        self, pull: Pull, method: str, title: str | None, text: str | None, by: dict[str, Any]
    ) -> str:
        """The merge written in the bare repository as GitHub writes it; the pull request marked merged."""
        base, head = repo.head(self.remote, pull.base), pull.head_sha(self.remote)
        assert base is not None
        author = (by["login"], f"{by['id']}+{by['login']}@users.noreply.github.com")
        proposed = self.default_message(pull, method)
        message = f"{title or proposed[0]}\n\n{proposed[1] if text is None else text}".rstrip() + "\n"
        if method == "squash":
            sha = repo.squash(self.remote, base, head, message, author)
        elif method == "merge":
            sha = repo.merge(self.remote, base, head, message, author)
        else:
            sha = repo.rebase(self.remote, base, head)
        repo.move(self.remote, pull.base, sha, base)
        pull.finish(self.remote, merged_by=by, sha=sha)
        return sha

    # -- serving -------------------------------------------------------------------------------------------
    def start(self) -> GitHubPulls:
        self._server = serve(handler(self), "github-pulls")
        return self

    def stop(self) -> None:
        stop(self._server)


def _number(pull: Pull) -> int:
    return pull.number


def _squash_body(messages: list[str]) -> str:
    """GitHub's default squash message: one commit's body, or each commit's message as a list item."""
    if len(messages) == 1:
        return messages[0].partition("\n")[2].strip()
    return "\n\n".join(f"* {m.strip()}" for m in messages)

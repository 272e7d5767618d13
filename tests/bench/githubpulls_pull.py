"""One pull request as the stand-in keeps it, and as GitHub sends it (read live from the bare repository
while open: its head's sha, its commits, whether it still applies on base)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import githubpulls_git as repo
from bench.githubpulls_json import ASSOCIATION, WEB, Settings, node_id, now, repository


@dataclass
class Pull:
    number: int
    title: str
    body: str | None
    head: str
    base: str
    user: dict[str, Any]
    draft: bool = False
    state: str = "open"
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    closed_at: str | None = None
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    merged_by: dict[str, Any] | None = None
    frozen_head: str | None = None  # the head's sha when it was closed or merged; live while open
    checks_passed: str | None = None  # the head sha whose required checks passed
    auto_merge: dict[str, Any] | None = None  # as REST sends it; GraphQL adds when it was enabled
    auto_merge_at: str | None = None
    last_head: str = "0" * 40  # the head's sha when last seen: a deleted branch closes the pull request at it
    computed: tuple[str, str] | None = None  # base and head whose mergeability was last answered
    labels: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return node_id("PR", self.number)

    @property
    def merged(self) -> bool:
        return self.merged_at is not None

    def head_sha(self, remote: Path) -> str:
        return self.frozen_head or repo.head(remote, self.head) or self.last_head

    def touch(self) -> None:
        self.updated_at = now()

    def finish(self, remote: Path, merged_by: dict[str, Any] | None = None, sha: str | None = None) -> None:
        self.frozen_head = self.head_sha(remote)
        self.state = "closed"
        self.closed_at = now()
        self.auto_merge = self.auto_merge_at = None
        if merged_by is not None:
            self.merged_at, self.merged_by, self.merge_commit_sha = self.closed_at, merged_by, sha
        self.touch()


class Host(Protocol):
    """What of the stand-in a pull request's answers read."""

    remote: Path
    repository: str
    settings: Settings
    required_checks: list[str]
    slow_mergeability: bool

    @property
    def api_url(self) -> str: ...


@dataclass(frozen=True)
class Mergeability:
    mergeable: bool | None
    state: str  # GitHub's mergeable_state: clean, blocked, dirty, unknown


def mergeability(pull: Pull, host: Host) -> Mergeability:
    """`dirty` when head no longer applies on base; `blocked` while required checks have not passed."""
    remote, required = host.remote, host.required_checks
    if pull.state != "open":
        return Mergeability(None, "unknown")
    base, head = repo.head(remote, pull.base), repo.head(remote, pull.head)
    if base is None or head is None or repo.merged_tree(remote, base, head) is None:
        return Mergeability(False, "dirty")
    if required and pull.checks_passed != head:
        return Mergeability(True, "blocked")
    return Mergeability(True, "clean")


def render(pull: Pull, host: Host, full: bool, sent: bool = True) -> dict[str, Any]:
    """The pull request as GET /pulls/{n} sends it (`full`) or as the list does; `sent` to a client (not
    merely looked at by a test), which is what starts GitHub's background mergeability check."""
    remote, api, full_name = host.remote, host.api_url, host.repository
    url = f"{api}/repos/{full_name}"
    html = f"{WEB}/{full_name}/pull/{pull.number}"
    head = pull.head_sha(remote)
    base = repo.head(remote, pull.base) or "0" * 40
    owner = full_name.split("/", maxsplit=1)[0]
    repo_json = repository(api, full_name, host.settings, push=True, full=False)
    links = {
        "self": f"{url}/pulls/{pull.number}",
        "html": html,
        "issue": f"{url}/issues/{pull.number}",
        "comments": f"{url}/issues/{pull.number}/comments",
        "review_comments": f"{url}/pulls/{pull.number}/comments",
        "review_comment": f"{url}/pulls/comments{{/number}}",
        "commits": f"{url}/pulls/{pull.number}/commits",
        "statuses": f"{url}/statuses/{head}",
    }
    body: dict[str, Any] = {
        "url": links["self"],
        "id": 100000 + pull.number,
        "node_id": pull.node_id,
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": links["issue"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": pull.number,
        "state": pull.state,
        "locked": False,
        "title": pull.title,
        "user": pull.user,
        "body": pull.body,
        "labels": list(pull.labels),
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "closed_at": pull.closed_at,
        "merged_at": pull.merged_at,
        "merge_commit_sha": pull.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": {
            "label": f"{owner}:{pull.head}",
            "ref": pull.head,
            "sha": head,
            "user": repo_json["owner"],
            "repo": repo_json,
        },
        "base": {
            "label": f"{owner}:{pull.base}",
            "ref": pull.base,
            "sha": base,
            "user": repo_json["owner"],
            "repo": repo_json,
        },
        "_links": {name: {"href": href} for name, href in links.items()},
        "author_association": ASSOCIATION,
        "auto_merge": pull.auto_merge,
        "draft": pull.draft,
    }
    if not full:
        return body
    state = mergeability(pull, host)
    if sent and host.slow_mergeability and pull.state == "open" and pull.computed != (base, head):
        # GitHub computes mergeability in the background: the first read after a push answers null
        pull.computed, state = (base, head), Mergeability(None, "unknown")
    commits = repo.commits(remote, base, head) if pull.state == "open" else []
    additions, deletions, files = repo.diffstat(remote, base, head) if pull.state == "open" else (0, 0, 0)
    return body | {
        "merged": pull.merged,
        "mergeable": state.mergeable,
        "rebaseable": state.mergeable,
        "mergeable_state": state.state,
        "merged_by": pull.merged_by,
        "comments": len(pull.comments),
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": len(commits),
        "additions": additions,
        "deletions": deletions,
        "changed_files": files,
    }

"""The pull requests of one repository, as tagtrail uses them: list them (one request), open or edit one,
comment, label, and turn on auto-merge (GraphQL: GitHub has no REST endpoint for it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tagtrail.adapters.github._client import PERMISSIONS, Client
from tagtrail.errors import GitHubError

Method = Literal["squash", "merge", "rebase"]
PAGE = 100  # GitHub's largest page: the newest hundred pull requests, one request
_ALLOWS = {"squash": "allow_squash_merge", "merge": "allow_merge_commit", "rebase": "allow_rebase_merge"}
_SETTING = {
    "squash": "Allow squash merging",
    "merge": "Allow merge commits",
    "rebase": "Allow rebase merging",
}
_AUTO_MERGE = """
mutation($id: ID!, $method: PullRequestMergeMethod!, $headline: String, $body: String) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, commitHeadline: $headline, commitBody: $body}) {
    pullRequest { number }
  }
}
"""


@dataclass(frozen=True)
class Pull:
    """One pull request, as GitHub lists it."""

    number: int
    url: str
    node_id: str
    state: str  # open or closed
    merged: bool
    head: str  # the branch
    head_sha: str
    title: str
    body: str
    merge_commit: str | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Pull:
        head = raw.get("head") or {}
        return cls(
            number=int(raw["number"]),
            url=str(raw.get("html_url") or ""),
            node_id=str(raw.get("node_id") or ""),
            state=str(raw.get("state") or "open"),
            merged=bool(raw.get("merged_at") or raw.get("merged")),
            head=str(head.get("ref") or ""),
            head_sha=str(head.get("sha") or ""),
            title=str(raw.get("title") or ""),
            body=str(raw.get("body") or ""),
            merge_commit=raw.get("merge_commit_sha") if raw.get("merged_at") else None,
        )


class Pulls:
    """The pull requests of `client.repository` into `base`."""

    def __init__(self, client: Client, base: str) -> None:
        self.client, self.base = client, base
        self.owner = client.repository.split("/", 1)[0]

    async def listed(self) -> list[Pull]:
        """The newest pull requests into the base branch, open and closed: one request per reconcile."""
        params = {"state": "all", "base": self.base, "sort": "updated", "direction": "desc", "per_page": PAGE}
        found = await self.client.rest("GET", "/pulls", "list pull requests", params=params)
        return [Pull.of(raw) for raw in found or []]

    async def open(self, branch: str, title: str, body: str) -> Pull:
        data = {"title": title, "body": body, "head": branch, "base": self.base}
        return Pull.of(await self.client.rest("POST", "/pulls", "open a pull request", json=data))

    async def edit(self, number: int, **fields: str) -> Pull:
        """Set the title, body or state (closed) of pull request `number`."""
        found = await self.client.rest(
            "PATCH", f"/pulls/{number}", f"update pull request #{number}", json=fields
        )
        return Pull.of(found)

    async def comment(self, number: int, text: str) -> None:
        await self.client.rest(
            "POST", f"/issues/{number}/comments", f"comment on #{number}", json={"body": text}
        )

    async def label(self, number: int, labels: list[str]) -> None:
        await self.client.rest(
            "POST", f"/issues/{number}/labels", f"label #{number}", json={"labels": labels}
        )

    async def check(self, method: Method | None) -> None:
        """Refuse, before anything is pushed or proposed, where the token may not push, or (`method`: with
        auto-merge) where the repository's settings forbid what auto-merge needs."""
        repo = await self.client.rest("GET", "", "read the repository")
        where = self.client.repository
        if (repo.get("permissions") or {}).get("push") is False:
            raise GitHubError(f"the token in ${self.client.token_env} may only read {where}: {PERMISSIONS}")
        if method is None:
            return
        if repo.get("allow_auto_merge") is False:  # absent where the token may not read settings
            raise _no_auto_merge(where)
        if repo.get(_ALLOWS[method]) is False:
            raise GitHubError(
                f'{where} does not allow {method} merges: turn on "{_SETTING[method]}" in its Settings →'
                f" General → Pull Requests, or set deploy.git.pull_request.method to one it allows"
            )

    async def auto_merge(self, pull: Pull, method: Method, headline: str, body: str) -> None:
        """GitHub merges `pull` with `method` once its required checks and reviews pass, with this commit
        message (tagtrail's trailers in `body`, so the history reads the merge)."""
        variables = {"id": pull.node_id, "method": method.upper(), "headline": headline, "body": body}
        try:
            await self.client.graphql(_AUTO_MERGE, variables, f"enable auto-merge of #{pull.number}")
        except GitHubError as exc:
            if "auto merge is not allowed" in str(exc).lower():
                raise _no_auto_merge(self.client.repository) from None
            raise


def _no_auto_merge(where: str) -> GitHubError:
    return GitHubError(
        f'{where} does not allow auto-merge: turn on "Allow auto-merge" in its Settings → General →'
        " Pull Requests, or set deploy.git.pull_request.merge: off and merge by hand"
    )

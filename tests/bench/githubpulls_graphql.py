"""POST /graphql: auto-merge has no REST endpoint on GitHub, only the enablePullRequestAutoMerge and
disablePullRequestAutoMerge mutations. Documents and variables are validated against GitHub's schema, then
executed by graphql-core on that same schema, so a client gets exactly the fields it selected; errors carry
GitHub's `type` (FORBIDDEN, NOT_FOUND, UNPROCESSABLE) beside their message."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, GraphQLResolveInfo, execute_sync

from bench import githubpulls_git as repo
from bench.githubpulls_json import WEB, Reply, error, node_id, now
from bench.githubpulls_pull import Pull, mergeability
from bench.githubpulls_rest import METHODS, WRITE_REFUSED

if TYPE_CHECKING:
    from bench.githubpulls import GitHubPulls

MERGEABLE = {True: "MERGEABLE", False: "CONFLICTING", None: "UNKNOWN"}


def answer(gh: GitHubPulls, write: bool, body: bytes) -> Reply:
    try:
        data = json.loads(body)
        source, variables = data["query"], data.get("variables")
    except (ValueError, KeyError, TypeError):
        return Reply(400, error("Problems parsing JSON", "graphql", status="400"), described=False)
    document, violations = gh.description.graphql(source, variables)
    if document is None or violations:
        errors = [{"message": v.removeprefix("graphql: ")} for v in violations]
        return Reply(200, {"errors": errors}, violations=violations, described=False)
    root = _Root(gh, write)
    resolvers = {
        "enablePullRequestAutoMerge": root.enable,
        "disablePullRequestAutoMerge": root.disable,
        "repository": root.repository,
        "node": root.node,
    }
    result = execute_sync(
        gh.description.schema,
        document,
        root_value=resolvers,
        variable_values=variables,
        operation_name=data.get("operationName"),
    )
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [_github(e) for e in result.errors]
    return Reply(200, payload, described=False)


def _github(problem: GraphQLError) -> dict[str, Any]:
    """GitHub writes an error's kind as `type` beside the message, not under `extensions`."""
    shaped = dict(problem.formatted)
    extensions = shaped.pop("extensions", None) or {}
    if "type" in extensions:
        shaped["type"] = extensions["type"]
    return shaped


def _refused(message: str, kind: str) -> GraphQLError:
    return GraphQLError(message, extensions={"type": kind})


class _Root:
    def __init__(self, gh: GitHubPulls, write: bool) -> None:
        self.gh, self.write = gh, write

    def enable(self, _: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        pull = self._writable(input["pullRequestId"])
        gh = self.gh
        method = input.get("mergeMethod", "MERGE").lower()
        if not gh.settings.allow_auto_merge:
            raise _refused("Pull request Auto merge is not allowed for this repository", "UNPROCESSABLE")
        if not gh.allows(method):
            raise _refused(f"{METHODS[method]} are not allowed on this repository.", "UNPROCESSABLE")
        if pull.state != "open":
            raise _refused("Pull request is closed", "UNPROCESSABLE")
        expected = input.get("expectedHeadOid")
        if expected and expected != pull.head_sha(gh.remote):
            raise _refused("Head branch was modified. Review and try the merge again.", "UNPROCESSABLE")
        state = mergeability(pull, gh).state
        if state in ("clean", "dirty"):
            # GitHub enables auto-merge only while something is pending: a clean one is merged, not queued
            raise _refused(f"Pull request is in {state} status", "UNPROCESSABLE")
        title, text = gh.default_message(pull, method)
        pull.auto_merge = {
            "enabled_by": gh.bot,
            "merge_method": method,
            "commit_title": input.get("commitHeadline") or title,
            "commit_message": input.get("commitBody") if input.get("commitBody") is not None else text,
        }
        pull.auto_merge_at = now()
        pull.touch()
        return self._payload(input, pull)

    def disable(self, _: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        pull = self._writable(input["pullRequestId"])
        pull.auto_merge, pull.auto_merge_at = None, None
        pull.touch()
        return self._payload(input, pull)

    def repository(self, _: GraphQLResolveInfo, owner: str, name: str, **__: Any) -> dict[str, Any] | None:
        gh = self.gh
        if f"{owner}/{name}".lower() != gh.repository.lower():
            raise _refused(f"Could not resolve to a Repository with the name '{owner}/{name}'.", "NOT_FOUND")
        return {
            "__typename": "Repository",
            "id": node_id("R", 1296269),
            "nameWithOwner": gh.repository,
            "autoMergeAllowed": gh.settings.allow_auto_merge,
            "squashMergeAllowed": gh.settings.allow_squash_merge,
            "mergeCommitAllowed": gh.settings.allow_merge_commit,
            "rebaseMergeAllowed": gh.settings.allow_rebase_merge,
            "pullRequest": lambda _info, number: self._node(gh.find(number)),
        }

    def node(self, _: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
        return self._node(self._by_id(id))

    def _writable(self, ident: str) -> Pull:
        if not self.write:
            raise _refused(WRITE_REFUSED, "FORBIDDEN")
        pull = self._by_id(ident)
        if pull is None:
            raise _refused(f"Could not resolve to a node with the global id of '{ident}'", "NOT_FOUND")
        return pull

    def _by_id(self, ident: str) -> Pull | None:
        return next((p for p in self.gh.all_pulls() if p.node_id == ident), None)

    def _payload(self, input: dict[str, Any], pull: Pull) -> dict[str, Any]:
        actor = {"__typename": "User", "login": self.gh.bot["login"], "url": self.gh.bot["html_url"]}
        return {
            "clientMutationId": input.get("clientMutationId"),
            "actor": actor,
            "pullRequest": self._node(pull),
        }

    def _node(self, pull: Pull | None) -> dict[str, Any] | None:
        if pull is None:
            return None
        gh = self.gh
        state = mergeability(pull, gh)
        auto = pull.auto_merge
        node: dict[str, Any] = {
            "__typename": "PullRequest",
            "id": pull.node_id,
            "number": pull.number,
            "title": pull.title,
            "body": pull.body or "",
            "url": f"{WEB}/{gh.repository}/pull/{pull.number}",
            "state": "MERGED" if pull.merged else pull.state.upper(),
            "closed": pull.state == "closed",
            "merged": pull.merged,
            "mergeable": MERGEABLE[state.mergeable],
            "mergeStateStatus": state.state.upper(),
            "headRefName": pull.head,
            "headRefOid": pull.head_sha(gh.remote),
            "baseRefName": pull.base,
            "baseRefOid": repo.head(gh.remote, pull.base),
            "isDraft": pull.draft,
            "databaseId": 100000 + pull.number,
            "createdAt": pull.created_at,
            "updatedAt": pull.updated_at,
            "closedAt": pull.closed_at,
            "mergedAt": pull.merged_at,
            "mergeCommit": {"oid": pull.merge_commit_sha} if pull.merge_commit_sha else None,
        }
        node["autoMergeRequest"] = auto and {
            "mergeMethod": auto["merge_method"].upper(),
            "commitHeadline": auto["commit_title"],
            "commitBody": auto["commit_message"],
            "enabledAt": pull.auto_merge_at,
            "enabledBy": {"__typename": "User", "login": auto["enabled_by"]["login"]},
            "authorEmail": None,
            "pullRequest": node,
        }
        return node

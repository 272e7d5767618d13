"""The REST endpoints, answered as GitHub answers them (its status codes, messages and error shapes)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from bench import githubpulls_git as repo
from bench.githubpulls_json import Reply, comment, error, label, repository
from bench.githubpulls_pull import Pull, mergeability

if TYPE_CHECKING:
    from bench.githubpulls import GitHubPulls
WRITE_REFUSED = "Resource not accessible by personal access token"
_NUMBER = r"(?P<number>[0-9]+)"
_PULLS, _ISSUES = "pulls/pulls", "issues"
ROUTES: list[tuple[str, str, str, str]] = [  # method, path after the repository's, handler, GitHub's docs
    ("GET", r"", "get_repository", "repos/repos#get-a-repository"),
    ("GET", r"/pulls", "list_pulls", f"{_PULLS}#list-pull-requests"),
    ("POST", r"/pulls", "create_pull", f"{_PULLS}#create-a-pull-request"),
    ("GET", rf"/pulls/{_NUMBER}", "get_pull", f"{_PULLS}#get-a-pull-request"),
    ("PATCH", rf"/pulls/{_NUMBER}", "update_pull", f"{_PULLS}#update-a-pull-request"),
    ("PUT", rf"/pulls/{_NUMBER}/merge", "merge_pull", f"{_PULLS}#merge-a-pull-request"),
    ("POST", rf"/issues/{_NUMBER}/comments", "comment", f"{_ISSUES}/comments#create-an-issue-comment"),
    ("POST", rf"/issues/{_NUMBER}/labels", "add_labels", f"{_ISSUES}/labels#add-labels-to-an-issue"),
    ("GET", r"/branches/(?P<branch>.+)/protection", "protection", "branches/branch-protection"),
]
METHODS = {"squash": "Squash merges", "merge": "Merge commits", "rebase": "Rebase merges"}


def answer(gh: GitHubPulls, method: str, path: str, query: dict[str, str], write: bool, body: bytes) -> Reply:
    prefix = re.escape(f"/repos/{gh.repository}")
    for verb, pattern, name, doc in ROUTES:
        match = re.fullmatch(prefix + pattern, path) if verb == method else None
        if match is None:
            continue
        if method != "GET" and not write:
            return Reply(403, error(WRITE_REFUSED, doc, status="403"))
        try:
            json.loads(body or b"null")
        except ValueError:
            problem = f"{method} {path} request: the body is not JSON"
            return Reply(400, error("Problems parsing JSON", doc, status="400"), violations=[problem])
        violations = gh.description.request(method, path, query, body)
        if violations:
            return Reply(
                422, error(_invalid_request(violations[0]), doc, status="422"), violations=violations
            )
        call = Call(gh, match.groupdict(), query, json.loads(body) if body else None, doc, write)
        if "number" in call.args:
            found = gh.find(int(call.args["number"]))
            if found is None:
                return Reply(404, error("Not Found", doc, status="404"))
            call.pull = found
        handle: Callable[[Call], Reply] = globals()["_" + name]
        return handle(call)
    # GitHub would not answer 404 to most of these: a client that calls them must learn the stand-in lacks them
    unserved = (
        f"{method} {path}: not served by the stand-in (its routes are in tests/bench/githubpulls_rest.py)"
    )
    not_found = error("Not Found", "repos/repos#get-a-repository", status="404")
    return Reply(404, not_found, violations=[unserved], described=False)


def _invalid_request(violation: str) -> str:
    """GitHub's words for a body its schema refuses: `"head" wasn't supplied.` for a missing field."""
    reason = violation.split(": ", 1)[1]
    missing = re.match(r"'([^']+)' is a required property", reason)
    return "Invalid request.\n\n" + (f'"{missing[1]}" wasn\'t supplied.' if missing else reason)


@dataclass
class Call:
    """One routed request: the path's parts, the query, the parsed body, and the pull request it names."""

    gh: GitHubPulls
    args: dict[str, str]
    query: dict[str, str]
    data: Any
    doc: str
    write: bool  # the token may write (gh.token), not only read (gh.weak_token)
    pull: Pull = field(init=False)

    def invalid(self, code: str, message: str | None = None, field: str | None = None) -> Reply:
        """422 "Validation Failed" with one error, GitHub's shape for a request it understood but refuses."""
        detail = {"resource": "PullRequest", "code": code}
        detail |= {"field": field} if field else {}
        detail |= {"message": message} if message else {}
        return Reply(422, error("Validation Failed", self.doc, errors=[detail], status="422"))

    def already_exists(self, head: str, base: str) -> Reply | None:
        gh = self.gh
        if any(p.state == "open" and p.head == head and p.base == base for p in gh.all_pulls()):
            return self.invalid("custom", f"A pull request already exists for {gh.owner}:{head}.")
        return None


def _get_repository(call: Call) -> Reply:
    """`permissions` as the token has them: the weak token pulls only, as a read-only token's do."""
    gh = call.gh
    return Reply(200, repository(gh.api_url, gh.repository, gh.settings, push=call.write, full=True))


def _list_pulls(call: Call) -> Reply:
    gh, query = call.gh, call.query
    state = query.get("state", "open")
    chosen = [
        pull
        for pull in sorted(gh.all_pulls(), key=lambda p: p.number, reverse=True)
        if state in ("all", pull.state)
        and query.get("head", f"{gh.owner}:{pull.head}") == f"{gh.owner}:{pull.head}"
        and query.get("base", pull.base) == pull.base
    ]
    per_page, page = min(int(query.get("per_page", 30)), 100), int(query.get("page", 1))
    shown = chosen[(page - 1) * per_page : page * per_page]
    reply = Reply(200, [gh.render(pull, full=False) for pull in shown])
    if page * per_page < len(chosen):
        more = urlencode(query | {"page": page + 1, "per_page": per_page})
        reply.headers["link"] = f'<{gh.api_url}/repos/{gh.repository}/pulls?{more}>; rel="next"'
    return reply


def _create_pull(call: Call) -> Reply:
    gh, data = call.gh, call.data
    head_ref, base_ref = data["head"].removeprefix(f"{gh.owner}:"), data["base"]
    head, base = repo.head(gh.remote, head_ref), repo.head(gh.remote, base_ref)
    if head is None or base is None:
        return call.invalid("invalid", field="head" if head is None else "base")
    if refused := call.already_exists(head_ref, base_ref):
        return refused
    if not repo.commits(gh.remote, base, head):
        return call.invalid("custom", f"No commits between {base_ref} and {head_ref}")
    pull = gh.add_pull(data.get("title", ""), data.get("body"), head_ref, base_ref, bool(data.get("draft")))
    reply = Reply(201, gh.render(pull, full=True))
    reply.headers["location"] = reply.payload["url"]
    return reply


def _get_pull(call: Call) -> Reply:
    return Reply(200, call.gh.render(call.pull, full=True))


def _update_pull(call: Call) -> Reply:
    gh, pull, data = call.gh, call.pull, call.data
    if data.get("state") == "open" and pull.state == "closed":
        if pull.merged:
            return call.invalid(
                "custom", "state cannot be changed. The pull request cannot be reopened.", "state"
            )
        if refused := call.already_exists(pull.head, pull.base):
            return refused
        pull.state, pull.closed_at, pull.frozen_head = "open", None, None
    elif data.get("state") == "closed" and pull.state == "open":
        pull.finish(gh.remote)
    pull.title = data.get("title", pull.title)
    pull.body = data.get("body", pull.body)
    pull.touch()
    return Reply(200, gh.render(pull, full=True))


def _merge_pull(call: Call) -> Reply:
    gh, pull, data = call.gh, call.pull, call.data or {}
    method = data.get("merge_method", "merge")
    refusal = refuse_merge(gh, pull, method)
    if refusal:
        return Reply(405, error(refusal, call.doc, status="405"))
    if data.get("sha") not in (None, pull.head_sha(gh.remote)):
        modified = "Head branch was modified. Review and try the merge again."
        return Reply(409, error(modified, call.doc, status="409"))
    sha = gh.write_merge(pull, method, data.get("commit_title"), data.get("commit_message"), gh.bot)
    return Reply(200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"})


def refuse_merge(gh: GitHubPulls, pull: Pull, method: str) -> str | None:
    """Why GitHub would not merge `pull` with `method` now, or None."""
    if not gh.allows(method):
        return f"{METHODS[method]} are not allowed on this repository."
    state = mergeability(pull, gh).state
    if pull.state != "open" or state == "dirty":
        return "Pull Request is not mergeable"
    if state == "blocked":
        return f'Required status check "{gh.required_checks[0]}" is expected.'
    return None


def _comment(call: Call) -> Reply:
    gh, pull = call.gh, call.pull
    made = comment(gh.api_url, gh.repository, pull.number, gh.next_id(), call.data["body"], gh.bot)
    pull.comments.append(made)
    return Reply(201, made, {"location": made["url"]})


def _add_labels(call: Call) -> Reply:
    gh, pull, data = call.gh, call.pull, call.data
    for item in data.get("labels", []) if isinstance(data, dict) else data:
        name = item["name"] if isinstance(item, dict) else item
        if name not in [existing["name"] for existing in pull.labels]:
            number = gh.labels_made.setdefault(name, 700000 + len(gh.labels_made))
            pull.labels.append(label(gh.api_url, gh.repository, name, number))
    pull.touch()
    return Reply(200, list(pull.labels))


def _protection(call: Call) -> Reply:
    """GitHub asks for the Administration permission here, which a token for contents and pull requests
    lacks: a client learns of protection from a refused push, not from this endpoint."""
    return Reply(403, error(WRITE_REFUSED, call.doc, status="403"))

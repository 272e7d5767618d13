"""The JSON bodies GitHub sends for the stand-in's objects: users, the repository, pull requests, labels,
comments. Every field the description requires is here, with the values GitHub would send; the check in
githubpulls_check.py proves it for each response."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

WEB = "https://github.com"
DOCS = "https://docs.github.com/rest"
ASSOCIATION = "COLLABORATOR"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, number: int) -> str:
    """GitHub's global ids are opaque; these keep the kind's prefix as GitHub's do (PR_, R_, U_)."""
    return f"{kind}_kwDO" + base64.b64encode(f"{kind}{number:08d}".encode()).decode().rstrip("=")


def user(api: str, login: str, number: int) -> dict[str, Any]:
    url = f"{api}/users/{login}"
    return {
        "login": login,
        "id": number,
        "node_id": node_id("U", number),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": "User" if number > 1 else "Organization",
        "user_view_type": "public",
        "site_admin": False,
    }


# The repository's URL fields: name → suffix after the repository's API URL ("" is the URL itself).
_REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


@dataclass
class Settings:
    """What a repository's settings page holds, as far as pull requests care."""

    allow_auto_merge: bool = True
    allow_squash_merge: bool = True
    allow_merge_commit: bool = True
    allow_rebase_merge: bool = True
    default_branch: str = "main"
    created_at: str = field(default_factory=now)


def repository(api: str, full_name: str, settings: Settings, push: bool, full: bool) -> dict[str, Any]:
    """`repository` as in a pull request's head and base; `full` adds what GET /repos/{owner}/{repo} sends."""
    owner, name = full_name.split("/")
    url = f"{api}/repos/{full_name}"
    body: dict[str, Any] = {
        "id": 1296269,
        "node_id": node_id("R", 1296269),
        "name": name,
        "full_name": full_name,
        "owner": user(api, owner, 1),
        "private": True,
        "html_url": f"{WEB}/{full_name}",
        "description": None,
        "fork": False,
        "url": url,
        **{key: url + suffix for key, suffix in _REPO_URLS.items()},
        "git_url": f"git://github.com/{full_name}.git",
        "ssh_url": f"git@github.com:{full_name}.git",
        "clone_url": f"{WEB}/{full_name}.git",
        "svn_url": f"{WEB}/{full_name}",
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 1,
        "default_branch": settings.default_branch,
        "open_issues_count": 0,
        "open_issues": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private",
        "license": None,
        "pushed_at": settings.created_at,
        "created_at": settings.created_at,
        "updated_at": settings.created_at,
        "allow_forking": False,
        "web_commit_signoff_required": False,
    }
    if full:
        body |= {
            "permissions": {"admin": False, "maintain": False, "push": push, "triage": push, "pull": True},
            "allow_auto_merge": settings.allow_auto_merge,
            "allow_squash_merge": settings.allow_squash_merge,
            "allow_merge_commit": settings.allow_merge_commit,
            "allow_rebase_merge": settings.allow_rebase_merge,
            "allow_update_branch": True,
            "delete_branch_on_merge": False,
            "use_squash_pr_title_as_default": True,
            "squash_merge_commit_title": "PR_TITLE",
            "squash_merge_commit_message": "COMMIT_MESSAGES",
            "merge_commit_title": "MERGE_MESSAGE",
            "merge_commit_message": "PR_TITLE",
            "network_count": 0,
            "subscribers_count": 1,
        }
    return body


def label(api: str, full_name: str, name: str, number: int) -> dict[str, Any]:
    return {
        "id": number,
        "node_id": node_id("LA", number),
        "url": f"{api}/repos/{full_name}/labels/{name}",
        "name": name,
        "description": "",  # pull-request-simple lists labels whose description is a string, not null
        "color": "ededed",
        "default": False,
    }


def comment(
    api: str, full_name: str, issue: int, number: int, body: str, author: dict[str, Any]
) -> dict[str, Any]:
    stamp = now()
    return {
        "id": number,
        "node_id": node_id("IC", number),
        "url": f"{api}/repos/{full_name}/issues/comments/{number}",
        "html_url": f"{WEB}/{full_name}/pull/{issue}#issuecomment-{number}",
        "issue_url": f"{api}/repos/{full_name}/issues/{issue}",
        "body": body,
        "user": author,
        "created_at": stamp,
        "updated_at": stamp,
        "author_association": ASSOCIATION,
    }


@dataclass
class Reply:
    """One answer: its status, its JSON body, its headers, and what in the exchange broke the description."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    described: bool = True  # a REST path of the description: the answer is checked against it


@dataclass
class Exchange:
    """One request and the stand-in's answer, bodies parsed where they are JSON."""

    method: str
    path: str
    query: dict[str, str]
    request: Any
    status: int
    response: Any
    violations: list[str] = field(default_factory=list)


def error(message: str, doc: str, **extra: Any) -> dict[str, Any]:
    """GitHub's error body: a message, a link to the docs, and the status as a string."""
    return {"message": message, "documentation_url": f"{DOCS}/{doc}", **extra}

"""Helpers for tests that drive the GitHub stand-in (tests/bench/githubpulls.py) as tagtrail does: branches
pushed with plain git to its bare repository, pull requests opened through its API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bench.git import commit, git

PULLS = "/repos/acme/homelab/pulls"
AUTO_MERGE = """
mutation($id: ID!, $method: PullRequestMergeMethod, $headline: String) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, commitHeadline: $headline}) {
    pullRequest { number autoMergeRequest { mergeMethod commitHeadline } }
  }
}"""


def push_branch(clone: Path, branch: str, *changes: dict[str, str]) -> str:
    """`branch` from origin's main with one commit per change, pushed (replacing what was there)."""
    git(clone, "fetch", "-q", "origin")
    git(clone, "checkout", "-q", "-B", branch, "origin/main")
    for number, files in enumerate(changes, 1):
        commit(clone, files, f"deploy {branch} step {number}\n\nTagtrail-App: web\nTagtrail-To: v{number}")
    git(clone, "push", "-q", "--force", "origin", f"{branch}:{branch}")
    return git(clone, "rev-parse", "HEAD")


def open_pull(api: httpx.Client, branch: str, title: str = "Deploy web") -> dict[str, Any]:
    answer = api.post(PULLS, json={"title": title, "head": f"acme:{branch}", "base": "main", "body": "b"})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def web_pull(api: httpx.Client, clone: Path) -> dict[str, Any]:
    """tagtrail's branch for the app web, pushed with one deploy commit, and its pull request opened."""
    push_branch(clone, "tagtrail/prod/web", {"apps.yaml": "web: v1\n"})
    return open_pull(api, "tagtrail/prod/web")


def mergeable(api: httpx.Client, number: int) -> tuple[bool | None, str]:
    """GET /pulls/{n}'s `mergeable` and `mergeable_state`."""
    pull = api.get(f"{PULLS}/{number}").json()
    return pull["mergeable"], pull["mergeable_state"]

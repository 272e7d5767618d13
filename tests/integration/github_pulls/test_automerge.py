"""The GitHub stand-in's auto-merge: GitHub has no REST endpoint for it, only GraphQL mutations, whose
documents are held against GitHub's schema; it merges when the required checks pass, and is refused as
GitHub refuses it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bench.git import git
from bench.githubpulls import GitHubPulls
from bench.githubpulls_client import AUTO_MERGE, PULLS, web_pull


def test_auto_merge_merges_once_checks_pass(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    pull = web_pull(api, clone)
    variables = {"id": pull["node_id"], "method": "SQUASH", "headline": "Deploy web v1"}

    enabled = api.post("/graphql", json={"query": AUTO_MERGE, "variables": variables}).json()

    assert enabled == {
        "data": {
            "enablePullRequestAutoMerge": {
                "pullRequest": {
                    "number": pull["number"],
                    "autoMergeRequest": {"mergeMethod": "SQUASH", "commitHeadline": "Deploy web v1"},
                }
            }
        }
    }
    assert api.get(f"{PULLS}/{pull['number']}").json()["auto_merge"]["merge_method"] == "squash"
    github_pulls.checks_pass(pull["number"])
    merged = api.get(f"{PULLS}/{pull['number']}").json()
    assert merged["merged"] is True
    assert git(github_pulls.remote, "log", "-1", "--format=%s", "main") == "Deploy web v1"


def test_auto_merge_disabled_waits_for_a_person(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    pull = web_pull(api, clone)
    variables = {"id": pull["node_id"], "method": "SQUASH"}
    api.post("/graphql", json={"query": AUTO_MERGE, "variables": variables}).raise_for_status()
    disable = (
        "mutation($id: ID!) { disablePullRequestAutoMerge(input: {pullRequestId: $id}) { clientMutationId } }"
    )

    api.post("/graphql", json={"query": disable, "variables": {"id": pull["node_id"]}}).raise_for_status()
    github_pulls.checks_pass(pull["number"])

    after = api.get(f"{PULLS}/{pull['number']}").json()
    assert (after["state"], after["auto_merge"], after["mergeable_state"]) == ("open", None, "clean")


@pytest.mark.parametrize(
    ("setting", "kind", "message"),
    [
        ("auto-merge off", "UNPROCESSABLE", "Pull request Auto merge is not allowed for this repository"),
        ("read-only token", "FORBIDDEN", "Resource not accessible by personal access token"),
        ("checks passed", "UNPROCESSABLE", "Pull request is in clean status"),
        ("no squash", "UNPROCESSABLE", "Squash merges are not allowed on this repository."),
    ],
)
def test_auto_merge_is_refused_as_github_refuses_it(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path, setting: str, kind: str, message: str
) -> None:
    pull = web_pull(api, clone)
    token = github_pulls.token
    if setting == "auto-merge off":
        github_pulls.allow_auto_merge = False
        assert api.get("/repos/acme/homelab").json()["allow_auto_merge"] is False
    elif setting == "read-only token":
        token = github_pulls.weak_token
    elif setting == "checks passed":
        github_pulls.checks_pass(pull["number"])  # nothing left to wait for: GitHub merges, not queues
    else:
        github_pulls.allow_squash_merge = False
    query = {"query": AUTO_MERGE, "variables": {"id": pull["node_id"], "method": "SQUASH"}}

    answer = api.post("/graphql", json=query, headers={"Authorization": f"bearer {token}"}).json()

    assert answer["data"] == {"enablePullRequestAutoMerge": None}
    [problem] = answer["errors"]
    assert (problem["type"], problem["message"]) == (kind, message)
    assert problem["path"] == ["enablePullRequestAutoMerge"]


def test_a_graphql_document_that_breaks_the_schema_is_a_violation(
    github_pulls: GitHubPulls, api: httpx.Client
) -> None:
    query = "mutation { enablePullRequestAutoMerge(input: {mergeMethod: SQUASH}) { clientMutationId } }"

    answer = api.post("/graphql", json={"query": query}).json()

    expected = (
        "Field 'EnablePullRequestAutoMergeInput.pullRequestId' of required type 'ID!' was not provided."
    )
    assert answer == {"errors": [{"message": expected}]}
    assert github_pulls.violations == [f"graphql: {expected}"]
    github_pulls.violations.clear()


def test_a_pull_request_is_read_through_graphql_as_enabled(api: httpx.Client, clone: Path) -> None:
    pull = web_pull(api, clone)
    api.post("/graphql", json={"query": AUTO_MERGE, "variables": {"id": pull["node_id"], "method": "REBASE"}})
    query = """query($number: Int!) { repository(owner: "acme", name: "homelab") {
        autoMergeAllowed
        pullRequest(number: $number) { id isDraft mergeStateStatus mergeable autoMergeRequest { mergeMethod } }
    } }"""

    answer = api.post("/api/graphql", json={"query": query, "variables": {"number": pull["number"]}}).json()

    assert answer == {
        "data": {
            "repository": {
                "autoMergeAllowed": True,
                "pullRequest": {
                    "id": pull["node_id"],
                    "isDraft": False,
                    "mergeStateStatus": "BLOCKED",
                    "mergeable": "MERGEABLE",
                    "autoMergeRequest": {"mergeMethod": "REBASE"},
                },
            }
        }
    }

"""The GitHub pull-request stand-in (tests/bench/githubpulls.py) answers as GitHub does: its check against
GitHub's own description is real, and it enforces what GitHub enforces that tagtrail's pull requests meet."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.git import commit, git
from bench.githubpulls import GitHubPulls
from bench.githubpulls_check import Description

PULLS = "/repos/acme/homelab/pulls"
AUTO_MERGE = """
mutation($id: ID!, $method: PullRequestMergeMethod, $headline: String) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, commitHeadline: $headline}) {
    pullRequest { number autoMergeRequest { mergeMethod commitHeadline } }
  }
}"""


@pytest.fixture
def api(github_pulls: GitHubPulls) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {github_pulls.token}", "Accept": "application/vnd.github+json"}
    with httpx.Client(base_url=github_pulls.api_url, headers=headers) as client:
        yield client


@pytest.fixture
def clone(github_pulls: GitHubPulls, tmp_path: Path) -> Path:
    """A clone whose origin is the stand-in's bare repository, as tagtrail's work copy is."""
    git(tmp_path, "clone", "-q", str(github_pulls.remote), "clone")
    return tmp_path / "clone"


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


def test_a_request_that_breaks_the_description_is_answered_422_and_recorded(
    github_pulls: GitHubPulls, api: httpx.Client
) -> None:
    answer = api.post(PULLS, json={"title": "Deploy web", "base": "main"})

    assert answer.status_code == 422
    assert answer.json()["message"] == 'Invalid request.\n\n"head" wasn\'t supplied.'
    assert github_pulls.violations == [
        "POST /repos/acme/homelab/pulls request: 'head' is a required property at /"
    ]
    github_pulls.violations.clear()  # seen: the fixture's teardown would fail the test on it


def test_a_response_out_of_shape_is_caught(
    github_pulls: GitHubPulls, github_openapi: Description, api: httpx.Client, clone: Path
) -> None:
    pull = web_pull(api, clone)
    assert github_openapi.response("GET", f"{PULLS}/1", {}, _json(pull), 200, {}) == []

    del pull["head"]
    pull["state"] = "merged"  # GitHub says "closed" and merged: true

    [violation] = github_openapi.response("GET", f"{PULLS}/1", {}, _json(pull), 200, {})
    assert violation.startswith(f"GET {PULLS}/1 response 200: ")
    assert "'head' is a required property" in violation
    assert "'merged' is not one of ['open', 'closed'] at /state" in violation


def test_one_open_pull_request_per_head_branch(api: httpx.Client, clone: Path) -> None:
    first = web_pull(api, clone)

    again = api.post(PULLS, json={"title": "Deploy web again", "head": "tagtrail/prod/web", "base": "main"})

    assert again.status_code == 422
    assert again.json()["errors"][0]["message"] == "A pull request already exists for acme:tagtrail/prod/web."
    listed = api.get(PULLS, params={"head": "acme:tagtrail/prod/web", "state": "open"}).json()
    assert [p["number"] for p in listed] == [first["number"]]


def test_a_newer_push_updates_the_open_pull_request(api: httpx.Client, clone: Path) -> None:
    number = web_pull(api, clone)["number"]

    newer = push_branch(clone, "tagtrail/prod/web", {"apps.yaml": "web: v2\n"})

    pull = api.get(f"{PULLS}/{number}").json()
    assert pull["head"]["sha"] == newer
    assert (pull["commits"], pull["changed_files"]) == (1, 1)


def test_mergeability_follows_the_base_branch(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    number = web_pull(api, clone)["number"]
    assert _mergeable(api, number) == (True, "blocked")  # the required check "ci" has not passed yet

    github_pulls.advance_base("docs.md", "unrelated\n", "docs")
    assert _mergeable(api, number) == (True, "blocked")

    github_pulls.advance_base("apps.yaml", "web: v0-hotfix\n", "a person's hotfix")
    assert _mergeable(api, number) == (False, "dirty")
    refused = api.put(f"{PULLS}/{number}/merge", json={"merge_method": "squash"})
    assert (refused.status_code, refused.json()["message"]) == (405, "Pull Request is not mergeable")

    push_branch(clone, "tagtrail/prod/web", {"apps.yaml": "web: v1\n"})  # rebuilt on the new head
    github_pulls.checks_pass(number)
    assert _mergeable(api, number) == (True, "clean")


def test_mergeability_can_be_computed_in_the_background_as_on_github(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    github_pulls.slow_mergeability = True
    created = web_pull(api, clone)
    assert (created["mergeable"], created["mergeable_state"]) == (None, "unknown")
    assert _mergeable(api, created["number"]) == (True, "blocked")

    github_pulls.advance_base("apps.yaml", "web: v0-hotfix\n", "a person's hotfix")

    assert _mergeable(api, created["number"]) == (None, "unknown")
    assert _mergeable(api, created["number"]) == (False, "dirty")


@pytest.mark.parametrize("method", ["squash", "merge", "rebase"])
def test_a_persons_merge_leaves_the_commits_github_leaves(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path, method: str
) -> None:
    head = push_branch(clone, "tagtrail/prod/web", {"apps.yaml": "web: v1\n"}, {"apps.yaml": "web: v2\n"})
    number = open_pull(api, "tagtrail/prod/web", title="Deploy web v2")["number"]
    base = github_pulls.advance_base("docs.md", "unrelated\n", "docs")

    sha = github_pulls.merge(number, method=method)

    pull = api.get(f"{PULLS}/{number}").json()
    assert (pull["state"], pull["merged"], pull["merge_commit_sha"]) == ("closed", True, sha)
    assert pull["merged_by"]["login"] == "alice"
    remote = github_pulls.remote
    assert git(remote, "rev-parse", "main") == sha
    parents = git(remote, "log", "-1", "--format=%P", sha).split()
    message = git(remote, "log", "-1", "--format=%B", sha)
    if method == "squash":
        assert parents == [base]
        assert message.startswith(f"Deploy web v2 (#{number})\n\n* deploy tagtrail/prod/web step 1")
        trailers = git(remote, "log", "-1", "--format=%(trailers:key=Tagtrail-To,valueonly)", sha)
        assert trailers.split() == ["v2"]  # the last commit's trailers stay trailers
    elif method == "merge":
        assert parents == [base, head]
        assert message == f"Merge pull request #{number} from acme/tagtrail/prod/web\n\nDeploy web v2"
    else:
        replayed = git(remote, "log", "--format=%s%x09%an", f"{base}..{sha}").splitlines()
        assert replayed == [
            "deploy tagtrail/prod/web step 2\tTest Author",
            "deploy tagtrail/prod/web step 1\tTest Author",
        ]
        assert git(remote, "log", "-1", "--format=%cn", sha) == "GitHub"
    assert git(remote, "show", f"{sha}:apps.yaml") == "web: v2"


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


def test_deleting_the_head_branch_closes_the_pull_request(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    pull = web_pull(api, clone)

    git(clone, "push", "-q", "origin", "--delete", "tagtrail/prod/web")

    after = api.get(f"{PULLS}/{pull['number']}").json()
    assert (after["state"], after["merged"], after["head"]["sha"]) == ("closed", False, pull["head"]["sha"])


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


def test_every_endpoint_answers_in_the_shape_github_describes(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    """The fixture's teardown fails this test if any answer below broke the description."""
    head = push_branch(clone, "tagtrail/prod/web", {"apps.yaml": "web: v1\n"})
    number = open_pull(api, "tagtrail/prod/web")["number"]
    ghes = "/api/v3/repos/acme/homelab"

    edited = api.patch(f"{ghes}/pulls/{number}", json={"title": "Deploy web v1", "body": "why"}).json()
    comment = api.post(f"{ghes}/issues/{number}/comments", json={"body": "superseded by #2"})
    labels = api.post(f"{ghes}/issues/{number}/labels", json={"labels": ["deploy", "web"]}).json()
    protection = api.get(f"{ghes}/branches/main/protection")
    blocked = api.put(f"{ghes}/pulls/{number}/merge", json={"merge_method": "squash"})
    github_pulls.checks_pass(number)
    stale = api.put(f"{ghes}/pulls/{number}/merge", json={"merge_method": "squash", "sha": "0" * 40})
    merged = api.put(f"{ghes}/pulls/{number}/merge", json={"merge_method": "squash", "sha": head})
    closed = api.patch(f"{ghes}/pulls/{number}", json={"state": "open"})

    assert (edited["title"], edited["body"]) == ("Deploy web v1", "why")
    assert comment.status_code == 201
    assert comment.headers["location"] == comment.json()["url"]
    assert github_pulls.comments(number) == ["superseded by #2"]
    assert [label["name"] for label in labels] == github_pulls.labels(number) == ["deploy", "web"]
    assert protection.status_code == 403  # GitHub asks for Administration, which this token lacks
    assert (blocked.status_code, blocked.json()["message"]) == (
        405,
        'Required status check "ci" is expected.',
    )
    assert stale.status_code == 409
    assert merged.json()["merged"] is True
    assert closed.json()["errors"][0]["message"].startswith("state cannot be changed")
    assert [e.status for e in github_pulls.exchanges] == [201, 200, 201, 200, 403, 405, 409, 200, 422]
    assert github_pulls.pulls[0]["merge_commit_sha"] == merged.json()["sha"]


def test_a_closed_pull_request_stays_closed_and_frees_its_branch(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    first = web_pull(api, clone)["number"]

    github_pulls.close(first)
    second = open_pull(api, "tagtrail/prod/web")["number"]

    closed = api.get(PULLS, params={"state": "closed", "head": "acme:tagtrail/prod/web"}).json()
    assert [(p["number"], p["merged_at"]) for p in closed] == [(first, None)]
    reopen = api.patch(f"{PULLS}/{first}", json={"state": "open"})
    assert (
        reopen.json()["errors"][0]["message"] == "A pull request already exists for acme:tagtrail/prod/web."
    )
    assert [p["number"] for p in api.get(PULLS).json()] == [second]


def test_tokens_bad_and_read_only(github_pulls: GitHubPulls, clone: Path) -> None:
    push_branch(clone, "tagtrail/prod/web", {"apps.yaml": "web: v1\n"})
    body = {"title": "Deploy web", "head": "tagtrail/prod/web", "base": "main"}
    with httpx.Client(base_url=github_pulls.api_url) as client:
        bad = client.post(PULLS, json=body, headers={"Authorization": "Bearer nope"})
        weak = client.post(PULLS, json=body, headers={"Authorization": f"token {github_pulls.weak_token}"})
        read = client.get(
            "/repos/acme/homelab", headers={"Authorization": f"token {github_pulls.weak_token}"}
        )

    assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
    assert (weak.status_code, weak.json()["message"]) == (
        403,
        "Resource not accessible by personal access token",
    )
    assert read.status_code == 200


def test_rate_limits_answer_as_github_does(github_pulls: GitHubPulls, api: httpx.Client) -> None:
    assert api.get("/repos/acme/homelab").headers["x-ratelimit-remaining"] == "4999"
    github_pulls.rate_limit(after=1, reset_in=600)
    assert api.get("/repos/acme/homelab").status_code == 200

    primary = api.get("/repos/acme/homelab")

    assert primary.status_code == 403
    assert primary.headers["x-ratelimit-remaining"] == "0"
    assert primary.headers["x-ratelimit-reset"] == str(github_pulls.limit and github_pulls.limit.reset_at)
    assert primary.json()["message"].startswith("API rate limit exceeded")

    github_pulls.rate_limit(after=0, reset_in=30, status=429)
    secondary = api.get("/api/v3/repos/acme/homelab")
    assert (secondary.status_code, secondary.headers["retry-after"]) in ((429, "30"), (429, "29"))


def test_a_protected_branch_refuses_pushes_in_githubs_words(github_pulls: GitHubPulls, clone: Path) -> None:
    github_pulls.protect_branch("main")
    before = git(github_pulls.remote, "rev-parse", "main")
    commit(clone, {"apps.yaml": "web: v9\n"}, "straight to main")

    refused = subprocess.run(
        ["git", "push", "origin", "HEAD:main"], check=False, cwd=clone, capture_output=True, text=True
    )

    assert refused.returncode != 0
    assert "! [remote rejected] HEAD -> main (protected branch hook declined)" in refused.stderr
    assert "GH006: Protected branch update failed for refs/heads/main." in refused.stderr
    assert git(github_pulls.remote, "rev-parse", "main") == before
    pushed = push_branch(
        clone, "tagtrail/prod/web", {"apps.yaml": "web: v1\n"}
    )  # its own branch: not protected
    assert git(github_pulls.remote, "rev-parse", "tagtrail/prod/web") == pushed


def _mergeable(api: httpx.Client, number: int) -> tuple[bool | None, str]:
    pull = api.get(f"{PULLS}/{number}").json()
    return pull["mergeable"], pull["mergeable_state"]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()

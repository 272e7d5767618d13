"""The GitHub pull-request stand-in (tests/bench/githubpulls.py) answers as GitHub's REST API does: its
check against GitHub's own description is real, and it enforces what GitHub enforces that tagtrail's pull
requests meet (one per head branch, mergeability after base moved, merges as GitHub writes them, tokens,
rate limits, protected branches)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from bench.git import commit, git
from bench.githubpulls import GitHubPulls
from bench.githubpulls_check import Description
from bench.githubpulls_client import PULLS, mergeable, open_pull, push_branch, web_pull


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


def test_a_body_that_is_not_json_is_answered_400(github_pulls: GitHubPulls, api: httpx.Client) -> None:
    answer = api.post(PULLS, content=b'{"title": "Deploy web",', headers={"Content-Type": "application/json"})

    assert (answer.status_code, answer.json()["message"]) == (400, "Problems parsing JSON")
    assert github_pulls.violations == [f"POST {PULLS} request: the body is not JSON"]
    github_pulls.violations.clear()


def test_a_response_out_of_shape_is_caught(
    github_pulls: GitHubPulls, github_openapi: Description, api: httpx.Client, clone: Path
) -> None:
    pull = web_pull(api, clone)
    assert github_openapi.response("GET", f"{PULLS}/1", {}, json.dumps(pull).encode(), 200, {}) == []

    del pull["head"]
    pull["state"] = "merged"  # GitHub says "closed" and merged: true

    [violation] = github_openapi.response("GET", f"{PULLS}/1", {}, json.dumps(pull).encode(), 200, {})
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
    assert mergeable(api, number) == (True, "blocked")  # the required check "ci" has not passed yet

    github_pulls.advance_base("docs.md", "unrelated\n", "docs")
    assert mergeable(api, number) == (True, "blocked")

    github_pulls.advance_base("apps.yaml", "web: v0-hotfix\n", "a person's hotfix")
    assert mergeable(api, number) == (False, "dirty")
    refused = api.put(f"{PULLS}/{number}/merge", json={"merge_method": "squash"})
    assert (refused.status_code, refused.json()["message"]) == (405, "Pull Request is not mergeable")

    push_branch(clone, "tagtrail/prod/web", {"apps.yaml": "web: v1\n"})  # rebuilt on the new head
    github_pulls.checks_pass(number)
    assert mergeable(api, number) == (True, "clean")


def test_mergeability_can_be_computed_in_the_background_as_on_github(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    github_pulls.slow_mergeability = True
    created = web_pull(api, clone)
    assert (created["mergeable"], created["mergeable_state"]) == (None, "unknown")
    assert mergeable(api, created["number"]) == (True, "blocked")

    github_pulls.advance_base("apps.yaml", "web: v0-hotfix\n", "a person's hotfix")

    assert mergeable(api, created["number"]) == (None, "unknown")
    assert mergeable(api, created["number"]) == (False, "dirty")


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


def test_deleting_the_head_branch_closes_the_pull_request(
    github_pulls: GitHubPulls, api: httpx.Client, clone: Path
) -> None:
    pull = web_pull(api, clone)

    git(clone, "push", "-q", "origin", "--delete", "tagtrail/prod/web")

    after = api.get(f"{PULLS}/{pull['number']}").json()
    assert (after["state"], after["merged"], after["head"]["sha"]) == ("closed", False, pull["head"]["sha"])


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
        full = client.get("/repos/acme/homelab", headers={"Authorization": f"token {github_pulls.token}"})

    assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
    assert (weak.status_code, weak.json()["message"]) == (
        403,
        "Resource not accessible by personal access token",
    )
    assert read.status_code == 200
    assert read.json()["permissions"]["push"] is False  # as the token has them, for a pre-check to read
    assert full.json()["permissions"]["push"] is True


def test_a_request_without_user_agent_is_forbidden(github_pulls: GitHubPulls) -> None:
    headers = {"Authorization": f"Bearer {github_pulls.token}"}
    with httpx.Client(base_url=github_pulls.api_url, headers=headers) as client:
        del client.headers["user-agent"]
        answer = client.get("/repos/acme/homelab")

    assert answer.status_code == 403
    assert answer.json()["message"].startswith("Request forbidden by administrative rules.")


def test_an_endpoint_the_stand_in_does_not_serve_is_a_violation(
    github_pulls: GitHubPulls, api: httpx.Client
) -> None:
    answer = api.get("/repos/acme/homelab/commits")

    assert answer.status_code == 404
    assert github_pulls.violations == [
        "GET /repos/acme/homelab/commits: not served by the stand-in (its routes are in tests/bench/githubpulls_rest.py)"
    ]
    github_pulls.violations.clear()


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
    assert secondary.status_code == 429
    assert 0 < int(secondary.headers["retry-after"]) <= 30  # seconds until the limit lifts, whole seconds
    assert secondary.json()["message"].startswith("You have exceeded a secondary rate limit.")


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

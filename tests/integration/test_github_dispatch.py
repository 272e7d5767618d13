"""GitHub's workflow_dispatch as tagtrail serve calls it for apps on a moved base, against a local stand-in
that answers as GitHub's REST description says (tests/bench/githubapi.py; GitHub cannot be reached from
here): what is sent, and each refusal as one line that never holds the token."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench.githubapi import GitHubStandIn
from tagtrail.adapters.baseimages.rebuild import dispatch
from tagtrail.config.bases import GitHubDispatchConfig
from tagtrail.errors import TagtrailError

TOKEN = "ghp_" + "t0ken" * 8


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubStandIn]:
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    stand_in = GitHubStandIn("acme/homelab", TOKEN, {"build.yml": ("apps",), "old.yml": ()}).start()
    yield stand_in
    stand_in.stop()


def settings(github: GitHubStandIn, **changes: str) -> GitHubDispatchConfig:
    fields = {"repository": "acme/homelab", "api_url": github.url, "token_env": "GH_TOKEN", **changes}
    return GitHubDispatchConfig.model_validate(fields)


def test_the_apps_are_one_input_on_the_configured_ref(github: GitHubStandIn) -> None:
    asyncio.run(dispatch(settings(github, ref="release"), ["api", "web"]))
    assert github.dispatches == [{"workflow": "build.yml", "ref": "release", "inputs": {"apps": "api web"}}]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"workflow": "nope.yml"}, "GitHub refused to run acme/homelab nope.yml on main (404): Not Found"),
        (  # a workflow generated before the `apps` input existed: run `tagtrail ci github` again
            {"workflow": "old.yml"},
            "GitHub refused to run acme/homelab old.yml on main (422): Unexpected inputs provided: ['apps']",
        ),
        ({"token_env": "OTHER_TOKEN"}, "base_images.github: the environment variable OTHER_TOKEN is not set"),
        ({"repository": "acme/other"}, "(404): Not Found"),
    ],
)
def test_refusals_are_one_line_without_the_token(
    github: GitHubStandIn, changes: dict[str, str], expected: str
) -> None:
    with pytest.raises(TagtrailError) as caught:
        asyncio.run(dispatch(settings(github, **changes), ["web"]))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert github.dispatches == []


def test_a_wrong_token_and_an_unreachable_api(github: GitHubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN", "ghp_not_it")
    with pytest.raises(TagtrailError, match=r"\(401\): Bad credentials$"):
        asyncio.run(dispatch(settings(github), ["web"]))
    gone = settings(github)
    github.stop()
    with pytest.raises(
        TagtrailError, match=r"GitHub could not be reached to run acme/homelab build\.yml: ConnectError"
    ):
        asyncio.run(dispatch(gone, ["web"]))

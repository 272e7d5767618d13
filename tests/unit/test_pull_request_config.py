"""deploy.git.pull_request: the settings as the issue writes them, a mistake at its line and column, the
repository read from the git remote's URL, and a token that is missing said in one line without a value."""

from __future__ import annotations

import asyncio

import pytest

from tagtrail.adapters.registry import Secret
from tagtrail.config import parse_config
from tagtrail.config.pulls import repository_of
from tagtrail.errors import ConfigError, TagtrailError
from tagtrail.targets.pulls import PullRequests

CONFIG = """\
image: ghcr.io/acme/homelab/{app}
deploy:
  git:
    files: [deploy/apps.yaml]
    pull_request:
      repository: acme/homelab
      token_env: DEPLOY_TOKEN
      merge: auto
      method: %s
      one_per: app
      labels: [deploy]
      api_url: https://github.example.com/api/v3/
"""


def test_the_issue_s_settings_are_read() -> None:
    pulls = parse_config(CONFIG % "rebase").deploy.git.pull_request  # type: ignore[union-attr]
    assert pulls is not None
    assert (pulls.repository, pulls.token_env, pulls.merge, pulls.method) == (
        "acme/homelab",
        "DEPLOY_TOKEN",
        "auto",
        "rebase",
    )
    assert (pulls.one_per, pulls.labels, pulls.api_url) == (
        "app",
        ["deploy"],
        "https://github.example.com/api/v3",
    )


def test_a_wrong_method_is_told_at_its_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG % "fast-forward", "tagtrail.yaml")
    assert str(caught.value).startswith("tagtrail.yaml:9:15: deploy.git.pull_request.method:")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://github.com/acme/homelab.git", "acme/homelab"),
        ("git@github.com:acme/homelab.git", "acme/homelab"),
        ("ssh://git@github.com/acme/homelab", "acme/homelab"),
        ("https://x-access-token:ghp_secret@github.com/acme/home.lab/", "acme/home.lab"),
        ("/srv/git/homelab.git", None),
        ("file:///homelab.git", None),
    ],
)
def test_the_repository_comes_from_the_remote_url(url: str, repository: str | None) -> None:
    assert repository_of(url) == repository


def test_a_missing_token_is_one_line_naming_the_variable_and_the_permissions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = parse_config(CONFIG % "squash")
    settings = config.deploy.git.pull_request  # type: ignore[union-attr]
    assert settings is not None
    monkeypatch.delenv("DEPLOY_TOKEN", raising=False)
    missing = PullRequests.from_environment(settings, config)  # said only where a command needs it
    with pytest.raises(TagtrailError) as caught:
        asyncio.run(missing._client(None))  # type: ignore[arg-type]  # refused before the copy is read
    said = str(caught.value)
    assert "DEPLOY_TOKEN is not set" in said
    assert "Pull requests: read and write" in said
    monkeypatch.setenv("DEPLOY_TOKEN", "github_pat_s3cr3t")
    pulls = PullRequests.from_environment(settings, config)
    assert pulls.token == Secret("github_pat_s3cr3t")
    assert "s3cr3t" not in repr(vars(pulls))

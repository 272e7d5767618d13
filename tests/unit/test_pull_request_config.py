"""deploy.git.pull_request: the settings as the issue writes them, a mistake at its line and column, the
repository read from the git remote's URL, and a token that is missing said in one line without a value."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tagtrail.adapters.registry import Secret
from tagtrail.config import parse_config
from tagtrail.config.pulls import repository_of
from tagtrail.errors import ConfigError, TagtrailError
from tagtrail.targets.factory import open_lanes, open_project
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


LANES = """\
image: ghcr.io/acme/homelab/{app}
environments:
  staging:
    git:
      files: [deploy/staging.yaml]
      pull_request: {repository: acme/homelab, token_env: DEPLOY_TOKEN}
  prod:
    from: staging
    git:
      files: [deploy/prod.yaml]
      pull_request: {repository: acme/homelab, token_env: DEPLOY_TOKEN}
"""


def test_each_environment_proposes_on_branches_of_its_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two lanes through pull requests never list, update or supersede each other's: a lane's branches
    are tagtrail/<environment>/…, a single deploy:'s tagtrail/…."""
    monkeypatch.setenv("DEPLOY_TOKEN", "github_pat_s3cr3t")
    lanes = open_lanes(parse_config(LANES), tmp_path / "tagtrail.yaml", client=None)
    prefixes = {p.environment: p.target.pulls.prefix for p in lanes}  # type: ignore[attr-defined]
    assert prefixes == {"staging": "tagtrail/staging/", "prod": "tagtrail/prod/"}
    single = open_project(parse_config(CONFIG % "squash"), tmp_path / "tagtrail.yaml", client=None)
    assert single.target.pulls.prefix == "tagtrail/"  # type: ignore[attr-defined]


@pytest.mark.parametrize("prefix", ["tagtrail/", "tagtrail/staging/"])  # an environment's lane adds its name
def test_no_two_branches_collide_in_git_whatever_the_apps_are_named(prefix: str) -> None:
    """An app may be named like another's person branch (`web-rollback`), and git cannot hold a branch and
    one under it (`tagtrail/web` and `tagtrail/web/rollback`): every name tagtrail pushes is distinct, and
    none is a folder of another."""
    config = parse_config(CONFIG % "squash")
    settings = config.deploy.git.pull_request  # type: ignore[union-attr]
    assert settings is not None
    branches = []
    for one_per in ("app", "reconcile"):
        pulls = PullRequests(settings.model_copy(update={"one_per": one_per}), config, None)
        pulls.prefix = prefix
        for app in ("web", "web-rollback", "web-pin", "rollback", "reconcile", "auto", "manual"):
            branches += [pulls.branch([app], verb) for verb in ("deploy", "rollback", "pin", "unpin")]
    names = set(branches)
    assert all(name.startswith(prefix) for name in names)
    clashes = [(a, b) for a in names for b in names if a != b and b.startswith(a + "/")]
    assert not clashes
    by_app = PullRequests(settings, config, None)
    by_app.prefix = prefix
    assert by_app.branch(["web"], "rollback") != by_app.branch(["web-rollback"], "deploy")


def test_a_lane_owns_its_own_branches_only() -> None:
    config = parse_config(CONFIG % "squash")
    settings = config.deploy.git.pull_request  # type: ignore[union-attr]
    assert settings is not None
    default, staging = PullRequests(settings, config, None), PullRequests(settings, config, None)
    staging.prefix = "tagtrail/staging/"
    for pulls in (default, staging):
        assert pulls.owns(pulls.branch(["web"], "deploy"))
        assert pulls.owns(pulls.branch(["web"], "rollback"))
    assert not default.owns(staging.branch(["web"], "deploy"))
    assert not staging.owns(default.branch(["web"], "deploy"))
    assert not default.owns("dependabot/pip/web")

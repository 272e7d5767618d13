"""`deploy.git.pull_request:`: deploy through pull requests, for a deploy branch that only takes reviewed
changes. tagtrail pushes each change to a branch of its own and opens (or updates) a pull request; merging
it is the deploy. The token is named here, never written here: it is read from the environment at start."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from tagtrail.config.types import EnvName, _Section

_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+")
_LABEL_MAX = 50  # GitHub's longest label name


class PullRequestConfig(_Section):
    """Deploy through pull requests on GitHub: a branch and a pull request per change, merged by people or
    by GitHub's auto-merge."""

    repository: str | None = Field(
        None,
        description="owner/name of the GitHub repository; default: from the git remote's URL.",
    )
    token_env: EnvName = Field(
        "GITHUB_TOKEN",
        description="Environment variable holding the token (fine-grained: contents and pull requests read/write).",
    )
    merge: Literal["auto", "off"] = Field(
        "auto", description="auto: enable GitHub's auto-merge on each pull request; off: people merge."
    )
    method: Literal["squash", "merge", "rebase"] = Field(
        "squash", description="How auto-merge merges: squash, merge or rebase."
    )
    one_per: Literal["app", "reconcile"] = Field(
        "app",
        description="app: a pull request per app; reconcile: one for every app changed together.",
    )
    labels: list[str] = Field(default_factory=list, description="Labels put on each pull request.")
    api_url: str = Field(
        "https://api.github.com",
        description="The GitHub API; GitHub Enterprise Server: https://HOST/api/v3.",
    )

    @field_validator("repository")
    @classmethod
    def _owner_and_name(cls, value: str | None) -> str | None:
        if value is not None and not _REPOSITORY.fullmatch(value):
            raise ValueError(f"'{value}' is not a GitHub repository such as 'acme/homelab'")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s?#]*)?", value):
            raise ValueError(f"'{value}' is not an http(s) URL such as https://api.github.com")
        return value.rstrip("/")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label.strip() or len(label) > _LABEL_MAX or "," in label:
                raise ValueError(f"'{label}' is not a label name (1 to 50 characters, no comma)")
        return value


def repository_of(url: str) -> str | None:
    """owner/name from a GitHub remote URL (https, ssh or scp-like), None when it names no repository."""
    host = r"(?:(?:https?|ssh|git)://(?:[^@/\s]+@)?[^/\s]+/|[^@/:\s]+@[^:/\s]+:)"  # a path names no host
    found = re.fullmatch(host + r"([^/:\s]+/[^/\s]+?)(?:\.git)?/?", url.strip())
    if found is None or not _REPOSITORY.fullmatch(found.group(1)):
        return None
    return found.group(1)

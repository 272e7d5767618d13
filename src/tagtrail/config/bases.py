"""The `base_images:` section of tagtrail.yaml: how `tagtrail serve` watches the base images of what runs,
and what it does when one moves (a base tag republished with fixes, no commit anywhere)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from tagtrail.config.types import EnvName, Interval, _Section, is_loopback_host

OnChange = Literal["notify", "rebuild"]
# GitHub's grammar: an owner is letters, digits and single inner hyphens (at most 39); a repository name is
# letters, digits, `.`, `_` and `-` (at most 100), but never `.` or `..`; a workflow is a file under
# .github/workflows (`*.yml`, `*.yaml`) or its numeric id. These go into the URL the token is posted to, so
# nothing else may: `../..` would point it at another endpoint of the API host.
_OWNER = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_WORKFLOW = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*\.ya?ml|[0-9]+")


class GitHubDispatchConfig(_Section):
    """Rebuild through the GitHub workflow that `tagtrail ci github` writes (its workflow_dispatch)."""

    repository: str = Field(description="owner/name of the repository on GitHub.")
    workflow: str = Field(
        "build.yml",
        description="The workflow's file name (`*.yml`, `*.yaml`) under .github/workflows, or its id.",
    )
    ref: str = Field("main", description="Branch the workflow runs on (it builds that branch's head).")
    token_env: EnvName = Field(
        "TAGTRAIL_GITHUB_TOKEN",
        description="Environment variable holding a token allowed to run workflows (actions: write).",
    )
    api_url: str = Field(
        "https://api.github.com",
        description="GitHub's REST API (GitHub Enterprise: https://HOST/api/v3); https, or http to loopback.",
    )

    @field_validator("repository")
    @classmethod
    def _github_repository(cls, value: str) -> str:
        owner, _, name = value.partition("/")
        if len(owner) > 39 or not _OWNER.fullmatch(owner) or not _NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"'{value}' is not a GitHub owner/name (such as acme/homelab)")
        return value

    @field_validator("workflow")
    @classmethod
    def _github_workflow(cls, value: str) -> str:
        if not _WORKFLOW.fullmatch(value):
            raise ValueError(f"'{value}' is not a workflow file name (such as build.yml) or a workflow id")
        return value

    @field_validator("api_url")
    @classmethod
    def _github_endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        shown = value.replace(f":{parts.password}@", ":***@") if parts.password else value
        if parts.username is not None or parts.query or parts.fragment or not parts.hostname:
            raise ValueError(f"'{shown}' is not an API base URL: give https://HOST[/PATH], no user or query")
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback_host(parts.hostname)):
            raise ValueError(
                f"'{shown}' is not https: the token would travel in the clear (http only to loopback)"
            )
        return value


class LocalBuildConfig(_Section):
    """Rebuild where tagtrail serve runs: `tagtrail build --push APP…` in the checkout tagtrail.yaml is in."""

    builder: Literal["docker", "podman", "buildah"] | None = Field(
        None, description="The builder; default: the first of docker, podman, buildah that works here."
    )


class BaseImagesConfig(_Section):
    """tagtrail serve's watch of base images: one HEAD per distinct base per check."""

    interval: Interval | None = Field(
        timedelta(hours=1),
        description="How often tagtrail serve checks whether the bases of what runs moved (null: never).",
    )
    on_change: OnChange = Field(
        "notify", description="What a moved base does: notify, or rebuild (and so deploy) the app."
    )
    apps: dict[str, OnChange] = Field(
        default_factory=dict, description="Per app, what a moved base does, where it differs from on_change."
    )
    github: GitHubDispatchConfig | None = Field(
        None, description="rebuild runs the GitHub workflow for just those apps (workflow_dispatch)."
    )
    local: LocalBuildConfig | None = Field(
        None,
        description="rebuild runs tagtrail build --push here (where tagtrail serve runs next to a builder).",
    )

    def on_change_of(self, app: str) -> OnChange:
        return self.apps.get(app, self.on_change)

    @model_validator(mode="after")
    def _rebuild_has_a_way(self) -> BaseImagesConfig:
        rebuilding = self.on_change == "rebuild" or "rebuild" in self.apps.values()
        if rebuilding and self.github is None and self.local is None:
            raise ValueError("rebuild needs a way to build: set base_images.github or base_images.local")
        if self.github is not None and self.local is not None:
            raise ValueError("set one of base_images.github and base_images.local, not both")
        return self

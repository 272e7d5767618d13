"""The `base_images:` section of tagtrail.yaml: how `tagtrail serve` watches the base images of what runs,
and what it does when one moves (a base tag republished with fixes, no commit anywhere)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from tagtrail.config.types import EnvName, Interval, _Section

OnChange = Literal["notify", "rebuild"]


class GitHubDispatchConfig(_Section):
    """Rebuild through the GitHub workflow that `tagtrail ci github` writes (its workflow_dispatch)."""

    repository: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name of the repository on GitHub."
    )
    workflow: str = Field(
        "build.yml",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The workflow's file name (or id) under .github/workflows.",
    )
    ref: str = Field("main", description="Branch the workflow runs on (it builds that branch's head).")
    token_env: EnvName = Field(
        "TAGTRAIL_GITHUB_TOKEN",
        description="Environment variable holding a token allowed to run workflows (actions: write).",
    )
    api_url: str = Field(
        "https://api.github.com", description="GitHub's REST API (GitHub Enterprise: https://HOST/api/v3)."
    )


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

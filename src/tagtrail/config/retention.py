"""The `retention:` section of tagtrail.yaml: which builds `tagtrail prune` may delete from the registry.

Defaults are safe for a home lab: generous counts, a day before a build of another branch may go, an hour
before anything may go at all. What runs, every pin and the rollback targets are kept whatever these say.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from tagtrail.config.types import Duration, Interval, _Section


class AppRetentionConfig(_Section):
    """Retention settings of one app that differ from retention's."""

    keep_deploy: int | None = Field(
        None, ge=0, description="This app's newest builds kept per deploy branch."
    )
    keep_other: int | None = Field(None, ge=0, description="This app's newest builds kept per other branch.")
    max_age_other: Duration | None = Field(
        None, description="This app's age past which other-branch builds go."
    )
    max_age_dirty: Duration | None = Field(None, description="This app's age past which -dirty builds go.")
    rollback: int | None = Field(
        None, ge=0, description="This app's number of past deploys kept as rollback targets."
    )


class GitHubPackagesConfig(_Section):
    """Deleting from ghcr.io through the GitHub Packages REST API (ghcr.io has no DELETE of manifests)."""

    owner_kind: str = Field(
        "user",
        pattern="^(user|org)$",
        description="Whether the packages belong to the token's user (user) or to an organisation (org).",
    )
    owner: str | None = Field(
        None, description="The organisation's login (owner_kind: org); default: the image's owner."
    )
    token_env: str = Field(
        "GITHUB_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding a token with delete:packages (and read:packages).",
    )
    api_url: str = Field("https://api.github.com", description="The GitHub REST API's base URL.")
    registries: list[str] = Field(
        default_factory=lambda: ["ghcr.io"],
        description="Registry hosts whose images are deleted through the GitHub Packages API.",
    )


class RetentionConfig(_Section):
    """Registry retention (`tagtrail prune`): what may be deleted; what runs, pins and rollback targets never are."""

    keep_deploy: int = Field(
        20, ge=1, description="Newest builds kept of each deploy branch (by the time in the tag)."
    )
    keep_other: int = Field(3, ge=0, description="Newest builds kept of every other branch.")
    max_age_other: Duration = Field(
        timedelta(days=30),
        description="Builds of other branches older than this go, even the newest of their branch.",
    )
    max_age_dirty: Duration = Field(
        timedelta(days=2), description="Laptop builds (-dirty) older than this go; younger ones stay."
    )
    min_age: Duration = Field(
        timedelta(hours=1), description="Nothing younger than this is deleted (a build in flight stays)."
    )
    rollback: int = Field(
        5, ge=0, description="The builds of this many past deploys per app are kept (rollback targets)."
    )
    delete_unscheme: list[str] = Field(
        default_factory=list,
        description="Globs of tags outside the scheme that may be deleted (e.g. 'sha-*'); every other such tag is kept.",
    )
    schedule: Interval | None = Field(
        None, description="How often tagtrail serve prunes (e.g. 1d); default: never (run tagtrail prune)."
    )
    github: GitHubPackagesConfig = Field(
        default_factory=GitHubPackagesConfig,
        description="How ghcr.io images are deleted (GitHub Packages API).",
    )
    apps: dict[str, AppRetentionConfig] = Field(
        default_factory=dict, description="Per app, retention settings that differ."
    )

"""deploy.git: the GitOps target's settings (files in a git repository, how deploy commits are made and
pushed, who applies them, whether they go through pull requests)."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator

from tagtrail.config.appliedby import AppliedByConfig
from tagtrail.config.pulls import PullRequestConfig
from tagtrail.config.types import Duration, EnvName, RelativePath, _Section


class GitTargetConfig(_Section):
    """Write deploys back to files in a git repository (GitOps)."""

    files: list[RelativePath] = Field(
        min_length=1,
        description="Files, relative to the repo, whose image references are kept current: paths or globs (`*` within a folder, `**` across folders), each matching at least one file.",
    )
    url: str | None = Field(
        None, description="Clone this remote into a cache folder instead of using the repo tagtrail runs in."
    )
    branch: str | None = Field(
        None, description="Branch deploy commits go to; default: the branch checked out."
    )
    push: bool = Field(True, description="Push deploy commits to the remote.")
    then: str | None = Field(
        None,
        description="Shell command run after a deploy commit, or once after each merged pull request (e.g. 'make -C pulumi up').",
    )
    then_env: list[EnvName] = Field(
        default_factory=list,
        description="Environment variables `then` may see besides PATH, HOME, USER, LANG, LC_*, TZ, TMPDIR (it never sees tagtrail's secrets).",
    )
    skip_ci: bool = Field(False, description="Add [skip ci] to deploy commits, so CI does not run for them.")
    lock_timeout: Duration = Field(
        timedelta(minutes=10),
        description="How long a deploy waits for another tagtrail deploying from the same checkout or clone.",
    )
    retries: int = Field(
        5, ge=0, le=50, description="Times a rejected push is retried on the new remote head."
    )
    author: str | None = Field(
        None, description="Author of deploy commits, 'Name <email>'; default: git's user, else tagtrail."
    )
    cache: str | None = Field(
        None, description="Folder for the clone of url; default: $XDG_CACHE_HOME/tagtrail/repos."
    )
    applied_by: AppliedByConfig | None = Field(
        None,
        description="Who applies the deploy commits (the Pulumi Kubernetes Operator's Stack): followed after each one.",
    )
    pull_request: PullRequestConfig | None = Field(
        None, description="Deploy through pull requests to the branch instead of pushing to it."
    )

    @field_validator("author")
    @classmethod
    def _author_form(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^<>]+ <[^<>@\s]+@[^<>\s]+>", value):
            raise ValueError(f"'{value}' is not an author such as 'Deploy Bot <deploy@example.com>'")
        return value

"""The schema of tagtrail.yaml. Every field says what it is for; `tagtrail config schema` prints them."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

from tagtrail.config.appliedby import AppliedByConfig
from tagtrail.config.bases import BaseImagesConfig
from tagtrail.config.kubernetes import KubernetesConfig, KubeTargetConfig
from tagtrail.config.provenance import SourceConfig, VerifyConfig
from tagtrail.config.pulls import PullRequestConfig
from tagtrail.config.retention import RetentionConfig
from tagtrail.config.sections import TARGET_SECTIONS
from tagtrail.config.serve import NotifyConfig, ServeConfig
from tagtrail.config.types import (
    CredentialsSpec,
    Duration,
    EnvName,
    ImageTemplate,
    Interval,
    PinTag,
    RegistryHost,
    RelativePath,
    _Section,
)
from tagtrail.domain.scheme import Scheme
from tagtrail.errors import SchemeError

DEFAULT_SCHEME = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"


class RegistryConfig(_Section):
    """How to reach one registry."""

    insecure: bool = Field(
        False, description="Allow plain HTTP to this registry (only ever for loopback or a LAN)."
    )
    ca_file: str | None = Field(
        None, description="PEM bundle of CAs to trust for this registry's TLS certificate."
    )
    credentials: CredentialsSpec = Field(
        "docker",
        description="Where credentials come from: docker (config.json, helpers), anonymous, env:PREFIX or file:PATH.",
    )
    concurrency: int = Field(
        16, ge=1, le=256, description="Most requests in flight to this registry at once."
    )
    rps: float | None = Field(
        None, gt=0, description="Most requests per second to this registry (default: no limit)."
    )
    timeout: float = Field(
        30.0, gt=0, le=600, description="Seconds one request may take, its authentication included."
    )
    page_size: int = Field(1000, ge=1, le=10000, description="Tags asked for per page when listing tags.")
    interval: Interval | None = Field(
        None, description="How often tagtrail serve polls this registry's apps."
    )


class AppsConfig(_Section):
    """Where apps are found."""

    root: RelativePath = Field(
        "apps", description="Folder whose subfolders holding a Dockerfile or Containerfile are apps."
    )
    exclude: list[str] = Field(default_factory=list, description="Subfolders of root that are not apps.")
    inputs: dict[str, list[RelativePath]] = Field(
        default_factory=dict,
        description="Per app, more paths (globs, relative to the repo) whose changes rebuild it.",
    )


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


_KEY_PATH = r"^[^.\s]+(?:\.[^.\s]+)*$"


class HelmKeysConfig(_Section):
    """Where a Helm values file keeps an app's image, as dotted key paths from the document's root."""

    repository: str = Field(
        pattern=_KEY_PATH,
        description="Key path of the repository, e.g. image.name; it must name the app's image.",
    )
    tag: str = Field(pattern=_KEY_PATH, description="Key path of the tag, e.g. image.tag.")
    digest: str | None = Field(
        None,
        pattern=_KEY_PATH,
        description="Key path of the digest, if the chart has one; else the digest is written as tag@digest.",
    )


class AppDeployConfig(_Section):
    """Settings of one app that differ from deploy's."""

    branch: str | list[str] | None = Field(None, description="Branches whose tags this app deploys.")
    min_age: Duration | None = Field(None, description="This app's soak time.")
    interval: Interval | None = Field(None, description="How often tagtrail serve polls this app.")
    helm: list[HelmKeysConfig] = Field(
        default_factory=list,
        description="Helm values keys holding this app's image, where tagtrail cannot recognise them itself.",
    )
    verify: VerifyConfig | None = Field(None, description="This app's signature keys (instead of deploy's).")


class DeployConfig(_Section):
    """Which images are eligible and where the choice is written."""

    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)  # registered targets' own

    branch: str | list[str] = Field(
        "main", description="Only tags of this branch (or these branches) are deployed."
    )
    aliases: list[ImageTemplate] = Field(
        default_factory=list,
        description="Other names under which the same images appear in files, each with '{app}'.",
    )
    git: GitTargetConfig | None = Field(None, description="Write deploys back to files in git.")
    kubernetes: KubeTargetConfig | None = Field(
        None, description="Deploy by patching the workloads in the cluster (direct mode) instead of git."
    )
    marker_namespaces: list[str] = Field(
        default_factory=lambda: ["flux-system"],
        description="Namespaces whose Flux $imagepolicy markers are tagtrail's; other markers are left alone.",
    )
    pins: dict[str, PinTag] = Field(
        default_factory=dict,
        description="Apps held at a tag: automation leaves them alone until unpinned.",
    )
    min_age: Duration = Field(
        timedelta(0), description="Soak time: a build younger than this waits (e.g. 10m, 1h; 0 = none)."
    )
    cooldown: Duration = Field(
        timedelta(minutes=5),
        description="At most one automatic deploy per app in this window (a loop guard).",
    )
    apps: dict[str, AppDeployConfig] = Field(
        default_factory=dict, description="Per app, settings that differ."
    )
    decision_log: str | None = Field(
        None, description="SQLite file of decisions; default: $XDG_STATE_HOME/tagtrail/decisions.sqlite."
    )
    max_skew: Duration = Field(
        timedelta(minutes=5), description="A tag dated more than this ahead of now is refused (clock skew)."
    )
    verify: VerifyConfig | None = Field(None, description="Deploy only images signed by one of these keys.")
    source: SourceConfig | None = Field(
        None,
        description="Check tags' commits in a clone of this remote (default: the checkout tagtrail runs in).",
    )

    @field_validator("branch")
    @classmethod
    def _branches_named(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not name.strip() for name in names):
            raise ValueError("name at least one branch, e.g. 'main'")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _target_sections(cls, data: Any, handler: ModelWrapValidatorHandler[DeployConfig]) -> DeployConfig:
        """The sections registered by target modules (config.sections), each validated by its own model."""
        own = {k: v for k, v in data.items() if k in TARGET_SECTIONS} if isinstance(data, dict) else {}
        deploy = handler({k: v for k, v in data.items() if k not in own} if own else data)
        for key, value in own.items():
            try:
                deploy._sections[key] = TARGET_SECTIONS[key].model_validate(value or {})
            except ValidationError as exc:  # its errors told at their place under deploy.<key>
                raise ValidationError.from_exception_data(
                    exc.title, [_under(key, error) for error in exc.errors()]
                ) from None
        return deploy

    def section(self, name: str) -> BaseModel | None:
        """A registered target's section (`deploy.<name>:`), validated; None where it is not there."""
        return self._sections.get(name)

    @property
    def branches(self) -> list[str]:
        return [self.branch] if isinstance(self.branch, str) else list(self.branch)

    def branches_of(self, app: str) -> list[str]:
        own = self.apps[app].branch if app in self.apps else None
        if own is None:
            return self.branches
        return [own] if isinstance(own, str) else list(own)

    def interval_of(self, app: str) -> timedelta | None:
        return self.apps[app].interval if app in self.apps else None

    def verify_of(self, app: str) -> VerifyConfig | None:
        own = self.apps[app].verify if app in self.apps else None
        return own or self.verify

    def min_age_of(self, app: str) -> timedelta:
        own = self.apps[app].min_age if app in self.apps else None
        return self.min_age if own is None else own


def _under(key: str, error: ErrorDetails) -> InitErrorDetails:
    detail: InitErrorDetails = {"type": error["type"], "loc": (key, *error["loc"]), "input": error["input"]}
    if "ctx" in error:
        detail["ctx"] = error["ctx"]
    return detail


class Config(_Section):
    """tagtrail.yaml: the tag scheme, how images are named, where apps live and how they are deployed."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))
    # (the path as shown, the text) it was parsed from, so a later problem with a value can name its line
    _origin: tuple[str, str] | None = PrivateAttr(None)

    scheme: str = Field(
        DEFAULT_SCHEME,
        description="The tag template, in docker/metadata-action syntax; tags are formatted and parsed with it.",
    )
    sha_length: int = Field(
        7,
        ge=4,
        le=64,
        description="Length of {{sha}} in tags (metadata-action's DOCKER_METADATA_SHORT_SHA_LENGTH).",
    )
    image: ImageTemplate = Field(
        description="How an app's image is named, with '{app}', e.g. ghcr.io/o/r/{app}."
    )
    registries: dict[RegistryHost, RegistryConfig] = Field(
        default_factory=dict, description="Per registry host[:port], how to reach it."
    )
    apps: AppsConfig = Field(default_factory=AppsConfig, description="Where apps are found.")
    deploy: DeployConfig = Field(
        default_factory=DeployConfig, description="What is deployed and where it is written."
    )
    serve: ServeConfig = Field(default_factory=ServeConfig, description="The controller (tagtrail serve).")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="Where notifications go.")
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="What tagtrail prune may delete from the registry."
    )
    base_images: BaseImagesConfig = Field(
        default_factory=BaseImagesConfig,
        description="tagtrail serve's watch of base images, and what a move does.",
    )
    kubernetes: KubernetesConfig | None = Field(
        None, description="The cluster: observe what runs there (and, with deploy.kubernetes, deploy to it)."
    )

    @field_validator("scheme")
    @classmethod
    def _scheme_compiles(cls, value: str) -> str:
        try:
            Scheme.compile(value)
        except SchemeError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @model_validator(mode="after")
    def _scheme_with_length(self) -> Config:
        try:
            Scheme.compile(self.scheme, self.sha_length)
        except SchemeError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @model_validator(mode="after")
    def _lease_reachable(self) -> Config:
        if self.serve.leader_election is not None and self.kubernetes is None:
            raise ValueError(
                "serve.leader_election needs a kubernetes: section saying how to reach the cluster"
            )
        return self

    @model_validator(mode="after")
    def _applier_reachable(self) -> Config:
        if self.deploy.git is not None and self.deploy.git.applied_by is not None and self.kubernetes is None:
            error = ValueError("it needs a kubernetes: section saying how to reach the cluster")
            raise ValidationError.from_exception_data(
                "Config",
                [
                    {
                        "type": "value_error",
                        "loc": ("deploy", "git", "applied_by"),
                        "input": None,
                        "ctx": {"error": error},
                    }
                ],
            )
        return self

    @model_validator(mode="after")
    def _one_target(self) -> Config:
        if self.deploy.kubernetes is not None:
            if self.deploy.git is not None:
                raise ValueError(
                    "deploy.git and deploy.kubernetes are both set: a deploy lands in one place; keep one"
                )
            if self.kubernetes is None:
                raise ValueError(
                    "deploy.kubernetes needs a kubernetes: section saying how to reach the cluster"
                )
        return self

    @cached_property
    def tag_scheme(self) -> Scheme:
        """The compiled tag scheme."""
        return Scheme.compile(self.scheme, self.sha_length)

    def poll_interval(self, app: str, registry: str) -> timedelta:
        """How often serve polls an app: its own setting, else its registry's, else serve.interval."""
        own = self.deploy.interval_of(app)
        if own is not None:
            return own
        settings = self.registries.get(registry)
        return (
            settings.interval
            if settings is not None and settings.interval is not None
            else self.serve.interval
        )

    def image_for(self, app: str) -> str:
        """The image repository of an app, from the `image` template."""
        return self.image.replace("{app}", app)

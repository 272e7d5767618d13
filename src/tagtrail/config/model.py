"""The schema of tagtrail.yaml. Every field says what it is for; `tagtrail config schema` prints them."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from tagtrail.config.durations import Duration, Interval
from tagtrail.config.retention import RetentionConfig
from tagtrail.errors import SchemeError
from tagtrail.scheme import Scheme, is_valid_tag

DEFAULT_SCHEME = "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"

# host[:port]/path with lowercase path components, and one `{app}` placeholder somewhere in the path.
# The distribution spec's path grammar: lowercase alphanumerics joined by '.', '_', '__' or runs of '-'.
_COMPONENT = r"[a-z0-9{}]+(?:(?:[._]|__|-+)[a-z0-9{}]+)*"
_IMAGE_TEMPLATE = re.compile(rf"(?:[A-Za-z0-9.-]+(?::\d+)?/)?(?:{_COMPONENT}/)*{_COMPONENT}")
_REGISTRY_HOST = re.compile(r"(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::\d{1,5})?|\[[0-9a-fA-F:]+\](?::\d{1,5})?")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_image_template(value: str) -> str:
    if value.count("{app}") != 1:
        raise ValueError(f"'{value}' must contain '{{app}}' exactly once, where the app's name goes")
    if re.search(r"\{(?!app\})", value.replace("{app}", "")):
        raise ValueError(f"'{value}' has a placeholder other than '{{app}}'")
    if ":" in value.rsplit("/", 1)[-1] or "@" in value:
        raise ValueError(f"'{value}' names a tag or digest; give the repository only, tagtrail picks the tag")
    if not _IMAGE_TEMPLATE.fullmatch(value):
        raise ValueError(
            f"'{value}' is not an image repository: each part of the path is lowercase letters and digits joined"
            " by '.', '_', '__' or '-' (registries refuse uppercase repository names)"
        )
    return value


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not value.strip():
        raise ValueError(f"'{value}' must be a path inside the repository, relative to tagtrail.yaml")
    return value


def _registry_host(value: str) -> str:
    if not _REGISTRY_HOST.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a registry host; write host or host:port, without a scheme or path"
        )
    return value


def _pin_tag(value: str) -> str:
    if not is_valid_tag(value):
        raise ValueError(f"'{value}' is not a valid image tag")
    return value


ImageTemplate = Annotated[str, AfterValidator(_check_image_template)]
RelativePath = Annotated[str, AfterValidator(_relative_path)]
RegistryHost = Annotated[str, AfterValidator(_registry_host)]
PinTag = Annotated[str, AfterValidator(_pin_tag)]


def _credentials_spec(value: str) -> str:
    if value in ("docker", "anonymous") or re.fullmatch(r"env:[A-Za-z_][A-Za-z0-9_]*", value):
        return value
    if value.startswith("file:") and len(value) > 5:
        return value
    raise ValueError(
        f"'{value}' is not a credentials source: use docker, anonymous, env:PREFIX (reads PREFIX_USERNAME and"
        " PREFIX_PASSWORD) or file:PATH (a docker config.json or a mounted .dockerconfigjson)"
    )


CredentialsSpec = Annotated[str, AfterValidator(_credentials_spec)]


_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
EnvName = Annotated[str, Field(pattern=f"^{_ENV_NAME}$")]


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
    concurrency: int = Field(8, ge=1, le=256, description="Most requests in flight to this registry at once.")
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
        min_length=1, description="Files, relative to the repo, whose image references are kept current."
    )
    url: str | None = Field(
        None, description="Clone this remote into a cache folder instead of using the repo tagtrail runs in."
    )
    branch: str | None = Field(
        None, description="Branch deploy commits go to; default: the branch checked out."
    )
    push: bool = Field(True, description="Push deploy commits to the remote.")
    then: str | None = Field(
        None, description="Shell command run after a deploy commit (e.g. 'make -C pulumi up')."
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


class DeployConfig(_Section):
    """Which images are eligible and where the choice is written."""

    branch: str | list[str] = Field(
        "main", description="Only tags of this branch (or these branches) are deployed."
    )
    aliases: list[ImageTemplate] = Field(
        default_factory=list,
        description="Other names under which the same images appear in files, each with '{app}'.",
    )
    git: GitTargetConfig | None = Field(None, description="Write deploys back to files in git.")
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

    @field_validator("branch")
    @classmethod
    def _branches_named(cls, value: str | list[str]) -> str | list[str]:
        names = [value] if isinstance(value, str) else value
        if not names or any(not name.strip() for name in names):
            raise ValueError("name at least one branch, e.g. 'main'")
        return value

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

    def min_age_of(self, app: str) -> timedelta:
        own = self.apps[app].min_age if app in self.apps else None
        return self.min_age if own is None else own


class RegistryHookConfig(_Section):
    """The CNCF distribution registry's notifications (endpoints in its config.yml)."""

    header: str = Field("Authorization", description="Header the registry sends the shared secret in.")
    secret_env: EnvName = Field(
        "TAGTRAIL_REGISTRY_WEBHOOK_SECRET", description="Environment variable holding that header's value."
    )


class GitHubHookConfig(_Section):
    """GitHub package / registry_package events."""

    secret_env: EnvName = Field(
        "TAGTRAIL_GITHUB_WEBHOOK_SECRET", description="Environment variable holding the webhook's secret."
    )


class GenericHookConfig(_Section):
    """A JSON hook: {"image": …, "tag": …} with a bearer token."""

    token_env: EnvName = Field(
        "TAGTRAIL_WEBHOOK_TOKEN", description="Environment variable holding the token."
    )


class WebhooksConfig(_Section):
    """Webhook receivers; each needs its secret in the environment, else it refuses every request."""

    registry: RegistryHookConfig = Field(
        default_factory=RegistryHookConfig, description="Distribution notifications."
    )
    github: GitHubHookConfig = Field(default_factory=GitHubHookConfig, description="GitHub package events.")
    generic: GenericHookConfig = Field(
        default_factory=GenericHookConfig, description="The generic JSON hook."
    )
    max_body: int = Field(
        1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Largest webhook body accepted, in bytes."
    )
    rate: float = Field(
        1.0,
        gt=0,
        description="Refused webhook requests tolerated per second per client (bursts of 10x); past that, 429.",
    )


class ServeConfig(_Section):
    """tagtrail serve: the controller, its dashboard and webhooks."""

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(8080, ge=1, le=65535, description="Port to listen on.")
    interval: Interval = Field(
        timedelta(minutes=5), description="How often every app is polled (webhooks act at once)."
    )
    jitter: float = Field(
        0.1, ge=0, le=1, description="Polls are spread by up to this fraction of the interval."
    )
    coalesce_max: Duration = Field(
        timedelta(seconds=30),
        description="Longest wait for the other images of one commit, so a CI run deploys in one commit.",
    )
    pull: bool = Field(
        True,
        description="Before each periodic reconcile, fast-forward the checkout tagtrail.yaml is in from its remote.",
    )
    public: bool = Field(True, description="Reading the dashboard needs no login (actions always do).")
    token_env: EnvName = Field(
        "TAGTRAIL_TOKEN", description="Environment variable holding the dashboard token."
    )
    secure_cookies: bool = Field(
        False, description="Mark the session cookie Secure (set when served over TLS)."
    )
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig, description="Webhook receivers.")
    commit_url: str | None = Field(
        None, description="Link for a commit in the dashboard, with {sha}; default: from the git remote."
    )


class NotifyConfig(_Section):
    """Notifications through apprise (ntfy, Slack, Discord, email, …)."""

    urls: list[str] = Field(default_factory=list, description="apprise URLs that hold no secret.")
    urls_env: EnvName = Field(
        "TAGTRAIL_NOTIFY_URLS", description="Environment variable with more apprise URLs (space-separated)."
    )
    registry_errors: int = Field(
        3, ge=1, description="Notify when an app's registry reads have failed this many polls in a row."
    )


class Config(_Section):
    """tagtrail.yaml: the tag scheme, how images are named, where apps live and how they are deployed."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

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

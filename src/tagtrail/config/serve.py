"""The `serve:` and `notify:` sections of tagtrail.yaml: the controller's server, its webhooks and its
notifications."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from tagtrail.config.kubernetes import LeaderElectionConfig
from tagtrail.config.types import Duration, EnvName, Interval, _Section


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
    leader_election: LeaderElectionConfig | None = Field(
        None,
        description="Run more than one replica: a Lease elects the one that deploys (needs kubernetes:).",
    )
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

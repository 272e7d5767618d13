"""The Kubernetes sections of tagtrail.yaml.

- `kubernetes:` says how to reach the cluster and where to look: with it, tagtrail observes what runs (the
  workloads using each app's image, their Pods' image digests, rollout progress) in every mode.
- `deploy.kubernetes:` makes the cluster the deploy target (direct mode): a deploy patches the workloads'
  images, watches the rollout and rolls a failed one back. It replaces `deploy.git`; it needs `kubernetes:`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from tagtrail.config.types import Duration, _Section

_LABEL_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class KubernetesConfig(_Section):
    """How tagtrail reaches the cluster, and which workloads it looks at."""

    kubeconfig: str | None = Field(
        None,
        description="Path of a kubeconfig file (~ expands). Default: $KUBECONFIG, else ~/.kube/config, else the"
        " in-cluster service account.",
    )
    context: str | None = Field(None, description="The kubeconfig context to use (default: its current one).")
    namespaces: list[str] = Field(
        default_factory=lambda: ["default"],
        min_length=1,
        description="Namespaces whose workloads (Deployments, StatefulSets, DaemonSets, CronJobs) are looked at.",
    )
    selector: str | None = Field(
        None, description="A label selector the workloads must match, e.g. app.kubernetes.io/part-of=shop."
    )
    follow: Duration = Field(
        timedelta(minutes=10),
        description="GitOps + observe: how long tagtrail serve (and deploy --wait) follows a deploy commit until"
        " the cluster runs it (applied by Flux, Argo CD or deploy.git.then); 0s: never.",
    )
    timeout: Duration = Field(
        timedelta(seconds=10), description="How long one request to the API server may take."
    )

    @field_validator("namespaces")
    @classmethod
    def namespace_names(cls, value: list[str]) -> list[str]:
        """Namespace names, each once (an environment's `namespaces:` is checked the same way)."""
        for name in value:
            if not re.fullmatch(_LABEL_NAME, name) or len(name) > 63:
                raise ValueError(f"'{name}' is not a namespace name (lower-case letters, digits and '-')")
        if len(set(value)) != len(value):
            raise ValueError("a namespace is listed twice")
        return value


class LeaderElectionConfig(_Section):
    """More than one `tagtrail serve`: a coordination.k8s.io/v1 Lease elects the one that writes."""

    namespace: str = Field("tagtrail", description="The namespace of the Lease (tagtrail's own).")
    name: str = Field("tagtrail", description="The Lease's name.")
    duration: Duration = Field(
        timedelta(seconds=15),
        description="How long a Lease not renewed holds: a follower takes over after it.",
    )
    renew_deadline: Duration = Field(
        timedelta(seconds=10),
        description="The leader stops writing when it has not renewed for this long (less than duration).",
    )
    retry: Duration = Field(timedelta(seconds=2), description="How often the Lease is renewed or tried.")

    @model_validator(mode="after")
    def _deadlines(self) -> LeaderElectionConfig:
        if not self.retry < self.renew_deadline < self.duration:
            raise ValueError(
                "leader election needs retry < renew_deadline < duration (e.g. 2s, 10s, 15s): a leader must"
                " stop writing before a follower may take over"
            )
        return self


class KubeTargetConfig(_Section):
    """Direct mode: deploys patch the workloads' container images instead of files in git."""

    rollout_timeout: Duration = Field(
        timedelta(minutes=5),
        description="How long a rollout may take before it counts as failed (a Deployment's own"
        " progressDeadlineSeconds fails it sooner).",
    )
    rollback: bool = Field(
        True,
        description="Roll a failed rollout back to the image before it, and pin the app there so automation"
        " does not retry the bad build.",
    )

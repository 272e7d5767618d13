"""`deploy.git.applied_by:`: who applies the deploy commits to the cluster, where tagtrail can ask it.

- `pulumi_stack:` the Pulumi Kubernetes Operator's `Stack` (stacks.pulumi.com) that runs a Pulumi update for
  each new commit of the deploy branch. tagtrail follows its `status.lastUpdate` after a deploy commit: a
  deploy counts as applied when the operator applied that commit or a later one, failed when it failed on
  it, and not applied when the Stack did not move within `timeout`. Reading it needs `kubernetes:`.
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, ValidationInfo, field_validator

from tagtrail.config.types import Duration, _Section

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_NAMES = {  # what the API server accepts: a namespace is a DNS label, a Stack's name a DNS subdomain
    "namespace": (_DNS_LABEL, 63, "namespace name (lower-case letters, digits and '-')"),
    "name": (_DNS_SUBDOMAIN, 253, "resource name (lower-case letters, digits, '-' and '.')"),
}


class PulumiStackRef(_Section):
    """The operator's Stack resource that applies the deploy branch."""

    namespace: str = Field(description="The namespace of the Stack resource.")
    name: str = Field(description="The Stack resource's name.")

    @field_validator("namespace", "name")
    @classmethod
    def _dns_names(cls, value: str, info: ValidationInfo) -> str:
        pattern, most, what = _NAMES[info.field_name or "name"]
        if not re.fullmatch(pattern, value) or len(value) > most:
            raise ValueError(f"'{value}' is not a {what}")
        return value

    @property
    def ref(self) -> str:
        return f"stack/{self.namespace}/{self.name}"


class AppliedByConfig(_Section):
    """Who applies the deploy commits, followed after each one until it says it applied it (or failed)."""

    pulumi_stack: PulumiStackRef = Field(
        description="The Pulumi Kubernetes Operator's Stack (stacks.pulumi.com) that applies the deploy branch."
    )
    timeout: Duration = Field(
        timedelta(minutes=10),
        description="A deploy commit the Stack has not applied (or failed on) after this long is reported as"
        " not applied.",
    )
    rollback: bool = Field(
        False,
        description="Roll a deploy the Stack failed to apply back in git and pin the app there (off by"
        " default: a failed Pulumi update may be unrelated to the image).",
    )

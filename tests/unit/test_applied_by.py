"""deploy.git.applied_by (issue 30): the config, and the pure reading of a Stack's status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tagtrail.adapters.kube.stacks import LastUpdate
from tagtrail.config import parse_config
from tagtrail.errors import ConfigError
from tagtrail.reconcile.applied import judged

CONFIG = """\
image: ghcr.io/acme/homelab/{app}
deploy:
  git:
    files: [pulumi/Pulumi.prod.yaml]
    applied_by:
      pulumi_stack: {namespace: pulumi, name: homeslice-prod}
kubernetes: {namespaces: [default]}
"""


def problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "tagtrail.yaml")
    [line] = str(caught.value).splitlines()
    return line


def test_applied_by_names_the_stack_with_defaults_that_never_roll_back() -> None:
    settings = parse_config(CONFIG).deploy.git
    assert settings is not None
    assert settings.applied_by is not None
    assert settings.applied_by.pulumi_stack.ref == "stack/pulumi/homeslice-prod"
    assert settings.applied_by.timeout == timedelta(minutes=10)
    assert settings.applied_by.rollback is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            CONFIG.replace("kubernetes: {namespaces: [default]}\n", ""),
            "tagtrail.yaml:6:7: deploy.git.applied_by: it needs a kubernetes: section saying how to reach"
            " the cluster",
        ),
        (
            CONFIG.replace("name: homeslice-prod", "name: Homeslice_Prod"),
            "tagtrail.yaml:6:47: deploy.git.applied_by.pulumi_stack.name: 'Homeslice_Prod' is not a"
            " resource name",
        ),
        (
            CONFIG.replace("namespace: pulumi, ", ""),
            "tagtrail.yaml:6:21: deploy.git.applied_by.pulumi_stack.namespace: required key is missing",
        ),
        (
            CONFIG.replace("homeslice-prod}", "homeslice-prod}\n      timeout: soon"),
            "tagtrail.yaml:7:16: deploy.git.applied_by.timeout:",
        ),
    ],
)
def test_a_wrong_applied_by_is_one_line_at_its_place(text: str, expected: str) -> None:
    assert problem(text).startswith(expected)


def update(**status: object) -> LastUpdate:
    return LastUpdate.of({"status": {"lastUpdate": status}})


DEPLOY, LATER, OLDER = "d" * 40, "e" * 40, "c" * 40


def descends(later: str) -> bool:
    return later in (DEPLOY, LATER)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (update(state="succeeded", lastAttemptedCommit=DEPLOY, lastSuccessfulCommit=DEPLOY), "applied"),
        (update(state="succeeded", lastAttemptedCommit=LATER, lastSuccessfulCommit=LATER), "applied"),
        (update(state="failed", lastAttemptedCommit=DEPLOY, lastSuccessfulCommit=OLDER), "failed"),
        (update(state="failed", lastAttemptedCommit=LATER, lastSuccessfulCommit=DEPLOY), "applied"),
        (update(state="succeeded", lastAttemptedCommit=OLDER, lastSuccessfulCommit=OLDER), None),
        (update(state="failed", lastAttemptedCommit=OLDER), None),
        (LastUpdate.of({"status": {}}), None),
        (LastUpdate.of({}), None),
    ],
)
def test_a_stack_judges_the_deploy_commit_by_what_it_applied_and_attempted(
    last: LastUpdate, expected: str | None
) -> None:
    found = judged(last, DEPLOY, descends)
    assert (found.state if found else None) == expected


def test_the_operators_message_is_its_first_line_bounded() -> None:
    last = update(state="failed", message="\n  error: update failed\n" + "x" * 1000, failures="3")
    assert last.message == "error: update failed"
    assert update(message="y" * 1000).message.endswith("…")
    assert len(update(message="y" * 1000).message) == 300
    assert last.failures == 0  # a value of the wrong type is not believed

"""`environments:`: lanes in the order builds go through them, each a deploy: of its own over deploy:'s
settings; an unknown `from`, a cycle or a target in both places is one line at its file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import run
from bench.git import init_repo
from tagtrail.config import parse_config
from tagtrail.config.environments import DEFAULT, branches_of_any, names, view
from tagtrail.errors import ConfigError, TagtrailError

LANES = """\
image: reg.lan/{app}
deploy:
  branch: main
  min_age: 5m
  pins: {a: main.20250101-000000.abcdef0}
  apps:
    a: {branch: dev}
environments:
  prod:
    from: staging
    soak: 30m
    approval: manual
    min_age: 0s
    pins: {b: main.20250101-000000.abcdef1}
    git: {files: [deploy/prod.yaml]}
  staging:
    git: {files: [deploy/staging.yaml]}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "tagtrail.yaml")
    return str(caught.value).splitlines()


def test_lanes_go_in_the_order_builds_take_whatever_order_they_are_written_in() -> None:
    assert names(parse_config(LANES)) == ["staging", "prod"]


def test_a_single_deploy_is_one_environment_seen_as_itself() -> None:
    config = parse_config("image: reg.lan/{app}\ndeploy:\n  git: {files: [a.yaml]}\n")
    assert names(config) == [DEFAULT]
    assert view(config, DEFAULT) is config


def test_a_lane_overrides_what_it_says_and_takes_the_rest_from_deploy() -> None:
    config = parse_config(LANES)
    prod, staging = view(config, "prod"), view(config, "staging")
    assert prod.deploy.git is not None
    assert prod.deploy.git.files == ["deploy/prod.yaml"]
    assert staging.deploy.git is not None
    assert staging.deploy.git.files == ["deploy/staging.yaml"]
    assert prod.deploy.min_age_of("c").total_seconds() == 0
    assert staging.deploy.min_age_of("c").total_seconds() == 300
    assert prod.deploy.pins == {"a": "main.20250101-000000.abcdef0", "b": "main.20250101-000000.abcdef1"}
    assert staging.deploy.pins == {"a": "main.20250101-000000.abcdef0"}
    assert prod.deploy.branches_of("a") == staging.deploy.branches_of("a") == ["dev"]
    assert config.environments["prod"].soak.total_seconds() == 1800
    assert config.environments["prod"].approval == "manual"
    assert config.environments["staging"].approval == "auto"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            LANES.replace("from: staging", "from: stagin"),
            "tagtrail.yaml:10:11: environments.prod.from: no environment 'stagin' to take builds from"
            " (known: staging)",
        ),
        (
            LANES.replace("  staging:\n", "  staging:\n    from: prod\n"),
            "tagtrail.yaml:10:11: environments.prod.from: environments take builds from each other in a"
            " circle: prod → staging → prod",
        ),
        (
            LANES.replace("deploy:\n", "deploy:\n  git: {files: [x.yaml]}\n"),
            "tagtrail.yaml:3:8: deploy.git: deploy.git and environments: are both set: with environments,"
            " each says where its deploys land; move it into one",
        ),
        (
            LANES.replace("approval: manual", "approval: later"),
            "tagtrail.yaml:12:15: environments.prod.approval: Input should be 'auto' or 'manual'",
        ),
        (
            LANES.replace("soak: 30m", "soak: a while"),
            "tagtrail.yaml:11:11: environments.prod.soak: 'a while' is not a duration such as 30s, 10m,"
            " 2h or 1d",
        ),
    ],
)
def test_a_mistake_in_the_lanes_is_one_line_at_its_place(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_an_unknown_environment_is_named_with_the_known_ones() -> None:
    with pytest.raises(TagtrailError, match=r"no environment 'qa' in tagtrail\.yaml"):
        view(parse_config(LANES), "qa")


@pytest.mark.parametrize(
    "command", [("config", "check"), ("plan",), ("deploy",), ("history", "web", "--env", "prod")]
)
def test_an_environments_deploy_file_that_is_not_there_is_one_line_at_its_place(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    config = LANES.replace("deploy/prod.yaml", "deploy/nosuch.yaml")
    deploy = "web:\n  image: reg.lan/web:x\n"
    init_repo(
        tmp_path / "site",
        {"tagtrail.yaml": config, "apps/web/Dockerfile": "FROM scratch\n", "deploy/staging.yaml": deploy},
    )
    monkeypatch.chdir(tmp_path / "site")
    code, out, err = run(capsys, *command)
    assert code == 1, out + err
    assert "tagtrail.yaml:15:19: environments.prod.git.files[0]: 'deploy/nosuch.yaml' is not a file" in err
    assert len(err.strip().splitlines()) == 1, err


def test_an_environment_sees_the_cluster_through_its_own_namespaces() -> None:
    text = LANES.replace("    approval: manual\n", "    approval: manual\n    namespaces: [prod]\n")
    config = parse_config(text + "kubernetes: {namespaces: [staging]}\n")
    prod, staging = view(config, "prod").kubernetes, view(config, "staging").kubernetes
    assert prod is not None
    assert staging is not None
    assert (prod.namespaces, staging.namespaces) == (["prod"], ["staging"])
    assert problems(text.replace("[prod]", "[Prod]")) == [
        "tagtrail.yaml:13:17: environments.prod.namespaces: 'Prod' is not a namespace name (lower-case"
        " letters, digits and '-')"
    ]


def test_the_build_workflow_ignores_every_environments_deploy_files() -> None:
    from tagtrail.features.ci import WorkflowOptions, workflow

    text = workflow(parse_config(LANES), WorkflowOptions())
    ignored = text.split("paths-ignore:\n")[1].split("  workflow_dispatch")[0]
    assert ignored == "      - 'deploy/staging.yaml'\n      - 'deploy/prod.yaml'\n"  # no deploy → build loop


def test_a_build_any_environment_takes_is_one_to_look_at() -> None:
    """A webhook for a build of prod's branch wakes the apps though staging deploys another (and retention
    judges it as a deploy branch's build): the branches of every environment, in lane order."""
    config = parse_config(
        LANES.replace("    min_age: 0s\n", "    min_age: 0s\n    branch: [release, main]\n")
    )
    assert branches_of_any(config, "a") == ("dev",)  # its own branch in deploy:.apps, which prod keeps
    assert branches_of_any(config, "b") == ("main", "release")
    single = parse_config("image: reg.lan/{app}\ndeploy:\n  branch: trunk\n  git: {files: [a.yaml]}\n")
    assert branches_of_any(single, "b") == ("trunk",)

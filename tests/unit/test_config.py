"""tagtrail.yaml: the documented example loads as written; every mistake is named with file:line:column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagtrail.config import Config, find_config, load_config, parse_config
from tagtrail.config.docs import json_schema, settings
from tagtrail.errors import ConfigError

EXAMPLE = """\
scheme: "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
image: ghcr.io/acme/homelab/{app}   # how an app's image is named
registries:
  "127.0.0.1:5000": {insecure: true}          # plain HTTP allowed only where said
apps:
  root: apps                                  # each folder below it with a Dockerfile/Containerfile is an app
  exclude: [shared]
  inputs:                                     # more paths that belong to an app's build
    backup-nas: ["apps/shared/**"]
deploy:
  branch: main                                # only tags of this branch are eligible
  aliases: ["registry.lan:32000/{app}"]   # other names under which the same images appear in files
  git:
    files: [pulumi/Pulumi.prod.yaml]
    branch: main
    push: true
    then: "make -C pulumi up"                 # optional command after a deploy commit
  pins:
    doorbell: main.20251014-050954.185c95c
"""


def test_the_documented_example_loads_as_written() -> None:
    config = parse_config(EXAMPLE)
    assert config.image_for("backup-nas") == "ghcr.io/acme/homelab/backup-nas"
    assert config.registries["127.0.0.1:5000"].insecure is True
    assert config.apps.exclude == ["shared"]
    assert config.apps.inputs == {"backup-nas": ["apps/shared/**"]}
    assert config.deploy.branches == ["main"]
    assert config.deploy.aliases == ["registry.lan:32000/{app}"]
    assert config.deploy.git is not None
    assert config.deploy.git.files == ["pulumi/Pulumi.prod.yaml"]
    assert config.deploy.git.then == "make -C pulumi up"
    assert config.deploy.pins == {"doorbell": "main.20251014-050954.185c95c"}
    assert config.tag_scheme.example == "main.20251014-051038.185c95c"


def test_defaults_need_only_an_image() -> None:
    config = parse_config("image: ghcr.io/o/r/{app}\n")
    assert config.scheme == "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
    assert config.apps.root == "apps"
    assert config.deploy.branches == ["main"]
    assert config.deploy.git is None


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "tagtrail.yaml")
    return str(caught.value).splitlines()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            EXAMPLE.replace("    push: true", "    pussh: true"),
            "tagtrail.yaml:16:5: deploy.git.pussh: unknown key; did you mean 'push'?",
        ),
        (
            EXAMPLE.replace("registries:", "registrys:"),
            "tagtrail.yaml:3:1: registrys: unknown key; did you mean 'registries'?",
        ),
        (
            EXAMPLE.replace("  exclude: [shared]", "  exclude: [shared]\n  zzz: 1"),
            "tagtrail.yaml:8:3: apps.zzz: unknown key; known keys here: root, exclude, inputs",
        ),
        (
            EXAMPLE.replace("tz='UTC'", "tz='Pacific/Los Angeles'"),
            "tagtrail.yaml:1:9: scheme: unknown time zone 'Pacific/Los Angeles'",
        ),
        (
            EXAMPLE.replace("image: ghcr.io/acme/homelab/{app}", "image: ghcr.io/Acme/homelab/{app}"),
            "tagtrail.yaml:2:8: image: 'ghcr.io/Acme/homelab/{app}' is not an image repository",
        ),
        (
            EXAMPLE.replace("image: ghcr.io/acme/homelab/{app}", "image: ghcr.io/acme/homelab"),
            "tagtrail.yaml:2:8: image: 'ghcr.io/acme/homelab' must contain '{app}' exactly once",
        ),
        (
            EXAMPLE.replace("image: ghcr.io/acme/homelab/{app}", "image: ghcr.io/acme/{app}:latest"),
            "tagtrail.yaml:2:8: image: 'ghcr.io/acme/{app}:latest' names a tag or digest",
        ),
        (
            EXAMPLE.replace("{insecure: true}", "{insecure: maybe}"),
            'tagtrail.yaml:4:32: registries["127.0.0.1:5000"].insecure: Input should be a valid boolean',
        ),
        (
            EXAMPLE.replace('"127.0.0.1:5000"', '"http://127.0.0.1:5000"'),
            "tagtrail.yaml:4:3: registries[\"http://127.0.0.1:5000\"]: 'http://127.0.0.1:5000' is not a registry host",
        ),
        (
            EXAMPLE.replace("doorbell: main.20251014-050954.185c95c", "doorbell: 'not a tag'"),
            "tagtrail.yaml:19:15: deploy.pins.doorbell: 'not a tag' is not a valid image tag",
        ),
        (
            EXAMPLE.replace("files: [pulumi/Pulumi.prod.yaml]", "files: [../outside.yaml]"),
            "tagtrail.yaml:14:13: deploy.git.files[0]: '../outside.yaml' must be a path inside the repository",
        ),
        (
            EXAMPLE.replace("files: [pulumi/Pulumi.prod.yaml]", "files: []"),
            "tagtrail.yaml:14:12: deploy.git.files: List should have at least 1 item",
        ),
        (
            EXAMPLE.replace("  branch: main                ", "  branch: [main, 7]"),
            "tagtrail.yaml:11:18: deploy.branch[1]: Input should be a valid string",
        ),
        (
            EXAMPLE.replace('aliases: ["registry.lan:32000/{app}"]', 'aliases: ["registry.lan:32000/app"]'),
            "tagtrail.yaml:12:13: deploy.aliases[0]: 'registry.lan:32000/app' must contain '{app}' exactly once",
        ),
        (
            EXAMPLE.split("image:", maxsplit=1)[0] + "apps: {}\n",
            "tagtrail.yaml:1:1: image: required key is missing",
        ),
        (EXAMPLE + "image: again\n", 'tagtrail.yaml:20:1: not valid YAML: found duplicate key "image"'),
        ("image: [\n", "tagtrail.yaml:2:1: not valid YAML"),
        ("- a list\n", "tagtrail.yaml:1:1: the top level must be a mapping"),
        ("", "tagtrail.yaml:1:1: the file is empty"),
        (
            "image: ghcr.io/o/{app}\nsha_length: 3\n",
            "tagtrail.yaml:2:13: sha_length: Input should be greater than or equal to 4",
        ),
    ],
)
def test_each_problem_names_file_line_column_and_field(text: str, expected: str) -> None:
    lines = problems(text)
    assert any(line.startswith(expected) for line in lines), lines


def test_every_problem_is_reported_not_just_the_first() -> None:
    lines = problems("image: ghcr.io/o/{app}\nscheem: x\ndeploy:\n  brnch: main\n")
    assert lines == [
        "tagtrail.yaml:2:1: scheem: unknown key; did you mean 'scheme'?",
        "tagtrail.yaml:4:3: deploy.brnch: unknown key; did you mean 'branch'?",
    ]


def test_secret_looking_values_are_not_echoed() -> None:
    lines = problems("image: ghcr.io/o/{app}\ndeploy:\n  git:\n    files: [a]\n    push: hunter2-secret\n")
    assert lines
    assert all("hunter2" not in line for line in lines)


def test_find_config_walks_up_to_the_nearest_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tagtrail.yaml").write_text("image: ghcr.io/o/{app}\n")
    nested = tmp_path / "apps" / "web"
    nested.mkdir(parents=True)
    assert find_config(nested) == tmp_path / "tagtrail.yaml"
    monkeypatch.setenv("TAGTRAIL_CONFIG", str(tmp_path / "elsewhere.yaml"))
    assert find_config(nested) == tmp_path / "elsewhere.yaml"


def test_the_search_stops_at_the_top_of_the_git_repository(tmp_path: Path) -> None:
    (tmp_path / "tagtrail.yaml").write_text("image: ghcr.io/o/{app}\n")  # someone else's, above the repo
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "apps").mkdir()
    with pytest.raises(
        ConfigError, match=r"no tagtrail\.yaml here or in any parent folder; pass --config PATH"
    ):
        find_config(repo / "apps")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_every_setting_has_a_one_line_description() -> None:
    rows = settings()
    assert {row.key for row in rows} >= {
        "scheme",
        "image",
        "registries",
        "registries.<name>.insecure",
        "apps.root",
        "apps.inputs",
        "deploy.branch",
        "deploy.aliases",
        "deploy.git.files",
        "deploy.git.then",
        "deploy.pins",
    }
    for row in rows:
        assert row.description, row.key
        assert "\n" not in row.description, row.key


def test_the_json_schema_carries_the_descriptions() -> None:
    schema = json_schema()
    assert schema["properties"]["scheme"]["description"].startswith("The tag template")
    assert schema["additionalProperties"] is False
    text = json.dumps(schema)
    for row in settings():
        assert json.dumps(row.description)[1:-1] in text, row.key


def test_config_is_immutable() -> None:
    config = parse_config("image: ghcr.io/o/{app}\n")
    with pytest.raises(ValueError, match="frozen"):
        config.image = "x"  # type: ignore[misc]
    assert isinstance(config, Config)


# Hostile or unlucky files: one clear line each, never a hang, a memory blow-up or a traceback.

BOMB = "image: a/{app}\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n" for n in range(1, 9)
)


def _only_problem(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert len(caught.value.problems) == 1, caught.value.problems
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    # 10^9 nodes once expanded: ran to 1.85 GB before this guard
    assert _only_problem(BOMB) == (
        "tagtrail.yaml:7: its aliases expand to more than 1,000,000 nodes (an alias bomb?);"
        " tagtrail.yaml needs none of that"
    )


def test_ordinary_anchors_and_aliases_still_load() -> None:
    config = parse_config("image: a/{app}\ndeploy:\n  branch: &b main\n  apps:\n    web: {branch: *b}\n")
    assert config.deploy.branches_of("web") == ["main"]


def test_deep_nesting_is_refused_with_its_line() -> None:
    deep = "image: a/{app}\nx: " + "[" * 20000 + "]" * 20000 + "\n"
    assert (
        _only_problem(deep)
        == "tagtrail.yaml:2: nesting deeper than 100 levels; tagtrail.yaml needs none of that"
    )


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tagtrail.yaml"
    path.write_text("image: a/{app}\n" + "# filler\n" * 200_000)
    with pytest.raises(ConfigError, match=r"tagtrail.yaml: the file is \d+ KiB, over the limit of 256 KiB"):
        load_config(path)


def test_a_file_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    path = tmp_path / "not-utf8.yaml"
    path.write_bytes(b"image: a/{app}\nscheme: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).endswith("not-utf8.yaml:2:12: not UTF-8 (byte 0xe9); save the file as UTF-8")


def test_a_nul_byte_is_one_line() -> None:
    assert _only_problem("image: a/{app}\nscheme: a\x00b\n") == (
        "tagtrail.yaml:2:10: a character YAML does not allow (U+0000); remove it"
    )


def test_a_value_wrong_for_every_arm_of_a_union_is_reported_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("image: a/{app}\ndeploy:\n  branch: {a: 1}\n")
    lines = str(caught.value).splitlines()
    assert len(lines) == len(set(lines))


@pytest.mark.parametrize(
    "text",
    [
        "image: a/{app}\nserve:\n  interval: 0s\n",
        "image: a/{app}\ndeploy:\n  apps:\n    web: {interval: 0}\n",
        'image: a/{app}\nregistries:\n  "r.lan": {interval: 0s}\n',
    ],
)
def test_a_poll_interval_of_zero_is_refused(text: str) -> None:
    assert "a poll interval must be at least 1s" in _only_problem(text)


GITHUB = "image: a/{app}\nbase_images:\n  on_change: rebuild\n  github:\n    repository: acme/homelab\n"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('    repository: "../.."', "base_images.github.repository: '../..' is not a GitHub owner/name"),
        ('    repository: "acme/.."', "base_images.github.repository: 'acme/..' is not a GitHub owner/name"),
        ('    repository: "-acme/x"', "base_images.github.repository: '-acme/x' is not a GitHub owner/name"),
        ('    workflow: ".."', "base_images.github.workflow: '..' is not a workflow file name"),
        ('    workflow: "build"', "base_images.github.workflow: 'build' is not a workflow file name"),
        ("    api_url: http://github.example", "base_images.github.api_url: 'http://github.example' is"),
        ("    api_url: https://x:y@github.example", "base_images.github.api_url: 'https://x:***@github"),
        (
            "    api_url: https://github.example/?a=1",
            "base_images.github.api_url: 'https://github.example/?a",
        ),
    ],
)
def test_the_github_dispatch_names_and_endpoint_are_checked(line: str, expected: str) -> None:
    """The token goes where these say: a repository of `..` or a workflow of `..` would post it to another
    endpoint of the API host, and plain HTTP would send it in the clear (issue 24, item 17)."""
    repository_line = "    repository: acme/homelab\n"
    text = GITHUB.replace(repository_line, "") if "repository" in line else GITHUB
    found = _only_problem(f"{text}{line}\n")
    assert expected in found, found
    assert "x:y" not in found


@pytest.mark.parametrize(
    "line",
    [
        "    repository: acme/.github",
        "    repository: my-org/a.b_c-d",
        "    workflow: build.yml",
        "    workflow: release.yaml",
        "    workflow: '1234567'",
        "    api_url: http://127.0.0.1:8080",
        "    api_url: http://[::1]:8080/api/v3",
        "    api_url: http://localhost:9000",
        "    api_url: https://ghe.example/api/v3",
    ],
)
def test_the_github_names_and_endpoints_people_use_are_accepted(line: str) -> None:
    repository_line = "    repository: acme/homelab\n"
    text = GITHUB.replace(repository_line, "") if "repository" in line else GITHUB
    assert parse_config(f"{text}{line}\n").base_images.github is not None

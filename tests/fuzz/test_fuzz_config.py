"""Fuzz: tagtrail.yaml's loader takes any text and returns a Config or raises ConfigError, in bounded time.

Two sources of text: YAML-ish lines built from the config's own keys (so examples reach the schema, not
only the YAML parser), and valid configs with a few edits (so they reach the checks behind the schema:
schemes, zones, durations, pins)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bench.fuzzing import mutated, outcome, yamlish
from tagtrail.config import Config, parse_config
from tagtrail.errors import ConfigError

KEYS = [
    "scheme", "sha_length", "image", "registries", "insecure", "ca_file", "credentials", "concurrency",
    "rps", "timeout", "page_size", "interval", "apps", "root", "exclude", "inputs", "deploy", "branch",
    "aliases", "git", "files", "url", "push", "then", "then_env", "skip_ci", "lock_timeout", "retries",
    "author", "cache", "marker_namespaces", "pins", "min_age", "cooldown", "helm", "repository", "tag",
    "digest", "decision_log", "serve", "host", "port", "jitter", "coalesce_max", "pull", "public",
    "token_env", "secure_cookies", "webhooks", "registry", "github", "generic", "secret_env", "header",
    "max_body", "rate", "commit_url", "notify", "urls", "urls_env", "registry_errors", "web", "doorbell",
    "127.0.0.1:5000", "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='America/Los_Angeles'}}.{{sha}}",
    "{{date 'X'}}", "tz='Pacific/Los Angeles'", "env:REG", "file:/etc/x",
]  # fmt: skip

VALID = [
    """\
scheme: "{{branch}}.{{date 'YYYYMMDD-HHmmss' tz='UTC'}}.{{sha}}"
image: ghcr.io/acme/homelab/{app}   # how an app's image is named
registries:
  "127.0.0.1:5000": {insecure: true, concurrency: 4, interval: 1m}
apps:
  root: apps
  exclude: [shared]
  inputs:
    backup-nas: ["apps/shared/**"]
deploy:
  branch: [main, release]
  aliases: ["registry.lan:32000/{app}"]
  git:
    files: [pulumi/Pulumi.prod.yaml]
    branch: main
    push: true
    then: "make -C pulumi up"
    retries: 3
  pins:
    doorbell: main.20251014-050954.185c95c
  min_age: 10m
  apps:
    web:
      branch: main
      helm:
        - {repository: image.name, tag: image.tag, digest: image.digest}
""",
    """\
image: registry.lan:32000/{app}
sha_length: 12
scheme: "v{{date 'YY.M.D-H.m.s' tz='Australia/Lord_Howe'}}-{{branch}}-{{sha}}"
deploy:
  marker_namespaces: [flux-system, apps]
  cooldown: 1h
serve:
  host: 0.0.0.0
  port: 9000
  webhooks: {max_body: 4096, rate: 2.5, github: {secret_env: GH}}
notify:
  urls: ["json://127.0.0.1:9/x"]
  registry_errors: 5
""",
]

# What a loader must survive besides: aliases that expand a billion times, deep nesting, a huge flat list.
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
DEEP = "image: " + "[" * 50_000 + "]" * 50_000 + "\n"
DEEP_BLOCK = "".join(" " * i + f"k{i}:\n" for i in range(3000))
WIDE = "image: x/{app}\napps:\n  exclude:\n" + "    - a\n" * 100_000


# A reused anchor (`&w` twice) is valid YAML that ruamel.yaml warns about; a warning is not a failure here
# (the suite turns warnings into errors). It does reach stderr in production: reported, not fixed here.
pytestmark = pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")


def check(text: str) -> None:
    result = outcome(lambda: parse_config(text), ConfigError)
    if isinstance(result, ConfigError):
        assert result.problems, "a ConfigError names at least one problem"
        assert all(p.message for p in result.problems)
    else:
        assert isinstance(result, Config)


@given(yamlish(KEYS))
@example(LAUGHS)
@example(DEEP)
@example(DEEP_BLOCK)
@example(WIDE)
@example("\ud800: x")
@example("image: x/{app}\n\x00")
@example("!!int scheme\n")  # found by the nightly run: ValueError, IndexError, KeyError, AttributeError
@example("!!int \n")
@example("image: !!bool x\n")
@example("!!set x\n")
@example("%YAML 1.20\n---\nimage: x/{app}\n")  # found by the nightly run: AssertionError
@example("a: &w\n  <<: *w\nimage: x/{app}\n")
@example("<<: {GENERATED_TAG}\n")  # found by the nightly run: a merged key has no position (TypeError)
@example("base: &b {image: 1}\n<<: *b\n")
def test_the_loader_accepts_or_refuses_yamlish_text(text: str) -> None:
    check(text)


@given(mutated(VALID, KEYS))
def test_the_loader_accepts_or_refuses_a_mutated_valid_config(text: str) -> None:
    check(text)


@given(st.sampled_from(VALID))
def test_the_valid_configs_it_mutates_are_valid(text: str) -> None:
    assert isinstance(parse_config(text), Config)

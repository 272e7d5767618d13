"""Fuzz: finding and rewriting image references in any YAML-ish text returns references (and a rewrite that
reads back) or raises RefsError; nothing else, in bounded time.

Deploy files are written by people and other tools; a crash in `find` stops `plan` for every app, and a
crash in `rewrite` between locating and proving would be worse than a refusal."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bench.fuzzing import mutated, outcome, yamlish
from tagtrail.adapters.refs import HelmKeys, Image, Matcher, Reference, find, rewrite
from tagtrail.errors import TagtrailError

APPS = ("web", "api", "worker")
MATCHER = Matcher(
    "ghcr.io/acme/homelab/{app}",
    ["registry.lan:32000/{app}", "docker.io/library/{app}"],
    helm={"worker": [HelmKeys("image.name", "image.tag", "image.digest")]},
)
TARGETS = {
    app: Image(f"ghcr.io/acme/homelab/{app}", "main.20251014-051038.185c95c", "sha256:" + "2" * 64)
    for app in APPS
}
KEYS = [
    "image", "images", "repository", "name", "newName", "tag", "newTag", "version", "digest", "registry",
    "containers", "spec", "template", "values", "web", "api", "worker", "homeslice:sonos", "nginx",
]  # fmt: skip

VALID = [
    """\
# Pulumi stack config
config:
  homeslice:sonos:
    image: ghcr.io/acme/homelab/web:main.20251010-000000.aaaaaaa@sha256:"""
    + "1" * 64
    + """
  nginx: nginx:1.25
  homeslice:salt: v1:abc==
""",
    """\
image:
  registry: ghcr.io
  repository: acme/homelab/api
  tag: "old"  # the chart's tag
  digest: ""
worker: &w
  image: {name: ghcr.io/acme/homelab/worker, tag: v1, digest: null}
other:
  <<: *w
""",
    """\
apiVersion: kustomize.config.k8s.io/v1beta1
images:
  - name: ghcr.io/acme/homelab/web
    newTag: old
  - name: app
    newName: registry.lan:32000/api
    newTag: old # {"$imagepolicy": "flux-system:api:tag"}
---
spec:
  containers:
    - image: !!str docker.io/library/worker:1.0  # {"$imagepolicy": "flux-system:worker"}
""",
]


# A reused anchor (`&w` twice) is valid YAML that ruamel.yaml warns about; a warning is not a failure here
# (the suite turns warnings into errors). It does reach stderr in production: reported, not fixed here.
pytestmark = pytest.mark.filterwarnings("ignore::ruamel.yaml.error.ReusedAnchorWarning")


def check(text: str) -> None:
    found = outcome(lambda: find("f.yaml", text, MATCHER), TagtrailError)
    if isinstance(found, TagtrailError):
        return
    assert all(isinstance(r, Reference) and r.app for r in found)
    chosen = {r.app: TARGETS[r.app] for r in found if r.app in TARGETS}
    result = outcome(lambda: rewrite("f.yaml", text, MATCHER, chosen), TagtrailError)
    if isinstance(result, TagtrailError):
        return
    new_text, changed = result
    assert isinstance(new_text, str)
    assert (new_text == text) == (not changed)


@given(yamlish(KEYS))
@example("a: &a [" + "*a, " * 1000 + "]")
@example("image: " + "[" * 50_000)
@example("- " * 5000 + "ghcr.io/acme/homelab/web:v1")
@example("%YAML 1.20\n---\nimage: ghcr.io/acme/homelab/web:v1\n")  # AssertionError in ruamel.yaml
@example("a: &w\n  <<: *w\n  image: ghcr.io/acme/homelab/web:v1\n")  # nightly: RecursionError
@example("\ud800: ghcr.io/acme/homelab/web:v1")
def test_find_and_rewrite_take_any_yamlish_text(text: str) -> None:
    check(text)


@given(mutated(VALID, KEYS))
def test_find_and_rewrite_take_a_mutated_deploy_file(text: str) -> None:
    check(text)


@given(st.sampled_from(VALID))
def test_the_deploy_files_it_mutates_have_references(text: str) -> None:
    assert find("f.yaml", text, MATCHER)

"""Write-back against its peers' own test suites: Flux's image-automation-controller, Argo CD Image Updater and
kustomize (issue 10). Each case is a peer's fixture, the update the peer's test makes, and the peer's
expected output.

The fixtures are copied verbatim into tests/fixtures/peers/writeback/ (its README names each file's repository,
path, commit and test; all three projects are Apache-2.0). Where tagtrail's contract is stricter, the case
says so in `stricter`, as the exact text that differs from the peer's expectation: tagtrail always pins
`tag@digest` (invariant 3), so where the peer writes a bare tag, tagtrail writes the tag and the digest, and
where a peer re-dumps the YAML (re-indenting, sorting keys), tagtrail leaves every other byte as it was.
Cases that do not apply to tagtrail are in LEFT_OUT, with the reason; a test checks that every fixture is
either used or listed there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tagtrail.adapters.refs import HelmKeys, Image, Matcher, find, rewrite
from tagtrail.errors import RefsError

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "tests" / "fixtures" / "peers" / "writeback"
SHARED = ROOT.parent / "shared" / "peer-fixtures" / "writeback"

D = "sha256:" + "d" * 64  # the digest tagtrail pins where the peer's update names only a tag
FLUX_DIGEST = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be"
KUSTOMIZE_DIGEST = "sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"
HUB = Matcher("docker.io/library/{app}")
FLUX = Matcher("index.repo.fake/{app}", namespaces=["automation-ns"])  # the namespace of the test's policies
# TestUpdateWithSetters' policies. Its third, `unchanged`, is not a target: tagtrail is only ever asked to
# rewrite the apps it deploys, and that policy's latest image is what the files already say.
FLUX_TARGETS = {
    "policy": Image("index.repo.fake/updated", "v1.0.1", D),
    "policy-with-digest": Image("image", "v1.0.0", FLUX_DIGEST),
}


def pinned(tag: str) -> str:
    return f"{tag}@{D}"


@dataclass(frozen=True)
class Case:
    """`original` rewritten for `targets` must equal `expected` with each (peer's text → tagtrail's) of
    `stricter` applied: the peer's expectation, changed only where tagtrail's contract is stricter."""

    original: str
    expected: str | None
    matcher: Matcher
    targets: dict[str, Image]
    stricter: tuple[tuple[str, str], ...] = ()
    setter: dict[str, str] = field(default_factory=dict)  # text the peer's test substitutes in both files


def read(relative: str) -> str:
    return (PEERS / relative).read_bytes().decode()


EXACT = {
    # Flux: TestUpdateWithSetters (the expected folder holds the files that change; the others stay).
    "flux/setters/marked": Case(
        "flux/update/setters/original/marked.yaml",
        "flux/update/setters/expected/marked.yaml",
        FLUX,
        FLUX_TARGETS,
        (("index.repo.fake/updated:v1.0.1 #", f"index.repo.fake/updated:{pinned('v1.0.1')} #"),),
    ),
    "flux/setters/Kustomization": Case(
        "flux/update/setters/original/Kustomization",
        "flux/update/setters/expected/Kustomization",
        FLUX,
        FLUX_TARGETS,
        # No `:digest` marker of this policy in the file: its `:tag` field carries the digest too.
        (("newTag: v1.0.1 #", f"newTag: {pinned('v1.0.1')} #"),),
    ),
    "flux/setters/kustomization.yml": Case(
        "flux/update/setters/original/kustomization.yml",
        "flux/update/setters/expected/kustomization.yml",
        FLUX,
        FLUX_TARGETS,
        (("newTag: v1.0.1 #", f"newTag: {pinned('v1.0.1')} #"),),
    ),
    "flux/setters/otherns": Case(
        "flux/update/setters/original/otherns.yaml",
        "flux/update/setters/original/otherns.yaml",
        FLUX,
        FLUX_TARGETS,
    ),
    "flux/setters/unmarked": Case(
        "flux/update/setters/original/unmarked.yaml",
        "flux/update/setters/original/unmarked.yaml",
        FLUX,
        FLUX_TARGETS,
    ),
    "flux/setters/test": Case(
        "flux/update/setters/original/test.yaml", "flux/update/setters/original/test.yaml", FLUX, FLUX_TARGETS
    ),
    # Flux: TestImageUpdateAutomationReconciler_e2e puts a policy marker where SETTER_SITE is.
    "flux/controller/appconfig": Case(
        "flux/controller/appconfig/deploy.yaml",
        "flux/controller/appconfig-setters-expected/deploy.yaml",
        Matcher("ghcr.io/acme/homelab/{app}"),
        {"helloworld": Image("helloworld", "1.0.1", D)},
        (("helloworld:1.0.1 #", f"helloworld:{pinned('1.0.1')} #"),),
        {"SETTER_SITE": '{"$imagepolicy": "flux-system:helloworld"}'},
    ),
    # Flux: the removed UpdateImageEverywhere mode moved `used` to v1.1.0 and left other images alone.
    "flux/replace/deployment": Case(
        "flux/update/replace/original/deployment.yaml",
        "flux/update/replace/expected/deployment.yaml",
        HUB,
        {"used": Image("docker.io/library/used", "v1.1.0", D)},
        (("used:v1.1.0", f"used:{pinned('v1.1.0')}"),),
    ),
    "flux/replace/cronjob": Case(
        "flux/update/replace/original/cronjob.yaml",
        "flux/update/replace/expected/cronjob.yaml",
        HUB,
        {"used": Image("docker.io/library/used", "v1.1.0", D)},
        (("used:v1.1.0", f"used:{pinned('v1.1.0')}"),),
    ),
    # Argo CD Image Updater: pkg/argocd/update_test.go.
    "argo/preserves-formatting": Case(
        "argo/preserves-formatting/original.yaml",
        "argo/preserves-formatting/expected.yaml",
        HUB,
        {"myapp": Image("myapp", "v2.0.0", D)},
        (("tag: v2.0.0", f"tag: {pinned('v2.0.0')}"),),  # both: the merged mapping's own tag and its base's
    ),
    "argo/preserves-block-scalars": Case(
        "argo/preserves-block-scalars/original.yaml",
        "argo/preserves-block-scalars/expected.yaml",
        HUB,
        {"myapp": Image("myapp", "v2.0.0", D)},
        (("tag: v2.0.0", f"tag: {pinned('v2.0.0')}"),),
    ),
    "argo/image-spec": Case(
        "argo/image-spec/original.yaml",
        "argo/image-spec/expected.yaml",
        HUB,
        {"nginx": Image("nginx", "v1.0.0", D)},
        (("nginx:v1.0.0", f"nginx:{pinned('v1.0.0')}"),),
    ),
    "argo/flat-dotted-keys": Case(
        "argo/flat-dotted-keys/original.yaml",
        "argo/flat-dotted-keys/expected.yaml",
        Matcher("docker.io/library/{app}", helm={"nginx": [HelmKeys("image.name", "image.tag")]}),
        {"nginx": Image("nginx", "v1.0.0", D)},
        (("image.tag: v1.0.0", f"image.tag: {pinned('v1.0.0')}"),),
    ),
    "argo/name-tag-long-form": Case(
        "argo/name-tag-long-form/original.yaml",
        "argo/name-tag-long-form/expected.yaml",
        Matcher("docker.io/bitnami/{app}"),
        {"nginx": Image("docker.io/bitnami/nginx", "v1.0.0", D)},
        (("tag: v1.0.0", f"tag: {pinned('v1.0.0')}"),),
    ),
    "argo/registry-name-tag-short-form": Case(
        "argo/registry-name-tag-short-form/original.yaml",
        "argo/registry-name-tag-short-form/expected.yaml",
        Matcher("docker.io/bitnami/{app}"),
        {"nginx": Image("docker.io/bitnami/nginx", "v1.0.0", D)},
        (("tag: v1.0.0", f"tag: {pinned('v1.0.0')}"),),
    ),
    "argo/set-helm-value-aliases-comments-multiline": Case(
        "argo/set-helm-value-aliases-comments-multiline/original.yaml",
        "argo/set-helm-value-aliases-comments-multiline/expected.yaml",
        HUB,
        {"repo-name": Image("repo-name", "v2.0.0", D)},
        (("tag: v2.0.0", f"tag: {pinned('v2.0.0')}"),),
    ),
    "argo/set-helm-value-aliases-to-mappings": Case(
        "argo/set-helm-value-aliases-to-mappings/original.yaml",
        "argo/set-helm-value-aliases-to-mappings/expected.yaml",
        HUB,
        {"repo-name": Image("repo-name", "v2.0.0", D)},
        (("tag: v2.0.0", f"tag: {pinned('v2.0.0')}"),),
    ),
    "argo/set-helm-value-aliases-to-scalars": Case(
        "argo/set-helm-value-aliases-to-scalars/original.yaml",
        "argo/set-helm-value-aliases-to-scalars/expected.yaml",
        HUB,
        {"repo-name": Image("repo-name", "v2.0.0", D)},
        (("&ver v2.0.0", f"&ver {pinned('v2.0.0')}"),),
    ),
    # kustomize: TestImageTagUpdater_Filter (compared with surrounding whitespace trimmed, as the test does).
    "kustomize/imagetag/new-tag without the broken digest": Case(
        "kustomize/imagetag/new-tag/input.yaml",
        "kustomize/imagetag/new-tag/expected.yaml",
        HUB,
        {"nginx": Image("docker.io/library/nginx", "v2", D)},
        (("nginx:v2\n", f"nginx:{pinned('v2')}\n"),),
        # tagtrail refuses this container's `nginx@sha256:111111111111111111` (see the test below), so the case
        # runs without it, in both files.
        {
            "      - image: nginx@sha256:111111111111111111\n        name: nginx-sha256\n": "",
            "      - image: nginx:v2\n        name: nginx-sha256\n": "",
        },
    ),
}


def _substitute(text: str, setter: dict[str, str]) -> str:
    for old, new in setter.items():
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("name", sorted(EXACT))
def test_the_peers_expected_output(name: str) -> None:
    case = EXACT[name]
    assert case.expected is not None
    original = _substitute(read(case.original), case.setter)
    expected = _substitute(read(case.expected), case.setter)
    for peers, ours in case.stricter:
        assert peers in expected, f"{name}: the stated difference {peers!r} is not in the peer's expectation"
        expected = expected.replace(peers, ours)
    new, _ = rewrite(case.original, original, case.matcher, case.targets)
    if name.startswith("kustomize/imagetag"):
        assert new.strip() == expected.strip()
    else:
        assert new == expected


def load(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def test_flux_reindents_what_tagtrail_keeps_byte_for_byte() -> None:
    """replace/commented and leave/: Flux's expected files re-indent the containers list (a kyaml re-dump);
    tagtrail changes the image's value token only, and the result means what Flux's means."""
    used = {"used": Image("docker.io/library/used", "v1.1.0", D)}
    original = read("flux/update/replace/commented/deployment.yaml")
    new, _ = rewrite("deployment.yaml", original, HUB, used)
    assert new == original.replace("used:v1.0.0", f"used:{pinned('v1.1.0')}")
    peers = read("flux/update/replace/commented-expected/deployment.yaml")
    assert load(new) == load(peers.replace("used:v1.1.0", f"used:{pinned('v1.1.0')}"))
    for name in ("deployment.yaml", "cronjob.yaml"):
        original = read(f"flux/update/leave/original/{name}")
        new, changed = rewrite(name, original, HUB, used)
        assert (new, changed) == (original, [])
        assert load(new) == load(read(f"flux/update/leave/expected/{name}"))


def test_argo_quoted_target_keeps_its_quotes() -> None:
    original = read("argo/quoted-target/original.yaml")
    new, _ = rewrite("values.yaml", original, HUB, {"myapp": Image("myapp", "v2.0.0", D)})
    assert new == original.replace('"v1.0.0"', f'"{pinned("v2.0.0")}"')
    assert load(new)["config"]["image"]["tag"] == pinned("v2.0.0")


def test_argo_document_start_is_kept() -> None:
    original = read("argo/document-start/original.yaml")
    new, _ = rewrite("values.yaml", original, HUB, {"myapp": Image("myapp", "v2.0.0", D)})
    assert new.startswith("---\n")
    assert new == original.replace('"v1.0.0"', f'"{pinned("v2.0.0")}"')


def test_argo_issue_1584_leaves_the_tags_of_images_not_deployed() -> None:
    """The peer's test asserts that the other images' tags survive; the update here moves `manager` only."""
    original = read("argo/issue-1584-non-live-tags/original.yaml")
    matcher = Matcher("registry.local/aiu/{app}")
    new, changed = rewrite(
        "values.yaml", original, matcher, {"manager": Image("registry.local/aiu/manager", "main-1111111", D)}
    )
    assert [r.app for r in changed] == ["manager"]
    assert new == original.replace('tag: "main-0000000"', f'tag: "{pinned("main-1111111")}"', 1)
    assert [(r.app, r.tag) for r in find("values.yaml", new, matcher)] == [
        ("manager", "main-1111111"),
        ("session", "main-0000000"),
        ("reaper", "main-0000000"),
        ("token_rotator", "main-0000000"),
    ]


def test_argo_e2e_helm_app_and_multiple_public_images() -> None:
    values = read("argo/e2e/008-simple-helm-app/values.yaml")
    new, _ = rewrite(
        "values.yaml",
        values,
        Matcher("quay.io/dkarpele/{app}"),
        {"my-guestbook": Image("quay.io/dkarpele/my-guestbook", "1.0.2", D)},
    )
    assert new == values.replace("\n  tag: 1.0.0\n", f"\n  tag: {pinned('1.0.2')}\n")
    assert "#  tag: 1.0.0" in new  # the commented-out block is a comment
    deployment = read("argo/e2e/004-multi-images-public/deployment.yaml")
    targets = {"nginx": Image("nginx", "1.17.10", D), "memcached": Image("memcached", "1.6.10", D)}
    new, _ = rewrite("deployment.yaml", deployment, HUB, targets)
    assert new == deployment.replace("nginx:1.17.0", f"nginx:{pinned('1.17.10')}").replace(
        "memcached:1.6.0", f"memcached:{pinned('1.6.10')}"
    )


# kustomize `edit set image` cases that edit an existing entry. kustomize re-dumps the file (sorting keys);
# the test asserts the output contains the expected entries. tagtrail keeps the bytes and always pins the tag
# and the digest, adding whichever line the entry lacks: compare what the entry means, plus that one line.
KUSTOMIZE = {
    # case: (app, target tag, target digest, the key tagtrail adds beyond the peer's entry)
    "new-tag-only": ("image1", "v1", D, {"digest": D}),
    "keep-new-name-new-tag": ("image1", "v1", D, {"digest": D}),
    "keep-both": ("my-image1", "my-tag", D, {"digest": D}),  # told to deploy what runs, tagtrail pins it
    "set-digest-drop-tag": ("my-image2", "my-tag", KUSTOMIZE_DIGEST, {"newTag": "my-tag"}),
    "update-digest": ("my-image2", "v2", KUSTOMIZE_DIGEST, {"newTag": "v2"}),
}


@pytest.mark.parametrize("case", sorted(KUSTOMIZE))
def test_kustomize_set_image(case: str) -> None:
    app, tag, digest, added = KUSTOMIZE[case]
    original = read(f"kustomize/setimage/{case}/kustomization.yaml")
    matcher = Matcher("docker.io/library/{app}", ["foo.bar.foo:8800/foo/{app}"])
    target = Image(f"docker.io/library/{app}", tag, digest)
    new, _ = rewrite("kustomization.yaml", original, matcher, {app: target})
    peers = load(read(f"kustomize/setimage/{case}/expected-contains.yaml"))["images"]
    ours = load(new)["images"]
    assert ours == [entry | added if entry["name"] == ours[0]["name"] else entry for entry in peers]
    # Byte for byte: the old lines stay in place, values edited; the added line goes after the entry.
    kept = [line for line in new.splitlines() if not line.startswith(f"  {next(iter(added))}:")]
    assert len(kept) == len(original.splitlines())


def test_a_placeholder_tag_is_refused_where_kustomize_would_replace_it() -> None:
    """kustomize/imagetag/tag-with-braces: kustomize sets `{GENERATED_TAG}` to a tag. tagtrail does not
    read a placeholder as a tag; it refuses, naming file and line, rather than leave the image unmanaged."""
    text = read("kustomize/imagetag/tag-with-braces/input.yaml")
    matcher = Matcher("some.registry.io/{app}")
    with pytest.raises(
        RefsError,
        match=r"^input.yaml:11: the image of my-image reads 'some.registry.io/my-image:\{GENERATED_TAG\}'.*; nothing was written$",
    ):
        rewrite(
            "input.yaml", text, matcher, {"my-image": Image("some.registry.io/my-image", "my-fixed-tag", D)}
        )


def test_a_broken_digest_is_refused_where_kustomize_would_replace_it() -> None:
    """kustomize/imagetag/new-tag: `nginx@sha256:111111111111111111` is no digest; the rest of the case
    runs above without that container."""
    text = read("kustomize/imagetag/new-tag/input.yaml")
    with pytest.raises(
        RefsError, match=r"^input.yaml:22: the image of nginx reads 'nginx@sha256:111111111111111111'"
    ):
        rewrite("input.yaml", text, HUB, {"nginx": Image("docker.io/library/nginx", "v2", D)})


LEFT_OUT = {
    "kustomize/setimage/override-file": "moves image1 to another repository (newName); tagtrail changes only"
    " tag and digest and keeps the repository as written",
    "kustomize/setimage/override-file-with-patch": "the same rename, next to a patch",
    "kustomize/setimage/new-name-keep-tag": "renames the image (newName) and keeps the tag: no tag or digest"
    " to deploy, only a rename, which tagtrail never makes",
    "kustomize/imagetag/tag-with-braces": "the peer replaces a `{GENERATED_TAG}` placeholder; tagtrail refuses"
    " it by design (issue 10, item 8): the refusal is tested above",
}
USED = {
    *(c.original for c in EXACT.values()),
    *(c.expected for c in EXACT.values() if c.expected),
    "flux/update/replace/commented/deployment.yaml",
    "flux/update/replace/commented-expected/deployment.yaml",
    *(
        f"flux/update/leave/{d}/{n}"
        for d in ("original", "expected")
        for n in ("deployment.yaml", "cronjob.yaml")
    ),
    "argo/quoted-target/original.yaml",
    "argo/document-start/original.yaml",
    "argo/issue-1584-non-live-tags/original.yaml",
    "argo/e2e/008-simple-helm-app/values.yaml",
    "argo/e2e/004-multi-images-public/deployment.yaml",
    *(
        f"kustomize/setimage/{c}/{f}"
        for c in KUSTOMIZE
        for f in ("kustomization.yaml", "expected-contains.yaml", "args.txt")
    ),
}


def test_every_peer_fixture_is_used_or_left_out_with_a_reason() -> None:
    fixtures = {str(p.relative_to(PEERS)) for p in PEERS.rglob("*") if p.is_file() and p.name != "README.md"}
    unaccounted = {f for f in fixtures - USED if not any(f.startswith(prefix + "/") for prefix in LEFT_OUT)}
    assert unaccounted == set()
    assert USED - fixtures == set()  # every file named above exists


def test_the_copied_fixtures_are_the_shared_ones() -> None:
    """The copy in tests/ is verbatim: where the shared folder sits beside the clone (CI, the team's
    machines), every file must be byte for byte the same."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not beside this clone; the copy in tests/ is used alone")
    shared = {str(p.relative_to(SHARED)): p.read_bytes() for p in SHARED.rglob("*") if p.is_file()}
    copied = {str(p.relative_to(PEERS)): p.read_bytes() for p in PEERS.rglob("*") if p.is_file()}
    assert copied == shared

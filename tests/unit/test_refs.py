"""References in deploy files: found by repository in every shape users write them, rewritten byte for byte."""

from __future__ import annotations

import pytest

import tagtrail.adapters.refs
from tagtrail.adapters.refs import HelmKeys, Image, Matcher, find, rewrite, rewrite_found
from tagtrail.adapters.refs._verify import verify
from tagtrail.config.model import Config
from tagtrail.errors import RefsError

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
M = Matcher("ghcr.io/acme/homelab/{app}", ["registry.lan:32000/{app}"])


def target(app: str, tag: str = "main.20251014-051038.185c95c", digest: str = D2) -> Image:
    return Image(f"ghcr.io/acme/homelab/{app}", tag, digest)


PULUMI = """\
# Pulumi stack for prod. Comments survive.
encryptionsalt: v1:Xq3pZ0kq8YQ=:v1:4o1c0oQm9E0r3Ywq:8n0cS6n0b9uXoFqT3cE7Vw==
config:
  homeslice:sonos:
    image: ghcr.io/acme/homelab/gosonos:main.20251013-051038.aaaaaaa@sha256:1111111111111111111111111111111111111111111111111111111111111111
  homeslice:lights:
    image: "registry.lan:32000/lights:main.20251010-000000.bbbbbbb"   # alias
    replicas: 2
  homeslice:proxy:
    nginx: nginx:1.25
    sidecar: 'ghcr.io/acme/homelab/sidecar'
  homeslice:notes: |
    ghcr.io/acme/homelab/gosonos:in-a-block-scalar-is-text
"""


def test_every_reference_in_a_pulumi_stack_file() -> None:
    refs = find("Pulumi.prod.yaml", PULUMI, M)
    assert [(r.app, r.kind, r.line, r.tag, r.digest) for r in refs] == [
        ("gosonos", "image", 5, "main.20251013-051038.aaaaaaa", D1),
        ("lights", "image", 7, "main.20251010-000000.bbbbbbb", None),
        ("sidecar", "image", 11, None, None),
    ]
    assert refs[1].name == "registry.lan:32000/lights"


def test_rewrite_touches_only_tag_and_digest_and_keeps_quotes_and_aliases() -> None:
    targets = {"gosonos": target("gosonos"), "lights": target("lights"), "sidecar": target("sidecar")}
    new, changed = rewrite("Pulumi.prod.yaml", PULUMI, M, targets)
    assert sorted(r.app for r in changed) == ["gosonos", "lights", "sidecar"]
    assert new == (
        PULUMI.replace(
            "ghcr.io/acme/homelab/gosonos:main.20251013-051038.aaaaaaa@" + D1, targets["gosonos"].reference
        )
        .replace(
            '"registry.lan:32000/lights:main.20251010-000000.bbbbbbb"',
            f'"registry.lan:32000/lights:main.20251014-051038.185c95c@{D2}"',
        )
        .replace("'ghcr.io/acme/homelab/sidecar'", f"'{targets['sidecar'].reference}'")
    )
    assert "in-a-block-scalar-is-text" in new  # block scalars are text, never rewritten


def test_rewrite_is_idempotent() -> None:
    targets = {"gosonos": target("gosonos")}
    once, _ = rewrite("p.yaml", PULUMI, M, targets)
    twice, changed = rewrite("p.yaml", once, M, targets)
    assert twice == once
    assert changed == []


def test_kubernetes_manifests_with_many_documents_and_crlf() -> None:
    text = (
        "apiVersion: apps/v1\r\nkind: Deployment\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n"
        "        - name: web\r\n          image: ghcr.io/acme/homelab/web:old\r\n"
        "        - name: envoy\r\n          image: envoyproxy/envoy:v1.30.0\r\n---\r\n"
        "apiVersion: batch/v1\r\nkind: CronJob\r\nspec:\r\n  jobTemplate:\r\n    spec:\r\n      template:\r\n"
        "        spec:\r\n          initContainers: [{name: migrate, image: ghcr.io/acme/homelab/web:old}]\r\n"
    )
    new, changed = rewrite("k8s.yaml", text, M, {"web": target("web")})
    assert len(changed) == 2
    assert new == text.replace("ghcr.io/acme/homelab/web:old", target("web").reference)
    assert new.count("\r\n") == text.count("\r\n")


def test_helm_values_split_across_keys() -> None:
    text = 'image:\n  repository: ghcr.io/acme/homelab/api\n  tag: "main.20251010-000000.aaaaaaa"\n  pullPolicy: IfNotPresent\n'
    new, _ = rewrite("values.yaml", text, M, {"api": target("api")})
    assert new == text.replace("main.20251010-000000.aaaaaaa", f"main.20251014-051038.185c95c@{D2}")
    [ref] = find("values.yaml", new, M)
    assert (ref.kind, ref.tag, ref.digest) == ("helm", "main.20251014-051038.185c95c", D2)


def test_helm_values_with_registry_and_digest_keys_and_an_alias() -> None:
    text = "image:\n  registry: registry.lan:32000\n  repository: api\n  tag: old\n  digest: ''\n"
    new, _ = rewrite("values.yaml", text, M, {"api": target("api")})
    assert new == (  # the alias is the user's registry name for the same images: it stays
        "image:\n  registry: registry.lan:32000\n  repository: api\n  tag: main.20251014-051038.185c95c\n"
        f"  digest: '{D2}'\n"
    )


def test_kustomization_images_gain_a_digest_and_keep_their_names() -> None:
    text = (
        "resources: [deployment.yaml]\n"
        "images:\n"
        "  - name: registry.lan:32000/web   # as the manifests say it\n"
        "    newTag: main.20251010-000000.aaaaaaa\n"
        "  - name: ghcr.io/acme/homelab/worker\n"
        "    newTag: old\n"
        f"    digest: {D1}\n"
        "  - name: nginx\n"
        "    newTag: '1.25'\n"
    )
    new, changed = rewrite("kustomization.yaml", text, M, {"web": target("web"), "worker": target("worker")})
    assert len(changed) == 2
    assert new == (
        "resources: [deployment.yaml]\n"
        "images:\n"
        "  - name: registry.lan:32000/web   # as the manifests say it\n"
        "    newTag: main.20251014-051038.185c95c\n"
        f"    digest: {D2}\n"
        "  - name: ghcr.io/acme/homelab/worker\n"
        "    newTag: main.20251014-051038.185c95c\n"
        f"    digest: {D2}\n"
        "  - name: nginx\n"
        "    newTag: '1.25'\n"
    )


def test_flux_markers() -> None:
    text = (
        'image: quay.io/someone/else:1.0 # {"$imagepolicy": "flux-system:web"}\n'
        'tag: "1.0" # {"$imagepolicy": "flux-system:web:tag"}\n'
        'name: quay.io/someone/else # {"$imagepolicy": "flux-system:web:name"}\n'
    )
    new, changed = rewrite("f.yaml", text, M, {"web": target("web")})
    assert len(changed) == 3
    assert new == (
        f'image: {target("web").reference} # {{"$imagepolicy": "flux-system:web"}}\n'
        f'tag: "main.20251014-051038.185c95c@{D2}" # {{"$imagepolicy": "flux-system:web:tag"}}\n'
        'name: ghcr.io/acme/homelab/web # {"$imagepolicy": "flux-system:web:name"}\n'
    )


def test_docker_hub_names_are_normalised() -> None:
    hub = Matcher("docker.io/acme/{app}")
    [ref] = find("x.yaml", "image: acme/web:1\nother: library/acme:2\n", hub)
    assert (ref.app, ref.name) == ("web", "docker.io/acme/web")


def test_a_file_that_does_not_parse_names_file_and_line() -> None:
    with pytest.raises(RefsError, match=r"^bad.yaml:4:1: not valid YAML .*nothing was written"):
        find("bad.yaml", "a: 1\nb: [\n  c: d\n", M)


def test_a_flow_kustomize_entry_without_a_digest_key_is_refused() -> None:
    text = "images: [{name: ghcr.io/acme/homelab/web, newTag: old}]\n"
    with pytest.raises(RefsError, match="flow-style images entry of web has no digest: key"):
        rewrite("k.yaml", text, M, {"web": target("web")})


# Issue 10, by cause. HUB manages Docker Hub official images by their bare names.
HUB = Matcher("docker.io/library/{app}")


def hub(app: str, tag: str = "v2", digest: str = D2) -> Image:
    return Image(f"docker.io/library/{app}", tag, digest)


def test_bare_docker_hub_names_under_image_keys_and_split_forms_are_references_and_stay_bare() -> None:
    text = (
        "containers:\n  - name: nginx\n    image: nginx\n  - name: redis\n    image: 'redis:7'\n"
        "helm:\n  repository: nginx\n  tag: '1.25'\n"
        "images:\n  - name: nginx\n    newTag: '1.25'\n"
        "other: nginx\n"  # a bare word under any other key is a word
    )
    assert [(r.app, r.kind, r.line) for r in find("x.yaml", text, HUB)] == [
        ("nginx", "image", 3),
        ("redis", "image", 5),
        ("nginx", "helm", 7),
        ("nginx", "kustomize", 10),
    ]
    new, _ = rewrite("x.yaml", text, HUB, {"nginx": hub("nginx"), "redis": hub("redis")})
    assert new == (
        f"containers:\n  - name: nginx\n    image: nginx:v2@{D2}\n  - name: redis\n    image: 'redis:v2@{D2}'\n"
        f"helm:\n  repository: nginx\n  tag: 'v2@{D2}'\n"
        f"images:\n  - name: nginx\n    newTag: 'v2'\n    digest: {D2}\n"
        "other: nginx\n"
    )


def test_helm_name_and_version_keys_change_the_tag_never_the_name() -> None:
    text = "image:\n  name: docker.io/bitnami/nginx\n  version: v0.0.0\n"
    bitnami = Matcher("docker.io/bitnami/{app}")
    new, _ = rewrite("values.yaml", text, bitnami, {"nginx": Image("docker.io/bitnami/nginx", "v1.0.0", D2)})
    assert new == f"image:\n  name: docker.io/bitnami/nginx\n  version: v1.0.0@{D2}\n"


def test_an_ambiguous_helm_shape_is_refused_not_guessed() -> None:
    two_names = (
        "image:\n  repository: ghcr.io/acme/homelab/web\n  name: ghcr.io/acme/homelab/web\n  tag: old\n"
    )
    with pytest.raises(
        RefsError,
        match=r"^v.yaml:2: `repository:` and `name:` both name a managed image.*deploy.apps.web.helm",
    ):
        find("v.yaml", two_names, M)
    two_tags = "image:\n  repository: ghcr.io/acme/homelab/web\n  tag: old\n  version: '3'\n"
    with pytest.raises(
        RefsError, match=r"^v.yaml:2: `tag:` and `version:` both sit beside .*; nothing was written$"
    ):
        find("v.yaml", two_tags, M)


def test_a_chart_dependency_is_not_an_image() -> None:
    chart = "dependencies:\n  - name: redis\n    version: 17.0.0\n    repository: https://charts.bitnami.com/bitnami\n"
    assert find("Chart.yaml", chart, HUB) == []


def test_flux_markers_write_only_their_part_and_only_in_their_namespace() -> None:
    text = (
        'newName: other # {"$imagepolicy": "flux-system:web:name"}\n'
        'newTag: "1.0" # {"$imagepolicy": "flux-system:web:tag"}\n'
        'digest: sha256:0 # {"$imagepolicy": "flux-system:web:digest"}\n'
        'image: ghcr.io/acme/homelab/web:1 # {"$imagepolicy": "elsewhere:web"}\n'
    )
    new, _ = rewrite("k.yaml", text, M, {"web": target("web")})
    [_, tag, _] = find("k.yaml", new, M)
    assert (tag.kind, tag.tag, tag.digest) == ("tag", "main.20251014-051038.185c95c", D2)  # with its digest
    assert new == (
        'newName: ghcr.io/acme/homelab/web # {"$imagepolicy": "flux-system:web:name"}\n'
        'newTag: "main.20251014-051038.185c95c" # {"$imagepolicy": "flux-system:web:tag"}\n'
        f'digest: {D2} # {{"$imagepolicy": "flux-system:web:digest"}}\n'
        'image: ghcr.io/acme/homelab/web:1 # {"$imagepolicy": "elsewhere:web"}\n'  # another automation's
    )


def test_a_malformed_marker_is_refused() -> None:
    with pytest.raises(RefsError, match=r"^f.yaml:1: the \$imagepolicy marker 'web' is not namespace:policy"):
        find("f.yaml", 'image: x:1 # {"$imagepolicy": "web"}\n', M)


def test_an_anchored_value_is_one_reference_edited_once_and_keeps_its_anchor_and_tag() -> None:
    text = (
        "base: &img !!str ghcr.io/acme/homelab/web:old\n"
        "again: *img\n"
        "helm: &h\n  repository: ghcr.io/acme/homelab/api\n  tag: &t old\n"
        "copy:\n  <<: *h\n  pullPolicy: Always\n"
        "pinned: *t\n"
    )
    refs = find("a.yaml", text, M)
    assert [(r.app, r.kind, r.line) for r in refs] == [
        ("web", "image", 1),
        ("api", "helm", 3),
        ("api", "helm", 7),
    ]
    new, _ = rewrite("a.yaml", text, M, {"web": target("web"), "api": target("api")})
    assert new == text.replace(
        "!!str ghcr.io/acme/homelab/web:old", f"!!str {target('web').reference}"
    ).replace("&t old", f"&t main.20251014-051038.185c95c@{D2}")


def test_one_aliased_value_cannot_be_two_images() -> None:
    text = (
        "base: &b\n  tag: old\n"
        "web:\n  <<: *b\n  repository: ghcr.io/acme/homelab/web\n"
        "api:\n  <<: *b\n  repository: ghcr.io/acme/homelab/api\n"
    )
    with pytest.raises(
        RefsError, match=r"^a.yaml:7: .*line 4 are one value in the file \(an alias\).*nothing was written$"
    ):
        rewrite("a.yaml", text, M, {"web": target("web"), "api": target("api", tag="other")})
    same, _ = rewrite("a.yaml", text, M, {"web": target("web"), "api": target("api")})
    assert same == text.replace("tag: old", f"tag: main.20251014-051038.185c95c@{D2}")


def test_a_kustomize_entry_pinned_by_digest_alone_gains_its_tag() -> None:
    text = f"images:\n- name: ghcr.io/acme/homelab/web\n  digest: {D1}\n"
    new, _ = rewrite("k.yaml", text, M, {"web": target("web")})
    assert (
        new
        == f"images:\n- name: ghcr.io/acme/homelab/web\n  digest: {D2}\n  newTag: main.20251014-051038.185c95c\n"
    )


def test_a_byte_order_mark_does_not_shift_the_edit() -> None:
    text = "\ufeffconfig:\n  app:image: ghcr.io/acme/homelab/web:old  # c\n"
    new, _ = rewrite("Pulumi.yaml", text, M, {"web": target("web")})
    assert new == text.replace("ghcr.io/acme/homelab/web:old", target("web").reference)


def test_helm_keys_declared_in_tagtrail_yaml() -> None:
    flat = Matcher(
        "docker.io/library/{app}", helm={"nginx": [HelmKeys("image.name", "image.tag", "image.digest")]}
    )
    text = "image.name: nginx\nimage:\n  tag: v0\n  digest: ''\n"
    new, _ = rewrite("values.yaml", text, flat, {"nginx": hub("nginx")})
    assert new == f"image.name: nginx\nimage:\n  tag: v2\n  digest: '{D2}'\n"
    with pytest.raises(
        RefsError, match=r"^values.yaml:1: deploy.apps.nginx.helm puts the tag at `image.tag`"
    ):
        find("values.yaml", "image.name: nginx\n", flat)
    assert find("values.yaml", "image.name: redis\nimage.tag: v0\n", flat) == []  # another chart's keys


def test_a_placeholder_tag_is_refused_with_file_and_line() -> None:
    with pytest.raises(
        RefsError, match=r"^v.yaml:3: the tag of web reads '\{GENERATED_TAG\}'.*write the tag"
    ):
        find("v.yaml", "image:\n  repository: ghcr.io/acme/homelab/web\n  tag: '{GENERATED_TAG}'\n", M)
    with pytest.raises(
        RefsError, match=r"^v.yaml:1: the image of web reads 'ghcr.io/acme/homelab/web:\$\{TAG\}'"
    ):
        find("v.yaml", "image: ghcr.io/acme/homelab/web:${TAG}\n", M)


def test_the_read_back_counts_each_apps_references() -> None:
    text = "a: ghcr.io/acme/homelab/web:old\nb: ghcr.io/acme/homelab/web:old\n"
    before = find("c.yaml", text, M)
    lost_one = f"a: {target('web').reference}\nb: gone\n"
    with pytest.raises(RefsError, match=r"^c.yaml:1: web has 2 references before the edit and 1 after"):
        verify("c.yaml", lost_one, M, {"web": target("web")}, before)


def test_the_matcher_from_config_carries_helm_keys_and_marker_namespaces() -> None:
    config = Config.model_validate(
        {
            "image": "ghcr.io/acme/homelab/{app}",
            "deploy": {
                "marker_namespaces": ["apps"],
                "apps": {"web": {"helm": [{"repository": "image.name", "tag": "image.tag"}]}},
            },
        }
    )
    matcher = Matcher.from_config(config)
    assert matcher.namespaces == {"apps"}
    assert matcher.helm == {"web": (HelmKeys("image.name", "image.tag"),)}


def test_a_tag_yaml_would_read_as_a_number_is_quoted() -> None:
    text = (
        f"image:\n  repository: nginx\n  tag: 1.0\n  digest: {D1}\nimages:\n- name: nginx\n  digest: {D1}\n"
    )
    new, _ = rewrite("v.yaml", text, HUB, {"nginx": hub("nginx", tag="1.10")})
    assert (
        new
        == f'image:\n  repository: nginx\n  tag: "1.10"\n  digest: {D2}\nimages:\n- name: nginx\n  digest: {D2}\n  newTag: "1.10"\n'
    )


@pytest.mark.parametrize(
    "libyaml_refuses", ["", "other: {a: b:c}\n"]
)  # the second is read by ruamel.yaml's parser
def test_an_empty_tag_gets_its_value_after_the_colon(libyaml_refuses: str) -> None:
    text = (
        libyaml_refuses
        + "image:\n  repository: ghcr.io/acme/homelab/web\n  tag:   # set by CI\n\n  digest:\n  x: 1\n"
    )
    new, _ = rewrite("v.yaml", text, M, {"web": target("web")})
    assert new == text.replace("tag:", "tag: main.20251014-051038.185c95c").replace(
        "digest:", f"digest: {D2}"
    )


def test_a_marker_inside_a_kustomize_entry_leaves_the_entrys_name_alone() -> None:
    text = (
        'images:\n- name: ghcr.io/acme/homelab/web\n  newTag: old # {"$imagepolicy": "flux-system:web:tag"}\n'
    )
    new, _ = rewrite("k.yaml", text, M, {"web": target("web")})
    assert new == text.replace("newTag: old", f"newTag: main.20251014-051038.185c95c@{D2}")


def test_the_package_keeps_the_names_its_callers_import() -> None:
    assert sorted(tagtrail.adapters.refs.__all__) == [
        "HelmKeys",
        "Image",
        "Kind",
        "Matcher",
        "Reference",
        "Span",
        "find",
        "normalise",
        "rewrite",
        "rewrite_found",
        "split_written",
    ]


def test_a_rewrite_from_the_references_already_found_is_the_rewrite_and_says_what_it_reads_back() -> None:
    """The GitOps target keeps each file's references from reading it, so a large file is not searched
    again before its edit; the references of the result come back from the proof, for the next edit."""
    targets = {"gosonos": target("gosonos"), "lights": target("lights")}
    new, changed, after = rewrite_found("p.yaml", PULUMI, M, targets, find("p.yaml", PULUMI, M))
    assert (new, changed) == rewrite("p.yaml", PULUMI, M, targets)
    assert after == find("p.yaml", new, M)


def test_deploy_files_obey_the_same_limits_as_tagtrail_yaml() -> None:
    bomb = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n" for n in range(1, 9)
    )
    with pytest.raises(RefsError, match=r"^bomb.yaml:6: its aliases expand to more than 1,000,000 nodes"):
        find("bomb.yaml", bomb, M)
    deep = "image: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(
        RefsError, match=r"^deep.yaml:1: nesting deeper than 100 levels; tagtrail does not read it"
    ):
        find("deep.yaml", deep, M)

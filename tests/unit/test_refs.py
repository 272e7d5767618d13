"""References in deploy files: found by repository in every shape users write them, rewritten byte for byte."""

from __future__ import annotations

import pytest

from tagtrail.errors import RefsError
from tagtrail.refs import Matcher, Target, find, rewrite

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
M = Matcher("ghcr.io/acme/homelab/{app}", ["registry.lan:32000/{app}"])


def target(app: str, tag: str = "main.20251014-051038.185c95c", digest: str = D2) -> Target:
    return Target(f"ghcr.io/acme/homelab/{app}", tag, digest)


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

"""Pieces of the registry client that need no server: references, challenges, manifests, credentials."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from tagtrail.adapters.registry import CredentialResolver, ImageRef, InvalidReference, Platform, Secret
from tagtrail.adapters.registry.auth import parse_challenge
from tagtrail.adapters.registry.media import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    MalformedError,
    parse_config,
    parse_manifest,
)
from tagtrail.errors import RegistryAuthError

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/library/nginx:1", "docker.io", "library/nginx", "1", None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        (
            "ghcr.io/acme/homelab/web:main.20251014-051038.185c95c",
            "ghcr.io",
            "acme/homelab/web",
            "main.20251014-051038.185c95c",
            None,
        ),
        (f"ghcr.io/acme/homelab/web:main.1@{DIGEST}", "ghcr.io", "acme/homelab/web", "main.1", DIGEST),
        (f"ghcr.io/acme/homelab/web@{DIGEST}", "ghcr.io", "acme/homelab/web", None, DIGEST),
        ("127.0.0.1:5000/homelab/web", "127.0.0.1:5000", "homelab/web", None, None),
        ("localhost/web:1", "localhost", "web", "1", None),
        ("registry.lan:32000/gosonos:x", "registry.lan:32000", "gosonos", "x", None),
    ],
)
def test_references_are_read_as_docker_reads_them(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ImageRef.parse(str(ref)) == ref


def test_docker_hub_is_reached_at_its_api_host() -> None:
    assert ImageRef.parse("nginx").api_host == "registry-1.docker.io"
    assert ImageRef.parse("ghcr.io/a/b").api_host == "ghcr.io"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("ghcr.io/Acme/web", "not a repository path"),
        ("ghcr.io/acme/web:bad tag", "not a tag"),
        ("ghcr.io/acme/web@sha256:abc", "not a digest"),
        ("ghcr.io/acme//web", "not a repository path"),
    ],
)
def test_bad_references_say_which_part_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        ImageRef.parse(text)


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:a/b:pull,push",
            },
        ),
        (
            'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r/web:pull"',
            "bearer",
            {"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:o/r/web:pull"},
        ),
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        ("basic", "basic", {}),
        (
            'Basic realm="x", Bearer realm="https://a/t",service=s',
            "bearer",
            {"realm": "https://a/t", "service": "s"},
        ),
    ],
)
def test_challenges_are_parsed(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None
    assert (challenge.scheme, challenge.params) == (scheme, params)


def test_an_unknown_challenge_is_none() -> None:
    assert parse_challenge("Negotiate") is None
    assert parse_challenge("") is None


def _descriptor(digest: str = DIGEST, **extra: object) -> dict[str, object]:
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": 10, **extra}


def test_an_index_lists_its_platforms_without_attestations() -> None:
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                _descriptor(platform={"os": "linux", "architecture": "amd64"}),
                _descriptor(platform={"os": "linux", "architecture": "arm", "variant": "v7"}),
                _descriptor(platform={"os": "unknown", "architecture": "unknown"}),
            ],
        }
    ).encode()
    index = parse_manifest(raw, OCI_INDEX, DIGEST)
    assert index.is_index
    assert [str(p) for p in index.platforms] == ["linux/amd64", "linux/arm/v7"]


@pytest.mark.parametrize(
    ("annotations", "revision"),
    [
        ({"org.opencontainers.image.revision": "185c95c", "other": "x"}, "185c95c"),
        ({"org.opencontainers.image.revision": ""}, None),  # an empty annotation says nothing
        ({"org.opencontainers.image.revision": 7}, None),  # not a string: ignored, not an error
        (["org.opencontainers.image.revision"], None),
        (None, None),
    ],
)
def test_the_revision_annotation_of_a_manifest(annotations: object, revision: str | None) -> None:
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _descriptor(), "layers": []}
    if annotations is not None:
        body["annotations"] = annotations
    assert parse_manifest(json.dumps(body).encode(), OCI_MANIFEST, DIGEST).revision == revision


@pytest.mark.parametrize(
    ("raw", "media_type", "message"),
    [
        (b"{not json", OCI_MANIFEST, "not JSON"),
        (b"[]", OCI_MANIFEST, "not a JSON object"),
        (b'{"schemaVersion": 1}', "application/vnd.docker.distribution.manifest.v1+prettyjws", "unsupported"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST}).encode(),
            DOCKER_LIST,
            "no manifests list",
        ),
        (
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": _descriptor(),
                    "layers": [{"digest": "md5:x", "size": 1}],
                }
            ).encode(),
            OCI_MANIFEST,
            "no sha256 digest",
        ),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _descriptor(size=-1), "layers": []}
            ).encode(),
            OCI_MANIFEST,
            "has no size",
        ),
    ],
)
def test_malformed_manifests_are_refused(raw: bytes, media_type: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        parse_manifest(raw, media_type, DIGEST)


def test_image_config_reads_created_with_nanoseconds_and_labels() -> None:
    raw = json.dumps(
        {
            "created": "2025-10-14T05:10:38.123456789Z",
            "os": "linux",
            "architecture": "arm64",
            "config": {"Labels": {"org.opencontainers.image.revision": "185c95c"}},
        }
    ).encode()
    config = parse_config(raw, DIGEST)
    assert config.created is not None
    assert config.created.isoformat() == "2025-10-14T05:10:38.123456+00:00"
    assert config.revision == "185c95c"
    assert (config.os, config.architecture) == ("linux", "arm64")


def test_platform_parse() -> None:
    assert Platform.parse("linux/arm/v7") == Platform("linux", "arm", "v7")
    with pytest.raises(ValueError, match="not a platform"):
        Platform.parse("linux")


# Credentials ---------------------------------------------------------------------------------------


def _docker_config(home: Path, data: dict[str, object]) -> None:
    (home / ".docker").mkdir(exist_ok=True)
    (home / ".docker" / "config.json").write_text(json.dumps(data))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_secrets_never_show(isolated_home: Path) -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    _docker_config(isolated_home, {"auths": {"r.example": {"auth": _b64("u:hunter2")}}})
    creds = CredentialResolver().resolve("r.example")
    assert creds is not None
    assert "hunter2" not in repr(creds)
    assert creds.password.reveal() == "hunter2"


def test_docker_config_auth_and_username_password(isolated_home: Path) -> None:
    _docker_config(
        isolated_home,
        {
            "auths": {
                "https://r1.example": {"auth": _b64("alice:pw1")},
                "r2.example:5000": {"username": "bob", "password": "pw2"},
                "https://index.docker.io/v1/": {"auth": _b64("carol:pw3")},
            }
        },
    )
    resolver = CredentialResolver()
    for host, user, password in (
        ("r1.example", "alice", "pw1"),
        ("r2.example:5000", "bob", "pw2"),
        ("docker.io", "carol", "pw3"),
    ):
        creds = resolver.resolve(host)
        assert creds is not None
        assert (creds.username, creds.password.reveal()) == (user, password)
        assert creds.source.endswith(".docker/config.json")
    assert resolver.resolve("elsewhere.example") is None


def test_docker_config_env_var_and_containers_auth_file(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = isolated_home / "other-docker"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"auths": {"a.example": {"auth": _b64("a:1")}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(other))
    auth_json = isolated_home / ".config" / "containers" / "auth.json"
    auth_json.parent.mkdir(parents=True, exist_ok=True)
    auth_json.write_text(json.dumps({"auths": {"b.example": {"auth": _b64("b:2")}}}))
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    resolver = CredentialResolver()
    a, b = resolver.resolve("a.example"), resolver.resolve("b.example")
    assert a is not None
    assert b is not None
    assert (a.username, b.username) == ("a", "b")


def _helper(folder: Path, name: str, script: str) -> None:
    path = folder / f"docker-credential-{name}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_credential_helpers_by_registry_and_store(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docker-credential-pass, -secretservice and -osxkeychain need a keyring this machine does not have:
    # these helpers speak the same protocol (stdin: server; stdout: JSON) from a shell script.
    bin_dir = isolated_home / "bin"
    bin_dir.mkdir()
    _helper(
        bin_dir,
        "special",
        'read server; echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"sp\\",\\"Secret\\":\\"s1\\"}"\n',
    )
    _helper(
        bin_dir,
        "store",
        'read server; if [ "$server" = "store.example" ]; then '
        'echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"refresh-me\\"}"; '
        'else echo "credentials not found in native keychain"; exit 1; fi\n',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    _docker_config(isolated_home, {"credHelpers": {"special.example": "special"}, "credsStore": "store"})
    resolver = CredentialResolver()
    special = resolver.resolve("special.example")
    assert special is not None
    assert (special.username, special.password.reveal(), special.source) == (
        "sp",
        "s1",
        "docker-credential-special",
    )
    stored = resolver.resolve("store.example")
    assert stored is not None
    assert stored.identity_token is not None
    assert stored.identity_token.reveal() == "refresh-me"
    assert resolver.resolve("none.example") is None


def test_a_missing_helper_is_a_clear_error(isolated_home: Path) -> None:
    _docker_config(isolated_home, {"credsStore": "nowhere"})
    with pytest.raises(RegistryAuthError, match="docker-credential-nowhere is not on PATH"):
        CredentialResolver().resolve("r.example")


def test_env_and_file_sources(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHCR_USERNAME", "bot")
    monkeypatch.setenv("GHCR_PASSWORD", "ghp_secret")
    secret_file = isolated_home / "regcred" / ".dockerconfigjson"
    secret_file.parent.mkdir()
    secret_file.write_text(json.dumps({"auths": {"registry.lan:32000": {"auth": _b64("kube:pw")}}}))
    resolver = CredentialResolver(
        {"ghcr.io": "env:GHCR", "registry.lan:32000": f"file:{secret_file}", "docker.io": "anonymous"}
    )
    ghcr, lan = resolver.resolve("ghcr.io"), resolver.resolve("registry.lan:32000")
    assert ghcr is not None
    assert lan is not None
    assert (ghcr.username, ghcr.password.reveal(), ghcr.source) == ("bot", "ghp_secret", "env:GHCR")
    assert (lan.username, lan.source) == ("kube", str(secret_file))
    assert resolver.resolve("docker.io") is None


@pytest.mark.parametrize(
    ("spec", "setup", "message"),
    [
        ("env:MISSING", None, "MISSING_USERNAME or MISSING_PASSWORD is unset"),
        ("file:/nonexistent/.dockerconfigjson", None, "does not exist"),
        ("file:{home}/bad.json", "not json", "is not valid JSON"),
        ("file:{home}/bad.json", '{"auths": {"r.example": {"auth": "!!!"}}}', "is not base64"),
        ("file:{home}/bad.json", '{"auths": {"other": {}}}', "has no credentials for r.example"),
    ],
)
def test_credential_problems_are_clear_and_secret_free(
    isolated_home: Path, spec: str, setup: str | None, message: str
) -> None:
    if setup is not None:
        (isolated_home / "bad.json").write_text(setup)
    with pytest.raises(RegistryAuthError, match=message) as caught:
        CredentialResolver({"r.example": spec.format(home=isolated_home)}).resolve("r.example")
    assert "!!!" not in str(caught.value)

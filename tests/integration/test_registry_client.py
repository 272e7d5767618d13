"""The registry client against the real registry: reads, digests equal to skopeo's, request counts."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest

from tagtrail.adapters.registry import ImageRef, Platform, RegistryClient
from tagtrail.config import RegistryConfig
from tagtrail.errors import RegistryError, RegistryNotFound
from tagtrail_demo import ImagePusher, RegistryServer
from tagtrail_demo.manifests import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

pytestmark = pytest.mark.anyio


def client_for(server: RegistryServer, **settings: object) -> RegistryClient:
    return RegistryClient({server.host: RegistryConfig(insecure=True, **settings)}, retries=1, backoff=0.01)  # type: ignore[arg-type]


def skopeo_digest(server: RegistryServer, reference: str) -> str:
    result = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            f"docker://{server.host}/{reference}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def skopeo_raw_digest(server: RegistryServer, reference: str) -> str:
    """The digest of the manifest (or index) as stored: skopeo's raw bytes, hashed."""
    raw = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{server.host}/{reference}"],
        capture_output=True,
        check=True,
    ).stdout
    result = subprocess.run(
        ["skopeo", "manifest-digest", "/dev/stdin"], input=raw, capture_output=True, check=True
    )
    return result.stdout.decode().strip()


async def test_list_tags_reads_every_tag_in_one_request(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    first = pusher.push_image(repo_name, "main.20251014-051038.185c95c")
    for i in range(40):
        pusher.tag(first, f"main.202510{10 + i % 20}-0510{i:02d}.185c95c")
    ref = ImageRef.parse(f"{registry.host}/{repo_name}")
    async with client_for(registry) as client:
        tags = await client.list_tags(ref)
        assert sorted(tags) == sorted(pusher.list_tags(repo_name))
        assert len(tags) == 41
        assert client.stats.snapshot() == {registry.host: {"200": 1}}


@pytest.mark.parametrize("media", ["oci", "docker"])
async def test_head_gives_the_digest_skopeo_sees(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str, media: str
) -> None:
    single = pusher.push_image(repo_name, "single", media=media)  # type: ignore[arg-type]
    multi = pusher.push_index(repo_name, "multi", media=media)  # type: ignore[arg-type]
    ref = ImageRef.parse(f"{registry.host}/{repo_name}")
    async with client_for(registry) as client:
        head_single = await client.head(ref.with_tag("single"))
        head_multi = await client.head(ref.with_tag("multi"))
        assert client.stats.total == 2  # one HEAD each: the physical minimum
    assert head_single.digest == single.digest == skopeo_raw_digest(registry, f"{repo_name}:single")
    assert head_multi.digest == multi.digest == skopeo_raw_digest(registry, f"{repo_name}:multi")
    assert head_single.digest == skopeo_digest(registry, f"{repo_name}:single")
    expected = (OCI_MANIFEST, OCI_INDEX) if media == "oci" else (DOCKER_MANIFEST, DOCKER_LIST)
    assert (head_single.media_type, head_multi.media_type) == expected


async def test_inspect_reads_created_labels_and_platforms(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    created = datetime(2025, 10, 14, 5, 10, 38, tzinfo=UTC)
    labels = {
        "org.opencontainers.image.revision": "185c95c" + "0" * 33,
        "org.opencontainers.image.source": "https://github.com/acme/homelab",
    }
    pusher.push_image(repo_name, "single", created=created, labels=labels)
    index = pusher.push_index(repo_name, "multi", platforms=("linux/amd64", "linux/arm64"), created=created)
    ref = ImageRef.parse(f"{registry.host}/{repo_name}")
    async with client_for(registry) as client:
        single = await client.inspect(ref.with_tag("single"))
        assert single.config.created == created
        assert single.config.labels == labels
        assert single.config.revision == "185c95c" + "0" * 33
        assert single.platforms == []
        multi = await client.inspect(ref.with_tag("multi"), Platform("linux", "arm64"))
        assert multi.digest == index.digest
        assert [str(p) for p in multi.platforms] == ["linux/amd64", "linux/arm64"]
        assert multi.config.architecture == "arm64"
        default = await client.image_config(ref.with_tag("multi"))
        assert default.architecture == "amd64"
        with pytest.raises(RegistryNotFound, match="has no image for linux/s390x"):
            await client.inspect(ref.with_tag("multi"), Platform("linux", "s390x"))


async def test_the_commit_is_read_from_the_manifest_where_it_is_annotated_else_from_the_config(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    """A deploy's revision check: one request where the manifest carries the OCI revision annotation
    (tagtrail build, docker/metadata-action), two where only the config's label says it, and for an
    index the default platform's manifest is looked at before any config. Where both say, and disagree,
    the annotation (this image's own) wins over the label (which a base image may have passed on)."""
    sha, base_sha = "185c95c" + "0" * 33, "b45e" + "1" * 36
    said = {"org.opencontainers.image.revision": sha}
    pushed = {
        "annotated": pusher.push_image(repo_name, "annotated", labels=said, annotations=said),
        "labelled": pusher.push_image(repo_name, "labelled", labels=said),
        "inherited": pusher.push_image(
            repo_name, "inherited", labels={"org.opencontainers.image.revision": base_sha}, annotations=said
        ),
        "silent": pusher.push_image(repo_name, "silent"),
        "index-annotated": pusher.push_index(repo_name, "index-annotated", labels=said, annotations=said),
        "index-labelled": pusher.push_index(repo_name, "index-labelled", labels=said),
        "docker": pusher.push_image(repo_name, "docker", labels=said, media="docker"),
    }
    expected = {  # tag → (commit, said by, requests)
        "annotated": (sha, "annotation", 1),
        "labelled": (sha, "label", 2),
        "inherited": (sha, "annotation", 1),
        "silent": (None, "label", 2),
        "index-annotated": (sha, "annotation", 2),
        "index-labelled": (sha, "label", 3),
        "docker": (sha, "label", 2),
    }
    ref = ImageRef.parse(f"{registry.host}/{repo_name}")
    async with client_for(registry) as client:
        for tag, (commit, said_by, requests) in expected.items():
            before = client.stats.total
            found = await client.revision(ref.with_tag(tag))
            assert (found.digest, found.commit, found.said_by) == (pushed[tag].digest, commit, said_by), tag
            assert client.stats.total - before == requests, tag


async def test_manifest_by_digest_is_verified(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    image = pusher.push_image(repo_name, "v1")
    ref = ImageRef.parse(f"{registry.host}/{repo_name}@{image.digest}")
    async with client_for(registry) as client:
        manifest = await client.manifest(ref)
        assert manifest.digest == image.digest
        assert manifest.config is not None
        head = await client.head(ref)
        assert head.digest == image.digest


async def test_not_found_is_its_own_error(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    pusher.push_image(repo_name, "v1")
    async with client_for(registry) as client:
        with pytest.raises(RegistryNotFound, match="not found"):
            await client.head(ImageRef.parse(f"{registry.host}/{repo_name}:nope"))
        with pytest.raises(RegistryNotFound, match="NAME_UNKNOWN"):
            await client.list_tags(ImageRef.parse(f"{registry.host}/{repo_name}-missing"))


async def test_delete_removes_the_digest_and_every_tag_on_it(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    doomed = pusher.push_image(repo_name, "old")
    pusher.tag(doomed, "old-alias")
    pusher.push_image(repo_name, "keep")
    ref = ImageRef.parse(f"{registry.host}/{repo_name}")
    async with client_for(registry) as client:
        await client.delete(ref.with_digest(doomed.digest))
        assert await client.list_tags(ref) == ["keep"]
        with pytest.raises(RegistryError, match="needs a digest"):
            await client.delete(ref.with_tag("keep"))


async def test_ping(registry: RegistryServer) -> None:
    async with client_for(registry) as client:
        await client.ping(registry.host)
        assert client.stats.snapshot() == {registry.host: {"200": 1}}


async def test_plain_http_only_where_marked_insecure(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    pusher.push_image(repo_name, "v1")
    async with RegistryClient({}, retries=0) as client:
        with pytest.raises(RegistryError, match="TLS") as caught:
            await client.list_tags(ImageRef.parse(f"{registry.host}/{repo_name}"))
        assert "insecure" in str(caught.value)
        assert not caught.value.transient


async def test_a_custom_ca_bundle(
    tls_registry: RegistryServer, tls_ca: object, pusher: ImagePusher, repo_name: str, tmp_path: object
) -> None:
    from bench.pki import KeyPair

    assert isinstance(tls_ca, KeyPair)
    pusher.push_image(repo_name, "v1")
    bundle = tls_registry.root / "ca.pem"
    bundle.write_bytes(tls_ca.cert_pem())
    ref = ImageRef.parse(f"{tls_registry.host}/{repo_name}")
    async with RegistryClient({tls_registry.host: RegistryConfig(ca_file=str(bundle))}) as client:
        assert await client.list_tags(ref) == ["v1"]
    async with RegistryClient({}, retries=0) as client:
        with pytest.raises(RegistryError, match="certificate"):
            await client.list_tags(ref)


async def test_requests_are_counted_per_registry_and_status(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str
) -> None:
    pusher.push_image(repo_name, "v1")
    ref = ImageRef.parse(f"{registry.host}/{repo_name}")
    async with client_for(registry) as client:
        await client.list_tags(ref)
        await client.head(ref.with_tag("v1"))
        with pytest.raises(RegistryNotFound):
            await client.head(ref.with_tag("v2"))
        assert client.stats.snapshot() == {registry.host: {"200": 2, "404": 1}}
        assert client.stats.for_registry(registry.host) == 3


def test_skopeo_and_tagtrail_cli_agree_on_digests(
    registry: RegistryServer, pusher: ImagePusher, repo_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import run

    image = pusher.push_index(repo_name, "main.20251014-051038.185c95c")
    ref = f"{registry.host}/{repo_name}:main.20251014-051038.185c95c"
    code, out, err = run(capsys, "registry", "digest", ref, "--insecure")
    assert code == 0, err
    assert (
        out.strip()
        == image.digest
        == skopeo_raw_digest(registry, f"{repo_name}:main.20251014-051038.185c95c")
    )
    code, out, _ = run(capsys, "registry", "inspect", ref, "--insecure", "--json")
    data = json.loads(out)
    assert data["digest"] == image.digest
    assert data["platforms"] == ["linux/amd64", "linux/arm64"]

"""Keyless verification against real bundles issued to GitHub Actions workflows (sigstore-python's public
test assets, copied from the shared folder): each is accepted with the identity it truly carries, and
refused with another repository, workflow, ref or commit, and after one byte of the artifact or of the
bundle changes. Offline: the trusted roots are files (the production one as sigstore-python embeds it)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tagtrail.adapters.verify.keyless import (
    Identity,
    check,
    judge,
    production_root,
    repository_of,
    trusted_root,
)
from tagtrail.domain.provenance import AttestationAnswer, Claims, attested_refusal
from tagtrail.domain.reasons import Reason
from tagtrail.domain.scheme import ParsedTag

FIXTURES = Path(__file__).parents[1] / "fixtures" / "attestations"
SHARED = Path(__file__).parents[2].parent / "shared" / "attestations"  # ../shared from the root
WHEEL = FIXTURES / "bundle_v3_github.whl"
WHEEL_BUNDLE = FIXTURES / "bundle_v3_github.whl.sigstore"
TEXT = FIXTURES / "a.dsse.staging-rekor-v2.txt"
DSSE_BUNDLE = FIXTURES / "a.dsse.staging-rekor-v2.txt.sigstore.json"
RFC8785 = Identity(
    "trailofbits/rfc8785.py", ".github/workflows/release.yml", "https://token.actions.githubusercontent.com"
)
BEACON = Identity(
    "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
    ".github/workflows/extremely-dangerous-oidc-beacon.yml",
    "https://token.actions.githubusercontent.com",
)
WHEEL_COMMIT = "d8b4a6445f38c48b9137a8099706d9b8073146e4"
# The DSSE statement's subject, as the shared README gives it. The shared a.dsse.staging-rekor-v2.txt does not
# hash to it (sha256 e248a5db…): the statement is checked against this digest, as a deploy checks an image's.
SUBJECT = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_the_fixtures_are_the_shared_bundles_byte_for_byte(name: str) -> None:
    shared = SHARED / name
    if not shared.exists():
        pytest.skip(
            f"{SHARED} is not beside this clone: the copy cannot be compared with its source here; the tests"
            " below verify the copies themselves"
        )
    assert (FIXTURES / name).read_bytes() == shared.read_bytes()


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def staging_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The staging instance's trusted root as sigstore-python 4.5.1 ships it (a file, read offline)."""
    from sigstore._internal.tuf import STAGING_TUF_URL
    from sigstore._utils import read_embedded

    path = tmp_path_factory.mktemp("roots") / "staging.json"
    path.write_bytes(read_embedded("trusted_root.json", STAGING_TUF_URL))
    return path


def test_a_production_signature_made_by_a_release_workflow() -> None:
    checked = check(WHEEL_BUNDLE.read_bytes(), digest_of(WHEEL), production_root(), RFC8785, "signature", "b")
    assert checked.code is None, checked.problem
    proven = checked.proven
    assert proven is not None
    assert (proven.kind, proven.repository, proven.workflow) == (
        "signature",
        "trailofbits/rfc8785.py",
        ".github/workflows/release.yml",
    )
    assert (proven.ref, proven.commit, proven.runner) == ("refs/tags/v0.1.2", WHEEL_COMMIT, "github-hosted")
    assert proven.run == "https://github.com/trailofbits/rfc8785.py/actions/runs/8351058501/attempts/1"
    assert proven.log_index == 79605083
    assert judge([checked], digest_of(WHEEL)) == AttestationAnswer(
        None, proven.summary(), "refs/tags/v0.1.2", (WHEEL_COMMIT,)
    )


@pytest.mark.parametrize(
    ("identity", "why"),
    [
        (
            Identity("acme/homelab", ".github/workflows/release.yml", RFC8785.issuer),
            "made in trailofbits/rfc8785.py, not acme/homelab",
        ),
        (
            Identity(RFC8785.repository, ".github/workflows/build.yml", RFC8785.issuer),
            "workflow .github/workflows/release.yml, not .github/workflows/build.yml",
        ),
        (
            Identity(RFC8785.repository, RFC8785.workflow, "https://accounts.google.com"),
            "not https://accounts.google.com",
        ),
    ],
)
def test_the_production_signature_with_another_identity(identity: Identity, why: str) -> None:
    checked = check(
        WHEEL_BUNDLE.read_bytes(), digest_of(WHEEL), production_root(), identity, "signature", "b"
    )
    assert checked.code is Reason.ATTESTED_IDENTITY_MISMATCH
    assert why in checked.problem


def _tag(branch: str, sha: str) -> ParsedTag:
    return ParsedTag(f"{branch}.20260101-000000.{sha}", branch, sha, (datetime(2026, 1, 1, tzinfo=UTC),))


def test_the_run_s_ref_and_commit_against_what_the_tag_claims() -> None:
    answer = check(WHEEL_BUNDLE.read_bytes(), digest_of(WHEEL), production_root(), RFC8785, "signature", "b")
    assert answer.proven is not None
    proven = answer.proven.answer()
    release = Claims(attested_refs={"v0.1.2": ("refs/tags/v0.1.2",), "main": ("refs/heads/main",)})
    assert attested_refusal(_tag("v0.1.2", WHEEL_COMMIT[:7]), proven, release) is None
    other_ref = attested_refusal(_tag("main", WHEEL_COMMIT[:7]), proven, release)
    assert other_ref is not None
    assert other_ref.code is Reason.ATTESTED_REF_MISMATCH
    assert "attested by a run of refs/tags/v0.1.2, not refs/heads/main" in other_ref.sentence
    other_commit = attested_refusal(_tag("v0.1.2", "abcdef0"), proven, release)
    assert other_commit is not None
    assert other_commit.code is Reason.ATTESTED_COMMIT_MISMATCH
    assert f"attested as built from {WHEEL_COMMIT}, the tag says abcdef0" in other_commit.sentence


def test_one_byte_of_the_artifact_or_of_the_bundle_changed() -> None:
    data = bytearray(WHEEL.read_bytes())
    data[100] ^= 1
    changed = "sha256:" + hashlib.sha256(bytes(data)).hexdigest()
    checked = check(WHEEL_BUNDLE.read_bytes(), changed, production_root(), RFC8785, "signature", "b")
    assert checked.code is Reason.ATTESTATION_INVALID
    bundle = json.loads(WHEEL_BUNDLE.read_bytes())
    signature = bytearray(base64.b64decode(bundle["messageSignature"]["signature"]))
    signature[-1] ^= 1
    bundle["messageSignature"]["signature"] = base64.b64encode(bytes(signature)).decode()
    tampered = check(
        json.dumps(bundle).encode(), digest_of(WHEEL), production_root(), RFC8785, "signature", "b"
    )
    assert tampered.code is Reason.ATTESTATION_INVALID
    flipped = bytearray(WHEEL_BUNDLE.read_bytes())
    flipped[flipped.index(b'"logIndex": "79605083"') + 14] ^= (
        1  # a digit of the log index: 79605083 → 69605083
    )
    assert check(bytes(flipped), digest_of(WHEEL), production_root(), RFC8785, "signature", "b").code is (
        Reason.ATTESTATION_INVALID
    )


def test_a_signature_is_not_an_attestation() -> None:
    checked = check(
        WHEEL_BUNDLE.read_bytes(), digest_of(WHEEL), production_root(), RFC8785, "attestation", "b"
    )
    assert checked.code is Reason.NOT_ATTESTED
    assert judge([checked], digest_of(WHEEL)).refused is Reason.NOT_ATTESTED


def test_a_staging_slsa_provenance_attestation(staging_root: Path) -> None:
    root = trusted_root(staging_root)
    checked = check(DSSE_BUNDLE.read_bytes(), SUBJECT, root, BEACON, "attestation", "b")
    assert checked.code is None, checked.problem
    proven = checked.proven
    assert proven is not None
    assert (proven.kind, proven.ref, proven.commit) == (
        "attestation",
        "refs/heads/main",
        "977e8d08554ca9bda279c96e91be2119fb67c730",
    )
    assert proven.run.endswith("/actions/runs/25821282059/attempts/1")
    for other in (
        Identity("acme/homelab", BEACON.workflow, BEACON.issuer),
        Identity(BEACON.repository, ".github/workflows/build.yml", BEACON.issuer),
    ):
        assert check(DSSE_BUNDLE.read_bytes(), SUBJECT, root, other, "attestation", "b").code is (
            Reason.ATTESTED_IDENTITY_MISMATCH
        )
    wrong = check(DSSE_BUNDLE.read_bytes(), digest_of(TEXT), root, BEACON, "attestation", "b")
    assert wrong.code is Reason.ATTESTATION_INVALID
    assert "the statement is about a0cfc71271d6" in wrong.problem
    bundle = json.loads(DSSE_BUNDLE.read_bytes())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["subject"][0]["name"] = "b.txt"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    assert check(json.dumps(bundle).encode(), SUBJECT, root, BEACON, "attestation", "b").code is (
        Reason.ATTESTATION_INVALID
    )


def test_the_shared_staging_root_predates_the_bundle_s_ct_log(staging_root: Path) -> None:
    """The staging root in the shared folder names CT logs older than the one that signed the DSSE
    bundle's certificate: with it, the bundle is refused (sigstore-python's newer staging root accepts it)."""
    root = trusted_root(FIXTURES / "staging-trusted-root.json")
    checked = check(DSSE_BUNDLE.read_bytes(), SUBJECT, root, BEACON, "attestation", "b")
    assert checked.code is Reason.ATTESTATION_INVALID
    assert "SCT" in checked.problem


def test_a_bundle_under_a_root_that_does_not_name_its_ca(staging_root: Path) -> None:
    checked = check(
        WHEEL_BUNDLE.read_bytes(), digest_of(WHEEL), trusted_root(staging_root), RFC8785, "signature", "b"
    )
    assert checked.code is Reason.ATTESTATION_INVALID


def test_not_a_bundle_and_not_a_trusted_root(tmp_path: Path) -> None:
    checked = check(b"{nope", digest_of(WHEEL), production_root(), RFC8785, "either", "b")
    assert checked.code is Reason.ATTESTATION_INVALID
    sha512 = "sha512:" + hashlib.sha512(WHEEL.read_bytes()).hexdigest()
    other = check(WHEEL_BUNDLE.read_bytes(), sha512, production_root(), RFC8785, "either", "b")
    assert (other.code, other.problem) == (
        Reason.ATTESTATION_INVALID,
        f"{sha512[:19]}… is not a sha256 digest",
    )
    bundle = json.loads(DSSE_BUNDLE.read_bytes())
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(
        b'{"subject": [{"digest": "not a mapping"}]}'
    ).decode()
    hostile = check(json.dumps(bundle).encode(), SUBJECT, production_root(), BEACON, "either", "b")
    assert hostile.code is Reason.ATTESTATION_INVALID
    assert judge([], digest_of(WHEEL)).refused is Reason.NOT_ATTESTED
    bad = tmp_path / "root.json"
    bad.write_text("{}")
    from tagtrail.errors import ConfigError

    with pytest.raises(ConfigError, match="not a Sigstore trusted root"):
        trusted_root(bad)
    with pytest.raises(ConfigError, match="cannot read the trusted root"):
        trusted_root(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("remote", "repository"),
    [
        ("https://github.com/acme/homelab.git", "acme/homelab"),
        ("git@github.com:acme/homelab.git", "acme/homelab"),
        ("ssh://git@github.com/acme/homelab", "acme/homelab"),
        ("https://gitlab.com/acme/homelab.git", None),
        ("file:///srv/git/homelab.git", None),
        (None, None),
    ],
)
def test_the_repository_of_a_remote(remote: str | None, repository: str | None) -> None:
    assert repository_of(remote) == repository


def test_verifying_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never TUF, Fulcio or Rekor while deciding: the trusted root is on disk, the proofs in the bundle."""
    import socket

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("verification tried the network")

    monkeypatch.setattr(socket.socket, "connect", refused)
    monkeypatch.setattr(socket, "getaddrinfo", refused)
    checked = check(WHEEL_BUNDLE.read_bytes(), digest_of(WHEEL), production_root(), RFC8785, "signature", "b")
    assert checked.code is None, checked.problem


CONFIG = "image: ghcr.io/acme/homelab/{app}\ndeploy:\n  verify:\n"


@pytest.mark.parametrize(
    ("verify", "said"),
    [
        (
            "    github: {repository: acme}\n",
            "tagtrail.yaml:4:26: deploy.verify.github.repository: 'acme' is not OWNER/REPO, e.g. acme/homelab",
        ),
        (
            "    github: {workflow: build.yml}\n",
            "deploy.verify.github.workflow: 'build.yml' is not a workflow file",
        ),
        (
            "    github: {ref: main}\n",
            "deploy.verify.github.ref: 'main' is not a full ref, e.g. refs/heads/main",
        ),
        ("    require: attestation\n", "deploy.verify: name keys, github, or both"),
        (
            "    github: {}\n    require: sometimes\n",
            "deploy.verify.require: Input should be 'attestation', 'signature' or 'either'",
        ),
    ],
)
def test_deploy_verify_github_is_checked_when_loaded(verify: str, said: str) -> None:
    from tagtrail.config import parse_config
    from tagtrail.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        parse_config(CONFIG + verify, "tagtrail.yaml")
    assert said in str(raised.value)


def test_deploy_verify_github_defaults() -> None:
    from tagtrail.config import parse_config

    verify = parse_config(CONFIG + "    github: {}\n").deploy.verify
    assert verify is not None
    assert verify.github is not None
    assert (verify.require, verify.keys) == ("attestation", [])
    assert (verify.github.repository, verify.github.workflow, verify.github.ref) == (
        None,
        ".github/workflows/build.yml",
        None,
    )
    assert (verify.github.issuer, verify.github.self_hosted, verify.github.trusted_root) == (
        "https://token.actions.githubusercontent.com",
        False,
        None,
    )

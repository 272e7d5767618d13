"""Signature verification, offline: the key types cosign writes besides ECDSA P-256 (Ed25519, RSA), and
signatures found through the OCI 1.1 referrers API (which the test registry, distribution 2.8, lacks)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tagtrail.adapters.registry import ImageRef, Manifest
from tagtrail.adapters.verify import SIGNATURE_ANNOTATION, SIMPLE_SIGNING, Signed, find, judge, load_keys
from tagtrail.adapters.verify.signatures import load_key
from tagtrail.errors import ConfigError, RegistryNotFound

IMAGE = ImageRef.parse("registry.test/acme/web")
DIGEST = "sha256:" + "ab" * 32
PAYLOAD = json.dumps(
    {
        "critical": {
            "identity": {"docker-reference": "registry.test/acme/web"},
            "image": {"docker-manifest-digest": DIGEST},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
).encode()


def pem(private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_ed25519_and_rsa_signatures_verify() -> None:
    ed = ed25519.Ed25519PrivateKey.generate()
    rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signatures = [
        Signed(PAYLOAD, base64.b64encode(ed.sign(PAYLOAD)).decode(), "ed25519"),
        Signed(
            PAYLOAD, base64.b64encode(rs.sign(PAYLOAD, padding.PKCS1v15(), hashes.SHA256())).decode(), "rsa"
        ),
    ]
    for signature, key in zip(signatures, (ed, rs), strict=True):
        answer, _ = judge([signature], [load_key(pem(key))], DIGEST, IMAGE)
        assert answer.valid, answer.detail
    answer, checked = judge(
        signatures, [load_key(pem(ec.generate_private_key(ec.SECP256R1())))], DIGEST, IMAGE
    )
    assert not answer.valid
    assert answer.signed
    assert [c.problem for c in checked] == [
        "no trusted key made this signature (or the payload was changed)"
    ] * 2


def test_a_signature_that_is_not_base64_and_no_signature_at_all() -> None:
    key = load_key(pem(ed25519.Ed25519PrivateKey.generate()))
    answer, _ = judge([Signed(PAYLOAD, "not base64!", "x")], [key], DIGEST, IMAGE)
    assert "not base64" in answer.detail
    answer, _ = judge([], [key], DIGEST, IMAGE)
    assert (answer.valid, answer.signed) == (False, False)


def test_keys_are_checked_when_loaded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the public key"):
        load_keys(["file:missing.pub"], tmp_path)
    with pytest.raises(ConfigError, match="not a usable public key"):
        load_keys(["-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n"], tmp_path)


class Referrers:
    """A registry offering the referrers API, holding one signature manifest that refers to DIGEST."""

    def __init__(self, signature: str) -> None:
        layer = {
            "mediaType": SIMPLE_SIGNING,
            "digest": "sha256:" + "cd" * 32,
            "size": len(PAYLOAD),
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }
        self.raw = json.dumps({"schemaVersion": 2, "layers": [layer], "subject": {"digest": DIGEST}}).encode()
        self.asked: list[str] = []

    async def manifest(self, ref: ImageRef) -> Manifest:
        self.asked.append(f"manifest {ref.reference}")
        if ref.tag:
            raise RegistryNotFound(ref.registry, ref.repository, "no such tag")
        return Manifest("application/vnd.oci.image.manifest.v1+json", ref.reference, self.raw)

    async def blob(self, ref: ImageRef, digest: str, cap: int = 0) -> bytes:
        self.asked.append(f"blob {digest[:12]}")
        return PAYLOAD

    async def referrers(self, ref: ImageRef) -> list[dict[str, object]] | None:
        self.asked.append(f"referrers {ref.digest}")
        other = {"digest": "sha256:" + "ef" * 32, "artifactType": "application/spdx+json"}
        return [other, {"digest": "sha256:" + "12" * 32, "artifactType": SIMPLE_SIGNING}]


def test_a_signature_found_through_the_referrers_api() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    signature = base64.b64encode(private.sign(PAYLOAD, ec.ECDSA(hashes.SHA256()))).decode()
    registry = Referrers(signature)
    found = asyncio.run(find(registry, IMAGE, DIGEST))
    assert found.looked == [
        f"tag sha256-{'ab' * 32}.sig: none",
        "referrers API: 2 referrer(s), 1 cosign signature(s)",
    ]
    [signed] = found.signatures
    assert signed.where.startswith("referrer sha256:121212")
    answer, _ = judge(found.signatures, [load_key(pem(private))], DIGEST, IMAGE)
    assert answer.valid

"""cosign's key-based signatures, checked offline. Pure: bytes in, a verdict out.

cosign signs a "simple signing" payload (JSON) with the private key; the payload names the image's manifest
digest (`critical.image.docker-manifest-digest`) and its repository (`critical.identity.docker-reference`).
A signature is valid for an image when it verifies over the exact payload bytes with one of the trusted
keys, and the payload names that image's digest and repository. No transparency log is consulted: that is
what keyless (Fulcio/Rekor) verification would add, and tagtrail does not do it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tagtrail.adapters.registry import ImageRef
from tagtrail.domain.provenance import SignatureAnswer
from tagtrail.errors import InvalidReference

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"

if TYPE_CHECKING:  # cryptography is imported where a key is read or a signature checked, not by every deploy
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class Signed:
    """One signature as found beside an image: the payload's bytes, the base64 signature, and where."""

    payload: bytes
    signature: str
    where: str


@dataclass(frozen=True)
class Checked:
    """What one signature came to: valid, or the problem with it."""

    where: str
    problem: str | None


def load_key(pem: str) -> PublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    key = load_pem_public_key(pem.strip().encode())
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise ValueError("only ECDSA, Ed25519 and RSA public keys are supported")  # noqa: TRY004
    return key


def _verifies(key: PublicKey, signature: bytes, payload: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding  # noqa: PLC0415

    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        else:
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _payload_problem(payload: bytes, digest: str, repository: ImageRef) -> str | None:
    """Why the payload does not name this image (None: it does)."""
    try:
        critical = json.loads(payload)["critical"]
        named = critical["image"]["docker-manifest-digest"]
        reference = critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return "the payload is not a simple-signing document"
    if named != digest:
        return f"the payload is for {str(named)[:19]}…, not {digest[:19]}…"
    try:
        signed_for = ImageRef.parse(str(reference))
    except InvalidReference:
        return f"the payload names '{str(reference)[:100]}', not a repository"
    if (signed_for.registry, signed_for.repository) != (repository.registry, repository.repository):
        return f"the payload is for {signed_for.name}, not {repository.name}"
    return None


def check(signed: Signed, keys: list[PublicKey], digest: str, repository: ImageRef) -> Checked:
    """One signature: it verifies with one of `keys` over its payload, and the payload names the image."""
    try:
        raw = base64.b64decode(signed.signature, validate=True)
    except (binascii.Error, ValueError):
        return Checked(signed.where, "the signature is not base64")
    if not any(_verifies(key, raw, signed.payload) for key in keys):
        return Checked(signed.where, "no trusted key made this signature (or the payload was changed)")
    return Checked(signed.where, _payload_problem(signed.payload, digest, repository))


def judge(
    found: list[Signed], keys: list[PublicKey], digest: str, repository: ImageRef
) -> tuple[SignatureAnswer, list[Checked]]:
    """Valid when at least one signature is; otherwise unsigned (none found) or invalid (why each failed)."""
    checked = [check(s, keys, digest, repository) for s in found]
    good = [c for c in checked if c.problem is None]
    if good:
        return SignatureAnswer(True, f"signed by a trusted key ({good[0].where})"), checked
    if not checked:
        return SignatureAnswer(False, f"no signature for {digest[:19]}… was found", signed=False), checked
    why = "; ".join(f"{c.where}: {c.problem}" for c in checked[:3])
    return SignatureAnswer(False, f"no valid signature ({why})"), checked

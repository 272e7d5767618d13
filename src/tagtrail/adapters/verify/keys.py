"""The trusted keys as the config names them (inline PEM or file:PATH), and one image verified with them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tagtrail.adapters.registry import ImageRef
from tagtrail.adapters.verify.cosign import SignatureRegistry, find
from tagtrail.adapters.verify.signatures import Checked, judge, load_key
from tagtrail.domain.provenance import SignatureAnswer
from tagtrail.errors import ConfigError, Problem

if TYPE_CHECKING:
    from tagtrail.adapters.verify.signatures import PublicKey


def load_keys(specs: list[str], base: Path) -> list[PublicKey]:
    """Each key as configured: PEM text, or file:PATH (relative to `base`, tagtrail.yaml's folder)."""
    keys = []
    for spec in specs:
        text, where = spec, str(base / "tagtrail.yaml")
        if spec.startswith("file:"):
            path = (base / spec[5:]).expanduser()
            where = str(path)
            try:
                text = path.read_text()
            except OSError as exc:
                raise _problem(where, f"cannot read the public key ({exc.strerror})") from None
        try:
            keys.append(load_key(text))
        except ValueError as exc:
            raise _problem(where, f"not a usable public key ({exc})") from None
    return keys


def fingerprint(keys: list[PublicKey]) -> str:
    """What a set of keys is, by their bytes (not by the file they were read from): a verdict remembered
    under it holds for exactly these keys, so a key file whose content is replaced (a key revoked) vouches
    for nothing the old key signed."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: PLC0415

    each = sorted(
        hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()
        for key in keys
    )
    return hashlib.sha256(" ".join(each).encode()).hexdigest()


def _problem(where: str, message: str) -> ConfigError:
    return ConfigError([Problem(where, None, None, "deploy.verify.keys", message)])


@dataclass(frozen=True)
class Verification:
    answer: SignatureAnswer
    looked: list[str]
    checked: list[Checked]


async def verify_image(
    client: SignatureRegistry, image: ImageRef, digest: str, keys: list[PublicKey]
) -> Verification:
    """Whether `digest` in `image`'s repository carries a valid signature by one of `keys`."""
    found = await find(client, image, digest)
    answer, checked = judge(found.signatures, keys, digest, image)
    return Verification(answer, found.looked, checked)

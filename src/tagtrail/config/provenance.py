"""deploy.verify and deploy.source: what a tag's claims are checked against (DESIGN invariant 9): the keys
a candidate's signature must come from, and the repository its commit must be on."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _public_key(value: str) -> str:
    """A PEM public key (checked now, at load), or file:PATH to one (read when a deploy verifies)."""
    if value.startswith("file:") and len(value) > 5:
        return value
    # cryptography is imported only for a config that holds a key: it costs more than loading the config
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    try:
        key = load_pem_public_key(value.strip().encode())
    except ValueError:
        raise ValueError(
            "not a PEM public key ('-----BEGIN PUBLIC KEY-----' …, as `cosign generate-key-pair` writes"
            " cosign.pub) nor file:PATH"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise ValueError("only ECDSA, Ed25519 and RSA public keys are supported")  # noqa: TRY004 (pydantic)
    return value


PublicKey = Annotated[str, AfterValidator(_public_key)]


class VerifyConfig(BaseModel):
    """Signed images only: a candidate deploys only with a valid cosign signature from one of the keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[PublicKey] = Field(
        min_length=1,
        description="Public keys (PEM, or file:PATH relative to tagtrail.yaml) whose signatures are trusted.",
    )


class SourceConfig(BaseModel):
    """Where the commits named by tags are checked, when not in the checkout tagtrail runs in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1, description="Remote of the source repository; tagtrail keeps a blobless clone."
    )
    cache: str | None = Field(
        None, description="Folder for that clone; default: $XDG_CACHE_HOME/tagtrail/sources."
    )

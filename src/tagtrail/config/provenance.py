"""deploy.verify and deploy.source: what a tag's claims are checked against (DESIGN invariant 9): the keys
a candidate's signature must come from, the GitHub workflow whose keyless bundle must cover it, and the
repository its commit must be on."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


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


def _repository(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
        raise ValueError(f"'{value}' is not OWNER/REPO, e.g. acme/homelab")
    return value


def _workflow(value: str) -> str:
    if not re.fullmatch(r"\.github/workflows/[^/@\s]+\.ya?ml", value):
        raise ValueError(f"'{value}' is not a workflow file, e.g. .github/workflows/build.yml")
    return value


def _ref(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"refs/(heads|tags)/\S+", value):
        raise ValueError(f"'{value}' is not a full ref, e.g. refs/heads/main")
    return value


class GithubConfig(BaseModel):
    """Keyless: the image was signed or attested (Sigstore) by a run of this workflow, checked offline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: Annotated[str | None, AfterValidator(_repository)] = Field(
        None, description="OWNER/REPO the workflow runs in; default: from the source repository's remote."
    )
    workflow: Annotated[str, AfterValidator(_workflow)] = Field(
        ".github/workflows/build.yml", description="The workflow file that signs or attests the images."
    )
    ref: Annotated[str | None, AfterValidator(_ref)] = Field(
        None,
        description="The ref its run must be of, e.g. refs/heads/main; default: the tag's deploy branch.",
    )
    issuer: str = Field(GITHUB_ISSUER, description="The OIDC issuer the certificate must name.")
    self_hosted: bool = Field(
        False, description="Accept runs on self-hosted runners too (default: GitHub-hosted only)."
    )
    trusted_root: str | None = Field(
        None,
        description="A Sigstore trusted root file (GitHub Enterprise, a private instance); default: the"
        " public-good instance's, as sigstore-python ships it.",
    )


class VerifyConfig(BaseModel):
    """Signed images only: a candidate deploys only with a valid cosign signature from one of the keys,
    and (with github) a Sigstore bundle from the configured workflow's run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[PublicKey] = Field(
        default_factory=list,
        description="Public keys (PEM, or file:PATH relative to tagtrail.yaml) whose signatures are trusted.",
    )
    github: GithubConfig | None = Field(
        None, description="Keyless: the GitHub Actions workflow whose Sigstore bundle must cover the image."
    )
    require: Literal["attestation", "signature", "either"] = Field(
        "attestation",
        description="With github: an SLSA provenance attestation, a keyless signature, or either.",
    )

    @model_validator(mode="after")
    def _something_to_check(self) -> VerifyConfig:
        if not self.keys and self.github is None:
            raise ValueError("name keys, github, or both")
        return self


class SourceConfig(BaseModel):
    """Where the commits named by tags are checked, when not in the checkout tagtrail runs in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1, description="Remote of the source repository; tagtrail keeps a blobless clone."
    )
    cache: str | None = Field(
        None, description="Folder for that clone; default: $XDG_CACHE_HOME/tagtrail/sources."
    )

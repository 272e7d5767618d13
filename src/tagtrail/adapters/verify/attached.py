"""Sigstore bundles attached to an image, read through the registry: the OCI 1.1 referrers API where the
registry offers it, else the `sha256-<hex>` tag holding the referrers index (the fallback cosign, oras and
actions/attest-build-provenance write to registries without the API). Each referrer whose artifact type is a
Sigstore bundle has the bundle as its layer. One referrers read per image, then one manifest and one blob per
bundle, at most MAX_BUNDLES."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tagtrail.adapters.registry import ImageRef
from tagtrail.adapters.verify.cosign import SignatureRegistry
from tagtrail.adapters.verify.keyless import (
    Checked,
    Identity,
    Require,
    bundle_of,
    check,
    judge,
    repository_of,
    trusted_root,
)
from tagtrail.config.provenance import GithubConfig
from tagtrail.domain.provenance import AttestationAnswer
from tagtrail.errors import ConfigError, Problem, RegistryNotFound

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle"  # …v0.3+json, …+json;version=0.2
BUNDLE_CAP = 256 * 1024  # a bundle is a few kilobytes: a certificate, a log entry, an envelope
MAX_BUNDLES = 8  # bundles read per image: a flood of referrers is not read to the end


@dataclass
class Attached:
    """The bundles found for one digest, and what was looked at (for `tagtrail verify`)."""

    bundles: list[tuple[str, bytes]] = field(default_factory=list)  # (where, bundle JSON)
    looked: list[str] = field(default_factory=list)


def _is_bundle(entry: dict[str, object]) -> bool:
    return str(entry.get("artifactType", "")).startswith(BUNDLE_TYPE)


async def find(client: SignatureRegistry, image: ImageRef, digest: str) -> Attached:
    """The Sigstore bundles referring to `digest` in `image`'s repository."""
    found = Attached()
    referrers = await client.referrers(image.with_digest(digest))
    where = "referrers API"
    if referrers is None:
        tag = digest.replace(":", "-")
        where = f"tag {tag}"
        try:
            index = await client.manifest(image.with_tag(tag))
        except RegistryNotFound:
            found.looked.append("referrers API: not offered by this registry")
            found.looked.append(f"tag {tag}: none")
            return found
        referrers = _listed(index.raw)
        found.looked.append("referrers API: not offered by this registry")
    bundles = [r for r in referrers if _is_bundle(r)]
    found.looked.append(f"{where}: {len(referrers)} referrer(s), {len(bundles)} Sigstore bundle(s)")
    for entry in bundles[:MAX_BUNDLES]:
        ref_digest = str(entry.get("digest", ""))
        manifest = await client.manifest(image.with_digest(ref_digest))
        for layer in _layers(manifest.raw):
            blob = await client.blob(image, layer, BUNDLE_CAP)
            found.bundles.append((f"referrer {ref_digest[:19]}…", bundle_of(blob)))
    return found


def _listed(raw: bytes) -> list[dict[str, object]]:
    try:
        manifests = json.loads(raw).get("manifests", [])
    except (ValueError, AttributeError):
        return []
    return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []


def _layers(raw: bytes) -> list[str]:
    """The bundle layers' digests of one referrer manifest (one, as every publisher writes it)."""
    try:
        layers = json.loads(raw).get("layers", [])
    except (ValueError, AttributeError):
        return []
    found = [
        layer["digest"]
        for layer in (layers if isinstance(layers, list) else [])
        if isinstance(layer, dict)
        and str(layer.get("mediaType", "")).startswith(BUNDLE_TYPE)
        and isinstance(layer.get("digest"), str)
    ]
    return found[:1]


@dataclass(frozen=True)
class Expected:
    """What an app's bundles must prove, loaded once per evaluation; `key` names it in memory (a trusted
    root by its bytes: a verdict remembered under it holds for exactly that root)."""

    identity: Identity
    require: Require
    root: TrustedRoot
    key: str
    ref: str | None = None  # the ref its run must be of; None: the tag's deploy branch


def expected(
    settings: GithubConfig, require: Require, base: Path, remote: Callable[[], str | None]
) -> Expected:
    """deploy.verify.github made usable: its repository (else the source's GitHub remote), its trusted
    root read (relative to `base`, tagtrail.yaml's folder)."""
    repository = settings.repository or repository_of(remote())
    if repository is None:
        problem = "cannot tell the repository from the source repository's remote: set it (OWNER/REPO)"
        raise ConfigError(
            [Problem(str(base / "tagtrail.yaml"), None, None, "deploy.verify.github.repository", problem)]
        )
    path = (base / settings.trusted_root).expanduser() if settings.trusted_root else None
    root = trusted_root(path)
    identity = Identity(repository, settings.workflow, settings.issuer, settings.self_hosted)
    root_id = hashlib.sha256(path.read_bytes()).hexdigest() if path else "production"
    return Expected(identity, require, root, f"{identity}|{require}|{root_id}", settings.ref)


@dataclass(frozen=True)
class Verification:
    answer: AttestationAnswer
    looked: list[str]
    checked: list[Checked]


async def verify_attached(
    client: SignatureRegistry,
    image: ImageRef,
    digest: str,
    root: TrustedRoot,
    identity: Identity,
    require: Require,
) -> Verification:
    """Whether a bundle attached to `digest` proves it was built by `identity`'s workflow."""
    found = await find(client, image, digest)
    # tens of milliseconds of cryptography per bundle: off the event loop, which serves webhooks meanwhile
    checked = [
        await asyncio.to_thread(check, raw, digest, root, identity, require, where)
        for where, raw in found.bundles
    ]
    return Verification(judge(checked, digest), found.looked, checked)

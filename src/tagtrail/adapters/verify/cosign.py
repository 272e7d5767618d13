"""Where cosign keeps signatures, read through the registry: the `sha256-<hex>.sig` tag beside the image,
and the OCI 1.1 referrers API where the registry offers it. Each signature manifest's layers carry the
payload (a blob) and the signature (the layer's `dev.cosignproject.cosign/signature` annotation)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from tagtrail.adapters.registry import ImageRef, Manifest
from tagtrail.adapters.verify.signatures import SIGNATURE_ANNOTATION, SIMPLE_SIGNING, Signed
from tagtrail.errors import RegistryNotFound

PAYLOAD_CAP = 64 * 1024  # a simple-signing payload is a few hundred bytes
MAX_SIGNATURES = 32  # layers read per image: a flood of signature layers is not read to the end


class SignatureRegistry(Protocol):
    async def manifest(self, ref: ImageRef) -> Manifest: ...

    async def blob(self, ref: ImageRef, digest: str, cap: int = ...) -> bytes: ...

    async def referrers(self, ref: ImageRef) -> list[dict[str, object]] | None: ...


@dataclass
class Found:
    """The signatures found for one digest, and what was looked at (for `tagtrail verify`)."""

    signatures: list[Signed] = field(default_factory=list)
    looked: list[str] = field(default_factory=list)
    manifests: set[str] = field(default_factory=set)  # signature manifests read, by digest


def signature_tag(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.sig"


async def find(client: SignatureRegistry, image: ImageRef, digest: str) -> Found:
    """Every cosign signature stored for `digest` in `image`'s repository."""
    found = Found()
    tag = signature_tag(digest)
    try:
        manifest = await client.manifest(image.with_tag(tag))
    except RegistryNotFound:
        found.looked.append(f"tag {tag}: none")
    else:
        found.looked.append(f"tag {tag}: {len(manifest.layers)} layer(s)")
        await _read(client, image, manifest, f"tag {tag}", found)
    referrers = await client.referrers(image.with_digest(digest))
    if referrers is None:
        found.looked.append("referrers API: not offered by this registry")
        return found
    signatures = [r for r in referrers if r.get("artifactType") == SIMPLE_SIGNING]
    found.looked.append(f"referrers API: {len(referrers)} referrer(s), {len(signatures)} cosign signature(s)")
    for entry in signatures:
        ref_digest = str(entry.get("digest", ""))
        if ref_digest in found.manifests:  # the same manifest as under the tag
            continue
        manifest = await client.manifest(image.with_digest(ref_digest))
        await _read(client, image, manifest, f"referrer {ref_digest[:19]}…", found)
    return found


async def _read(
    client: SignatureRegistry, image: ImageRef, manifest: Manifest, where: str, found: Found
) -> None:
    """The signed layers of one signature manifest (the annotations live in its raw JSON)."""
    found.manifests.add(manifest.digest)
    try:
        layers = json.loads(manifest.raw).get("layers", [])
    except ValueError:
        return
    for index, layer in enumerate(layers if isinstance(layers, list) else []):
        if len(found.signatures) >= MAX_SIGNATURES:
            return
        annotations = layer.get("annotations") if isinstance(layer, dict) else None
        signature = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        digest = layer.get("digest") if isinstance(layer, dict) else None
        if not isinstance(signature, str) or not isinstance(digest, str):
            continue
        payload = await client.blob(image, digest, PAYLOAD_CAP)
        found.signatures.append(Signed(payload, signature, f"{where} layer {index}"))
